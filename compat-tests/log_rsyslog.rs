//! rhaproxy logging to a real syslog daemon: Debian's rsyslogd started on its own config, pid
//! file, unix socket (imuxsock) and UDP port (imudp) in a temp dir, writing to a file (the
//! system rsyslog is never touched). Traffic through rhaproxy must show up in that file, one
//! line per request, over both transports, with the facility/level, the tag and the httplog text.
//! Skipped (with a printed notice) when rsyslogd is not installed.

#[path = "support/rt.rs"]
mod rt;

use rt::*;
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

/// Our own rsyslogd, killed by its PID on drop.
struct Rsyslog {
    child: Child,
    out: std::path::PathBuf,
    sock: std::path::PathBuf,
    port: u16,
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Rsyslog {
    fn start(dir: &TempDir) -> Rsyslog {
        let sock = dir.0.join("log.sock");
        let out = dir.0.join("out.log");
        let port = {
            let u = UdpSocket::bind("127.0.0.1:0").unwrap();
            u.local_addr().unwrap().port()
        };
        let conf = format!(
            r#"global(workDirectory="{d}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{s}" RateLimit.Interval="0" CreatePath="on")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{port}" RateLimit.Interval="0")
template(name="t" type="string" string="%syslogfacility-text%.%syslogseverity-text% %programname% [%procid%]%msg%\n")
*.* action(type="omfile" file="{o}" template="t")
"#,
            d = dir.0.display(),
            s = sock.display(),
            o = out.display()
        );
        let conf_path = dir.write("rsyslog.conf", &conf);
        let err = std::fs::File::create(dir.0.join("rsyslogd.stderr")).unwrap();
        let child = Command::new(RSYSLOGD)
            .arg("-n")
            .arg("-f")
            .arg(&conf_path)
            .arg("-i")
            .arg(dir.0.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(err))
            .spawn()
            .expect("start rsyslogd");
        let mut r = Rsyslog {
            child,
            out,
            sock,
            port,
        };
        r.wait_ready(dir);
        r
    }

    /// Sends probes over both transports until both are in the output file.
    fn wait_ready(&mut self, dir: &TempDir) {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let end = Instant::now() + SOON;
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "rsyslogd exited with {st}: {}",
                    read_file(&dir.0.join("rsyslogd.stderr"))
                );
            }
            let _ = udp.send_to(b"<134>probe[1]: udp-ready\n", ("127.0.0.1", self.port));
            if let Ok(u) = UnixDatagram::unbound() {
                let _ = u.send_to(b"<134>probe[1]: unix-ready\n", &self.sock);
            }
            let text = self.text();
            if text.contains("udp-ready") && text.contains("unix-ready") {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "rsyslogd not ready; stderr: {}",
            read_file(&dir.0.join("rsyslogd.stderr"))
        );
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn lines_with(&self, needle: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect()
    }
}

fn installed() -> bool {
    if Path::new(RSYSLOGD).exists() {
        true
    } else {
        println!("SKIPPED: rsyslogd not installed");
        false
    }
}

#[test]
fn rsyslogd_receives_httplog_over_unix_socket_and_udp() {
    if !installed() {
        return;
    }
    let dir = TempDir::new("rsyslog");
    let rs = Rsyslog::start(&dir);
    let p = free_ports(2);
    let _b = Backend::start("s1", p[1], Behavior::Http);
    let cfg = format!(
        "global
    log {sock} local0
    log 127.0.0.1:{udp} local1 notice
defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:{fe}
    default_backend be
backend be
    server s1 127.0.0.1:{be} check inter 100 fall 1 rise 1
",
        sock = rs.sock.display(),
        udp = rs.port,
        fe = p[0],
        be = p[1]
    );
    let mut proxy = ProxyProc::start(Impl::Rhaproxy, &dir, &cfg, &[p[0]]);
    const N: usize = 40;
    let mut c = HttpConn::connect(p[0]).unwrap();
    for i in 0..N {
        let r = c.get(&format!("/req/{i}")).unwrap();
        assert_eq!(r.status, 200);
        // One line at a time: rsyslog's unix socket queues only `net.unix.max_dgram_qlen`
        // (10) datagrams, and a burst beyond that is dropped (and counted) by the
        // non-blocking sender, as HAProxy does, when rsyslogd lags on a loaded machine.
        wait_until("the request's line in rsyslog's file", SOON, || {
            rs.lines_with(&format!("\"GET /req/{i} HTTP/1.1\"")).len() == 1
        });
    }
    drop(c);
    // Traffic (info) goes to local0 over the unix socket only: local1 takes notice and above.
    wait_until("all request lines in rsyslog's file", SOON, || {
        rs.lines_with("GET /req/").len() >= N
    });
    let lines = rs.lines_with("GET /req/");
    assert_eq!(lines.len(), N, "{lines:#?}");
    for (i, l) in lines.iter().enumerate() {
        assert!(
            l.starts_with(&format!("local0.info haproxy [{}] 127.0.0.1:", proxy.pid())),
            "{l}"
        );
        assert!(
            l.contains(" fe be/s1 ")
                && l.contains(" 200 ")
                && l.ends_with(&format!("\"GET /req/{i} HTTP/1.1\"")),
            "{l}"
        );
    }
    // Events: the backend's server going DOWN reaches both targets (alert >= notice).
    drop(_b);
    wait_until("server DOWN over both transports", SOON, || {
        rs.lines_with("be/s1 is DOWN").len() >= 2
    });
    let down = rs.lines_with("be/s1 is DOWN");
    assert!(
        down.iter().any(|l| l.starts_with("local0.alert haproxy ")),
        "{down:#?}"
    );
    assert!(
        down.iter().any(|l| l.starts_with("local1.alert haproxy ")),
        "{down:#?}"
    );
    wait_until("no server available over both transports", SOON, || {
        rs.lines_with("backend be has no server available!").len() >= 2
    });
    let emerg = rs.lines_with("backend be has no server available!");
    assert!(
        emerg.iter().all(|l| l.contains(".emerg haproxy ")),
        "{emerg:#?}"
    );
    // Soft stop: `Proxy X stopped` at warning on both.
    proxy.signal(nix::sys::signal::Signal::SIGUSR1 as i32);
    assert!(proxy.wait_exit(SOON).is_some());
    wait_until("proxy stop events", SOON, || {
        rs.lines_with("Proxy be stopped").len() >= 2
    });
    let stop = rs.lines_with("Proxy fe stopped (cumulated conns: FE: 1, BE: 0).");
    assert_eq!(stop.len(), 2, "{}", rs.text());
    assert!(
        stop.iter().all(|l| l.contains(".warning haproxy ")),
        "{stop:#?}"
    );
    assert!(
        !proxy.stderr().contains("dropped"),
        "no line dropped: {}",
        proxy.stderr()
    );
}
