//! Non-blocking TCP connections with one overall deadline, used by
//! `nfs3_client`'s clients as their transport ([`Conn`]), and a tiny
//! single-threaded executor ([`block_on`], [`join`]) that runs several probe
//! conversations at once without a thread.
//!
//! `nfs3_client` has no timeouts of its own and its default `read_exact`
//! spins on EOF; here a connect, read or write that would block yields to the
//! executor, which sleeps in `poll(2)` on every descriptor its futures wait
//! for, never past the deadline; `read_exact` stops on EOF. Sources can be
//! privileged ports (< 1024), which many NFS servers demand from clients.

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, SockaddrStorage, bind, connect, getsockopt, setsockopt,
    socket, sockopt,
};

use crate::sys;

/// Time left until `deadline`, or a `TimedOut` error naming `what`.
pub fn remaining(deadline: Instant, what: &str) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what}: deadline reached"),
        ))
    } else {
        Ok(left)
    }
}

thread_local! {
    /// The descriptors (and poll events) the futures of this thread's executor wait for.
    static WANTS: RefCell<Vec<(RawFd, libc::c_short)>> = const { RefCell::new(Vec::new()) };
}

/// Returns `Pending` once, so the executor polls the descriptors registered before it.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

/// Wait (yielding to the executor) until `fd` may be ready for `events`, or
/// fail once `deadline` has passed (callers word the timeout themselves).
async fn ready(fd: RawFd, events: libc::c_short, deadline: Instant) -> io::Result<()> {
    remaining(deadline, "waiting")?;
    WANTS.with(|w| w.borrow_mut().push((fd, events)));
    YieldOnce(false).await;
    Ok(())
}

/// Run `f` on this thread to completion. Between polls it sleeps in
/// `poll(2)` until a descriptor a future waits for is ready or `deadline`
/// passes; after it every wait fails with `TimedOut`, so `f` ends within a
/// round or two, and a future that still waits is given up (`TimedOut`).
pub fn block_on<F: Future>(f: F, deadline: Instant) -> io::Result<F::Output> {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    let mut rounds_after_deadline = 0;
    loop {
        WANTS.with(|w| w.borrow_mut().clear());
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return Ok(v);
        }
        let wants = WANTS.with(|w| std::mem::take(&mut *w.borrow_mut()));
        if wants.is_empty() {
            return Err(io::Error::other(
                "internal: a probe future waits without naming a descriptor",
            ));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            rounds_after_deadline += 1;
            if rounds_after_deadline > 2 {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no answer before the deadline",
                ));
            }
        }
        // round up: waking a little late is fine, spinning until the deadline is not
        let ms = i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
        match sys::poll_fds(&wants, ms) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Run two futures at once (within one [`block_on`]) and return both results.
pub async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut ra, mut rb) = (None, None);
    poll_fn(move |cx| {
        if ra.is_none()
            && let Poll::Ready(v) = a.as_mut().poll(cx)
        {
            ra = Some(v);
        }
        if rb.is_none()
            && let Poll::Ready(v) = b.as_mut().poll(cx)
        {
            rb = Some(v);
        }
        match (ra.take(), rb.take()) {
            (Some(x), Some(y)) => Poll::Ready((x, y)),
            (x, y) => {
                (ra, rb) = (x, y);
                Poll::Pending
            }
        }
    })
    .await
}

/// Run two fallible futures at once: both results, or `None` as soon as
/// either ends with `None` (the other is dropped then, closing its sockets).
pub async fn join_ok<A, B>(
    a: impl Future<Output = Option<A>>,
    b: impl Future<Output = Option<B>>,
) -> Option<(A, B)> {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut ra, mut rb) = (None, None);
    poll_fn(move |cx| {
        if ra.is_none()
            && let Poll::Ready(v) = a.as_mut().poll(cx)
        {
            match v {
                Some(v) => ra = Some(v),
                None => return Poll::Ready(None),
            }
        }
        if rb.is_none()
            && let Poll::Ready(v) = b.as_mut().poll(cx)
        {
            match v {
                Some(v) => rb = Some(v),
                None => return Poll::Ready(None),
            }
        }
        match (ra.take(), rb.take()) {
            (Some(x), Some(y)) => Poll::Ready(Some((x, y))),
            (x, y) => {
                (ra, rb) = (x, y);
                Poll::Pending
            }
        }
    })
    .await
}

