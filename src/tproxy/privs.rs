//! Dropping privileges (`chroot`, `user`/`group`/`uid`/`gid`) while keeping the capabilities that
//! transparent proxying needs.
//!
//! HAProxy 2.6 cannot keep capabilities across a uid change, so a TPROXY config with `user` refuses
//! to start. rhaproxy keeps a listed subset (CAP_NET_ADMIN, CAP_NET_RAW, CAP_NET_BIND_SERVICE):
//! `prctl(PR_SET_KEEPCAPS, 1)`, `setgroups([gid])`, `setgid`, `setuid`, then `capset` with
//! effective = permitted = the kept set (inheritable empty), then `PR_SET_KEEPCAPS` back to 0.
//!
//! **Threads.** uid/gid changes are process-wide (glibc broadcasts them), but `capset` only changes
//! the calling thread. Call [`drop_privileges`] from the main thread *before* any other thread
//! (tokio runtime, log thread) is started; threads created afterwards inherit the kept set.

use std::fmt;
use std::io;
use std::path::PathBuf;

use nix::libc;
use nix::unistd::{Gid, Group, Uid, User};

/// The capabilities rhaproxy knows how to keep.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Cap {
    NetBindService,
    NetAdmin,
    NetRaw,
}

impl Cap {
    pub const ALL: [Cap; 3] = [Cap::NetBindService, Cap::NetAdmin, Cap::NetRaw];

    /// Kernel capability number (linux/capability.h).
    pub fn number(self) -> u32 {
        match self {
            Cap::NetBindService => 10,
            Cap::NetAdmin => 12,
            Cap::NetRaw => 13,
        }
    }
    pub fn bit(self) -> u64 {
        1u64 << self.number()
    }
    /// The name as written in a config (`cap_net_admin`).
    pub fn name(self) -> &'static str {
        match self {
            Cap::NetBindService => "cap_net_bind_service",
            Cap::NetAdmin => "cap_net_admin",
            Cap::NetRaw => "cap_net_raw",
        }
    }
    /// Parse `cap_net_admin` / `CAP_NET_ADMIN` / `net_admin`.
    pub fn parse(s: &str) -> Option<Cap> {
        let l = s.to_ascii_lowercase();
        let l = l.strip_prefix("cap_").unwrap_or(&l);
        match l {
            "net_bind_service" => Some(Cap::NetBindService),
            "net_admin" => Some(Cap::NetAdmin),
            "net_raw" => Some(Cap::NetRaw),
            _ => None,
        }
    }
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A capability bit mask (bit n = capability number n).
pub fn mask(caps: &[Cap]) -> u64 {
    caps.iter().fold(0, |m, c| m | c.bit())
}

/// The three capability sets of a thread, as bit masks.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct CapState {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Copy, Clone, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// capget(2) for the calling thread.
pub fn thread_caps() -> io::Result<CapState> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and a 2-element data array as capget(2) requires for version 3.
    let r = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok(CapState {
        effective: join(data[0].effective, data[1].effective),
        permitted: join(data[0].permitted, data[1].permitted),
        inheritable: join(data[0].inheritable, data[1].inheritable),
    })
}

/// capset(2) for the calling thread only.
pub fn set_thread_caps(st: &CapState) -> io::Result<()> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let split = |v: u64| (v as u32, (v >> 32) as u32);
    let (e0, e1) = split(st.effective);
    let (p0, p1) = split(st.permitted);
    let (i0, i1) = split(st.inheritable);
    let data = [
        CapData {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        CapData {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: header and a 2-element data array as capset(2) requires for version 3.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Parse a `CapEff:`-style line value from `/proc/<pid>/status` text.
pub fn caps_from_status(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        u64::from_str_radix(rest.trim(), 16).ok()
    })
}

/// Remove every capability not in `keep` from the bounding set (PR_CAPBSET_DROP).
pub fn drop_bounding_set(keep: u64) -> io::Result<()> {
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    for cap in 0..=last.min(63) {
        if keep & (1u64 << cap) != 0 {
            continue;
        }
        // Already outside the bounding set (e.g. a systemd unit's CapabilityBoundingSet, which
        // may also have taken CAP_SETPCAP away): nothing to drop, and dropping would need it.
        // SAFETY: prctl with integer arguments only.
        let present = unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) };
        if present == 0 {
            continue;
        }
        // SAFETY: prctl with integer arguments only.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if r != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINVAL) {
                break; // beyond the kernel's last capability
            }
            return Err(e);
        }
    }
    Ok(())
}

