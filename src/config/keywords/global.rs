//! Keywords of the `global` section.

use super::{DocRow, LineCtx, Status};
use crate::config::ir::{CliLevel, Global, Located, StatsAddr, StatsSocket};
use crate::config::values::{parse_time_ms, parse_uint};

pub type GlobalParse = fn(&mut LineCtx, &mut Global, &[String]);

use Status::{Implemented as I, NoEffect as N, Unsupported as U};

const TUNING: &str = "a tuning knob; rhaproxy sizes this itself";
const SSL: &str = "rhaproxy has no TLS yet; SSL defaults only matter to `ssl` binds and servers, which are refused";

/// `(name, status, parser)`; names ending in `.` match any keyword with that prefix (`tune.`).
pub static GLOBAL_KEYWORDS: &[(&str, Status, Option<GlobalParse>)] = &[
    ("51degrees-", U, None),
    ("ca-base", N(SSL), None),
    ("chroot", I, Some(g_chroot)),
    (
        "cluster-secret",
        N("only used by features rhaproxy lacks (QUIC)"),
        None,
    ),
    (
        "cpu-map",
        N("rhaproxy lets the kernel place its threads"),
        None,
    ),
    ("crt-base", N(SSL), None),
    ("daemon", I, Some(g_daemon)),
    ("default-path", I, Some(g_default_path)),
    ("description", I, Some(g_description)),
    ("deviceatlas-", U, None),
    (
        "expose-experimental-directives",
        N("no experimental directives in rhaproxy"),
        None,
    ),
    ("external-check", U, None),
    ("gid", I, Some(g_gid)),
    ("grace", I, Some(g_grace)),
    ("group", I, Some(g_group)),
    ("h1-case-adjust", I, Some(g_h1_case_adjust)),
    ("h1-case-adjust-file", U, None),
    (
        "h2-workaround-bogus-websocket-clients",
        N("rhaproxy speaks HTTP/1 only"),
        None,
    ),
    ("hard-stop-after", I, Some(g_hard_stop_after)),
    ("hash-balance-factor", U, None),
    (
        "insecure-fork-wanted",
        N("rhaproxy never forks helpers"),
        None,
    ),
    (
        "insecure-setuid-wanted",
        N("rhaproxy never forks helpers"),
        None,
    ),
    ("issuers-chain-path", N(SSL), None),
    ("localpeer", I, Some(g_localpeer)),
    ("log", I, Some(g_log)),
    ("log-send-hostname", I, Some(g_log_send_hostname)),
    ("log-tag", I, Some(g_log_tag)),
    ("hostname", I, Some(g_hostname)),
    ("lua-load", U, None),
    ("lua-load-per-thread", U, None),
    ("lua-prepend-path", U, None),
    ("master-worker", I, Some(g_master_worker)),
    ("max-spread-checks", N(TUNING), None),
    ("maxcompcpuusage", N(TUNING), None),
    ("maxcomprate", N(TUNING), None),
    ("maxconn", I, Some(g_maxconn)),
    ("maxconnrate", U, None),
    ("maxpipes", N(TUNING), None),
    ("maxsessrate", U, None),
    ("maxsslconn", N(SSL), None),
    ("maxsslrate", N(SSL), None),
    ("maxzlibmem", N(TUNING), None),
    ("mworker-max-reloads", U, None),
    ("nbproc", U, Some(g_nbproc)),
    ("nbthread", I, Some(g_nbthread)),
    ("node", I, Some(g_node)),
    (
        "numa-cpu-mapping",
        N("rhaproxy lets the kernel place its threads"),
        None,
    ),
    ("pidfile", I, Some(g_pidfile)),
    ("pp2-never-send-local", U, None),
    ("presetenv", I, Some(g_env)),
    ("quiet", I, Some(g_quiet)),
    ("resetenv", I, Some(g_env)),
    ("server-state-base", U, None),
    ("server-state-file", U, None),
    (
        "set-dumpable",
        N("core dump policy is left to the system"),
        None,
    ),
    ("set-var", I, Some(g_set_var)),
    ("set-var-fmt", I, Some(g_set_var)),
    ("setenv", I, Some(g_env)),
    ("setcap", I, Some(g_setcap)),
    (
        "spread-checks",
        N("health checks are already spread over the interval"),
        None,
    ),
    ("ssl-default-bind-ciphers", N(SSL), None),
    ("ssl-default-bind-ciphersuites", N(SSL), None),
    ("ssl-default-bind-curves", N(SSL), None),
    ("ssl-default-bind-options", N(SSL), None),
    ("ssl-default-server-ciphers", N(SSL), None),
    ("ssl-default-server-ciphersuites", N(SSL), None),
    ("ssl-default-server-options", N(SSL), None),
    ("ssl-dh-param-file", N(SSL), None),
    ("ssl-engine", N(SSL), None),
    ("ssl-mode-async", N(SSL), None),
    ("ssl-load-extra-files", N(SSL), None),
    ("ssl-load-extra-del-ext", N(SSL), None),
    ("ssl-server-verify", N(SSL), None),
    ("ssl-skip-self-issued-ca", N(SSL), None),
    ("stats", I, Some(g_stats)),
    (
        "strict-limits",
        N("rhaproxy always fails when it cannot raise its limits"),
        None,
    ),
    (
        "thread-group",
        N("rhaproxy lets the kernel place its threads"),
        None,
    ),
    (
        "thread-groups",
        N("rhaproxy lets the kernel place its threads"),
        None,
    ),
    ("trace", U, None),
    // The `tune.` keywords rhaproxy applies, before the prefix entry for the others.
    ("tune.bufsize", I, Some(g_tune)),
    ("tune.pool-high-fd-ratio", I, Some(g_tune)),
    ("tune.pool-low-fd-ratio", I, Some(g_tune)),
    ("tune.", N(TUNING), Some(g_tune)),
    ("uid", I, Some(g_uid)),
    (
        "ulimit-n",
        N("rhaproxy raises RLIMIT_NOFILE to the hard limit itself"),
        None,
    ),
    ("unix-bind", U, None),
    ("unsetenv", I, Some(g_env)),
    ("user", I, Some(g_user)),
    ("wurfl-", U, None),
    ("zero-warning", I, Some(g_zero_warning)),
    ("busy-polling", N(TUNING), None),
    ("noepoll", N(TUNING), None),
    ("nogetaddrinfo", N(TUNING), None),
    ("nokqueue", N(TUNING), None),
    ("noevports", N(TUNING), None),
    ("nopoll", N(TUNING), None),
    ("noreuseport", N(TUNING), None),
    ("nosplice", N(TUNING), None),
    ("profiling.", N("rhaproxy has no built-in profiler"), None),
    ("debug", N("deprecated, no effect"), None),
    (
        "anonkey",
        N("used by the stats socket dump commands rhaproxy lacks"),
        None,
    ),
    ("fd-hard-limit", N(TUNING), None),
    (
        "httpclient.",
        N("rhaproxy has no internal HTTP client"),
        None,
    ),
];

