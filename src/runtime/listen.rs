//! Listening sockets for every `bind` address form.

use std::net::SocketAddr;

use crate::config::ir::{Bind, KaProbes, Mode, Proxy, ProxyKind};
use crate::tproxy::addr::ListenAddr;
use crate::tproxy::sockopt::{self, ListenOpts};
use std::time::Duration;

/// One bound socket, not yet registered with tokio.
pub struct Bound {
    pub socket: std::net::TcpListener,
    pub addr: SocketAddr,
    /// Index of the bind line in its proxy.
    pub bind_idx: usize,
    /// The local address of every connection accepted here, when it is known without asking
    /// the kernel: a specific address on a listener that is not `transparent` (a wildcard or
    /// a TPROXY listener needs a getsockname per connection).
    pub fixed_local: Option<SocketAddr>,
}

/// HAProxy's name for a proxy's kind in startup messages.
pub fn proxy_type(p: &Proxy) -> &'static str {
    match p.kind {
        ProxyKind::Frontend => "frontend",
        ProxyKind::Backend => "backend",
        _ => "proxy",
    }
}

/// Formats `addr:port` as HAProxy does in `for [...]` (no brackets around IPv6 addresses).
pub fn addr_port(a: &SocketAddr) -> String {
    format!("{}:{}", a.ip(), a.port())
}

/// `option tcp-smart-accept`, on by default in `mode http` (HAProxy 2.6): the listeners leave
/// quick-ack mode, so the kernel does not acknowledge a request at once but with the response
/// (one packet fewer per connection). [`super::http`] turns quick-ack back on for a request
/// whose body is still to come, as HAProxy does, so that the client is not left waiting for a
/// delayed ACK.
pub fn smart_accept(p: &Proxy) -> bool {
    match p.options.get("tcp-smart-accept") {
        Some(o) => o.value,
        None => p.mode.value == Mode::Http,
    }
}

/// Kernel keep-alive probes on `s` (`option clitcpka` / `srvtcpka` with their `-cnt`,
/// `-idle`, `-intvl`): the ones set and not 0, as HAProxy; the kernel's defaults otherwise.
pub fn set_keepalive(s: &socket2::Socket, probes: &KaProbes) -> std::io::Result<()> {
    let secs = |v: Option<u32>| v.filter(|&v| v > 0).map(|v| Duration::from_secs(v as u64));
    let mut ka = socket2::TcpKeepalive::new();
    if let Some(t) = secs(probes.idle) {
        ka = ka.with_time(t);
    }
    if let Some(t) = secs(probes.intvl) {
        ka = ka.with_interval(t);
    }
    if let Some(n) = probes.cnt.filter(|&n| n > 0) {
        ka = ka.with_retries(n);
    }
    s.set_tcp_keepalive(&ka)
}

/// Binds every address and port of `bind`. Errors are complete alert texts.
pub fn bind_all(
    p: &Proxy,
    bind: &Bind,
    bind_idx: usize,
    default_backlog: u32,
) -> Result<Vec<Bound>, String> {
    let mut out = Vec::new();
    let smart = smart_accept(p);
    // `option clitcpka` / `option tcpka`: kernel keep-alive probes towards the client.
    let keepalive = p.option("clitcpka") || p.option("tcpka");
    // `option nolinger`: client connections close with an RST. HAProxy sets `SO_LINGER` 0 on
    // each accepted socket; Linux copies the listener's into each accepted one.
    let nolinger = p.option("nolinger");
    // Options every accepted connection inherits from its listening socket (Linux copies
    // them into the new socket): set here once instead of a syscall per connection.
    let set_inherited = |s: socket2::SockRef<'_>| {
        // Best effort, as in HAProxy.
        let _ = s.set_tcp_nodelay(true);
        let _ = match keepalive {
            true => set_keepalive(&s, &p.clitcpka),
            false => s.set_keepalive(false),
        };
        let _ = s.set_tcp_quickack(!smart);
        let _ = s.set_linger(nolinger.then_some(Duration::ZERO));
    };
    for spec in &bind.addrs {
        let low = spec.addr.port();
        let high = spec.port_high.max(low);
        for port in low..=high {
            let mut sa = spec.addr;
            sa.set_port(port);
            if let Some(socket) = super::admin::take_inherited(&sa) {
                // It keeps the old process's settings unless set again.
                set_inherited(socket2::SockRef::from(&socket));
                out.push(Bound {
                    socket,
                    addr: sa,
                    bind_idx,
                    fixed_local: None,
                });
                continue;
            }
            let opts = ListenOpts {
                transparent: bind.transparent,
                reuse_port: true,
                interface: bind.interface.clone(),
                v6only: if bind.v6only {
                    Some(true)
                } else if bind.v4v6 {
                    Some(false)
                } else {
                    None
                },
                backlog: bind
                    .backlog
                    .or(p.backlog)
                    .unwrap_or(default_backlog)
                    .clamp(1, i32::MAX as u32) as i32,
            };
            let sock = sockopt::transparent_listener(ListenAddr(sa), &opts).map_err(|e| {
                let why = match sockopt::missing_capability(&e) {
                    Some(mc) => mc.to_string(),
                    None => os_error_text(&e),
                };
                format!(
                    "Binding [{}] for {} {}: cannot bind socket ({}) for [{}]",
                    bind.loc,
                    proxy_type(p),
                    p.name,
                    why,
                    addr_port(&sa)
                )
            })?;
            // Quick-ack set either way, as HAProxy 2.6 does.
            set_inherited(socket2::SockRef::from(&sock));
            let socket: std::net::TcpListener = sock.into();
            out.push(Bound {
                socket,
                addr: sa,
                bind_idx,
                fixed_local: (!bind.transparent && !sa.ip().is_unspecified()).then_some(sa),
            });
        }
    }
    Ok(out)
}

/// The C library's text of an OS error (`Address already in use`), without Rust's suffix.
pub fn os_error_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => nix::errno::Errno::from_raw(code).desc().to_string(),
            }
        }
        None => e.to_string(),
    }
}
