//! rtnetlink over a raw `NETLINK_ROUTE` socket: list links, addresses and routes; add and
//! delete addresses.
//!
//! Messages are built and parsed by hand (the formats are small and stable kernel ABI, see
//! `rtnetlink(7)` and `netlink(7)`), which keeps the crate free of netlink dependencies. The
//! pure encoders and decoders are separate from the socket so they are tested on byte
//! fixtures. Every receive is bounded by a deadline.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use nix::sys::socket::{AddressFamily, NetlinkAddr, SockProtocol, SockType};

use crate::Error;
use crate::cidr::Cidr;
use crate::{expired, remaining, sock};

/// `struct nlmsghdr` size.
const NLMSG_HDRLEN: usize = 16;

/// Netlink message types and flags (`linux/netlink.h`, `linux/rtnetlink.h`).
pub mod consts {
    #![allow(missing_docs)]
    pub const NLMSG_ERROR: u16 = 2;
    pub const NLMSG_DONE: u16 = 3;
    pub const RTM_NEWLINK: u16 = 16;
    pub const RTM_GETLINK: u16 = 18;
    pub const RTM_NEWADDR: u16 = 20;
    pub const RTM_DELADDR: u16 = 21;
    pub const RTM_GETADDR: u16 = 22;
    pub const RTM_NEWROUTE: u16 = 24;
    pub const RTM_GETROUTE: u16 = 26;

    pub const NLM_F_REQUEST: u16 = 0x1;
    pub const NLM_F_MULTI: u16 = 0x2;
    pub const NLM_F_ACK: u16 = 0x4;
    pub const NLM_F_DUMP: u16 = 0x300;
    pub const NLM_F_EXCL: u16 = 0x200;
    pub const NLM_F_CREATE: u16 = 0x400;

    pub const IFLA_ADDRESS: u16 = 1;
    pub const IFLA_IFNAME: u16 = 3;
    pub const IFLA_MTU: u16 = 4;
    pub const IFLA_OPERSTATE: u16 = 16;
    pub const IFLA_CARRIER: u16 = 33;

    pub const IFA_ADDRESS: u16 = 1;
    pub const IFA_LOCAL: u16 = 2;
    pub const IFA_LABEL: u16 = 3;
    pub const IFA_BROADCAST: u16 = 4;
    pub const IFA_FLAGS: u16 = 8;

    pub const RTA_DST: u16 = 1;
    pub const RTA_OIF: u16 = 4;
    pub const RTA_GATEWAY: u16 = 5;
    pub const RTA_PRIORITY: u16 = 6;
    pub const RTA_TABLE: u16 = 15;

    pub const IFF_UP: u32 = 0x1;
    pub const IFF_RUNNING: u32 = 0x40;
    pub const IFF_LOWER_UP: u32 = 0x10000;

    pub const IFA_F_SECONDARY: u32 = 0x01;
    pub const IFA_F_NODAD: u32 = 0x02;
    pub const IFA_F_DADFAILED: u32 = 0x08;
    pub const IFA_F_TENTATIVE: u32 = 0x40;
    pub const IFA_F_PERMANENT: u32 = 0x80;

    pub const RT_TABLE_MAIN: u8 = 254;
    pub const RTN_UNICAST: u8 = 1;

    pub const AF_INET: u8 = 2;
    pub const AF_INET6: u8 = 10;
}
use consts::*;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One netlink message, borrowed from a receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// `nlmsg_type`.
    pub ty: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// Bytes after the 16-byte header.
    pub payload: &'a [u8],
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(i..i + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

/// Split a datagram into netlink messages; a truncated or inconsistent header is an error.
pub fn parse_messages(buf: &[u8]) -> Result<Vec<Message<'_>>, Error> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + NLMSG_HDRLEN <= buf.len() {
        let len = u32_at(buf, off).unwrap_or(0) as usize;
        if len < NLMSG_HDRLEN || off + len > buf.len() {
            return Err(Error::Protocol(format!(
                "netlink message at offset {off} claims {len} bytes, {} available",
                buf.len() - off
            )));
        }
        out.push(Message {
            ty: u16_at(buf, off + 4).unwrap_or(0),
            flags: u16_at(buf, off + 6).unwrap_or(0),
            seq: u32_at(buf, off + 8).unwrap_or(0),
            payload: &buf[off + NLMSG_HDRLEN..off + len],
        });
        off += align4(len);
    }
    Ok(out)
}

