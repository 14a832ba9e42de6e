use super::*;
use crate::tproxy::addr::ListenAddr;
use crate::tproxy::sockopt::{ListenOpts, missing_capability, transparent_listener};
use crate::tproxy::testutil::{is_root, skipped};
use std::process::Command;

const CHILD_ENV: &str = "RHX_PRIVS_CHILD";

#[test]
fn parse_and_mask() {
    assert_eq!(Cap::parse("cap_net_admin"), Some(Cap::NetAdmin));
    assert_eq!(Cap::parse("CAP_NET_RAW"), Some(Cap::NetRaw));
    assert_eq!(Cap::parse("net_bind_service"), Some(Cap::NetBindService));
    assert_eq!(Cap::parse("cap_sys_admin"), None);
    assert_eq!(mask(&[Cap::NetAdmin, Cap::NetBindService]), 0x1400);
    let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\n";
    assert_eq!(caps_from_status(status, "CapEff"), Some(0x1fffeffffff));
    assert_eq!(caps_from_status(status, "CapPrm"), None);
}

/// Re-run this test binary, executing only `child_entry` with `scenario`; the privilege change
/// happens in that child, so this process keeps root. Returns the child's stdout.
fn run_child(scenario: &str, extra_env: &[(&str, &str)]) -> String {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "tproxy::privs::tests::child_entry",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, scenario);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("CHILD-OK"),
        "child {scenario} failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    stdout
}

/// The body run in the child process (a no-op in the normal test run).
#[test]
fn child_entry() {
    let Ok(scenario) = std::env::var(CHILD_ENV) else {
        return;
    };
    // Own network namespace: binding port 80 and non-local addresses touches nothing shared.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
    let (uid, gid) = resolve_user("nobody").unwrap();
    let status = || std::fs::read_to_string("/proc/thread-self/status").unwrap();
    let opts = ListenOpts {
        transparent: true,
        ..Default::default()
    };
    match scenario.as_str() {
        "keep" => {
            drop_privileges(&PrivDrop {
                uid: Some(uid),
                gid: Some(gid),
                keep: vec![Cap::NetAdmin, Cap::NetBindService],
                drop_bounding: true,
                ..Default::default()
            })
            .unwrap();
            assert_eq!(nix::unistd::getuid().as_raw(), uid);
            assert_eq!(nix::unistd::geteuid().as_raw(), uid);
            assert_eq!(nix::unistd::getgid().as_raw(), gid);
            assert_eq!(nix::unistd::getgroups().unwrap(), vec![Gid::from_raw(gid)]);
            let st = status();
            assert_eq!(caps_from_status(&st, "CapEff"), Some(0x1400), "{st}");
            assert_eq!(caps_from_status(&st, "CapPrm"), Some(0x1400), "{st}");
            assert_eq!(caps_from_status(&st, "CapBnd"), Some(0x1400), "{st}");
            assert!(!nix::sys::prctl::get_keepcaps().unwrap());
            // CAP_NET_ADMIN kept: IP_TRANSPARENT and a non-local bind work; NET_BIND_SERVICE: :80.
            transparent_listener(ListenAddr("192.0.2.10:80".parse().unwrap()), &opts)
                .expect("transparent bind as nobody with cap_net_admin");
            // A cap not kept is gone: CAP_CHOWN.
            assert!(nix::unistd::chown("/proc/self/status", Some(Uid::from_raw(0)), None).is_err());
        }
        "nocaps" => {
            drop_privileges(&PrivDrop {
                uid: Some(uid),
                gid: Some(gid),
                ..Default::default()
            })
            .unwrap();
            let st = status();
            assert_eq!(caps_from_status(&st, "CapEff"), Some(0), "{st}");
            assert_eq!(caps_from_status(&st, "CapPrm"), Some(0), "{st}");
            let e = transparent_listener(ListenAddr("192.0.2.10:8080".parse().unwrap()), &opts)
                .unwrap_err();
            assert!(missing_capability(&e).is_some(), "{e}");
            // and no way back
            assert!(nix::unistd::setuid(Uid::from_raw(0)).is_err());
        }
        "chroot" => {
            let dir = std::env::var("RHX_CHROOT_DIR").unwrap();
            drop_privileges(&PrivDrop {
                chroot: Some(dir.into()),
                uid: Some(uid),
                gid: Some(gid),
                keep: vec![Cap::NetRaw],
                drop_bounding: false,
            })
            .unwrap();
            assert!(std::path::Path::new("/marker").exists());
            assert!(!std::path::Path::new("/proc").exists());
            assert_eq!(
                nix::unistd::getcwd().unwrap(),
                std::path::PathBuf::from("/")
            );
            // CAP_NET_RAW also allows IP_TRANSPARENT (kernel >= 2.6.37: net_admin or net_raw)
            transparent_listener(ListenAddr("192.0.2.11:8080".parse().unwrap()), &opts)
                .expect("transparent with cap_net_raw only");
        }
        "not-permitted" => {
            drop_privileges(&PrivDrop {
                uid: Some(uid),
                gid: Some(gid),
                ..Default::default()
            })
            .unwrap();
            let e = drop_privileges(&PrivDrop {
                keep: vec![Cap::NetAdmin],
                ..Default::default()
            })
            .unwrap_err();
            assert!(e.to_string().contains("cannot keep cap_net_admin"), "{e}");
        }
        other => panic!("unknown scenario {other}"),
    }
    println!("CHILD-OK {scenario}");
}

#[test]
fn drop_to_nobody_keeping_net_admin() {
    if !is_root() {
        skipped("SKIPPED (needs root): drop privileges keeping capabilities");
        return;
    }
    run_child("keep", &[]);
}

#[test]
fn drop_to_nobody_without_caps_refuses_transparency() {
    if !is_root() {
        skipped("SKIPPED (needs root): drop privileges without capabilities");
        return;
    }
    run_child("nocaps", &[]);
    run_child("not-permitted", &[]);
}

#[test]
fn chroot_then_drop() {
    if !is_root() {
        skipped("SKIPPED (needs root): chroot");
        return;
    }
    let dir = std::env::temp_dir().join(format!("rhx-chroot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("marker"), b"x").unwrap();
    let r = std::panic::catch_unwind(|| {
        run_child("chroot", &[("RHX_CHROOT_DIR", dir.to_str().unwrap())])
    });
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = r {
        std::panic::resume_unwind(e);
    }
}
