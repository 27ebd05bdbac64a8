//! The only `unsafe` in this crate: thin, checked wrappers over the socket system calls
//! the rest of the crate needs (netlink, `AF_PACKET`, raw ICMP/ICMPv6) and over `poll(2)`.
//!
//! Every wrapper takes owned or borrowed file descriptors and plain Rust values, checks
//! lengths before entering `unsafe`, and turns `-1` into the thread's `errno` as an
//! [`io::Error`].
#![allow(unsafe_code)]

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        // A non-negative ssize_t always fits in usize.
        Ok(ret as usize)
    }
}

/// `socket(domain, ty | SOCK_CLOEXEC, protocol)`.
pub fn socket(domain: libc::c_int, ty: libc::c_int, protocol: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes only integers and returns a new descriptor or -1.
    let fd = cvt(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, protocol) })?;
    // SAFETY: `fd` was just returned by socket(2), is valid and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `bind(fd, sockaddr_nl { nl_pid: 0, nl_groups: 0 })`: let the kernel pick the port id.
pub fn bind_netlink(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: sockaddr_nl is plain old data; all-zero is a valid value.
    let mut sa: libc::sockaddr_nl = unsafe { mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: `sa` is a valid sockaddr_nl and the length passed is its size.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const sa).cast::<libc::sockaddr>(),
            mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// `sendto(fd, buf, sockaddr_nl { nl_pid: 0 })`: send a netlink message to the kernel.
pub fn send_netlink(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: sockaddr_nl is plain old data; all-zero is a valid value.
    let mut sa: libc::sockaddr_nl = unsafe { mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: `buf` is valid for `buf.len()` bytes; `sa` is a valid sockaddr_nl of the size given.
    cvt_size(unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            0,
            (&raw const sa).cast::<libc::sockaddr>(),
            mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    })
}

fn packet_addr(ifindex: u32, protocol: u16, dest: &[u8; 6]) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sa: libc::sockaddr_ll = unsafe { mem::zeroed() };
    sa.sll_family = libc::AF_PACKET as libc::c_ushort;
    sa.sll_protocol = protocol.to_be();
    sa.sll_ifindex = ifindex as libc::c_int;
    sa.sll_halen = 6;
    sa.sll_addr[..6].copy_from_slice(dest);
    sa
}

/// `bind(fd, sockaddr_ll { ifindex, protocol })`: receive only `protocol` frames from one interface.
pub fn bind_packet(fd: BorrowedFd<'_>, ifindex: u32, protocol: u16) -> io::Result<()> {
    let sa = packet_addr(ifindex, protocol, &[0; 6]);
    // SAFETY: `sa` is a valid sockaddr_ll and the length passed is its size.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const sa).cast::<libc::sockaddr>(),
            mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// `sendto(fd, payload, sockaddr_ll { ifindex, protocol, dest })` on a `SOCK_DGRAM` packet
/// socket: the kernel adds the link-layer header addressed to `dest`.
pub fn send_packet(
    fd: BorrowedFd<'_>,
    ifindex: u32,
    protocol: u16,
    dest: &[u8; 6],
    payload: &[u8],
) -> io::Result<usize> {
    let sa = packet_addr(ifindex, protocol, dest);
    // SAFETY: `payload` is valid for its length; `sa` is a valid sockaddr_ll of the size given.
    cvt_size(unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            payload.as_ptr().cast(),
            payload.len(),
            0,
            (&raw const sa).cast::<libc::sockaddr>(),
            mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })
}

/// `recvfrom(fd, buf, MSG_DONTWAIT)`; returns the length and the sender's address as the
/// kernel wrote it (any family fits in a `sockaddr_storage`).
fn recv_from(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, libc::sockaddr_storage)> {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `buf` is writable for its length; `storage`/`len` describe writable storage.
    let n = cvt_size(unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
            (&raw mut storage).cast::<libc::sockaddr>(),
            &mut len,
        )
    })?;
    Ok((n, storage))
}

/// `recvfrom(fd, buf, MSG_DONTWAIT)` on a packet socket; returns the length and the sender's
/// link-layer address (all zero when it is not six bytes long).
pub fn recv_packet(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, [u8; 6])> {
    let (n, storage) = recv_from(fd, buf)?;
    let mut mac = [0u8; 6];
    if libc::c_int::from(storage.ss_family) == libc::AF_PACKET {
        // SAFETY: the kernel wrote a sockaddr_ll (family AF_PACKET) into the storage, which is
        // larger than and suitably aligned for it.
        let sll = unsafe { &*(&raw const storage).cast::<libc::sockaddr_ll>() };
        if sll.sll_halen == 6 {
            mac.copy_from_slice(&sll.sll_addr[..6]);
        }
    }
    Ok((n, mac))
}

