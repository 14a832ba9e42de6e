//! Logging: HAProxy 2.6 log lines byte for byte.
//!
//! * [`format`]: `log-format` compiler and renderer, default formats.
//! * [`record`]: [`LogRecord`], the plain data a line is rendered from.
//! * [`syslog`]: datagram framing per `format` (local, rfc3164, rfc5424, ...), `len` truncation.
//! * [`target`]: the `log` directive parser ([`parse_log_args`]).
//! * [`sender`]: the non-blocking sender thread.

pub mod format;
mod haproxy_names;
pub mod record;
pub mod sender;
pub mod syslog;
pub mod target;

pub use format::{LogFormat, compile};
pub use record::LogRecord;
pub use target::{LogTarget, parse_log_args};
