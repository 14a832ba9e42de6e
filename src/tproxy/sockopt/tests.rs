use super::*;
use crate::tproxy::privs::{CapState, set_thread_caps, thread_caps};
use crate::tproxy::testutil::in_new_netns;
use std::io::{Read, Write};
use std::net::TcpListener;

fn la(s: &str) -> ListenAddr {
    ListenAddr(s.parse().unwrap())
}
fn sa(s: &str) -> ServerAddr {
    ServerAddr(s.parse().unwrap())
}
fn ca(s: &str) -> ClientAddr {
    ClientAddr(s.parse().unwrap())
}

#[test]
fn transparent_listener_binds_non_local_v4_and_v6() {
    in_new_netns("transparent listener on a non-local address", || {
        let opts = ListenOpts {
            transparent: true,
            ..Default::default()
        };
        let s = transparent_listener(la("192.0.2.10:8080"), &opts).expect("v4 transparent");
        assert!(s.ip_transparent_v4().unwrap());
        assert!(s.reuse_address().unwrap());
        assert!(s.reuse_port().unwrap());
        assert_eq!(
            s.local_addr().unwrap().as_socket().unwrap(),
            "192.0.2.10:8080".parse().unwrap()
        );
        let s6 = transparent_listener(la("[2001:db8::10]:8080"), &opts).expect("v6 transparent");
        assert!(s6.ip_transparent_v6().unwrap());

        // Without `transparent` the same bind fails loudly with EADDRNOTAVAIL.
        let e = transparent_listener(la("192.0.2.10:8081"), &ListenOpts::default()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(nix::libc::EADDRNOTAVAIL), "{e}");
    });
}

#[test]
fn listener_interface_and_noreuseport() {
    in_new_netns("listener with interface lo, noreuseport", || {
        let opts = ListenOpts {
            reuse_port: false,
            interface: Some("lo".into()),
            ..Default::default()
        };
        let s = transparent_listener(la("127.0.0.1:0"), &opts).unwrap();
        assert!(!s.reuse_port().unwrap());
        assert_eq!(s.device().unwrap().as_deref(), Some(&b"lo"[..]));
    });
}

#[test]
fn eperm_is_a_distinct_missing_capability_error_without_freebind() {
    in_new_netns("IP_TRANSPARENT refused without CAP_NET_ADMIN", || {
        // capset only affects this thread; the namespace and thread die after the test.
        let st = thread_caps().unwrap();
        let no_net =
            !(crate::tproxy::privs::Cap::NetAdmin.bit() | crate::tproxy::privs::Cap::NetRaw.bit());
        set_thread_caps(&CapState {
            effective: st.effective & no_net,
            permitted: st.permitted & no_net,
            inheritable: 0,
        })
        .unwrap();
        let opts = ListenOpts {
            transparent: true,
            ..Default::default()
        };
        let e = transparent_listener(la("192.0.2.10:8080"), &opts).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        let mc = missing_capability(&e).expect("MissingCapability payload");
        assert_eq!(mc.option, "IP_TRANSPARENT");
        assert_eq!(mc.capability, "CAP_NET_ADMIN");
        let msg = e.to_string();
        assert!(
            msg.contains("CAP_NET_ADMIN") && msg.contains("192.0.2.10:8080"),
            "{msg}"
        );
        assert!(msg.contains("No fallback to IP_FREEBIND"), "{msg}");

        let e6 = transparent_listener(la("[2001:db8::1]:80"), &opts).unwrap_err();
        assert_eq!(missing_capability(&e6).unwrap().option, "IPV6_TRANSPARENT");

        let e = transparent_connect_socket(
            sa("127.0.0.1:80"),
            &SourceBind::client_ip(ca("127.0.0.9:5000")),
        )
        .unwrap_err();
        let mc = missing_capability(&e).expect("outgoing MissingCapability");
        assert_eq!(mc.role, "outgoing");
        // A plain local source needs no privilege.
        let plain = SourceBind {
            mode: SourceMode::Plain {
                ip: "127.0.0.1".parse().unwrap(),
                ports: PortSpec::Any,
            },
            interface: None,
        };
        transparent_connect_socket(sa("127.0.0.1:80"), &plain).unwrap();
    });
}

/// Accept one connection, answer with the peer address, return it.
fn echo_once(l: TcpListener) -> std::thread::JoinHandle<SocketAddr> {
    std::thread::spawn(move || {
        let (mut s, peer) = l.accept().unwrap();
        // The client may reset the connection first (SO_LINGER 0 tests); the peer address is what counts.
        let _ = s.write_all(peer.to_string().as_bytes());
        peer
    })
}

