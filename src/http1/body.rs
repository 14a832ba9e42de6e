//! Body framing: a byte-driven state machine that tells how many input bytes belong to the
//! current message body, without buffering or copying them. The runtime forwards exactly
//! `consumed` bytes (chunked framing included) and keeps the rest for the next message.

use super::message::{BodyKind, HttpError};
use std::ops::Range;

/// Which side a body comes from: framing errors are answered with 400 (request) or
/// 502 (response), as HAProxy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Request,
    Response,
}

/// Largest chunk size HAProxy 2.6.12 accepts is 2^52 - 1 (measured: `fffffffffffff` passes,
/// `10000000000000` is a 400); larger or non-hex sizes are errors.
pub const MAX_CHUNK_SIZE: u64 = (1 << 52) - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Done,
    Length(u64),
    Close,
    Tunnel,
    /// Reading chunk-size hex digits; `digits` counts digits seen.
    Size {
        value: u64,
        digits: u32,
    },
    /// Blanks after the size.
    SizeWs(u64),
    /// Inside a chunk extension.
    Ext(u64),
    /// CR seen at the end of the size line.
    SizeCr(u64),
    Data(u64),
    /// Expecting the CRLF (or LF) closing a data chunk.
    DataEnd,
    DataCr,
    /// At the start of a trailer line (or of the final empty line).
    TrStart,
    /// CR at the start of a trailer line: end of message if LF follows.
    TrEndCr,
    /// Trailer field name; `len` bytes seen.
    TrName(u32),
    /// Trailer field value (anything but CR/LF).
    TrValue,
    TrCr,
}

/// What [`BodyFramer::advance_events`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyEvent {
    /// Payload bytes of the input (chunk data, Content-Length data, close-delimited or
    /// tunnel bytes).
    Data(Range<usize>),
    /// The last chunk (`0`) size line was read; trailers (if any) follow.
    LastChunk,
    /// One byte of a trailer line, without CR/LF (field names lower-cased).
    TrailerByte(u8),
    /// End of one trailer line.
    TrailerEol,
    /// End of a chunked message (final empty line read).
    End,
}

/// Re-encodes a chunked body in canonical form as HAProxy does when forwarding: chunk
/// extensions dropped, `<hex>\r\n<data>\r\n` chunks, CRLF line endings, trailer names
/// lower-cased (measured: `2;x=y\r\nhi\r\n0\r\nX-T: 1\r\n\r\n` is forwarded as
/// `2\r\nhi\r\n0\r\nx-t: 1\r\n\r\n`). Chunk boundaries follow the input pieces.
#[derive(Debug, Clone)]
pub struct ChunkedNormalizer {
    framer: BodyFramer,
}

impl ChunkedNormalizer {
    pub fn new(dir: Direction) -> Self {
        ChunkedNormalizer {
            framer: BodyFramer::new(BodyKind::Chunked, dir),
        }
    }

    pub fn framer(&self) -> &BodyFramer {
        &self.framer
    }

    /// Consumes body bytes from `input` (see [`Step`]) and appends the canonical encoding
    /// of what they carry to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<Step, HttpError> {
        self.framer.advance_events(input, |ev| match ev {
            BodyEvent::Data(r) => super::serialize::write_chunk(out, &input[r]),
            BodyEvent::LastChunk => out.extend_from_slice(b"0\r\n"),
            BodyEvent::TrailerByte(b) => out.push(b),
            BodyEvent::TrailerEol | BodyEvent::End => out.extend_from_slice(b"\r\n"),
        })
    }
}

/// Result of one [`BodyFramer::advance`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Input bytes belonging to this body (always the whole input unless `done`).
    pub consumed: usize,
    /// The body is complete; bytes after `consumed` belong to the next message.
    pub done: bool,
}

/// The body state machine. Create it from the [`BodyKind`] of a parsed head, then feed it
/// the bytes that follow the head.
#[derive(Debug, Clone)]
pub struct BodyFramer {
    st: St,
    dir: Direction,
    payload: u64,
    consumed_total: u64,
    trailer_bytes: usize,
    have_trailer: bool,
    max_trailers: usize,
}

