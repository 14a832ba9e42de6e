//! Network-namespace lab for transparent-proxy tests (the topology of
//! docs `tproxy-topology.md` §1), usable by any integration test:
//!
//! ```text
//! client   eth0 10.10.1.2/24 (+ .3-.9)  fd00:1::2/64   gw .1 / fd00:1::1
//!    | veth
//! lb       lb-c 10.10.1.1/24 fd00:1::1/64   (the proxy runs here)
//!          lb-s 10.10.2.1/24 fd00:2::1/64
//!    | veth
//! sw       br0 (bridge)
//!    |-- srv1     eth0 10.10.2.2/24  fd00:2::2/64   gw 10.10.2.1 / fd00:2::1
//!    |-- srv2     eth0 10.10.2.3/24  fd00:2::3/64
//!    `-- client2  eth0 10.10.2.50/24 fd00:2::50/64  (a client on the servers' own subnet)
//! VIP 10.10.9.9 is on no interface; 10.10.7.0/24 exists nowhere (the TPROXY target catches it).
//! ```
//!
//! Namespace names are `rhx<pid>-<n>-<role>`, unique per test process and lab, so parallel tests
//! and other sessions never clash. [`Lab`] is an RAII guard: dropping it (also while a test
//! panics) kills the processes it started (by recorded PID / process group) and deletes its
//! namespaces, which removes every veth, bridge, rule, route and firewall table with them.
//! Servers are `socat` peer-echo servers (socat is installed by CI; no python needed); the HTTP
//! client is Rust code running on a thread that entered the client namespace (no curl needed).

#![allow(dead_code)]

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// True when the process can build namespaces; otherwise prints the SKIPPED line.
pub fn can_run(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    let tools = ["ip", "socat"].iter().all(|t| which(t));
    if !root || !tools {
        skipped(&format!(
            "SKIPPED (needs root and network namespaces): {test}"
        ));
        return false;
    }
    true
}

/// Print a SKIPPED line straight to stderr, so libtest's output capture does not hide it.
pub fn skipped(line: &str) {
    let _ = writeln!(io::stderr(), "{line}");
}

pub fn which(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Client,
    Lb,
    Sw,
    Srv1,
    Srv2,
    Client2,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Client,
        Role::Lb,
        Role::Sw,
        Role::Srv1,
        Role::Srv2,
        Role::Client2,
    ];
    fn short(self) -> &'static str {
        match self {
            Role::Client => "c",
            Role::Lb => "lb",
            Role::Sw => "sw",
            Role::Srv1 => "s1",
            Role::Srv2 => "s2",
            Role::Client2 => "c2",
        }
    }
}

/// Which firewall front end carries the TPROXY rules.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Firewall {
    /// `iptables-restore` / `ip6tables-restore` (iptables-nft on Debian 12).
    Iptables,
    /// `iptables-legacy-restore` / `ip6tables-legacy-restore`.
    IptablesLegacy,
    /// native nftables (`table inet rhx`).
    Nft,
}

/// The fwmark and table used by the lab plumbing (as in the topology doc).
pub const MARK: u32 = 111;
pub const TABLE: u32 = 100;

/// A started process (proxy, echo server) inside a lab namespace.
pub struct Proc {
    pub name: String,
    pub role: Role,
    pub pid: u32,
    child: Child,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl Proc {
    pub fn stderr_text(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }
    pub fn stdout_text(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }
}

/// Handle on a process of the lab (index into its list).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ProcId(usize);

pub struct Lab {
    pub prefix: String,
    pub dir: PathBuf,
    procs: Vec<Option<Proc>>,
    namespaces: Vec<String>,
    legacy_used: std::cell::Cell<bool>,
}

static LAB_SEQ: AtomicU32 = AtomicU32::new(0);

/// What the peer-echo server saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Echo {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub name: String,
    /// `X-Orig-Dst` request header if the proxy added one, else "-".
    pub xod: String,
}

#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Response {
    pub fn echo(&self) -> Option<Echo> {
        parse_echo(&self.body)
    }
}

fn parse_sockaddr(s: &str) -> Option<SocketAddr> {
    let (ip, port) = s.rsplit_once(':')?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = ip.parse().ok()?;
    let ip = match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    Some(SocketAddr::new(ip, port.parse().ok()?))
}

