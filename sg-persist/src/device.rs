//! Commands on real devices: one [`ScsiPath`] per I_T nexus, and [`Lu`] (`device/lu`), the
//! set of paths confirmed (by VPD page 0x83) to reach one logical unit; [`Error`]
//! (`device/error`), one variant per failed operation. Every command is a future run by
//! [`crate::exec`] (sg write, epoll, read), so many paths and LUs are in flight at once.
//!
//! Every command takes a deadline. The per-command timeout handed to the kernel is the
//! smaller of [`Options::cmd_timeout`] and the time left. Every command runs on the path's
//! `/dev/sgN` through [`SgChannel`], which gives up at the deadline even when the transport
//! queues the request forever (All Paths Down). There is no silent fallback to `SG_IO` on the
//! `sd` node (which waits uninterruptibly in that case): when `/dev` lacks the sg node that
//! sysfs lists, a private node is made for the one open (in a fresh 0700 directory, removed
//! at once); when the sg driver is not loaded, opening the path fails with
//! [`Error::NoSgNode`] naming the fix.
//! UNIT ATTENTION is retried up to [`Options::ua_retries`] times on whatever nexus it
//! arrives (some targets, tgt among them, deliver it to the wrong one); every CDB, parameter
//! list and sense buffer is logged in hex at debug level.

use std::fmt;
use std::fs::OpenOptions;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::task::Poll;
use std::time::{Duration, Instant};

use log::{debug, info};
use nix::errno::Errno;

use crate::cdb::{self, PrInAction, PrOutAction, PrType, hex};
use crate::exec;
use crate::parse::ReservationStatus;
use crate::parse::{self, Capabilities, FullStatus, Identity, Inquiry, Keys, LuId, ParseError};
use crate::path::PathInfo;
use crate::sense::Reply;
use crate::sys::{Completion, SgChannel, SysError, Transfer};

mod error;
mod lu;

pub use error::Error;
pub use lu::{DeadPath, Lu, path_failure};

/// Tunables for command execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Upper bound of one command's timeout.
    pub cmd_timeout: Duration,
    /// How many times a command that got UNIT ATTENTION is re-sent.
    pub ua_retries: u32,
    /// Read VPD page 0x83 of a device with a single path too (several paths are always
    /// compared); `false` saves one command per open when the identity is not shown.
    pub identify_single: bool,
    /// The caller confirmed already that the paths are one LU (a resolution it re-validated
    /// by every path's serial number, see [`crate::path::Resolved::revalidate`]): no identity
    /// is read.
    pub paths_confirmed: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            cmd_timeout: Duration::from_secs(5),
            ua_retries: 3,
            identify_single: true,
            paths_confirmed: false,
        }
    }
}

/// One SCSI path (I_T nexus) of a logical unit.
pub struct ScsiPath {
    /// Where the path is in sysfs and /dev.
    pub info: PathInfo,
    /// The node commands go through (`/dev/sgN`).
    pub node: PathBuf,
    /// Whether `node` was missing from `/dev` and a private copy was made to open it.
    pub private_node: bool,
    channel: SgChannel,
    reg: exec::Registration,
    opts: Options,
}

impl fmt::Debug for ScsiPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScsiPath")
            .field("info", &self.info)
            .field("node", &self.node)
            .finish()
    }
}

fn open_node(p: &Path, write: bool) -> Result<OwnedFd, Errno> {
    OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(p)
        .map(OwnedFd::from)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
}

