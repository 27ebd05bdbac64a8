//! The only place in this crate that talks to the kernel through `unsafe`: the SCSI generic
//! `sg_io_hdr` (version 3) and the two ways of running one command with it.
//!
//! * [`sg_io`]: `ioctl(fd, SG_IO, &hdr)` on any SCSI disk node (`/dev/sdX` or `/dev/sgN`).
//!   The kernel enforces the per-command timeout, but a request the block layer never dispatches
//!   (a transport that is down and queueing) waits beyond it, uninterruptibly on an `sd` node.
//! * [`SgChannel`]: the sg driver's asynchronous `write(2)` / `poll(2)` / `read(2)` interface on a
//!   `/dev/sgN` node. The caller's deadline is enforced here, whatever the transport does: when it
//!   passes, the channel closes its fd and the kernel drops the orphaned request on its own.
//!
//! Everything above this module works with safe types: a CDB slice, a [`DataDir`] that owns the
//! data buffer borrow, and a [`Completion`] of plain integers and sense bytes.

#![allow(unsafe_code)]

use std::ffi::c_void;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// `SG_IO` from `<scsi/sg.h>`.
const SG_IO: u32 = 0x2285;
const SG_DXFER_NONE: i32 = -1;
const SG_DXFER_TO_DEV: i32 = -2;
const SG_DXFER_FROM_DEV: i32 = -3;
/// Largest CDB this crate sends (16-byte CDBs are the longest fixed-length SCSI commands).
pub const MAX_CDB_LEN: usize = 16;
/// Sense buffer size: enough for fixed and descriptor formats with several descriptors.
pub const SENSE_LEN: usize = 64;
/// Largest data transfer we accept (the PR IN allocation length is 16 bits).
pub const MAX_DATA_LEN: usize = 64 * 1024;

/// `struct sg_io_hdr` (`sg_io_hdr_t`), interface id `'S'`, as laid out on 64-bit Linux.
#[repr(C)]
struct SgIoHdr {
    interface_id: i32,
    dxfer_direction: i32,
    cmd_len: u8,
    mx_sb_len: u8,
    iovec_count: u16,
    dxfer_len: u32,
    dxferp: *mut c_void,
    cmdp: *const u8,
    sbp: *mut u8,
    timeout: u32,
    flags: u32,
    pack_id: i32,
    usr_ptr: *mut c_void,
    status: u8,
    masked_status: u8,
    msg_status: u8,
    sb_len_wr: u8,
    host_status: u16,
    driver_status: u16,
    resid: i32,
    duration: u32,
    info: u32,
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(size_of::<SgIoHdr>() == 88);

mod ioctl {
    nix::ioctl_readwrite_bad!(
        /// The raw `SG_IO` ioctl; only [`super::sg_io`] calls it.
        raw_sg_io,
        super::SG_IO,
        super::SgIoHdr
    );
}
use ioctl::raw_sg_io;

/// Direction of the data phase; the variant owns the borrow of the buffer for the transfer.
#[derive(Debug)]
pub enum DataDir<'a> {
    /// No data phase (TEST UNIT READY, PR OUT without parameter list).
    None,
    /// Data-in: the device fills the buffer (INQUIRY, PR IN).
    FromDevice(&'a mut [u8]),
    /// Data-out: the buffer is sent to the device (PR OUT parameter list).
    ToDevice(&'a [u8]),
}

/// What the kernel reported for one command, before any interpretation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// SCSI status byte (GOOD 0x00, CHECK CONDITION 0x02, RESERVATION CONFLICT 0x18, ...).
    pub status: u8,
    /// Host (transport) byte, `DID_*`.
    pub host_status: u16,
    /// Driver byte, `DRIVER_*`.
    pub driver_status: u16,
    /// Sense bytes actually written by the device.
    pub sense: Vec<u8>,
    /// Bytes of the data buffer not transferred.
    pub resid: i32,
    /// Command duration in milliseconds, as measured by the kernel.
    pub duration_ms: u32,
}

/// Why a command did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysError {
    /// The system call failed with this errno.
    Os(Errno),
    /// The caller's deadline passed before the device answered (asynchronous channel only).
    Deadline,
    /// The channel was closed after an earlier deadline and cannot carry commands.
    Closed,
    /// The CDB or buffer is outside what this module accepts; nothing was sent.
    BadRequest,
}

struct Prepared {
    hdr: SgIoHdr,
    sense: [u8; SENSE_LEN],
}

fn timeout_ms(timeout: Duration) -> u32 {
    // Zero would mean "use the driver default" (60 s), the opposite of what a caller asking
    // for a short timeout wants.
    u32::try_from(timeout.as_millis())
        .unwrap_or(u32::MAX)
        .max(1)
}

