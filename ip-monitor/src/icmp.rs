//! ICMP and ICMPv6 echo over raw sockets (we run as root; unprivileged "ping sockets" are
//! disabled where `ping_group_range` is `1 0`).
//!
//! A raw ICMP socket sees every ICMP packet the host receives, so replies are matched on
//! source address, identifier and sequence number.

use std::ffi::OsString;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{AddressFamily, SockProtocol, SockType, setsockopt, sockopt};

use crate::{Error, MAX_DRAIN, sock};

/// ICMPv4 echo request / reply types.
pub const ECHO_REQUEST_V4: u8 = 8;
/// ICMPv4 echo reply.
pub const ECHO_REPLY_V4: u8 = 0;
/// ICMPv6 echo request.
pub const ECHO_REQUEST_V6: u8 = 128;
/// ICMPv6 echo reply.
pub const ECHO_REPLY_V6: u8 = 129;

/// The RFC 1071 Internet checksum.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Build an echo request. For IPv4 the checksum is filled in; for IPv6 the kernel computes
/// it (it covers a pseudo-header only the kernel knows for sure).
pub fn encode_echo(v6: bool, ident: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(8 + payload.len());
    b.push(if v6 { ECHO_REQUEST_V6 } else { ECHO_REQUEST_V4 });
    b.push(0);
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&ident.to_be_bytes());
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(payload);
    if !v6 {
        let c = checksum(&b);
        b[2..4].copy_from_slice(&c.to_be_bytes());
    }
    b
}

/// Parse a received packet as an echo reply: `(ident, seq)`. IPv4 raw sockets deliver the
/// IP header first; IPv6 raw sockets deliver only the ICMPv6 message.
pub fn decode_echo_reply(v6: bool, pkt: &[u8]) -> Option<(u16, u16)> {
    let icmp = if v6 {
        pkt
    } else {
        let ihl = usize::from(*pkt.first()? & 0x0f) * 4;
        if *pkt.first()? >> 4 != 4 || ihl < 20 {
            return None;
        }
        pkt.get(ihl..)?
    };
    if icmp.len() < 8 || icmp[1] != 0 {
        return None;
    }
    let want = if v6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 };
    if icmp[0] != want {
        return None;
    }
    Some((
        u16::from_be_bytes([icmp[4], icmp[5]]),
        u16::from_be_bytes([icmp[6], icmp[7]]),
    ))
}

/// A raw ICMP (or ICMPv6) socket, optionally tied to one interface.
#[derive(Debug)]
pub struct Socket {
    fd: OwnedFd,
    v6: bool,
}

impl Socket {
    /// Open a raw socket for IPv6 (`v6`) or IPv4; with `device`, send and receive only
    /// through that interface (`SO_BINDTODEVICE`), so the probe takes the path under test.
    pub fn open(v6: bool, device: Option<&str>) -> Result<Self, Error> {
        let (domain, proto) = if v6 {
            (AddressFamily::Inet6, SockProtocol::IcmpV6)
        } else {
            (AddressFamily::Inet, SockProtocol::Icmp)
        };
        let fd = sock::open(domain, SockType::Raw, Some(proto))
            .map_err(|e| Error::io("open a raw ICMP socket (needs root or CAP_NET_RAW)", e))?;
        if let Some(dev) = device {
            bind_to_device(fd.as_fd(), dev)
                .map_err(|e| Error::io("bind the ICMP socket to the interface", e))?;
        }
        Ok(Socket { fd, v6 })
    }

    /// The descriptor, for polling.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Send an echo request to `dest`. Errors such as "network unreachable" are returned
    /// so the caller can treat that target as not answering.
    pub fn send_echo(&self, dest: IpAddr, ident: u16, seq: u16) -> io::Result<()> {
        let msg = encode_echo(self.v6, ident, seq, b"lkhelpers-ip-probe");
        sock::send_to(self.fd.as_fd(), &msg, &sock::inet(dest, 0))?;
        Ok(())
    }

    /// Read one pending echo reply without waiting: `(source, ident, seq)`.
    /// Other ICMP traffic is skipped, at most [`MAX_DRAIN`] packets per call; `None` when
    /// nothing more is queued or that many were skipped.
    pub fn try_recv(&self) -> Result<Option<(IpAddr, u16, u16)>, Error> {
        let mut buf = [0u8; 1500];
        for _ in 0..MAX_DRAIN {
            match sock::recv_inet(self.fd.as_fd(), &mut buf) {
                Ok((n, Some(from))) => {
                    if let Some((id, seq)) = decode_echo_reply(self.v6, &buf[..n]) {
                        return Ok(Some((from, id, seq)));
                    }
                }
                Ok((_, None)) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("receive ICMP", e)),
            }
        }
        Ok(None)
    }
}

/// `SO_BINDTODEVICE`: send and receive only through `ifname` (a name the kernel could
/// hold: 1 to 15 bytes, no NUL).
pub(crate) fn bind_to_device(fd: BorrowedFd<'_>, ifname: &str) -> io::Result<()> {
    if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ || ifname.contains('\0') {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    Ok(setsockopt(
        &fd,
        sockopt::BindToDevice,
        &OsString::from(ifname),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 §3 example bytes: 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2 -> checksum 0x220d.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
        // A packet with its checksum filled in sums to zero.
        let e = encode_echo(false, 0x1234, 7, b"abc");
        assert_eq!(checksum(&e), 0);
        assert_eq!(&e[..8], &[8, 0, e[2], e[3], 0x12, 0x34, 0, 7]);
    }

    #[test]
    fn decodes_replies() {
        // IPv4: 20-byte header then echo reply ident 0x1234 seq 7.
        let mut v4 = vec![
            0x45, 0, 0, 36, 0, 0, 0, 0, 64, 1, 0, 0, 192, 0, 2, 1, 192, 0, 2, 5,
        ];
        v4.extend([0, 0, 0, 0, 0x12, 0x34, 0, 7]);
        assert_eq!(decode_echo_reply(false, &v4), Some((0x1234, 7)));
        // Our own request seen on the raw socket is not a reply.
        v4[20] = 8;
        assert_eq!(decode_echo_reply(false, &v4), None);
        assert_eq!(decode_echo_reply(false, &v4[..22]), None);
        let v6 = [129, 0, 0, 0, 0xab, 0xcd, 0, 1];
        assert_eq!(decode_echo_reply(true, &v6), Some((0xabcd, 1)));
        assert_eq!(decode_echo_reply(true, &[128, 0, 0, 0, 0, 0, 0, 1]), None);
    }
}