impl BodyFramer {
    pub fn new(kind: BodyKind, dir: Direction) -> Self {
        let st = match kind {
            BodyKind::None | BodyKind::Length(0) => St::Done,
            BodyKind::Length(n) => St::Length(n),
            BodyKind::Chunked => St::Size {
                value: 0,
                digits: 0,
            },
            BodyKind::CloseDelimited => St::Close,
            BodyKind::Tunnel => St::Tunnel,
        };
        BodyFramer {
            st,
            dir,
            payload: 0,
            consumed_total: 0,
            trailer_bytes: 0,
            have_trailer: false,
            max_trailers: 16384,
        }
    }

    /// Limit on the total size of chunked trailers (default 16384, i.e. tune.bufsize).
    pub fn with_trailer_limit(mut self, n: usize) -> Self {
        self.max_trailers = n;
        self
    }

    pub fn is_done(&self) -> bool {
        self.st == St::Done
    }

    /// The message ends with the connection (close-delimited response or tunnel).
    pub fn ends_at_close(&self) -> bool {
        matches!(self.st, St::Close | St::Tunnel)
    }

    /// Payload bytes seen so far (chunk data only, without chunked framing).
    pub fn payload_bytes(&self) -> u64 {
        self.payload
    }

    /// All body bytes consumed so far (payload + framing).
    pub fn consumed_bytes(&self) -> u64 {
        self.consumed_total
    }

    /// Bytes still expected when known (Content-Length body or current chunk).
    pub fn remaining_hint(&self) -> Option<u64> {
        match self.st {
            St::Length(n) | St::Data(n) => Some(n),
            St::Done => Some(0),
            _ => None,
        }
    }

    /// The peer closed. A close-delimited body ends normally; an unfinished Content-Length
    /// or chunked body is truncated (error); a tunnel just ends.
    pub fn on_eof(&mut self) -> Result<(), HttpError> {
        match self.st {
            St::Done => Ok(()),
            St::Close | St::Tunnel => {
                self.st = St::Done;
                Ok(())
            }
            _ => Err(self.err("truncated body")),
        }
    }

    fn err(&self, reason: &'static str) -> HttpError {
        match self.dir {
            Direction::Request => HttpError::new(400, reason),
            Direction::Response => HttpError::new(502, reason),
        }
    }

    /// Feeds bytes; see [`Step`].
    pub fn advance(&mut self, input: &[u8]) -> Result<Step, HttpError> {
        self.advance_with(input, |_| {})
    }

    /// Like [`advance`](Self::advance), also reporting the payload ranges of `input`
    /// (chunk data without framing).
    pub fn advance_with(
        &mut self,
        input: &[u8],
        mut on_data: impl FnMut(Range<usize>),
    ) -> Result<Step, HttpError> {
        self.advance_events(input, |ev| {
            if let BodyEvent::Data(r) = ev {
                on_data(r)
            }
        })
    }

    /// Like [`advance`](Self::advance), reporting everything needed to re-encode the body
    /// (see [`ChunkedNormalizer`]).
    pub fn advance_events(
        &mut self,
        input: &[u8],
        mut on_event: impl FnMut(BodyEvent),
    ) -> Result<Step, HttpError> {
        let mut i = 0;
        let n = input.len();
        while i < n {
            match self.st {
                St::Done => break,
                St::Close | St::Tunnel => {
                    on_event(BodyEvent::Data(i..n));
                    self.payload += (n - i) as u64;
                    i = n;
                }
                St::Length(rem) | St::Data(rem) => {
                    let take = rem.min((n - i) as u64) as usize;
                    if take > 0 {
                        on_event(BodyEvent::Data(i..i + take));
                    }
                    self.payload += take as u64;
                    i += take;
                    let left = rem - take as u64;
                    self.st = match (self.st, left) {
                        (St::Length(_), 0) => St::Done,
                        (St::Length(_), l) => St::Length(l),
                        (_, 0) => St::DataEnd,
                        (_, l) => St::Data(l),
                    };
                }
                prev => {
                    let b = input[i];
                    i += 1;
                    self.st = self.byte(b)?;
                    use St::*;
                    match (prev, self.st) {
                        (Size { .. } | SizeWs(_) | Ext(_) | SizeCr(_), TrStart) => {
                            on_event(BodyEvent::LastChunk)
                        }
                        (TrValue | TrCr, TrStart) => on_event(BodyEvent::TrailerEol),
                        (TrStart | TrEndCr, Done) => on_event(BodyEvent::End),
                        (TrStart | TrName(_), TrName(_)) => {
                            on_event(BodyEvent::TrailerByte(b.to_ascii_lowercase()))
                        }
                        (TrStart | TrName(_) | TrValue, TrValue) => {
                            on_event(BodyEvent::TrailerByte(b))
                        }
                        _ => {}
                    }
                }
            }
        }
        self.consumed_total += i as u64;
        Ok(Step {
            consumed: i,
            done: self.st == St::Done,
        })
    }

