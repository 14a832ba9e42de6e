//! Socket construction for transparent proxying (Linux TPROXY).
//!
//! * [`transparent_listener`]: a listening socket for `bind ADDR:PORT [transparent] [interface IF]`.
//! * [`transparent_connect_socket`]: an outgoing, bound but not yet connected socket for
//!   `source ADDR[:PORT[-PORT]] [usesrc ...] [interface IF]`; [`connect`] finishes it with tokio.
//! * [`original_destination`]: the client's original destination of an accepted socket.
//!
//! Policy difference with HAProxy 2.6: when `IP_TRANSPARENT` is refused (EPERM: the process has
//! neither CAP_NET_ADMIN nor CAP_NET_RAW), HAProxy silently retries with `IP_FREEBIND`. The bind
//! then succeeds but the socket never receives diverted traffic and spoofed connects fail with
//! ENETUNREACH, so every request hangs or gets a 503. rhaproxy never falls back: it returns an
//! error of kind `PermissionDenied` whose payload is [`MissingCapability`]
//! (see [`missing_capability`]).

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::sys::socket::{setsockopt, sockopt};
use socket2::{Domain, Protocol, SockRef, Socket, Type};

use super::addr::{ClientAddr, Family, ListenAddr, OrigDstAddr, ServerAddr, unmap};

/// The error payload when the kernel refuses a privileged socket option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingCapability {
    /// The socket option that was refused, e.g. `IP_TRANSPARENT`.
    pub option: &'static str,
    /// The capability the process needs, e.g. `CAP_NET_ADMIN`.
    pub capability: &'static str,
    /// The address the socket was for (listen address, or the spoofed source).
    pub addr: SocketAddr,
    /// `"listening"` or `"outgoing"`.
    pub role: &'static str,
}

impl fmt::Display for MissingCapability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot set {} on the {} socket for [{}]: Operation not permitted; the process lacks {}",
            self.option, self.role, self.addr, self.capability
        )?;
        if self.option.ends_with("TRANSPARENT") {
            f.write_str(
                " (CAP_NET_RAW also works). Run as root, keep the capability across `user` \
                 with `setcap cap_net_admin`, or grant it to the binary \
                 (`setcap cap_net_admin+ep <rhaproxy>`). No fallback to IP_FREEBIND is made: \
                 such a socket would never receive transparently proxied traffic",
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for MissingCapability {}

/// If `e` was produced because a privileged socket option was refused, its details.
pub fn missing_capability(e: &io::Error) -> Option<&MissingCapability> {
    e.get_ref()?.downcast_ref::<MissingCapability>()
}

fn refused(
    e: io::Error,
    option: &'static str,
    capability: &'static str,
    addr: SocketAddr,
    role: &'static str,
) -> io::Error {
    if e.raw_os_error() == Some(nix::libc::EPERM) || e.raw_os_error() == Some(nix::libc::EACCES) {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            MissingCapability {
                option,
                capability,
                addr,
                role,
            },
        )
    } else {
        e
    }
}

fn set_transparent(
    sock: &Socket,
    family: Family,
    addr: SocketAddr,
    role: &'static str,
) -> io::Result<()> {
    let (r, opt) = match family {
        Family::V4 => (sock.set_ip_transparent_v4(true), "IP_TRANSPARENT"),
        Family::V6 => (sock.set_ip_transparent_v6(true), "IPV6_TRANSPARENT"),
    };
    r.map_err(|e| refused(e, opt, "CAP_NET_ADMIN", addr, role))
}

fn bind_device(
    sock: &Socket,
    interface: &str,
    addr: SocketAddr,
    role: &'static str,
) -> io::Result<()> {
    sock.bind_device(Some(interface.as_bytes()))
        .map_err(|e| refused(e, "SO_BINDTODEVICE", "CAP_NET_RAW", addr, role))
}

fn domain(family: Family) -> Domain {
    match family {
        Family::V4 => Domain::IPV4,
        Family::V6 => Domain::IPV6,
    }
}

/// Options of a listening socket (the `bind` line options that touch the socket).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenOpts {
    /// `transparent`: set IP_TRANSPARENT / IPV6_TRANSPARENT (bind non-local addresses and receive
    /// TPROXY-diverted connections).
    pub transparent: bool,
    /// SO_REUSEPORT (HAProxy sets it unless `noreuseport`).
    pub reuse_port: bool,
    /// `interface IF`: SO_BINDTODEVICE.
    pub interface: Option<String>,
    /// `v4v6` / `v6only` for IPv6 listeners; `None` leaves the system default.
    pub v6only: Option<bool>,
    /// listen(2) backlog.
    pub backlog: i32,
}

