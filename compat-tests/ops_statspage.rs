//! The stats page opened in a real headless Chromium: every proxy and server appears with the
//! state `show stat` gives; a server put in maintenance through the page's own form (submitted
//! by Chromium) is in MAINT on the stats socket and gets no more traffic. Also: `;csv` against
//! `show stat`, Basic authentication (401 as HAProxy's), `stats hide-version`.
//!
//! Without Chromium the browser parts print SKIPPED (CI installs Debian's `chromium`).

#[path = "support/rt.rs"]
mod rt;

use rt::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const USER: &str = "admin";
const PASS: &str = "s3cret";
const URI: &str = "/admin/stats";

fn cmd(sock: &Path, c: &str) -> String {
    let mut s = UnixStream::connect(sock).unwrap_or_else(|e| panic!("connect {sock:?}: {e}"));
    s.set_read_timeout(Some(SOON)).unwrap();
    s.write_all(format!("{c}\n").as_bytes()).unwrap();
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn rows(csv: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = csv.lines();
    let header = lines
        .next()
        .unwrap_or("")
        .trim_start_matches("# ")
        .split(',')
        .map(String::from)
        .collect();
    let rows = lines
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    (header, rows)
}

/// `(proxy, server, status)` of every `show stat` row.
fn states(sock: &Path) -> Vec<(String, String, String)> {
    let (h, r) = rows(&cmd(sock, "show stat"));
    let st = h.iter().position(|c| c == "status").unwrap();
    r.iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[st].clone()))
        .collect()
}

fn b64(s: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn get(port: u16, path: &str, auth: Option<(&str, &str)>) -> Resp {
    let mut c = HttpConn::connect(port).unwrap();
    let a = auth
        .map(|(u, p)| format!("Authorization: Basic {}\r\n", b64(&format!("{u}:{p}"))))
        .unwrap_or_default();
    c.request(&format!("GET {path} HTTP/1.1\r\nHost: t\r\n{a}\r\n"))
        .unwrap()
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| which(c))
}

/// Runs headless Chromium on `url`; returns the dumped DOM.
fn chromium_run(exe: &str, dir: &TempDir, extra: &[String], url: &str) -> String {
    let profile = dir.0.join(format!("chromium-{}", extra.len()));
    let out_path = dir.0.join("dom.html");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = Command::new(exe)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s on {url}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::read_to_string(&out_path).unwrap_or_default()
}

/// `data-proxy`/`data-server`/`data-state` of every table row of the rendered DOM.
fn dom_rows(dom: &str) -> Vec<(String, String, String)> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let k = format!("{name}=\"");
        let i = tag.find(&k)? + k.len();
        let j = tag[i..].find('"')? + i;
        Some(
            tag[i..j]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&amp;", "&"),
        )
    };
    dom.split("<tr ")
        .skip(1)
        .filter_map(|t| {
            let tag = &t[..t.find('>')?];
            Some((
                attr(tag, "data-proxy")?,
                attr(tag, "data-server")?,
                attr(tag, "data-state")?,
            ))
        })
        .collect()
}

struct Lab {
    dir: TempDir,
    proxy: ProxyProc,
    stats: u16,
    web: u16,
    _servers: Vec<Backend>,
}

fn config(dir: &TempDir, p: &[u16], admin: &str) -> String {
    let d = dir.0.display();
    format!(
        "global
    stats socket {d}/admin.sock level admin
    stats socket {d}/user.sock level user
    node lab-node-1
    description Lab global desc
defaults
    mode http
    log stdout format raw local0
    log-format \"%ft %b/%s %ST %tsc %{{+Q}}r\"
    timeout connect 2s
    timeout client 20s
    timeout server 20s
listen stats
    bind 127.0.0.1:{stats}
    description The lab proxy
    stats enable
    stats uri {URI}
    stats realm Lab\\ Stats
    stats auth {USER}:{PASS}
    {admin}
    stats refresh 30s
    stats hide-version
    stats show-node
    stats show-desc
    stats show-legends
frontend web
    bind 127.0.0.1:{web}
    default_backend app
backend app
    balance roundrobin
    server a1 127.0.0.1:{a1}
    server a2 127.0.0.1:{a2}
backend api
    server b1 127.0.0.1:{b1}
    server b2 127.0.0.1:{b2} disabled
",
        stats = p[0],
        web = p[1],
        a1 = p[2],
        a2 = p[3],
        b1 = p[4],
        b2 = p[5],
    )
}

fn lab(imp: Impl) -> Lab {
    lab_with(imp, "acl local src 127.0.0.0/8\n    stats admin if local")
}

