//! The only place in this crate that talks to the kernel through `unsafe`: the SCSI generic
//! `sg_io_hdr` (version 3) and the sg driver's asynchronous interface.
//!
//! [`SgChannel`] runs commands through `write(2)` / `read(2)` on a `/dev/sgN` node opened
//! non-blocking: [`SgChannel::submit`] hands one command to the driver and returns at once,
//! [`SgChannel::reap`] takes its completion when there is one (never waiting), and the caller
//! waits for many channels at once with `poll(2)` ([`crate::exec`]). The caller's deadline is
//! enforced above this module, whatever the transport does: when it passes, the channel is
//! abandoned ([`SgChannel::abandon`] closes its fd) and the kernel drops the orphaned request
//! on its own. There is no `SG_IO` ioctl: on a `/dev/sdX` node it can wait uninterruptibly
//! past any deadline (All Paths Down), and a thread blocked in it keeps the process alive.
//!
//! Everything above this module works with safe types: a CDB slice, a [`Transfer`] that says
//! which data phase the command has, and a [`Completion`] of plain integers and sense bytes.

#![allow(unsafe_code)]

use std::ffi::c_void;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::errno::Errno;

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

/// The data phase of a command.
#[derive(Debug, Clone, Copy)]
pub enum Transfer<'a> {
    /// No data phase (TEST UNIT READY, PR OUT without parameter list).
    None,
    /// Data-in of at most this many bytes (INQUIRY, PR IN); the bytes come with the
    /// completion.
    In(usize),
    /// Data-out: these bytes are sent to the device (PR OUT parameter list); the driver copies
    /// them when the command is submitted.
    Out(&'a [u8]),
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
    /// The channel was closed (after an earlier deadline or error) and carries no commands.
    Closed,
    /// The CDB or buffer is outside what this module accepts, or a command is already
    /// outstanding on the channel; nothing was sent.
    BadRequest,
}

fn timeout_ms(timeout: Duration) -> u32 {
    // Zero would mean "use the driver default" (60 s), the opposite of what a caller asking
    // for a short timeout wants.
    u32::try_from(timeout.as_millis())
        .unwrap_or(u32::MAX)
        .max(1)
}

/// The buffers of the command in flight: the driver wrote down their addresses at submit
/// and copies data-in and sense bytes into them during the `read(2)` that reaps it. Heap
/// allocations, so moving this value does not move them.
struct InFlight {
    data: Vec<u8>,
    sense: Box<[u8; SENSE_LEN]>,
}

/// An open `/dev/sgN` node used through the sg driver's asynchronous interface: one command
/// in flight at a time, submitted and reaped without blocking, so that a caller can keep
/// commands on many paths in flight at once and give up at its deadline even when a device
/// never answers.
#[derive(Debug)]
pub struct SgChannel {
    fd: Option<OwnedFd>,
    in_flight: Option<InFlight>,
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InFlight({} bytes)", self.data.len())
    }
}

impl Drop for SgChannel {
    fn drop(&mut self) {
        // The fd first: once it is closed the kernel never copies into the buffers of a
        // command still in flight, so they may be freed after it.
        self.fd = None;
    }
}

impl SgChannel {
    /// Wraps an fd of a `/dev/sgN` node opened read-write and non-blocking (the sg driver
    /// takes commands through `write(2)`; a character device opened for writing triggers no
    /// udev events on close).
    pub fn new(fd: OwnedFd) -> SgChannel {
        SgChannel {
            fd: Some(fd),
            in_flight: None,
        }
    }

    /// Whether the channel was abandoned (an earlier deadline or error).
    pub fn is_closed(&self) -> bool {
        self.fd.is_none()
    }

    /// The descriptor to wait on for a completion (`None` once abandoned).
    pub fn raw_fd(&self) -> Option<RawFd> {
        self.fd.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// The descriptor, to wait on with `epoll` (`None` once abandoned).
    pub fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.fd.as_ref().map(std::os::fd::AsFd::as_fd)
    }