impl Default for ListenOpts {
    fn default() -> Self {
        ListenOpts {
            transparent: false,
            reuse_port: true,
            interface: None,
            v6only: None,
            backlog: 1024,
        }
    }
}

/// Create, configure, bind and listen a non-blocking TCP socket for `addr`.
///
/// Order as HAProxy 2.6: SO_REUSEADDR, SO_REUSEPORT, IP(V6)_TRANSPARENT, SO_BINDTODEVICE, bind,
/// listen. A refused IP_TRANSPARENT gives a [`MissingCapability`] error (never IP_FREEBIND).
/// A non-local address without `transparent` fails at bind with EADDRNOTAVAIL, returned as is
/// (with its raw OS error) so the caller can print HAProxy's `cannot bind socket (...)` message.
pub fn transparent_listener(addr: ListenAddr, opts: &ListenOpts) -> io::Result<Socket> {
    let sa = addr.sock_addr();
    let family = addr.family();
    let sock = Socket::new(domain(family), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_nonblocking(true)?;
    sock.set_reuse_address(true)?;
    if opts.reuse_port {
        sock.set_reuse_port(true)?;
    }
    if family == Family::V6
        && let Some(only) = opts.v6only
    {
        sock.set_only_v6(only)?;
    }
    if opts.transparent {
        set_transparent(&sock, family, sa, "listening")?;
    }
    if let Some(ifname) = &opts.interface {
        bind_device(&sock, ifname, sa, "listening")?;
    }
    sock.bind(&sa.into())?;
    sock.listen(opts.backlog)?;
    Ok(sock)
}

/// Port part of a `source` or `usesrc` address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortSpec {
    /// No port or port 0: the kernel picks one at connect() time (IP_BIND_ADDRESS_NO_PORT).
    Any,
    /// One fixed port.
    Fixed(u16),
    /// `low-high` (server lines only in HAProxy): the first free port of the range, starting
    /// at a rotating offset.
    Range { low: u16, high: u16 },
}

/// What the outgoing socket is bound to, already resolved for one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceMode {
    /// No `source`: nothing is bound, the kernel picks address and port.
    Kernel,
    /// `source ADDR[:PORT[-PORT]]` without `usesrc`: a local address, not transparent.
    /// `0.0.0.0`/`::` with no port binds nothing (as HAProxy).
    Plain { ip: IpAddr, ports: PortSpec },
    /// `usesrc clientip` (and `hdr_ip(...)`, with the address taken from the header): the client's
    /// IP, port chosen by the kernel at connect time. Transparent.
    ClientIp(ClientAddr),
    /// `usesrc client`: the client's IP **and port**. Transparent, SO_REUSEADDR.
    Client(ClientAddr),
    /// `usesrc ADDR[:PORT[-PORT]]`: a fixed, possibly non-local address. Transparent.
    Fixed { ip: IpAddr, ports: PortSpec },
}

/// Source binding of one outgoing connection: the mode plus `interface IF`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceBind {
    pub mode: SourceMode,
    pub interface: Option<String>,
}

impl SourceBind {
    pub fn kernel() -> Self {
        SourceBind {
            mode: SourceMode::Kernel,
            interface: None,
        }
    }
    pub fn client_ip(c: ClientAddr) -> Self {
        SourceBind {
            mode: SourceMode::ClientIp(c),
            interface: None,
        }
    }
    pub fn client(c: ClientAddr) -> Self {
        SourceBind {
            mode: SourceMode::Client(c),
            interface: None,
        }
    }
    pub fn with_interface(mut self, ifname: impl Into<String>) -> Self {
        self.interface = Some(ifname.into());
        self
    }
    /// Whether the socket gets IP_TRANSPARENT (needs CAP_NET_ADMIN or CAP_NET_RAW).
    pub fn is_transparent(&self) -> bool {
        matches!(
            self.mode,
            SourceMode::ClientIp(_) | SourceMode::Client(_) | SourceMode::Fixed { .. }
        )
    }
}

/// `usesrc` argument as written in the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UseSrc {
    ClientIp,
    Client,
    Addr {
        ip: IpAddr,
        ports: PortSpec,
    },
    /// `hdr_ip(HDR[,OCC])`: the runtime extracts the address and passes it as the client IP.
    HdrIp {
        header: String,
        occ: i32,
    },
}

/// The configuration-level `source` statement of a backend or server. Resolve it per connection
/// with [`SourcePolicy::for_connection`]; health checks use [`SourcePolicy::for_health_check`]
/// (they never spoof).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourcePolicy {
    pub ip: IpAddr,
    pub ports: PortSpec,
    pub usesrc: Option<UseSrc>,
    pub interface: Option<String>,
}

