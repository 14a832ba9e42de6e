//! Connection management: keep-alive vs close, and the header rewrites HAProxy does.

use super::message::Request;

/// Whether the client side allows keep-alive after this request, from its version and
/// `Connection` header alone: HTTP/1.1+ unless `close`; HTTP/1.0 only with `keep-alive`
/// (and no `close`).
pub fn client_wants_keep_alive(req: &Request) -> bool {
    if req.conn.close {
        return false;
    }
    req.version.is_11() || req.conn.keep_alive
}
