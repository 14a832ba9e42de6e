//! Bad input to `rhaproxy -c`: a clear message and exit 1, never a panic or a hang.
//! Also checks that docs/compatibility.md matches the keyword tables.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_rhaproxy")
}

/// Runs `rhaproxy -c -f path` with a deadline; returns (exit code, stderr).
fn check_file(path: &std::path::Path, deadline: Duration) -> (i32, String) {
    let mut child = Command::new(bin())
        .args(["-c", "-f"])
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (st.code().unwrap_or(-1), err);
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            panic!("rhaproxy -c hung on {}", path.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn write_tmp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rhx-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::File::create(&p).unwrap().write_all(bytes).unwrap();
    p
}

fn assert_clean_error(name: &str, bytes: &[u8]) -> String {
    let p = write_tmp(name, bytes);
    let (code, err) = check_file(&p, Duration::from_secs(60));
    assert_eq!(code, 1, "{name}: expected exit 1, stderr:\n{err}");
    assert!(!err.contains("panicked"), "{name}: panic:\n{err}");
    assert!(err.contains("[ALERT]"), "{name}: no alert:\n{err}");
    err
}

#[test]
fn random_bytes_and_non_utf8() {
    // A deterministic xorshift stream, so failures reproduce.
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut buf = Vec::with_capacity(64 * 1024);
    for _ in 0..64 * 1024 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf.push((x & 0xff) as u8);
    }
    buf.push(b'\n');
    assert_clean_error("random.cfg", &buf);
    let err = assert_clean_error(
        "latin1.cfg",
        b"global\n    log-tag caf\xe9\n    bogus\xff\xfe 1\n",
    );
    assert!(err.contains("latin1.cfg:3"), "{err}");
}

#[test]
fn ten_megabyte_line() {
    let mut v = b"global\n    log-tag ".to_vec();
    v.extend(std::iter::repeat_n(b'a', 10 * 1024 * 1024));
    v.extend_from_slice(b" extra\nfrontend\n");
    let err = assert_clean_error("long.cfg", &v);
    assert!(err.contains("long.cfg:3"), "{}", &err[..err.len().min(500)]);
}

#[test]
fn hundred_thousand_sections() {
    let mut s = String::from(
        "defaults\n    timeout client 1s\n    timeout connect 1s\n    timeout server 1s\n",
    );
    for i in 0..100_000 {
        s.push_str(&format!(
            "backend b{i}\n    server s 127.0.0.1:{}\n",
            1 + i % 60000
        ));
    }
    s.push_str("frontend f\n    bind 127.0.0.1:18150\n    default_backend nope\n");
    let p = write_tmp("many.cfg", s.as_bytes());
    let (code, err) = check_file(&p, Duration::from_secs(120));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("unable to find required default_backend: 'nope'"),
        "{err}"
    );
}

#[test]
fn unterminated_quotes_and_missing_files() {
    let err = assert_clean_error(
        "quote.cfg",
        b"global\n    log-tag \"abc\n    log-tag 'def\n",
    );
    assert!(
        err.contains("quote.cfg:2]: unmatched quote")
            && err.contains("quote.cfg:3]: unmatched quote"),
        "{err}"
    );
    let out = Command::new(bin())
        .args(["-c", "-f", "/nonexistent/rhx.cfg"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("Cannot open configuration file/directory /nonexistent/rhx.cfg : No such file or directory"), "{e}");
    let out = Command::new(bin())
        .args(["-c", "-f", "/nonexistent-dir/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = Command::new(bin()).args(["-c"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "no -f: usage and exit 1");
}

#[test]
fn directory_loads_cfg_files_in_byte_order() {
    let dir = std::env::temp_dir().join(format!("rhx-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("20-a.cfg"), "global\n    bogus20\n").unwrap();
    std::fs::write(dir.join("10-b.cfg"), "global\n    bogus10\n").unwrap();
    std::fs::write(dir.join(".30-h.cfg"), "global\n    hidden\n").unwrap();
    std::fs::write(dir.join("40-x.conf"), "global\n    notcfg\n").unwrap();
    let out = Command::new(bin())
        .arg("-c")
        .arg("-f")
        .arg(&dir)
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    let (a, b) = (e.find("bogus10").unwrap(), e.find("bogus20").unwrap());
    assert!(a < b, "10-b.cfg must be read before 20-a.cfg:\n{e}");
    assert!(!e.contains("hidden") && !e.contains("notcfg"), "{e}");
}

#[test]
fn quiet_and_zero_warning() {
    let p = write_tmp("warn.cfg", b"frontend fe\n    bind 127.0.0.1:18151\n");
    let out = Command::new(bin())
        .arg("-c")
        .arg("-q")
        .arg("-f")
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "-q prints nothing"
    );
    let out = Command::new(bin())
        .arg("-c")
        .arg("-dW")
        .arg("-f")
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Some warnings were found and 'zero-warning' is set. Aborting.")
    );
}

#[test]
fn compatibility_doc_is_generated_from_the_tables() {
    let out = Command::new(bin()).arg("--dump-compat").output().unwrap();
    let want = String::from_utf8(out.stdout).unwrap();
    let have = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/compatibility.md"
    ))
    .unwrap();
    assert!(
        want == have,
        "docs/compatibility.md is out of date: run `cargo run -- --dump-compat > docs/compatibility.md`"
    );
    assert!(want.contains("not supported yet (error)") && want.contains("| `bind` |"));
}

#[test]
fn tproxy_seed_sample_checks_valid_and_server_close_is_refused() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let seed = root.join("samples/tproxy-seed.cfg");
    let out = Command::new(bin())
        .arg("-c")
        .arg("-f")
        .arg(&seed)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Configuration file is valid"
    );
    // The same farm with `option http-server-close` in defaults.
    let text = std::fs::read_to_string(&seed).unwrap().replace(
        "    timeout server 30s\n",
        "    timeout server 30s\n    option http-server-close\n",
    );
    let p = write_tmp("seed-server-close.cfg", text.as_bytes());
    let (code, err) = check_file(&p, Duration::from_secs(30));
    assert_eq!(code, 1);
    assert!(
        err.contains("backend 'farm' spoofs the client address")
            && err.contains("Fix: add 'no option http-server-close' to backend 'farm'"),
        "{err}"
    );
    assert!(
        err.contains("frontend 'vip' routes to backend 'farm'"),
        "{err}"
    );
}
