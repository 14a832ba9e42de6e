//! Feeds arbitrary bytes, in arbitrary pieces, to the HTTP/1 request parser, the body framer
//! and the response parser. Checks: no panic; incremental parsing agrees with one-shot
//! parsing; byte accounting is consistent (consumed <= offered, whole piece consumed unless
//! done, totals match); serialized heads re-parse to the same fields; whatever strict
//! httparse parses, we parse to the same fields when we accept it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rhaproxy::http1::body::{BodyFramer, ChunkedNormalizer, Direction};
use rhaproxy::http1::head::Limits;
use rhaproxy::http1::message::{Parsed, RequestInfo, parse_request, parse_response};
use rhaproxy::http1::serialize::{WriteOpts, write_request_head};

fn pieces(sizes: &[u8], data: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < data.len() {
        let s = if sizes.is_empty() {
            data.len()
        } else {
            sizes[i % sizes.len()] as usize + 1
        };
        let end = (at + s).min(data.len());
        out.push(at..end);
        at = end;
        i += 1;
    }
    out
}

fuzz_target!(|input: &[u8]| {
    if input.is_empty() {
        return;
    }
    let nsizes = (input[0] % 8) as usize;
    if input.len() < 1 + nsizes {
        return;
    }
    let sizes = &input[1..1 + nsizes];
    let data = &input[1 + nsizes..];
    let limits = Limits {
        bufsize: 2048,
        ..Limits::default()
    };
    let parts = pieces(sizes, data);

    // --- request head, incrementally
    let whole = parse_request(data, &limits);
    let mut incremental = None;
    for p in &parts {
        let r = parse_request(&data[..p.end], &limits);
        match &r {
            Ok(Parsed::Partial) => continue,
            _ => {
                incremental = Some(r);
                break;
            }
        }
    }
    let incremental = incremental.unwrap_or(Ok(Parsed::Partial));
    match (&incremental, &whole) {
        (Ok(Parsed::Partial), _) => {}
        // Same status; the reason may differ (a partial line hitting the buffer limit in
        // the incremental parse may be a syntax error once complete).
        (Err(a), Err(b)) => assert_eq!(a.status, b.status),
        (a, b) => assert_eq!(a, b, "incremental and one-shot parses differ"),
    }

    // --- httparse differential
    let mut hh = [httparse::EMPTY_HEADER; 128];
    let mut hr = httparse::Request::new(&mut hh);
    if let (Ok(httparse::Status::Complete(n)), Ok(Parsed::Complete(req))) = (hr.parse(data), &whole)
    {
        if req.headers.len() == hr.headers.len() && !req.force_close {
            assert_eq!(req.head_len, n);
            assert_eq!(req.method.as_slice(), hr.method.unwrap().as_bytes());
            // Absolute http(s) URIs and Host get their default port normalised away.
            let absolute = req.uri.windows(3).any(|w| w == b"://");
            if !absolute {
                assert_eq!(req.uri.as_slice(), hr.path.unwrap().as_bytes());
            }
            for (a, b) in req.headers.iter().zip(hr.headers.iter()) {
                assert_eq!(a.name.as_slice(), b.name.as_bytes());
                if !(absolute && a.is("host")) {
                    assert_eq!(a.value.as_slice(), b.value);
                }
            }
        }
    }

    if let Ok(Parsed::Complete(req)) = &whole {
        assert!(req.head_len <= data.len());
        // --- serializer round trip
        let mut out = Vec::new();
        write_request_head(&mut out, req, WriteOpts::default());
        let big = Limits {
            bufsize: 1 << 20,
            maxrewrite: 0,
            ..Limits::default()
        };
        match parse_request(&out, &big) {
            Ok(Parsed::Complete(again)) => {
                // Default-port normalisation of absolute URIs strips one port per pass, as
                // HAProxy does (`http://a:80:` -> `http://a:80`), so it is not idempotent:
                // URI and Host are only compared for non-absolute requests.
                let absolute = req.uri.windows(3).any(|w| w == b"://");
                assert_eq!(again.method, req.method);
                if !absolute {
                    assert_eq!(again.uri, req.uri);
                }
                assert_eq!(again.head_len, out.len());
                assert_eq!(again.headers.len(), req.headers.len());
                for (a, b) in again.headers.iter().zip(req.headers.iter()) {
                    assert!(a.name.eq_ignore_ascii_case(&b.name));
                    if !(absolute && a.is("host")) {
                        assert_eq!(a.value, b.value);
                    }
                }
            }
            Ok(Parsed::H2Preface) => {}
            other => panic!("serialized head does not re-parse: {other:?}"),
        }

        // --- body framing, piecewise vs one-shot
        let body = &data[req.head_len..];
        let mut one = BodyFramer::new(req.body, Direction::Request);
        let one_res = one
            .advance(body)
            .map(|s| (s.consumed, s.done))
            .map_err(|e| e.status);
        let mut f = BodyFramer::new(req.body, Direction::Request);
        let mut used = 0usize;
        let mut res: Result<(usize, bool), u16> = Ok((0, f.is_done()));
        for p in pieces(sizes, body) {
            let part = &body[p];
            match f.advance(part) {
                Ok(s) => {
                    assert!(s.consumed <= part.len());
                    if !s.done {
                        assert_eq!(s.consumed, part.len());
                    }
                    used += s.consumed;
                    res = Ok((used, s.done));
                    if s.done {
                        break;
                    }
                }
                Err(e) => {
                    res = Err(e.status);
                    break;
                }
            }
        }
        if !body.is_empty() {
            assert_eq!(res, one_res, "piecewise and one-shot framing differ");
        }
        if res.is_ok() {
            assert_eq!(f.consumed_bytes(), used as u64);
            assert!(f.payload_bytes() <= used as u64);
        }

        // --- chunked normalizer: same verdict, and its output frames to the same payload
        if req.body == rhaproxy::http1::message::BodyKind::Chunked {
            let mut n = ChunkedNormalizer::new(Direction::Request);
            let mut out = Vec::new();
            let mut nres: Result<bool, u16> = Ok(false);
            for p in pieces(sizes, body) {
                match n.feed(&body[p], &mut out) {
                    Ok(s) if s.done => {
                        nres = Ok(true);
                        break;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        nres = Err(e.status);
                        break;
                    }
                }
            }
            assert_eq!(nres.is_ok(), res.is_ok());
            if let (Ok(ndone), Ok((_, done))) = (nres, res) {
                assert_eq!(ndone, done);
                let mut g = BodyFramer::new(req.body, Direction::Request);
                let s = g.advance(&out).expect("normalized chunked body must frame");
                assert_eq!(s.consumed, out.len());
                assert_eq!(s.done, done);
                assert_eq!(g.payload_bytes(), f.payload_bytes());
            }
        }

        // --- response parser on the remaining bytes, with this request's context
        let rest = &data[req.head_len..];
        let _ = parse_response(rest, req.info(), &limits);
    }

    // --- response parser and response body framing on the raw input
    let info = RequestInfo {
        head: input[0] & 1 != 0,
        connect: input[0] & 2 != 0,
        upgrade: input[0] & 4 != 0,
    };
    if let Ok(Parsed::Complete(resp)) = parse_response(data, info, &limits) {
        let mut f = BodyFramer::new(resp.body, Direction::Response);
        if let Ok(s) = f.advance(&data[resp.head_len..]) {
            assert!(s.consumed <= data.len() - resp.head_len);
        }
        let _ = f.on_eof();
    }
});
