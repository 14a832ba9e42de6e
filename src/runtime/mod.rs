//! The proxy runtime, built from the checked IR.

use crate::config::ir::Config;
use crate::diag::{Diags, Severity};

/// Runs the configuration in the foreground; returns the process exit status.
pub fn run(_cfg: Config, diags: &mut Diags) -> i32 {
    diags.startup(
        Severity::Alert,
        "[rhaproxy.main()] The proxy runtime is not built yet in this version: only `-c` works.",
    );
    1
}