impl SourcePolicy {
    /// `client` is the accepted client's address; `hdr_ip` the address found by `hdr_ip(...)`.
    /// Errors (InvalidInput) when `usesrc client/clientip/hdr_ip` has no address to use.
    pub fn for_connection(
        &self,
        client: Option<ClientAddr>,
        hdr_ip: Option<IpAddr>,
    ) -> io::Result<SourceBind> {
        let need = |what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("usesrc {what}: no client address available for this connection"),
            )
        };
        let mode = match &self.usesrc {
            None => SourceMode::Plain {
                ip: self.ip,
                ports: self.ports,
            },
            Some(UseSrc::ClientIp) => SourceMode::ClientIp(client.ok_or_else(|| need("clientip"))?),
            Some(UseSrc::Client) => SourceMode::Client(client.ok_or_else(|| need("client"))?),
            Some(UseSrc::Addr { ip, ports }) => SourceMode::Fixed {
                ip: *ip,
                ports: *ports,
            },
            Some(UseSrc::HdrIp { .. }) => {
                let ip = hdr_ip.ok_or_else(|| need("hdr_ip"))?;
                SourceMode::ClientIp(ClientAddr(SocketAddr::new(ip, 0)))
            }
        };
        Ok(SourceBind {
            mode,
            interface: self.interface.clone(),
        })
    }

    pub fn for_health_check(&self) -> SourceBind {
        SourceBind {
            mode: SourceMode::Plain {
                ip: self.ip,
                ports: self.ports,
            },
            interface: self.interface.clone(),
        }
    }
}

fn family_mismatch(server: ServerAddr, ip: IpAddr) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "source address {ip} ({}) cannot be used towards server {server} ({}): \
             client, source and server must be the same address family",
            Family::of(&ip),
            server.family()
        ),
    )
}

/// Bring `ip` to the server's family (unmapping `::ffff:a.b.c.d`), or fail.
fn same_family(server: ServerAddr, ip: IpAddr) -> io::Result<IpAddr> {
    let ip = if server.family() == Family::V4 {
        unmap(ip)
    } else {
        ip
    };
    if Family::of(&ip) == server.family() {
        Ok(ip)
    } else if ip.is_unspecified() {
        // `source 0.0.0.0` towards an IPv6 server, or `[::]` towards IPv4: nothing to bind.
        Ok(match server.family() {
            Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        })
    } else {
        Err(family_mismatch(server, ip))
    }
}

static RANGE_CURSOR: AtomicU32 = AtomicU32::new(0);

fn bind_ports(sock: &Socket, ip: IpAddr, ports: PortSpec) -> io::Result<()> {
    match ports {
        PortSpec::Any => sock.bind(&SocketAddr::new(ip, 0).into()),
        PortSpec::Fixed(p) => sock.bind(&SocketAddr::new(ip, p).into()),
        PortSpec::Range { low, high } => {
            let (low, high) = (low.min(high), low.max(high));
            let n = u32::from(high - low) + 1;
            let start = RANGE_CURSOR.fetch_add(1, Ordering::Relaxed) % n;
            let mut last = io::Error::from_raw_os_error(nix::libc::EADDRINUSE);
            for i in 0..n {
                let port = low + ((start + i) % n) as u16;
                match sock.bind(&SocketAddr::new(ip, port).into()) {
                    Ok(()) => return Ok(()),
                    Err(e) if e.raw_os_error() == Some(nix::libc::EADDRINUSE) => last = e,
                    Err(e) => return Err(e),
                }
            }
            Err(last)
        }
    }
}

