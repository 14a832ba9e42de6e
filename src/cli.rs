//! Command line, with HAProxy's flags and habits.
//!
//! HAProxy packs several letters after one dash (`-vv`, `-dW`, `-sf PID...`); clap does not, so
//! those spellings are rewritten to long options before clap sees them.

use crate::config;
use crate::diag::{Diags, Severity};
use clap::{ArgAction, Parser};

#[derive(Parser, Debug, Default)]
#[command(
    name = "rhaproxy",
    disable_version_flag = true,
    disable_help_flag = true,
    about = "A drop-in replacement for HAProxy 2.6 with checked transparent proxying"
)]
pub struct Args {
    /// Configuration file or directory (repeatable; a directory loads its *.cfg files in order).
    #[arg(short = 'f', action = ArgAction::Append, value_name = "FILE|DIR")]
    pub files: Vec<String>,
    /// Check the configuration and exit (0 valid, 1 errors, 2 no listener).
    #[arg(short = 'c')]
    pub check: bool,
    /// Quiet: print nothing during startup.
    #[arg(short = 'q')]
    pub quiet: bool,
    /// Verbose: cancels quiet.
    #[arg(short = 'V')]
    pub verbose: bool,
    /// Print the version.
    #[arg(short = 'v')]
    pub version: bool,
    /// Print the version and build features (`-vv`).
    #[arg(long = "vv", hide = true)]
    pub build_info: bool,
    /// Warnings are fatal (`-dW`).
    #[arg(long = "zero-warning", hide = true)]
    pub zero_warning: bool,
    /// Diagnostic mode (`-dD`).
    #[arg(long = "diag-mode", hide = true)]
    pub diag_mode: bool,
    /// Foreground (`-db`) and debug (`-d`).
    #[arg(long = "foreground", hide = true)]
    pub foreground: bool,
    #[arg(short = 'd')]
    pub debug: bool,
    /// Daemon mode.
    #[arg(short = 'D')]
    pub daemon: bool,
    /// Master-worker mode (`-W`).
    #[arg(short = 'W')]
    pub master_worker: bool,
    /// Master-worker mode with systemd notifications (`-Ws`).
    #[arg(long = "master-systemd", hide = true)]
    pub master_systemd: bool,
    /// Master CLI listener (`-S`): accepted, not served yet.
    #[arg(short = 'S', value_name = "BIND")]
    pub master_cli: Option<String>,
    /// Fetch the listening sockets from the old process's stats socket (`-x`).
    #[arg(short = 'x', value_name = "SOCKET")]
    pub xfer: Option<String>,
    /// Evaluate a `.if` condition (`-cc EXPR`): exit 0 true, 1 false, 2 error.
    #[arg(long = "cc", hide = true, value_name = "EXPR")]
    pub cond: Option<String>,
    /// Global maxconn override.
    #[arg(short = 'n')]
    pub maxconn: Option<u32>,
    /// Default per-proxy maxconn.
    #[arg(short = 'N')]
    pub proxy_maxconn: Option<u32>,
    /// Change directory before loading files.
    #[arg(short = 'C')]
    pub chdir: Option<String>,
    /// Pid file.
    #[arg(short = 'p')]
    pub pidfile: Option<String>,
    /// Local peer name.
    #[arg(short = 'L')]
    pub localpeer: Option<String>,
    /// Soft-stop these pids after start (`-sf`).
    #[arg(long = "sf", num_args = 1.., hide = true)]
    pub soft_finish: Vec<u32>,
    /// Hard-stop these pids after start (`-st`).
    #[arg(long = "st", num_args = 1.., hide = true)]
    pub hard_terminate: Vec<u32>,
    /// Check the host for what the configuration's transparent parts need (`-ct`): policy
    /// routing, firewall socket/TPROXY rules, sysctls, capabilities. Exit 0 ready, 1 not.
    #[arg(long = "check-transparency", hide = true)]
    pub check_host: bool,
    /// Print docs/compatibility.md generated from the keyword tables.
    #[arg(long = "dump-compat", hide = true)]
    pub dump_compat: bool,
    /// Show help.
    #[arg(short = 'h', long = "help")]
    pub help: bool,
    /// Files given after `--`.
    #[arg(last = true)]
    pub rest: Vec<String>,
}

