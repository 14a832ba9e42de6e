use super::head::Limits;
use super::vectors::request_vectors;
use super::verdict::request_verdict;

#[test]
fn all_request_vectors_match_haproxy() {
    let limits = Limits::default();
    let mut bad = Vec::new();
    let vs = request_vectors();
    for v in &vs {
        let got = request_verdict(&v.bytes, &limits);
        if got.status != v.status || got.close != v.close {
            bad.push(format!(
                "{}: got {} close={} want {} close={}",
                v.name, got.status, got.close, v.status, v.close
            ));
        }
    }
    assert!(vs.len() > 150);
    assert!(
        bad.is_empty(),
        "{} of {} mismatched:\n{}",
        bad.len(),
        vs.len(),
        bad.join("\n")
    );
}

use super::body::{BodyFramer, Direction, MAX_CHUNK_SIZE};
use super::conn::*;
use super::errors::*;
use super::head::{Header, SyntaxError, Version};
use super::message::*;
use super::serialize::*;
use std::net::IpAddr;

fn req(b: &[u8]) -> Request {
    match parse_request(b, &Limits::default()) {
        Ok(Parsed::Complete(r)) => r,
        other => panic!("{other:?} for {:?}", String::from_utf8_lossy(b)),
    }
}

fn req_err(b: &[u8]) -> u16 {
    match parse_request(b, &Limits::default()) {
        Err(e) => e.status,
        other => panic!("expected error, got {other:?}"),
    }
}

fn resp(b: &[u8], info: RequestInfo) -> Result<Response, HttpError> {
    match parse_response(b, info, &Limits::default()) {
        Ok(Parsed::Complete(r)) => Ok(r),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e),
    }
}

fn hv<'a>(h: &'a [Header], name: &str) -> Vec<&'a [u8]> {
    h.iter()
        .filter(|x| x.is(name))
        .map(|x| x.value.as_slice())
        .collect()
}

// ---------------------------------------------------------------- head syntax

#[test]
fn basic_request_fields() {
    let r = req(b"GET /a?b HTTP/1.1\r\nHost: x\r\nX-A:  v  \r\n\r\nBODY");
    assert_eq!(r.method, b"GET");
    assert_eq!(r.uri, b"/a?b");
    assert_eq!(r.version, Version::HTTP_11);
    assert_eq!(r.headers.len(), 2);
    assert_eq!(hv(&r.headers, "x-a"), vec![b"v".as_slice()]);
    assert_eq!(r.head_len, 41);
    assert_eq!(r.body, BodyKind::None);
    assert!(!r.force_close);
}

#[test]
fn obs_fold_is_unfolded_with_spaces() {
    let r = req(b"GET / HTTP/1.1\r\nX-A: b\r\n c\r\n\r\n");
    assert_eq!(hv(&r.headers, "x-a"), vec![b"b   c".as_slice()]);
    let r = req(b"GET / HTTP/1.1\nX-A: b\n\tc\n\n");
    assert_eq!(hv(&r.headers, "x-a"), vec![b"b \tc".as_slice()]);
    let r = req(b"GET / HTTP/1.1\r\nX-A: a\r\n \r\n\r\n");
    assert_eq!(hv(&r.headers, "x-a"), vec![b"a".as_slice()]);
    assert_eq!(req_err(b"GET / HTTP/1.1\r\n X: a\r\n\r\n"), 400);
}

#[test]
fn bare_lf_and_leading_empty_lines() {
    let r = req(b"\r\n\nGET / HTTP/1.0\nA: 1\n\n");
    assert_eq!(r.version, Version::HTTP_10);
    assert_eq!(r.head_len, 24);
}

#[test]
fn partial_heads_and_early_errors() {
    let l = Limits::default();
    for cut in 0..30 {
        let full = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let p = parse_request(&full[..cut.min(full.len() - 1)], &l).unwrap();
        assert_eq!(p, Parsed::Partial, "cut {cut}");
    }
    // An error in a complete line is reported before the head ends.
    assert_eq!(
        parse_request(b"G(ET / HTTP/1.1\r\nHost", &l)
            .unwrap_err()
            .status,
        400
    );
    assert_eq!(
        parse_request(b"GET / HTTP/1.1\r\nX-A : b\r\n", &l)
            .unwrap_err()
            .status,
        400
    );
    assert_eq!(
        parse_request(b"GET / HTTP/1.1\r\nX: a\rb", &l)
            .unwrap_err()
            .status,
        400
    );
    // A CR as the last byte may still be followed by LF.
    assert_eq!(
        parse_request(b"GET / HTTP/1.1\r", &l).unwrap(),
        Parsed::Partial
    );
}

#[test]
fn buffer_limits_follow_bufsize() {
    let l = Limits::default();
    assert_eq!(l.max_head_size(), 16384 - 1024 - 69);
    // An incomplete head filling the buffer is a 400.
    let mut b = b"GET / HTTP/1.1\r\nX: ".to_vec();
    b.resize(16383, b'a');
    assert_eq!(parse_request(&b, &l).unwrap(), Parsed::Partial);
    b.push(b'a');
    assert_eq!(parse_request(&b, &l).unwrap_err().status, 400);
    // Custom bufsize: the URI limit moves with it (measured 7071 for 8192).
    let l8 = Limits {
        bufsize: 8192,
        ..Limits::default()
    };
    let mk = |n: usize| [b"GET /".as_slice(), &vec![b'a'; n], b" HTTP/1.1\r\n\r\n"].concat();
    assert!(matches!(
        parse_request(&mk(7071), &l8),
        Ok(Parsed::Complete(_))
    ));
    assert_eq!(parse_request(&mk(7072), &l8).unwrap_err().status, 400);
    // Whitespace around values does not count.
    let mut b = b"GET / HTTP/1.1\r\nX-A:    ".to_vec();
    b.extend(std::iter::repeat_n(b'a', 15252));
    b.extend_from_slice(b"     \r\n\r\n");
    assert!(matches!(parse_request(&b, &l), Ok(Parsed::Complete(_))));
}

