//! The files of `samples/tproxy/`, loaded exactly as they are in the proxy namespace of the lab
//! (`tproxy_netns`; the samples use the lab's addresses and interface names):
//! `policy-routing.sh`, `nftables.conf` or `iptables.rules` + `ip6tables.rules`, and
//! `rhaproxy.service`, whose ExecStartPre checks and ExecStart run (paths replaced by the
//! test's, under the unit's capability bounding set) with `haproxy.cfg`.
//! Needs root; otherwise every test prints `SKIPPED (needs root and network namespaces): ...`.

#[path = "support/netns.rs"]
mod netns;

use netns::{Lab, ProcId, Role};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

const RHAPROXY: &str = env!("CARGO_BIN_EXE_rhaproxy");
const T: Duration = Duration::from_secs(3);

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}
fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples/tproxy")
}

fn sample(name: &str) -> String {
    samples().join(name).to_str().unwrap().to_string()
}

fn get(lab: &Lab, src: Option<&str>, dst: &str) -> netns::Echo {
    let r = lab
        .http_get(Role::Client, src.map(ip), sa(dst), "/", T)
        .unwrap_or_else(|e| panic!("GET {dst} from {src:?}: {e}\n{}", lab.proxy_logs(8)));
    assert_eq!(r.status, 200, "GET {dst}: {r:?}");
    r.echo()
        .unwrap_or_else(|| panic!("no peer-echo body: {r:?}"))
}

fn fails(lab: &Lab, dst: &str) -> bool {
    match lab.http_get(Role::Client, None, sa(dst), "/", T) {
        Ok(r) => r.status != 200,
        Err(_) => true,
    }
}

/// The service as systemd would run it: (ExecStartPre command lines, ExecStart, bounding set
/// for setpriv, no-new-privs).
struct Unit {
    pre: Vec<Vec<String>>,
    start: Vec<String>,
    bounding: String,
    no_new_privs: bool,
    kill_signal: String,
}

/// Read `rhaproxy.service`, replacing /usr/sbin/rhaproxy by the built binary, /etc/rhaproxy/
/// by the samples directory, and expanding the unit's `Environment=` variables.
fn unit() -> Unit {
    let text = std::fs::read_to_string(samples().join("rhaproxy.service")).unwrap();
    let dir = format!("{}/", samples().display());
    let mut env: Vec<(String, String)> = Vec::new();
    let mut u = Unit {
        pre: Vec::new(),
        start: Vec::new(),
        bounding: String::new(),
        no_new_privs: false,
        kill_signal: "SIGTERM".into(),
    };
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let mut v = v
            .replace("/usr/sbin/rhaproxy", RHAPROXY)
            .replace("/etc/rhaproxy/", &dir);
        for (name, value) in &env {
            v = v
                .replace(&format!("${{{name}}}"), value)
                .replace(&format!("${name}"), value);
        }
        let argv = || v.split_whitespace().map(String::from).collect::<Vec<_>>();
        match k {
            "Environment" => {
                let (n, val) = v.split_once('=').unwrap();
                let val = val.replace("/etc/rhaproxy/", &dir);
                env.push((n.to_string(), val));
            }
            "ExecStartPre" => u.pre.push(argv()),
            "ExecStart" => u.start = argv(),
            "CapabilityBoundingSet" => {
                let caps: Vec<String> = v
                    .split_whitespace()
                    .map(|c| format!("+{}", c.to_ascii_lowercase().trim_start_matches("cap_")))
                    .collect();
                u.bounding = format!("--bounding-set=-all,{}", caps.join(","));
            }
            "NoNewPrivileges" => u.no_new_privs = v == "yes",
            "KillSignal" => u.kill_signal = v.clone(),
            _ => {}
        }
    }
    assert!(!u.pre.is_empty() && !u.start.is_empty() && !u.bounding.is_empty());
    u
}

impl Unit {
    fn wrap(&self, cmd: &[String]) -> Vec<String> {
        let mut argv = vec!["setpriv".to_string()];
        if self.no_new_privs {
            argv.push("--no-new-privs".into());
        }
        argv.push(self.bounding.clone());
        argv.extend(cmd.iter().cloned());
        argv
    }
}

