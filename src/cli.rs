//! Command line, with HAProxy's flags.

pub fn main() -> i32 {
    0
}
