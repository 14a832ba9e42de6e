//! A log sender that never blocks traffic.
//!
//! Producers hand complete datagrams to a bounded queue with a non-blocking `try_send`; one
//! dedicated thread drains it and writes to UDP / unix datagram / fd targets through
//! non-blocking sockets, and to `tcp@` stream targets with short timeouts. A line is dropped (and counted) when the queue is full or the target
//! fails (unreachable server, missing unix socket, full socket buffer). The thread prints an
//! occasional warning on stderr when lines were dropped (at most one every 10 seconds), so
//! producers never write to stderr themselves.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::RawFd;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{
    Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError, sync_channel,
};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};

use super::format::LogFormat;
use super::record::LogRecord;
use super::syslog::{self, Header, SyslogFormat};
use super::target::{LogAddr, LogTarget};

/// Default queue length (lines).
pub const DEFAULT_QUEUE: usize = 4096;
const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// An opened output.
#[derive(Debug)]
pub enum Destination {
    Udp {
        sock: UdpSocket,
        addr: SocketAddr,
    },
    Unix {
        sock: UnixDatagram,
        path: PathBuf,
    },
    Abns {
        sock: UnixDatagram,
        name: String,
    },
    Fd(RawFd),
    /// `tcp@host:port`: HAProxy 2.6 writes the same framed lines (each ending with LF) on a
    /// TCP connection (measured). Connected lazily by the sender thread; while the server is
    /// unreachable, lines are dropped and reconnection is retried at most once per second.
    Stream {
        addr: SocketAddr,
        state: Mutex<StreamState>,
    },
}

/// Connection state of a [`Destination::Stream`].
#[derive(Debug, Default)]
pub struct StreamState {
    conn: Option<TcpStream>,
    last_attempt: Option<Instant>,
}

const STREAM_TIMEOUT: Duration = Duration::from_millis(500);
const STREAM_RETRY: Duration = Duration::from_secs(1);

impl Destination {
    /// Open the socket for a target address. `ring@` targets are not supported
    /// (`ErrorKind::Unsupported`); `log global` must be resolved by the caller.
    pub fn open(addr: &LogAddr) -> io::Result<Arc<Destination>> {
        let d = match addr {
            LogAddr::Udp(sa) => {
                let bind: SocketAddr = if sa.is_ipv4() {
                    "0.0.0.0:0".parse().unwrap()
                } else {
                    "[::]:0".parse().unwrap()
                };
                let sock = UdpSocket::bind(bind)?;
                sock.set_nonblocking(true)?;
                Destination::Udp { sock, addr: *sa }
            }
            LogAddr::Unix(path) => {
                let sock = UnixDatagram::unbound()?;
                sock.set_nonblocking(true)?;
                Destination::Unix {
                    sock,
                    path: path.clone(),
                }
            }
            LogAddr::Abns(name) => {
                let sock = UnixDatagram::unbound()?;
                sock.set_nonblocking(true)?;
                Destination::Abns {
                    sock,
                    name: name.clone(),
                }
            }
            LogAddr::Fd(fd) => Destination::Fd(*fd),
            LogAddr::Stream(addr) => Destination::Stream {
                addr: *addr,
                state: Mutex::new(StreamState::default()),
            },
            LogAddr::Global | LogAddr::Ring(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "ring log targets are not supported by rhaproxy",
                ));
            }
        };
        Ok(Arc::new(d))
    }

    fn write(&self, data: &[u8]) -> io::Result<()> {
        match self {
            Destination::Udp { sock, addr } => sock.send_to(data, addr).map(|_| ()),
            Destination::Unix { sock, path } => sock.send_to(data, path).map(|_| ()),
            Destination::Abns { sock, name } => {
                use std::os::linux::net::SocketAddrExt;
                let a = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
                sock.send_to_addr(data, &a).map(|_| ())
            }
            Destination::Fd(fd) => {
                // Borrow the descriptor without taking ownership of it.
                let mut f = std::mem::ManuallyDrop::new(unsafe {
                    <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(*fd)
                });
                f.write_all(data)
            }
            Destination::Stream { addr, state } => {
                let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                if st.conn.is_none() {
                    if st.last_attempt.is_some_and(|t| t.elapsed() < STREAM_RETRY) {
                        return Err(io::Error::new(
                            io::ErrorKind::NotConnected,
                            "log server unreachable",
                        ));
                    }
                    st.last_attempt = Some(Instant::now());
                    let c = TcpStream::connect_timeout(addr, STREAM_TIMEOUT)?;
                    c.set_write_timeout(Some(STREAM_TIMEOUT))?;
                    let _ = c.set_nodelay(true);
                    st.conn = Some(c);
                }
                let res = st.conn.as_mut().map_or(Ok(()), |c| c.write_all(data));
                if res.is_err() {
                    st.conn = None;
                }
                res
            }
        }
    }
}