/// Run the unit's ExecStartPre lines (each must exit 0) and start its ExecStart.
fn start_service(lab: &mut Lab, u: &Unit) -> ProcId {
    for (i, cmd) in u.pre.iter().enumerate() {
        let argv = u.wrap(cmd);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let (rc, out, err) =
            lab.run_argv(Role::Lb, &format!("pre{i}"), &argv, Duration::from_secs(10));
        assert_eq!(rc, Some(0), "ExecStartPre {cmd:?}:\n{out}{err}");
        if cmd.iter().any(|a| a == "-ct") {
            assert!(
                out.starts_with("transparent proxying host check: READY"),
                "{out}"
            );
        }
    }
    let argv = u.wrap(&u.start);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    lab.start_proxy_argv("rhaproxy", &argv, &[80, 8081, 8082])
        .unwrap_or_else(|e| panic!("ExecStart: {e}"))
}

/// Drop forwarded client->server traffic to port 8000 (a lab guard, not part of the samples):
/// a request to a server's port 8000 that succeeds was intercepted by the proxy.
fn guard_forwarding(lab: &Lab) {
    lab.feed(
        Role::Lb,
        &["nft", "-f", "-"],
        "table inet labguard {\n  chain forward {\n    type filter hook forward priority filter; policy accept;\n    tcp dport 8000 drop\n  }\n}\n",
    )
    .unwrap();
}

/// Every path of samples/tproxy/haproxy.cfg.
fn check_farm(lab: &Lab) {
    // two VIPs (one frontend each) to the same servers: client IP seen, same server per client
    let mut servers = std::collections::BTreeSet::new();
    for i in 2..=9 {
        let src = format!("10.10.1.{i}");
        let a = get(lab, Some(&src), "10.10.9.9:80");
        let b = get(lab, Some(&src), "10.10.9.10:80");
        assert_eq!((a.peer.ip(), b.peer.ip()), (ip(&src), ip(&src)), "VIPs");
        assert_eq!(a.name, b.name, "balance source, same backend, for {src}");
        servers.insert(a.name);
    }
    assert_eq!(servers.len(), 2, "{servers:?}");
    // HTTP keep-alive: 3 requests on one client connection, each from the client's IP
    let src: SocketAddr = sa("10.10.1.5:0");
    let rs = lab
        .http_keepalive(Role::Client, Some(src), sa("10.10.9.10:80"), 3, T)
        .unwrap_or_else(|e| panic!("keep-alive: {e}\n{}", lab.proxy_logs(8)));
    for r in &rs {
        let e = r.echo().unwrap_or_else(|| panic!("keep-alive: {rs:?}"));
        assert_eq!(e.peer.ip(), src.ip(), "keep-alive: {e:?}");
    }
    // IPv6 VIP
    let e = get(lab, None, "[fd00:9::9]:80");
    assert_eq!(e.peer.ip(), ip("fd00:1::2"), "{e:?}");
    assert!(e.local.ip().to_string().starts_with("fd00:2::"), "{e:?}");
    // interception of the servers' port 8000, IPv4 and IPv6
    let e = get(lab, Some("10.10.1.7"), "10.10.2.3:8000");
    assert_eq!(
        (e.peer.ip(), e.local),
        (ip("10.10.1.7"), sa("10.10.2.3:8000"))
    );
    let e = get(lab, None, "[fd00:2::2]:8000");
    assert_eq!(
        (e.peer.ip(), e.local),
        (ip("fd00:1::2"), sa("[fd00:2::2]:8000"))
    );
}

fn soft_stop(lab: &mut Lab, id: ProcId, signal: &str) {
    use nix::sys::signal::{Signal, kill};
    let sig: Signal = signal.parse().expect("KillSignal");
    kill(nix::unistd::Pid::from_raw(lab.proc(id).pid as i32), sig).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while lab.exited(id).is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let st = lab.exited(id).expect("stopped by KillSignal");
    assert_eq!(st.code(), Some(0), "{signal}: {st:?}");
}

enum Rules {
    Nft,
    Iptables,
}

