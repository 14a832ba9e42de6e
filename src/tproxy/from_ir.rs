//! From the configuration IR to what the transparency layer needs: the [`SourcePolicy`] of a
//! backend or server, and the [`TransparencyNeeds`] of a whole configuration for the host check.

use crate::config::ir::{self, Cap as ProxyCap, Config, ServerTarget};
use crate::tproxy::addr::{Family, ListenAddr, ServerAddr};
use crate::tproxy::hostcheck::{Origin, TransparencyNeeds, UsesrcBackend};
use crate::tproxy::privs::{Cap, PrivDrop, resolve_group, resolve_user};
use crate::tproxy::sockopt::{PortSpec, SourcePolicy, UseSrc};
use std::net::{IpAddr, SocketAddr};

fn ports(low: u16, high: u16) -> PortSpec {
    match (low, high) {
        (0, _) => PortSpec::Any,
        (l, h) if h > l => PortSpec::Range { low: l, high: h },
        (l, _) => PortSpec::Fixed(l),
    }
}

fn origin(loc: &ir::Loc) -> Origin {
    Origin::new(loc.file.to_string(), loc.line as u32)
}

/// The socket-level policy of a `source` statement.
pub fn source_policy(src: &ir::Source) -> SourcePolicy {
    SourcePolicy {
        ip: src.addr,
        ports: ports(src.port_low, src.port_high),
        usesrc: src.usesrc.as_ref().map(|u| match u {
            ir::UseSrc::Client => UseSrc::Client,
            ir::UseSrc::ClientIp => UseSrc::ClientIp,
            ir::UseSrc::Addr(ip, p) => UseSrc::Addr {
                ip: *ip,
                ports: ports(*p, *p),
            },
            ir::UseSrc::HdrIp { header, occ } => UseSrc::HdrIp {
                header: header.clone(),
                occ: *occ,
            },
        }),
        interface: src.interface.clone(),
    }
}

/// What the configuration's transparent parts need from the host (input of the host check).
///
/// * every `bind` address goes to `transparent_binds` or `plain_binds` (a port range counts by
///   its first port); wildcard transparent binds are intercepting ports for the check;
/// * every backend/listen with `usesrc` (its own or a server's) gives one entry per address
///   family of its servers, with the server addresses (`0.0.0.0` servers stay out of the
///   same-subnet check);
/// * `user`/`uid` and whether `setcap` keeps cap_net_admin or cap_net_raw.
pub fn needs(cfg: &Config) -> TransparencyNeeds {
    let mut n = TransparencyNeeds::default();
    for p in &cfg.proxies {
        if p.cap().contains(ProxyCap::FE) {
            for b in &p.binds {
                for spec in &b.addrs {
                    let entry = (ListenAddr(spec.addr), origin(&b.loc));
                    if b.transparent {
                        n.transparent_binds.push(entry);
                    } else {
                        n.plain_binds.push(entry);
                    }
                }
            }
        }
        if !p.cap().contains(ProxyCap::BE) {
            continue;
        }
        let mut per_family: Vec<UsesrcBackend> = Vec::new();
        for s in &p.servers {
            let Some(src) = p.effective_source(s) else {
                continue;
            };
            if src.value.usesrc.is_none() {
                continue;
            }
            let target: Option<SocketAddr> = match &s.target {
                ServerTarget::Addr(a) => Some(*a),
                ServerTarget::AddrPortFromClient(ip, _) => Some(SocketAddr::new(*ip, 0)),
                ServerTarget::Intercept { .. } => None,
            };
            let family = match target {
                Some(a) if !a.ip().is_unspecified() => Family::of(&a.ip()),
                _ => Family::of(&src.value.addr),
            };
            let idx = match per_family.iter().position(|b| b.family == family) {
                Some(i) => i,
                None => {
                    per_family.push(UsesrcBackend {
                        name: p.name.clone(),
                        family,
                        origin: origin(&src.loc),
                        servers: Vec::new(),
                    });
                    per_family.len() - 1
                }
            };
            if let Some(a) = target.filter(|a| !a.ip().is_unspecified()) {
                per_family[idx].servers.push(ServerAddr(a));
            }
        }
        if per_family.is_empty()
            && let Some(src) = p.uses_usesrc()
        {
            // usesrc without servers yet: still needs the plumbing of its family
            per_family.push(UsesrcBackend {
                name: p.name.clone(),
                family: Family::of(&src.value.addr),
                origin: origin(&src.loc),
                servers: Vec::new(),
            });
        }
        n.usesrc_backends.extend(per_family);
    }
    let g = &cfg.global;
    n.runs_as_user = match (&g.user, &g.uid) {
        (Some(u), _) => Some(u.value.clone()),
        (None, Some(uid)) if uid.value != 0 => Some(format!("uid {}", uid.value)),
        _ => None,
    };
    n.keeps_caps = g.setcap.as_ref().is_some_and(|c| {
        c.value.iter().any(|w| {
            w.split(',')
                .any(|c| matches!(Cap::parse(c.trim()), Some(Cap::NetAdmin | Cap::NetRaw)))
        })
    });
    n
}