enum Msg {
    Line(Arc<Destination>, Vec<u8>),
    Flush(SyncSender<()>),
}

struct Shared {
    dropped: AtomicU64,
    sent: AtomicU64,
}

/// The sender: a bounded queue and its draining thread. Dropping it drains the queue and
/// joins the thread.
///
/// The thread starts with the first line: a process that logs nowhere keeps no thread for it.
/// That matters beyond the thread's memory: with a single thread the kernel skips the file
/// table's reference counting on every socket call (`fdget`), which at `nbthread 1` is a
/// measurable share of a short connection's system time.
pub struct LogSender {
    tx: Option<SyncSender<Msg>>,
    shared: Arc<Shared>,
    /// The queue's end until the thread takes it.
    rx: Mutex<Option<Receiver<Msg>>>,
    /// Set with the first line.
    thread: std::sync::OnceLock<JoinHandle<()>>,
}

impl LogSender {
    /// A sender with a queue of `capacity` lines; its thread starts with the first line.
    pub fn start(capacity: usize) -> LogSender {
        let (tx, rx) = sync_channel(capacity.max(1));
        LogSender {
            tx: Some(tx),
            shared: Arc::new(Shared {
                dropped: AtomicU64::new(0),
                sent: AtomicU64::new(0),
            }),
            rx: Mutex::new(Some(rx)),
            thread: std::sync::OnceLock::new(),
        }
    }

    fn ensure_thread(&self) {
        self.thread.get_or_init(|| {
            // Taken once: this runs once.
            let rx = self.rx.lock().unwrap_or_else(|e| e.into_inner()).take();
            let sh = self.shared.clone();
            std::thread::Builder::new()
                .name("rhaproxy-log".into())
                .spawn(move || {
                    if let Some(rx) = rx {
                        run(rx, sh)
                    }
                })
                .expect("spawn log sender thread")
        });
    }

    /// Whether the draining thread was started (a line was sent).
    pub fn thread_started(&self) -> bool {
        self.thread.get().is_some()
    }

