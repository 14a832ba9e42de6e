//! HTTP/1 framer driven by the runtime: pure code over byte buffers (no I/O).
//!
//! * [`head`]: syntax of the start line and header lines (hand-written scanner; see there for
//!   why httparse is only a test oracle), HAProxy's buffer-size limits.
//! * [`message`]: HAProxy 2.6's request/response rules: `parse_request`, `parse_response`
//!   give a parsed head or the exact status HAProxy answers.
//! * [`body`]: [`BodyFramer`], how many bytes belong to the current body.
//! * [`conn`]: keep-alive/close decisions and the header rewrites HAProxy does.
//! * [`serialize`]: writes a (possibly edited) head to an output buffer.
//! * [`errors`]: HAProxy's built-in error responses, byte for byte, and `errorfile` loading.

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

pub use errors::{ErrorFlavor, builtin_error, load_errorfile, load_errorfile_with};
pub use head::{Header, Limits, Version};
pub use message::{
    BodyKind, ConnTokens, HttpError, Parsed, Request, RequestInfo, Response, parse_request,
    parse_response,
};