/// Iterate over `struct rtattr` items: `(type, payload)`. Stops at the first malformed item.
pub fn parse_attrs(buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 4 <= buf.len() {
        let len = u16_at(buf, off).unwrap_or(0) as usize;
        let ty = u16_at(buf, off + 2).unwrap_or(0) & 0x3fff; // strip NLA_F_NESTED/NET_BYTEORDER
        if len < 4 || off + len > buf.len() {
            break;
        }
        out.push((ty, &buf[off + 4..off + len]));
        off += align4(len);
    }
    out
}

/// Builds one netlink request: header, fixed family header, then attributes.
#[derive(Debug)]
pub struct Builder {
    buf: Vec<u8>,
}

impl Builder {
    /// Start a message of type `ty` with `flags` and sequence number `seq`.
    pub fn new(ty: u16, flags: u16, seq: u32) -> Self {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        Builder { buf }
    }

    /// Append raw bytes (a family header), padded to 4 bytes.
    pub fn raw(mut self, bytes: &[u8]) -> Self {
        self.buf.extend_from_slice(bytes);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    /// Append one attribute, padded to 4 bytes.
    pub fn attr(mut self, ty: u16, data: &[u8]) -> Self {
        let len = (4 + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    /// The finished message with its length filled in.
    pub fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// A network interface as `RTM_NEWLINK` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// `IFF_*` flags.
    pub flags: u32,
    /// Hardware address, when it is an Ethernet-style 6-byte address.
    pub mac: Option<[u8; 6]>,
    /// RFC 2863 operational state (`IF_OPER_*`: 6 = up, 2 = down, 5 = dormant, ...).
    pub oper_state: Option<u8>,
    /// Carrier, from `IFLA_CARRIER`.
    pub carrier: Option<bool>,
    /// MTU.
    pub mtu: Option<u32>,
}

impl Link {
    /// Administratively up (`IFF_UP`).
    pub fn admin_up(&self) -> bool {
        self.flags & IFF_UP != 0
    }

    /// Administratively up and the lower layer has carrier (`IFF_LOWER_UP`).
    pub fn usable(&self) -> bool {
        self.admin_up() && self.flags & IFF_LOWER_UP != 0 && self.carrier != Some(false)
    }
}

/// An interface address as `RTM_NEWADDR` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Interface index.
    pub ifindex: u32,
    /// The local address and its prefix length.
    pub cidr: Cidr,
    /// `IFA_F_*` flags (from `IFA_FLAGS` when present, else the 8-bit header field).
    pub flags: u32,
    /// Address scope (0 = global, 253 = link, 254 = host).
    pub scope: u8,
    /// IPv4 label.
    pub label: Option<String>,
}

impl Address {
    /// IPv4 secondary address (another address of the same subnet came first).
    pub fn secondary(&self) -> bool {
        self.flags & IFA_F_SECONDARY != 0
    }
    /// IPv6 duplicate address detection still running.
    pub fn tentative(&self) -> bool {
        self.flags & IFA_F_TENTATIVE != 0
    }
    /// IPv6 duplicate address detection found another host using the address.
    pub fn dad_failed(&self) -> bool {
        self.flags & IFA_F_DADFAILED != 0
    }
}

/// A route as `RTM_NEWROUTE` describes it (only what this crate needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Address family.
    pub family: u8,
    /// Destination prefix length (0 = default route).
    pub dst_len: u8,
    /// Destination, absent for the default route.
    pub dst: Option<IpAddr>,
    /// Next hop.
    pub gateway: Option<IpAddr>,
    /// Output interface index.
    pub oif: Option<u32>,
    /// Routing table.
    pub table: u32,
    /// Route type (`RTN_*`).
    pub kind: u8,
    /// Metric.
    pub priority: u32,
}

fn ip_from(family: u8, b: &[u8]) -> Option<IpAddr> {
    match family {
        AF_INET => <[u8; 4]>::try_from(b)
            .ok()
            .map(|o| IpAddr::V4(Ipv4Addr::from(o))),
        AF_INET6 => <[u8; 16]>::try_from(b)
            .ok()
            .map(|o| IpAddr::V6(Ipv6Addr::from(o))),
        _ => None,
    }
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Decode the payload of an `RTM_NEWLINK` message (`struct ifinfomsg` + attributes).
pub fn decode_link(p: &[u8]) -> Result<Link, Error> {
    if p.len() < 16 {
        return Err(Error::Protocol(format!(
            "RTM_NEWLINK payload of {} bytes",
            p.len()
        )));
    }
    let index = u32_at(p, 4).unwrap_or(0);
    let flags = u32_at(p, 8).unwrap_or(0);
    let mut link = Link {
        index,
        name: String::new(),
        flags,
        mac: None,
        oper_state: None,
        carrier: None,
        mtu: None,
    };
    for (ty, data) in parse_attrs(&p[16..]) {
        match ty {
            IFLA_IFNAME => link.name = cstr(data),
            IFLA_ADDRESS => link.mac = <[u8; 6]>::try_from(data).ok(),
            IFLA_OPERSTATE => link.oper_state = data.first().copied(),
            IFLA_CARRIER => link.carrier = data.first().map(|&c| c != 0),
            IFLA_MTU => link.mtu = u32_at(data, 0),
            _ => {}
        }
    }
    Ok(link)
}

/// Decode the payload of an `RTM_NEWADDR` message (`struct ifaddrmsg` + attributes).
/// Returns `None` for families other than IPv4/IPv6 or messages without an address.
pub fn decode_address(p: &[u8]) -> Result<Option<Address>, Error> {
    if p.len() < 8 {
        return Err(Error::Protocol(format!(
            "RTM_NEWADDR payload of {} bytes",
            p.len()
        )));
    }
    let family = p[0];
    let prefix = p[1];
    let mut flags = u32::from(p[2]);
    let scope = p[3];
    let ifindex = u32_at(p, 4).unwrap_or(0);
    let (mut local, mut address, mut label) = (None, None, None);
    for (ty, data) in parse_attrs(&p[8..]) {
        match ty {
            IFA_LOCAL => local = ip_from(family, data),
            IFA_ADDRESS => address = ip_from(family, data),
            IFA_LABEL => label = Some(cstr(data)),
            IFA_FLAGS => flags = u32_at(data, 0).unwrap_or(flags),
            _ => {}
        }
    }
    // For point-to-point IPv4 links IFA_ADDRESS is the peer; IFA_LOCAL is always ours.
    let Some(addr) = local.or(address) else {
        return Ok(None);
    };
    Ok(Some(Address {
        ifindex,
        cidr: Cidr { addr, prefix },
        flags,
        scope,
        label,
    }))
}

/// Decode the payload of an `RTM_NEWROUTE` message (`struct rtmsg` + attributes).
pub fn decode_route(p: &[u8]) -> Result<Route, Error> {
    if p.len() < 12 {
        return Err(Error::Protocol(format!(
            "RTM_NEWROUTE payload of {} bytes",
            p.len()
        )));
    }
    let family = p[0];
    let mut r = Route {
        family,
        dst_len: p[1],
        dst: None,
        gateway: None,
        oif: None,
        table: u32::from(p[4]),
        kind: p[7],
        priority: 0,
    };
    for (ty, data) in parse_attrs(&p[12..]) {
        match ty {
            RTA_DST => r.dst = ip_from(family, data),
            RTA_GATEWAY => r.gateway = ip_from(family, data),
            RTA_OIF => r.oif = u32_at(data, 0),
            RTA_TABLE => r.table = u32_at(data, 0).unwrap_or(r.table),
            RTA_PRIORITY => r.priority = u32_at(data, 0).unwrap_or(0),
            _ => {}
        }
    }
    Ok(r)
}

fn family_of(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { AF_INET } else { AF_INET6 }
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// Encode an `RTM_NEWADDR` (add) or `RTM_DELADDR` (delete) request for `cidr` on `ifindex`,
/// asking for an acknowledgement. Adds use `NLM_F_CREATE | NLM_F_EXCL` so an address that is
/// already present is reported (`EEXIST`) rather than silently changed. `nodad` asks IPv6 to
/// skip duplicate address detection.
pub fn encode_addr_request(add: bool, ifindex: u32, cidr: &Cidr, nodad: bool, seq: u32) -> Vec<u8> {
    let family = family_of(cidr.addr);
    let (ty, flags) = if add {
        (
            RTM_NEWADDR,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
    } else {
        (RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK)
    };
    let mut hdr = [0u8; 8];
    hdr[0] = family;
    hdr[1] = cidr.prefix;
    hdr[4..8].copy_from_slice(&ifindex.to_ne_bytes());
    let a = ip_bytes(cidr.addr);
    let mut b = Builder::new(ty, flags, seq)
        .raw(&hdr)
        .attr(IFA_LOCAL, &a)
        .attr(IFA_ADDRESS, &a);
    if add {
        if let Some(brd) = cidr.broadcast() {
            b = b.attr(IFA_BROADCAST, &brd.octets());
        }
        if nodad && family == AF_INET6 {
            b = b.attr(IFA_FLAGS, &IFA_F_NODAD.to_ne_bytes());
        }
    }
    b.finish()
}

/// Encode a dump request (`RTM_GETLINK`, `RTM_GETADDR`, `RTM_GETROUTE`) for `family`
/// (0 = all). The family header is zero apart from the family byte, sized for the type.
pub fn encode_dump(ty: u16, family: u8, seq: u32) -> Vec<u8> {
    let hdr_len = match ty {
        RTM_GETLINK => 16,
        RTM_GETROUTE => 12,
        _ => 8,
    };
    let mut hdr = vec![0u8; hdr_len];
    hdr[0] = family;
    Builder::new(ty, NLM_F_REQUEST | NLM_F_DUMP, seq)
        .raw(&hdr)
        .finish()
}

/// Decode an `NLMSG_ERROR` payload: `Ok(())` for an acknowledgement (error 0), else the errno.
pub fn decode_error(p: &[u8]) -> Result<Result<(), i32>, Error> {
    let code = u32_at(p, 0)
        .map(|c| c as i32)
        .ok_or_else(|| Error::Protocol(format!("NLMSG_ERROR payload of {} bytes", p.len())))?;
    Ok(if code == 0 { Ok(()) } else { Err(-code) })
}

/// The result of adding an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addition {
    /// The kernel added it.
    Added,
    /// It was already there (`EEXIST`).
    AlreadyPresent,
}

/// The result of deleting an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// The kernel deleted it.
    Deleted,
    /// It was not there (`EADDRNOTAVAIL`).
    Absent,
}

/// A `NETLINK_ROUTE` socket used synchronously: one request at a time, every reply waited
/// for with `poll()` up to a deadline.
#[derive(Debug)]
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    /// `socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)` bound to a kernel-chosen port.
    pub fn open() -> Result<Self, Error> {
        let fd = sock::open(
            AddressFamily::Netlink,
            SockType::Raw,
            Some(SockProtocol::NetlinkRoute),
        )
        .map_err(|e| Error::io("open a netlink socket", e))?;
        sock::bind(fd.as_fd(), &NetlinkAddr::new(0, 0))
            .map_err(|e| Error::io("bind the netlink socket", e))?;
        // Start from a clock-derived number so replies to an earlier process can't match.
        let seq = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(1);
        Ok(Netlink {
            fd,
            seq,
            buf: vec![0; 64 * 1024],
        })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn send(&mut self, msg: &[u8], what: &'static str) -> Result<(), Error> {
        // to the kernel: port id 0
        let n = sock::send_to(self.fd.as_fd(), msg, &NetlinkAddr::new(0, 0))
            .map_err(|e| Error::io(what, e))?;
        if n != msg.len() {
            return Err(Error::Protocol(format!(
                "{what}: short netlink send ({n} of {})",
                msg.len()
            )));
        }
        Ok(())
    }

    /// Receive one datagram, waiting at most until `deadline`.
    fn recv(&mut self, deadline: Instant, what: &'static str) -> Result<usize, Error> {
        loop {
            if expired(deadline) {
                return Err(Error::Timeout(what));
            }
            let [ready] = sock::poll_readable([Some(self.fd.as_fd())], remaining(deadline))
                .map_err(|e| Error::io(what, e))?;
            if !ready {
                continue;
            }
            match sock::recv(self.fd.as_fd(), &mut self.buf) {
                Ok(n) => return Ok(n),
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(what, e)),
            }
        }
    }

    /// Send a request and wait for its acknowledgement; returns the kernel's errno if any.
    fn transact(
        &mut self,
        msg: Vec<u8>,
        seq: u32,
        deadline: Instant,
        what: &'static str,
    ) -> Result<Result<(), i32>, Error> {
        self.send(&msg, what)?;
        loop {
            let n = self.recv(deadline, what)?;
            for m in parse_messages(&self.buf[..n])? {
                if m.seq != seq {
                    continue;
                }
                if m.ty == NLMSG_ERROR {
                    return decode_error(m.payload);
                }
            }
        }
    }

    /// Send a dump request and collect the payloads of the replies of type `want`.
    fn dump(
        &mut self,
        ty: u16,
        family: u8,
        want: u16,
        deadline: Instant,
        what: &'static str,
    ) -> Result<Vec<Vec<u8>>, Error> {
        let seq = self.next_seq();
        self.send(&encode_dump(ty, family, seq), what)?;
        let mut out = Vec::new();
        loop {
            let n = self.recv(deadline, what)?;
            for m in parse_messages(&self.buf[..n])? {
                if m.seq != seq {
                    continue;
                }
                match m.ty {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        if let Err(errno) = decode_error(m.payload)? {
                            return Err(Error::Kernel {
                                op: what.to_string(),
                                source: io::Error::from_raw_os_error(errno),
                            });
                        }
                    }
                    t if t == want => out.push(m.payload.to_vec()),
                    _ => {}
                }
            }
        }
    }