fn lab_with(imp: Impl, admin: &str) -> Lab {
    let dir = TempDir::new("ops-statspage");
    let p = free_ports(6);
    let servers = vec![
        Backend::start("a1", p[2], Behavior::Http),
        Backend::start("a2", p[3], Behavior::Http),
        Backend::start("b1", p[4], Behavior::Http),
        Backend::start("b2", p[5], Behavior::Http),
    ];
    let cfg = config(&dir, &p, admin);
    let proxy = ProxyProc::start(imp, &dir, &cfg, &[p[0], p[1]]);
    Lab {
        dir,
        proxy,
        stats: p[0],
        web: p[1],
        _servers: servers,
    }
}

fn who(port: u16, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let mut c = HttpConn::connect(port).unwrap();
            c.get("/").unwrap().server()
        })
        .collect()
}

/// Basic authentication: the 401 answers are HAProxy's, byte for byte.
#[test]
fn authentication_and_hidden_version() {
    let mut answers = Vec::new();
    for imp in Impl::all("authentication_and_hidden_version") {
        let lab = lab(imp);
        let none = get(lab.stats, URI, None);
        assert_eq!(none.status, 401, "{imp:?}");
        assert_eq!(
            none.header("www-authenticate").as_deref(),
            Some("Basic realm=\"Lab Stats\""),
            "{imp:?}"
        );
        let wrong = get(lab.stats, URI, Some((USER, "nope")));
        assert_eq!(wrong.status, 401, "{imp:?}");
        let ok = get(lab.stats, URI, Some((USER, PASS)));
        assert_eq!(ok.status, 200, "{imp:?}");
        assert_eq!(ok.header("refresh").as_deref(), Some("30"), "{imp:?}");
        let csv = get(
            lab.stats,
            &format!("{URI};csv;norefresh"),
            Some((USER, PASS)),
        );
        assert_eq!(csv.status, 200);
        assert_eq!(csv.header("refresh"), None, "{imp:?} ;norefresh");
        assert!(
            csv.header("content-type")
                .unwrap()
                .starts_with("text/plain")
        );
        // Not the page: goes to the server.
        let other = get(lab.stats, "/admin/other", Some((USER, PASS)));
        assert_eq!(other.status, 503, "{imp:?}: a listen without servers");
        if imp == Impl::Rhaproxy {
            let version = cmd(&lab.dir.0.join("admin.sock"), "show info")
                .lines()
                .find_map(|l| l.strip_prefix("Version: ").map(String::from))
                .unwrap();
            let page = ok.body_str();
            assert!(!page.contains(&version), "hide-version: {version} shown");
            assert!(page.contains("lab-node-1"), "show-node");
            assert!(page.contains("Lab global desc"), "show-desc");
            assert!(page.contains("The lab proxy"), "proxy description");
        }
        // The log lines: `stats/<STATS>`, `LR--` as HAProxy.
        let mut logs = Vec::new();
        wait_until("five log lines", SOON, || {
            logs = lab
                .proxy
                .stdout()
                .lines()
                .filter(|l| l.starts_with("stats "))
                .map(String::from)
                .collect();
            logs.len() >= 5
        });
        // Lines of different connections may come in any order.
        logs.sort();
        answers.push((
            imp,
            none.head.clone(),
            none.body_str(),
            csv.body_str().lines().next().unwrap_or("").to_string(),
            logs,
        ));
    }
    // HAProxy logs its 401 challenge with status 400.
    let challenge = format!("stats stats/<STATS> 400 LR-- \"GET {URI} HTTP/1.1\"");
    assert!(answers[0].4.contains(&challenge), "{:?}", answers[0].4);
    if let [ours, theirs] = &answers[..] {
        assert_eq!(ours.1, theirs.1, "401 head");
        assert_eq!(ours.2, theirs.2, "401 body");
        assert_eq!(ours.3, theirs.3, ";csv header line");
        assert_eq!(ours.4, theirs.4, "log lines");
    }
}

