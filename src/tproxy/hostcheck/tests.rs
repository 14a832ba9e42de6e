//! Parser and check tests on output captured on this machine
//! (compat-tests/fixtures/tproxy/capture.sh regenerates it).

use super::firewall::{Fams, FwSource, parse_iptables_save, parse_nft_json};
use super::routing::*;
use super::*;

macro_rules! fx {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/compat-tests/fixtures/tproxy/",
            $name
        ))
    };
}

#[test]
fn nft_native_ruleset() {
    let m = parse_nft_json(fx!("nft-native.json")).unwrap();
    assert_eq!(m.native_nft_tables, vec!["inet rhx".to_string()]);
    assert!(!m.iptables_nft_seen);
    assert_eq!(m.socket_rules.len(), 1);
    let s = &m.socket_rules[0];
    assert_eq!(
        (s.fams, s.mark, s.transparent_only),
        (Fams::BOTH, Some(111), true)
    );
    assert_eq!(s.location, "table inet rhx chain prerouting");
    assert_eq!(m.tproxy_rules.len(), 2);
    let t = &m.tproxy_rules[0];
    assert_eq!(
        (t.fams, t.on_port, t.mark, t.dport.as_deref()),
        (Fams::V4, 8080, Some(111), Some("80"))
    );
    assert_eq!(t.on_ip, None);
    let t = &m.tproxy_rules[1];
    assert_eq!(
        (t.fams, t.on_port, t.dport.as_deref()),
        (Fams::V4, 8081, Some("8000"))
    );
}

#[test]
fn nft_divert_chain_and_ipv6_table() {
    let m = parse_nft_json(fx!("nft-divert-chain.json")).unwrap();
    assert_eq!(m.socket_rules.len(), 1);
    let s = &m.socket_rules[0];
    assert_eq!(
        (s.fams, s.mark),
        (Fams::V4, Some(1)),
        "mark found in the jumped-to chain"
    );
    let ports: Vec<(u16, Fams, Option<IpAddr>)> = m
        .tproxy_rules
        .iter()
        .map(|t| (t.on_port, t.fams, t.on_ip))
        .collect();
    assert_eq!(
        ports,
        vec![
            (3129, Fams::V4, Some("127.0.0.1".parse().unwrap())),
            (3130, Fams::V6, Some("::1".parse().unwrap()))
        ]
    );
    assert!(m.tproxy_rules.iter().all(|t| t.mark == Some(1)));
}

#[test]
fn nft_view_of_iptables_nft_rules_is_left_to_iptables_save() {
    let m = parse_nft_json(fx!("nft-from-iptables-nft.json")).unwrap();
    assert!(m.iptables_nft_seen);
    assert!(m.native_nft_tables.is_empty());
    assert!(m.socket_rules.is_empty() && m.tproxy_rules.is_empty());
}

#[test]
fn iptables_nft_save() {
    let m = parse_iptables_save(fx!("iptables-nft-save.txt"), false, FwSource::Iptables);
    assert!(m.iptables_rules_seen);
    assert_eq!(m.socket_rules.len(), 1);
    let s = &m.socket_rules[0];
    assert_eq!(
        (s.fams, s.mark, s.transparent_only),
        (Fams::V4, Some(0x6f), false)
    );
    assert_eq!(s.location, "mangle PREROUTING -> DIVERT");
    let t: Vec<(u16, Option<u32>, Option<&str>)> = m
        .tproxy_rules
        .iter()
        .map(|t| (t.on_port, t.mark, t.dport.as_deref()))
        .collect();
    assert_eq!(
        t,
        vec![
            (8080, Some(0x6f), Some("80")),
            (8081, Some(0x6f), Some("8000"))
        ]
    );
    assert_eq!(m.tproxy_rules[0].on_ip, None, "--on-ip 0.0.0.0 means any");
    assert_eq!(m.divert_chains.len(), 1);
    assert_eq!(m.divert_chains[0].2, "DIVERT");

    let m6 = parse_iptables_save(fx!("ip6tables-nft-save.txt"), true, FwSource::Iptables);
    let s = &m6.socket_rules[0];
    assert_eq!(
        (s.fams, s.mark, s.transparent_only),
        (Fams::V6, Some(111), true)
    );
    assert!(m6.tproxy_rules.is_empty());
}