/// The `tune.*` keywords HAProxy 2.6 knows (the registered ones from `haproxy -dKcfg` and the
/// ones its global parser handles itself). Anything else under `tune.` is unknown, as in HAProxy.
pub static TUNE_KEYWORDS: &[&str] = &[
    "tune.buffers.limit",
    "tune.buffers.reserve",
    "tune.bufsize",
    "tune.comp.maxlevel",
    "tune.fail-alloc",
    "tune.fd.edge-triggered",
    "tune.h2.header-table-size",
    "tune.h2.initial-window-size",
    "tune.h2.max-concurrent-streams",
    "tune.h2.max-frame-size",
    "tune.http.cookielen",
    "tune.http.logurilen",
    "tune.http.maxhdr",
    "tune.idle-pool.shared",
    "tune.idletimer",
    "tune.listener.multi-queue",
    "tune.lua.forced-yield",
    "tune.lua.maxmem",
    "tune.lua.service-timeout",
    "tune.lua.session-timeout",
    "tune.lua.task-timeout",
    "tune.maxaccept",
    "tune.maxpollevents",
    "tune.maxrewrite",
    "tune.pattern.cache-size",
    "tune.peers.max-updates-at-once",
    "tune.pipesize",
    "tune.pool-high-fd-ratio",
    "tune.pool-low-fd-ratio",
    "tune.rcvbuf.client",
    "tune.rcvbuf.server",
    "tune.recv_enough",
    "tune.runqueue-depth",
    "tune.sched.low-latency",
    "tune.sndbuf.client",
    "tune.sndbuf.server",
    "tune.ssl.cachesize",
    "tune.ssl.capture-buffer-size",
    "tune.ssl.capture-cipherlist-size",
    "tune.ssl.default-dh-param",
    "tune.ssl.force-private-cache",
    "tune.ssl.hard-maxrecord",
    "tune.ssl.keylog",
    "tune.ssl.lifetime",
    "tune.ssl.maxrecord",
    "tune.ssl.ssl-ctx-cache-size",
    "tune.vars.check-max-size",
    "tune.vars.global-max-size",
    "tune.vars.proc-max-size",
    "tune.vars.reqres-max-size",
    "tune.vars.sess-max-size",
    "tune.vars.txn-max-size",
    "tune.zlib.memlevel",
    "tune.zlib.windowsize",
];

