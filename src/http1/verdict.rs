//! One-shot verdicts: what HAProxy 2.6 answers when a whole request arrives in one read and
//! the frontend answers it itself (`http-request return status 200`). Used by the
//! compatibility tests and handy for the runtime's early-answer decision.

use super::body::{BodyFramer, Direction};
use super::head::Limits;
use super::message::{Parsed, parse_request};

/// Status and connection fate of a request answered by the proxy itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestVerdict {
    /// 200 when accepted, else the error status HAProxy sends (400/413/422, 408 when the head
    /// never completes). 0 for an HTTP/2 preface.
    pub status: u16,
    /// The connection is closed after the answer.
    pub close: bool,
}

/// Verdict for `buf` holding everything the client sent.
pub fn request_verdict(buf: &[u8], limits: &Limits) -> RequestVerdict {
    let req = match parse_request(buf, limits) {
        Err(e) => {
            return RequestVerdict {
                status: e.status,
                close: true,
            };
        }
        Ok(Parsed::Partial) => {
            return RequestVerdict {
                status: 408,
                close: true,
            };
        }
        Ok(Parsed::H2Preface) => {
            return RequestVerdict {
                status: 0,
                close: false,
            };
        }
        Ok(Parsed::Complete(r)) => r,
    };
    let mut framer = BodyFramer::new(req.body, Direction::Request);
    let done = match framer.advance(&buf[req.head_len..]) {
        Err(e) => {
            return RequestVerdict {
                status: e.status,
                close: true,
            };
        }
        Ok(step) => step.done,
    };
    // An answer sent before the request body is fully received closes the connection
    // (the body cannot be drained safely: CVE-2025-4366 class).
    let close = !done || req.force_close || !super::conn::client_wants_keep_alive(&req);
    RequestVerdict { status: 200, close }
}