/// `;csv` is `show stat` at user level (rows of the page's own proxy aside: the request
/// itself counts there).
#[test]
fn csv_export_is_show_stat() {
    let lab = lab(Impl::Rhaproxy);
    let user = lab.dir.0.join("user.sock");
    let _ = who(lab.web, 4);
    // The clients have left, but the proxy sees their closes a moment later: wait until the
    // frontend counts no session (`scur`), so that both reads below see the same state.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (h, r) = rows(&cmd(&user, "show stat"));
        let scur = h.iter().position(|c| c == "scur").expect("scur column");
        let web = r.iter().find(|r| r[0] == "web" && r[1] == "FRONTEND");
        if web.is_some_and(|r| r[scur] == "0") || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let csv = get(lab.stats, &format!("{URI};csv"), Some((USER, PASS))).body_str();
    let sock = cmd(&user, "show stat");
    let (h1, r1) = rows(&csv);
    let (h2, r2) = rows(&sock);
    assert_eq!(h1, h2);
    let volatile = ["lastchg", "rate", "conn_rate", "req_rate", "lastsess"];
    let mask = |r: &[Vec<String>]| -> Vec<Vec<String>> {
        r.iter()
            .filter(|r| r[0] != "stats")
            .map(|r| {
                r.iter()
                    .zip(&h1)
                    .map(|(v, c)| {
                        if volatile.contains(&c.as_str()) {
                            "*".into()
                        } else {
                            v.clone()
                        }
                    })
                    .collect()
            })
            .collect()
    };
    assert_eq!(mask(&r1), mask(&r2));
    assert_eq!(mask(&r1).len(), 7, "web FE, app a1 a2 BE, api b1 b2 BE");
    let addr = h1.iter().position(|c| c == "addr").unwrap();
    assert!(
        r1.iter().all(|r| r[addr].is_empty()),
        "user level: no address"
    );
    // `;up` hides the server in maintenance.
    let up = get(lab.stats, &format!("{URI};csv;up"), Some((USER, PASS))).body_str();
    assert!(!up.contains("api,b2,"), "{up}");
    assert!(csv.contains("api,b2,"));
}