#[test]
fn iptables_legacy_save_and_warning() {
    let m = parse_iptables_save(
        fx!("iptables-legacy-save.txt"),
        false,
        FwSource::IptablesLegacy,
    );
    let s = &m.socket_rules[0];
    assert_eq!((s.mark, s.transparent_only), (Some(1), true));
    assert_eq!(s.location, "mangle PREROUTING");
    assert!(m.legacy_rules_seen && !m.iptables_rules_seen);
    let t = &m.tproxy_rules[0];
    assert_eq!((t.on_port, t.mark), (50080, Some(1)));
    assert_eq!(t.on_ip, Some("127.0.0.1".parse().unwrap()));
    let w = parse_iptables_save(
        fx!("iptables-nft-save-with-legacy.txt"),
        false,
        FwSource::Iptables,
    );
    assert!(w.legacy_tables_present);
    assert!(!w.iptables_rules_seen);
}

#[test]
fn policy_rules_and_routes() {
    let rules = parse_rules(fx!("ip-rule.json")).unwrap();
    assert_eq!(rules.len(), 5);
    // fwmark 0x1/0x1 at priority 1000 catches every odd mark first, 111 included.
    assert_eq!(table_for_mark(&rules, 111).unwrap().table, "200");
    assert_eq!(table_for_mark(&rules, 1).unwrap().table, "200");
    assert!(table_for_mark(&rules, 110).is_none());
    let r6 = parse_rules(fx!("ip6-rule.json")).unwrap();
    assert_eq!(table_for_mark(&r6, 111).unwrap().table, "100");
    assert!(table_for_mark(&r6, 1).is_none());

    assert!(has_local_default(
        &parse_routes(fx!("route-100.json")).unwrap()
    ));
    assert!(has_local_default(
        &parse_routes(fx!("route6-100.json")).unwrap()
    ));
    let main = parse_routes(fx!("route-main.json")).unwrap();
    assert!(!has_local_default(&main));
    assert_eq!(main[0].dst, Some("10.10.1.0/24".parse().unwrap()));

    let addrs = parse_addrs(fx!("addr.json")).unwrap();
    let local = parse_routes(fx!("route-local.json")).unwrap();
    assert!(is_local("10.10.1.1".parse().unwrap(), &addrs, &local));
    assert!(is_local("127.0.0.5".parse().unwrap(), &addrs, &local));
    assert!(!is_local("10.10.9.9".parse().unwrap(), &addrs, &local));
    let on = onlink_addr("10.10.2.3".parse().unwrap(), &addrs).unwrap();
    assert_eq!(
        (on.ifname.as_str(), on.net.to_string().as_str()),
        ("lb-s", "10.10.2.1/24")
    );
    assert_eq!(
        onlink_addr("fd00:2::3".parse().unwrap(), &addrs)
            .unwrap()
            .net
            .addr,
        "fd00:2::1".parse::<IpAddr>().unwrap()
    );
    assert!(onlink_addr("10.10.7.7".parse().unwrap(), &addrs).is_none());
}

// ------------------------------------------------------------------ check()

fn o(line: u32) -> Origin {
    Origin::new("lab.cfg", line)
}

fn needs_v4() -> TransparencyNeeds {
    TransparencyNeeds {
        transparent_binds: vec![
            (ListenAddr("10.10.1.1:80".parse().unwrap()), o(10)),
            (ListenAddr("10.10.9.9:80".parse().unwrap()), o(13)),
            (ListenAddr("0.0.0.0:8080".parse().unwrap()), o(16)),
        ],
        usesrc_backends: vec![UsesrcBackend {
            name: "bk_web".into(),
            family: Family::V4,
            origin: o(30),
            servers: vec![
                ServerAddr("10.10.2.2:80".parse().unwrap()),
                ServerAddr("10.10.2.3:80".parse().unwrap()),
            ],
        }],
        ..Default::default()
    }
}

/// The lab's proxy namespace, ready (rule 0x1/0x1 of the fixture left out: it would catch 111).
fn good_snapshot() -> HostSnapshot {
    let mut s = HostSnapshot {
        cap_eff: Some(0x1fffeffffff),
        rules_v4: Some(
            r#"[{"priority":0,"src":"all","table":"local"},{"priority":32765,"src":"all","fwmark":"0x6f","table":"100"},{"priority":32766,"src":"all","table":"main"}]"#.into(),
        ),
        rules_v6: Some(fx!("ip6-rule.json").into()),
        local_table_v4: Some(fx!("route-local.json").into()),
        local_table_v6: Some(fx!("route6-local.json").into()),
        addrs: Some(fx!("addr.json").into()),
        nft: Some(fx!("nft-native.json").into()),
        ..Default::default()
    };
    s.tables_v4
        .insert("100".into(), fx!("route-100.json").into());
    s.tables_v6
        .insert("100".into(), fx!("route6-100.json").into());
    for (k, v) in [
        ("net.ipv4.ip_forward", "1"),
        ("net.ipv6.conf.all.forwarding", "1"),
        ("net.ipv4.ip_nonlocal_bind", "0"),
        ("net.ipv4.conf.all.rp_filter", "0"),
    ] {
        s.sysctls.insert(k.into(), v.into());
    }
    s
}

