//! Request vectors with HAProxy 2.6.12's measured answers (frontend with
//! `http-request return status 200`, one fresh connection per vector, whole request in one
//! write). The unit tests check our verdicts against `expect`; the compatibility test replays
//! the bytes against the real binary; the runtime can replay them against rhaproxy.

/// One vector.
#[derive(Debug, Clone)]
pub struct Vector {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    /// HAProxy's status (200 = accepted and answered by the frontend).
    pub status: u16,
    /// HAProxy closes the connection after answering.
    pub close: bool,
    /// Set when rhaproxy deliberately differs; `status`/`close` are then rhaproxy's values
    /// and the text says what HAProxy does.
    pub deviation: Option<&'static str>,
}

fn v(name: &'static str, bytes: &[u8], status: u16, close: bool) -> Vector {
    Vector {
        name,
        bytes: bytes.to_vec(),
        status,
        close,
        deviation: None,
    }
}

fn post(extra: &str, body: &[u8]) -> Vec<u8> {
    let mut b = format!("POST / HTTP/1.1\r\nHost: x\r\n{extra}\r\n").into_bytes();
    b.extend_from_slice(body);
    b
}

fn get(extra: &[u8]) -> Vec<u8> {
    let mut b = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    b.extend_from_slice(extra);
    b.extend_from_slice(b"\r\n");
    b
}

fn chunked(body: &[u8]) -> Vec<u8> {
    post("Transfer-Encoding: chunked\r\n", body)
}