pub fn lookup(word: &str) -> Option<&'static (&'static str, Status, Option<GlobalParse>)> {
    if word.starts_with("tune.") && !TUNE_KEYWORDS.contains(&word) {
        return None;
    }
    GLOBAL_KEYWORDS.iter().find(|(n, _, _)| {
        *n == word
            || ((n.ends_with('.') || n.ends_with('-'))
                && word.starts_with(n)
                && word.len() > n.len())
    })
}

fn int_arg(ctx: &mut LineCtx, a: &[String], kw: &str) -> Option<u32> {
    match a.get(1).filter(|s| !s.is_empty()) {
        None => {
            ctx.alert(format!("'{kw}' expects an integer argument."));
            None
        }
        Some(v) => {
            if let Some(x) = a.get(2) {
                ctx.alert(format!("'{kw}' cannot handle unexpected argument '{x}'."));
                return None;
            }
            Some(v.bytes().take_while(u8::is_ascii_digit).fold(0u32, |a, b| {
                a.saturating_mul(10).saturating_add((b - b'0') as u32)
            }))
        }
    }
}

fn g_maxconn(ctx: &mut LineCtx, g: &mut Global, a: &[String]) {
    if let Some(v) = int_arg(ctx, a, "maxconn") {
        g.maxconn = Some(Located::new(v, ctx.loc.clone()));
    }
}

fn g_nbthread(ctx: &mut LineCtx, g: &mut Global, a: &[String]) {
    match a.get(1).and_then(|s| parse_uint(s)) {
        Some(v) if (1..=64).contains(&v) => {
            g.nbthread = Some(Located::new(v as u32, ctx.loc.clone()))
        }
        _ => ctx.alert(format!(
            "'nbthread' expects an integer argument between 1 and 64, got '{}'.",
            a.get(1).map(String::as_str).unwrap_or("")
        )),
    }
}

fn g_nbproc(ctx: &mut LineCtx, _g: &mut Global, _a: &[String]) {
    ctx.alert("nbproc is not supported any more since HAProxy 2.5. Threads will automatically be used on multi-processor machines if available.");
}

fn g_description(_ctx: &mut LineCtx, g: &mut Global, a: &[String]) {
    g.description = Some(a[1..].join(" "));
}

fn g_node(_ctx: &mut LineCtx, g: &mut Global, a: &[String]) {
    g.node = a.get(1).cloned();
}

fn g_daemon(ctx: &mut LineCtx, g: &mut Global, _a: &[String]) {
    g.daemon = Some(ctx.loc.clone());
}

fn g_quiet(_ctx: &mut LineCtx, g: &mut Global, _a: &[String]) {
    g.quiet = true;
}

fn g_zero_warning(_ctx: &mut LineCtx, g: &mut Global, _a: &[String]) {
    g.zero_warning = true;
}