#[test]
fn syntax_error_kinds() {
    let l = Limits::default();
    let k = |b: &[u8]| super::head::scan_head(b, true, &l).unwrap_err();
    assert_eq!(
        k(b"GET / HTTP/1.1\r\n: x\r\n\r\n"),
        SyntaxError::BadHeaderName
    );
    assert_eq!(k(b"GET / HTTP/1.1\r\nX\r\n\r\n"), SyntaxError::MissingColon);
    assert_eq!(k(b"GET /\r\n\r\n"), SyntaxError::BadVersion);
    assert_eq!(k(b"GET /# HTTP/1.1\r\n\r\n"), SyntaxError::BadUri);
    let mut long = b"GET / HTTP/1.1\r\n".to_vec();
    long.extend(vec![b'a'; 256]);
    long.extend_from_slice(b": x\r\n\r\n");
    assert_eq!(k(&long), SyntaxError::HeaderNameTooLong);
}

#[test]
fn versions() {
    assert_eq!(
        req(b"GET / HTTP/2.0\r\n\r\n").version,
        Version { major: 2, minor: 0 }
    );
    assert!(req(b"GET / HTTP/1.2\r\n\r\n").version.is_11());
    assert!(!req(b"GET / HTTP/0.9\r\n\r\n").version.is_11());
    for bad in [
        &b"GET / HTTP/1.10\r\n\r\n"[..],
        b"GET / HTTP/1\r\n\r\n",
        b"GET / HTTPS/1.1\r\n\r\n",
    ] {
        assert_eq!(req_err(bad), 400);
    }
}

#[test]
fn h2_preface_is_recognised() {
    let l = Limits::default();
    let p = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    assert_eq!(parse_request(p, &l).unwrap(), Parsed::H2Preface);
    assert_eq!(parse_request(&p[..10], &l).unwrap(), Parsed::Partial);
}

/// Where strict httparse and HAProxy 2.6 (hence this parser) disagree: the reason the head
/// scanner is hand-written (see head.rs).
#[test]
fn httparse_divergences() {
    let strict = |b: &[u8]| {
        let mut h = [httparse::EMPTY_HEADER; 16];
        let mut r = httparse::Request::new(&mut h);
        matches!(r.parse(b), Ok(httparse::Status::Complete(_)))
    };
    let accepted_by_haproxy: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
        b"GET  / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.2\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n",
        b"GET /a\x7f HTTP/1.1\r\n\r\n",
    ];
    for b in accepted_by_haproxy {
        assert!(
            !strict(b),
            "httparse now accepts {:?}",
            String::from_utf8_lossy(b)
        );
        assert!(matches!(
            parse_request(b, &Limits::default()),
            Ok(Parsed::Complete(_))
        ));
    }
    let rejected_by_haproxy: &[&[u8]] = &[b"GET /a#b HTTP/1.1\r\n\r\n"];
    for b in rejected_by_haproxy {
        assert!(strict(b));
        assert_eq!(req_err(b), 400);
    }
}

/// Differential check: whatever strict httparse accepts with CRLF endings, we accept with
/// the same fields (except httparse's lenient URI bytes).
#[test]
fn httparse_agreement_on_valid_requests() {
    let samples: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /p?q=1 HTTP/1.0\r\nContent-Length: 3\r\nX-Y: a b  c\r\n\r\nabc",
        b"OPTIONS * HTTP/1.1\r\nA:\r\nB:\tv\t\r\n\r\n",
        b"PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: h\r\n\r\n0\r\n\r\n",
    ];
    for b in samples {
        let mut h = [httparse::EMPTY_HEADER; 16];
        let mut hr = httparse::Request::new(&mut h);
        let n = match hr.parse(b).unwrap() {
            httparse::Status::Complete(n) => n,
            _ => unreachable!(),
        };
        let r = req(b);
        assert_eq!(r.head_len, n);
        assert_eq!(r.method, hr.method.unwrap().as_bytes());
        assert_eq!(r.uri, hr.path.unwrap().as_bytes());
        assert_eq!(r.headers.len(), hr.headers.len());
        for (a, b) in r.headers.iter().zip(hr.headers.iter()) {
            assert_eq!(a.name, b.name.as_bytes());
            assert_eq!(a.value, b.value);
        }
    }
}

// ---------------------------------------------------------------- request rules

