//! Transparent proxying (Linux TPROXY), checked before it runs.
//!
//! * [`addr`]: `ClientAddr` / `ServerAddr` / `ListenAddr` / `OrigDstAddr` newtypes.
//! * [`sockopt`]: transparent listeners, spoofing outgoing sockets, original destination.
//! * [`privs`]: chroot, uid/gid change keeping CAP_NET_ADMIN / CAP_NET_RAW / CAP_NET_BIND_SERVICE.
//! * [`hostcheck`]: reads the host (sysctls, policy routing, nftables/iptables, capabilities)
//!   and names every missing piece with the command that fixes it.

pub mod addr;
pub mod from_ir;
pub mod hostcheck;
pub mod json;

pub mod privs;
pub mod sockopt;

#[cfg(test)]
pub(crate) mod testutil;