fn one_word<'a>(ctx: &mut LineCtx, a: &'a [String], kw: &str, what: &str) -> Option<&'a String> {
    match a.get(1).filter(|s| !s.is_empty()) {
        Some(v) => Some(v),
        None => {
            ctx.alert(format!("'{kw}' expects {what} as argument."));
            None
        }
    }
}

fn g_user(ctx: &mut LineCtx, g: &mut Global, a: &[String]) {
    if g.uid.is_some() || g.user.is_some() {
        ctx.warning("user/uid already specified. Continuing.");
    }
    if let Some(v) = one_word(ctx, a, "user", "a user name") {
        // HAProxy resolves the name at parse time.
        match nix::unistd::User::from_name(v) {
            Ok(Some(_)) => g.user = Some(Located::new(v.clone(), ctx.loc.clone())),
            _ => ctx.alert(format!("cannot find user id for '{v}' (0:Success)")),
        }
    }
}

fn g_group(ctx: &mut LineCtx, g: &mut Global, a: &[String]) {
    if g.gid.is_some() || g.group.is_some() {
        ctx.warning("group/gid already specified. Continuing.");
    }
    if let Some(v) = one_word(ctx, a, "group", "a group name") {
        match nix::unistd::Group::from_name(v) {
            Ok(Some(_)) => g.group = Some(Located::new(v.clone(), ctx.loc.clone())),
            _ => ctx.alert(format!("cannot find group id for '{v}' (0:Success)")),
        }
    }
}

fn g_uid(ctx: &mut LineCtx, g: &mut Global, a: &[String]) {
    match a.get(1).and_then(|s| parse_uint(s)) {
        Some(v) => g.uid = Some(Located::new(v as u32, ctx.loc.clone())),
        None => ctx.alert("'uid' expects an integer argument."),
    }
}

fn g_gid(ctx: &mut LineCtx, g: &mut Global, a: &[String]) {
    match a.get(1).and_then(|s| parse_uint(s)) {
        Some(v) => g.gid = Some(Located::new(v as u32, ctx.loc.clone())),
        None => ctx.alert("'gid' expects an integer argument."),
    }
}

/// HAProxy 2.9's `setcap cap_net_admin[,cap_net_raw,...]`: keep these capabilities across the
/// uid change. rhaproxy accepts it as an extension to 2.6 (see docs/compatibility.md).
fn g_setcap(ctx: &mut LineCtx, g: &mut Global, a: &[String]) {
    let Some(list) = a.get(1).filter(|s| !s.is_empty()) else {
        ctx.alert("'setcap' expects a comma-delimited list of capabilities.");
        return;
    };
    if let Some(x) = a.get(2) {
        ctx.alert(format!("'setcap' cannot handle unexpected argument '{x}'."));
        return;
    }
    for c in list.split(',') {
        if crate::tproxy::privs::Cap::parse(c.trim()).is_none() {
            ctx.alert(format!(
                "'setcap': unsupported capability '{c}', only cap_net_admin, cap_net_raw and cap_net_bind_service can be kept."
            ));
            return;
        }
    }
    g.setcap = Some(Located::new(vec![list.clone()], ctx.loc.clone()));
}

fn g_pidfile(ctx: &mut LineCtx, g: &mut Global, a: &[String]) {
    if g.pidfile.is_some() {
        ctx.alert("'pidfile' already specified. Continuing.");
        return;
    }
    match a.get(1).filter(|s| !s.is_empty()) {
        Some(_) if a.len() > 2 => ctx.alert(format!(
            "'pidfile' cannot handle unexpected argument '{}'.",
            a[2]
        )),
        Some(v) => g.pidfile = Some(Located::new(v.clone(), ctx.loc.clone())),
        None => ctx.alert("'pidfile' expects a file name as an argument."),
    }
}

fn g_chroot(ctx: &mut LineCtx, g: &mut Global, a: &[String]) {
    if let Some(v) = one_word(ctx, a, "chroot", "a directory") {
        g.chroot = Some(Located::new(v.clone(), ctx.loc.clone()));
    }
}

