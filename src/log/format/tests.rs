//! Expected lines below were captured from HAProxy 2.6.12 (UDP datagrams, header removed).

use super::*;
use std::sync::Arc;

fn at(secs: i64, ms: u32) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, ms * 1_000_000).unwrap()
}

fn sa(s: &str) -> Option<SocketAddr> {
    Some(s.parse().unwrap())
}

fn zeros() -> LogRecord {
    LogRecord {
        t_handshake: Some(0),
        t_idle: Some(0),
        t_request: Some(0),
        t_q: Some(0),
        t_queue: Some(0),
        t_connect: Some(0),
        t_response: Some(0),
        t_active: Some(0),
        t_data: Some(0),
        t_total: Some(0),
        t_user: Some(0),
        ..LogRecord::default()
    }
}

fn render(fmt: &str, r: &LogRecord) -> String {
    compile(fmt, true).unwrap().render_to_string(r)
}

fn local_date(d: &DateTime<Utc>) -> String {
    let mut v = Vec::new();
    put_date_local(&mut v, d);
    String::from_utf8(v).unwrap()
}

const ALL: &str = "%o|%B|%U|%CC|%CS|%H|%HM|%HP|%HPO|%HQ|%HU|%HV|%ID|%ST|%T|%Tl|%Ts|%t|%tr|%trg|%trl|%ms|%Th|%Ti|%TR|%Tq|%Tw|%Tc|%Tr|%Ta|%Td|%Tt|%Tu|%ac|%fc|%bc|%sc|%rc|%sq|%bq|%b|%f|%ft|%s|%bi|%bp|%ci|%cp|%fi|%fp|%si|%sp|%hr|%hs|%hrl|%hsl|%lc|%pid|%r|%rt|%sslc|%sslv|%ts|%tsc|%[src]|%[capture.req.hdr(0)]|%[capture.req.hdr(5)]|%[capture.res.hdr(0)]|%[srv_name]|%[be_name]|%[dst_port]";

/// The first request of the capture session: frontend `fa` with two request captures
/// (Host, User-Agent len 8), one response capture and `capture cookie SESS`.
fn rec_a() -> LogRecord {
    LogRecord {
        accept_date: at(1795712419, 971),
        request_date: at(1795712419, 971),
        hostname: Arc::from("vm"),
        pid: 16801,
        status: 200,
        bytes_out: 94,
        bytes_in: 108,
        actconn: 2,
        feconn: 1,
        frontend: Arc::from("fa"),
        backend: Some(Arc::from("bk")),
        server: Some(Arc::from("s1")),
        client: sa("127.0.0.1:60960"),
        backend_src: sa("127.0.0.1:39246"),
        frontend_addr: sa("127.0.0.1:18090"),
        server_addr: sa("127.0.0.1:18095"),
        req_captures: Some(vec![
            Some("127.0.0.1:18090".into()),
            Some("curl/\"q]".into()),
        ]),
        res_captures: Some(vec![Some("text/plain".into())]),
        cookie_req: Some("SESS=xyz".into()),
        cookie_res: Some("SESS=abc".into()),
        request_line: Some("GET /p/a?x=1&y=\"2\" HTTP/1.1".into()),
        ..zeros()
    }
}

#[test]
fn every_variable_plain() {
    let r = rec_a();
    let want = "A |94|108|SESS=xyz|SESS=abc|vm|GET|/p/a|/p/a|?x=1&y=#222#22|/p/a?x=1&y=#222#22|HTTP/1.1|-|200|26/Nov/2026:17:00:19 +0000|TL|1795712419|26/Nov/2026:17:00:19.971|26/Nov/2026:17:00:19.971|26/Nov/2026:17:00:19 +0000|TL|971|0|0|0|0|0|0|0|0|0|0|0|2|1|0|0|0|0|0|bk|fa|fa|s1|127.0.0.1|39246|127.0.0.1|60960|127.0.0.1|18090|127.0.0.1|18095|{127.0.0.1:18090|curl/#22q]}|{text/plain}|127.0.0.1:18090 curl/#22q]|text/plain|0|16801|GET /p/a?x=1&y=#222#22 HTTP/1.1|0|-|-|--|----|127.0.0.1|127.0.0.1:18090|-|text/plain|s1|bk|18090";
    let want = want.replace("TL", &local_date(&r.accept_date));
    assert_eq!(render(&format!("A {ALL}"), &r), want);
}