#[test]
fn cl_and_te_chunked_wins() {
    let r = req(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(r.body, BodyKind::Chunked);
    assert!(r.force_close);
    assert!(hv(&r.headers, "content-length").is_empty());
    let r = req(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert!(r.force_close);
    let r = req(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert!(!r.force_close);
}

#[test]
fn te_list_verdicts() {
    let te = |v: &[u8]| transfer_encoding(&[Header::new(b"Transfer-Encoding", v)]);
    assert_eq!(te(b"chunked"), TeVerdict::Chunked);
    assert_eq!(te(b"Chunked"), TeVerdict::Chunked);
    assert_eq!(te(b"chunked,"), TeVerdict::Chunked);
    assert_eq!(te(b"gzip, chunked"), TeVerdict::UnsupportedCoding);
    assert_eq!(te(b",chunked"), TeVerdict::UnsupportedCoding);
    assert_eq!(te(b"chunked, chunked"), TeVerdict::Invalid);
    assert_eq!(te(b"chunked, gzip"), TeVerdict::Invalid);
    assert_eq!(te(b"gzip"), TeVerdict::Invalid);
    assert_eq!(te(b""), TeVerdict::Invalid);
    assert_eq!(te(b"chunked,,"), TeVerdict::Invalid);
    assert_eq!(transfer_encoding(&[]), TeVerdict::Absent);
    let two = [
        Header::new(b"Transfer-Encoding", b"gzip"),
        Header::new(b"transfer-encoding", b"chunked"),
    ];
    assert_eq!(transfer_encoding(&two), TeVerdict::UnsupportedCoding);
}

#[test]
fn content_length_forms() {
    for (v, want) in [
        (&b"0"[..], Some(0)),
        (b"05", Some(5)),
        (b"18446744073709551615", Some(u64::MAX)),
        (b"18446744073709551616", None),
        (b"+5", None),
        (b"-1", None),
        (b"0x5", None),
        (b"", None),
        (b"5 5", None),
    ] {
        assert_eq!(
            parse_cl_element(v),
            want,
            "{:?}",
            String::from_utf8_lossy(v)
        );
    }
    assert_eq!(
        req(b"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n").body,
        BodyKind::Length(5)
    );
    assert_eq!(
        req_err(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
        400
    );
}

#[test]
fn host_rules() {
    assert_eq!(
        req_err(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        400
    );
    req(b"GET / HTTP/1.1\r\nHost: a\r\nHost: A\r\n\r\n");
    assert_eq!(req_err(b"GET http://a/ HTTP/1.1\r\nHost: b\r\n\r\n"), 400);
    req(b"GET http://a:80/ HTTP/1.1\r\nHost: a\r\n\r\n");
    req(b"GET https://a/ HTTP/1.1\r\nHost: a:443\r\n\r\n");
    assert_eq!(req_err(b"CONNECT / HTTP/1.1\r\n\r\n"), 400);
    assert!(req(b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n").is_connect());
}

#[test]
fn upgrade_expect_and_http10_payloads() {
    let r = req(b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n");
    assert_eq!(r.upgrade.as_deref(), Some(&b"websocket"[..]));
    assert!(r.info().upgrade);
    assert_eq!(req(b"GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n").upgrade, None);
    assert_eq!(
        req_err(b"GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: WebSocket\r\n\r\n"),
        400
    );
    let r = req(b"POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n");
    assert!(r.expect_continue);
    assert!(
        !req(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")
            .expect_continue
    );
    assert_eq!(req_err(b"GET / HTTP/1.0\r\nContent-Length: 1\r\n\r\n"), 413);
    assert_eq!(
        req_err(b"HEAD / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
        413
    );
    assert_eq!(
        req(b"GET / HTTP/1.0\r\nContent-Length: 0\r\n\r\n").body,
        BodyKind::Length(0)
    );
    assert_eq!(
        req_err(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
        422
    );
}

// ---------------------------------------------------------------- responses

#[test]
fn response_framing() {
    let n = RequestInfo::default();
    let r = resp(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", n).unwrap();
    assert_eq!(
        (r.status, r.body, r.head_len),
        (200, BodyKind::Length(2), 38)
    );
    let r = resp(
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        n,
    )
    .unwrap();
    assert_eq!(r.body, BodyKind::Chunked);
    assert!(hv(&r.headers, "content-length").is_empty());
    let r = resp(b"HTTP/1.1 200 OK\r\n\r\nhello", n).unwrap();
    assert_eq!(r.body, BodyKind::CloseDelimited);
    assert!(r.force_close);
    let r = resp(b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", n).unwrap();
    assert_eq!(r.body, BodyKind::Chunked);
    assert!(r.force_close);
    let r = resp(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", n).unwrap();
    assert_eq!(r.body, BodyKind::None);
    assert!(hv(&r.headers, "content-length").is_empty());
    let r = resp(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", n).unwrap();
    assert_eq!(r.body, BodyKind::None);
    assert_eq!(hv(&r.headers, "content-length").len(), 1);
    let head = RequestInfo { head: true, ..n };
    assert_eq!(
        resp(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", head)
            .unwrap()
            .body,
        BodyKind::None
    );
    let r = resp(b"HTTP/1.1 100 Continue\r\n\r\n", n).unwrap();
    assert!(r.interim);
    assert_eq!(r.body, BodyKind::None);
    let r = resp(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", n).unwrap();
    assert!(r.interim);
    assert_eq!(
        resp(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
            n
        )
        .unwrap_err()
        .status,
        502
    );
    let up = RequestInfo { upgrade: true, ..n };
    assert_eq!(
        resp(b"HTTP/1.1 101 Switching Protocols\r\n\r\n", up)
            .unwrap()
            .body,
        BodyKind::Tunnel
    );
    let conn = RequestInfo { connect: true, ..n };
    assert_eq!(
        resp(b"HTTP/1.1 200 OK\r\n\r\n", conn).unwrap().body,
        BodyKind::Tunnel
    );
    assert_eq!(
        resp(b"HTTP/1.1 407 No\r\nContent-Length: 0\r\n\r\n", conn)
            .unwrap()
            .body,
        BodyKind::Length(0)
    );
    let r = resp(b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", n).unwrap();
    assert_eq!(r.reason, b"");
    assert_eq!(
        resp(b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", n)
            .unwrap()
            .version
            .major,
        2
    );
    resp(b"HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n", n).unwrap();
    resp(b"HTTP/1.1 999 X\r\nContent-Length: 0\r\n\r\n", n).unwrap();
}

#[test]
fn response_errors_are_502() {
    let n = RequestInfo::default();
    for b in [
        &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: \x0bchunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n",
        b"http/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 099 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-A : b\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n",
        b"garbage\r\n\r\n",
    ] {
        assert_eq!(
            resp(b, n).unwrap_err().status,
            502,
            "{:?}",
            String::from_utf8_lossy(b)
        );
    }
    let r = resp(
        b"HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\nContent-Length: 0\r\n\r\n",
        n,
    )
    .unwrap();
    assert_eq!(hv(&r.headers, "x-a"), vec![b"b   c".as_slice()]);
}

// ---------------------------------------------------------------- body framing

/// Feeds `input` split at every pair of points and checks the byte accounting is the same.
fn frame_all_splits(kind: BodyKind, input: &[u8]) -> Result<(usize, u64), u16> {
    let mut whole = BodyFramer::new(kind, Direction::Request);
    let ref_step = whole.advance(input).map_err(|e| e.status)?;
    let reference = (ref_step.consumed, whole.payload_bytes());
    for a in 0..=input.len() {
        for b in a..=input.len() {
            let mut f = BodyFramer::new(kind, Direction::Request);
            let mut used = 0;
            let mut done = false;
            for part in [&input[..a], &input[a..b], &input[b..]] {
                if done {
                    break;
                }
                let s = f.advance(part).expect("split must not change the verdict");
                used += s.consumed;
                done = s.done;
                assert!(s.done || s.consumed == part.len());
            }
            assert_eq!((used, f.payload_bytes()), reference, "split {a},{b}");
            assert_eq!(f.consumed_bytes(), used as u64);
        }
    }
    assert!(ref_step.done);
    Ok(reference)
}

#[test]
fn content_length_body() {
    assert_eq!(
        frame_all_splits(BodyKind::Length(5), b"helloGET /"),
        Ok((5, 5))
    );
    let mut f = BodyFramer::new(BodyKind::Length(5), Direction::Request);
    assert_eq!(f.advance(b"hel").unwrap().consumed, 3);
    assert_eq!(f.remaining_hint(), Some(2));
    assert!(f.on_eof().is_err());
    assert!(BodyFramer::new(BodyKind::Length(0), Direction::Request).is_done());
    assert!(BodyFramer::new(BodyKind::None, Direction::Request).is_done());
}

#[test]
fn chunked_body_with_extensions_and_trailers() {
    let body = b"5;ext=1;x\r\nhello\r\nA \r\n0123456789\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\nNEXT";
    assert_eq!(
        frame_all_splits(BodyKind::Chunked, body),
        Ok((body.len() - 4, 15))
    );
    let lf = b"5\nhello\n0\n\n";
    assert_eq!(frame_all_splits(BodyKind::Chunked, lf), Ok((lf.len(), 5)));
    let zeros = b"00000000000000000000000003\r\nabc\r\n0\r\n\r\n";
    assert_eq!(
        frame_all_splits(BodyKind::Chunked, zeros),
        Ok((zeros.len(), 3))
    );
}

#[test]
fn chunked_data_ranges_rebuild_payload() {
    let body = b"3\r\nabc\r\n4;e\r\ndefg\r\n0\r\n\r\n";
    let mut f = BodyFramer::new(BodyKind::Chunked, Direction::Response);
    let mut payload = Vec::new();
    for piece in body.chunks(3) {
        f.advance_with(piece, |r| payload.extend_from_slice(&piece[r]))
            .unwrap();
    }
    assert!(f.is_done());
    assert_eq!(payload, b"abcdefg");
    let mut out = Vec::new();
    write_chunk(&mut out, &payload);
    write_last_chunk(&mut out);
    assert_eq!(out, b"7\r\nabcdefg\r\n0\r\n\r\n");
}

#[test]
fn chunked_errors() {
    let status = |dir, b: &[u8]| {
        BodyFramer::new(BodyKind::Chunked, dir)
            .advance(b)
            .map(|s| s.done)
            .map_err(|e| e.status)
    };
    use Direction::*;
    for bad in [
        &b"zz\r\n"[..],
        b"\r\n",
        b" 5\r\n",
        b"0x5\r\n",
        b"-5\r\n",
        b"5 5\r\n",
        b"10000000000000\r\n",
        b"10000000000000000\r\n",
        b"5\r\nhelloX",
        b"5;a\rb\r\n",
        b"0\r\nbad trailer\r\n",
        b"0\r\n: x\r\n",
        b"5\rx",
    ] {
        assert_eq!(
            status(Request, bad),
            Err(400),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
        assert_eq!(status(Response, bad), Err(502));
    }
    assert_eq!(format!("{:x}", MAX_CHUNK_SIZE), "fffffffffffff");
    assert_eq!(status(Request, b"fffffffffffff\r\n"), Ok(false));
    let mut f = BodyFramer::new(BodyKind::Chunked, Request).with_trailer_limit(8);
    assert_eq!(
        f.advance(b"0\r\nX-Long: 123456\r\n\r\n")
            .unwrap_err()
            .status,
        400
    );
}

#[test]
fn close_delimited_and_tunnel() {
    let mut f = BodyFramer::new(BodyKind::CloseDelimited, Direction::Response);
    assert_eq!(
        f.advance(b"abc").unwrap(),
        super::body::Step {
            consumed: 3,
            done: false
        }
    );
    assert!(f.ends_at_close());
    f.on_eof().unwrap();
    assert!(f.is_done());
    let mut t = BodyFramer::new(BodyKind::Tunnel, Direction::Request);
    assert_eq!(t.advance(b"\x00\x01").unwrap().consumed, 2);
    assert!(!t.is_done());
}

// ---------------------------------------------------------------- connection management

const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));

/// What the server receives, for a request through a proxy in the given modes (bytes
/// measured with HAProxy 2.6.12 and an echo server).
fn to_server(raw: &[u8], fe: HttpMode, be: HttpMode, ff: Option<&ForwardFor>) -> String {
    let mut r = req(raw);
    let plan = plan_request(&r, fe, be);
    rewrite_request_for_server(&mut r, plan, CLIENT, ff, None);
    let mut out = Vec::new();
    write_request_head(&mut out, &r, WriteOpts::default());
    String::from_utf8(out).unwrap()
}

#[test]
fn request_rewrites_match_haproxy() {
    use HttpMode::*;
    let g11 = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let g11c = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let g11k = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Foo\r\nX-Foo: 1\r\n\r\n";
    let g10 = b"GET / HTTP/1.0\r\nHost: x\r\n\r\n";
    let g12 = b"GET / HTTP/1.2\r\nHost: x\r\n\r\n";
    let clte =
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(
        to_server(g11, KeepAlive, KeepAlive, None),
        "GET / HTTP/1.1\r\nhost: x\r\n\r\n"
    );
    assert_eq!(
        to_server(g11c, KeepAlive, KeepAlive, None),
        "GET / HTTP/1.1\r\nhost: x\r\n\r\n"
    );
    assert_eq!(
        to_server(g11k, KeepAlive, KeepAlive, None),
        "GET / HTTP/1.1\r\nhost: x\r\nconnection: X-Foo\r\nx-foo: 1\r\n\r\n"
    );
    assert_eq!(
        to_server(g10, KeepAlive, KeepAlive, None),
        "GET / HTTP/1.0\r\nhost: x\r\nconnection: keep-alive\r\n\r\n"
    );
    assert_eq!(
        to_server(g12, KeepAlive, KeepAlive, None),
        "GET / HTTP/1.1\r\nhost: x\r\n\r\n"
    );
    assert_eq!(
        to_server(clte, KeepAlive, KeepAlive, None),
        "POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    for (fe, be) in [
        (ServerClose, KeepAlive),
        (Close, KeepAlive),
        (KeepAlive, Close),
    ] {
        assert_eq!(
            to_server(g11, fe, be, None),
            "GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        );
        assert_eq!(
            to_server(g11k, fe, be, None),
            "GET / HTTP/1.1\r\nhost: x\r\nconnection: X-Foo\r\nx-foo: 1\r\nconnection: close\r\n\r\n"
        );
        assert_eq!(
            to_server(g10, fe, be, None),
            "GET / HTTP/1.0\r\nhost: x\r\n\r\n"
        );
    }
    let ff = ForwardFor::default();
    assert_eq!(
        to_server(g11, ServerClose, KeepAlive, Some(&ff)),
        "GET / HTTP/1.1\r\nhost: x\r\nx-forwarded-for: 127.0.0.1\r\nconnection: close\r\n\r\n"
    );
    let existing = b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4\r\nX-B: 1\r\n\r\n";
    assert_eq!(
        to_server(existing, KeepAlive, KeepAlive, Some(&ff)),
        "GET / HTTP/1.1\r\nhost: x\r\nx-forwarded-for: 1.2.3.4\r\nx-b: 1\r\nx-forwarded-for: 127.0.0.1\r\n\r\n"
    );
    let ifnone = ForwardFor {
        if_none: true,
        ..ForwardFor::default()
    };
    assert_eq!(
        to_server(existing, KeepAlive, KeepAlive, Some(&ifnone)),
        "GET / HTTP/1.1\r\nhost: x\r\nx-forwarded-for: 1.2.3.4\r\nx-b: 1\r\n\r\n"
    );
    let except = ForwardFor {
        except: Some(("127.0.0.0".parse().unwrap(), 8)),
        ..ForwardFor::default()
    };
    assert_eq!(
        to_server(g11, KeepAlive, KeepAlive, Some(&except)),
        "GET / HTTP/1.1\r\nhost: x\r\n\r\n"
    );
    let named = ForwardFor {
        header: "X-Client".into(),
        ..ForwardFor::default()
    };
    assert_eq!(
        to_server(existing, KeepAlive, KeepAlive, Some(&named)),
        "GET / HTTP/1.1\r\nhost: x\r\nx-forwarded-for: 1.2.3.4\r\nx-b: 1\r\nx-client: 127.0.0.1\r\n\r\n"
    );
}

fn to_client(raw_req: &[u8], raw_resp: &[u8], fe: HttpMode, be: HttpMode) -> (String, bool) {
    let rq = req(raw_req);
    let mut rs = resp(raw_resp, rq.info()).unwrap();
    let plan = finish_client_plan(plan_request(&rq, fe, be), &rs);
    rewrite_response_for_client(&mut rs, rq.version.is_11(), plan);
    let mut out = Vec::new();
    write_response_head(&mut out, &rs, WriteOpts::default());
    (String::from_utf8(out).unwrap(), plan.client_keep_alive)
}

#[test]
fn response_rewrites_match_haproxy() {
    use HttpMode::*;
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
    let g11 = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let g10 = b"GET / HTTP/1.0\r\n\r\n";
    let g10k = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    let g11c = b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
    let kal = (KeepAlive, KeepAlive);
    assert_eq!(
        to_client(g11, ok, kal.0, kal.1),
        ("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n".into(), true)
    );
    assert_eq!(
        to_client(g11c, ok, kal.0, kal.1),
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n".into(),
            false
        )
    );
    assert_eq!(
        to_client(g10, ok, kal.0, kal.1),
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n".into(),
            false
        )
    );
    assert_eq!(
        to_client(g10k, ok, kal.0, kal.1),
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\n".into(),
            true
        )
    );
    // Frontend httpclose closes the client side; backend httpclose does not.
    assert!(!to_client(g10k, ok, Close, KeepAlive).1);
    assert!(to_client(g11, ok, KeepAlive, Close).1);
    assert!(to_client(g11, ok, ServerClose, KeepAlive).1);
    // A server's Connection: close does not reach the client.
    let srv_close = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n";
    assert_eq!(
        to_client(g11, srv_close, kal.0, kal.1),
        ("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n".into(), true)
    );
    // Close-delimited responses close the client side.
    assert_eq!(
        to_client(g11, b"HTTP/1.1 200 OK\r\n\r\n", kal.0, kal.1),
        ("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".into(), false)
    );
    assert_eq!(
        to_client(g11, b"HTTP/1.0 200 OK\r\n\r\n", kal.0, kal.1),
        ("HTTP/1.0 200 OK\r\n\r\n".into(), false)
    );
    assert_eq!(
        to_client(
            g11,
            b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
            kal.0,
            kal.1
        )
        .0,
        "HTTP/1.1 200 \r\ncontent-length: 0\r\n\r\n"
    );
}

#[test]
fn modes_and_networks() {
    use HttpMode::*;
    assert_eq!(effective_mode(KeepAlive, ServerClose), ServerClose);
    assert_eq!(effective_mode(Close, ServerClose), Close);
    assert_eq!(effective_mode(KeepAlive, KeepAlive), KeepAlive);
    assert!(ip_in_net(
        "10.1.2.3".parse().unwrap(),
        "10.0.0.0".parse().unwrap(),
        8
    ));
    assert!(!ip_in_net(
        "11.1.2.3".parse().unwrap(),
        "10.0.0.0".parse().unwrap(),
        8
    ));
    assert!(ip_in_net(
        "1.2.3.4".parse().unwrap(),
        "0.0.0.0".parse().unwrap(),
        0
    ));
    assert!(ip_in_net(
        "2001:db8::1".parse().unwrap(),
        "2001:db8::".parse().unwrap(),
        32
    ));
    assert!(!ip_in_net(
        "2001:db8::1".parse().unwrap(),
        "10.0.0.0".parse().unwrap(),
        8
    ));
    let mut h = vec![Header::new(b"Connection", b"Keep-Alive, Upgrade, close")];
    strip_connection_tokens(&mut h);
    assert_eq!(h, vec![Header::new(b"Connection", b"Upgrade")]);
    let mut h = vec![Header::new(b"Connection", b"close")];
    strip_connection_tokens(&mut h);
    assert!(h.is_empty());
}

// ---------------------------------------------------------------- error responses

#[test]
fn builtin_error_shapes() {
    let e = builtin_error(400, ErrorFlavor::Mux).unwrap();
    assert_eq!(
        String::from_utf8(e).unwrap(),
        "HTTP/1.1 400 Bad request\r\nContent-length: 90\r\nCache-Control: no-cache\r\n\
         Connection: close\r\nContent-Type: text/html\r\n\r\n<html><body><h1>400 Bad request</h1>\n\
         Your browser sent an invalid request.\n</body></html>\n"
    );
    let e = builtin_error(503, ErrorFlavor::Stream { close: true }).unwrap();
    assert!(e.starts_with(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 107\r\n"));
    assert!(
        String::from_utf8_lossy(&e)
            .contains("content-type: text/html\r\nconnection: close\r\n\r\n")
    );
    for b in BUILTIN_ERRORS {
        let bytes = builtin_error(b.status, ErrorFlavor::Mux).unwrap();
        let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert_eq!(bytes.len() - head_end, b.body.len());
        let line = format!("Content-length: {}\r\n", b.body.len());
        assert!(String::from_utf8_lossy(&bytes).contains(&line));
    }
    assert!(builtin_error(418, ErrorFlavor::Mux).is_none());
}

#[test]
fn errorfile_validation_messages() {
    let dir = std::env::temp_dir().join(format!("rhaproxy-ef-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let w = |n: &str, c: &[u8]| {
        let p = dir.join(n);
        std::fs::write(&p, c).unwrap();
        p
    };
    let good = w("good", b"HTTP/1.0 503 X\r\nConnection: close\r\n\r\nbody");
    assert_eq!(
        load_errorfile(&good).unwrap(),
        b"HTTP/1.0 503 X\r\nConnection: close\r\n\r\nbody"
    );
    assert_eq!(load_errorfile(w("empty", b"")).unwrap(), b"");
    let p = w("bad", b"HTTP/1.1 503 X\r\nX-A : b\r\n\r\n");
    assert_eq!(
        load_errorfile(&p).unwrap_err(),
        format!(
            "'{}': unable to parse headers (error offset: 19)",
            p.display()
        )
    );
    let p = w("garbage", b"hello world\n");
    assert!(
        load_errorfile(&p)
            .unwrap_err()
            .ends_with("(error offset: 0)")
    );
    let p = w("partial", b"HTTP/1.1 503 X\r\n");
    assert!(
        load_errorfile(&p)
            .unwrap_err()
            .ends_with("(error offset: -2)")
    );
    let p = w(
        "short",
        b"HTTP/1.1 503 X\r\nContent-Length: 10\r\n\r\nhello",
    );
    assert!(
        load_errorfile(&p)
            .unwrap_err()
            .ends_with("payload size does not match the announced content-length (5 != 10)")
    );
    let p = w(
        "chunked",
        b"HTTP/1.1 503 X\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
    assert!(
        load_errorfile(&p)
            .unwrap_err()
            .ends_with("chunk-encoded payload not supported")
    );
    let missing = dir.join("missing");
    assert_eq!(
        load_errorfile(&missing).unwrap_err(),
        format!("error opening file '{}'.", missing.display())
    );
    assert_eq!(
        load_errorfile(&dir).unwrap_err(),
        format!("error reading file '{}'.", dir.display())
    );
    let big = w(
        "big",
        &[b"HTTP/1.1 503 X\r\n\r\n".as_slice(), &[b'a'; 20000]].concat(),
    );
    let (c, warn) = load_errorfile_with(&big, 16384).unwrap();
    assert_eq!(c.len(), 16384);
    assert!(
        warn.unwrap()
            .ends_with("larger than 16384 bytes. Truncating.")
    );
    assert_eq!(
        errorfile_wire(
            b"HTTP/1.1 503 X\nContent-Length: 5\nConnection: close\n\nhello",
            true
        ),
        b"HTTP/1.1 503 X\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello"
    );
    assert_eq!(
        errorfile_status_error("418"),
        "status code '418' not handled."
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn identical_content_lengths_are_merged() {
    let r = req(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nA: 1\r\nContent-Length: 5\r\n\r\n");
    assert_eq!(
        r.headers,
        vec![
            Header::new(b"Content-Length", b"5"),
            Header::new(b"A", b"1")
        ]
    );
    let r = req(b"POST / HTTP/1.1\r\nContent-Length: 5, 05\r\n\r\n");
    assert_eq!(hv(&r.headers, "content-length"), vec![b"5".as_slice()]);
    let r = req(b"POST / HTTP/1.1\r\nContent-Length: 007\r\n\r\n");
    assert_eq!(hv(&r.headers, "content-length"), vec![b"007".as_slice()]);
    let r = resp(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n",
        RequestInfo::default(),
    )
    .unwrap();
    assert_eq!(hv(&r.headers, "content-length"), vec![b"2".as_slice()]);
}

#[test]
fn head_wait_timers() {
    use std::time::Duration;
    let ms = Duration::from_millis;
    let t = HeadTimeouts {
        client: Some(ms(5000)),
        http_request: Some(ms(700)),
        http_keep_alive: Some(ms(300)),
    };
    assert_eq!(
        head_wait(true, 0, &t),
        (Some(ms(700)), OnHeadTimeout::Send408)
    );
    assert_eq!(
        head_wait(false, 2, &t),
        (Some(ms(700)), OnHeadTimeout::Send408)
    );
    assert_eq!(
        head_wait(false, 0, &t),
        (Some(ms(300)), OnHeadTimeout::CloseSilently)
    );
    let only_client = HeadTimeouts {
        client: Some(ms(5000)),
        ..HeadTimeouts::default()
    };
    assert_eq!(head_wait(false, 0, &only_client).0, Some(ms(5000)));
    assert_eq!(head_wait(true, 0, &only_client).0, Some(ms(5000)));
    let no_ka = HeadTimeouts {
        http_keep_alive: None,
        ..t
    };
    assert_eq!(head_wait(false, 0, &no_ka).0, Some(ms(700)));
    assert_eq!(head_wait(true, 0, &HeadTimeouts::default()).0, None);
}

#[test]
fn chunked_normalizer_matches_haproxy_output() {
    use super::body::ChunkedNormalizer;
    let body = b"2;x=y\r\nhi\r\n0\r\nX-T: 1\r\n\r\nNEXT";
    let mut n = ChunkedNormalizer::new(Direction::Response);
    let mut out = Vec::new();
    let s = n.feed(body, &mut out).unwrap();
    assert_eq!(s.consumed, body.len() - 4);
    assert!(s.done);
    assert_eq!(out, b"2\r\nhi\r\n0\r\nx-t: 1\r\n\r\n");
    // Piecewise, bare LF, no trailers.
    let body = b"5\nhello\n3;e\r\nabc\r\n0\n\n";
    let mut n = ChunkedNormalizer::new(Direction::Request);
    let mut out = Vec::new();
    for piece in body.chunks(2) {
        n.feed(piece, &mut out).unwrap();
    }
    assert!(n.framer().is_done());
    let mut f = BodyFramer::new(BodyKind::Chunked, Direction::Request);
    let mut payload = Vec::new();
    f.advance_with(&out, |r| payload.extend_from_slice(&out[r]))
        .unwrap();
    assert!(f.is_done());
    assert_eq!(payload, b"helloabc");
    assert!(out.ends_with(b"0\r\n\r\n"));
}

#[test]
fn auth_challenge_and_stream_errors() {
    let a = String::from_utf8(auth_challenge("my realm", ConnHeader::None)).unwrap();
    assert!(a.starts_with(
        "HTTP/1.1 401 Unauthorized\r\ncontent-length: 112\r\ncache-control: no-cache\r\n\
         content-type: text/html\r\nwww-authenticate: Basic realm=\"my realm\"\r\n\r\n"
    ));
    let k = String::from_utf8(stream_error_with(403, &[], ConnHeader::KeepAlive).unwrap()).unwrap();
    assert!(k.contains("content-type: text/html\r\nconnection: keep-alive\r\n\r\n"));
    // 400 always closes.
    let c = String::from_utf8(stream_error_with(400, &[], ConnHeader::KeepAlive).unwrap()).unwrap();
    assert!(c.contains("connection: close\r\n\r\n"));
    assert_eq!(
        stream_error_with(503, &[], ConnHeader::None),
        builtin_error(503, ErrorFlavor::Stream { close: false })
    );
}

#[test]
fn head_completion_hint() {
    use super::head::may_hold_complete_head as hint;
    let full = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut seen = 0;
    let mut fired_at = None;
    for n in 1..=full.len() {
        if hint(&full[..n], seen) && fired_at.is_none() {
            fired_at = Some(n);
        }
        seen = n;
    }
    assert_eq!(fired_at, Some(full.len()));
    assert!(hint(b"GET / HTTP/1.0\n\n", 0));
    assert!(!hint(b"GET / HTTP/1.0\r\nA: b\r\n", 0));
}

#[test]
fn forwarded_heads_match_haproxy_normalisation() {
    use HttpMode::KeepAlive as K;
    let cases: &[(&[u8], &str)] = &[
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n",
            "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\n",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 05\r\n\r\n",
            "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\n",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 05\r\n\r\n",
            "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 05\r\n\r\n",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a  \r\n b\r\nX-B:   c   \r\n\r\n",
            "GET / HTTP/1.1\r\nhost: x\r\nx-a: a     b\r\nx-b: c\r\n\r\n",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
            "GET / HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n",
        ),
        (
            b"GET / HTTP/0.9\r\nHost: x\r\n\r\n",
            "GET / HTTP/0.9\r\nhost: x\r\nconnection: keep-alive\r\n\r\n",
        ),
        (
            b"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.0\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n",
        ),
        (
            b"GET  /x  HTTP/1.1\r\nhOsT: x\r\n\r\n",
            "GET /x HTTP/1.1\r\nhost: x\r\n\r\n",
        ),
        (
            b"GET http://x:80/p HTTP/1.1\r\nHost: x:80\r\n\r\n",
            "GET http://x/p HTTP/1.1\r\nhost: x\r\n\r\n",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x:80\r\n\r\n",
            "GET / HTTP/1.1\r\nhost: x:80\r\n\r\n",
        ),
        (
            b"GET https://x:443/p HTTP/1.1\r\nHost: x:443\r\n\r\n",
            "GET https://x/p HTTP/1.1\r\nhost: x\r\n\r\n",
        ),
        (
            b"GET http://x:8080/p HTTP/1.1\r\nHost: x:8080\r\n\r\n",
            "GET http://x:8080/p HTTP/1.1\r\nhost: x:8080\r\n\r\n",
        ),
        (
            b"GET http://x:80 HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET http://x HTTP/1.1\r\nhost: x\r\n\r\n",
        ),
        (
            b"GET HTTP://X:80/p HTTP/1.1\r\nHost: X:80\r\n\r\n",
            "GET HTTP://X/p HTTP/1.1\r\nhost: X\r\n\r\n",
        ),
        (
            b"GET http://u@x:80/p HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET http://u@x/p HTTP/1.1\r\nhost: x\r\n\r\n",
        ),
        (
            b"GET http://x:/p HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET http://x/p HTTP/1.1\r\nhost: x\r\n\r\n",
        ),
        (
            b"GET http://x:80/p HTTP/1.1\r\n\r\n",
            "GET http://x/p HTTP/1.1\r\n\r\n",
        ),
        (
            b"GET ftp://x:80/p HTTP/1.1\r\nHost: x:80\r\n\r\n",
            "GET ftp://x:80/p HTTP/1.1\r\nhost: x:80\r\n\r\n",
        ),
        (
            b"GET / HTTP/1.0\r\nHost: x\r\nX: a\r\n \r\n\r\n",
            "GET / HTTP/1.0\r\nhost: x\r\nx: a\r\nconnection: keep-alive\r\n\r\n",
        ),
        (
            b"GET / HTTP/1.0\r\nHost: x\r\nX:\r\n b\r\n\r\n",
            "GET / HTTP/1.0\r\nhost: x\r\nx: b\r\nconnection: keep-alive\r\n\r\n",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nX: \x00\x7f\r\n\r\n",
            "GET / HTTP/1.1\r\nhost: x\r\nx: \x00\x7f\r\n\r\n",
        ),
        // One port is stripped per pass, exactly like HAProxy (found by the fuzzer).
        (
            b"GET http://a:80: HTTP/1.1\r\n\r\n",
            "GET http://a:80 HTTP/1.1\r\n\r\n",
        ),
        (
            b"GET http://a:80:/p HTTP/1.1\r\nHost: a:80:\r\n\r\n",
            "GET http://a:80/p HTTP/1.1\r\nhost: a:80\r\n\r\n",
        ),
        (
            b"GET http://a::80/ HTTP/1.1\r\n\r\n",
            "GET http://a:/ HTTP/1.1\r\n\r\n",
        ),
        (
            b"GET http://a:x80/ HTTP/1.1\r\n\r\n",
            "GET http://a:x80/ HTTP/1.1\r\n\r\n",
        ),
        (
            b"GET http://[::1]:/ HTTP/1.1\r\n\r\n",
            "GET http://[::1]/ HTTP/1.1\r\n\r\n",
        ),
    ];
    for (raw, want) in cases {
        assert_eq!(
            to_server(raw, K, K, None),
            *want,
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn response_vectors_match_table() {
    use super::vectors::response_vectors;
    let get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let rq = req(get);
    let limits = Limits::default();
    let vs = response_vectors();
    assert!(vs.len() >= 38);
    for v in &vs {
        let mut at = 0;
        let got = loop {
            match parse_response(&v.bytes[at..], rq.info(), &limits) {
                Ok(Parsed::Complete(r)) => {
                    let mut f = BodyFramer::new(r.body, Direction::Response);
                    if let Err(e) = f.advance(&v.bytes[at + r.head_len..]) {
                        break e.status;
                    }
                    if r.interim {
                        at += r.head_len;
                        continue;
                    }
                    break r.status;
                }
                Ok(_) => break 502,
                Err(e) => break e.status,
            }
        };
        assert_eq!(got, v.status, "{}", v.name);
    }
}