/// What to drop. Names must be resolved (with [`resolve_user`]/[`resolve_group`]) *before*
/// `chroot`, since the passwd database is outside the jail.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrivDrop {
    pub chroot: Option<PathBuf>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Capabilities kept (effective + permitted) after the uid change.
    pub keep: Vec<Cap>,
    /// Also drop every other capability from the bounding set (needs CAP_SETPCAP, so only
    /// when starting as root), so nothing can be regained later, e.g. by an exec.
    pub drop_bounding: bool,
}

/// An error of one step of [`drop_privileges`].
#[derive(Debug)]
pub struct PrivError {
    pub step: String,
    pub source: io::Error,
}

impl fmt::Display for PrivError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.step, self.source)
    }
}

impl std::error::Error for PrivError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn step<T>(r: nix::Result<T>, what: impl FnOnce() -> String) -> Result<T, PrivError> {
    r.map_err(|e| PrivError {
        step: what(),
        source: io::Error::from(e),
    })
}

/// `user NAME` -> (uid, primary gid).
pub fn resolve_user(name: &str) -> io::Result<(u32, u32)> {
    match User::from_name(name)? {
        Some(u) => Ok((u.uid.as_raw(), u.gid.as_raw())),
        None => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("unknown user '{name}'"),
        )),
    }
}

/// `group NAME` -> gid.
pub fn resolve_group(name: &str) -> io::Result<u32> {
    match Group::from_name(name)? {
        Some(g) => Ok(g.gid.as_raw()),
        None => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("unknown group '{name}'"),
        )),
    }
}

/// chroot, then gid/groups, then uid, keeping `p.keep` (see module docs for the order and the
/// threading rule). Without a uid change, a process that is not root but has the kept
/// capabilities in its permitted set (file capabilities) gets them raised to effective.
pub fn drop_privileges(p: &PrivDrop) -> Result<(), PrivError> {
    if let Some(dir) = &p.chroot {
        step(nix::unistd::chroot(dir.as_path()), || {
            format!("cannot chroot to '{}'", dir.display())
        })?;
        step(nix::unistd::chdir("/"), || {
            format!("cannot chdir to '/' after chroot to '{}'", dir.display())
        })?;
    }
    let keep = mask(&p.keep);
    let before = thread_caps().map_err(|e| PrivError {
        step: "cannot read capabilities".into(),
        source: e,
    })?;
    if keep & !before.permitted != 0 {
        let missing: Vec<&str> = p
            .keep
            .iter()
            .filter(|c| before.permitted & c.bit() == 0)
            .map(|c| c.name())
            .collect();
        return Err(PrivError {
            step: format!("cannot keep {}", missing.join(",")),
            source: io::Error::new(
                io::ErrorKind::PermissionDenied,
                "not in the permitted capability set (start as root or give the binary file capabilities)",
            ),
        });
    }
    let changes_uid = p.uid.is_some_and(|u| u != Uid::current().as_raw());
    if p.drop_bounding && changes_uid {
        drop_bounding_set(keep).map_err(|e| PrivError {
            step: "cannot drop capabilities from the bounding set".into(),
            source: e,
        })?;
    }
    if changes_uid && keep != 0 {
        step(nix::sys::prctl::set_keepcaps(true), || {
            "cannot set PR_SET_KEEPCAPS".into()
        })?;
    }
    if let Some(gid) = p.gid {
        if Uid::effective().is_root() {
            step(nix::unistd::setgroups(&[Gid::from_raw(gid)]), || {
                format!("cannot set supplementary groups to [{gid}]")
            })?;
        }
        step(nix::unistd::setgid(Gid::from_raw(gid)), || {
            format!("cannot switch to gid {gid}")
        })?;
    }
    if let Some(uid) = p.uid {
        step(nix::unistd::setuid(Uid::from_raw(uid)), || {
            format!("cannot switch to uid {uid}")
        })?;
    }
    if keep != 0 && (changes_uid || !Uid::effective().is_root()) {
        set_thread_caps(&CapState {
            effective: keep,
            permitted: keep,
            inheritable: 0,
        })
        .map_err(|e| PrivError {
            step: format!(
                "cannot keep capabilities {}",
                p.keep
                    .iter()
                    .map(|c| c.name())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            source: e,
        })?;
    }
    if changes_uid && keep != 0 {
        step(nix::sys::prctl::set_keepcaps(false), || {
            "cannot clear PR_SET_KEEPCAPS".into()
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
