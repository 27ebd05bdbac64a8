//! The only `unsafe` in this crate: a link-layer socket address built from its fields.
//!
//! Every socket call goes through nix's safe wrappers (see `sock`); nix can read a
//! `sockaddr_ll` the kernel wrote but has no safe constructor for one we send to or bind.
#![allow(unsafe_code)]

use std::io;
use std::mem;

use nix::sys::socket::{LinkAddr, SockaddrLike};

/// The `sockaddr_ll` for `protocol` frames on interface `ifindex`, addressed to `dest`
/// (all zero to bind).
pub fn link_addr(ifindex: u32, protocol: u16, dest: [u8; 6]) -> io::Result<LinkAddr> {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sa: libc::sockaddr_ll = unsafe { mem::zeroed() };
    sa.sll_family = libc::AF_PACKET as libc::c_ushort;
    sa.sll_protocol = protocol.to_be();
    sa.sll_ifindex = ifindex as libc::c_int;
    sa.sll_halen = 6;
    sa.sll_addr[..6].copy_from_slice(&dest);
    // SAFETY: `sa` is a live, fully initialised sockaddr_ll of family AF_PACKET, and the
    // length given is its size: from_raw checks both and copies the structure.
    unsafe {
        LinkAddr::from_raw(
            (&raw const sa).cast::<libc::sockaddr>(),
            Some(mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t),
        )
    }
    // nix refuses only another family or size, which this structure never has
    .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
}