/// Create a non-blocking TCP socket for a connection to `server`, with TCP_NODELAY, bound as
/// `bind` says, ready for `connect()` (see [`connect`]). Per HAProxy 2.6 (strace-verified):
///
/// * `usesrc clientip`: IP_BIND_ADDRESS_NO_PORT, IP_TRANSPARENT, SO_REUSEADDR, bind(client_ip:0);
///   the port is chosen at connect() time by 4-tuple, so many connections share a client IP.
/// * `usesrc client`: IP_TRANSPARENT, SO_REUSEADDR, bind(client_ip:client_port). The tuple can
///   only be reused once the previous server connection is gone (close it with RST, SO_LINGER 0).
/// * `usesrc ADDR[:PORT]`: like clientip/client with a fixed address.
/// * `source ADDR[:PORT]`: a local address, no transparency; nothing is bound for `0.0.0.0`/`::`
///   without a port.
/// * `interface IF`: SO_BINDTODEVICE.
///
/// IPv4 and IPv6; the transparency option follows the server's family. An IPv4 client seen as
/// `::ffff:a.b.c.d` is spoofed as `a.b.c.d`; any other family mismatch is InvalidInput.
/// A refused IP_TRANSPARENT is a [`MissingCapability`] error.
pub fn transparent_connect_socket(server: ServerAddr, bind: &SourceBind) -> io::Result<Socket> {
    let family = server.family();
    // Non-blocking from socket(2) on (SOCK_NONBLOCK): no fcntl F_GETFL/F_SETFL pair for every
    // server connection (HAProxy's connect path has none either).
    let sock = Socket::new(
        domain(family),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )?;
    sock.set_tcp_nodelay(true)?;
    if let Some(ifname) = &bind.interface {
        bind_device(&sock, ifname, server.sock_addr(), "outgoing")?;
    }
    let (ip, ports, transparent) = match &bind.mode {
        SourceMode::Kernel => return Ok(sock),
        SourceMode::Plain { ip, ports } => (*ip, *ports, false),
        SourceMode::ClientIp(c) => (c.ip(), PortSpec::Any, true),
        SourceMode::Client(c) => (c.ip(), PortSpec::Fixed(c.port()), true),
        SourceMode::Fixed { ip, ports } => (*ip, *ports, true),
    };
    let ip = same_family(server, ip)?;
    let ports = match ports {
        PortSpec::Fixed(0) => PortSpec::Any,
        p => p,
    };
    if !transparent && ip.is_unspecified() && ports == PortSpec::Any {
        return Ok(sock);
    }
    if !matches!(ports, PortSpec::Range { .. }) {
        // IPPROTO_IP level, but Linux honours it on AF_INET6 TCP sockets as well.
        setsockopt(&sock, sockopt::IpBindAddressNoPort, &true).map_err(io::Error::from)?;
    }
    if transparent {
        set_transparent(&sock, family, SocketAddr::new(ip, 0), "outgoing")?;
    }
    if !matches!(ports, PortSpec::Range { .. }) {
        sock.set_reuse_address(true)?;
    }
    bind_ports(&sock, ip, ports)?;
    Ok(sock)
}

/// Connect a socket made by [`transparent_connect_socket`] (non-blocking) with tokio.
///
/// The outcome is read from the readiness the poller reports, not asked for with
/// `getsockopt(SO_ERROR)` as tokio's own connect does: a failed connect is reported with
/// EPOLLERR/EPOLLHUP (write side closed), so a successful one costs no extra syscall, as in
/// HAProxy. The error itself is fetched only when the connect failed.
pub async fn connect(sock: Socket, server: ServerAddr) -> io::Result<tokio::net::TcpStream> {
    match sock.connect(&server.sock_addr().into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(nix::libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let std_stream: std::net::TcpStream = sock.into();
    let stream = tokio::net::TcpStream::from_std(std_stream)?;
    let ready = stream.ready(tokio::io::Interest::WRITABLE).await?;
    if ready.is_write_closed() || ready.is_error() {
        return Err(stream
            .take_error()?
            .unwrap_or_else(|| io::Error::from(io::ErrorKind::ConnectionRefused)));
    }
    Ok(stream)
}

/// Close a connection with RST (SO_LINGER {1,0}), as HAProxy does for server connections; needed
/// with `usesrc client`, whose next connection reuses the same 4-tuple (no TIME_WAIT allowed).
pub fn set_reset_on_close<F: AsFd>(fd: &F) -> io::Result<()> {
    SockRef::from(fd).set_linger(Some(std::time::Duration::ZERO))
}

/// The client's original destination of a connection accepted on a transparent listener.
///
/// With TPROXY (iptables `-j TPROXY`, nft `tproxy`), the kernel delivers the packet to the proxy's
/// socket without rewriting it, so the accepted socket's **local address** (getsockname) is the
/// address the client connected to, e.g. `10.10.7.7:80` for a connection diverted to
/// `0.0.0.0:8080`. This is what `dst`/`%fi`/`%fp` show and what `server x 0.0.0.0` connects to.
/// (NAT `REDIRECT` would need SO_ORIGINAL_DST instead; rhaproxy does not use NAT.)
pub fn original_destination<F: AsFd>(fd: &F) -> io::Result<OrigDstAddr> {
    let local = SockRef::from(fd).local_addr()?;
    local.as_socket().map(OrigDstAddr).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the socket is not an IPv4/IPv6 socket",
        )
    })
}

#[cfg(test)]
mod tests;
