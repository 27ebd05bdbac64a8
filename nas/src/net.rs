//! Blocking TCP connections with one overall deadline, used by `nfs3_client`'s
//! clients as their transport ([`Conn`]).
//!
//! `nfs3_client` has no timeouts of its own and its default `read_exact`
//! spins on EOF; here every connect, read and write gets "time left until the
//! deadline" as its socket timeout, and `read_exact` stops on EOF. Sources can
//! be privileged ports (< 1024), which many NFS servers demand from clients.
//! The connections never return `Pending`, so `block_on` polls a future once.

use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, SockaddrStorage, bind, connect, getsockopt, setsockopt,
    socket, sockopt,
};

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

/// Connect to `addr` (from `local_port` if given) before `deadline`.
pub fn connect_tcp(
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
            // one poll waits at most u16::MAX ms: poll again until the deadline
            loop {
                let Ok(left) = remaining(deadline, "connect") else {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "connect to {addr}: no answer within {} ms",
                            budget.as_millis()
                        ),
                    ));
                };
                let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
                let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
                if poll(&mut fds, PollTimeout::from(ms))? > 0 {
                    break;
                }
            }
            let err = getsockopt(&fd, sockopt::SocketError)?;
            if err != 0 {
                return Err(map_connect_err(io::Error::from_raw_os_error(err)));
            }
        }
        Err(e) => return Err(map_connect_err(e.into())),
    }
    let fl = OFlag::from_bits_truncate(fcntl(&fd, FcntlArg::F_GETFL)?);
    fcntl(&fd, FcntlArg::F_SETFL(fl & !OFlag::O_NONBLOCK))?;
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
pub fn connect_privileged(addr: SocketAddr, deadline: Instant) -> io::Result<TcpStream> {
    let start = (std::process::id() % 512) as u16;
    for i in 0..512u16 {
        let port = 512 + (start + i) % 512;
        remaining(deadline, &format!("connect to {addr}"))?;
        match connect_tcp(addr, Some(port), deadline) {
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

/// A TCP connection whose every read and write ends by the deadline.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    deadline: Instant,
}

impl Conn {
    pub fn new(stream: TcpStream, deadline: Instant) -> Self {
        Conn { stream, deadline }
    }

    fn arm_read(&self) -> io::Result<()> {
        let left = remaining(self.deadline, "waiting for the server's reply")?;
        self.stream.set_read_timeout(Some(left))
    }

    fn arm_write(&self) -> io::Result<()> {
        let left = remaining(self.deadline, "sending to the server")?;
        self.stream.set_write_timeout(Some(left))
    }
}

fn timeout_kind(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        io::Error::new(io::ErrorKind::TimedOut, "no reply before the deadline")
    } else {
        e
    }
}

impl nfs3_client::io::AsyncRead for Conn {
    async fn async_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.arm_read()?;
        self.stream.read(buf).map_err(timeout_kind)
    }

    async fn async_read_exact(&mut self, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            self.arm_read()?;
            match self.stream.read(buf) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "server closed the connection",
                    ));
                }
                Ok(n) => buf = &mut buf[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(timeout_kind(e)),
            }
        }
        Ok(())
    }
}

impl nfs3_client::io::AsyncWrite for Conn {
    async fn async_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.arm_write()?;
        self.stream.write(buf).map_err(timeout_kind)
    }

    async fn async_write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            self.arm_write()?;
            match self.stream.write(buf) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(timeout_kind(e)),
            }
        }
        Ok(())
    }
}

/// Run a future whose I/O is blocking: one poll completes it.
pub fn block_on<F: Future>(f: F) -> io::Result<F::Output> {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Ok(v),
        Poll::Pending => Err(io::Error::other(
            "internal: an RPC future did not complete on blocking I/O",
        )),
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
            match connect_tcp(addr, None, Instant::now() + Duration::from_millis(300)) {
                Ok(s) if held.len() < 8 => held.push(s),
                Ok(_) => panic!("the listener never filled up"),
                Err(e) => break e,
            }
        };
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    }
}