/// `"21:3"` → (21, 3).
fn parse_devnum(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once(':')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

/// Whether `fd` is a character device, and the one numbered `want` when that is known.
fn check_char_dev(fd: &OwnedFd, want: Option<(u64, u64)>) -> Result<(), String> {
    let st = nix::sys::stat::fstat(fd).map_err(|e| format!("cannot be checked ({e})"))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR {
        return Err("is not a character device".into());
    }
    if let Some((major, minor)) = want
        && st.st_rdev != nix::sys::stat::makedev(major, minor)
    {
        return Err(format!(
            "is not the sg device of this disk (device {}:{}, sysfs says {major}:{minor})",
            nix::sys::stat::major(st.st_rdev),
            nix::sys::stat::minor(st.st_rdev)
        ));
    }
    Ok(())
}

/// Opens character device `major:minor` through a node made for this one open: a fresh
/// directory (mode 0700, next to where `sg` should be, so on the same devtmpfs) holds the
/// node only until it is open; both are removed before returning.
fn sys_private_node(sg: &Path, major: u64, minor: u64) -> Result<OwnedFd, Errno> {
    use nix::sys::stat::{Mode, SFlag, makedev, mknod};
    let parent = sg.parent().unwrap_or(Path::new("/dev"));
    let dir = nix::unistd::mkdtemp(&parent.join(".lkh-sg-XXXXXX"))?;
    let node = dir.join("sg");
    let r = mknod(
        &node,
        SFlag::S_IFCHR,
        Mode::S_IRUSR | Mode::S_IWUSR,
        makedev(major, minor),
    )
    .and_then(|()| open_node(&node, true));
    let _ = std::fs::remove_file(&node);
    let _ = std::fs::remove_dir(&dir);
    r
}

/// Sends a command with `send` and classifies the answer; a UNIT ATTENTION is sent again up
/// to `retries` times. The retry does not ask whether the attention concerns this nexus: a
/// target may report an event of another nexus here (tgt sends some of the "registrations
/// preempted" attentions to the preempting nexus), and the command's own answer comes after.
/// Whatever arrives after the last retry is returned as it is.
async fn retry_unit_attention(
    dev: &Path,
    cmd: &'static str,
    retries: u32,
    mut send: impl AsyncFnMut() -> Result<(Completion, Vec<u8>), Error>,
) -> Result<(Reply, Completion, Vec<u8>), Error> {
    let mut attempt = 0;
    loop {
        let (c, data) = send().await?;
        let reply = Reply::classify(&c);
        debug!("{}: {cmd}: {reply}", dev.display());
        if let Reply::UnitAttention(s) = reply
            && attempt < retries
        {
            attempt += 1;
            info!(
                "{}: {cmd}: unit attention ({s}), retrying ({attempt}/{retries})",
                dev.display()
            );
            continue;
        }
        return Ok((reply, c, data));
    }
}

/// Result of PR OUT and other commands without data-in.
type Done = Result<(), Error>;

/// The first allocation length of a PR IN whose answer grows with the registrations.
const PR_IN_FIRST: u16 = 8192;

/// Reads a PR IN answer that can be longer than its first allocation (READ KEYS, READ FULL
/// STATUS): `ask(len)` runs the command with allocation length `len`. Asked with 8 KiB first;
/// when the device reports more (its ADDITIONAL LENGTH), asked again with exactly that, and
/// again while it keeps growing (other nodes registering meanwhile), three tries in all. An
/// answer that does not fit in the 16-bit allocation length, or still does not fit on the
/// third try, is [`ParseError::TooLong`]: a cut list could hide a registration.
async fn read_whole<T>(
    mut ask: impl AsyncFnMut(u16) -> Result<Vec<u8>, Error>,
    parse: fn(&[u8]) -> Result<T, ParseError>,
    truncated: fn(&T) -> bool,
) -> Result<Result<T, ParseError>, Error> {
    let mut len = PR_IN_FIRST;
    for _ in 0..3 {
        let b = ask(len).await?;
        let v = match parse(&b) {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        if !truncated(&v) {
            return Ok(Ok(v));
        }
        let need = parse::needed(&b);
        let Ok(need) = u16::try_from(need) else {
            return Ok(Err(ParseError::TooLong {
                what: "PERSISTENT RESERVE IN",
                len: need,
            }));
        };
        len = need.max(len);
    }
    Ok(Err(ParseError::TooLong {
        what: "PERSISTENT RESERVE IN",
        len: usize::from(len),
    }))
}

impl ScsiPath {
    /// Opens a path: its `/dev/sgN` read-write (checked to be the sg device sysfs names for
    /// this disk; made privately when `/dev` lacks it), or fails with [`Error::NoSgNode`].
    pub fn open(info: PathInfo, opts: Options) -> Result<ScsiPath, Error> {
        let no_sg = |reason: String| Error::NoSgNode {
            dev: info.dev.clone(),
            reason,
        };
        let Some(sg) = info.sg.clone() else {
            return Err(no_sg(
                "the sg driver is not loaded (sysfs lists no scsi_generic device for it): load it with `modprobe sg` and have it loaded at boot (`echo sg > /etc/modules-load.d/sg.conf`)".into(),
            ));
        };
        let want = info.sg_devnum.as_deref().and_then(parse_devnum);
        let (fd, private_node) = match open_node(&sg, true) {
            Ok(fd) => (fd, false),
            Err(Errno::ENOENT) if want.is_some() => {
                let (major, minor) = want.expect("checked");
                let fd = sys_private_node(&sg, major, minor).map_err(|e| {
                    no_sg(format!(
                        "{} is missing and a private node could not be made ({e}): create it with `mknod {} c {major} {minor}` (or let udev recreate /dev)",
                        sg.display(),
                        sg.display()
                    ))
                })?;
                info!(
                    "{}: {} is missing from /dev: using a private node for {major}:{minor}",
                    info.dev.display(),
                    sg.display()
                );
                (fd, true)
            }
            Err(errno) => {
                return Err(Error::Open { dev: sg, errno });
            }
        };
        if let Err(why) = check_char_dev(&fd, want) {
            return Err(no_sg(format!(
                "{} {why}: fix /dev (let udev recreate it) before fencing with this disk",
                sg.display()
            )));
        }
        Ok(ScsiPath {
            node: sg,
            private_node,
            info,
            channel: SgChannel::new(fd),
            reg: exec::Registration::default(),
            opts,
        })
    }

    /// Sends one command and waits for its completion without blocking other futures (see
    /// [`crate::exec`]); gives up at the path's command deadline: the command's timeout plus
    /// a second, never past `deadline`.
    async fn send(
        &mut self,
        cmd: &'static str,
        cdb: &[u8],
        xfer: Transfer<'_>,
        deadline: Instant,
    ) -> Result<(Completion, Vec<u8>), Error> {
        let now = Instant::now();
        let late = || Error::Deadline {
            dev: self.info.dev.clone(),
            cmd,
        };
        if now >= deadline {
            return Err(late());
        }
        let timeout = self.opts.cmd_timeout.min(deadline - now);
        debug!(
            "{}: {cmd}: cdb [{}]{}",
            self.node.display(),
            hex(cdb),
            match xfer {
                Transfer::Out(b) => format!(" data-out [{}]", hex(b)),
                _ => String::new(),
            }
        );
        // A command the kernel has not finished a second after its own timeout is not going
        // to be answered in time: give up on this path rather than on the action.
        let cmd_deadline = deadline.min(now + timeout + Duration::from_secs(1));
        let io = |errno| Error::Io {
            dev: self.info.dev.clone(),
            cmd,
            errno,
        };
        let sys_err = |e: SysError| match e {
            SysError::Os(errno) => io(errno),
            SysError::Closed => late(),
            SysError::BadRequest => io(Errno::EINVAL),
        };
        self.channel.submit(cdb, xfer, timeout).map_err(sys_err)?;
        if let Some(fd) = self.channel.fd() {
            match exec::watch(fd, self.reg) {
                Ok(r) => self.reg = r,
                Err(e) => {
                    self.channel.abandon();
                    return Err(io(e));
                }
            }
        }
        let mut first = true;
        let got = std::future::poll_fn(|_| {
            let fd = self.channel.raw_fd();
            // right after the submit nothing can be there yet: no read for it
            if !std::mem::take(&mut first) && fd.is_some_and(exec::is_ready) {
                match self.channel.reap() {
                    Ok(Some(c)) => return Poll::Ready(Ok(c)),
                    Ok(None) => {}
                    Err(e) => return Poll::Ready(Err(sys_err(e))),
                }
            }
            if Instant::now() >= cmd_deadline {
                self.channel.abandon();
                return Poll::Ready(Err(late()));
            }
            exec::want(cmd_deadline);
            Poll::Pending
        })
        .await?;
        let c = &got.0;
        debug!(
            "{}: {cmd}: status 0x{:02x} host 0x{:02x} driver 0x{:02x} sense [{}] resid {} in {} ms",
            self.node.display(),
            c.status,
            c.host_status,
            c.driver_status,
            hex(&c.sense),
            c.resid,
            c.duration_ms
        );
        Ok(got)
    }

    /// Sends a command, retrying UNIT ATTENTION (see [`retry_unit_attention`]), and
    /// classifies the answer.
    async fn run(
        &mut self,
        cmd: &'static str,
        cdb: &[u8],
        xfer: Transfer<'_>,
        deadline: Instant,
    ) -> Result<(Reply, Completion, Vec<u8>), Error> {
        let dev = self.info.dev.clone();
        let retries = self.opts.ua_retries;
        retry_unit_attention(&dev, cmd, retries, async || {
            self.send(cmd, cdb, xfer, deadline).await
        })
        .await
    }

    async fn run_ok(
        &mut self,
        cmd: &'static str,
        cdb: &[u8],
        xfer: Transfer<'_>,
        deadline: Instant,
    ) -> Result<(Completion, Vec<u8>), Error> {
        let (reply, c, data) = self.run(cmd, cdb, xfer, deadline).await?;
        if reply.is_good() {
            Ok((c, data))
        } else {
            Err(Error::Failed {
                dev: self.info.dev.clone(),
                cmd,
                reply,
            })
        }
    }

    async fn data_in(
        &mut self,
        cmd: &'static str,
        cdb: &[u8],
        len: usize,
        deadline: Instant,
    ) -> Result<Vec<u8>, Error> {
        let (c, mut buf) = self.run_ok(cmd, cdb, Transfer::In(len), deadline).await?;
        let got = len.saturating_sub(usize::try_from(c.resid.max(0)).unwrap_or(0));
        buf.truncate(got);
        debug!(
            "{}: {cmd}: data-in [{}]",
            self.node.display(),
            hex(&buf[..got.min(128)])
        );
        Ok(buf)
    }

    fn parse_err(&self, cmd: &'static str) -> impl Fn(ParseError) -> Error + '_ {
        move |err| Error::Parse {
            dev: self.info.dev.clone(),
            cmd,
            err,
        }
    }

    /// `TEST UNIT READY`: returns the raw reply (NOT READY is an answer, not an error).
    pub async fn test_unit_ready(&mut self, deadline: Instant) -> Result<Reply, Error> {
        Ok(self
            .run(
                "TEST UNIT READY",
                &cdb::test_unit_ready(),
                Transfer::None,
                deadline,
            )
            .await?
            .0)
    }

    /// `INQUIRY` — standard data.
    pub async fn inquiry(&mut self, deadline: Instant) -> Result<Inquiry, Error> {
        let b = self
            .data_in("INQUIRY", &cdb::inquiry(None, 96), 96, deadline)
            .await?;
        parse::inquiry(&b).map_err(self.parse_err("INQUIRY"))
    }

    /// `INQUIRY` VPD page 0x80 — unit serial number.
    pub async fn serial(&mut self, deadline: Instant) -> Result<String, Error> {
        let cmd = "INQUIRY VPD 0x80";
        let b = self
            .data_in(cmd, &cdb::inquiry(Some(0x80), 252), 252, deadline)
            .await?;
        parse::vpd_serial(&b).map_err(self.parse_err(cmd))
    }

    /// `INQUIRY` VPD page 0x83 — the logical unit's designator.
    pub async fn lu_id(&mut self, deadline: Instant) -> Result<LuId, Error> {
        let cmd = "INQUIRY VPD 0x83";
        let b = self
            .data_in(cmd, &cdb::inquiry(Some(0x83), 1024), 1024, deadline)
            .await?;
        parse::vpd_lu_id(&b).map_err(self.parse_err(cmd))
    }

    /// Every LU designator of VPD 0x83 and the unit serial number (VPD 0x80; `None` when
    /// the device rejects that page or reports an empty one).
    pub async fn identity(&mut self, deadline: Instant) -> Result<Identity, Error> {
        let cmd = "INQUIRY VPD 0x83";
        let b = self
            .data_in(cmd, &cdb::inquiry(Some(0x83), 1024), 1024, deadline)
            .await?;
        let designators = parse::vpd_designators(&b).map_err(self.parse_err(cmd))?;
        let serial = match self.serial(deadline).await {
            Ok(s) if !s.trim().is_empty() => Some(s),
            Ok(_) => None,
            Err(e) if e.is_unsupported() => None,
            Err(Error::Parse { .. }) => None,
            Err(e) => return Err(e),
        };
        Ok(Identity {
            designators,
            serial,
        })
    }

    /// `REPORT SUPPORTED OPERATION CODES` for one command (see [`parse::supported_opcode`]):
    /// what the device claims, to be compared with what it does.
    pub async fn claims_command(
        &mut self,
        opcode: u8,
        service_action: u16,
        deadline: Instant,
    ) -> Result<Option<bool>, Error> {
        let cmd = "REPORT SUPPORTED OPERATION CODES";
        let b = self
            .data_in(
                cmd,
                &cdb::report_supported_opcode(opcode, service_action, 64),
                64,
                deadline,
            )
            .await?;
        parse::supported_opcode(&b).map_err(self.parse_err(cmd))
    }

    async fn pr_in(
        &mut self,
        action: PrInAction,
        len: u16,
        deadline: Instant,
    ) -> Result<Vec<u8>, Error> {
        self.data_in(
            action.name(),
            &cdb::pr_in(action, len),
            usize::from(len),
            deadline,
        )
        .await
    }

    /// `PERSISTENT RESERVE IN / READ KEYS`.
    /// A truncated answer is read again with the length the device reported, never used.
    pub async fn read_keys(&mut self, deadline: Instant) -> Result<Keys, Error> {
        self.pr_in_whole(PrInAction::ReadKeys, deadline, parse::read_keys, |k| {
            k.truncated
        })
        .await
    }

    /// `PERSISTENT RESERVE IN / READ RESERVATION`.
    pub async fn read_reservation(
        &mut self,
        deadline: Instant,
    ) -> Result<ReservationStatus, Error> {
        let b = self
            .pr_in(PrInAction::ReadReservation, 24, deadline)
            .await?;
        parse::read_reservation(&b).map_err(self.parse_err("READ RESERVATION"))
    }

    /// `PERSISTENT RESERVE IN / REPORT CAPABILITIES`.
    pub async fn report_capabilities(&mut self, deadline: Instant) -> Result<Capabilities, Error> {
        let b = self
            .pr_in(PrInAction::ReportCapabilities, 8, deadline)
            .await?;
        parse::report_capabilities(&b).map_err(self.parse_err("REPORT CAPABILITIES"))
    }

    /// `PERSISTENT RESERVE IN / READ FULL STATUS`.
    /// A truncated answer is read again with the length the device reported, never used.
    pub async fn read_full_status(&mut self, deadline: Instant) -> Result<FullStatus, Error> {
        self.pr_in_whole(
            PrInAction::ReadFullStatus,
            deadline,
            parse::read_full_status,
            |s| s.truncated,
        )
        .await
    }

    /// A PR IN whose answer can be longer than the first allocation (see [`read_whole`]).
    async fn pr_in_whole<T>(
        &mut self,
        action: PrInAction,
        deadline: Instant,
        parse: fn(&[u8]) -> Result<T, ParseError>,
        truncated: fn(&T) -> bool,
    ) -> Result<T, Error> {
        let cmd = action.name();
        let node = self.node.clone();
        let dev = self.info.dev.clone();
        read_whole(
            async |len| {
                if len > PR_IN_FIRST {
                    debug!(
                        "{}: {cmd}: asking again for all {len} bytes",
                        node.display()
                    );
                }
                self.pr_in(action, len, deadline).await
            },
            parse,
            truncated,
        )
        .await?
        .map_err(|err| Error::Parse { dev, cmd, err })
    }

    /// `PERSISTENT RESERVE OUT` with the basic parameter list.
    pub async fn pr_out(
        &mut self,
        action: PrOutAction,
        pr_type: Option<PrType>,
        key: u64,
        sa_key: u64,
        deadline: Instant,
    ) -> Done {
        let params = cdb::pr_out_params(key, sa_key);
        self.run_ok(
            action.name(),
            &cdb::pr_out(action, pr_type),
            Transfer::Out(&params),
            deadline,
        )
        .await
        .map(|_| ())
    }

    /// `REGISTER`: `old` is the key this nexus has now (0 if none), `new` the one it gets
    /// (0 unregisters). Conflicts when `old` does not match the registration.
    pub async fn register(&mut self, old: u64, new: u64, deadline: Instant) -> Done {
        self.pr_out(PrOutAction::Register, None, old, new, deadline)
            .await
    }

    /// `REGISTER AND IGNORE EXISTING KEY`: this nexus gets `new`, whatever it had.
    pub async fn register_ignore(&mut self, new: u64, deadline: Instant) -> Done {
        self.pr_out(
            PrOutAction::RegisterAndIgnoreExistingKey,
            None,
            0,
            new,
            deadline,
        )
        .await
    }

    /// `RESERVE` with our registered `key`.
    pub async fn reserve(&mut self, key: u64, t: PrType, deadline: Instant) -> Done {
        self.pr_out(PrOutAction::Reserve, Some(t), key, 0, deadline)
            .await
    }

    /// `RELEASE` with our registered `key` and the type of the reservation held.
    pub async fn release(&mut self, key: u64, t: PrType, deadline: Instant) -> Done {
        self.pr_out(PrOutAction::Release, Some(t), key, 0, deadline)
            .await
    }

    /// `CLEAR`: drops every registration and the reservation.
    pub async fn clear(&mut self, key: u64, deadline: Instant) -> Done {
        self.pr_out(PrOutAction::Clear, None, key, 0, deadline)
            .await
    }

    /// `PREEMPT`: removes `victim`'s registrations (and its reservation, taking it as `t`).
    pub async fn preempt(&mut self, key: u64, victim: u64, t: PrType, deadline: Instant) -> Done {
        self.pr_out(PrOutAction::Preempt, Some(t), key, victim, deadline)
            .await
    }

    /// `PREEMPT AND ABORT`: as PREEMPT, and aborts the victim's queued commands.
    pub async fn preempt_abort(
        &mut self,
        key: u64,
        victim: u64,
        t: PrType,
        deadline: Instant,
    ) -> Done {
        self.pr_out(PrOutAction::PreemptAndAbort, Some(t), key, victim, deadline)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::VecDeque;

    /// A READ KEYS answer of `n` keys (1, 2, …) cut at allocation length `len`, as a device
    /// sends it: the header always says how much there is.
    fn keys_answer(n: u64, len: u16) -> Vec<u8> {
        let mut b = 7u32.to_be_bytes().to_vec();
        b.extend_from_slice(&u32::try_from(n * 8).unwrap().to_be_bytes());
        for k in 1..=n {
            b.extend_from_slice(&k.to_be_bytes());
        }
        b.truncate(usize::from(len));
        b
    }

    fn whole(answers: impl FnMut(u16) -> Vec<u8>) -> (Result<Keys, ParseError>, Vec<u16>) {
        let asked = RefCell::new(Vec::new());
        let mut answers = answers;
        let r = exec::block_on(read_whole(
            async |len| {
                asked.borrow_mut().push(len);
                Ok(answers(len))
            },
            parse::read_keys,
            |k| k.truncated,
        ))
        .unwrap();
        (r, asked.into_inner())
    }

    #[test]
    fn a_long_key_list_is_read_again_whole() {
        // 1023 keys fit in 8 KiB; 1500 do not: asked again with the length the device reported
        let (k, asked) = whole(|len| keys_answer(1023, len));
        assert_eq!((k.unwrap().keys.len(), asked), (1023, vec![8192]));
        let (k, asked) = whole(|len| keys_answer(1500, len));
        let k = k.unwrap();
        assert_eq!(k.keys.len(), 1500);
        assert_eq!(k.keys.last(), Some(&1500));
        assert!(!k.truncated);
        assert_eq!(asked, vec![8192, 8 + 1500 * 8]);
    }

    #[test]
    fn a_list_that_cannot_fit_is_an_error_never_a_cut_list() {
        // more than 65535 bytes: no allocation length can carry it
        let (k, asked) = whole(|len| keys_answer(9000, len));
        assert!(
            matches!(k, Err(ParseError::TooLong { len: 72008, .. })),
            "{k:?}"
        );
        assert_eq!(asked, vec![8192]);
        // a list that grows by 100 keys at every read never settles: an error after 3 tries
        let mut n = 1000;
        let (k, asked) = whole(move |len| {
            n += 100;
            keys_answer(n, len)
        });
        assert!(matches!(k, Err(ParseError::TooLong { .. })), "{k:?}");
        assert_eq!(asked.len(), 3);
    }

    fn done(status: u8, sense: &[u8]) -> Completion {
        Completion {
            status,
            host_status: 0,
            driver_status: if sense.is_empty() { 0 } else { 0x08 },
            sense: sense.to_vec(),
            resid: 0,
            duration_ms: 1,
        }
    }

    /// Fixed-format UNIT ATTENTION, ASC/ASCQ 2A/05 REGISTRATIONS PREEMPTED.
    const UA_PREEMPTED: [u8; 18] = [
        0x70, 0, 0x06, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x2a, 0x05, 0, 0, 0, 0,
    ];

    /// Two I_T nexuses of one LU with tgt's habit: when B preempts A, the "registrations
    /// preempted" attention is queued on B (the wrong nexus), none on A.
    struct Target {
        pending: [RefCell<VecDeque<Completion>>; 2],
        holder: RefCell<usize>,
    }

    impl Target {
        fn send(&self, nexus: usize, answer: impl Fn(usize) -> Completion) -> Completion {
            if let Some(ua) = self.pending[nexus].borrow_mut().pop_front() {
                return ua;
            }
            answer(*self.holder.borrow())
        }
    }

    #[test]
    fn unit_attention_on_the_wrong_nexus_is_retried_and_the_real_answer_used() {
        const A: usize = 0;
        const B: usize = 1;
        let t = Target {
            pending: [RefCell::new(VecDeque::new()), RefCell::new(VecDeque::new())],
            holder: RefCell::new(A),
        };
        // B preempts A; the attention meant for A lands on B
        *t.holder.borrow_mut() = B;
        t.pending[B]
            .borrow_mut()
            .push_back(done(0x02, &UA_PREEMPTED));
        let dev = Path::new("/dev/sdb");
        // a write-type command of A (the fenced nexus): no attention, the conflict itself
        let (o, _, _) = exec::block_on(retry_unit_attention(dev, "PR OUT", 3, async || {
            Ok((
                t.send(A, |h| done(if h == A { 0 } else { 0x18 }, &[])),
                Vec::new(),
            ))
        }))
        .unwrap();
        assert_eq!(o, Reply::ReservationConflict);
        // B's next command meets A's attention first, is sent again and gets its own answer
        let mut sent = 0;
        let (o, _, _) = exec::block_on(retry_unit_attention(
            dev,
            "READ RESERVATION",
            3,
            async || {
                sent += 1;
                Ok((t.send(B, |_| done(0, &[])), Vec::new()))
            },
        ))
        .unwrap();
        assert_eq!(o, Reply::Good);
        assert_eq!(sent, 2);
        assert!(t.pending[B].borrow().is_empty());
    }

    #[test]
    fn unit_attentions_beyond_the_retries_are_returned_not_taken_for_an_answer() {
        let mut sent = 0;
        let (o, _, _) = exec::block_on(retry_unit_attention(
            Path::new("/dev/sdb"),
            "READ KEYS",
            3,
            async || {
                sent += 1;
                Ok((done(0x02, &UA_PREEMPTED), Vec::new()))
            },
        ))
        .unwrap();
        assert!(matches!(o, Reply::UnitAttention(s) if s.asc == 0x2a && s.ascq == 0x05));
        assert_eq!(sent, 4);
        // a transport error ends the retries at once
        let r = exec::block_on(retry_unit_attention(
            Path::new("/dev/sdb"),
            "READ KEYS",
            3,
            async || {
                Err(Error::Deadline {
                    dev: PathBuf::from("/dev/sdb"),
                    cmd: "READ KEYS",
                })
            },
        ));
        assert!(matches!(r, Err(Error::Deadline { .. })));
    }

    #[test]
    fn missing_sg_driver_is_refused_with_the_fix() {
        let info = PathInfo {
            name: "sdz".into(),
            dev: PathBuf::from("/nonexistent/sdz"),
            sg: None,
            sg_devnum: None,
            hctl: Some("9:0:0:1".into()),
            devnum: None,
            state: None,
        };
        let e = ScsiPath::open(info, Options::default()).unwrap_err();
        assert!(e.is_no_sg_node());
        let msg = e.to_string();
        assert!(
            msg.contains("modprobe sg") && msg.contains("/nonexistent/sdz"),
            "{msg}"
        );
    }

    #[test]
    fn an_sg_node_that_is_no_character_device_is_refused() {
        let dir = std::env::temp_dir().join(format!("sg-persist-dev-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = dir.join("sg7");
        std::fs::write(&fake, b"").unwrap();
        let info = PathInfo {
            name: "sdz".into(),
            dev: dir.join("sdz"),
            sg: Some(fake.clone()),
            sg_devnum: Some("21:7".into()),
            hctl: None,
            devnum: None,
            state: None,
        };
        let e = ScsiPath::open(info, Options::default()).unwrap_err();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(e.is_no_sg_node(), "{e}");
        assert!(e.to_string().contains("not a character device"), "{e}");
    }
}