/// Parse `peer=... local=... name=... xod=...`.
pub fn parse_echo(body: &str) -> Option<Echo> {
    let line = body.lines().find(|l| l.starts_with("peer="))?;
    let mut e = Echo {
        peer: "0.0.0.0:0".parse().unwrap(),
        local: "0.0.0.0:0".parse().unwrap(),
        name: String::new(),
        xod: "-".into(),
    };
    for kv in line.split_whitespace() {
        let (k, v) = kv.split_once('=')?;
        match k {
            "peer" => e.peer = parse_sockaddr(v)?,
            "local" => e.local = parse_sockaddr(v)?,
            "name" => e.name = v.to_string(),
            "xod" => e.xod = v.to_string(),
            _ => {}
        }
    }
    Some(e)
}

const ECHO_SH: &str = r#"# peer-echo: answer one HTTP request (or a bare line) with what the server saw
xod=-
cr=$(printf '\r')
while IFS= read -r l; do
  l=${l%"$cr"}
  [ -z "$l" ] && break
  case "$l" in [Xx]-[Oo]rig-[Dd]st:*) xod=${l#*: } ;; esac
done
b="peer=$SOCAT_PEERADDR:$SOCAT_PEERPORT local=$SOCAT_SOCKADDR:$SOCAT_SOCKPORT name=$1 xod=$xod"
printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s\n' $((${#b} + 1)) "$b"
"#;

impl Lab {
    /// Build the whole topology (namespaces, links, addresses, routes, forwarding, policy
    /// routing) without firewall rules and without servers.
    pub fn up(tag: &str) -> io::Result<Lab> {
        let n = LAB_SEQ.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("rhx{}-{}-", std::process::id(), n);
        let dir = std::env::temp_dir().join(format!("{prefix}{tag}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        let mut lab = Lab {
            prefix,
            dir,
            procs: Vec::new(),
            namespaces: Vec::new(),
            legacy_used: std::cell::Cell::new(false),
        };
        for r in Role::ALL {
            let name = lab.ns(r);
            run_ok(Command::new("ip").args(["netns", "add", &name]))?;
            lab.namespaces.push(name);
            // No duplicate address detection, also for link-local addresses: links are usable
            // (neighbour discovery included) as soon as they are up.
            lab.sh(
                r,
                "sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0",
            )?;
        }
        let (c, lb, sw) = (lab.ns(Role::Client), lab.ns(Role::Lb), lab.ns(Role::Sw));
        run_ok(Command::new("ip").args([
            "-n", &lb, "link", "add", "lb-c", "type", "veth", "peer", "name", "eth0", "netns", &c,
        ]))?;
        run_ok(Command::new("ip").args([
            "-n", &lb, "link", "add", "lb-s", "type", "veth", "peer", "name", "up0", "netns", &sw,
        ]))?;
        for (r, port) in [
            (Role::Srv1, "p-s1"),
            (Role::Srv2, "p-s2"),
            (Role::Client2, "p-c2"),
        ] {
            let ns = lab.ns(r);
            run_ok(Command::new("ip").args([
                "-n", &sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ]))?;
        }
        lab.sh(
            Role::Sw,
            "set -e
             ip link set lo up
             ip link add br0 type bridge
             [ -w /proc/sys/net/bridge/bridge-nf-call-iptables ] && { echo 0 > /proc/sys/net/bridge/bridge-nf-call-iptables; echo 0 > /proc/sys/net/bridge/bridge-nf-call-ip6tables; }
             for p in up0 p-s1 p-s2 p-c2; do ip link set $p master br0; ip link set $p up; done
             ip link set br0 up",
        )?;
        lab.sh(
            Role::Client,
            "set -e
             ip link set lo up
             ip addr add 10.10.1.2/24 dev eth0
             for i in 3 4 5 6 7 8 9; do ip addr add 10.10.1.$i/24 dev eth0; done
             ip addr add fd00:1::2/64 dev eth0 nodad
             ip link set eth0 up
             ip route add default via 10.10.1.1
             ip -6 route add default via fd00:1::1",
        )?;
        for (r, v4, v6) in [
            (Role::Srv1, "10.10.2.2", "fd00:2::2"),
            (Role::Srv2, "10.10.2.3", "fd00:2::3"),
            (Role::Client2, "10.10.2.50", "fd00:2::50"),
        ] {
            lab.sh(
                r,
                &format!(
                    "set -e
                     ip link set lo up
                     ip addr add {v4}/24 dev eth0
                     ip addr add {v6}/64 dev eth0 nodad
                     ip link set eth0 up
                     ip route add default via 10.10.2.1
                     ip -6 route add default via fd00:2::1"
                ),
            )?;
        }
        lab.sh(
            Role::Lb,
            "set -e
             ip link set lo up
             ip addr add 10.10.1.1/24 dev lb-c
             ip addr add fd00:1::1/64 dev lb-c nodad
             ip addr add 10.10.2.1/24 dev lb-s
             ip addr add fd00:2::1/64 dev lb-s nodad
             ip link set lb-c up
             ip link set lb-s up
             sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 net.ipv4.ip_nonlocal_bind=0
             for i in all default lo lb-c lb-s; do sysctl -qw net.ipv4.conf.$i.rp_filter=1; done",
        )?;
        lab.policy_routing(true)?;
        fs::write(lab.dir.join("peer-echo.sh"), ECHO_SH)?;
        Ok(lab)
    }

    pub fn ns(&self, r: Role) -> String {
        format!("{}{}", self.prefix, r.short())
    }

    /// `ip netns exec NS sh -c SCRIPT`; Err with the output when it fails.
    pub fn sh(&self, r: Role, script: &str) -> io::Result<String> {
        let out =
            run_ok(Command::new("ip").args(["netns", "exec", &self.ns(r), "sh", "-c", script]))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Like [`Lab::sh`] with a script on stdin of `cmd` (e.g. `iptables-restore`).
    pub fn feed(&self, r: Role, cmd: &[&str], stdin: &str) -> io::Result<String> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns(r)])
            .args(cmd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        child.stdin.take().unwrap().write_all(stdin.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "{cmd:?} failed: {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The fwmark policy rule and the local route table, IPv4 and IPv6 (`on`), or remove them.
    pub fn policy_routing(&self, on: bool) -> io::Result<()> {
        self.fwmark_rule(on)?;
        self.local_route(on)
    }

    pub fn fwmark_rule(&self, on: bool) -> io::Result<()> {
        let op = if on { "add" } else { "del" };
        self.sh(
            Role::Lb,
            &format!("ip rule {op} fwmark {MARK} lookup {TABLE} && ip -6 rule {op} fwmark {MARK} lookup {TABLE}"),
        )
        .map(|_| ())
    }

    pub fn local_route(&self, on: bool) -> io::Result<()> {
        let op = if on { "add" } else { "del" };
        self.sh(
            Role::Lb,
            &format!(
                "ip route {op} local 0.0.0.0/0 dev lo table {TABLE} && ip -6 route {op} local ::/0 dev lo table {TABLE}"
            ),
        )
        .map(|_| ())
    }

    pub fn sysctl(&self, r: Role, key: &str, value: &str) -> io::Result<()> {
        self.sh(r, &format!("sysctl -qw {key}={value}")).map(|_| ())
    }

    /// Rules of the topology doc: socket match -> mark (v4 + v6), TPROXY of 10.10.7.0/24:80 to
    /// :8080 and of any :8000 to :8081 (v4); and IPv6 :8000 to :8082. `divert`: include the socket-match rule;
    /// `intercept`: include the TPROXY rules.
    pub fn firewall_rules(fw: Firewall, divert: bool, intercept: bool) -> (String, String) {
        match fw {
            Firewall::Iptables | Firewall::IptablesLegacy => {
                let mut v4 = String::from("*mangle\n:DIVERT - [0:0]\n");
                if divert {
                    v4.push_str("-A PREROUTING -p tcp -m socket -j DIVERT\n");
                }
                if intercept {
                    let _ = writeln!(
                        v4,
                        "-A PREROUTING -i lb-c -d 10.10.7.0/24 -p tcp -m tcp --dport 80 -j TPROXY --on-port 8080 --tproxy-mark {MARK:#x}/0xffffffff\n\
                         -A PREROUTING -i lb-c -p tcp -m tcp --dport 8000 -j TPROXY --on-port 8081 --tproxy-mark {MARK:#x}/0xffffffff"
                    );
                }
                let _ = writeln!(
                    v4,
                    "-A DIVERT -j MARK --set-xmark {MARK:#x}/0xffffffff\n-A DIVERT -j ACCEPT\nCOMMIT"
                );
                let mut v6 = String::from("*mangle\n:DIVERT - [0:0]\n");
                if divert {
                    v6.push_str("-A PREROUTING -p tcp -m socket -j DIVERT\n");
                }
                if intercept {
                    let _ = writeln!(
                        v6,
                        "-A PREROUTING -i lb-c -p tcp -m tcp --dport 8000 -j TPROXY --on-port 8082 --tproxy-mark {MARK:#x}/0xffffffff"
                    );
                }
                let _ = writeln!(
                    v6,
                    "-A DIVERT -j MARK --set-xmark {MARK:#x}/0xffffffff\n-A DIVERT -j ACCEPT\nCOMMIT"
                );
                (v4, v6)
            }
            Firewall::Nft => {
                let mut t = String::from(
                    "table inet rhx {\n  chain prerouting {\n    type filter hook prerouting priority mangle; policy accept;\n",
                );
                if divert {
                    let _ = writeln!(
                        t,
                        "    meta l4proto tcp socket transparent 1 meta mark set {MARK} accept"
                    );
                }
                if intercept {
                    let _ = writeln!(
                        t,
                        "    iifname \"lb-c\" ip daddr 10.10.7.0/24 tcp dport 80 tproxy ip to :8080 meta mark set {MARK} accept\n    \
                         iifname \"lb-c\" meta nfproto ipv4 tcp dport 8000 tproxy ip to :8081 meta mark set {MARK} accept\n    \
                         iifname \"lb-c\" meta nfproto ipv6 tcp dport 8000 tproxy ip6 to :8082 meta mark set {MARK} accept"
                    );
                }
                t.push_str("  }\n}\n");
                (t, String::new())
            }
        }
    }

    /// Load the firewall rules in the proxy namespace (replacing any loaded before).
    pub fn firewall(&self, fw: Firewall, divert: bool, intercept: bool) -> io::Result<()> {
        self.load_firewall(fw, divert, intercept).map_err(|e| {
            io::Error::other(format!(
                "loading {fw:?} TPROXY rules failed (does the kernel have TPROXY and socket-match \
                 support: nft_tproxy/nft_socket or xt_TPROXY/xt_socket?): {e}"
            ))
        })
    }

    fn load_firewall(&self, fw: Firewall, divert: bool, intercept: bool) -> io::Result<()> {
        self.firewall_flush()?;
        let (v4, v6) = Self::firewall_rules(fw, divert, intercept);
        match fw {
            Firewall::Iptables => {
                self.feed(Role::Lb, &["iptables-restore"], &v4)?;
                self.feed(Role::Lb, &["ip6tables-restore"], &v6)?;
            }
            Firewall::IptablesLegacy => {
                self.legacy_used.set(true);
                self.feed(Role::Lb, &["iptables-legacy-restore"], &v4)?;
                self.feed(Role::Lb, &["ip6tables-legacy-restore"], &v6)?;
            }
            Firewall::Nft => {
                self.feed(Role::Lb, &["nft", "-f", "-"], &v4)?;
            }
        }
        Ok(())
    }

    /// Remove every firewall rule of the proxy namespace (nft, iptables-nft, iptables-legacy).
    pub fn firewall_flush(&self) -> io::Result<()> {
        let mut s = String::from("nft flush ruleset 2>/dev/null;");
        for t in ["iptables-legacy", "ip6tables-legacy"] {
            if self.legacy_used.get() {
                let _ = write!(
                    s,
                    " {t} -t mangle -F 2>/dev/null; {t} -t mangle -X 2>/dev/null;"
                );
            }
        }
        s.push_str(" true");
        self.sh(Role::Lb, &s).map(|_| ())
    }

    /// Start a process in a namespace: `ip netns exec NS argv...`, in its own process group,
    /// stdout/stderr to files in the lab dir.
    pub fn spawn(&mut self, r: Role, name: &str, argv: &[&str]) -> io::Result<ProcId> {
        let stdout = self.dir.join(format!("{name}.out"));
        let stderr = self.dir.join(format!("{name}.err"));
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(r)])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout)?)
            .stderr(fs::File::create(&stderr)?)
            .process_group(0)
            .spawn()?;
        let pid = child.id();
        self.procs.push(Some(Proc {
            name: name.into(),
            role: r,
            pid,
            child,
            stdout,
            stderr,
        }));
        Ok(ProcId(self.procs.len() - 1))
    }

    /// The last `n` lines of every started proxy's stdout and stderr (for failure messages).
    pub fn proxy_logs(&self, n: usize) -> String {
        let mut out = String::new();
        for p in self.procs.iter().flatten().filter(|p| p.role == Role::Lb) {
            for (what, text) in [("stdout", p.stdout_text()), ("stderr", p.stderr_text())] {
                let lines: Vec<&str> = text.lines().collect();
                let tail = &lines[lines.len().saturating_sub(n)..];
                if !tail.is_empty() {
                    let _ = writeln!(out, "--- {} {what} (last {} lines)", p.name, tail.len());
                    for l in tail {
                        let _ = writeln!(out, "{l}");
                    }
                }
            }
        }
        out
    }

    pub fn proc(&self, id: ProcId) -> &Proc {
        self.procs[id.0].as_ref().expect("process already stopped")
    }

    /// Exit status if the process has ended.
    pub fn exited(&mut self, id: ProcId) -> Option<std::process::ExitStatus> {
        self.procs[id.0].as_mut()?.child.try_wait().ok().flatten()
    }

    /// SIGTERM the process group, then SIGKILL after 2 s; returns the exit status.
    pub fn stop(&mut self, id: ProcId) -> Option<std::process::ExitStatus> {
        let mut p = self.procs[id.0].take()?;
        stop_proc(&mut p)
    }

    /// Wait until a TCP listener on `port` exists in the namespace, or the process ends.
    pub fn wait_listen(&mut self, r: Role, id: ProcId, ports: &[u16]) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(st) = self.exited(id) {
                return Err(format!(
                    "{} exited with {st} before listening:\n{}",
                    self.proc(id).name,
                    self.proc(id).stderr_text()
                ));
            }
            let out = self
                .sh(r, "cat /proc/net/tcp /proc/net/tcp6")
                .unwrap_or_default();
            let listening = listening_ports(&out);
            if ports.iter().all(|p| listening.contains(p)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} not listening on {ports:?} after 5 s; stderr:\n{}",
                    self.proc(id).name,
                    self.proc(id).stderr_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// Start the socat peer-echo servers on srv1 and srv2, ports 80 and 8000, IPv4 + IPv6.
    pub fn start_echo_servers(&mut self) -> io::Result<()> {
        let script = self.dir.join("peer-echo.sh");
        for (r, name) in [(Role::Srv1, "srv1"), (Role::Srv2, "srv2")] {
            for port in [80u16, 8000] {
                let listen = format!("TCP6-LISTEN:{port},ipv6only=0,reuseaddr,fork");
                let exec = format!("EXEC:/bin/sh {} {name}", script.display());
                let id = self.spawn(
                    r,
                    &format!("echo-{name}-{port}"),
                    &["socat", "-T5", &listen, &exec],
                )?;
                self.wait_listen(r, id, &[port]).map_err(io::Error::other)?;
            }
        }
        // Warm the neighbour caches (ARP/ND) of the proxy and the servers, so the first spoofed
        // connection does not wait for address resolution.
        for dst in [
            "10.10.2.2:80",
            "10.10.2.3:80",
            "[fd00:2::2]:80",
            "[fd00:2::3]:80",
        ] {
            let dst: SocketAddr = dst.parse().unwrap();
            self.in_ns(Role::Lb, move || {
                http_get_here(None, dst, "/", Duration::from_secs(3), 1)
            })
            .map_err(|e| io::Error::other(format!("warm-up {dst}: {e}")))?;
        }
        Ok(())
    }

    /// Run `f` on a thread inside namespace `r` (sockets it opens live there; commands it
    /// spawns run there too).
    pub fn in_ns<T: Send + 'static>(&self, r: Role, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.ns(r));
        std::thread::spawn(move || {
            let fd = fs::File::open(&path).expect("open netns");
            nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    }

    /// HTTP/1.1 GET from namespace `r`, optionally from source address `src`.
    pub fn http_get(
        &self,
        r: Role,
        src: Option<IpAddr>,
        dst: SocketAddr,
        path: &str,
        timeout: Duration,
    ) -> io::Result<Response> {
        let path = path.to_string();
        self.in_ns(r, move || {
            http_get_here(src.map(|ip| SocketAddr::new(ip, 0)), dst, &path, timeout, 1)
        })
        .map(|mut v| v.remove(0))
    }

    /// `n` requests on one keep-alive client connection from `src` (IP and port).
    pub fn http_keepalive(
        &self,
        r: Role,
        src: Option<SocketAddr>,
        dst: SocketAddr,
        n: usize,
        timeout: Duration,
    ) -> io::Result<Vec<Response>> {
        self.in_ns(r, move || http_get_here(src, dst, "/", timeout, n))
    }
}