/// Rewrites HAProxy's multi-letter single-dash flags into long options clap understands.
pub fn normalize(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut after_dashdash = false;
    for a in args {
        if after_dashdash {
            out.push(a);
            continue;
        }
        let mapped = match a.as_str() {
            "--" => {
                after_dashdash = true;
                "--"
            }
            "-vv" => "--vv",
            "-dW" => "--zero-warning",
            "-dD" => "--diag-mode",
            "-db" => "--foreground",
            "-cc" => "--cc",
            "-ct" => "--check-transparency",
            "-sf" => "--sf",
            "-Ws" => "--master-systemd",
            "-st" => "--st",
            // Accepted for compatibility; they only select pollers, splicing or reuse options.
            "-de" | "-dp" | "-dk" | "-dv" | "-dS" | "-dR" | "-dG" | "-dV" | "-dr" | "-dL" => {
                continue;
            }
            _ => a.as_str(),
        };
        out.push(mapped.to_string());
    }
    out
}

const USAGE: &str =
    "Usage : rhaproxy [-f <cfgfile|cfgdir>]* [ -vdVD ] [ -n <maxconn> ] [ -N <maxpconn> ]
        [ -p <pidfile> ] [ -m <max megs> ] [ -C <dir> ] [-- <cfgfile>*]
        -v displays version ; -vv shows known build options.
        -d enters debug mode ; -db only disables background mode.
        -dW fails if any warning is emitted
        -dD diagnostic mode : warn about suspicious configuration statements
        -V enters verbose mode (disables quiet mode)
        -D goes daemon ; -C changes to <dir> before loading files.
        -W master-worker mode ; -Ws master-worker with systemd notify support.
        -q quiet mode : don't display messages
        -c check mode : only check config files and exit
        -cc check condition : evaluate a condition and exit
        -ct check transparency : check the config, then the host's TPROXY plumbing, and exit
        -n sets the maximum total # of connections (uses ulimit -n)
        -N sets the default, per-proxy maximum # of connections
        -p writes pids of all children to this file
        -sf/-st [pid ]* finishes/terminates old pids.
        -x <unix_socket> get listening sockets from a unix socket
        --dump-compat prints docs/compatibility.md from the keyword tables
";

fn version_line() -> String {
    format!(
        "rhaproxy version {} - compatible with HAProxy {} configurations\n",
        config::build_info::RHAPROXY_VERSION,
        config::build_info::HAPROXY_VERSION
    )
}