fn time_arg(ctx: &mut LineCtx, a: &[String], kw: &str) -> Option<u64> {
    let Some(v) = a.get(1).filter(|s| !s.is_empty()) else {
        ctx.alert(format!("'{kw}' expects <time> as argument."));
        return None;
    };
    match parse_time_ms(v) {
        Ok(ms) => Some(ms),
        Err(c) => {
            ctx.alert(format!("unexpected character '{c}' in argument to <{kw}>."));
            None
        }
    }
}

fn g_grace(ctx: &mut LineCtx, g: &mut Global, a: &[String]) {
    if let Some(v) = time_arg(ctx, a, "grace") {
        g.grace = Some(Located::new(v, ctx.loc.clone()));
    }
}

/// `default-path`: the directory relative file names are taken from, from this line on (the
/// working directory while parsing, as HAProxy).
fn g_default_path(ctx: &mut LineCtx, _g: &mut Global, a: &[String]) {
    let mode = a.get(1).map(String::as_str).unwrap_or("");
    let initial = crate::config::initial_cwd();
    let file_dir = || {
        let f = std::path::Path::new(&*ctx.loc.file);
        initial.join(f.parent().unwrap_or(std::path::Path::new("")))
    };
    let (target, shown) = match mode {
        "current" => (initial.clone(), String::new()),
        "config" => (file_dir(), String::new()),
        "parent" => (file_dir().join(".."), String::new()),
        "origin" => match a.get(2).filter(|p| !p.is_empty()) {
            Some(p) => (initial.join(p), p.clone()),
            None => {
                ctx.alert("'default-path origin' expects a directory as an argument.");
                return;
            }
        },
        "" => {
            ctx.alert("missing default-path mode '' for 'default-path', supported modes include 'current', 'config', 'parent', and 'origin'.");
            return;
        }
        m => {
            ctx.alert(format!("unsupported default-path mode '{m}' for 'default-path', supported modes include 'current', 'config', 'parent', and 'origin'."));
            return;
        }
    };
    if let Err(e) = std::env::set_current_dir(&target) {
        let here = std::env::current_dir().unwrap_or_default();
        ctx.alert(format!(
            "couldn't set 'default-path' to {mode} '{shown}': Impossible to get back to directory '{}': {}.",
            here.display(),
            crate::config::errno_text(&e)
        ));
    }
}

fn g_h1_case_adjust(ctx: &mut LineCtx, g: &mut Global, a: &[String]) {
    if a.len() < 3 {
        ctx.alert("'h1-case-adjust' expects <from> and <to> as argument.");
        return;
    }
    if let Some(x) = a.get(3) {
        ctx.alert(format!(
            "'h1-case-adjust' cannot handle unexpected argument '{x}'."
        ));
        return;
    }
    if !a[1].eq_ignore_ascii_case(&a[2]) {
        // HAProxy 2.6's words, typo included.
        ctx.alert("<from> and <to> must not differ execpt the case");
        return;
    }
    g.h1_case_adjust
        .push((a[1].to_ascii_lowercase(), a[2].clone()));
}

fn g_hard_stop_after(ctx: &mut LineCtx, g: &mut Global, a: &[String]) {
    if let Some(v) = time_arg(ctx, a, "hard-stop-after") {
        g.hard_stop_after = Some(Located::new(v, ctx.loc.clone()));
    }
}

fn g_log(ctx: &mut LineCtx, g: &mut Global, a: &[String]) {
    if ctx.negated {
        g.log.clear();
        return;
    }
    match a.get(1).map(String::as_str) {
        None => ctx.alert(
            "'log' expects either <address[:port]> and <facility> or 'global' as arguments.",
        ),
        Some("global") => ctx.alert("'global' is not supported for a global syslog server."),
        Some(_) => {
            let words: Vec<&str> = a[1..].iter().map(String::as_str).collect();
            match crate::log::target::parse_global_log_args(&words) {
                Ok(_) => g.log.push(Located::new(a[1..].to_vec(), ctx.loc.clone())),
                Err(e) => ctx.alert(e),
            }
        }
    }
}