    /// Queue one complete datagram; never blocks. Returns false (and counts a drop) when the
    /// queue is full.
    pub fn send(&self, dest: &Arc<Destination>, datagram: Vec<u8>) -> bool {
        let Some(tx) = &self.tx else { return false };
        self.ensure_thread();
        match tx.try_send(Msg::Line(dest.clone(), datagram)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Lines dropped so far (queue full or target failure).
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Lines written successfully so far.
    pub fn sent(&self) -> u64 {
        self.shared.sent.load(Ordering::Relaxed)
    }

    /// Wait until every line queued before this call was handled, at most `timeout`.
    /// Meant for shutdown and tests, not for traffic paths.
    pub fn flush(&self, timeout: Duration) -> bool {
        let Some(tx) = &self.tx else { return false };
        if !self.thread_started() {
            // Nothing was ever queued.
            return true;
        }
        let (ack_tx, ack_rx) = sync_channel(1);
        let deadline = Instant::now() + timeout;
        let mut msg = Msg::Flush(ack_tx);
        loop {
            match tx.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Full(m)) => {
                    if Instant::now() >= deadline {
                        return false;
                    }
                    msg = m;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(TrySendError::Disconnected(_)) => return false,
            }
        }
        ack_rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }
}

impl Drop for LogSender {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(msg: Msg, sh: &Shared) {
    match msg {
        Msg::Line(dest, data) => match dest.write(&data) {
            Ok(()) => {
                sh.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                sh.dropped.fetch_add(1, Ordering::Relaxed);
            }
        },
        Msg::Flush(ack) => {
            let _ = ack.try_send(());
        }
    }
}

/// While lines keep coming, the thread naps this long between drains instead of blocking on
/// the queue: producers then find nobody to wake (no futex wake and context switch per line,
/// which doubled the CPU cost of a log line under load), at the price of up to this much delay.
const BATCH_NAP: Duration = Duration::from_millis(1);

fn run(rx: Receiver<Msg>, sh: Arc<Shared>) {
    let mut reported = 0u64;
    let mut last_warn: Option<Instant> = None;
    let mut busy = false;
    loop {
        if busy {
            std::thread::sleep(BATCH_NAP);
            let mut n = 0usize;
            loop {
                match rx.try_recv() {
                    Ok(m) => {
                        handle(m, &sh);
                        n += 1;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            busy = n > 0;
        } else {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(m) => {
                    handle(m, &sh);
                    busy = true;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let d = sh.dropped.load(Ordering::Relaxed);
        if d > reported && last_warn.is_none_or(|t| t.elapsed() >= WARN_INTERVAL) {
            eprintln!(
                "[WARNING]  ({}) : {} log message(s) dropped (log queue full or log server unreachable).",
                std::process::id(),
                d - reported
            );
            reported = d;
            last_warn = Some(Instant::now());
        }
    }
}

/// Process-wide identity used in syslog headers.
#[derive(Debug, Clone)]
pub struct LogIdentity {
    /// `log-tag` (default `haproxy`).
    pub tag: String,
    pub pid: u32,
    /// Global `log-send-hostname` value (`None` when not set).
    pub send_hostname: Option<String>,
}

/// A configured target with its opened output and its per-target sample counter.
#[derive(Debug)]
pub struct OpenTarget {
    pub target: LogTarget,
    pub dest: Arc<Destination>,
    counter: AtomicU64,
}

impl OpenTarget {
    pub fn open(target: LogTarget) -> io::Result<OpenTarget> {
        let dest = Destination::open(&target.addr)?;
        Ok(OpenTarget {
            target,
            dest,
            counter: AtomicU64::new(0),
        })
    }

    /// Frame `msg` for this target (level filtering, sampling, syslog header, `len`) and
    /// queue it. `sd` is the rendered `log-format-sd`. Returns whether a line was queued.
    pub fn emit(
        &self,
        sender: &LogSender,
        id: &LogIdentity,
        level: u8,
        now: &DateTime<FixedOffset>,
        sd: &[u8],
        msg: &[u8],
    ) -> bool {
        let Some(level) = self.target.effective_level(level) else {
            return false;
        };
        if let Some(s) = &self.target.sample {
            let n = self.counter.fetch_add(1, Ordering::Relaxed);
            if !s.selects(n) {
                return false;
            }
        }
        let h = Header {
            format: SyslogFormat::effective(self.target.format, id.send_hostname.is_some()),
            facility: self.target.facility,
            level,
            tag: &id.tag,
            pid: id.pid,
            hostname: id.send_hostname.as_deref(),
            max_len: self.target.max_len,
        };
        let mut buf = Vec::with_capacity(msg.len() + 96);
        syslog::frame(&mut buf, &h, now, sd, msg);
        sender.send(&self.dest, buf)
    }
}

thread_local! {
    /// Per-thread render buffers for [`emit_record`]: (message, structured data).
    static RENDER_BUFS: std::cell::RefCell<(Vec<u8>, Vec<u8>)> =
        std::cell::RefCell::new((Vec::with_capacity(1024), Vec::with_capacity(128)));
}

/// Render `record` with `format` (and `sd`, the proxy's `log-format-sd`, default `- `) once
/// and queue it to every target. `id` carries the proxy's effective `log-tag`. Returns the
/// number of lines queued. Never blocks.
#[allow(clippy::too_many_arguments)]
pub fn emit_record(
    sender: &LogSender,
    id: &LogIdentity,
    targets: &[OpenTarget],
    format: &LogFormat,
    sd: Option<&LogFormat>,
    record: &LogRecord,
    level: u8,
    now: &DateTime<FixedOffset>,
) -> usize {
    RENDER_BUFS.with(|b| {
        let mut b = b.borrow_mut();
        let (msg, sdbuf) = &mut *b;
        msg.clear();
        sdbuf.clear();
        format.render(record, msg);
        match sd {
            Some(f) => f.render(record, sdbuf),
            None => sdbuf.extend_from_slice(b"- "),
        }
        targets
            .iter()
            .filter(|t| t.emit(sender, id, level, now, sdbuf, msg))
            .count()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::target::parse_global_log_args;
    use std::io::Read;

    fn ident() -> LogIdentity {
        LogIdentity {
            tag: "hap".into(),
            pid: 42,
            send_hostname: None,
        }
    }

    #[test]
    fn udp_lines_arrive_framed() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let port = rx.local_addr().unwrap().port();
        let t = parse_global_log_args(&[&format!("127.0.0.1:{port}"), "format", "raw", "local0"])
            .unwrap();
        let ot = OpenTarget::open(t).unwrap();
        let s = LogSender::start(16);
        // No thread until there is a line to write; flushing nothing is immediate.
        assert!(!s.thread_started());
        assert!(s.flush(Duration::from_secs(5)));
        assert!(!s.thread_started());
        let now = syslog::now_local();
        assert!(ot.emit(&s, &ident(), 6, &now, b"", b"hello"));
        assert!(s.thread_started());
        let mut buf = [0u8; 256];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello\n");
        assert!(s.flush(Duration::from_secs(5)));
        assert_eq!(s.sent(), 1);
        assert_eq!(s.dropped(), 0);
    }

    #[test]
    fn level_filter_and_sampling() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let port = rx.local_addr().unwrap().port();
        let a = format!("127.0.0.1:{port}");
        let t =
            parse_global_log_args(&[&a, "format", "short", "sample", "2:2", "local0", "notice"])
                .unwrap();
        let ot = OpenTarget::open(t).unwrap();
        let s = LogSender::start(16);
        let now = syslog::now_local();
        assert!(!ot.emit(&s, &ident(), 6, &now, b"", b"info is filtered"));
        assert!(!ot.emit(&s, &ident(), 3, &now, b"", b"first of 2 skipped"));
        assert!(ot.emit(&s, &ident(), 3, &now, b"", b"second sent"));
        let mut buf = [0u8; 256];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"<3>second sent\n");
    }

    #[test]
    fn unreachable_targets_count_drops_without_blocking() {
        // Nothing listens on this port; a missing unix socket; both must just count drops.
        let free = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let udp =
            Destination::open(&LogAddr::Udp(format!("127.0.0.1:{port}").parse().unwrap())).unwrap();
        let dir = std::env::temp_dir().join(format!("rhap-log-test-{}", std::process::id()));
        let unix = Destination::open(&LogAddr::Unix(dir.join("missing.sock"))).unwrap();
        let s = LogSender::start(1024);
        let start = Instant::now();
        for _ in 0..200 {
            s.send(&udp, b"x\n".to_vec());
            s.send(&unix, b"x\n".to_vec());
        }
        assert!(start.elapsed() < Duration::from_secs(1));
        assert!(s.flush(Duration::from_secs(5)));
        // UDP to a closed port usually succeeds locally (no connected socket), the unix
        // socket always fails.
        assert!(s.dropped() >= 200, "dropped {}", s.dropped());
        assert_eq!(s.dropped() + s.sent(), 400);
    }

    #[test]
    fn full_queue_drops_and_counts() {
        let rx = UnixDatagram::unbound().unwrap();
        drop(rx);
        let dir = std::env::temp_dir().join(format!("rhap-log-q-{}", std::process::id()));
        let dest = Destination::open(&LogAddr::Unix(dir.join("none"))).unwrap();
        let s = LogSender::start(1);
        let mut accepted = 0;
        for _ in 0..10_000 {
            if s.send(&dest, vec![b'x'; 10]) {
                accepted += 1;
            }
        }
        assert!(s.flush(Duration::from_secs(5)));
        assert_eq!(s.dropped(), 10_000, "accepted {accepted}");
    }

    #[test]
    fn unix_datagram_target() {
        let dir = std::env::temp_dir().join(format!("rhap-log-unix-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("log.sock");
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let p = path.to_str().unwrap().to_string();
        let t = parse_global_log_args(&[&p, "format", "priority", "daemon"]).unwrap();
        let ot = OpenTarget::open(t).unwrap();
        let s = LogSender::start(4);
        ot.emit(&s, &ident(), 6, &syslog::now_local(), b"", b"via unix");
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"<30>via unix\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn emit_record_renders_once_for_all_targets() {
        let rx1 = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx2 = UdpSocket::bind("127.0.0.1:0").unwrap();
        for r in [&rx1, &rx2] {
            r.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        }
        let a1 = format!("127.0.0.1:{}", rx1.local_addr().unwrap().port());
        let a2 = format!("127.0.0.1:{}", rx2.local_addr().unwrap().port());
        let targets = vec![
            OpenTarget::open(parse_global_log_args(&[&a1, "format", "raw", "local0"]).unwrap())
                .unwrap(),
            OpenTarget::open(parse_global_log_args(&[&a2, "format", "rfc5424", "local0"]).unwrap())
                .unwrap(),
        ];
        let f = crate::log::format::compile("%f %ST", true).unwrap();
        let sd = crate::log::format::compile("[a b=%{+Q}f]", true).unwrap();
        let r = LogRecord {
            frontend: "fe".into(),
            status: 200,
            ..LogRecord::default()
        };
        let s = LogSender::start(8);
        let now = syslog::now_local();
        assert_eq!(
            emit_record(&s, &ident(), &targets, &f, Some(&sd), &r, 6, &now),
            2
        );
        let mut buf = [0u8; 256];
        let n = rx1.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"fe 200\n");
        let n = rx2.recv(&mut buf).unwrap();
        let d = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(d.ends_with(" - hap 42 - [a b=\"fe\"] fe 200\n"), "{d}");
    }

    #[test]
    fn fd_target_writes_whole_lines() {
        let (r, w) = nix::unistd::pipe().unwrap();
        use std::os::fd::AsRawFd;
        let t = LogTarget {
            addr: LogAddr::Fd(w.as_raw_fd()),
            ..parse_global_log_args(&["stdout", "format", "raw", "daemon"]).unwrap()
        };
        let ot = OpenTarget::open(t).unwrap();
        let s = LogSender::start(4);
        ot.emit(&s, &ident(), 6, &syslog::now_local(), b"", b"line one");
        ot.emit(&s, &ident(), 6, &syslog::now_local(), b"", b"line two\n");
        assert!(s.flush(Duration::from_secs(5)));
        drop(s);
        drop(ot);
        drop(w);
        let mut f = std::fs::File::from(r);
        let mut got = String::new();
        f.read_to_string(&mut got).unwrap();
        assert_eq!(got, "line one\nline two\n");
    }

    #[test]
    fn tcp_stream_target_and_unreachable_server() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = format!("tcp@{}", l.local_addr().unwrap());
        let ot = OpenTarget::open(parse_global_log_args(&[&a, "local0"]).unwrap()).unwrap();
        let s = LogSender::start(8);
        let now = syslog::now_local();
        ot.emit(&s, &ident(), 6, &now, b"", b"one");
        ot.emit(&s, &ident(), 6, &now, b"", b"two");
        let (mut c, _) = l.accept().unwrap();
        assert!(s.flush(Duration::from_secs(5)));
        drop(s);
        drop(ot);
        let mut got = String::new();
        c.read_to_string(&mut got).unwrap();
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines.len(), 2, "{got:?}");
        assert!(lines[0].ends_with(" hap[42]: one") && lines[1].ends_with(" hap[42]: two"));
        // nobody listens: lines are dropped quickly, without stalling
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = format!("tcp@{}", free.local_addr().unwrap());
        drop(free);
        let ot = OpenTarget::open(parse_global_log_args(&[&a, "local0"]).unwrap()).unwrap();
        let s = LogSender::start(64);
        let t0 = Instant::now();
        for _ in 0..50 {
            ot.emit(&s, &ident(), 6, &now, b"", b"lost");
        }
        assert!(s.flush(Duration::from_secs(5)));
        assert!(t0.elapsed() < Duration::from_secs(3));
        assert_eq!(s.dropped(), 50);
    }

    #[test]
    fn ring_is_reported_unsupported() {
        let e = Destination::open(&LogAddr::Ring("r".into())).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
    }
}