fn run_samples(rules: Rules, test: &str) {
    if !netns::can_run(test) || !netns::which("setpriv") {
        return;
    }
    let mut lab = Lab::up(test).expect("lab up");
    // only the samples' plumbing: none of the lab's
    lab.policy_routing(false).unwrap();
    lab.firewall_flush().unwrap();
    lab.sh(
        Role::Lb,
        "sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0",
    )
    .unwrap();
    guard_forwarding(&lab);
    lab.start_echo_servers().unwrap();

    // policy-routing.sh, twice: idempotent
    let pr = sample("policy-routing.sh");
    lab.sh(Role::Lb, &format!("{pr} up && {pr} up")).unwrap();
    let rules_v4 = lab
        .sh(Role::Lb, "ip -4 rule; ip -4 route show table 100")
        .unwrap();
    assert_eq!(
        rules_v4.matches("fwmark 0x1 lookup 100").count(),
        1,
        "{rules_v4}"
    );
    assert!(rules_v4.contains("local default dev lo"), "{rules_v4}");
    match rules {
        Rules::Nft => {
            let f = sample("nftables.conf");
            // loading twice replaces the table
            lab.sh(Role::Lb, &format!("nft -f {f} && nft -f {f}"))
                .unwrap();
            let rs = lab.sh(Role::Lb, "nft list table inet rhaproxy").unwrap();
            assert_eq!(rs.matches("socket transparent 1").count(), 1, "{rs}");
        }
        Rules::Iptables => {
            lab.sh(
                Role::Lb,
                &format!(
                    "iptables-restore < {} && ip6tables-restore < {}",
                    sample("iptables.rules"),
                    sample("ip6tables.rules")
                ),
            )
            .unwrap();
        }
    }

    // with no proxy running, the guard stops direct client->server traffic to port 8000
    assert!(fails(&lab, "10.10.2.3:8000"), "the forwarding guard works");

    let u = unit();
    let id = start_service(&mut lab, &u);
    check_farm(&lab);
    let st = lab.proc_status(id);
    let uid = st
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .unwrap_or("")
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    assert_eq!(uid, "65534", "runs as nobody:\n{st}");

    // `policy-routing.sh down`: the VIPs fail, -ct names the four missing pieces
    lab.sh(Role::Lb, &format!("{pr} down")).unwrap();
    assert!(fails(&lab, "10.10.9.9:80"));
    assert!(fails(&lab, "[fd00:9::9]:80"));
    let cfg = sample("haproxy.cfg");
    let (rc, out, _) = lab.run_argv(
        Role::Lb,
        "ct-down",
        &[RHAPROXY, "-ct", "-f", &cfg],
        Duration::from_secs(10),
    );
    assert_eq!(rc, Some(1), "{out}");
    for id in [
        "ipv4-fwmark-rule",
        "ipv4-local-route",
        "ipv6-fwmark-rule",
        "ipv6-local-route",
    ] {
        assert!(out.contains(&format!("[MISSING] {id}")), "{id}:\n{out}");
    }
    assert!(
        out.contains("fix: ip rule add fwmark 1 lookup 100"),
        "{out}"
    );
    lab.sh(Role::Lb, &format!("{pr} up")).unwrap();
    check_farm(&lab);

    soft_stop(&mut lab, id, &u.kill_signal);
}

#[test]
fn samples_nftables() {
    run_samples(Rules::Nft, "samples_nftables");
}

#[test]
fn samples_iptables() {
    run_samples(Rules::Iptables, "samples_iptables");
}

/// The unit file parses cleanly (`systemd-analyze verify`, with the paths replaced).
#[test]
fn samples_unit_verifies() {
    if !netns::which("systemd-analyze") {
        netns::skipped("SKIPPED (needs systemd-analyze): samples_unit_verifies");
        return;
    }
    let dir = std::env::temp_dir().join(format!("rhx-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(samples().join("rhaproxy.service"))
        .unwrap()
        .replace("/usr/sbin/rhaproxy", RHAPROXY)
        .replace("/etc/rhaproxy/", &format!("{}/", samples().display()));
    let path = dir.join("rhaproxy.service");
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", path.to_str().unwrap()])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("rhaproxy.service"), "{err}");
}

/// `rhaproxy -c` accepts haproxy.cfg as it is.
#[test]
fn samples_config_checks() {
    let out = std::process::Command::new(RHAPROXY)
        .args(["-c", "-f", &sample("haproxy.cfg")])
        .output()
        .unwrap();
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).as_ref()
        ),
        (Some(0), "Configuration file is valid\n"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