fn errors(r: &Report) -> Vec<&str> {
    r.errors().map(|f| f.id.as_str()).collect()
}

#[test]
fn ready_host() {
    let r = check(&needs_v4(), &good_snapshot());
    assert!(r.ready(), "{r}");
    assert_eq!(r.exit_status(), 0);
    assert!(
        r.ok.iter()
            .any(|l| l.contains("socket-match rule: nftables table inet rhx")),
        "{r}"
    );
    assert!(
        r.ok.iter().any(|l| l.contains("ipv4 TPROXY to port 8080")),
        "{r}"
    );
    // the same-subnet pitfall is always pointed out, with the backend fix
    let w = r.find("same-subnet-clients").expect("same-subnet warning");
    assert_eq!(w.severity, Severity::Warning);
    assert!(w.message.contains("10.10.2.0/24"), "{}", w.message);
    assert!(
        w.fix
            .contains(&"ip route add default via 10.10.2.1 table 200".to_string()),
        "{:?}",
        w.fix
    );
    assert!(
        w.fix
            .contains(&"ip rule add ipproto tcp sport 80 lookup 200 priority 100".to_string())
    );
    // nothing needs IPv6: no IPv6 finding
    assert!(!r.findings.iter().any(|f| f.id.starts_with("ipv6")), "{r}");
    assert!(
        r.to_string()
            .starts_with("transparent proxying host check: READY")
    );
}

#[test]
fn nothing_needed_nothing_reported() {
    let mut s = good_snapshot();
    s.nft = None;
    s.cap_eff = Some(0);
    let r = check(&TransparencyNeeds::default(), &s);
    assert!(r.ready() && r.findings.is_empty(), "{r}");
}

