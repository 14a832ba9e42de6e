//! Sections that are not proxies: userlist, peers, resolvers, mailers, http-errors, ring, cache,
//! program, fcgi-app, log-forward, namespace_list.
//!
//! Most of them only matter when something refers to them (a server's `resolvers`, a proxy's
//! `errorfiles`, `email-alert mailers`, a `ring@` log target, ...). Those referring keywords are
//! refused as unsupported, so a section on its own is accepted without effect. Sections that act
//! by themselves (peers open a listener, program starts a process, log-forward binds) are refused.

use super::{DocRow, Status};

pub struct SectionKw {
    pub section: &'static str,
    pub status: Status,
    pub keywords: &'static [&'static str],
}

const UNREF: &str =
    "has no effect unless referenced; every keyword that references it is refused as unsupported";

pub static SECTIONS: &[SectionKw] = &[
    SectionKw {
        section: "userlist",
        status: Status::NoEffect(UNREF),
        keywords: &["group", "user"],
    },
    SectionKw {
        section: "peers",
        status: Status::NoEffect(
            "its tables work locally; synchronisation with another peer is refused (rhaproxy has no peer protocol), and the tables are not handed over on reload",
        ),
        keywords: &[
            "bind",
            "default-bind",
            "default-server",
            "disabled",
            "enabled",
            "log",
            "peer",
            "server",
            "shards",
            "table",
        ],
    },
    SectionKw {
        section: "resolvers",
        status: Status::NoEffect(UNREF),
        keywords: &[
            "accepted_payload_size",
            "hold",
            "nameserver",
            "parse-resolv-conf",
            "resolution_pool_size",
            "resolve_retries",
            "timeout",
        ],
    },
    SectionKw {
        section: "mailers",
        status: Status::NoEffect(UNREF),
        keywords: &["mailer", "timeout"],
    },
    SectionKw {
        section: "http-errors",
        status: Status::NoEffect(UNREF),
        keywords: &["errorfile"],
    },
    SectionKw {
        section: "ring",
        status: Status::NoEffect(UNREF),
        keywords: &[
            "backing-file",
            "description",
            "format",
            "maxlen",
            "server",
            "size",
            "timeout",
        ],
    },
    SectionKw {
        section: "cache",
        status: Status::NoEffect(UNREF),
        keywords: &[
            "max-age",
            "max-object-size",
            "max-secondary-entries",
            "maxblocks",
            "process-vary",
            "total-max-size",
        ],
    },
    SectionKw {
        section: "program",
        status: Status::Unsupported,
        keywords: &["command", "group", "no", "option", "user"],
    },
    SectionKw {
        section: "fcgi-app",
        status: Status::NoEffect(UNREF),
        keywords: &[
            "acl",
            "docroot",
            "index",
            "log-stderr",
            "option",
            "pass-header",
            "path-info",
            "set-param",
        ],
    },
    SectionKw {
        section: "log-forward",
        status: Status::Unsupported,
        keywords: &["backlog", "bind", "dgram-bind", "log", "maxconn", "timeout"],
    },
    SectionKw {
        section: "namespace_list",
        status: Status::NoEffect(UNREF),
        keywords: &["namespace"],
    },
];

pub fn section(name: &str) -> Option<&'static SectionKw> {
    SECTIONS.iter().find(|s| s.section == name)
}

pub fn doc_rows() -> Vec<DocRow> {
    let mut rows = Vec::new();
    for s in SECTIONS {
        rows.push(DocRow {
            section: "sections",
            keyword: s.section.to_string(),
            where_: "top level".into(),
            status: s.status,
        });
    }
    rows
}
