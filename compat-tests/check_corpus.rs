//! `rhaproxy -c` on real public configs (../shared/corpus, with HAProxy 2.6's verdicts in
//! VERDICTS.tsv). The corpus is not part of the project: the test says it is skipped when the
//! folder is absent (a user's clone), and runs wherever it exists.
//!
//! Rules: every config HAProxy rejects, rhaproxy rejects with an alert at the file:line of
//! HAProxy's first alert; every config HAProxy accepts, rhaproxy accepts, or rejects only with
//! "not supported by rhaproxy" errors (never a false syntax error).

use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    p.join("VERDICTS.tsv").exists().then_some(p)
}

struct Row {
    file: String,
    exit: i32,
    first_alert: String,
}

fn rows(dir: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(dir.join("VERDICTS.tsv")).unwrap();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Some(Row {
                file: f.first()?.to_string(),
                exit: f.get(1)?.parse().ok()?,
                first_alert: f.get(4).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

/// `file:line` inside the first `[...]` of a message.
fn loc_of(msg: &str) -> Option<String> {
    let i = msg.find('[')?;
    let rest = &msg[i + 1..];
    let j = rest.find(']')?;
    let l = &rest[..j];
    l.contains(':').then(|| l.to_string())
}

#[test]
fn corpus_verdicts() {
    let Some(dir) = corpus() else {
        println!(
            "SKIPPED: ../shared/corpus is absent (it is not part of the project); nothing to compare."
        );
        return;
    };
    let bin = env!("CARGO_BIN_EXE_rhaproxy");
    let (mut rej_ok, mut rej_total, mut acc_ok, mut acc_unsupported, mut acc_total) =
        (0, 0, 0, 0, 0);
    let mut failures = Vec::new();
    for r in rows(&dir) {
        let out = Command::new(bin)
            .current_dir(&dir)
            .args(["-c", "-f", &r.file])
            .output()
            .unwrap();
        let code = out.status.code().unwrap_or(-1);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let alerts: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("[ALERT]"))
            .collect();
        if r.exit == 1 {
            rej_total += 1;
            let want = loc_of(&r.first_alert);
            let hit = code == 1
                && match &want {
                    Some(w) => alerts.iter().any(|a| {
                        loc_of(a.split(" : config : ").nth(1).unwrap_or(a)).as_deref() == Some(w)
                    }),
                    None => true,
                };
            if hit {
                rej_ok += 1;
            } else {
                failures.push(format!(
                    "{}: HAProxy rejects at {:?}; rhaproxy exit {code}:\n{}",
                    r.file, want, stderr
                ));
            }
        } else {
            acc_total += 1;
            if code == r.exit {
                acc_ok += 1;
                continue;
            }
            let real: Vec<&&str> = alerts
                .iter()
                .filter(|a| {
                    !a.contains("not supported by rhaproxy")
                        && !a.contains("Error(s) found in configuration file")
                        && !a.contains("Fatal errors found in configuration")
                })
                .collect();
            if code == 1 && real.is_empty() {
                acc_unsupported += 1;
            } else {
                failures.push(format!(
                    "{}: HAProxy exit {}; rhaproxy exit {code}:\n{}",
                    r.file, r.exit, stderr
                ));
            }
        }
    }
    println!(
        "corpus: rejected by HAProxy {rej_total}, rejected by rhaproxy at the same line {rej_ok}; accepted by HAProxy {acc_total}: same verdict {acc_ok}, rejected only as not supported {acc_unsupported}"
    );
    assert!(
        failures.is_empty(),
        "{} corpus mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