#[test]
fn every_variable_quoted() {
    let r = LogRecord {
        bytes_in: 81,
        actconn: 4,
        frontend: Arc::from("fq"),
        client: sa("127.0.0.1:38578"),
        backend_src: sa("127.0.0.1:39258"),
        frontend_addr: sa("127.0.0.1:18091"),
        req_captures: Some(vec![
            Some("127.0.0.1:18091".into()),
            Some("a\"b]c\\d".into()),
        ]),
        cookie_req: None,
        cookie_res: None,
        request_line: Some("GET /p?q HTTP/1.1".into()),
        req_counter: 4,
        accept_date: at(1795712419, 984),
        request_date: at(1795712419, 984),
        ..rec_a()
    };
    let want = "Q |94|81|\"\"|\"\"|\"vm\"|\"GET\"|\"/p\"|\"/p\"|\"?q\"|\"/p?q\"|\"HTTP/1.1\"|\"\"|200|26/Nov/2026:17:00:19 +0000|TL|1795712419|26/Nov/2026:17:00:19.984|26/Nov/2026:17:00:19.984|26/Nov/2026:17:00:19 +0000|TL|984|0|0|0|0|0|0|0|0|0|0|0|4|1|0|0|0|0|0|\"bk\"|\"fq\"|\"fq\"|\"s1\"|\"127.0.0.1\"|39258|\"127.0.0.1\"|38578|\"127.0.0.1\"|18091|\"127.0.0.1\"|18095|\"{127.0.0.1:18091|a#22b]c\\d}\"|\"{text/plain}\"|\"127.0.0.1:18091\" \"a#22b]c\\d\"|\"text/plain\"|0|16801|\"GET /p?q HTTP/1.1\"|4|\"\"|\"\"|--|----|\"127.0.0.1\"|\"127.0.0.1:18091\"|\"\"|\"text/plain\"|\"s1\"|\"bk\"|\"18091\"";
    let want = want.replace("TL", &local_date(&r.accept_date));
    assert_eq!(render(&format!("Q %{{+Q}}o{ALL}"), &r), want);
}

#[test]
fn every_variable_hex() {
    let r = LogRecord {
        bytes_in: 85,
        actconn: 4,
        frontend: Arc::from("fx"),
        client: sa("127.0.0.1:38174"),
        backend_src: sa("127.0.0.1:39268"),
        frontend_addr: sa("127.0.0.1:18092"),
        req_captures: None,
        res_captures: None,
        cookie_req: None,
        cookie_res: None,
        request_line: Some("GET /p?q HTTP/1.1".into()),
        req_counter: 6,
        accept_date: at(1795712419, 993),
        request_date: at(1795712419, 993),
        ..rec_a()
    };
    let want = "X |94|85|-|-|vm|GET|/p|/p|?q|/p?q|HTTP/1.1|-|200|26/Nov/2026:17:00:19 +0000|TL|6B0865A3|26/Nov/2026:17:00:19.993|26/Nov/2026:17:00:19.993|26/Nov/2026:17:00:19 +0000|TL|3E1|0|0|0|0|0|0|0|0|0|0|0|4|1|0|0|0|0|0|bk|fx|fx|s1|7F000001|9964|7F000001|951E|7F000001|46AC|7F000001|46AF|||||0000|41A1|GET /p?q HTTP/1.1|0006|-|-|--|----|127.0.0.1|-|-|-|s1|bk|18092";
    let want = want.replace("TL", &local_date(&r.accept_date));
    assert_eq!(render(&format!("X %{{+X}}o{ALL}"), &r), want);
}

fn rec_badreq(fe: &str, cport: u16, lc: u64, rt: u64, ms: u32) -> LogRecord {
    LogRecord {
        accept_date: at(1795712420, ms),
        request_date: at(1795712420, ms),
        hostname: Arc::from("vm"),
        pid: 16801,
        status: 400,
        actconn: 3,
        feconn: 1,
        frontend: Arc::from(fe),
        client: Some(SocketAddr::new("127.0.0.1".parse().unwrap(), cport)),
        frontend_addr: sa(&format!(
            "127.0.0.1:{}",
            if fe == "fa" { 18090 } else { 18091 }
        )),
        log_counter: lc,
        req_counter: rt,
        t_request: None,
        t_q: None,
        t_queue: None,
        t_connect: None,
        t_response: None,
        t_data: None,
        term_state: *b"PR--",
        ..zeros()
    }
}

#[test]
fn every_variable_badreq() {
    let r = rec_badreq("fa", 60982, 2, 8, 10);
    let want = "A |0|0|-|-|vm|<BADREQ>|<BADREQ>|<BADREQ>|<BADREQ>|<BADREQ>|<BADREQ>|-|400|26/Nov/2026:17:00:20 +0000|TL|1795712420|26/Nov/2026:17:00:20.010|26/Nov/2026:17:00:20.010|26/Nov/2026:17:00:20 +0000|TL|010|0|0|-1|-1|-1|-1|-1|0|-1|0|0|3|1|0|0|0|0|0|fa|fa|fa|<NOSRV>|-|-|127.0.0.1|60982|127.0.0.1|18090|-|-|||||2|16801|<BADREQ>|8|-|-|PR|PR--|127.0.0.1|-|-|-|-|-|18090";
    let want = want.replace("TL", &local_date(&r.accept_date));
    assert_eq!(render(&format!("A {ALL}"), &r), want);
    let r = rec_badreq("fq", 38582, 1, 9, 13);
    let want = "Q |0|0|\"\"|\"\"|\"vm\"|\"<BADREQ>\"|\"<BADREQ>\"|\"<BADREQ>\"|\"<BADREQ>\"|\"<BADREQ>\"|\"<BADREQ>\"|\"\"|400|26/Nov/2026:17:00:20 +0000|TL|1795712420|26/Nov/2026:17:00:20.013|26/Nov/2026:17:00:20.013|26/Nov/2026:17:00:20 +0000|TL|013|0|0|-1|-1|-1|-1|-1|0|-1|0|0|3|1|0|0|0|0|0|\"fq\"|\"fq\"|\"fq\"|\"<NOSRV>\"|\"\"|\"\"|\"127.0.0.1\"|38582|\"127.0.0.1\"|18091|\"\"|\"\"|||||1|16801|\"<BADREQ>\"|9|\"\"|\"\"|PR|PR--|\"127.0.0.1\"|\"\"|\"\"|\"\"|\"\"|\"\"|\"18091\"";
    let want = want.replace("TL", &local_date(&r.accept_date));
    assert_eq!(render(&format!("Q %{{+Q}}o{ALL}"), &r), want);
}