/// Checks the request (CDB and buffer sizes; [`SysError::BadRequest`] otherwise) and builds
/// the header. Pointers in it borrow `cdb`, `data` and the returned sense buffer, so the header
/// must not outlive those borrows; the callers below keep all of them on their stack frame for
/// the whole system call.
fn prepare(cdb: &[u8], data: &mut DataDir<'_>, timeout: Duration) -> Result<Prepared, SysError> {
    let (dir, ptr, len): (i32, *mut c_void, usize) = match data {
        DataDir::None => (SG_DXFER_NONE, std::ptr::null_mut(), 0),
        DataDir::FromDevice(b) => (SG_DXFER_FROM_DEV, b.as_mut_ptr().cast(), b.len()),
        DataDir::ToDevice(b) => (SG_DXFER_TO_DEV, b.as_ptr().cast_mut().cast(), b.len()),
    };
    if cdb.len() < 6 || cdb.len() > MAX_CDB_LEN || len > MAX_DATA_LEN {
        return Err(SysError::BadRequest);
    }
    Ok(Prepared {
        hdr: SgIoHdr {
            interface_id: i32::from(b'S'),
            dxfer_direction: dir,
            cmd_len: cdb.len() as u8,
            mx_sb_len: SENSE_LEN as u8,
            iovec_count: 0,
            dxfer_len: len as u32,
            dxferp: ptr,
            cmdp: cdb.as_ptr(),
            sbp: std::ptr::null_mut(),
            timeout: timeout_ms(timeout),
            flags: 0,
            pack_id: 0,
            usr_ptr: std::ptr::null_mut(),
            status: 0,
            masked_status: 0,
            msg_status: 0,
            sb_len_wr: 0,
            host_status: 0,
            driver_status: 0,
            resid: 0,
            duration: 0,
            info: 0,
        },
        sense: [0; SENSE_LEN],
    })
}

fn completion(hdr: &SgIoHdr, sense: &[u8; SENSE_LEN]) -> Completion {
    let n = usize::from(hdr.sb_len_wr).min(SENSE_LEN);
    Completion {
        status: hdr.status,
        host_status: hdr.host_status,
        driver_status: hdr.driver_status,
        sense: sense[..n].to_vec(),
        resid: hdr.resid,
        duration_ms: hdr.duration,
    }
}

/// `ioctl(fd, SG_IO, sg_io_hdr)` — runs one SCSI command synchronously.
///
/// `fd` must be an open SCSI disk (`/dev/sdX`, read-only is enough for root) or `/dev/sgN`.
/// `timeout` is handed to the kernel as the command timeout.
#[doc(alias = "SG_IO")]
pub fn sg_io(
    fd: BorrowedFd<'_>,
    cdb: &[u8],
    mut data: DataDir<'_>,
    timeout: Duration,
) -> Result<Completion, SysError> {
    let mut p = prepare(cdb, &mut data, timeout)?;
    p.hdr.sbp = p.sense.as_mut_ptr();
    // SAFETY: `hdr` is a correctly laid out sg_io_hdr (size asserted above); every pointer in
    // it (cdb, data buffer of `dxfer_len` bytes, sense buffer of `mx_sb_len` bytes) points into
    // borrows that live until this call returns, and SG_IO only touches them during the call.
    let r = unsafe { raw_sg_io(fd.as_raw_fd(), &mut p.hdr) };
    r.map_err(SysError::Os)?;
    Ok(completion(&p.hdr, &p.sense))
}

/// An open `/dev/sgN` node used through the sg driver's asynchronous interface, so that every
/// command is bounded by the caller's deadline even when the device never answers.
#[derive(Debug)]
pub struct SgChannel {
    fd: Option<OwnedFd>,
}

impl SgChannel {
    /// Wraps an fd of a `/dev/sgN` node opened read-write (the sg driver takes commands through
    /// `write(2)`; a character device opened for writing triggers no udev events on close).
    pub fn new(fd: OwnedFd) -> SgChannel {
        SgChannel { fd: Some(fd) }
    }

    /// Whether an earlier deadline closed the channel.
    pub fn is_closed(&self) -> bool {
        self.fd.is_none()
    }

    /// `write(sg, sg_io_hdr)` + `poll` + `read(sg, sg_io_hdr)` — runs one command, giving up at
    /// `deadline`. On [`SysError::Deadline`] the channel is closed: the kernel keeps the
    /// orphaned request and frees it on completion without touching our memory again.
    #[doc(alias = "SG_IO")]
    pub fn execute(
        &mut self,
        cdb: &[u8],
        mut data: DataDir<'_>,
        timeout: Duration,
        deadline: Instant,
    ) -> Result<Completion, SysError> {
        let Some(fd) = self.fd.as_ref() else {
            return Err(SysError::Closed);
        };
        let mut p = prepare(cdb, &mut data, timeout)?;
        p.hdr.sbp = p.sense.as_mut_ptr();
        let raw = fd.as_raw_fd();
        let size = size_of::<SgIoHdr>();
        // SAFETY: the sg driver reads a whole sg_io_hdr from the buffer and copies the CDB and
        // any data-out bytes during this call; it remembers `dxferp` and `sbp` and writes to
        // them only inside a later read(2) on this fd. We either do that read below while
        // `p` and `data` are still borrowed here, or close the fd first (deadline path), after
        // which the kernel never copies to user memory for the orphaned request.
        let n = unsafe { libc::write(raw, (&raw const p.hdr).cast(), size) };
        if n < 0 {
            return Err(SysError::Os(Errno::last()));
        }
        loop {
            let now = Instant::now();
            if now >= deadline {
                self.fd = None;
                return Err(SysError::Deadline);
            }
            let left = PollTimeout::try_from(deadline - now).unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, left) {
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(_) => {}
                Err(e) => {
                    self.fd = None;
                    return Err(SysError::Os(e));
                }
            }
            // SAFETY: reads back one completed sg_io_hdr into `p.hdr`, a valid, writable
            // buffer of exactly `size` bytes; the driver copies data-in and sense bytes to the
            // pointers submitted above, which still borrow live buffers of the stated sizes.
            let n = unsafe { libc::read(raw, (&raw mut p.hdr).cast(), size) };
            if n < 0 {
                match Errno::last() {
                    Errno::EAGAIN | Errno::EINTR => continue,
                    e => {
                        self.fd = None;
                        return Err(SysError::Os(e));
                    }
                }
            }
            return Ok(completion(&p.hdr, &p.sense));
        }
    }
}