/// Connect to `addr` (from `local_port` if given) before `deadline`.
pub async fn connect_tcp(
    addr: SocketAddr,
    local_port: Option<u16>,
    deadline: Instant,
) -> io::Result<TcpStream> {
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd: OwnedFd = socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    if let Some(port) = local_port {
        setsockopt(&fd, sockopt::ReuseAddr, &true)?;
        let local: SocketAddr = if addr.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], port))
        } else {
            SocketAddr::from(([0u16; 8], port))
        };
        bind(fd.as_raw_fd(), &SockaddrStorage::from(local))?;
    }
    match connect(fd.as_raw_fd(), &SockaddrStorage::from(addr)) {
        Ok(()) => {}
        Err(Errno::EINPROGRESS) => {
            let budget = remaining(deadline, &format!("connect to {addr}"))?;
            loop {
                if ready(fd.as_raw_fd(), libc::POLLOUT, deadline)
                    .await
                    .is_err()
                {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "connect to {addr}: no answer within {} ms",
                            budget.as_millis()
                        ),
                    ));
                }
                match sys::poll_fds(&[(fd.as_raw_fd(), libc::POLLOUT)], 0) {
                    Ok(n) if n > 0 => break,
                    Ok(_) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                    Err(e) => return Err(e),
                }
            }
            let err = getsockopt(&fd, sockopt::SocketError)?;
            if err != 0 {
                return Err(map_connect_err(io::Error::from_raw_os_error(err)));
            }
        }
        Err(e) => return Err(map_connect_err(e.into())),
    }
    let s = TcpStream::from(fd);
    s.set_nodelay(true)?;
    Ok(s)
}

/// A still-busy 4-tuple (TIME_WAIT from an earlier probe) means "try
/// another source port", which the port loop recognises as `AddrInUse`.
fn map_connect_err(e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) {
        io::Error::new(io::ErrorKind::AddrInUse, e)
    } else {
        e
    }
}

/// Connect from a free privileged source port (tries 1023 down to 512,
/// starting at a per-process offset so concurrent probes rarely collide).
pub async fn connect_privileged(addr: SocketAddr, deadline: Instant) -> io::Result<TcpStream> {
    let start = (std::process::id() % 512) as u16;
    for i in 0..512u16 {
        let port = 512 + (start + i) % 512;
        remaining(deadline, &format!("connect to {addr}"))?;
        match connect_tcp(addr, Some(port), deadline).await {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("binding a privileged source port needs root: {e}"),
                ));
            }
            other => return other,
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "no free privileged source port (512-1023)",
    ))
}

/// The largest RPC reply record a probe reads (1 MiB): the biggest replies it asks for are the
/// portmapper's table and MOUNT's export list, a few kilobytes on a large NAS. `nfs3_client`
/// allocates a buffer of whatever length the record header claims (up to 2 GiB), so a longer
/// record is refused here, at its header, before that allocation.
pub const MAX_RECORD: u32 = 1 << 20;

/// RFC 5531: the body of an `opaque_auth` (a reply's verifier) is at most 400 bytes.
const MAX_AUTH_BODY: u32 = 400;

