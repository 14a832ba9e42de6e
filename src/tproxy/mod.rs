//! Transparent proxying (Linux TPROXY), checked before it runs.
//!
//! * [`addr`]: `ClientAddr` / `ServerAddr` / `ListenAddr` / `OrigDstAddr` newtypes, `Family`,
//!   `IpNet`.
//! * [`sockopt`]: transparent listeners, spoofing outgoing sockets, original destination.
//! * [`privs`]: chroot, uid/gid change keeping CAP_NET_ADMIN / CAP_NET_RAW / CAP_NET_BIND_SERVICE.
//! * [`hostcheck`]: reads the host (sysctls, policy routing, nftables/iptables, capabilities)
//!   and names every missing piece with the command that fixes it.
//! * [`from_ir`]: the bridges from the configuration IR to the above.
//!
//! # For the runtime
//!
//! ```text
//! startup (main thread, before any other thread):
//!   let drop = from_ir::priv_drop(&cfg)?;                 // resolves user/group names
//!   let sock = sockopt::transparent_listener(ListenAddr(a), &ListenOpts { transparent, interface, .. })?;
//!     // EPERM on IP_TRANSPARENT -> io::Error PermissionDenied with a MissingCapability payload
//!     // (sockopt::missing_capability(&e)); never an IP_FREEBIND fallback
//!   privs::drop_privileges(&drop)?;                       // after binding, before threads
//!   let listener = tokio::net::TcpListener::from_std(sock.into())?;
//! per accepted connection:
//!   let client = ClientAddr(peer);
//!   let orig = sockopt::original_destination(&stream)?;   // = local address under TPROXY
//! per server connection (server = ServerAddr(..) or ServerAddr(orig.0) for `server x 0.0.0.0`):
//!   let policy = from_ir::source_policy(&src.value);       // once per backend/server
//!   let bind = policy.for_connection(Some(client), hdr_ip)?; // health checks: for_health_check()
//!   let sock = sockopt::transparent_connect_socket(server, &bind)?;
//!   let stream = sockopt::connect(sock, server).await?;
//!   // with `usesrc client`, close server connections with sockopt::set_reset_on_close()
//! ```
//!
//! # For the configuration / CLI
//!
//! `from_ir::needs(&cfg)` gives the [`hostcheck::TransparencyNeeds`]; `from_ir::check_host(&cfg)`
//! (or `hostcheck::run(&needs)`) reads the host and returns a [`hostcheck::Report`]: print it
//! (`Display`) and exit with `report.exit_status()` (0 ready, 1 not).

pub mod addr;
pub mod from_ir;
pub mod hostcheck;
pub mod json;
pub mod privs;
pub mod sockopt;

#[cfg(test)]
pub(crate) mod testutil;
