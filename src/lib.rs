//! rhaproxy: a drop-in replacement for HAProxy 2.6 whose headline is transparent proxying.
//!
//! Pipeline: config text -> [`config::lexer`] -> keyword tables ([`config::keywords`]) -> IR
//! ([`config::ir`]) -> validity pass ([`config::validate`]) -> runtime ([`runtime`]).

pub mod acl;
pub mod cli;
pub mod compat_doc;
pub mod config;
pub mod diag;
pub mod http1;
pub mod lb;
pub mod log;
pub mod runtime;
pub mod tproxy;

#[global_allocator]
static ALLOCATOR: runtime::aligned_cache::Allocator = runtime::aligned_cache::Allocator;
