use super::*;
use std::net::IpAddr;

fn servers(weights: &[u32]) -> Vec<LbServer> {
    let puids = assign_puids(&vec![None; weights.len()]);
    weights
        .iter()
        .zip(puids)
        .map(|(&w, p)| LbServer::new(p, w))
        .collect()
}

fn ht(args: &[&str]) -> HashType {
    parse_hash_type(args).unwrap()
}

fn pick_src(b: &Balancer, ip: &str) -> usize {
    b.pick(&RequestKey::tcp(ip.parse().unwrap()), None).unwrap()
}

/// facts §3.8 test vector table, every row and column.
#[test]
fn lb_source_vector_table() {
    let cols: Vec<(&[u32], HashType)> = vec![
        (&[1, 1, 1], ht(&["map-based"])),
        (&[1, 2, 3], ht(&["map-based"])),
        (&[1, 1, 1], ht(&["map-based", "sdbm", "avalanche"])),
        (&[1, 1, 1], ht(&["consistent"])),
        (&[1, 1, 1], ht(&["consistent", "sdbm"])),
        (&[10, 20, 30], ht(&["consistent"])),
    ];
    let rows: [(&str, u32, [usize; 6]); 7] = [
        ("10.0.0.1", 0x0a000001, [3, 3, 1, 1, 3, 2]),
        ("10.0.0.2", 0x0a000002, [1, 1, 3, 1, 3, 3]),
        ("192.168.1.10", 0xc0a8010a, [3, 2, 1, 2, 3, 3]),
        ("172.16.5.4", 0xac100504, [3, 2, 2, 2, 3, 3]),
        ("203.0.113.77", 0xcb00714d, [1, 3, 3, 2, 1, 3]),
        ("2001:db8::1", 0x20010db9, [1, 3, 1, 1, 1, 2]),
        ("::ffff:10.0.0.1", 0x0a00fffe, [1, 1, 1, 2, 3, 3]),
    ];
    let bals: Vec<Balancer> = cols
        .iter()
        .map(|(w, h)| Balancer::new(servers(w), Algorithm::Source, *h, false, 0))
        .collect();
    for (ip, key, expect) in rows {
        assert_eq!(key::source_key(ip.parse().unwrap()), key, "{ip}");
        for (c, b) in bals.iter().enumerate() {
            assert_eq!(pick_src(b, ip) + 1, expect[c], "{ip} column {c}");
        }
    }
}

#[test]
fn lb_map_tables() {
    let t = |w: &[u32]| {
        let b = Balancer::new(
            servers(w),
            Algorithm::StaticRr,
            HashType::MAP_BASED,
            false,
            0,
        );
        b.snapshot()
            .map_table()
            .iter()
            .map(|&i| i + 1)
            .collect::<Vec<_>>()
    };
    assert_eq!(t(&[1, 1, 1]), vec![1, 2, 3]);
    assert_eq!(t(&[1, 2, 3]), vec![1, 3, 2, 3, 2, 3]);
    assert_eq!(t(&[10, 20, 30]), vec![1, 3, 2, 3, 2, 3]);
    assert_eq!(
        t(&[3, 1, 2, 7, 1]),
        vec![1, 4, 2, 4, 1, 4, 3, 4, 3, 4, 1, 4, 4, 5]
    );
}