/// Blocking HTTP client used inside a namespace thread.
pub fn http_get_here(
    src: Option<SocketAddr>,
    dst: SocketAddr,
    path: &str,
    timeout: Duration,
    n: usize,
) -> io::Result<Vec<Response>> {
    let domain = if dst.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let sock = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
    if let Some(s) = src {
        sock.set_reuse_address(true)?;
        sock.bind(&s.into())?;
    }
    sock.connect_timeout(&dst.into(), timeout)?;
    sock.set_read_timeout(Some(timeout))?;
    let mut s: std::net::TcpStream = sock.into();
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for i in 0..n {
        let last = i + 1 == n;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {dst}\r\nUser-Agent: rhx-lab\r\n{}\r\n",
            if last { "Connection: close\r\n" } else { "" }
        );
        s.write_all(req.as_bytes())?;
        out.push(read_response(&mut s, &mut buf)?);
    }
    Ok(out)
}

fn read_response(s: &mut std::net::TcpStream, buf: &mut Vec<u8>) -> io::Result<Response> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let status: u16 = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| io::Error::other(format!("bad status line: {head}")))?;
            let clen = head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            });
            let body_start = end + 4;
            match clen {
                Some(len) => {
                    while buf.len() < body_start + len {
                        let k = s.read(&mut chunk)?;
                        if k == 0 {
                            return Err(io::ErrorKind::UnexpectedEof.into());
                        }
                        buf.extend_from_slice(&chunk[..k]);
                    }
                    let body =
                        String::from_utf8_lossy(&buf[body_start..body_start + len]).into_owned();
                    buf.drain(..body_start + len);
                    return Ok(Response { status, head, body });
                }
                None => {
                    loop {
                        let k = s.read(&mut chunk)?;
                        if k == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..k]);
                    }
                    let body = String::from_utf8_lossy(&buf[body_start..]).into_owned();
                    buf.clear();
                    return Ok(Response { status, head, body });
                }
            }
        }
        let k = s.read(&mut chunk)?;
        if k == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before a response",
            ));
        }
        buf.extend_from_slice(&chunk[..k]);
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// Ports in LISTEN state (st 0A) in /proc/net/tcp{,6} text.
pub fn listening_ports(text: &str) -> Vec<u16> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() > 3 && f[3] == "0A" {
                let port = f[1].rsplit(':').next()?;
                u16::from_str_radix(port, 16).ok()
            } else {
                None
            }
        })
        .collect()
}