    /// Whether a submitted command has not been reaped yet.
    pub fn busy(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Closes the channel: a command in flight is orphaned (the kernel completes and frees it
    /// without touching our memory again), and nothing more can be sent through it.
    pub fn abandon(&mut self) {
        self.fd = None;
        self.in_flight = None;
    }

    /// `write(sg, sg_io_hdr)`: hands one command to the driver with `timeout` as the kernel's
    /// command timeout, and returns without waiting. One command at a time per channel.
    pub fn submit(
        &mut self,
        cdb: &[u8],
        xfer: Transfer<'_>,
        timeout: Duration,
    ) -> Result<(), SysError> {
        let Some(fd) = self.fd.as_ref() else {
            return Err(SysError::Closed);
        };
        let len = match xfer {
            Transfer::None => 0,
            Transfer::In(n) => n,
            Transfer::Out(b) => b.len(),
        };
        if self.in_flight.is_some()
            || cdb.len() < 6
            || cdb.len() > MAX_CDB_LEN
            || len > MAX_DATA_LEN
        {
            return Err(SysError::BadRequest);
        }
        let mut buf = InFlight {
            data: match xfer {
                Transfer::In(n) => vec![0; n],
                _ => Vec::new(),
            },
            sense: Box::new([0; SENSE_LEN]),
        };
        let (dir, ptr): (i32, *mut c_void) = match xfer {
            Transfer::None => (SG_DXFER_NONE, std::ptr::null_mut()),
            Transfer::In(_) => (SG_DXFER_FROM_DEV, buf.data.as_mut_ptr().cast()),
            Transfer::Out(b) => (SG_DXFER_TO_DEV, b.as_ptr().cast_mut().cast()),
        };
        let hdr = SgIoHdr {
            interface_id: i32::from(b'S'),
            dxfer_direction: dir,
            cmd_len: cdb.len() as u8,
            mx_sb_len: SENSE_LEN as u8,
            iovec_count: 0,
            dxfer_len: len as u32,
            dxferp: ptr,
            cmdp: cdb.as_ptr(),
            sbp: buf.sense.as_mut_ptr(),
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
        };
        // SAFETY: the sg driver reads a whole sg_io_hdr from `hdr` and copies the CDB and any
        // data-out bytes during this call (indirect I/O: no user page is mapped). It keeps
        // `dxferp` (data-in) and `sbp` and writes to them only inside a later read(2) on this
        // fd; both point into the heap buffers of `buf`, which `in_flight` keeps alive until
        // that read, or until the fd is closed, after which the kernel never copies to user
        // memory for the orphaned request (see `abandon` and `Drop`).
        let n = unsafe {
            libc::write(
                fd.as_raw_fd(),
                (&raw const hdr).cast(),
                size_of::<SgIoHdr>(),
            )
        };
        if n < 0 {
            return Err(SysError::Os(Errno::last()));
        }
        self.in_flight = Some(buf);
        Ok(())
    }

    /// `read(sg, sg_io_hdr)` without waiting: the completion of the command in flight, with
    /// its data-in bytes (cut to what the device transferred is the caller's business: see
    /// [`Completion::resid`]); `Ok(None)` while it runs. An error closes the channel.
    pub fn reap(&mut self) -> Result<Option<(Completion, Vec<u8>)>, SysError> {
        let Some(fd) = self.fd.as_ref() else {
            return Err(SysError::Closed);
        };
        if self.in_flight.is_none() {
            return Ok(None);
        }
        let mut hdr = std::mem::MaybeUninit::<SgIoHdr>::zeroed();
        // SAFETY: reads back one completed sg_io_hdr into `hdr`, a writable buffer of exactly
        // its size; during this call the driver also copies data-in and sense bytes to the
        // pointers given at submit, which point into `self.in_flight`'s live heap buffers of
        // the sizes stated then. With O_NONBLOCK it returns EAGAIN while nothing completed.
        let n = unsafe {
            libc::read(
                fd.as_raw_fd(),
                hdr.as_mut_ptr().cast(),
                size_of::<SgIoHdr>(),
            )
        };
        if n < 0 {
            return match Errno::last() {
                Errno::EAGAIN | Errno::EINTR => Ok(None),
                e => {
                    self.abandon();
                    Err(SysError::Os(e))
                }
            };
        }
        // SAFETY: the read filled the header (every field is a plain integer or pointer, so
        // any bytes are a valid value; it was zeroed before).
        let hdr = unsafe { hdr.assume_init() };
        let buf = self.in_flight.take().expect("checked above");
        let n = usize::from(hdr.sb_len_wr).min(SENSE_LEN);
        let c = Completion {
            status: hdr.status,
            host_status: hdr.host_status,
            driver_status: hdr.driver_status,
            sense: buf.sense[..n].to_vec(),
            resid: hdr.resid,
            duration_ms: hdr.duration,
        };
        Ok(Some((c, buf.data)))
    }
}