#[test]
fn missing_fwmark_rule() {
    let mut s = good_snapshot();
    s.rules_v4 = Some(r#"[{"priority":0,"src":"all","table":"local"},{"priority":32766,"src":"all","table":"main"}]"#.into());
    let r = check(&needs_v4(), &s);
    assert_eq!(errors(&r), vec!["ipv4-fwmark-rule"], "{r}");
    assert_eq!(r.exit_status(), 1);
    let f = r.find("ipv4-fwmark-rule").unwrap();
    assert_eq!(f.fix, vec!["ip rule add fwmark 111 lookup 100"]);
    assert!(
        f.needed_by
            .iter()
            .any(|n| n.contains("bind 10.10.9.9:80 transparent (lab.cfg:13)")),
        "{:?}",
        f.needed_by
    );
    assert!(
        f.needed_by
            .iter()
            .any(|n| n.contains("backend bk_web") && n.contains("lab.cfg:30"))
    );
    assert!(
        !f.needed_by.iter().any(|n| n.contains("10.10.1.1:80")),
        "a local bind needs no plumbing"
    );
}

#[test]
fn odd_mark_caught_by_other_rule_table_without_local_route() {
    let mut s = good_snapshot();
    s.rules_v4 = Some(fx!("ip-rule.json").into());
    s.tables_v4.insert("200".into(), "[]".into());
    let r = check(&needs_v4(), &s);
    assert_eq!(errors(&r), vec!["ipv4-local-route"], "{r}");
    assert_eq!(
        r.find("ipv4-local-route").unwrap().fix,
        vec!["ip route add local 0.0.0.0/0 dev lo table 200"]
    );
}

#[test]
fn missing_local_route() {
    let mut s = good_snapshot();
    s.tables_v4.insert("100".into(), "[]".into());
    let r = check(&needs_v4(), &s);
    assert_eq!(errors(&r), vec!["ipv4-local-route"], "{r}");
    assert_eq!(
        r.find("ipv4-local-route").unwrap().fix,
        vec!["ip route add local 0.0.0.0/0 dev lo table 100"]
    );
}

#[test]
fn missing_socket_rule_nft_and_iptables_fixes() {
    let mut s = good_snapshot();
    // native nft: drop the socket rule from the ruleset text
    let text = fx!("nft-native.json");
    let start = text
        .find(r#"{"rule": {"family": "inet", "table": "rhx", "chain": "prerouting", "handle": 2"#)
        .unwrap();
    let end = start + 1 + text[start + 1..].find(r#"{"rule""#).unwrap();
    s.nft = Some(format!("{}{}", &text[..start], &text[end..]));
    let r = check(&needs_v4(), &s);
    assert_eq!(errors(&r), vec!["ipv4-socket-rule"], "{r}");
    let f = r.find("ipv4-socket-rule").unwrap();
    assert_eq!(
        f.fix.last().unwrap(),
        "nft add rule inet rhaproxy prerouting meta l4proto tcp socket transparent 1 meta mark set 111 accept"
    );

    // iptables with the DIVERT chain still there: one line, jumping to it
    let mut s = good_snapshot();
    s.nft = Some(fx!("nft-from-iptables-nft.json").into());
    s.iptables_v4 = Some(
        fx!("iptables-nft-save.txt").replace("-A PREROUTING -p tcp -m socket -j DIVERT\n", ""),
    );
    let r = check(&needs_v4(), &s);
    assert_eq!(errors(&r), vec!["ipv4-socket-rule"], "{r}");
    assert_eq!(
        r.find("ipv4-socket-rule").unwrap().fix,
        vec!["iptables -t mangle -I PREROUTING -p tcp -m socket --transparent -j DIVERT"]
    );
}

#[test]
fn iptables_ready_and_missing_tproxy_port() {
    let mut s = good_snapshot();
    s.nft = Some(fx!("nft-from-iptables-nft.json").into());
    s.iptables_v4 = Some(fx!("iptables-nft-save.txt").into());
    let mut needs = needs_v4();
    assert!(check(&needs, &s).ready());
    needs.intercept_ports.push(InterceptPort {
        port: 9999,
        family: Family::V4,
        origin: o(40),
    });
    let r = check(&needs, &s);
    assert_eq!(errors(&r), vec!["ipv4-tproxy-port-9999"], "{r}");
    assert_eq!(
        r.find("ipv4-tproxy-port-9999").unwrap().fix,
        vec![
            "iptables -t mangle -A PREROUTING -p tcp --dport <port-to-intercept> -j TPROXY --on-port 9999 --tproxy-mark 111"
        ]
    );
}

#[test]
fn capabilities_and_user() {
    let mut s = good_snapshot();
    s.cap_eff = Some(0);
    let mut needs = needs_v4();
    let r = check(&needs, &s);
    assert_eq!(errors(&r), vec!["capability"], "{r}");
    assert!(
        r.find("capability")
            .unwrap()
            .message
            .contains("CAP_NET_ADMIN")
    );
    s.cap_eff = Some(1 << 13); // CAP_NET_RAW alone is enough
    assert!(check(&needs, &s).ready());
    needs.runs_as_user = Some("haproxy".into());
    let r = check(&needs, &s);
    assert_eq!(errors(&r), vec!["user-drops-capability"], "{r}");
    assert!(r.find("user-drops-capability").unwrap().fix[0].contains("setcap cap_net_admin"));
    needs.keeps_caps = true;
    assert!(check(&needs, &s).ready());
}

#[test]
fn nonlocal_bind_hides_missing_transparent() {
    let mut s = good_snapshot();
    let mut needs = needs_v4();
    needs
        .plain_binds
        .push((ListenAddr("10.10.9.9:81".parse().unwrap()), o(20)));
    needs
        .plain_binds
        .push((ListenAddr("10.10.1.1:81".parse().unwrap()), o(21)));
    let r = check(&needs, &s);
    assert_eq!(errors(&r), vec!["nonlocal-bind-without-transparent"], "{r}");
    s.sysctls
        .insert("net.ipv4.ip_nonlocal_bind".into(), "1".into());
    let r = check(&needs, &s);
    assert_eq!(
        errors(&r),
        vec!["nonlocal-bind-hides-missing-transparent"],
        "{r}"
    );
    let f = r.find("nonlocal-bind-hides-missing-transparent").unwrap();
    assert_eq!(f.fix[0], "add `transparent` to the bind line at lab.cfg:20");
    assert!(r.find("nonlocal-bind-not-needed").is_some());
}

#[test]
fn forwarding_and_ipv6() {
    let mut s = good_snapshot();
    s.sysctls.insert("net.ipv4.ip_forward".into(), "0".into());
    let r = check(&needs_v4(), &s);
    // interception (0.0.0.0:8080 transparent) makes forwarding a missing piece
    assert_eq!(errors(&r), vec!["ipv4-forwarding"], "{r}");
    assert_eq!(
        r.find("ipv4-forwarding").unwrap().fix,
        vec!["sysctl -w net.ipv4.ip_forward=1"]
    );
    let mut needs = needs_v4();
    needs.transparent_binds.pop();
    let r = check(&needs, &s);
    assert!(r.ready(), "{r}");
    assert_eq!(
        r.find("ipv4-forwarding").unwrap().severity,
        Severity::Warning
    );

    // IPv6 usesrc: the nft inet socket rule covers it; remove the IPv6 policy pieces
    let needs6 = TransparencyNeeds {
        transparent_binds: vec![(ListenAddr("[fd00:1::1]:80".parse().unwrap()), o(50))],
        usesrc_backends: vec![UsesrcBackend {
            name: "bk_v6".into(),
            family: Family::V6,
            origin: o(60),
            servers: vec![ServerAddr("[fd00:2::2]:80".parse().unwrap())],
        }],
        ..Default::default()
    };
    assert!(check(&needs6, &good_snapshot()).ready());
    let mut s = good_snapshot();
    s.rules_v6 = Some(r#"[{"priority":0,"src":"all","table":"local"},{"priority":32766,"src":"all","table":"main"}]"#.into());
    s.tables_v6.insert("100".into(), "[]".into());
    let r = check(&needs6, &s);
    assert_eq!(
        errors(&r),
        vec!["ipv6-fwmark-rule", "ipv6-local-route"],
        "{r}"
    );
    assert_eq!(
        r.find("ipv6-fwmark-rule").unwrap().fix,
        vec!["ip -6 rule add fwmark 111 lookup 100"]
    );
    assert_eq!(
        r.find("ipv6-local-route").unwrap().fix,
        vec!["ip -6 route add local ::/0 dev lo table 100"]
    );
    let w = r.find("same-subnet-clients").unwrap();
    assert!(
        w.fix
            .contains(&"ip -6 route add default via fd00:2::1 table 200".to_string()),
        "{:?}",
        w.fix
    );
}

#[test]
fn no_firewall_at_all_suggests_nft_when_available() {
    let mut s = good_snapshot();
    s.nft = Some(r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}]}"#.into());
    s.iptables_v4 = Some(String::new());
    let r = check(&needs_v4(), &s);
    println!("{r}");
    assert_eq!(
        errors(&r),
        vec!["ipv4-socket-rule", "ipv4-tproxy-port-8080"],
        "{r}"
    );
    assert!(r.find("ipv4-socket-rule").unwrap().fix[0].starts_with("nft add table inet rhaproxy"));
    assert!(
        r.find("ipv4-tproxy-port-8080").unwrap().fix[2]
            .contains("tproxy ip to :8080 meta mark set 111")
    );
}

#[test]
fn legacy_only_rules_get_legacy_commands() {
    let mut s = good_snapshot();
    s.nft = Some(r#"{"nftables": [{"metainfo": {"json_schema_version": 1}}]}"#.into());
    s.iptables_v4 = Some(String::new());
    // the lab's iptables rules, loaded with iptables-legacy-restore, minus the socket rule
    s.iptables_legacy_v4 = Some(
        fx!("iptables-nft-save.txt").replace("-A PREROUTING -p tcp -m socket -j DIVERT\n", ""),
    );
    let r = check(&needs_v4(), &s);
    assert_eq!(errors(&r), vec!["ipv4-socket-rule"], "{r}");
    assert_eq!(
        r.find("ipv4-socket-rule").unwrap().fix,
        vec!["iptables-legacy -t mangle -I PREROUTING -p tcp -m socket --transparent -j DIVERT"]
    );
}

#[test]
fn unreadable_firewall_is_a_warning() {
    let mut s = good_snapshot();
    s.nft = None;
    s.unavailable
        .push("`nft -j list ruleset` failed: Operation not permitted".into());
    let r = check(&needs_v4(), &s);
    assert!(r.ready(), "{r}");
    assert_eq!(
        r.find("ipv4-firewall-unknown").unwrap().severity,
        Severity::Warning
    );
    assert!(
        r.findings
            .iter()
            .any(|f| f.id == "host-read" && f.message.contains("nft"))
    );
}
