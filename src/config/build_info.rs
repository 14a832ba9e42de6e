//! What this build says about itself: the HAProxy version it is compatible with (used by
//! `.if version_atleast(...)`), and the feature list printed by `-vv` and tested by `feature()`.

/// The HAProxy release whose behaviour rhaproxy reproduces.
pub const HAPROXY_VERSION: &str = "2.6.12";

pub const RHAPROXY_VERSION: &str = env!("CARGO_PKG_VERSION");

/// `+` = present, `-` = absent, in HAProxy's vocabulary, so `.if feature(X)` blocks written for
/// HAProxy take the branch that matches what rhaproxy really does (no OpenSSL, no Lua).
pub const FEATURES: &[&str] = &[
    "+ACCEPT4",
    "-51DEGREES",
    "+CPU_AFFINITY",
    "-DEVICEATLAS",
    "+EPOLL",
    "+GETADDRINFO",
    "+LINUX_SPLICE",
    "+LINUX_TPROXY",
    "-LUA",
    "+NETFILTER",
    "-OPENSSL",
    "-PCRE",
    "-PCRE2",
    "+POLL",
    "+PRCTL",
    "-PROMEX",
    "-QUIC",
    "+RT",
    "+THREAD",
    "+TPROXY",
    "-WURFL",
    "-ZLIB",
];