/// The error for a reply no server following ONC RPC sends (`InvalidData`, which the probe
/// calls a malformed reply).
fn malformed(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

/// Follows the RPC record marking (RFC 5531, 11) of the bytes a connection delivers, and
/// checks what `nfs3_client` would otherwise allocate from unchecked: each record's length,
/// and in each reply the message type and the verifier's length (an RPC CALL in a reply would
/// make it decode two `opaque_auth` bodies of any claimed length).
#[derive(Debug, Default)]
struct Records {
    /// The record header being read, and how many of its bytes were seen.
    header: [u8; 4],
    header_seen: usize,
    /// Bytes of the current record not yet delivered.
    left: u32,
    /// The first bytes of the current record: xid, message type, reply status, verifier
    /// flavor and length.
    head: [u8; 20],
    head_seen: usize,
}

fn word(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

impl Records {
    /// Account for `bytes` delivered to the reader; an error once they break the rules.
    fn feed(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            if self.left == 0 && self.header_seen < 4 {
                let n = (4 - self.header_seen).min(bytes.len());
                self.header[self.header_seen..self.header_seen + n].copy_from_slice(&bytes[..n]);
                self.header_seen += n;
                bytes = &bytes[n..];
                if self.header_seen == 4 {
                    let len = u32::from_be_bytes(self.header) & 0x7fff_ffff;
                    if len > MAX_RECORD {
                        return Err(malformed(format!(
                            "a record of {len} bytes, more than the {MAX_RECORD} a probe reads"
                        )));
                    }
                    (self.left, self.head_seen) = (len, 0);
                    if len == 0 {
                        self.header_seen = 0;
                    }
                }
                continue;
            }
            let n = bytes.len().min(self.left as usize);
            let before = self.head_seen;
            let take = n.min(self.head.len() - self.head_seen);
            self.head[before..before + take].copy_from_slice(&bytes[..take]);
            self.head_seen += take;
            self.check_head(before)?;
            self.left -= n as u32;
            bytes = &bytes[n..];
            if self.left == 0 {
                self.header_seen = 0;
            }
        }
        Ok(())
    }

    /// Checks the fields of the record's first bytes completed since `before` bytes were seen.
    fn check_head(&self, before: usize) -> io::Result<()> {
        let (h, seen) = (&self.head, self.head_seen);
        let done = |end: usize| before < end && seen >= end;
        if done(8) && word(h, 4) != 1 {
            return Err(malformed(format!(
                "message type {} where a REPLY (1) belongs",
                word(h, 4)
            )));
        }
        if done(12) && word(h, 8) > 1 {
            return Err(malformed(format!("reply status {}", word(h, 8))));
        }
        if done(20) && word(h, 8) == 0 && word(h, 16) > MAX_AUTH_BODY {
            return Err(malformed(format!(
                "a verifier of {} bytes, more than RPC's {MAX_AUTH_BODY}",
                word(h, 16)
            )));
        }
        Ok(())
    }
}

/// A non-blocking TCP connection whose every read and write ends by the
/// deadline; it waits by yielding to the executor ([`block_on`]). What it reads
/// is checked as RPC records ([`MAX_RECORD`]) before the client sees it.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    deadline: Instant,
    records: Records,
}

impl Conn {
    pub fn new(stream: TcpStream, deadline: Instant) -> Self {
        Conn {
            stream,
            deadline,
            records: Records::default(),
        }
    }

    /// Retry `op` on the socket, waiting for `events` whenever it would block.
    async fn retry<T>(
        &mut self,
        events: libc::c_short,
        mut op: impl FnMut(&mut TcpStream) -> io::Result<T>,
    ) -> io::Result<T> {
        loop {
            match op(&mut self.stream) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready(self.stream.as_raw_fd(), events, self.deadline)
                        .await
                        .map_err(|_| no_reply())?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    async fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.retry(libc::POLLIN, |s| s.read(&mut *buf)).await?;
        self.records.feed(&buf[..n])?;
        Ok(n)
    }

    async fn write_some(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.retry(libc::POLLOUT, |s| s.write(buf)).await
    }
}

fn no_reply() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "no reply before the deadline")
}