#[test]
fn lb_ring_points() {
    let b = Balancer::new(
        servers(&[1, 2]),
        Algorithm::Source,
        HashType::CONSISTENT,
        false,
        0,
    );
    let snap = b.snapshot();
    assert_eq!(snap.ring().len(), 48);
    assert!(snap.ring().contains(&(full_hash(4096), 0)));
    assert!(snap.ring().contains(&(full_hash(2 * 4096 + 31), 1)));
    assert!(snap.ring().windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn lb_single_server_and_backups() {
    // one usable server => key 0 ; backups only when no active server
    let mut sv = servers(&[1, 1, 1, 1]);
    sv[2].backup = true;
    sv[3].backup = true;
    for allb in [false, true] {
        let b = Balancer::new(sv.clone(), Algorithm::Source, HashType::MAP_BASED, allb, 0);
        b.set_usable(0, false);
        assert_eq!(pick_src(&b, "10.0.0.1"), 1);
        assert_eq!(
            b.request_hash(&RequestKey::tcp("10.0.0.1".parse().unwrap())),
            Some(0)
        );
        b.set_usable(1, false);
        let picks: std::collections::BTreeSet<usize> = (0..50)
            .map(|k| pick_src(&b, &format!("10.0.0.{k}")))
            .collect();
        if allb {
            assert_eq!(picks, [2, 3].into());
        } else {
            assert_eq!(picks, [2].into());
        }
        b.set_usable(2, false);
        assert_eq!(pick_src(&b, "10.0.0.1"), 3);
        b.set_usable(3, false);
        assert_eq!(
            b.pick(&RequestKey::tcp("10.0.0.1".parse().unwrap()), None),
            None
        );
    }
}

#[test]
fn lb_first_backup_map_quirk() {
    // Map table for a lone first backup is built over *all* usable backups
    // with the first backup's weight as size: weights 1 (down active),
    // 2 and 4 (backups) => slot 0 goes to the second backup.
    let mut sv = servers(&[1, 2, 4]);
    sv[1].backup = true;
    sv[2].backup = true;
    let b = Balancer::new(sv, Algorithm::Source, HashType::MAP_BASED, false, 0);
    b.set_usable(0, false);
    assert_eq!(pick_src(&b, "10.0.0.1"), 2);
}

#[test]
fn lb_weight_zero_excluded() {
    let b = Balancer::new(
        servers(&[1, 0, 1]),
        Algorithm::RoundRobin,
        HashType::MAP_BASED,
        false,
        0,
    );
    let k = RequestKey::tcp("127.0.0.1".parse().unwrap());
    let seq: Vec<usize> = (0..6).map(|_| b.pick(&k, None).unwrap()).collect();
    assert_eq!(seq, vec![0, 2, 0, 2, 0, 2]);
}

#[test]
fn lb_consistent_avoid_walks_forward() {
    let b = Balancer::new(
        servers(&[1, 1, 1]),
        Algorithm::Source,
        HashType::CONSISTENT,
        false,
        0,
    );
    let k = RequestKey::tcp("10.0.0.1".parse().unwrap());
    let first = b.pick(&k, None).unwrap();
    let other = b.pick(&k, Some(first)).unwrap();
    assert_ne!(first, other);
    // map-based ignores avoid
    let m = Balancer::new(
        servers(&[1, 1, 1]),
        Algorithm::Source,
        HashType::MAP_BASED,
        false,
        0,
    );
    let f = m.pick(&k, None).unwrap();
    assert_eq!(m.pick(&k, Some(f)), Some(f));
}

#[test]
fn lb_bounded_load() {
    let b = Arc::new(Balancer::new(
        servers(&[1, 1, 1]),
        Algorithm::Source,
        HashType::CONSISTENT,
        false,
        125,
    ));
    let mut guards = Vec::new();
    for k in 0..300 {
        let s = b
            .pick(
                &RequestKey::tcp(format!("10.1.{}.{}", k / 200, k % 200).parse().unwrap()),
                None,
            )
            .unwrap();
        guards.push(b.conn_guard(s));
    }
    for i in 0..3 {
        let served = b.served(i);
        assert!(served <= 126, "server {i} has {served}");
    }
    drop(guards);
    assert_eq!((0..3).map(|i| b.served(i)).sum::<u32>(), 0);
}

#[test]
fn lb_missing_key_falls_back_to_rr() {
    let b = Balancer::new(
        servers(&[1, 1, 1]),
        parse_balance(&["hdr(x-key)"]).unwrap(),
        HashType::MAP_BASED,
        false,
        0,
    );
    let k = RequestKey::http(None, b"/", Headers::None);
    let seq: Vec<usize> = (0..4).map(|_| b.pick(&k, None).unwrap()).collect();
    assert_eq!(seq, vec![0, 1, 2, 0]);
    let hdrs: [(&[u8], &[u8]); 1] = [(b"X-Key", b"abc")];
    let k = RequestKey::http(None, b"/", Headers::List(&hdrs));
    assert_eq!(b.request_hash(&k), Some(hash::sdbm(b"abc")));
}

#[test]
fn lb_static_rr_and_first_and_leastconn() {
    let b = Balancer::new(
        servers(&[1, 2, 3]),
        Algorithm::StaticRr,
        HashType::MAP_BASED,
        false,
        0,
    );
    let k = RequestKey::default();
    let seq: Vec<usize> = (0..7).map(|_| b.pick(&k, None).unwrap()).collect();
    assert_eq!(seq, vec![0, 2, 1, 2, 1, 2, 0]);

    let mut sv = servers(&[1, 1, 1]);
    sv[0].puid = 9;
    for s in &mut sv {
        s.maxconn = Some(2);
    }
    let b = Arc::new(Balancer::new(
        sv,
        Algorithm::First,
        HashType::MAP_BASED,
        false,
        0,
    ));
    let mut g = Vec::new();
    let mut seq = Vec::new();
    for _ in 0..6 {
        let s = b.pick(&k, None).unwrap();
        seq.push(s);
        g.push(b.conn_guard(s));
    }
    assert_eq!(seq, vec![1, 1, 2, 2, 0, 0]);
    assert_eq!(b.pick(&k, None), None);

    let b = Arc::new(Balancer::new(
        servers(&[1, 1, 3]),
        Algorithm::LeastConn,
        HashType::MAP_BASED,
        false,
        0,
    ));
    // sequential requests rotate among idle servers
    let seq: Vec<usize> = (0..4)
        .map(|_| {
            let s = b.pick(&k, None).unwrap();
            let _g = b.conn_guard(s);
            s
        })
        .collect();
    assert_eq!(seq, vec![0, 1, 2, 0]);
    // concurrent: weight 3 server takes more
    let mut g = Vec::new();
    let mut c = [0; 3];
    for _ in 0..50 {
        let s = b.pick(&k, None).unwrap();
        c[s] += 1;
        g.push(b.conn_guard(s));
    }
    assert!(c[2] > c[0] * 2, "{c:?}");
}

#[test]
fn lb_random_spreads() {
    let b = Balancer::new(
        servers(&[1, 1]),
        Algorithm::Random { draws: 2 },
        HashType::MAP_BASED,
        false,
        0,
    );
    let k = RequestKey::default();
    let mut c = [0; 2];
    for _ in 0..1000 {
        c[b.pick(&k, None).unwrap()] += 1;
    }
    assert!(c[0] > 300 && c[1] > 300, "{c:?}");
}

#[test]
fn lb_many_threads() {
    let b = Arc::new(Balancer::new(
        servers(&[1, 2, 3]),
        Algorithm::RoundRobin,
        HashType::MAP_BASED,
        false,
        0,
    ));
    let hs: Vec<_> = (0..4)
        .map(|t| {
            let b = Arc::clone(&b);
            std::thread::spawn(move || {
                let mut c = [0u32; 3];
                for n in 0..6000 {
                    if t == 0 && n % 1000 == 0 {
                        b.set_usable(1, n % 2000 != 0);
                    }
                    c[b.pick(&RequestKey::default(), None).unwrap()] += 1;
                }
                c
            })
        })
        .collect();
    let tot: u32 = hs
        .into_iter()
        .map(|h| h.join().unwrap().iter().sum::<u32>())
        .sum();
    assert_eq!(tot, 24000);
}

#[test]
fn lb_set_weight() {
    let b = Balancer::new(
        servers(&[1, 1]),
        Algorithm::Source,
        HashType::CONSISTENT,
        false,
        0,
    );
    assert_eq!(b.snapshot().ring().len(), 32);
    b.set_weight(0, 3);
    assert_eq!(b.weight(0), 3);
    assert_eq!(b.snapshot().ring().len(), 64);
    b.set_weight(1, 0);
    assert_eq!(b.snapshot().ring().len(), 48);
    assert_eq!(pick_src(&b, "10.9.8.7"), 0);
    // static algorithms: non-zero weights restore the configured map weight
    let m = Balancer::new(
        servers(&[2, 4]),
        Algorithm::StaticRr,
        HashType::MAP_BASED,
        false,
        0,
    );
    m.set_weight(1, 0);
    assert_eq!(m.snapshot().map_table(), &[0]);
    m.set_weight(1, 4);
    assert_eq!(m.snapshot().map_table(), &[0, 1, 1]);
    // roundrobin follows the new weights
    let r = Balancer::new(
        servers(&[1, 1]),
        Algorithm::RoundRobin,
        HashType::MAP_BASED,
        false,
        0,
    );
    r.set_weight(1, 3);
    let k = RequestKey::default();
    let c1 = (0..400).filter(|_| r.pick(&k, None) == Some(1)).count();
    assert_eq!(c1, 300);
}

#[test]
#[ignore]
fn lb_bench() {
    for (name, algo, ht) in [
        ("rr", Algorithm::RoundRobin, HashType::MAP_BASED),
        ("source-chash", Algorithm::Source, HashType::CONSISTENT),
        (
            "uri-map",
            parse_balance(&["uri"]).unwrap(),
            HashType::MAP_BASED,
        ),
        ("leastconn", Algorithm::LeastConn, HashType::MAP_BASED),
    ] {
        let b = Arc::new(Balancer::new(
            servers(&[1, 2, 3, 4, 5, 6, 7, 8]),
            algo,
            ht,
            false,
            0,
        ));
        let t = std::time::Instant::now();
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let b = Arc::clone(&b);
                std::thread::spawn(move || {
                    let mut acc = 0usize;
                    for n in 0..1_000_000u32 {
                        let ip = IpAddr::V4(n.into());
                        let k = RequestKey::http(Some(ip), b"/some/path/here?x=1", Headers::None);
                        acc += b.pick(&k, None).unwrap();
                    }
                    acc
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        println!("{name}: {:?} per pick", t.elapsed() / 2_000_000);
    }
}

#[test]
fn lb_balancer_is_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<Balancer>();
    check::<Snapshot>();
    check::<ConnGuard>();
}

#[test]
fn lb_slowstart_eweight() {
    // slowstart 10s, weight 2: 1/16 steps of the full 32
    assert_eq!(slowstart_eweight(2, 0, 10), 2);
    assert_eq!(slowstart_eweight(2, 1, 10), 2 * ((16 + 10) / 10));
    assert_eq!(slowstart_eweight(2, 5, 10), 2 * 9);
    assert_eq!(slowstart_eweight(2, 9, 10), 2 * 15);
    assert_eq!(slowstart_eweight(2, 10, 10), 32);
    assert_eq!(slowstart_eweight(3, 0, 0), 48);
    // a slow-starting server owns fewer ring points
    let b = Balancer::new(
        servers(&[1, 1]),
        Algorithm::Source,
        HashType::CONSISTENT,
        false,
        0,
    );
    b.set_usable(1, false);
    b.set_eweight(1, slowstart_eweight(1, 0, 10));
    b.set_usable(1, true);
    assert_eq!(b.snapshot().ring().len(), 17);
    assert_eq!(b.weight(1), 1);
    assert_eq!(b.eweight(1), 1);
}
