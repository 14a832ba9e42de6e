//! Arbitrary bytes through the config lexer, `.if` evaluation, keyword tables and the validity
//! pass: they must return diagnostics, never panic or loop.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The lexer alone, line by line, with a fixed environment.
    let env: std::collections::HashMap<String, String> =
        [("A".to_string(), "x y".to_string())].into_iter().collect();
    for line in data.split(|b| *b == b'\n') {
        let _ = rhaproxy::config::lexer::split_line(line, &env);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = rhaproxy::config::cond::eval(text, &|v| v == "A");
    }
    // The whole front end on the text (lossy, the parser reads bytes the same way).
    let text = String::from_utf8_lossy(data);
    let mut diags = rhaproxy::diag::Diags::captured();
    if let Ok(mut cfg) = rhaproxy::config::parse_str("fuzz.cfg", &text, &mut diags) {
        let _ = rhaproxy::config::validate::check(&mut cfg, &mut diags);
    }
});