    /// All interfaces.
    pub fn links(&mut self, deadline: Instant) -> Result<Vec<Link>, Error> {
        self.dump(
            RTM_GETLINK,
            0,
            RTM_NEWLINK,
            deadline,
            "list interfaces (RTM_GETLINK)",
        )?
        .iter()
        .map(|p| decode_link(p))
        .collect()
    }

    /// The interface called `name`, if any.
    pub fn link_by_name(&mut self, name: &str, deadline: Instant) -> Result<Option<Link>, Error> {
        Ok(self.links(deadline)?.into_iter().find(|l| l.name == name))
    }

    /// All IPv4 and IPv6 addresses, in the kernel's order (per interface, primaries first).
    pub fn addresses(&mut self, deadline: Instant) -> Result<Vec<Address>, Error> {
        let mut out = Vec::new();
        for p in self.dump(
            RTM_GETADDR,
            0,
            RTM_NEWADDR,
            deadline,
            "list addresses (RTM_GETADDR)",
        )? {
            if let Some(a) = decode_address(&p)? {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Routes of one family in the main table.
    pub fn routes(&mut self, family: u8, deadline: Instant) -> Result<Vec<Route>, Error> {
        self.dump(
            RTM_GETROUTE,
            family,
            RTM_NEWROUTE,
            deadline,
            "list routes (RTM_GETROUTE)",
        )?
        .iter()
        .map(|p| decode_route(p))
        .filter(|r| {
            r.as_ref()
                .map_or(true, |r| r.table == u32::from(RT_TABLE_MAIN))
        })
        .collect()
    }

    /// Add `cidr` to interface `ifindex`. `nodad` skips IPv6 duplicate address detection.
    pub fn add_address(
        &mut self,
        ifindex: u32,
        cidr: &Cidr,
        nodad: bool,
        deadline: Instant,
    ) -> Result<Addition, Error> {
        let seq = self.next_seq();
        let msg = encode_addr_request(true, ifindex, cidr, nodad, seq);
        match self.transact(msg, seq, deadline, "add address (RTM_NEWADDR)")? {
            Ok(()) => Ok(Addition::Added),
            Err(libc::EEXIST) => Ok(Addition::AlreadyPresent),
            Err(errno) => Err(Error::Kernel {
                op: format!("add {cidr}"),
                source: io::Error::from_raw_os_error(errno),
            }),
        }
    }

    /// Delete `cidr` from interface `ifindex`.
    pub fn del_address(
        &mut self,
        ifindex: u32,
        cidr: &Cidr,
        deadline: Instant,
    ) -> Result<Deletion, Error> {
        let seq = self.next_seq();
        let msg = encode_addr_request(false, ifindex, cidr, false, seq);
        match self.transact(msg, seq, deadline, "delete address (RTM_DELADDR)")? {
            Ok(()) => Ok(Deletion::Deleted),
            Err(libc::EADDRNOTAVAIL) | Err(libc::ENOENT) => Ok(Deletion::Absent),
            Err(errno) => Err(Error::Kernel {
                op: format!("delete {cidr}"),
                source: io::Error::from_raw_os_error(errno),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ne16(v: u16) -> [u8; 2] {
        v.to_ne_bytes()
    }
    fn ne32(v: u32) -> [u8; 4] {
        v.to_ne_bytes()
    }
    /// Append one `struct rtattr` with its padding, written out independently of [`Builder`].
    fn attr(out: &mut Vec<u8>, ty: u16, data: &[u8]) {
        out.extend(ne16(4 + data.len() as u16));
        out.extend(ne16(ty));
        out.extend(data);
        out.resize(align4(out.len()), 0);
    }

    #[test]
    fn encodes_add_request() {
        let c: Cidr = "192.0.2.10/24".parse().unwrap();
        let m = encode_addr_request(true, 3, &c, false, 7);
        let mut want = Vec::new();
        want.extend(ne32(16 + 8 + 8 + 8 + 8));
        want.extend(ne16(RTM_NEWADDR));
        want.extend(ne16(0x1 | 0x4 | 0x400 | 0x200));
        want.extend(ne32(7));
        want.extend(ne32(0));
        want.extend([2, 24, 0, 0]);
        want.extend(ne32(3));
        for ty in [IFA_LOCAL, IFA_ADDRESS] {
            attr(&mut want, ty, &[192, 0, 2, 10]);
        }
        attr(&mut want, IFA_BROADCAST, &[192, 0, 2, 255]);
        assert_eq!(m, want);
    }

    #[test]
    fn encodes_v6_delete_and_dump() {
        let c: Cidr = "2001:db8::5/64".parse().unwrap();
        let m = encode_addr_request(false, 9, &c, true, 1);
        assert_eq!(m.len(), 16 + 8 + 20 + 20);
        assert_eq!(u16_at(&m, 4), Some(RTM_DELADDR));
        assert_eq!(m[16], AF_INET6);
        assert_eq!(m[17], 64);
        let d = encode_dump(RTM_GETLINK, 0, 5);
        assert_eq!(d.len(), 32);
        assert_eq!(u16_at(&d, 6), Some(NLM_F_REQUEST | NLM_F_DUMP));
        assert_eq!(encode_dump(RTM_GETROUTE, AF_INET, 5).len(), 28);
    }

    fn fixture_newaddr() -> Vec<u8> {
        // RTM_NEWADDR for 192.0.2.10/24 on ifindex 2, secondary, with label and IFA_FLAGS.
        let mut p = vec![2, 24, 0x01, 0];
        p.extend(ne32(2));
        for ty in [IFA_ADDRESS, IFA_LOCAL] {
            attr(&mut p, ty, &[192, 0, 2, 10]);
        }
        attr(&mut p, IFA_LABEL, b"eth0\0"); // 5 bytes + padding
        attr(&mut p, IFA_FLAGS, &ne32(0x81));
        let mut m = Vec::new();
        m.extend(ne32(16 + p.len() as u32));
        m.extend(ne16(RTM_NEWADDR));
        m.extend(ne16(NLM_F_MULTI));
        m.extend(ne32(42));
        m.extend(ne32(1234));
        m.extend(p);
        // followed by NLMSG_DONE
        m.extend(ne32(20));
        m.extend(ne16(NLMSG_DONE));
        m.extend(ne16(NLM_F_MULTI));
        m.extend(ne32(42));
        m.extend(ne32(1234));
        m.extend(ne32(0));
        m
    }

    #[test]
    fn decodes_address_dump() {
        let buf = fixture_newaddr();
        let msgs = parse_messages(&buf).unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].ty, RTM_NEWADDR);
        assert_eq!(msgs[0].seq, 42);
        assert_eq!(msgs[1].ty, NLMSG_DONE);
        let a = decode_address(msgs[0].payload).unwrap().unwrap();
        assert_eq!(a.ifindex, 2);
        assert_eq!(a.cidr, "192.0.2.10/24".parse().unwrap());
        assert_eq!(a.label.as_deref(), Some("eth0"));
        assert!(a.secondary());
        assert_eq!(a.flags, 0x81);
        assert!(!a.tentative());
    }

    #[test]
    fn decodes_link_route_and_error() {
        let mut p = vec![0, 0];
        p.extend(ne16(1));
        p.extend(ne32(4));
        p.extend(ne32(IFF_UP | IFF_RUNNING | IFF_LOWER_UP));
        p.extend(ne32(0));
        attr(&mut p, IFLA_IFNAME, b"veth0");
        attr(&mut p, IFLA_ADDRESS, &[2, 0, 0, 0, 0, 1]);
        attr(&mut p, IFLA_CARRIER, &[1]);
        let l = decode_link(&p).unwrap();
        assert_eq!(l.index, 4);
        assert_eq!(l.name, "veth0");
        assert_eq!(l.mac, Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(l.carrier, Some(true));
        assert!(l.usable());

        let mut r = vec![AF_INET, 0, 0, 0, RT_TABLE_MAIN, 3, 0, RTN_UNICAST];
        r.extend(ne32(0));
        attr(&mut r, RTA_GATEWAY, &[192, 0, 2, 1]);
        attr(&mut r, RTA_OIF, &ne32(4));
        let r = decode_route(&r).unwrap();
        assert_eq!(r.dst_len, 0);
        assert_eq!(r.gateway, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(r.oif, Some(4));
        assert_eq!(r.table, 254);

        let mut e = Vec::new();
        e.extend((-17i32).to_ne_bytes());
        e.extend([0u8; 16]);
        assert_eq!(decode_error(&e).unwrap(), Err(17));
        assert_eq!(decode_error(&[0, 0, 0, 0]).unwrap(), Ok(()));
        assert!(decode_error(&[0]).is_err());
    }

    #[test]
    fn rejects_truncated_messages() {
        let mut buf = fixture_newaddr();
        buf[0] = 200; // length beyond the buffer
        assert!(parse_messages(&buf).is_err());
        assert!(decode_link(&[0; 8]).is_err());
        assert!(decode_address(&[0; 4]).is_err());
        // a malformed attribute ends the attribute list rather than panicking
        assert!(parse_attrs(&[255, 0, 1, 0, 1]).is_empty());
    }
}