impl nfs3_client::io::AsyncRead for Conn {
    async fn async_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_some(buf).await
    }

    async fn async_read_exact(&mut self, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_some(buf).await? {
                0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "server closed the connection",
                    ));
                }
                n => buf = &mut buf[n..],
            }
        }
        Ok(())
    }
}

impl nfs3_client::io::AsyncWrite for Conn {
    async fn async_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_some(buf).await
    }

    async fn async_write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write_some(buf).await? {
                0 => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }
}

/// The local address the kernel would use to reach `server` (no packet is
/// sent: connecting a UDP socket only selects a route).
pub fn local_addr_towards(server: std::net::IpAddr) -> io::Result<std::net::IpAddr> {
    let bind: SocketAddr = if server.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let s = std::net::UdpSocket::bind(bind)?;
    s.connect(SocketAddr::new(server, 2049))?;
    Ok(s.local_addr()?.ip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{Backlog, SockaddrIn, getsockname, listen};

    /// A reply record: header (last fragment) and body of words.
    fn record(words: &[u32]) -> Vec<u8> {
        let body: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        let mut r = (0x8000_0000 | body.len() as u32).to_be_bytes().to_vec();
        r.extend(body);
        r
    }

    fn fed(bytes: &[u8], chunk: usize) -> io::Result<()> {
        let mut r = Records::default();
        bytes.chunks(chunk).try_for_each(|c| r.feed(c))
    }

    #[test]
    fn records_are_checked_before_the_client_allocates() {
        // xid, REPLY, MSG_ACCEPTED, verifier AUTH_NONE of 0 bytes, SUCCESS, one result word
        let good = record(&[7, 1, 0, 0, 0, 0, 42]);
        let two: Vec<u8> = [good.clone(), good.clone()].concat();
        for chunk in [1, 3, 4, 5, 64] {
            fed(&two, chunk).unwrap();
        }
        let bad = |bytes: &[u8], what: &str| {
            for chunk in [1, 2, 7, 64] {
                let e = fed(bytes, chunk).unwrap_err();
                assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
                assert!(e.to_string().contains(what), "{e}");
            }
        };
        // a record length of 2 GiB - 1, whatever follows
        bad(
            &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 7],
            "a record of 2147483647 bytes",
        );
        let mut just_over = ((MAX_RECORD + 1) | 0x8000_0000).to_be_bytes().to_vec();
        just_over.extend([0; 8]);
        bad(&just_over, "a record of 1048577 bytes");
        // a CALL where a reply belongs: its credential would be decoded from any length
        bad(&record(&[7, 0, 2, 100_000, 2, 0]), "message type 0");
        bad(&record(&[7, 1, 5, 0, 0]), "reply status 5");
        bad(
            &record(&[7, 1, 0, 1, u32::MAX, 0]),
            "a verifier of 4294967295 bytes",
        );
        // a second record is checked like the first
        bad(
            &[good, record(&[8, 1, 0, 0, 401])].concat(),
            "a verifier of 401 bytes",
        );
        // a denied reply has no verifier: its words are not read as one
        fed(&record(&[7, 1, 1, 1, 0xffff_ffff]), 1).unwrap();
    }

    #[test]
    fn connect_to_a_full_listener_ends_by_the_deadline() {
        // backlog 0: one connection waits in the accept queue, later SYNs are dropped
        let l = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        bind(
            l.as_raw_fd(),
            &SockaddrStorage::from(SocketAddr::from(([127, 0, 0, 1], 0))),
        )
        .unwrap();
        listen(&l, Backlog::new(0).unwrap()).unwrap();
        let port = getsockname::<SockaddrIn>(l.as_raw_fd()).unwrap().port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut held = Vec::new();
        let t0 = Instant::now();
        let e = loop {
            let d = Instant::now() + Duration::from_millis(300);
            match block_on(connect_tcp(addr, None, d), d).unwrap() {
                Ok(s) if held.len() < 8 => held.push(s),
                Ok(_) => panic!("the listener never filled up"),
                Err(e) => break e,
            }
        };
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    }
}
