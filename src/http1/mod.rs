//! HTTP/1 framer driven by the runtime: pure code over byte buffers (no I/O), matching
//! HAProxy 2.6.12's measured behaviour.
//!
//! * [`head`]: syntax of the start line and header lines (hand-written scanner; see there for
//!   why httparse is only a test oracle), HAProxy's buffer-size limits ([`Limits`]).
//! * [`message`]: HAProxy 2.6's request/response rules: [`parse_request`] and
//!   [`parse_response`] give a parsed head or the exact status HAProxy answers.
//! * [`body`]: [`BodyFramer`] (how many bytes belong to the current body) and
//!   [`body::ChunkedNormalizer`] (canonical re-chunking, as HAProxy forwards).
//! * [`conn`]: keep-alive/close decisions, the header rewrites HAProxy does, head timers.
//! * [`serialize`]: writes a (possibly edited) head to an output buffer.
//! * [`errors`]: built-in error responses byte for byte, `http-request auth` challenge,
//!   `errorfile` loading and validation.
//! * [`vectors`] / [`verdict`]: the measured request vectors and one-shot verdicts.
//!
//! # How the runtime drives it (one client transaction)
//! 1. Read into a buffer; [`head_wait`] says which timer to arm and whether its expiry sends
//!    the 408 ([`errors::builtin_error`]`(408, ErrorFlavor::Mux)`) or closes silently.
//! 2. When [`head::may_hold_complete_head`] says so (or the buffer is full),
//!    [`parse_request`]`(&buf, &limits)`: `Partial` → read more; `Err(e)` → send
//!    `builtin_error(e.status, ErrorFlavor::Mux)` and close; `H2Preface` → not HTTP/1;
//!    `Complete(req)` → the head is `buf[..req.head_len]`.
//! 3. [`plan_request`]`(&req, fe_mode, be_mode)`, then
//!    [`rewrite_request_for_server`]`(&mut req, plan, client_ip, forwardfor)` and
//!    [`write_request_head`] into the server buffer.
//! 4. Body: `BodyFramer::new(req.body, Direction::Request)`; forward exactly
//!    `advance(..).consumed` bytes each time (or feed a `ChunkedNormalizer` for chunked
//!    bodies); bytes after a `done` step are the next request (pipelining).
//! 5. [`parse_response`]`(&sbuf, req.info(), &limits)`: `Err` → 502 (stream flavour);
//!    interim 1xx → forward and parse again; then [`finish_client_plan`],
//!    [`rewrite_response_for_client`], [`write_response_head`], and frame the body the same
//!    way (`on_eof()` ends close-delimited bodies). `BodyKind::Tunnel` → splice both ways.
//! 6. Answering early (deny, errors) while the request body is not complete: close the
//!    client connection afterwards ([`verdict::request_verdict`] models it).
//!
//! # Deliberate deviations from HAProxy 2.6.12
//! * Content-Length values 2^64..2^64+5 wrap to 0..5 in HAProxy (smuggling hazard): 400.
//! * Response status tokens that are not 3 digits >= 100 (`2000`, `20`, `099`) are forwarded
//!   by HAProxy with odd framing: 502 here.
//! * Trailing blanks of a header line followed by an obs-fold continuation are dropped
//!   before unfolding (HAProxy keeps them inside the value).
//!
//! Not modelled: HTTP/2 (preface is only recognised), `option http-pretend-keepalive`,
//! `option http-buffer-request` (HAProxy then answers `100-continue` itself),
//! `accept-invalid-http-request/response` (lenient modes).

pub mod body;
pub mod conn;
pub mod errors;
pub mod head;
pub mod message;
pub mod serialize;
pub mod vectors;
pub mod verdict;

pub use serialize::{WriteOpts, write_request_head, write_response_head};
pub use verdict::{RequestVerdict, request_verdict};

#[cfg(test)]
mod tests;

pub use body::{BodyFramer, Direction, Step};
pub use conn::{
    ConnPlan, ForwardFor, HeadTimeouts, HttpMode, OnHeadTimeout, effective_mode,
    finish_client_plan, head_wait, plan_request, rewrite_request_for_server,
    rewrite_response_for_client,
};

pub use errors::{
    ConnHeader, ErrorFlavor, auth_challenge, builtin_error, load_errorfile, load_errorfile_with,
    stream_error_with,
};
pub use head::{Header, Limits, Version};
pub use message::{
    BodyKind, ConnTokens, HttpError, Parsed, Request, RequestInfo, Response, parse_request,
    parse_response,
};