fn rec_escape(fe: &str) -> LogRecord {
    LogRecord {
        frontend: Arc::from(fe),
        backend: Some(Arc::from("bk")),
        server: Some(Arc::from("s1")),
        client: sa("127.0.0.1:1234"),
        req_captures: Some(vec![Some("h\"o]s\\t".into())]),
        cookie_req: Some("SESS=a\"]\\".into()),
        request_line: Some("GET /p\"]\\x?q=\"]\\ HTTP/1.1".into()),
        ..zeros()
    }
}

const ESC: &str = "%HQ|%r|%hr|%hrl|%CC|%[capture.req.hdr(0)]|%b|%f|%s|%ci|%ID|%HU";

#[test]
fn escape_flags() {
    assert_eq!(
        render(&format!("E %{{+E}}o{ESC}"), &rec_escape("fe")),
        r#"E ?q=#22\]\\|GET /p#22\]\\x?q=#22\]\\ HTTP/1.1|{h#22o\]s\\t}|h#22o\]s\\t|SESS=a\"\]\\|h\"o\]s\\t|bk|fe|s1|127.0.0.1|-|/p#22\]\\x?q=#22\]\\"#
    );
    assert_eq!(
        render(&format!("QE %{{+Q,+E}}o{ESC}"), &rec_escape("fqe")),
        r#"QE "?q=#22\]\\"|"GET /p#22\]\\x?q=#22\]\\ HTTP/1.1"|"{h#22o\]s\\t}"|"h#22o\]s\\t"|"SESS=a\"\]\\"|"h\"o\]s\\t"|"bk"|"fqe"|"s1"|"127.0.0.1"|""|"/p#22\]\\x?q=#22\]\\""#
    );
    let r = LogRecord {
        cookie_req: None,
        accept_date: at(1795712447, 932),
        client: sa("127.0.0.1:33242"),
        ..rec_escape("fq")
    };
    assert_eq!(
        render(&format!("Q %{{+Q}}o{ESC} %{{+X}}ci:%cp %Ts%ms"), &r),
        r#"Q "?q=#22]\"|"GET /p#22]\x?q=#22]\ HTTP/1.1"|"{h#22o]s\t}"|"h#22o]s\t"|""|"h"o]s\t"|"bk"|"fq"|"s1"|"127.0.0.1"|""|"/p#22]\x?q=#22]\" 7F000001:33242 1795712447932"#
    );
    let r = LogRecord {
        client: sa("[::1]:36676"),
        accept_date: at(1795712447, 940),
        request_line: Some("GET /p HTTP/1.1".into()),
        req_captures: Some(vec![Some("x".into())]),
        cookie_req: None,
        ..rec_escape("fq")
    };
    assert_eq!(
        render(&format!("Q %{{+Q}}o{ESC} %{{+X}}ci:%cp %Ts%ms"), &r),
        r#"Q ""|"GET /p HTTP/1.1"|"{x}"|"x"|""|"x"|"bk"|"fq"|"s1"|"::1"|""|"/p" 00000000000000000000000000000001:36676 1795712447940"#
    );
}

