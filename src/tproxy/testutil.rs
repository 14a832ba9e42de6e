//! Helpers for unit tests that need root: a private network namespace per test thread.

use std::process::Command;

pub(crate) fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Run `f` on a new thread that has its own, fresh network namespace with `lo` up. The
/// namespace disappears with the thread. `None` (and a SKIPPED line) when not root.
pub(crate) fn in_new_netns<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    if !is_root() {
        skipped(&format!(
            "SKIPPED (needs root and network namespaces): {what}"
        ));
        return None;
    }
    let h = std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        let st = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .expect("run ip");
        assert!(st.success(), "ip link set lo up");
        f()
    });
    Some(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
}

/// Print straight to stderr (libtest's capture would hide an `eprintln!` of a passing test).
pub(crate) fn skipped(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}