/// `ip` normalised for comparisons with kernel output (IPv4-mapped IPv6 to IPv4).
pub fn plain_ip(ip: IpAddr) -> IpAddr {
    crate::tproxy::addr::unmap(ip)
}

/// Read the host and check it against what `cfg` needs (the `--check-host` style entry point:
/// print the report, exit with [`crate::tproxy::hostcheck::Report::exit_status`]).
pub fn check_host(cfg: &Config) -> crate::tproxy::hostcheck::Report {
    crate::tproxy::hostcheck::run(&needs(cfg))
}

/// The privilege drop of the global section: `chroot`, `user`/`uid`, `group`/`gid` (names
/// resolved now, before any chroot) and the capabilities kept by `setcap`. `user NAME` also
/// gives NAME's primary group unless `group`/`gid` is set.
pub fn priv_drop(cfg: &Config) -> std::io::Result<PrivDrop> {
    let g = &cfg.global;
    let mut d = PrivDrop {
        drop_bounding: true,
        ..Default::default()
    };
    if let Some(u) = &g.user {
        let (uid, gid) = resolve_user(&u.value)?;
        d.uid = Some(uid);
        d.gid = Some(gid);
    }
    if let Some(uid) = &g.uid {
        d.uid = Some(uid.value);
    }
    if let Some(gr) = &g.group {
        d.gid = Some(resolve_group(&gr.value)?);
    }
    if let Some(gid) = &g.gid {
        d.gid = Some(gid.value);
    }
    d.chroot = g.chroot.as_ref().map(|c| c.value.clone().into());
    if let Some(c) = &g.setcap {
        for w in c.value.iter().flat_map(|w| w.split(',')) {
            let w = w.trim();
            if w.is_empty() {
                continue;
            }
            match Cap::parse(w) {
                Some(cap) if !d.keep.contains(&cap) => d.keep.push(cap),
                Some(_) => {}
                None => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!(
                            "setcap: unsupported capability '{w}' (supported: cap_net_admin, cap_net_raw, cap_net_bind_service)"
                        ),
                    ));
                }
            }
        }
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;
    use crate::diag::Diags;

    const CFG: &str = "global
    user nobody
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend ft_web
    bind 10.10.1.1:80 transparent
    bind 10.10.9.9:80 transparent
    bind 0.0.0.0:8080 transparent
    bind [fd00:1::1]:80 transparent
    bind 10.10.1.1:81
    default_backend bk_web
backend bk_web
    balance source
    source 0.0.0.0 usesrc clientip
    server srv1 10.10.2.2:80
    server srv2 10.10.2.3:80
backend bk_v6
    source [::] usesrc clientip interface lb-s
    server srv1 [fd00:2::2]:80
backend bk_orig
    source 0.0.0.0 usesrc client
    server orig 0.0.0.0
backend bk_plain
    server s 10.10.2.2:80 source 10.10.2.1:1024-1030
backend bk_fixed
    server s 10.10.2.2:80 source 0.0.0.0 usesrc 10.10.1.200:7000