/// `recv(fd, buf, MSG_DONTWAIT)`.
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is writable for `buf.len()` bytes.
    cvt_size(unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    })
}

/// A `sockaddr_in`/`sockaddr_in6` in storage large enough for either.
struct InetAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

fn inet_addr(addr: IpAddr, scope_id: u32) -> InetAddr {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let len = match addr {
        IpAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in.
            let sin = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_addr.s_addr = u32::from_ne_bytes(v4.octets());
            mem::size_of::<libc::sockaddr_in>()
        }
        IpAddr::V6(v6) => {
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in6.
            let sin6 = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_addr.s6_addr = v6.octets();
            sin6.sin6_scope_id = scope_id;
            mem::size_of::<libc::sockaddr_in6>()
        }
    };
    InetAddr {
        storage,
        len: len as libc::socklen_t,
    }
}

/// `sendto(fd, buf, sockaddr_in{,6})`; `scope_id` matters only for IPv6 link-local and
/// multicast destinations.
pub fn send_inet(fd: BorrowedFd<'_>, buf: &[u8], dest: IpAddr, scope_id: u32) -> io::Result<usize> {
    let sa = inet_addr(dest, scope_id);
    // SAFETY: `buf` is valid for its length; `sa.storage` holds a sockaddr of `sa.len` bytes.
    cvt_size(unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            0,
            (&raw const sa.storage).cast::<libc::sockaddr>(),
            sa.len,
        )
    })
}

/// `bind(fd, sockaddr_in{,6} { addr, port 0 })`.
pub fn bind_inet(fd: BorrowedFd<'_>, addr: IpAddr, scope_id: u32) -> io::Result<()> {
    let sa = inet_addr(addr, scope_id);
    // SAFETY: `sa.storage` holds a sockaddr of `sa.len` bytes.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const sa.storage).cast::<libc::sockaddr>(),
            sa.len,
        )
    })?;
    Ok(())
}

/// `recvfrom(fd, buf, MSG_DONTWAIT)` on an inet socket; returns the length and the source address.
pub fn recv_inet(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Option<IpAddr>)> {
    let (n, storage) = recv_from(fd, buf)?;
    let from = match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in (family AF_INET) into the storage.
            let sin = unsafe { &*(&raw const storage).cast::<libc::sockaddr_in>() };
            Some(IpAddr::V4(Ipv4Addr::from(
                sin.sin_addr.s_addr.to_ne_bytes(),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel wrote a sockaddr_in6 (family AF_INET6) into the storage.
            let sin6 = unsafe { &*(&raw const storage).cast::<libc::sockaddr_in6>() };
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    };
    Ok((n, from))
}

/// `setsockopt(fd, level, name, &int)`.
pub fn set_int_option(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` is a live c_int and the length passed is its size.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// `setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name)`: send and receive only through `ifname`.
pub fn bind_to_device(fd: BorrowedFd<'_>, ifname: &str) -> io::Result<()> {
    if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ || ifname.contains('\0') {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: the name is valid for `ifname.len()` bytes; the kernel copies at most that many.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            ifname.as_ptr().cast(),
            ifname.len() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// `poll()` on up to a few descriptors for readability; returns which are readable.
/// An `EINTR` is reported as "nothing readable" so callers simply re-check their deadline.
pub fn poll_readable<const N: usize>(
    fds: [Option<BorrowedFd<'_>>; N],
    timeout: Duration,
) -> io::Result<[bool; N]> {
    let mut pfds = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; N];
    for (p, fd) in pfds.iter_mut().zip(fds.iter()) {
        if let Some(fd) = fd {
            p.fd = fd.as_raw_fd();
            p.events = libc::POLLIN;
        }
    }
    // Round up so a sub-millisecond remainder still waits instead of spinning.
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `pfds` is a valid array of N pollfd structures; negative fds are ignored by poll.
    let ret = unsafe { libc::poll(pfds.as_mut_ptr(), N as libc::nfds_t, ms) };
    if ret < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok([false; N]);
        }
        return Err(err);
    }
    let mut out = [false; N];
    for (o, p) in out.iter_mut().zip(pfds.iter()) {
        *o = p.fd >= 0 && p.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0;
    }
    Ok(out)
}
