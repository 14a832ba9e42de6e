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