fn build_info() -> String {
    let mut s = version_line();
    s.push_str(&format!(
        "Running on: {} {}\n\nFeature list : {}\n\n",
        std::env::consts::OS,
        std::env::consts::ARCH,
        config::build_info::FEATURES.join(" ")
    ));
    s.push_str(&format!(
        "Built with multi-threading support (default={}).\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    ));
    s.push_str("Built with transparent proxy support using: IP_TRANSPARENT IPV6_TRANSPARENT IP_BIND_ADDRESS_NO_PORT\n");
    s.push_str("Transparent binds fail loudly when IP_TRANSPARENT is refused (no fallback to IP_FREEBIND).\n");
    s.push_str("Built without SSL, Lua, PCRE, compression.\n");
    s
}

pub fn main() -> i32 {
    let argv: Vec<String> = std::env::args().collect();
    run(argv)
}

pub fn run(argv: Vec<String>) -> i32 {
    let orig_argv = argv.clone();
    let args = match Args::try_parse_from(normalize(argv)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{}", e.to_string().lines().next().unwrap_or(""));
            eprint!("{USAGE}");
            return 1;
        }
    };
    if args.help {
        eprint!("{USAGE}");
        return 1;
    }
    if args.dump_compat {
        print!("{}", crate::compat_doc::render());
        return 0;
    }
    if args.build_info {
        print!("{}", build_info());
        return 0;
    }
    if args.version {
        print!("{}", version_line());
        return 0;
    }
    if let Some(expr) = &args.cond {
        return match config::cond::eval(expr, &|v| std::env::var_os(v).is_some()) {
            Ok(true) => 0,
            Ok(false) => 1,
            Err(e) => {
                eprintln!("Failed to evaluate condition: {}", e.msg);
                2
            }
        };
    }
    if let Some(dir) = &args.chdir {
        if let Err(e) = std::env::set_current_dir(dir) {
            eprintln!(
                "[ALERT]    ({}) : Cannot chdir to {dir} : {e}",
                std::process::id()
            );
            return 1;
        }
    }
    let mut files = args.files.clone();
    files.extend(args.rest.iter().cloned());
    if files.is_empty() {
        print!("{}", version_line());
        eprint!("{USAGE}");
        return 1;
    }
    let mut diags = Diags::new(args.quiet && !args.verbose);
    diags.show_diag = args.diag_mode;
    if let Some(l) = &args.localpeer {
        config::validate::set_cli_localpeer(l);
    }
    let (cfg, verdict) = match load(&files, &mut diags) {
        Some(x) => x,
        None => return 1,
    };
    if cfg.global.quiet && !args.verbose {
        diags.quiet = true;
    }
    let zero_warning = args.zero_warning || cfg.global.zero_warning;
    if zero_warning && diags.warnings > 0 {
        diags.alert(
            None,
            "Some warnings were found and 'zero-warning' is set. Aborting.",
        );
        return 1;
    }
    if args.check_host {
        let report = crate::tproxy::from_ir::check_host(&cfg);
        print!("{report}");
        return report.exit_status();
    }
    if args.check {
        let out = |s: &str| {
            if !diags.quiet {
                println!("{s}");
            }
        };
        if !verdict.has_listener {
            out("Configuration file has no error but will not start (no listener) => exit(2).");
            return 2;
        }
        if diags.warnings > 0 {
            out("Warnings were found.");
        }
        out("Configuration file is valid");
        return 0;
    }
    if !verdict.has_listener {
        diags.startup(
            Severity::Alert,
            "[rhaproxy.main()] No enabled listener found (disabled ? no bind ?). Exiting.",
        );
        return 1;
    }
    let worker = std::env::var_os("RHAPROXY_WORKER").is_some();
    if let (Some(s), false) = (&args.master_cli, worker) {
        diags.startup(
            Severity::Warning,
            format!(
                "-S {s}: the master CLI is not supported by rhaproxy yet; use a 'stats socket'."
            ),
        );
    }
    if !worker && (args.master_worker || args.master_systemd || cfg.global.master_worker.is_some())
    {
        use crate::runtime::ops;
        return ops::run_master(ops::Master {
            worker_args: ops::worker_args(&orig_argv),
            files,
            systemd: args.master_systemd,
            daemon: (args.daemon || cfg.global.daemon.is_some()) && !args.master_systemd,
            pidfile: args
                .pidfile
                .clone()
                .or(cfg.global.pidfile.as_ref().map(|p| p.value.clone())),
            cfg,
        });
    }
    let opts = crate::runtime::RunOpts {
        maxconn: args.maxconn,
        proxy_maxconn: args.proxy_maxconn,
        pidfile: args.pidfile.clone(),
        daemon: (args.daemon || cfg.global.daemon.is_some())
            && !args.foreground
            && !args.debug
            && !worker,
        soft_finish: args.soft_finish.clone(),
        hard_terminate: args.hard_terminate.clone(),
        ops: crate::runtime::ops::OpsOpts {
            xfer: args.xfer.clone(),
            worker,
        },
    };
    crate::runtime::run_with(cfg, &mut diags, &opts)
}

/// Parses and checks the configuration; `None` when it has fatal errors (already reported).
pub fn load(
    files: &[String],
    diags: &mut Diags,
) -> Option<(config::ir::Config, config::validate::Verdict)> {
    let files = config::expand_paths(files, diags)?;
    let mut cfg = config::parse_files(&files, diags).ok()?;
    if diags.fatal {
        diags.alert(None, "Fatal errors found in configuration.");
        return None;
    }
    let verdict = config::validate::check(&mut cfg, diags);
    if diags.fatal {
        diags.alert(None, "Fatal errors found in configuration.");
        return None;
    }
    Some((cfg, verdict))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &[&str]) -> Args {
        Args::try_parse_from(normalize(v.iter().map(|s| s.to_string()))).unwrap()
    }

    #[test]
    fn haproxy_flags() {
        let a = parse(&["rhaproxy", "-c", "-f", "a.cfg", "-f", "dir", "-q", "-dW"]);
        assert!(a.check && a.quiet && a.zero_warning);
        assert_eq!(a.files, vec!["a.cfg", "dir"]);
        assert!(parse(&["rhaproxy", "-vv"]).build_info);
        assert!(parse(&["rhaproxy", "-v"]).version);
        let a = parse(&["rhaproxy", "-f", "x", "-sf", "12", "13", "-c"]);
        assert_eq!(a.soft_finish, vec![12, 13]);
        assert!(a.check);
        let a = parse(&["rhaproxy", "-c", "--", "x.cfg", "-y.cfg"]);
        assert_eq!(a.rest, vec!["x.cfg", "-y.cfg"]);
    }
}