#[test]
fn page_in_headless_chromium() {
    let Some(exe) = chromium() else {
        println!(
            "SKIPPED page_in_headless_chromium: chromium is not installed (apt-get install chromium)"
        );
        return;
    };
    let lab = lab(Impl::Rhaproxy);
    let admin = lab.dir.0.join("admin.sock");
    // Some traffic so that the counters are not all zero.
    let seen = who(lab.web, 6);
    assert!(seen.contains(&"a1".to_string()) && seen.contains(&"a2".to_string()));

    let url = format!("http://{USER}:{PASS}@127.0.0.1:{}{URI}", lab.stats);
    let shot_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/statspage");
    std::fs::create_dir_all(&shot_dir).unwrap();
    let shot = shot_dir.join("stats-page.png");
    let _ = std::fs::remove_file(&shot);
    let dom = chromium_run(
        exe,
        &lab.dir,
        &[
            "--dump-dom".into(),
            format!("--screenshot={}", shot.display()),
            "--window-size=1400,1300".into(),
            "--hide-scrollbars".into(),
        ],
        &url,
    );
    assert!(
        dom.contains("rhaproxy statistics"),
        "page not rendered: {dom:.300}"
    );
    let shown = dom_rows(&dom);
    let expected = states(&admin);
    for (px, sv, st) in &expected {
        assert!(
            shown.iter().any(|(p, s, t)| p == px && s == sv && t == st),
            "{px}/{sv} in state {st} is not on the page; rendered rows: {shown:?}"
        );
    }
    for px in ["stats", "web", "app", "api"] {
        assert!(dom.contains(&format!("id=\"px-{px}\"")), "proxy {px}");
    }
    assert!(expected.contains(&("api".into(), "b2".into(), "MAINT".into())));
    assert!(shot.exists(), "no screenshot at {}", shot.display());
    println!("screenshot: {}", shot.display());

    // Put a1 in maintenance through the page's own form, submitted by Chromium: the page as
    // served, with a1 ticked and "maint" chosen, submits itself on load.
    let page = get(lab.stats, URI, Some((USER, PASS))).body_str();
    assert!(page.contains("id=\"form-app\""), "no admin form for app");
    let driven = page
        .replacen(
            "<head>",
            &format!(
                "<head><base href=\"http://{USER}:{PASS}@127.0.0.1:{}/\">",
                lab.stats
            ),
            1,
        )
        .replacen(
            "name=\"s\" value=\"a1\"",
            "name=\"s\" value=\"a1\" checked",
            1,
        )
        .replacen(
            "<option value=\"maint\">",
            "<option value=\"maint\" selected>",
            1,
        )
        .replacen(
            "</body>",
            "<script>document.getElementById('form-app').submit()</script></body>",
            1,
        );
    assert!(driven.contains("value=\"a1\" checked"));
    let file = lab.dir.write("drive.html", &driven);
    let after = chromium_run(
        exe,
        &lab.dir,
        &["--dump-dom".into()],
        &format!("file://{}", file.display()),
    );
    assert!(
        after.contains("id=\"action-status\""),
        "the form submission did not come back to the page: {after:.400}"
    );
    assert!(after.contains("Action processed successfully"));
    let now = states(&admin);
    assert!(
        now.contains(&("app".into(), "a1".into(), "MAINT".into())),
        "a1 not in MAINT on the stats socket: {now:?}"
    );
    assert!(
        dom_rows(&after).contains(&("app".into(), "a1".into(), "MAINT".into())),
        "the page after the action does not show a1 in MAINT"
    );
    let seen = who(lab.web, 8);
    assert!(
        seen.iter().all(|s| s == "a2"),
        "traffic still goes to a1: {seen:?}"
    );

    // Back to ready with a plain POST (as the form sends it): a1 takes traffic again.
    let iid = {
        let (h, r) = rows(&cmd(&admin, "show stat"));
        let i = h.iter().position(|c| c == "iid").unwrap();
        r.iter().find(|r| r[0] == "app").unwrap()[i].clone()
    };
    let body = format!("s=a1&action=ready&b=%23{iid}");
    let mut c = HttpConn::connect(lab.stats).unwrap();
    let r = c
        .request(&format!(
            "POST {URI} HTTP/1.1\r\nHost: t\r\nAuthorization: Basic {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            b64(&format!("{USER}:{PASS}")),
            body.len()
        ))
        .unwrap();
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location").as_deref(),
        Some(&*format!("{URI};st=DONE"))
    );
    let seen = who(lab.web, 4);
    assert!(seen.contains(&"a1".to_string()), "{seen:?}");
    // Without the password, no action.
    let mut c = HttpConn::connect(lab.stats).unwrap();
    let body = format!("s=a2&action=maint&b=%23{iid}");
    let r = c
        .request(&format!(
            "POST {URI} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
        .unwrap();
    assert_eq!(r.status, 401);
    assert!(states(&admin).contains(&("app".into(), "a2".into(), "no check".into())));
}

/// Without `stats admin` granted, the page has no form and a POST changes nothing
/// (`;st=DENY`), as HAProxy.
#[test]
fn administration_needs_the_admin_condition() {
    let mut locations = Vec::new();
    for imp in Impl::all("administration_needs_the_admin_condition") {
        let lab = lab_with(imp, "stats admin unless LOCALHOST");
        let admin = lab.dir.0.join("admin.sock");
        let page = get(lab.stats, URI, Some((USER, PASS))).body_str();
        if imp == Impl::Rhaproxy {
            assert!(!page.contains("<form method=\"post\""), "admin form shown");
        }
        let iid = {
            let (h, r) = rows(&cmd(&admin, "show stat"));
            let i = h.iter().position(|c| c == "iid").unwrap();
            r.iter().find(|r| r[0] == "app").unwrap()[i].clone()
        };
        let body = format!("s=a1&action=maint&b=%23{iid}");
        let mut c = HttpConn::connect(lab.stats).unwrap();
        let r = c
            .request(&format!(
                "POST {URI} HTTP/1.1\r\nHost: t\r\nAuthorization: Basic {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                b64(&format!("{USER}:{PASS}")),
                body.len()
            ))
            .unwrap();
        assert_eq!(r.status, 303, "{imp:?}");
        locations.push(r.header("location"));
        assert!(
            states(&admin).contains(&("app".into(), "a1".into(), "no check".into())),
            "{imp:?}: a1 changed without admin rights"
        );
    }
    assert_eq!(locations[0].as_deref(), Some(&*format!("{URI};st=DENY")));
    if locations.len() == 2 {
        assert_eq!(locations[0], locations[1]);
    }
}

/// `stats uri` in a backend: the page answers requests routed to that backend, as HAProxy.
#[test]
fn stats_page_declared_in_a_backend() {
    let mut seen = Vec::new();
    for imp in Impl::all("stats_page_declared_in_a_backend") {
        let dir = TempDir::new("ops-statspage-be");
        let p = free_ports(2);
        let _srv = Backend::start("s", p[1], Behavior::Http);
        let cfg = format!(
            "defaults
    mode http
    timeout connect 2s
    timeout client 20s
    timeout server 20s
frontend fe
    bind 127.0.0.1:{fe}
    default_backend be
backend be
    stats uri /be-stats
    server s 127.0.0.1:{s}
",
            fe = p[0],
            s = p[1]
        );
        let _proxy = ProxyProc::start(imp, &dir, &cfg, &[p[0]]);
        let page = get(p[0], "/be-stats;csv", None);
        let other = get(p[0], "/other", None);
        assert_eq!(page.status, 200, "{imp:?}");
        assert_eq!(other.server(), "s", "{imp:?}");
        let rows: Vec<String> = page
            .body_str()
            .lines()
            .skip(1)
            .map(|l| l.split(',').take(2).collect::<Vec<_>>().join("/"))
            .collect();
        seen.push(rows);
    }
    assert_eq!(seen[0], ["fe/FRONTEND", "be/s", "be/BACKEND"]);
    if seen.len() == 2 {
        assert_eq!(seen[0], seen[1]);
    }
}