fn g_log_tag(ctx: &mut LineCtx, g: &mut Global, a: &[String]) {
    if let Some(v) = one_word(ctx, a, "log-tag", "a tag") {
        g.log_tag = Some(Located::new(v.clone(), ctx.loc.clone()));
    }
}

/// `set-var proc.NAME EXPR` / `set-var-fmt proc.NAME FMT`: a process-wide variable set while
/// parsing, as HAProxy does (a later line can read it with `var()`).
fn g_set_var(ctx: &mut LineCtx, _g: &mut Global, a: &[String]) {
    let kw = a[0].as_str();
    let fmt = kw == "set-var-fmt";
    let (Some(name), Some(arg)) = (a.get(1), a.get(2)) else {
        ctx.alert(format!(
            "'{kw}' requires a process-wide variable name ('proc.<name>') and a {}.",
            if fmt {
                "format string"
            } else {
                "sample expression"
            }
        ));
        return;
    };
    if let Err(m) = crate::acl::fetch::check_var_name(name) {
        ctx.alert(m);
        return;
    }
    if !name.starts_with("proc.") {
        ctx.alert(format!(
            "'{kw}': cannot set variable '{name}', only scope 'proc' is permitted in the global section."
        ));
        return;
    }
    // `var(proc.X)` reads what earlier lines set.
    let none = crate::acl::Vars::default();
    let c = crate::acl::SampleCtx {
        vars: Some(&none),
        ..Default::default()
    };
    let value = if fmt {
        match crate::acl::fmt::Fmt::parse(arg) {
            Ok(f) => crate::acl::Sample::Str(f.render(&c)),
            Err(_) => {
                ctx.unsupported_arg(kw, "this format string");
                return;
            }
        }
    } else {
        let expr = match crate::acl::fetch::parse_expr(arg) {
            Ok(x) => x,
            Err(crate::acl::fetch::FetchError::Haproxy(m))
                if m.starts_with("unknown fetch method") =>
            {
                let n = arg.split(['(', ',']).next().unwrap_or("");
                ctx.alert(format!("unknown fetch method '{n}'"));
                return;
            }
            Err(crate::acl::fetch::FetchError::Haproxy(m)) => {
                ctx.alert(m);
                return;
            }
            Err(crate::acl::fetch::FetchError::Unsupported(w)) => {
                ctx.unsupported_arg(kw, &w);
                return;
            }
        };
        use crate::acl::fetch::Fetch::*;
        let what = match &expr.fetch {
            Int(_) | Str(_) | Bool(_) | Var(..) | Env(_) | Hostname | Date(_) | Rand(_)
            | AlwaysTrue | AlwaysFalse => None,
            Src | SrcPort => Some("client address"),
            Dst | DstPort => Some("frontend address"),
            _ => Some("HTTP request headers"),
        };
        if let Some(w) = what {
            ctx.alert(format!(
                "fetch method '{kw}({name})' extracts information from '{w}', none of which is available here"
            ));
            return;
        }
        match expr.value(&c) {
            Some(v) => v,
            None => return,
        }
    };
    // Through `Vars`, which keeps `proc.` variables process-wide.
    crate::acl::Vars::default().set(name, value);
}

fn g_localpeer(ctx: &mut LineCtx, g: &mut Global, a: &[String]) {
    if let Some(v) = one_word(ctx, a, "localpeer", "a name") {
        g.localpeer = Some(Located::new(v.clone(), ctx.loc.clone()));
    }
}

fn g_log_send_hostname(ctx: &mut LineCtx, g: &mut Global, a: &[String]) {
    g.log_send_hostname = Some(Located::new(a.get(1).cloned(), ctx.loc.clone()));
}

fn g_hostname(ctx: &mut LineCtx, g: &mut Global, a: &[String]) {
    if let Some(v) = one_word(ctx, a, "hostname", "a string") {
        g.hostname = Some(Located::new(v.clone(), ctx.loc.clone()));
    }
}