    fn after_size_line(&mut self, size: u64) -> St {
        if size == 0 {
            St::TrStart
        } else {
            St::Data(size)
        }
    }

    fn trailer_byte(&mut self) -> Result<(), HttpError> {
        self.trailer_bytes += 1;
        if self.trailer_bytes > self.max_trailers {
            return Err(self.err("trailers too large"));
        }
        Ok(())
    }

    fn byte(&mut self, b: u8) -> Result<St, HttpError> {
        use St::*;
        Ok(match self.st {
            Size { value, digits } => match (hex(b), b) {
                (Some(d), _) => {
                    let v = (value << 4) | d as u64;
                    if v > MAX_CHUNK_SIZE {
                        return Err(self.err("chunk size too large"));
                    }
                    Size {
                        value: v,
                        digits: digits + 1,
                    }
                }
                _ if digits == 0 => return Err(self.err("invalid chunk size")),
                (_, b' ' | b'\t') => SizeWs(value),
                (_, b';') => Ext(value),
                (_, b'\r') => SizeCr(value),
                (_, b'\n') => self.after_size_line(value),
                _ => return Err(self.err("invalid chunk size")),
            },
            SizeWs(v) => match b {
                b' ' | b'\t' => SizeWs(v),
                b';' => Ext(v),
                b'\r' => SizeCr(v),
                b'\n' => self.after_size_line(v),
                _ => return Err(self.err("invalid chunk size")),
            },
            Ext(v) => match b {
                b'\r' => SizeCr(v),
                b'\n' => self.after_size_line(v),
                _ => Ext(v),
            },
            SizeCr(v) => match b {
                b'\n' => self.after_size_line(v),
                _ => return Err(self.err("bare CR in chunk size line")),
            },
            DataEnd => match b {
                b'\r' => DataCr,
                b'\n' => Size {
                    value: 0,
                    digits: 0,
                },
                _ => return Err(self.err("missing CRLF after chunk")),
            },
            DataCr => match b {
                b'\n' => Size {
                    value: 0,
                    digits: 0,
                },
                _ => return Err(self.err("missing CRLF after chunk")),
            },
            TrStart => {
                self.trailer_byte()?;
                match b {
                    b'\r' => TrEndCr,
                    b'\n' => Done,
                    b' ' | b'\t' if self.have_trailer => TrValue,
                    _ if super::head::is_tchar(b) => TrName(1),
                    _ => return Err(self.err("invalid trailer")),
                }
            }
            TrEndCr => match b {
                b'\n' => Done,
                _ => return Err(self.err("bare CR in trailers")),
            },
            TrName(len) => {
                self.trailer_byte()?;
                match b {
                    b':' => {
                        self.have_trailer = true;
                        TrValue
                    }
                    _ if super::head::is_tchar(b)
                        && (len as usize) < super::head::MAX_HEADER_NAME =>
                    {
                        TrName(len + 1)
                    }
                    _ => return Err(self.err("invalid trailer name")),
                }
            }
            TrValue => {
                self.trailer_byte()?;
                match b {
                    b'\r' => TrCr,
                    b'\n' => TrStart,
                    _ => TrValue,
                }
            }
            TrCr => {
                self.trailer_byte()?;
                match b {
                    b'\n' => TrStart,
                    _ => return Err(self.err("bare CR in trailers")),
                }
            }
            Done | Length(_) | Close | Tunnel | Data(_) => unreachable!("handled in advance"),
        })
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
