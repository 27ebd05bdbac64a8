//! The socket calls the crate makes, through nix's safe wrappers: datagrams to and from a
//! link-layer or inet address, receives that never wait (`MSG_DONTWAIT`: every wait is a
//! bounded [`poll_readable`]), and `poll(2)` itself.

use std::io;
use std::io::IoSliceMut;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    self, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrLike, SockaddrStorage,
};

use crate::sys;

/// `socket(family, ty | SOCK_CLOEXEC, protocol)`; `None` is protocol 0.
pub fn open(
    family: AddressFamily,
    ty: SockType,
    protocol: Option<SockProtocol>,
) -> io::Result<OwnedFd> {
    Ok(socket::socket(
        family,
        ty,
        SockFlag::SOCK_CLOEXEC,
        protocol,
    )?)
}

/// `bind(fd, addr)`.
pub fn bind(fd: BorrowedFd<'_>, addr: &dyn SockaddrLike) -> io::Result<()> {
    Ok(socket::bind(fd.as_raw_fd(), addr)?)
}

/// `bind(fd, sockaddr_ll { ifindex, protocol })`: receive only `protocol` frames from one
/// interface.
pub fn bind_packet(fd: BorrowedFd<'_>, ifindex: u32, protocol: u16) -> io::Result<()> {
    bind(fd, &sys::link_addr(ifindex, protocol, [0; 6])?)
}

/// `sendto(fd, buf, addr)`.
pub fn send_to(fd: BorrowedFd<'_>, buf: &[u8], addr: &dyn SockaddrLike) -> io::Result<usize> {
    Ok(socket::sendto(
        fd.as_raw_fd(),
        buf,
        addr,
        MsgFlags::empty(),
    )?)
}

/// `sendto(fd, payload, sockaddr_ll { ifindex, protocol, dest })` on a `SOCK_DGRAM` packet
/// socket: the kernel adds the link-layer header addressed to `dest`.
pub fn send_packet(
    fd: BorrowedFd<'_>,
    ifindex: u32,
    protocol: u16,
    dest: [u8; 6],
    payload: &[u8],
) -> io::Result<usize> {
    send_to(fd, payload, &sys::link_addr(ifindex, protocol, dest)?)
}

/// A `sockaddr_in` or `sockaddr_in6` for `addr`, port 0; `scope_id` matters only for IPv6
/// link-local and multicast addresses.
pub fn inet(addr: IpAddr, scope_id: u32) -> SockaddrStorage {
    match addr {
        IpAddr::V4(v4) => SockaddrStorage::from(SocketAddr::new(IpAddr::V4(v4), 0)),
        IpAddr::V6(v6) => SockaddrStorage::from(SocketAddrV6::new(v6, 0, 0, scope_id)),
    }
}

/// `recv(fd, buf, MSG_DONTWAIT)`.
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    Ok(socket::recv(fd.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT)?)
}

/// `recvmsg(fd, buf, MSG_DONTWAIT)`: the length and the sender's address, if the kernel gave one.
fn recv_from(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Option<SockaddrStorage>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let m =
        socket::recvmsg::<SockaddrStorage>(fd.as_raw_fd(), &mut iov, None, MsgFlags::MSG_DONTWAIT)?;
    Ok((m.bytes, m.address))
}

/// [`recv`] on a packet socket, with the sender's link-layer address (all zero when it is
/// not six bytes long).
pub fn recv_packet(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, [u8; 6])> {
    let (n, from) = recv_from(fd, buf)?;
    let mac = from
        .as_ref()
        .and_then(|a| a.as_link_addr())
        .filter(|l| l.halen() == 6)
        .and_then(|l| l.addr())
        .unwrap_or([0; 6]);
    Ok((n, mac))
}

/// [`recv`] on an inet socket, with the source address.
pub fn recv_inet(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Option<IpAddr>)> {
    let (n, from) = recv_from(fd, buf)?;
    let ip = from.as_ref().and_then(|a| {
        a.as_sockaddr_in()
            .map(|v4| IpAddr::V4(v4.ip()))
            .or_else(|| a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
    });
    Ok((n, ip))
}

/// `poll()` on up to a few descriptors for readability, for at most `timeout` (rounded up
/// to whole milliseconds, so a sub-millisecond remainder still waits instead of spinning);
/// returns which are readable. An `EINTR` is reported as "nothing readable" so callers
/// simply re-check their deadline.
pub fn poll_readable<const N: usize>(
    fds: [Option<BorrowedFd<'_>>; N],
    timeout: Duration,
) -> io::Result<[bool; N]> {
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
    let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
    let Some(&some) = fds.iter().flatten().next() else {
        // nothing to watch: just the wait
        return match nix::poll::poll(&mut [], timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => Ok([false; N]),
            Err(e) => Err(e.into()),
        };
    };
    // An empty slot watches nothing on a descriptor that is watched in its own slot anyway.
    let mut pfds: [PollFd<'_>; N] = std::array::from_fn(|i| match fds[i] {
        Some(fd) => PollFd::new(fd, PollFlags::POLLIN),
        None => PollFd::new(some, PollFlags::empty()),
    });
    match nix::poll::poll(&mut pfds, timeout) {
        Ok(_) => {}
        Err(nix::errno::Errno::EINTR) => return Ok([false; N]),
        Err(e) => return Err(e.into()),
    }
    let ready = PollFlags::POLLIN | PollFlags::POLLERR | PollFlags::POLLHUP;
    Ok(std::array::from_fn(|i| {
        fds[i].is_some() && pfds[i].revents().is_some_and(|r| r.intersects(ready))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv6Addr, UdpSocket};
    use std::os::fd::AsFd;

    #[test]
    fn link_addr_carries_its_fields() {
        let l = sys::link_addr(7, 0x0806, [2, 0, 0, 0, 0, 9]).unwrap();
        assert_eq!(l.ifindex(), 7);
        assert_eq!(l.protocol(), 0x0806u16.to_be());
        assert_eq!(l.halen(), 6);
        assert_eq!(l.addr(), Some([2, 0, 0, 0, 0, 9]));
    }

    #[test]
    fn inet_addresses_keep_the_scope() {
        let a = inet("fe80::1".parse().unwrap(), 4);
        let v6 = a.as_sockaddr_in6().unwrap();
        assert_eq!(v6.ip(), "fe80::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!((v6.port(), v6.scope_id()), (0, 4));
        let a = inet("192.0.2.1".parse().unwrap(), 4);
        assert_eq!(a.as_sockaddr_in().unwrap().ip().octets(), [192, 0, 2, 1]);
    }

    /// Over loopback UDP: nothing queued is `WouldBlock` at once and not readable; a
    /// datagram makes its socket (only) readable and is received with its source.
    #[test]
    fn receives_never_wait_and_poll_reports_readiness() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut buf = [0u8; 16];
        let e = recv_inet(b.as_fd(), &mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        let r = poll_readable([Some(a.as_fd()), None, Some(b.as_fd())], Duration::ZERO);
        assert_eq!(r.unwrap(), [false, false, false]);
        a.send_to(b"hello", b.local_addr().unwrap()).unwrap();
        let r = poll_readable(
            [Some(a.as_fd()), None, Some(b.as_fd())],
            Duration::from_secs(5),
        );
        assert_eq!(r.unwrap(), [false, false, true]);
        let (n, from) = recv_inet(b.as_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(from, Some(a.local_addr().unwrap().ip()));
    }
}