fn g_stats(ctx: &mut LineCtx, g: &mut Global, a: &[String]) {
    match a.get(1).map(String::as_str) {
        Some("timeout") => match parse_time_ms(a.get(2).map(String::as_str).unwrap_or("")) {
            Ok(v) if v > 0 => g.stats_timeout = Some(Located::new(v, ctx.loc.clone())),
            Ok(_) => ctx.alert("'stats timeout' expects a positive value"),
            Err(c) => ctx.alert(format!("'stats timeout' : unexpected character '{c}'")),
        },
        Some("maxconn") => {}
        Some("socket") => {
            if let Some(s) = stats_socket(ctx, a) {
                g.stats_sockets.push(Located::new(s, ctx.loc.clone()));
            }
        }
        Some("bind-process") => {}
        _ => ctx.alert(
            "'stats' only supports 'socket', 'maxconn', 'bind-process' and 'timeout' (got '')."
                .replace(
                    "(got '')",
                    &format!("(got '{}')", a.get(1).map(String::as_str).unwrap_or("")),
                ),
        ),
    }
}

fn g_master_worker(ctx: &mut LineCtx, g: &mut Global, a: &[String]) {
    match a.get(1).map(String::as_str) {
        None | Some("") | Some("no-exit-on-failure") => {
            g.master_worker = Some(ctx.loc.clone());
        }
        Some(_) => ctx.alert("'master-worker' only supports 'no-exit-on-failure' option."),
    }
}

/// `stats socket <addr> [param*]`.
fn stats_socket(ctx: &mut LineCtx, a: &[String]) -> Option<StatsSocket> {
    let Some(addr) = a.get(2).filter(|s| !s.is_empty()) else {
        ctx.alert("'stats socket' in global section expects an address or a path to a UNIX socket");
        return None;
    };
    let addr = if let Some(path) = addr.strip_prefix("unix@") {
        StatsAddr::Unix(path.to_string())
    } else if addr.starts_with('/') || addr.starts_with('.') || !addr.contains(':') {
        StatsAddr::Unix(addr.clone())
    } else {
        let rest = addr
            .strip_prefix("ipv4@")
            .or(addr.strip_prefix("ipv6@"))
            .or(addr.strip_prefix("tcp@"))
            .or(addr.strip_prefix("tcp4@"))
            .or(addr.strip_prefix("tcp6@"))
            .unwrap_or(addr);
        let parsed = rest.parse::<std::net::SocketAddr>().ok().or_else(|| {
            let (h, p) = rest.rsplit_once(':')?;
            let ip: std::net::IpAddr = match h {
                "" | "*" => std::net::Ipv4Addr::UNSPECIFIED.into(),
                h => h.trim_matches(|c| c == '[' || c == ']').parse().ok()?,
            };
            Some(std::net::SocketAddr::new(ip, p.parse().ok()?))
        });
        match parsed {
            Some(sa) => StatsAddr::Tcp(sa),
            None => {
                ctx.alert(format!(
                    "'stats socket' : address '{addr}' is not supported by rhaproxy yet (UNIX path or IP:port)."
                ));
                return None;
            }
        }
    };
    let mut s = StatsSocket {
        addr,
        mode: None,
        uid: None,
        gid: None,
        level: CliLevel::Operator,
        expose_fd: false,
    };
    let mut i = 3;
    let fail = |ctx: &mut LineCtx, m: String| -> Option<StatsSocket> {
        ctx.alert(format!("'stats socket' : '{m}'"));
        None
    };
    while i < a.len() {
        let kw = a[i].as_str();
        let v = a.get(i + 1).map(String::as_str).unwrap_or("");
        match kw {
            "" => {
                i += 1;
                continue;
            }
            "level" => match v {
                "" => return fail(ctx, "'level' : missing level".into()),
                "user" => s.level = CliLevel::User,
                "operator" => s.level = CliLevel::Operator,
                "admin" => s.level = CliLevel::Admin,
                o => {
                    return fail(
                        ctx,
                        format!(
                            "'level' only supports 'user', 'operator', and 'admin' (got '{o}')"
                        ),
                    );
                }
            },
            "mode" => match u32::from_str_radix(v, 8) {
                Ok(m) if !v.is_empty() => s.mode = Some(m),
                _ => {
                    return fail(
                        ctx,
                        format!("'mode' : missing or invalid mode '{v}' (octal integer expected)"),
                    );
                }
            },
            "expose-fd" => match v {
                "listeners" => s.expose_fd = true,
                o => {
                    return fail(
                        ctx,
                        format!("'expose-fd' only supports 'listeners' (got '{o}')"),
                    );
                }
            },
            "uid" | "gid" => match v.parse::<u32>() {
                Ok(n) if kw == "uid" => s.uid = Some(n),
                Ok(n) => s.gid = Some(n),
                Err(_) => {
                    return fail(ctx, format!("'{kw}' : missing or invalid {kw} '{v}'"));
                }
            },
            "user" => match nix::unistd::User::from_name(v) {
                Ok(Some(u)) => s.uid = Some(u.uid.as_raw()),
                _ => return fail(ctx, format!("'user' : unknown user '{v}'")),
            },
            "group" => match nix::unistd::Group::from_name(v) {
                Ok(Some(gr)) => s.gid = Some(gr.gid.as_raw()),
                _ => return fail(ctx, format!("'group' : unknown group '{v}'")),
            },
            "maxconn" | "backlog" | "name" | "id" | "process" | "thread" | "nice" => {}
            "accept-proxy" | "defer-accept" | "transparent" | "v4v6" | "v6only" => {
                i += 1;
                continue;
            }
            o => {
                ctx.alert(format!("'stats socket' : unknown keyword '{o}'."));
                return None;
            }
        }
        i += 2;
    }
    Some(s)
}