#[test]
fn spaces_collapse_and_empty_capture_lists() {
    let r = zeros();
    assert_eq!(
        render(
            "S a  %hr  b %hs x %hrl %hsl %hs y %{+Q}hr z%hr w %{+Q}hs",
            &r
        ),
        "S a b x y z w "
    );
    let mut r = zeros();
    r.req_captures = Some(vec![Some("x".into()), Some(Vec::new()), None]);
    let f = "S2 %hr %hrl %{+Q}hrl [%[capture.req.hdr(1)]] [%[capture.req.hdr(2)]] [%{+Q}[capture.req.hdr(1)]]";
    assert_eq!(render(f, &r), r#"S2 {x||} x  - "x" "" "" [-] [-] [""]"#);
    r.req_captures = Some(vec![Some("x\tz\u{1}".into()), None, None]);
    assert_eq!(
        render(f, &r),
        r##"S2 {x#09z#01||} x#09z#01 - - "x#09z#01" "" "" [-] [-] [""]"##
    );
    r.req_captures = Some(vec![Some("#{|}%~`^".into()), None, None]);
    assert_eq!(
        render(f, &r),
        r##"S2 {#23#7B#7C#7D%~`^||} #23#7B#7C#7D%~`^ - - "#23#7B#7C#7D%~`^" "" "" [-] [-] [""]"##
    );
    // obs-text bytes (captured: Host `x\x80\xff`)
    r.req_captures = Some(vec![Some(b"x\x80\xff".to_vec()), None, None]);
    assert_eq!(
        render(f, &r),
        r##"S2 {x#80#FF||} x#80#FF - - "x#80#FF" "" "" [-] [-] [""]"##
    );
    r.req_captures = None;
    assert_eq!(render(f, &r), r#"S2 [-] [-] [""]"#);
}

#[test]
fn leading_spaces_dropped_empty_vars_count() {
    let r = LogRecord {
        frontend: Arc::from("f1"),
        client: sa("127.0.0.1:57978"),
        request_line: Some("GET /x HTTP/1.1".into()),
        ..zeros()
    };
    assert_eq!(
        render(
            "  lead %{+Q}HQ %HQ x %ID %{+Q}ID %[src,upper] %[fe_name,upper] %{+Q}[fe_name] %{+X}[src_port]  ",
            &r
        ),
        "lead \"\"  x - \"\" 127.0.0.1 F1 \"f1\" 57978 "
    );
}

#[test]
fn logasap_plus_signs() {
    let r = LogRecord {
        logasap: true,
        bytes_out: 76,
        ..zeros()
    };
    assert_eq!(
        render("%B %Tt %Tu %Ta %Td %U %{+Q}B", &r),
        "+76 +0 +0 +0 0 0 +76"
    );
    let r = LogRecord {
        retries: 2,
        redispatched: true,
        ..zeros()
    };
    assert_eq!(render("%rc", &r), "+2");
}

#[test]
fn default_formats_match_facts_samples() {
    // option httplog, captures Host and Content-Type.
    let r = LogRecord {
        accept_date: at(1795704277, 346),
        request_date: at(1795704277, 346),
        client: sa("127.0.0.1:42688"),
        frontend: Arc::from("fe_http"),
        backend: Some(Arc::from("be_http")),
        server: Some(Arc::from("s1")),
        t_request: Some(0),
        t_queue: Some(0),
        t_connect: Some(0),
        t_response: Some(1),
        t_active: Some(1),
        status: 200,
        bytes_out: 73,
        actconn: 2,
        feconn: 1,
        req_captures: Some(vec![Some("example.com".into())]),
        res_captures: Some(vec![Some("text/plain".into())]),
        request_line: Some("GET /foo?bar=1 HTTP/1.1".into()),
        ..zeros()
    };
    assert_eq!(
        render(HTTPLOG_FORMAT, &r),
        "127.0.0.1:42688 [26/Nov/2026:14:44:37.346] fe_http be_http/s1 0/0/0/1/1 200 73 - - ---- 2/1/0/0/0 0/0 {example.com} {text/plain} \"GET /foo?bar=1 HTTP/1.1\""
    );
    // option tcplog
    let r = LogRecord {
        accept_date: at(1795704280, 664),
        client: sa("127.0.0.1:38790"),
        frontend: Arc::from("fe_tcp"),
        backend: Some(Arc::from("be_tcp")),
        server: Some(Arc::from("s1")),
        t_queue: Some(1),
        t_connect: Some(0),
        t_total: Some(1),
        bytes_out: 85,
        actconn: 2,
        feconn: 1,
        ..zeros()
    };
    assert_eq!(
        compile(TCPLOG_FORMAT, false).unwrap().render_to_string(&r),
        "127.0.0.1:38790 [26/Nov/2026:14:44:40.664] fe_tcp be_tcp/s1 1/0/1 85 -- 2/1/0/0/0 0/0"
    );
    // option httplog clf
    let r = LogRecord {
        accept_date: at(1795704280, 61),
        request_date: at(1795704280, 61),
        client: sa("127.0.0.1:46274"),
        frontend: Arc::from("fe_clf"),
        backend: Some(Arc::from("be_http")),
        server: Some(Arc::from("s1")),
        status: 200,
        bytes_out: 73,
        actconn: 3,
        feconn: 1,
        request_line: Some("GET /clf HTTP/1.1".into()),
        ..zeros()
    };
    assert_eq!(
        render(CLF_HTTPLOG_FORMAT, &r),
        "127.0.0.1 - - [26/Nov/2026:14:44:40 +0000] \"GET /clf HTTP/1.1\" 200 73 \"\" \"\" 46274 061 \"fe_clf\" \"be_http\" \"s1\" 0 0 0 0 0 ---- 3 1 0 0 0 0 0 \"\" \"\" "
    );
    // empty connection to an HTTP frontend, no dontlognull
    let r = LogRecord {
        accept_date: at(1795704285, 182),
        request_date: at(1795704285, 182),
        client: sa("127.0.0.1:56146"),
        frontend: Arc::from("fe_http"),
        t_request: None,
        t_queue: None,
        t_connect: None,
        t_response: None,
        t_active: Some(0),
        status: 400,
        actconn: 2,
        feconn: 1,
        term_state: *b"CR--",
        ..zeros()
    };
    assert_eq!(
        render(HTTPLOG_FORMAT, &r),
        "127.0.0.1:56146 [26/Nov/2026:14:44:45.182] fe_http fe_http/<NOSRV> -1/-1/-1/-1/0 400 0 - - CR-- 2/1/0/0/0 0/0 \"<BADREQ>\""
    );
    let mut v = Vec::new();
    render_connect_line(
        &mut v,
        "127.0.0.1:39246".parse().unwrap(),
        "127.0.0.1:18095".parse().unwrap(),
        "ans",
        true,
    );
    assert_eq!(
        v,
        b"Connect from 127.0.0.1:39246 to 127.0.0.1:18095 (ans/HTTP)"
    );
}

#[test]
fn httpslog_on_plain_connections() {
    // Captured: `option httpslog` on a non-SSL bind.
    let r = LogRecord {
        accept_date: at(1795713403, 131),
        request_date: at(1795713403, 131),
        client: sa("127.0.0.1:33806"),
        frontend: Arc::from("f1"),
        backend: Some(Arc::from("bk")),
        server: Some(Arc::from("s1")),
        status: 200,
        bytes_out: 76,
        actconn: 2,
        feconn: 1,
        request_line: Some("GET /x HTTP/1.1".into()),
        ..zeros()
    };
    assert_eq!(
        render(HTTPSLOG_FORMAT, &r),
        "127.0.0.1:33806 [26/Nov/2026:17:16:43.131] f1 bk/s1 0/0/0/0/0 200 76 - - ---- 2/1/0/0/0 0/0 \"GET /x HTTP/1.1\" 0/-/-/-/0 -/-/-"
    );
    assert_eq!(
        render(
            "%[fc_err]|%[ssl_fc_err,hex]|%[ssl_c_err]|%[ssl_c_ca_err]|%[ssl_fc_is_resumed]|%[ssl_fc_sni]|%sslv|%sslc|%[ssl_fc]",
            &r
        ),
        "0|-|-|-|0|-|-|-|0"
    );
    // SSL connection (values from the record; hex of an integer is its 8-byte form)
    let r = LogRecord {
        ssl_version: Some("TLSv1.3".into()),
        ssl_sni: Some("Example.COM".into()),
        ssl_resumed: true,
        ssl_fc_err: Some(0),
        ssl_c_err: Some(20),
        ..r
    };
    assert_eq!(
        render(
            "%[ssl_fc_err,hex]|%[ssl_c_err]|%[ssl_c_ca_err]|%[ssl_fc_is_resumed]|%[ssl_fc_sni,lower]|%[ssl_fc_sni,hex]|%[ssl_fc]",
            &r
        ),
        "0000000000000000|20|-|1|example.com|4578616D706C652E434F4D|1"
    );
}

#[test]
fn converters_follow_sample_types() {
    // Captured from HAProxy 2.6.12 (client 127.0.0.1, frontend f1 on port 18493).
    let r = LogRecord {
        client: sa("127.0.0.1:40000"),
        frontend_addr: sa("127.0.0.1:18493"),
        frontend: Arc::from("f1"),
        ..zeros()
    };
    assert_eq!(
        render(
            "%[fc_err,hex] %[dst_port,hex] %[src,hex] %[fe_name,hex] %[dst_port,upper] %[ssl_fc,hex] %{+Q}[ssl_fc] %[src,upper,hex,lower]",
            &r
        ),
        "0000000000000000 000000000000483D 7F000001 6631 18493 0000000000000000 \"0\" 3132372e302e302e31"
    );
    let r = LogRecord {
        client: sa("[::1]:1"),
        ..zeros()
    };
    assert_eq!(
        render("%[src,hex] %[src]", &r),
        "00000000000000000000000000000001 ::1"
    );
}

#[test]
fn escape_and_convert_samples() {
    let r = LogRecord {
        req_captures: Some(vec![Some("a\"b]c\\".into())]),
        ..zeros()
    };
    assert_eq!(
        render(
            "%{+E}[capture.req.hdr(0)] %{+E}[capture.req.hdr(0),upper] %{+Q,+E}[capture.req.hdr(0),hex]",
            &r
        ),
        r#"a\"b\]c\\ A\"B\]C\\ "6122625D635C""#
    );
}

#[test]
fn misc_variables() {
    let r = LogRecord {
        frontend: Arc::from("fe"),
        frontend_ssl: true,
        ssl_cipher: Some("TLS_AES_256_GCM_SHA384".into()),
        ssl_version: Some("TLSv1.3".into()),
        unique_id: Some("abc".into()),
        request_line: Some("GET http://h:8/a/b?c HTTP/1.1".into()),
        accept_date: at(1795712419, 5),
        pid: 7,
        log_counter: 300,
        ..zeros()
    };
    assert_eq!(
        render(
            "%ft %sslc %sslv %ID %HP %HPO %HQ %HU %ms %{+X}ms %{+X}pid %{+X}lc %%",
            &r
        ),
        "fe~ TLS_AES_256_GCM_SHA384 TLSv1.3 abc http://h:8/a/b /a/b ?c http://h:8/a/b?c 005 05 0007 012C %"
    );
    assert_eq!(
        render(
            "%{+X}cp",
            &LogRecord {
                client: sa("1.2.3.4:80"),
                ..zeros()
            }
        ),
        "0050"
    );
    assert_eq!(render("%{+Q}ft %{+Q}ts", &r), "\"fe~\" --");
}

/// Request-line parts, captured from HAProxy 2.6.12.
#[test]
fn request_line_parts() {
    let f = "%HM|%HP|%HPO|%HQ|%HU|%HV|%r|%{+Q}HPO|%{+Q}HV";
    let cases = [
        (
            "GET http://h:8/a/b?c HTTP/1.1",
            r#"GET|http://h:8/a/b|/a/b|?c|http://h:8/a/b?c|HTTP/1.1|GET http://h:8/a/b?c HTTP/1.1|"/a/b"|"HTTP/1.1""#,
        ),
        (
            "GET http://h:8 HTTP/1.1",
            r#"GET|http://h:8|||http://h:8|HTTP/1.1|GET http://h:8 HTTP/1.1|""|"HTTP/1.1""#,
        ),
        (
            "OPTIONS * HTTP/1.1",
            r#"OPTIONS|*|||*|HTTP/1.1|OPTIONS * HTTP/1.1|""|"HTTP/1.1""#,
        ),
        (
            "GET /x HTTP/1.0",
            r#"GET|/x|/x||/x|HTTP/1.0|GET /x HTTP/1.0|"/x"|"HTTP/1.0""#,
        ),
        (
            "GET //a/b?c HTTP/1.1",
            r#"GET|//a/b|//a/b|?c|//a/b?c|HTTP/1.1|GET //a/b?c HTTP/1.1|"//a/b"|"HTTP/1.1""#,
        ),
        (
            "GET /a??b HTTP/1.1",
            r#"GET|/a|/a|??b|/a??b|HTTP/1.1|GET /a??b HTTP/1.1|"/a"|"HTTP/1.1""#,
        ),
    ];
    for (line, want) in cases {
        let r = LogRecord {
            request_line: Some(line.into()),
            ..zeros()
        };
        assert_eq!(render(f, &r), want, "{line}");
    }
}

#[test]
fn derive_timers() {
    let mut r = LogRecord {
        t_handshake: Some(1),
        t_idle: Some(2),
        t_request: Some(3),
        t_queue: Some(4),
        t_connect: Some(5),
        t_response: Some(6),
        t_total: Some(30),
        ..LogRecord::default()
    };
    r.derive_timers();
    assert_eq!((r.t_q, r.t_user, r.t_data), (Some(6), Some(28), Some(9)));
    let mut r = LogRecord {
        t_handshake: Some(0),
        t_idle: Some(0),
        t_total: Some(0),
        ..LogRecord::default()
    };
    r.derive_timers();
    assert_eq!((r.t_q, r.t_user, r.t_data), (None, Some(0), None));
}

/// Measured with `haproxy -c` (HTTP frontend unless noted).
#[test]
fn compile_errors_match_haproxy() {
    let nsv = |v: &str| {
        format!(
            "no such format variable '{v}'. If you wanted to emit the '%' character verbatim, you need to use '%%'."
        )
    };
    let cases: Vec<(&str, String)> = vec![
        ("%ci %zz", nsv("zz")),
        ("%Cx", nsv("Cx")),
        ("%Tx", nsv("Tx")),
        ("%{+Q}Tx", nsv("Tx")),
        ("%ci1", nsv("ci1")),
        ("%{+Q}ci1", nsv("ci1")),
        ("%{+Q}1", nsv("1")),
        ("%{+Q", "truncated line after '+Q'.".into()),
        ("%ci %{+Q", "truncated line after '+Q'.".into()),
        ("%{+Q,+E", "truncated line after '+Q,+E'.".into()),
        ("%ci %{", "truncated line after ''.".into()),
        ("%", "truncated line after '%'.".into()),
        ("abc%", "truncated line after '%'.".into()),
        ("%{+Q}ci%", "truncated line after '%'.".into()),
        ("%%%", "truncated line after '%'.".into()),
        ("%tsc%", "truncated line after '%'.".into()),
        (
            "%{+Q}",
            "parse argument modifier without variable name near '%{+Q}'.".into(),
        ),
        (
            "%{+Q} x",
            "parse argument modifier without variable name near '%{+Q}'.".into(),
        ),
        (
            "%{+Q}%%",
            "parse argument modifier without variable name near '%{+Q}'.".into(),
        ),
        (
            "%{+Q}{+E}ci",
            "parse argument modifier without variable name near '%{+Q}'.".into(),
        ),
        (
            "x%{+Q,+E}",
            "parse argument modifier without variable name near '%{+Q,+E}'.".into(),
        ),
        (
            "%9",
            "unexpected variable name near '9' at position 1 line : '%9'. Maybe you want to write a single '%', use the syntax '%%'.".into(),
        ),
        (
            "ab %9x",
            "unexpected variable name near '9' at position 4 line : 'ab %9x'. Maybe you want to write a single '%', use the syntax '%%'.".into(),
        ),
        (
            "% x",
            "unexpected variable name near ' ' at position 1 line : '% x'. Maybe you want to write a single '%', use the syntax '%%'.".into(),
        ),
        ("%[src", "missing ']' after 'src'.".into()),
        ("%ci%[src", "missing ']' after 'src'.".into()),
        ("%[src]%[dst", "missing ']' after 'dst'.".into()),
        ("%[src,lower", "missing ']' after 'src,lower'.".into()),
        ("%[src,", "missing ']' after 'src,'.".into()),
        (
            "%[capture.req.hdr(0)",
            "missing ']' after 'capture.req.hdr(0)'.".into(),
        ),
        (
            "%[nosuch]",
            "failed to parse sample expression <nosuch]> : unknown fetch method 'nosuch'.".into(),
        ),
        (
            "%[]",
            "failed to parse sample expression <]> : missing fetch method.".into(),
        ),
        (
            "%[ src]",
            "failed to parse sample expression < src]> : missing fetch method.".into(),
        ),
        (
            "%[ fe_name]",
            "failed to parse sample expression < fe_name]> : missing fetch method.".into(),
        ),
        (
            "%[fe_name ]",
            "expected ']' after 'fe_name', but found ' '.".into(),
        ),
        (
            "%[src]%[fe_name lower]",
            "expected ']' after 'fe_name', but found ' '.".into(),
        ),
        (
            "%[src,lower ]",
            "expected ']' after 'src,lower', but found ' '.".into(),
        ),
        (
            "a %ci %[src,nosuchconv]",
            "failed to parse sample expression <src,nosuchconv]> : unknown converter 'nosuchconv'.".into(),
        ),
        (
            "%[src,lower,]",
            "failed to parse sample expression <src,lower,]> : unknown converter ''.".into(),
        ),
        (
            "%[src,,]",
            "failed to parse sample expression <src,,]> : unknown converter ''.".into(),
        ),
        (
            "%[src(1)]",
            "failed to parse sample expression <src(1)]> : fetch method 'src' : expected ')' before '1)]'.".into(),
        ),
        (
            "%[src,upper(1)]",
            "failed to parse sample expression <src,upper(1)]> : invalid arg 1 in converter 'upper' : expected ')' before '1)]'.".into(),
        ),
        (
            "%[src,lower(]",
            "failed to parse sample expression <src,lower(]> : invalid arg 1 in converter 'lower' : expected ')' before ']'.".into(),
        ),
        (
            "%[capture.req.hdr]",
            "failed to parse sample expression <capture.req.hdr]> : fetch method 'capture.req.hdr' : expected type 'integer' at position 1, but got nothing.".into(),
        ),
        (
            "%[capture.req.hdr(x)]",
            "failed to parse sample expression <capture.req.hdr(x)]> : fetch method 'capture.req.hdr' : failed to parse 'x' as type 'integer' at position 1.".into(),
        ),
        (
            "%[req.hdr(host)]",
            "sample fetch <req.hdr(host)]> may not be reliably used here because it needs 'HTTP request headers' which is not available here.".into(),
        ),
    ];
    for (fmt, want) in cases {
        assert_eq!(compile(fmt, true).unwrap_err().0, want, "format {fmt:?}");
    }
    // HTTP-only variables in a TCP proxy
    for v in variable_names() {
        let res = compile(&format!("%{v}"), false);
        if is_http_only(v) {
            assert_eq!(
                res.unwrap_err().0,
                format!("format variable '{v}' is reserved for HTTP mode."),
            );
        } else {
            assert!(res.is_ok(), "{v}");
        }
    }
    let e = compile("%r", false).unwrap_err();
    assert_eq!(
        e.alert("log-format", "t.cfg", 11),
        "Parsing [t.cfg:11]: failed to parse log-format : format variable 'r' is reserved for HTTP mode."
    );
}

#[test]
fn accepted_formats() {
    for f in [
        "%{+Z}o",
        "%%",
        "%{+Q,+E}o %ci",
        "%{Q}ci",
        "%{}ci",
        "%[src,lower]",
        "%[src]x",
        "%[capture.req.hdr(0)]",
        "%{+X}Ts",
        "%{+q}ci",
        "%Tt_x",
        "%Tt-x",
        "%[src]]",
        "%ci]",
        "%ci{",
        "%[fe_name] %[be_name] %[srv_name] %[src_port] %[dst] %[dst_port] %[capture.res.hdr(0)]",
        "%o",
        "%{+Q}[src]",
        "%ci%cp",
        "%{+Q,-Q}ci",
        "%[capture.req.hdr(0)]%[capture.req.hdr(1)]",
        "",
    ] {
        assert!(compile(f, true).is_ok(), "{f:?}");
    }
    assert_eq!(
        render(
            "%{+Q,-Q}ci %{Q}ci %{+Z}ci",
            &LogRecord {
                client: sa("1.2.3.4:5"),
                ..zeros()
            }
        ),
        "1.2.3.4 1.2.3.4 1.2.3.4"
    );
}

#[test]
fn o_sets_defaults_and_tabs_are_literal() {
    // Captured from HAProxy 2.6.12.
    let r = LogRecord {
        client: sa("127.0.0.1:40440"),
        ..zeros()
    };
    assert_eq!(
        render("%{+Q}o %ci %{-Q}o %ci %{+Q}o %o %ci %{+X}o %ci %{+Q}ci", &r),
        "\"127.0.0.1\" 127.0.0.1 \"127.0.0.1\" 7F000001 7F000001"
    );
    assert_eq!(render("a\tb\tc %ci\t%cp", &r), "a\tb\tc 127.0.0.1\t40440");
}

#[test]
fn str_env_hostname_var() {
    let r = LogRecord {
        hostname: Arc::from("vm"),
        vars: vec![
            ("txn.x".into(), b"v\"1".to_vec()),
            ("sess.n".into(), b"42".to_vec()),
        ],
        ..zeros()
    };
    assert_eq!(
        render(
            "%[str(abc)] %[str()] %[str] %[hostname] %[var(txn.x)] %{+Q,+E}[var(txn.x)] %[var(txn.y)] %[var(txn.y,dflt)] %[var(sess.n),hex] %[env(RHAPROXY_SURELY_UNSET_VAR)] %[str(a),upper]",
            &r
        ),
        "abc - - vm v\"1 \"v\\\"1\" - dflt 3432 - A"
    );
    // no stream: stream-scoped variables are unavailable, even their default
    let r2 = LogRecord {
        session_only: true,
        vars: vec![("sess.n".into(), b"42".to_vec())],
        ..zeros()
    };
    // captured from HAProxy 2.6.12: a bad request, then a normal one
    let f = "%[var(txn.y,dflt)] %[var(sess.n)] %[var(sess.m,d)] %[var(proc.m,p)] %[var(req.m,r)]";
    assert_eq!(render(f, &r2), "- 42 d p -");
    let r3 = LogRecord {
        session_only: false,
        ..r2
    };
    assert_eq!(render(f, &r3), "dflt 42 d p -");
    let bad = |f: &str| compile(f, true).unwrap_err().0;
    let scope = "A variable name must be start by its scope. The scope can be 'proc', 'sess', 'txn', 'req', 'res' or 'check'.";
    assert_eq!(
        bad("%[var(x)]"),
        format!(
            "failed to parse sample expression <var(x)]> : invalid args in fetch method 'var' : invalid variable name 'x'. {scope}"
        )
    );
    assert_eq!(
        bad("%[var(TXN.x)]"),
        format!(
            "failed to parse sample expression <var(TXN.x)]> : invalid args in fetch method 'var' : invalid variable name 'TXN.x'. {scope}"
        )
    );
    assert_eq!(
        bad("%[var(txn.)]"),
        format!(
            "failed to parse sample expression <var(txn.)]> : invalid args in fetch method 'var' : invalid variable name 'txn.'. {scope}"
        )
    );
    assert_eq!(
        bad("%[var()]"),
        "failed to parse sample expression <var()]> : invalid args in fetch method 'var' : Empty variable name cannot be accepted."
    );
    assert_eq!(
        bad("%[var]"),
        "failed to parse sample expression <var]> : invalid args in fetch method 'var' : Empty variable name cannot be accepted."
    );
    assert_eq!(
        bad("%[var(txn.x-y)]"),
        "failed to parse sample expression <var(txn.x-y)]> : invalid args in fetch method 'var' : invalid syntax at char '-y'."
    );
    assert_eq!(
        bad("%[var(txn.x y)]"),
        "failed to parse sample expression <var(txn.x y)]> : invalid args in fetch method 'var' : invalid syntax at char ' y'."
    );
    assert_eq!(
        bad("%[var(txn.x,def,3)]"),
        "failed to parse sample expression <var(txn.x,def,3)]> : fetch method 'var' : expected ')' before ',3)]'."
    );
    assert_eq!(
        bad("%[str(a,b)]"),
        "failed to parse sample expression <str(a,b)]> : fetch method 'str' : expected ')' before ',b)]'."
    );
    assert_eq!(
        bad("%[env(A,B)]"),
        "failed to parse sample expression <env(A,B)]> : fetch method 'env' : expected ')' before ',B)]'."
    );
    assert_eq!(
        bad("%[hostname(1)]"),
        "failed to parse sample expression <hostname(1)]> : fetch method 'hostname' : expected ')' before '1)]'."
    );
    assert_eq!(
        bad("%[str(a)b]"),
        "expected ']' after 'str(a)', but found 'b'."
    );
    for ok in [
        "%[var(txn.x,def)]",
        "%[var(txn.a.b)]",
        "%[var(txn.x_1.Y)]",
        "%[var(proc.x)] %[var(sess.x)] %[var(req.x)] %[var(res.x)] %[var(check.x)]",
        "%[env]",
        "%[env()]",
        "%[hostname()]",
        "%[var(txn.x),lower]",
    ] {
        assert!(compile(ok, true).is_ok(), "{ok}");
    }
}

#[test]
fn unsupported_is_clear() {
    for f in ["%[uuid]", "%[src,sha1]", "%[fc_err_str]", "%[date]"] {
        let e = compile(f, true).unwrap_err().0;
        assert!(e.contains("not supported by rhaproxy"), "{f}: {e}");
    }
}

#[test]
fn render_reuses_buffer_and_appends() {
    let f = compile("%ci:%cp %s", true).unwrap();
    let r = LogRecord {
        client: sa("10.0.0.1:99"),
        ..zeros()
    };
    let mut buf = Vec::with_capacity(64);
    f.render(&r, &mut buf);
    let cap = buf.capacity();
    buf.clear();
    f.render(&r, &mut buf);
    assert_eq!(buf, b"10.0.0.1:99 <NOSRV>");
    assert_eq!(buf.capacity(), cap);
}

#[test]
fn compile_and_render_never_panic() {
    // xorshift: deterministic pseudo-random formats over a hostile alphabet
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let alphabet: Vec<char> = "%{}[](),+-QXE oTtrsciphHB0129é€_.^\"\\".chars().collect();
    let words = [
        "%ci",
        "%[src",
        "capture.req.hdr(",
        "%{+Q}",
        "%[",
        "]",
        "lower",
        "%%",
        "%{",
        "hex",
        "var(txn.",
        "str(",
        "env(",
        "hostname",
        ",",
        "(",
        ")",
    ];
    let r = LogRecord {
        client: sa("[::1]:80"),
        request_line: Some(b"GET /\xff HTTP/1.1".to_vec()),
        req_captures: Some(vec![Some(b"\x00]\"".to_vec())]),
        ..zeros()
    };
    for _ in 0..20_000 {
        let mut f = String::new();
        for _ in 0..(x % 12) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x.is_multiple_of(3) {
                f.push_str(words[(x as usize / 3) % words.len()]);
            } else {
                f.push(alphabet[(x as usize / 7) % alphabet.len()]);
            }
        }
        for http in [true, false] {
            if let Ok(c) = compile(&f, http) {
                let mut out = Vec::new();
                c.render(&r, &mut out);
            }
        }
    }
}