fn connect_blocking(sock: Socket, server: ServerAddr) -> String {
    sock.set_nonblocking(false).unwrap();
    sock.connect(&server.sock_addr().into()).unwrap();
    let mut s: std::net::TcpStream = sock.into();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn usesrc_clientip_client_and_fixed_on_loopback() {
    in_new_netns("outgoing sockets with usesrc on loopback", || {
        // 127.0.0.0/8 is local, so the spoofed sources route back without TPROXY rules; the
        // real TPROXY paths are exercised by compat-tests/tproxy_netns.rs.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = ServerAddr(l.local_addr().unwrap());
        let h = echo_once(l.try_clone().unwrap());
        let sock = transparent_connect_socket(server, &SourceBind::client_ip(ca("127.0.0.9:4444")))
            .unwrap();
        assert!(sock.ip_transparent_v4().unwrap());
        assert!(sock.tcp_nodelay().unwrap());
        assert!(
            nix::sys::socket::getsockopt(&sock, sockopt::IpBindAddressNoPort).unwrap(),
            "IP_BIND_ADDRESS_NO_PORT"
        );
        let seen = connect_blocking(sock, server);
        let peer = h.join().unwrap();
        assert_eq!(peer.ip(), "127.0.0.9".parse::<IpAddr>().unwrap(), "{seen}");
        assert_ne!(peer.port(), 4444, "clientip must not reuse the client port");

        let h = echo_once(l.try_clone().unwrap());
        let sock =
            transparent_connect_socket(server, &SourceBind::client(ca("127.0.0.10:4445"))).unwrap();
        connect_blocking(sock, server);
        assert_eq!(h.join().unwrap(), "127.0.0.10:4445".parse().unwrap());

        let h = echo_once(l.try_clone().unwrap());
        let fixed = SourceBind {
            mode: SourceMode::Fixed {
                ip: "127.0.0.11".parse().unwrap(),
                ports: PortSpec::Fixed(4446),
            },
            interface: Some("lo".into()),
        };
        let sock = transparent_connect_socket(server, &fixed).unwrap();
        connect_blocking(sock, server);
        assert_eq!(h.join().unwrap(), "127.0.0.11:4446".parse().unwrap());

        // IPv4 client seen on a dual-stack listener as ::ffff:a.b.c.d
        let h = echo_once(l);
        let sock =
            transparent_connect_socket(server, &SourceBind::client_ip(ca("[::ffff:127.0.0.12]:1")))
                .unwrap();
        connect_blocking(sock, server);
        assert_eq!(
            h.join().unwrap().ip(),
            "127.0.0.12".parse::<IpAddr>().unwrap()
        );
    });
}

#[test]
fn usesrc_ipv6_and_family_mismatch() {
    in_new_netns("outgoing IPv6 sockets", || {
        let l = TcpListener::bind("[::1]:0").unwrap();
        let server = ServerAddr(l.local_addr().unwrap());
        let h = echo_once(l);
        let sock =
            transparent_connect_socket(server, &SourceBind::client_ip(ca("[::1]:9"))).unwrap();
        assert!(sock.ip_transparent_v6().unwrap());
        connect_blocking(sock, server);
        assert_eq!(h.join().unwrap().ip(), "::1".parse::<IpAddr>().unwrap());

        let e =
            transparent_connect_socket(sa("[::1]:80"), &SourceBind::client_ip(ca("10.0.0.1:1")))
                .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("same address family"), "{e}");
    });
}

#[test]
fn plain_source_and_port_range() {
    in_new_netns("source ADDR with a port range", || {
        let server = sa("127.0.0.1:9");
        let range = SourceBind {
            mode: SourceMode::Plain {
                ip: "127.0.0.1".parse().unwrap(),
                ports: PortSpec::Range {
                    low: 40000,
                    high: 40001,
                },
            },
            interface: None,
        };
        let a = transparent_connect_socket(server, &range).unwrap();
        let b = transparent_connect_socket(server, &range).unwrap();
        let pa = a.local_addr().unwrap().as_socket().unwrap().port();
        let pb = b.local_addr().unwrap().as_socket().unwrap().port();
        assert!((40000..=40001).contains(&pa) && (40000..=40001).contains(&pb));
        assert_ne!(pa, pb);
        assert!(!a.ip_transparent_v4().unwrap());
        let e = transparent_connect_socket(server, &range).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(nix::libc::EADDRINUSE));

        // `source 0.0.0.0` binds nothing.
        let any = SourceBind {
            mode: SourceMode::Plain {
                ip: "0.0.0.0".parse().unwrap(),
                ports: PortSpec::Any,
            },
            interface: None,
        };
        let s = transparent_connect_socket(server, &any).unwrap();
        assert_eq!(
            s.local_addr().unwrap().as_socket().unwrap(),
            "0.0.0.0:0".parse().unwrap()
        );
    });
}

#[test]
fn policy_resolution() {
    let p = SourcePolicy {
        ip: "0.0.0.0".parse().unwrap(),
        ports: PortSpec::Any,
        usesrc: Some(UseSrc::ClientIp),
        interface: Some("eth1".into()),
    };
    let c = ca("10.10.1.2:5555");
    let b = p.for_connection(Some(c), None).unwrap();
    assert_eq!(b.mode, SourceMode::ClientIp(c));
    assert_eq!(b.interface.as_deref(), Some("eth1"));
    assert!(b.is_transparent());
    assert!(!p.for_health_check().is_transparent());
    assert!(p.for_connection(None, None).is_err());
    let h = SourcePolicy {
        usesrc: Some(UseSrc::HdrIp {
            header: "x-forwarded-for".into(),
            occ: -1,
        }),
        ..p
    };
    let b = h
        .for_connection(Some(c), Some("192.0.2.7".parse().unwrap()))
        .unwrap();
    assert_eq!(b.mode, SourceMode::ClientIp(ca("192.0.2.7:0")));
}

#[test]
fn original_destination_is_local_address() {
    in_new_netns("original destination", || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let _c = std::net::TcpStream::connect(addr).unwrap();
        let (s, _) = l.accept().unwrap();
        assert_eq!(original_destination(&s).unwrap(), OrigDstAddr(addr));
    });
}

#[test]
fn tokio_connect_helper() {
    in_new_netns("tokio connect", || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = ServerAddr(l.local_addr().unwrap());
        let h = echo_once(l);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let sock =
                transparent_connect_socket(server, &SourceBind::client_ip(ca("127.0.0.20:1")))
                    .unwrap();
            let s = connect(sock, server).await.unwrap();
            set_reset_on_close(&s).unwrap();
            assert_eq!(
                s.local_addr().unwrap().ip(),
                "127.0.0.20".parse::<IpAddr>().unwrap()
            );
        });
        assert_eq!(
            h.join().unwrap().ip(),
            "127.0.0.20".parse::<IpAddr>().unwrap()
        );
    });
}