fn g_tune(ctx: &mut LineCtx, g: &mut Global, a: &[String]) {
    match a[0].as_str() {
        "tune.bufsize" => match a.get(1).and_then(|s| parse_uint(s)) {
            Some(v) if v >= 1024 => g.bufsize = Some(Located::new(v as u32, ctx.loc.clone())),
            _ => ctx.alert("'tune.bufsize' expects a positive integer argument."),
        },
        "tune.pool-low-fd-ratio" | "tune.pool-high-fd-ratio" => {
            // HAProxy reads the number with atoi: "abc" is 0.
            match a.get(1).map(|s| crate::config::values::atoi(s)) {
                Some(v @ 0..=100) => {
                    let v = Some(Located::new(v as u32, ctx.loc.clone()));
                    if a[0] == "tune.pool-low-fd-ratio" {
                        g.pool_low_fd_ratio = v;
                    } else {
                        g.pool_high_fd_ratio = v;
                    }
                }
                _ => ctx.alert(format!(
                    "'{}' expects an integer argument between 0 and 100.",
                    a[0]
                )),
            }
        }
        _ => {}
    }
}

fn g_env(ctx: &mut LineCtx, _g: &mut Global, a: &[String]) {
    // These change the environment during parsing, so later lines see the change.
    match a[0].as_str() {
        "setenv" | "presetenv" => {
            if a.len() != 3 {
                ctx.alert(format!("'{}' expects exactly 2 arguments.", a[0]));
                return;
            }
            if a[0] == "presetenv" && std::env::var_os(&a[1]).is_some() {
                return;
            }
            // SAFETY: configuration parsing runs on the main thread before any other starts.
            unsafe { std::env::set_var(&a[1], &a[2]) };
        }
        "unsetenv" => {
            for v in &a[1..] {
                // SAFETY: as above, single-threaded parsing.
                unsafe { std::env::remove_var(v) };
            }
        }
        _ => {
            let keep: Vec<&String> = a[1..].iter().collect();
            for (k, _) in std::env::vars_os() {
                if !keep.iter().any(|x| std::ffi::OsStr::new(x.as_str()) == k) {
                    // SAFETY: as above, single-threaded parsing.
                    unsafe { std::env::remove_var(&k) };
                }
            }
        }
    }
}

pub fn doc_rows() -> Vec<DocRow> {
    GLOBAL_KEYWORDS
        .iter()
        .map(|(n, s, _)| DocRow {
            section: "global",
            keyword: if n.ends_with('.') || n.ends_with('-') {
                format!("{n}*")
            } else {
                n.to_string()
            },
            where_: "global".into(),
            status: *s,
        })
        .collect()
}