fn run_ok(cmd: &mut Command) -> io::Result<Output> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{cmd:?} failed: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(out)
}

fn stop_proc(p: &mut Proc) -> Option<std::process::ExitStatus> {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    if let Ok(Some(st)) = p.child.try_wait() {
        // the leader is reaped; its group may still hold forked children
        let _ = killpg(Pid::from_raw(p.pid as i32), Signal::SIGKILL);
        return Some(st);
    }
    // The child is not reaped, so its pid (= process group id) cannot have been reused.
    let _ = killpg(Pid::from_raw(p.pid as i32), Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if let Ok(Some(st)) = p.child.try_wait() {
            let _ = killpg(Pid::from_raw(p.pid as i32), Signal::SIGKILL);
            return Some(st);
        }
        if Instant::now() > deadline {
            let _ = killpg(Pid::from_raw(p.pid as i32), Signal::SIGKILL);
            return p.child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for p in self
            .procs
            .iter_mut()
            .filter_map(Option::take)
            .collect::<Vec<_>>()
            .iter_mut()
        {
            stop_proc(p);
        }
        for ns in self.namespaces.iter().rev() {
            // Deleting the namespace removes its links, rules, routes and firewall tables.
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        if std::thread::panicking() {
            eprintln!("lab {}: logs kept in {}", self.prefix, self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Path helper for config files written into the lab dir.
pub fn write_file(dir: &Path, name: &str, text: &str) -> io::Result<PathBuf> {
    let p = dir.join(name);
    fs::write(&p, text)?;
    Ok(p)
}

impl Lab {
    /// Write `cfg` to the lab dir and start `proxy -db -f <cfg>` (HAProxy or rhaproxy) in the
    /// proxy namespace; waits until every port in `ports` listens. Err carries stderr.
    pub fn start_proxy(
        &mut self,
        proxy: &str,
        name: &str,
        cfg: &str,
        ports: &[u16],
    ) -> Result<ProcId, String> {
        let path = write_file(&self.dir, &format!("{name}.cfg"), cfg).map_err(|e| e.to_string())?;
        let id = self
            .spawn(
                Role::Lb,
                name,
                &[proxy, "-db", "-f", path.to_str().unwrap()],
            )
            .map_err(|e| e.to_string())?;
        self.wait_listen(Role::Lb, id, ports)?;
        Ok(id)
    }

    /// Run a proxy to completion (e.g. `-c`, or a start that must fail) with a timeout.
    pub fn run_proxy(
        &mut self,
        proxy: &str,
        name: &str,
        cfg: &str,
        extra: &[&str],
        timeout: Duration,
    ) -> (Option<i32>, String, String) {
        let path = write_file(&self.dir, &format!("{name}.cfg"), cfg).unwrap();
        let mut argv = vec![proxy];
        argv.extend_from_slice(extra);
        argv.extend_from_slice(&["-f", path.to_str().unwrap()]);
        let id = self.spawn(Role::Lb, name, &argv).unwrap();
        let deadline = Instant::now() + timeout;
        let st = loop {
            if let Some(st) = self.exited(id) {
                break Some(st);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let (out, err) = (self.proc(id).stdout_text(), self.proc(id).stderr_text());
        self.stop(id);
        (st.and_then(|s| s.code()), out, err)
    }
}

impl ProcId {
    /// The n-th process started in a lab.
    pub fn nth(n: usize) -> ProcId {
        ProcId(n)
    }
}

impl Lab {
    /// Make 10.10.7.7 and 10.10.7.200 real: addresses on srv2 (its `lo`) and a route to
    /// 10.10.7.0/24 via srv2 in the proxy namespace. With it, a `server x 0.0.0.0` behind the
    /// TPROXY target of 10.10.7.0/24 can connect to the original destination, and the echo
    /// server prints it as `local=`. Without the TPROXY rule, the same traffic is routed
    /// straight to srv2 (not intercepted).
    pub fn intercept_range_on_srv2(&self) -> io::Result<()> {
        self.sh(
            Role::Srv2,
            "ip addr add 10.10.7.7/32 dev lo && ip addr add 10.10.7.200/32 dev lo",
        )?;
        self.sh(Role::Lb, "ip route add 10.10.7.0/24 via 10.10.2.3")
            .map(|_| ())
    }

    /// Start `argv` (a proxy and its arguments, e.g. `[rhaproxy, "-db", "-f", path]`) in the
    /// proxy namespace and wait until every port in `ports` listens.
    pub fn start_proxy_argv(
        &mut self,
        name: &str,
        argv: &[&str],
        ports: &[u16],
    ) -> Result<ProcId, String> {
        let id = self
            .spawn(Role::Lb, name, argv)
            .map_err(|e| e.to_string())?;
        self.wait_listen(Role::Lb, id, ports)?;
        Ok(id)
    }

    /// Run a command to completion in namespace `r` with a timeout: (exit code, stdout, stderr).
    pub fn run_argv(
        &mut self,
        r: Role,
        name: &str,
        argv: &[&str],
        timeout: Duration,
    ) -> (Option<i32>, String, String) {
        let id = self.spawn(r, name, argv).unwrap();
        let deadline = Instant::now() + timeout;
        let st = loop {
            if let Some(st) = self.exited(id) {
                break Some(st);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let (out, err) = (self.proc(id).stdout_text(), self.proc(id).stderr_text());
        self.stop(id);
        (st.and_then(|s| s.code()), out, err)
    }

    /// `/proc/<pid>/status` of a started process's real process (the `ip netns exec` child
    /// execs the command, so the recorded PID is the proxy itself).
    pub fn proc_status(&self, id: ProcId) -> String {
        fs::read_to_string(format!("/proc/{}/status", self.proc(id).pid)).unwrap_or_default()
    }
}