";

    fn parsed() -> Config {
        let mut d = Diags::captured();
        let cfg = parse_str("t.cfg", CFG, &mut d).expect("config parses");
        assert!(!d.fatal, "config errors: {:?}", d.messages);
        cfg
    }

    #[test]
    fn needs_from_config() {
        let mut cfg = parsed();
        let n = needs(&cfg);
        assert!(!n.keeps_caps);
        // `setcap` (HAProxy 2.9 syntax) as the IR carries it
        let loc = cfg.global.user.as_ref().unwrap().loc.clone();
        cfg.global.setcap = Some(ir::Located::new(
            vec!["cap_net_bind_service,cap_net_admin".into()],
            loc,
        ));
        let n = needs(&cfg);
        let tb: Vec<String> = n
            .transparent_binds
            .iter()
            .map(|(a, o)| format!("{a}@{o}"))
            .collect();
        assert_eq!(
            tb,
            vec![
                "10.10.1.1:80@t.cfg:9",
                "10.10.9.9:80@t.cfg:10",
                "0.0.0.0:8080@t.cfg:11",
                "[fd00:1::1]:80@t.cfg:12"
            ]
        );
        assert_eq!(n.plain_binds.len(), 1);
        let be: Vec<(String, Family, String, usize)> = n
            .usesrc_backends
            .iter()
            .map(|b| {
                (
                    b.name.clone(),
                    b.family,
                    b.origin.to_string(),
                    b.servers.len(),
                )
            })
            .collect();
        assert_eq!(
            be,
            vec![
                ("bk_web".into(), Family::V4, "t.cfg:17".into(), 2),
                ("bk_v6".into(), Family::V6, "t.cfg:21".into(), 1),
                ("bk_orig".into(), Family::V4, "t.cfg:24".into(), 0),
                ("bk_fixed".into(), Family::V4, "t.cfg:29".into(), 1),
            ]
        );
        assert_eq!(n.runs_as_user.as_deref(), Some("nobody"));
        assert!(n.keeps_caps);
    }

    #[test]
    fn privilege_drop_from_global() {
        let mut cfg = parsed();
        let d = priv_drop(&cfg).unwrap();
        let (uid, gid) = resolve_user("nobody").unwrap();
        assert_eq!(
            (d.uid, d.gid, d.chroot.clone()),
            (Some(uid), Some(gid), None)
        );
        assert!(d.keep.is_empty());
        let loc = cfg.global.user.as_ref().unwrap().loc.clone();
        cfg.global.setcap = Some(ir::Located::new(
            vec!["cap_net_admin,cap_net_bind_service".into()],
            loc.clone(),
        ));
        cfg.global.gid = Some(ir::Located::new(4242, loc.clone()));
        cfg.global.chroot = Some(ir::Located::new("/var/empty".into(), loc.clone()));
        let d = priv_drop(&cfg).unwrap();
        assert_eq!(d.keep, vec![Cap::NetAdmin, Cap::NetBindService]);
        assert_eq!(d.gid, Some(4242));
        assert_eq!(d.chroot, Some("/var/empty".into()));
        cfg.global.setcap = Some(ir::Located::new(vec!["cap_sys_admin".into()], loc));
        assert!(priv_drop(&cfg).is_err());
    }

    #[test]
    fn source_policies() {
        let cfg = parsed();
        let be = |name: &str| cfg.proxies.iter().find(|p| p.name == name).unwrap();
        let p = source_policy(&be("bk_v6").source.as_ref().unwrap().value);
        assert_eq!(p.usesrc, Some(UseSrc::ClientIp));
        assert_eq!(p.interface.as_deref(), Some("lb-s"));
        let s = &be("bk_plain").servers[0];
        let p = source_policy(&s.params.source.as_ref().unwrap().value);
        assert_eq!(
            p.ports,
            PortSpec::Range {
                low: 1024,
                high: 1030
            }
        );
        assert_eq!(p.usesrc, None);
        let s = &be("bk_fixed").servers[0];
        let p = source_policy(&s.params.source.as_ref().unwrap().value);
        assert_eq!(
            p.usesrc,
            Some(UseSrc::Addr {
                ip: "10.10.1.200".parse().unwrap(),
                ports: PortSpec::Fixed(7000)
            })
        );
    }
}
