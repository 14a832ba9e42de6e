//! `rhaproxy -c` against HAProxy 2.6 on the project's own configs (compat-tests/configs/).
//!
//! - golden: rhaproxy's stdout, stderr and exit code equal the recording of real HAProxy 2.6
//!   (`NAME.haproxy`, made by `compat-tests/record-haproxy.sh`), or `NAME.rhaproxy` where
//!   rhaproxy differs on purpose (transparency rules; see docs/compatibility.md);
//! - differential: when `haproxy` is installed, it is run live on the same files; exit codes and
//!   the set of (file:line, severity) must agree, except for the deliberate differences.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("compat-tests/configs")
}

/// stdout, stderr and exit code, normalised like record-haproxy.sh does.
fn run_check(bin: &str, dir: &Path, file: &str) -> String {
    let out = Command::new(bin)
        .current_dir(dir)
        .args(["-c", "-f", file])
        .env_remove("RHX_NEVER_SET_VAR")
        .output()
        .expect("run checker");
    normalise(
        &String::from_utf8_lossy(&out.stdout),
        &String::from_utf8_lossy(&out.stderr),
        out.status.code().unwrap_or(-1),
    )
}

fn normalise(stdout: &str, stderr: &str, code: i32) -> String {
    let mut s = String::new();
    for l in stdout.lines().filter(|l| !l.is_empty()) {
        s.push_str(&format!("stdout: {l}\n"));
    }
    for l in stderr.lines() {
        if l.contains("version is ") || l.contains("path to executable is") {
            continue;
        }
        s.push_str(&format!("stderr: {}\n", mask_label(l)));
    }
    s.push_str(&format!("exit: {code}\n"));
    s
}

/// `[ALERT]    (1234) : ` -> `[ALERT] (PID) : `
fn mask_label(l: &str) -> String {
    if let Some(rest) = l.strip_prefix('[') {
        if let Some((label, tail)) = rest.split_once(']') {
            let tail = tail.trim_start();
            if let Some(t) = tail.strip_prefix('(') {
                if let Some((pid, after)) = t.split_once(')') {
                    if pid.chars().all(|c| c.is_ascii_digit()) {
                        return format!("[{label}] (PID){after}");
                    }
                }
            }
        }
    }
    l.to_string()
}

fn cfg_files() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(configs_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".cfg"))
        .collect();
    v.sort();
    v
}

#[test]
fn golden_outputs_match_haproxy_recordings() {
    let dir = configs_dir();
    let bin = env!("CARGO_BIN_EXE_rhaproxy");
    let mut failures = Vec::new();
    let files = cfg_files();
    assert!(
        files.len() >= 25,
        "expected the golden configs, found {}",
        files.len()
    );
    for f in &files {
        let stem = f.trim_end_matches(".cfg");
        let own = dir.join(format!("{stem}.rhaproxy"));
        let expected_path = if own.exists() {
            own
        } else {
            dir.join(format!("{stem}.haproxy"))
        };
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("no recording for {f}: run compat-tests/record-haproxy.sh"));
        let got = run_check(bin, &dir, f);
        if got != expected {
            failures.push(format!(
                "== {f}\n-- expected ({})\n{expected}-- got\n{got}",
                expected_path.display()
            ));
        }
    }
    println!(
        "{} configs compared with recordings, {} differ",
        files.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// (file:line, severity) pairs found in a normalised output, plus the exit code.
fn locations(out: &str) -> (BTreeSet<(String, String)>, String) {
    let mut set = BTreeSet::new();
    let mut code = String::new();
    for l in out.lines() {
        if let Some(c) = l.strip_prefix("exit: ") {
            code = c.to_string();
        }
        let sev = if l.contains("[ALERT]") {
            "alert"
        } else if l.contains("[WARNING]") {
            "warning"
        } else {
            continue;
        };
        let loc = l
            .find("parsing [")
            .or_else(|| l.find("Parsing ["))
            .map(|i| &l[i + 9..])
            .or_else(|| l.find(": [").map(|i| &l[i + 3..]))
            .and_then(|t| t.split_once(']').map(|(a, _)| a.to_string()))
            .unwrap_or_else(|| "-".into());
        set.insert((loc, sev.to_string()));
    }
    (set, code)
}

#[test]
fn differential_against_live_haproxy() {
    if Command::new("haproxy").arg("-v").output().is_err() {
        println!("SKIPPED: haproxy is not installed (CI installs it); the golden test still ran.");
        return;
    }
    let dir = configs_dir();
    let bin = env!("CARGO_BIN_EXE_rhaproxy");
    let mut failures = Vec::new();
    let mut compared = 0;
    for f in cfg_files() {
        let stem = f.trim_end_matches(".cfg");
        let live = run_check("haproxy", &dir, &f);
        let recorded =
            std::fs::read_to_string(dir.join(format!("{stem}.haproxy"))).unwrap_or_default();
        if live != recorded {
            failures.push(format!(
                "{f}: the recording is stale, re-run record-haproxy.sh"
            ));
        }
        if dir.join(format!("{stem}.rhaproxy")).exists() {
            continue; // deliberate difference, checked by the golden test
        }
        compared += 1;
        let ours = run_check(bin, &dir, &f);
        let (a, ca) = locations(&live);
        let (b, cb) = locations(&ours);
        if a != b || ca != cb {
            failures.push(format!(
                "{f}: haproxy exit {ca} {a:?}\n  rhaproxy exit {cb} {b:?}"
            ));
        }
    }
    println!(
        "{compared} configs compared live with haproxy, {} failures",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