/// All request vectors (the rows of docs/http1-verdicts.md plus measured neighbours).
pub fn request_vectors() -> Vec<Vector> {
    let z = b"0\r\n\r\n";
    let mut out = vec![
        // --- Transfer-Encoding / Content-Length
        v("cl_and_te", &post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", z), 200, true),
        v("te_cl0_and_te", &post("Transfer-Encoding: chunked\r\nContent-Length: 0\r\n", z), 200, true),
        v("te_chunked_chunked", &post("Transfer-Encoding: chunked, chunked\r\n", z), 400, true),
        v("te_chunked_twice_headers", &post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", z), 400, true),
        v("te_gzip_only", &post("Transfer-Encoding: gzip\r\n", b""), 400, true),
        v("te_chunked_gzip", &post("Transfer-Encoding: chunked, gzip\r\n", z), 400, true),
        v("te_gzip_chunked", &post("Transfer-Encoding: gzip, chunked\r\n", z), 422, true),
        v("te_gzip_then_chunked_headers", &post("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", z), 422, true),
        v("te_vtab_chunked", &post("Transfer-Encoding: \x0bchunked\r\n", z), 400, true),
        v("te_http10", b"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 200, true),
        v("te_uppercase", &post("Transfer-Encoding: CHUNKED\r\n", z), 200, false),
        v("te_identity", &post("Transfer-Encoding: identity\r\n", b""), 400, true),
        v("te_empty", &post("Transfer-Encoding: \r\n", b""), 400, true),
        v("te_trailing_space", &post("Transfer-Encoding: chunked \r\n", z), 200, false),
        v("te_leading_comma", &post("Transfer-Encoding: ,chunked\r\n", z), 422, true),
        v("te_trailing_comma", &post("Transfer-Encoding: chunked,\r\n", z), 200, false),
        v("te_two_trailing_commas", &post("Transfer-Encoding: chunked,,\r\n", z), 400, true),
        v("te_chunkedx", &post("Transfer-Encoding: chunkedx\r\n", z), 400, true),
        v("te_identity_chunked", &post("Transfer-Encoding: identity, chunked\r\n", z), 422, true),
        v("te_gzip_chunked_chunked", &post("Transfer-Encoding: gzip, chunked, chunked\r\n", z), 400, true),
        v("te_tab", &post("Transfer-Encoding:\tchunked\r\n", z), 200, false),
        v("te_with_conflicting_cl", &post("Transfer-Encoding: chunked\r\nContent-Length: 5\r\nContent-Length: 6\r\n", z), 400, true),
        v("te_with_invalid_cl", &post("Transfer-Encoding: chunked\r\nContent-Length: x\r\n", z), 400, true),
        v("cl_5_and_6", &post("Content-Length: 5\r\nContent-Length: 6\r\n", b"hello"), 400, true),
        v("cl_5_twice", &post("Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"), 200, false),
        v("cl_5_comma_5", &post("Content-Length: 5, 5\r\n", b"hello"), 200, false),
        v("cl_5_comma_6", &post("Content-Length: 5, 6\r\n", b"hello"), 400, true),
        v("cl_5_comma", &post("Content-Length: 5,\r\n", b"hello"), 400, true),
        v("cl_list_spaces", &post("Content-Length: 5,5 ,  5\r\n", b"hello"), 200, false),
        v("cl_double_comma", &post("Content-Length: 5,,5\r\n", b"hello"), 400, true),
        v("cl_leading_comma", &post("Content-Length: ,5\r\n", b"hello"), 400, true),
        v("cl_5_and_05", &post("Content-Length: 5\r\nContent-Length: 05\r\n", b"hello"), 200, false),
        v("cl_plus", &post("Content-Length: +5\r\n", b"hello"), 400, true),
        v("cl_minus", &post("Content-Length: -1\r\n", b"hello"), 400, true),
        v("cl_hex", &post("Content-Length: 0x5\r\n", b"hello"), 400, true),
        v("cl_empty", &post("Content-Length: \r\n", b"hello"), 400, true),
        v("cl_23_digits", &post("Content-Length: 12345678901234567890123\r\n", b"hello"), 400, true),
        v("cl_20_digits_overflow", &post("Content-Length: 99999999999999999999\r\n", b"hello"), 400, true),
        v("cl_2p64_plus_4", &post("Content-Length: 18446744073709551620\r\n", b"hello"), 400, true),
        v("cl_u64_max", &post("Content-Length: 18446744073709551615\r\n", b"hello"), 200, true),
        v("cl_trailing_space", &post("Content-Length: 5 \r\n", b"hello"), 200, false),
        v("cl_tabs", &post("Content-Length:\t5\t\r\n", b"hello"), 200, false),
        v("cl_leading_zero", &post("Content-Length: 05\r\n", b"hello"), 200, false),
        v("cl_inner_space", &post("Content-Length: 5 5\r\n", b"hello"), 400, true),
        v("cl_body_missing", &post("Content-Length: 5\r\n", b""), 200, true),
        v("expect_100_no_body", &post("Content-Length: 5\r\nExpect: 100-continue\r\n", b""), 200, true),
        // --- header names / lines
        v("empty_header_name", &get(b": x\r\n"), 400, true),
        v("header_name_255", &get(&[&[b'A'; 255][..], b": x\r\n"].concat()), 200, false),
        v("header_name_256", &get(&[&[b'A'; 256][..], b": x\r\n"].concat()), 400, true),
        v("header_name_300", &get(&[&[b'A'; 300][..], b": x\r\n"].concat()), 400, true),
        v("space_before_colon", &get(b"X-A : x\r\n"), 400, true),
        v("space_in_name", &get(b"X A: b\r\n"), 400, true),
        v("ctl_in_name", &get(b"X\x01A: b\r\n"), 400, true),
        v("nul_in_name", &get(b"X\x00A: b\r\n"), 400, true),
        v("8bit_in_name", &get(b"X\xe9: b\r\n"), 400, true),
        v("separator_in_name", &get(b"X(A): b\r\n"), 400, true),
        v("all_tchars_name", &get(b"X!#$%&'*+-.^_`|~: b\r\n"), 200, false),
        v("no_colon", &get(b"XA\r\n"), 400, true),
        v("obs_fold", &get(b"X-A: a\r\n b\r\n"), 200, false),
        v("obs_fold_tab", &get(b"X-A: a\r\n\tb\r\n"), 200, false),
        v("obs_fold_blank_line", &get(b"X-A: a\r\n \r\n"), 200, false),
        v("obs_fold_blank_line_2sp", &get(b"X: a\r\n  \r\n"), 200, false),
        v("fold_as_first_header", b"GET / HTTP/1.1\r\n Host: x\r\n\r\n", 400, true),
        v("nul_in_value", &get(b"X-A: a\x00b\r\n"), 200, false),
        v("ctl_in_value", &get(b"X-A: a\x01b\r\n"), 200, false),
        v("del_in_value", &get(b"X-A: a\x7fb\r\n"), 200, false),
        v("8bit_in_value", &get(b"X-A: \xe9\r\n"), 200, false),
        v("bare_cr_in_value", &get(b"X-A: a\rb\r\n"), 400, true),
        v("cr_cr_lf", b"GET / HTTP/1.1\r\nHost: x\r\n\r\r\n", 400, true),
        v("empty_value", &get(b"X-A:\r\n"), 200, false),
        v("tabs_before_value", &get(b"X-A:\t\tb\r\n"), 200, false),
        v("bare_lf_endings", b"GET / HTTP/1.1\nHost: x\nX-A: a\n\n", 200, false),
        v("mixed_endings", b"GET / HTTP/1.1\r\nHost: x\nX-A: a\r\n\n", 200, false),
        v("bare_lf_request_line_only", b"GET / HTTP/1.1\nHost: x\r\n\r\n", 200, false),
        v("cr_only_endings", b"GET / HTTP/1.1\rHost: x\r\r", 400, true),
        v("leading_empty_lines", b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", 200, false),
        // --- Host
        v("no_host_http11", b"GET / HTTP/1.1\r\n\r\n", 200, false),
        v("two_hosts", b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400, true),
        v("two_hosts_same", b"GET / HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n", 200, false),
        v("two_hosts_case", b"GET / HTTP/1.1\r\nHost: x\r\nHost: X\r\n\r\n", 200, false),
        v("two_hosts_port", b"GET / HTTP/1.1\r\nHost: x\r\nHost: x:80\r\n\r\n", 400, true),
        v("two_hosts_empty", b"GET / HTTP/1.1\r\nHost: \r\nHost: \r\n\r\n", 200, false),
        v("two_hosts_empty_x", b"GET / HTTP/1.1\r\nHost: \r\nHost: x\r\n\r\n", 400, true),
        v("host_list_value", b"GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", 200, false),
        v("abs_uri_host_differs", b"GET http://a/ HTTP/1.1\r\nHost: b\r\n\r\n", 400, true),
        v("abs_uri_host_same", b"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 200, false),
        v("abs_uri_no_host", b"GET http://a/ HTTP/1.1\r\n\r\n", 200, false),
        v("abs_uri_default_port", b"GET http://a:80/ HTTP/1.1\r\nHost: a\r\n\r\n", 200, false),
        v("abs_uri_host_default_port", b"GET http://a/ HTTP/1.1\r\nHost: a:80\r\n\r\n", 200, false),
        v("abs_uri_other_port", b"GET http://a:81/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, true),
        v("abs_uri_https_443", b"GET https://a:443/ HTTP/1.1\r\nHost: a\r\n\r\n", 200, false),
        v("abs_uri_https_80", b"GET https://a:80/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, true),
        v("abs_uri_case", b"GET http://A/ HTTP/1.1\r\nHost: a\r\n\r\n", 200, false),
        v("abs_uri_upper_scheme", b"GET HTTP://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 200, false),
        v("abs_uri_no_path", b"GET http://a HTTP/1.1\r\nHost: a\r\n\r\n", 200, false),
        v("abs_uri_query_no_path", b"GET http://a?x HTTP/1.1\r\nHost: a\r\n\r\n", 400, true),
        v("abs_uri_userinfo", b"GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", 200, false),
        v("abs_uri_empty_authority", b"GET http:/// HTTP/1.1\r\nHost: a\r\n\r\n", 200, false),
        v("abs_uri_ftp_differs", b"GET ftp://a/ HTTP/1.1\r\nHost: b\r\n\r\n", 400, true),
        v("abs_uri_ipv6", b"GET http://[::1]:80/ HTTP/1.1\r\nHost: [::1]\r\n\r\n", 200, false),
        v("abs_uri_http10_differs", b"GET http://a/ HTTP/1.0\r\nHost: b\r\n\r\n", 400, true),
        v("authority_form_same", b"GET a HTTP/1.1\r\nHost: a\r\n\r\n", 200, false),
        v("authority_form_differs", b"GET a HTTP/1.1\r\nHost: b\r\n\r\n", 400, true),
        v("authority_form_path", b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 200, false),
        v("asterisk_get", b"GET * HTTP/1.1\r\nHost: b\r\n\r\n", 200, false),
        v("options_asterisk", b"OPTIONS * HTTP/1.1\r\nHost: b\r\n\r\n", 200, false),
        v("connect_no_host", b"CONNECT a:443 HTTP/1.1\r\n\r\n", 200, false),
        v("connect_host_differs", b"CONNECT a:443 HTTP/1.1\r\nHost: b\r\n\r\n", 400, true),
        v("connect_origin_form", b"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", 400, true),
        // --- URI bytes
        v("uri_space", b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400, true),
        v("uri_hash", b"GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n", 400, true),
        v("uri_8bit", b"GET /a\xe9 HTTP/1.1\r\nHost: x\r\n\r\n", 400, true),
        v("uri_ctl", b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n", 400, true),
        v("uri_del", b"GET /a\x7fb HTTP/1.1\r\nHost: x\r\n\r\n", 200, false),
        v("uri_angle_brackets", b"GET /<a> HTTP/1.1\r\nHost: x\r\n\r\n", 200, false),
        v("uri_quote", b"GET /a\"b HTTP/1.1\r\nHost: x\r\n\r\n", 200, false),
        v("uri_braces_pipe_caret", b"GET /{a}|^` HTTP/1.1\r\nHost: x\r\n\r\n", 200, false),
        v("uri_backslash", b"GET /a\\b HTTP/1.1\r\nHost: x\r\n\r\n", 200, false),
        v("uri_cr", b"GET /\r HTTP/1.1\r\nHost: x\r\n\r\n", 400, true),
        // --- request line / version
        v("version_lowercase", b"GET / http/1.1\r\nHost: x\r\n\r\n", 400, true),
        v("http09_request", b"GET /\r\n\r\n", 400, true),
        v("method_paren", b"G(ET / HTTP/1.1\r\nHost: x\r\n\r\n", 400, true),
        v("method_lowercase", b"get / HTTP/1.1\r\nHost: x\r\n\r\n", 200, false),
        v("method_unknown", b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n", 200, false),
        v("method_empty", b" / HTTP/1.1\r\nHost: x\r\n\r\n", 400, true),
        v("version_1_2", b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", 200, false),
        v("version_2_0", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 200, false),
        v("version_3_0", b"GET / HTTP/3.0\r\nHost: x\r\n\r\n", 200, false),
        v("version_0_9_explicit", b"GET / HTTP/0.9\r\nHost: x\r\n\r\n", 200, true),
        v("version_1_10", b"GET / HTTP/1.10\r\nHost: x\r\n\r\n", 400, true),
        v("version_1_x", b"GET / HTTP/1.x\r\nHost: x\r\n\r\n", 400, true),
        v("two_spaces_after_method", b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 200, false),
        v("two_spaces_before_version", b"GET /  HTTP/1.1\r\nHost: x\r\n\r\n", 200, false),
        v("tab_after_method", b"GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n", 200, false),
        v("empty_uri", b"GET  HTTP/1.1\r\nHost: x\r\n\r\n", 400, true),
        v("trailing_space_request_line", b"GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400, true),
        // --- HTTP/1.0 and bodies
        v("http10_get_cl", b"GET / HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello", 413, true),
        v("http10_get_cl_no_body_yet", b"GET / HTTP/1.0\r\nContent-Length: 5\r\n\r\n", 413, true),
        v("http10_head_cl", b"HEAD / HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello", 413, true),
        v("http10_delete_cl", b"DELETE / HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello", 413, true),
        v("http10_get_te", b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 413, true),
        v("http09v_get_cl", b"GET / HTTP/0.9\r\nContent-Length: 5\r\n\r\nhello", 413, true),
        v("http10_get_cl0", b"GET / HTTP/1.0\r\nContent-Length: 0\r\n\r\n", 200, true),
        v("http10_post_cl", b"POST / HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello", 200, true),
        v("http10_put_cl", b"PUT / HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello", 200, true),
        v("http10_options_cl", b"OPTIONS / HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello", 200, true),
        v("http10_lower_get_cl", b"get / HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello", 200, true),
        v("http11_get_cl", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 200, false),
        v("http11_get_te", b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 200, false),
        // --- Connection
        v("http10_plain", b"GET / HTTP/1.0\r\n\r\n", 200, true),
        v("http10_keep_alive", b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 200, false),
        v("http10_keep_alive_and_close", b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", 200, true),
        v("http11_close", b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200, true),
        v("http11_close_upper", b"GET / HTTP/1.1\r\nHost: x\r\nConnection: CLOSE\r\n\r\n", 200, true),
        v("http11_keep_alive_close", b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n", 200, true),
        v("http11_keep_alive", b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", 200, false),
        v("websocket_without_key", b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", 400, true),
        v("websocket_with_key", b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", 200, false),
        v("websocket_no_connection_upgrade", b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n", 200, false),
        v("websocket_http10_without_key", b"GET / HTTP/1.0\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", 400, true),
        v("upgrade_h2c", b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n", 200, false),
        // --- chunked bodies
        v("chunk_size_17_hex_digits", &chunked(b"10000000000000000\r\n"), 400, true),
        v("chunk_size_non_hex", &chunked(b"zz\r\n"), 400, true),
        v("chunk_size_2p52", &chunked(b"10000000000000\r\n"), 400, true),
        v("chunk_size_2p52_minus_1", &chunked(b"fffffffffffff\r\n"), 200, true),
        v("chunk_size_16_f", &chunked(b"ffffffffffffffff\r\n"), 400, true),
        v("chunk_size_leading_zeros", &chunked(b"0000000000000000000000000000005\r\n"), 200, true),
        v("chunk_ext_and_trailer", &chunked(b"5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"), 200, false),
        v("chunk_size_trailing_space", &chunked(b"5 \r\nhello\r\n0\r\n\r\n"), 200, false),
        v("chunk_size_leading_space", &chunked(b" 5\r\nhello\r\n0\r\n\r\n"), 400, true),
        v("chunk_bare_lf", &chunked(b"5\nhello\n0\n\n"), 200, false),
        v("chunk_missing_crlf_after_data", &chunked(b"5\r\nhelloX\r\n0\r\n\r\n"), 400, true),
        v("chunk_empty_size_line", &chunked(b"\r\n"), 400, true),
        v("chunk_size_0x", &chunked(b"0x5\r\nhello\r\n0\r\n\r\n"), 400, true),
        v("chunk_size_negative", &chunked(b"-5\r\nhello\r\n0\r\n\r\n"), 400, true),
        v("chunk_ext_bare_cr", &chunked(b"5;a\rb\r\nhello\r\n0\r\n\r\n"), 400, true),
        v("chunk_bad_trailer", &chunked(b"5\r\nhello\r\n0\r\nbad trailer\r\n\r\n"), 400, true),
        // --- sizes (bufsize 16384)
        v("header_value_20k", &get(&[b"X-A: ".as_slice(), &[b'a'; 20000], b"\r\n"].concat()), 400, true),
        v("uri_20k", &[b"GET /".as_slice(), &[b'a'; 20000], b" HTTP/1.1\r\nHost: x\r\n\r\n"].concat(), 400, true),
        v("uri_max_15263", &[b"GET /".as_slice(), &[b'a'; 15263], b" HTTP/1.1\r\n\r\n"].concat(), 200, false),
        v("uri_15264", &[b"GET /".as_slice(), &[b'a'; 15264], b" HTTP/1.1\r\n\r\n"].concat(), 400, true),
        v("value_max_15252", &[b"GET / HTTP/1.1\r\nX-A: ".as_slice(), &[b'a'; 15252], b"\r\n\r\n"].concat(), 200, false),
        v("value_15253", &[b"GET / HTTP/1.1\r\nX-A: ".as_slice(), &[b'a'; 15253], b"\r\n\r\n"].concat(), 400, true),
        v("headers_100", &many_headers(100), 200, false),
        v("headers_101", &many_headers(101), 400, true),
        v("incomplete_head", b"GET / HTTP/1.1\r\nHost: x\r\n", 408, true),
    ];
    let mut hv = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..99 {
        hv.extend_from_slice(format!("H{i}: v\r\n").as_bytes());
    }
    let mut at_limit = hv.clone();
    at_limit.extend_from_slice(&[b"X-A: ".as_slice(), &[b'a'; 14074], b"\r\n\r\n"].concat());
    out.push(v("htx_limit_100_headers", &at_limit, 200, false));
    hv.extend_from_slice(&[b"X-A: ".as_slice(), &[b'a'; 14075], b"\r\n\r\n"].concat());
    out.push(v("htx_limit_100_headers_plus_1", &hv, 400, true));
    out.push(Vector {
        name: "cl_2p64_wraps",
        bytes: post("Content-Length: 18446744073709551616\r\n", b"hello"),
        status: 400,
        close: true,
        deviation: Some(
            "HAProxy 2.6.12 wraps 2^64 to 0 (200, then 'hello' is parsed as the next \
             request); rhaproxy rejects every Content-Length >= 2^64",
        ),
    });
    out
}

fn many_headers(n: usize) -> Vec<u8> {
    let mut b = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..n {
        b.extend_from_slice(format!("H{i}: v\r\n").as_bytes());
    }
    b.extend_from_slice(b"\r\n");
    b
}

/// A response vector: what the server sends for a `GET` request, and the status the client
/// gets from HAProxy 2.6.12 (502 when HAProxy refuses the response).
#[derive(Debug, Clone)]
pub struct ResponseVector {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    pub status: u16,
    /// Set when rhaproxy deliberately differs (`status` is then rhaproxy's, 502).
    pub deviation: Option<&'static str>,
}

fn r(name: &'static str, bytes: &[u8], status: u16) -> ResponseVector {
    ResponseVector {
        name,
        bytes: bytes.to_vec(),
        status,
        deviation: None,
    }
}

/// Server responses (one per fresh server connection, sent in one write) with HAProxy's
/// measured answer to the client.
pub fn response_vectors() -> Vec<ResponseVector> {
    let mut out = vec![
        r("ok", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", 200),
        r("cl_and_te", b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\nGARBAGE", 200),
        r("te_chunked_chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", 502),
        r("te_gzip", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhi", 502),
        r("te_chunked_gzip", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n2\r\nhi\r\n0\r\n\r\n", 502),
        r("te_gzip_chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", 502),
        r("te_vtab", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: \x0bchunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", 502),
        r("te_http10", b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", 200),
        r("cl_conflict", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi", 502),
        r("cl_twice", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi", 200),
        r("cl_plus", b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nhi", 502),
        r("no_reason", b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nhi", 200),
        r("lowercase_version", b"http/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", 502),
        r("version_2_0", b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nhi", 200),
        r("reason_ctl", b"HTTP/1.1 200 O\x01K\r\nContent-Length: 2\r\n\r\nhi", 200),
        r("reason_8bit", b"HTTP/1.1 200 \xe9\r\nContent-Length: 2\r\n\r\nhi", 200),
        r("space_before_colon", b"HTTP/1.1 200 OK\r\nX-A : b\r\nContent-Length: 2\r\n\r\nhi", 502),
        r("obs_fold", b"HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\nContent-Length: 2\r\n\r\nhi", 200),
        r("bare_lf", b"HTTP/1.1 200 OK\nContent-Length: 2\n\nhi", 200),
        r("close_delimited", b"HTTP/1.1 200 OK\r\n\r\nhello", 200),
        r("close_delimited_10", b"HTTP/1.0 200 OK\r\n\r\nhello", 200),
        r("204_with_cl", b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", 204),
        r("304_with_cl", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", 304),
        r("100_then_200", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", 200),
        r("103_then_200", b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", 200),
        r("101_without_upgrade", b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nhi", 502),
        r("chunk_size_2p52", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000\r\nhi", 502),
        r("chunk_size_non_hex", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhi", 502),
        r("chunk_trailer", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nhi\r\n0\r\nX-T: 1\r\n\r\n", 200),
        r("garbage", b"garbage\r\n\r\n", 502),
        r("empty", b"", 502),
        r("keep_alive", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nhi", 200),
        r("server_close", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi", 200),
        r("empty_header_name", b"HTTP/1.1 200 OK\r\n: x\r\nContent-Length: 2\r\n\r\nhi", 502),
        r("bare_cr_in_value", b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nhi", 502),
    ];
    out.push(ResponseVector {
        name: "status_4_digits",
        bytes: b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nhi".to_vec(),
        status: 502,
        deviation: Some("HAProxy forwards status 2000; rhaproxy requires 3 digits (502)"),
    });
    out.push(ResponseVector {
        name: "status_2_digits",
        bytes: b"HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nhi".to_vec(),
        status: 502,
        deviation: Some("HAProxy forwards status 20 without its Content-Length; rhaproxy: 502"),
    });
    out.push(ResponseVector {
        name: "status_099",
        bytes: b"HTTP/1.1 099 OK\r\nContent-Length: 2\r\n\r\nhi".to_vec(),
        status: 502,
        deviation: Some("HAProxy forwards status 099 without its Content-Length; rhaproxy: 502"),
    });
    out
}
