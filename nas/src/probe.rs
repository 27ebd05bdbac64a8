//! Server probes over the network, each bounded by one deadline: they tell
//! "the server answers" apart from "the mount is wedged" without touching
//! the mount.
//!
//! - v3 (and v2): portmapper GETPORT for MOUNT and NFS, MOUNT MNT of the
//!   export (AUTH_SYS, privileged source port), NFS NULL and GETATTR of the
//!   export's root handle, then UMNT so the server's mount list stays clean.
//!   Two conversations run at once on one thread (see `net`): portmapper →
//!   MOUNT, and portmapper → NFS NULL; GETATTR (which needs MOUNT's file
//!   handle) and UMNT follow together. Five round trips deep instead of nine.
//! - v4: NFS NULL on port 2049 and, at the same time on a second connection,
//!   a COMPOUND (PUTROOTFH, GETATTR type) of the configured minor version
//!   (VERSION=4: 4.2, then 4.1, then 4.0), which goes through the server's
//!   NFSv4 request path, not only its RPC layer. NFS4ERR_MINOR_VERS_MISMATCH
//!   is not an answer: the next minor version is tried, and when none is
//!   accepted the probe fails with what the server does offer. Any other
//!   well-formed reply counts (for 4.1+ without a session the server answers
//!   PUTROOTFH with NFS4ERR_OP_NOT_IN_SESSION, from its 4.1 request path).
//! - v3 with what an earlier probe learnt (`probe_v3_known`): NFS NULL and
//!   GETATTR of the export's root handle on the NFS port, beside MOUNT NULL on
//!   the MOUNT port: no portmapper, no MNT.
//! - `survey`: what the server offers (portmapper table, exports, versions).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use nfs3_client::nfs3_types::mount::{FHSIZE3, MNTNAMLEN, MNTPATHLEN, dirpath, mountstat3};
use nfs3_client::nfs3_types::nfs3::{GETATTR3args, Nfs3Result, nfs_fh3};
use nfs3_client::nfs3_types::rpc::{auth_unix, opaque_auth};
use nfs3_client::nfs3_types::xdr_codec::{self, Opaque, Pack, Unpack, Void};
use nfs3_client::rpc::RpcClient;
use nfs3_client::{Nfs3Client, PortmapError, PortmapperClient, RpcError};

use crate::net::{Conn, block_on, connect_privileged, connect_tcp, join, join_ok};
use crate::options::Version;

mod survey;

pub use survey::{Survey, survey};

pub const PMAP_PORT: u16 = 111;
pub const NFS_PORT: u16 = 2049;
pub const NFS_PROGRAM: u32 = 100_003;
pub const MOUNT_PROGRAM: u32 = 100_005;
const IPPROTO_TCP: u32 = 6;

/// Why a probe failed, in the terms an operator acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailKind {
    /// No answer before the deadline (server hung, frozen or unreachable).
    Timeout,
    /// Connection refused or reset: nothing listening, server down.
    Refused,
    /// The server answers but does not offer the program/version.
    Unavailable,
    /// The server refused us (export not found or not allowed).
    Denied,
    /// The server answers NFSv4 but not in the minor version asked for.
    Mismatch,
    /// The server sent a reply no ONC RPC server sends (a record larger than a probe can
    /// need, a length beyond the protocol's, a CALL where a REPLY belongs, bytes that do not
    /// decode): refused before anything is allocated from it.
    Malformed,
    /// Anything else (malformed reply, local error).
    Other,
}

impl fmt::Display for FailKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailKind::Timeout => "no answer",
            FailKind::Refused => "connection refused",
            FailKind::Unavailable => "not offered",
            FailKind::Denied => "denied",
            FailKind::Mismatch => "minor version not offered",
            FailKind::Malformed => "malformed reply",
            FailKind::Other => "failed",
        })
    }
}

/// One completed probe step with its round-trip time.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub rtt: Duration,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct ProbeError {
    pub step: String,
    pub kind: FailKind,
    pub detail: String,
    /// Time spent in the failing step.
    pub elapsed: Duration,
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} after {} ms ({})",
            self.step,
            self.kind,
            self.elapsed.as_millis(),
            self.detail
        )
    }
}

/// The steps that completed and, if one failed, why.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    /// In the order they started (steps of concurrent conversations interleave).
    pub steps: Vec<Step>,
    pub error: Option<ProbeError>,
    /// Wall time of the whole probe.
    pub elapsed: Duration,
    /// NFSv4 minor versions the server accepted / refused (NFS4ERR_MINOR_VERS_MISMATCH).
    pub v4_offered: Vec<u32>,
    pub v4_refused: Vec<u32>,
    /// v3: the export's root file handle (from MOUNT MNT) and the NFS and MOUNT
    /// ports (from the portmapper), for later probes that skip both.
    pub root_fh: Option<Vec<u8>>,
    pub nfs_port: Option<u16>,
    pub mount_port: Option<u16>,
    /// v3 with known handle and ports: why MOUNT did not answer while NFS did
    /// (new mounts would fail; the existing one works).
    pub mount_warning: Option<String>,
}

impl Probe {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }

    pub fn total(&self) -> Duration {
        self.elapsed
    }

    /// The highest NFSv4 minor version the server accepted.
    pub fn v4_minor(&self) -> Option<u32> {
        self.v4_offered.iter().copied().max()
    }

    /// Merge conversations run at once: all their steps by start time, and
    /// the failure that happened first.
    fn from_lanes(lanes: Vec<Lane>, started: Instant) -> Probe {
        let mut steps: Vec<(Instant, Step)> = Vec::new();
        let mut error: Option<(Instant, ProbeError)> = None;
        for lane in lanes {
            steps.extend(lane.steps);
            if let Some((at, e)) = lane.error
                && error.as_ref().is_none_or(|(first, _)| at < *first)
            {
                error = Some((at, e));
            }
        }
        let error = error.map(|(_, e)| e);
        steps.sort_by_key(|(t, _)| *t);
        Probe {
            steps: steps.into_iter().map(|(_, s)| s).collect(),
            error,
            elapsed: started.elapsed(),
            ..Probe::default()
        }
    }
}

/// One conversation of a probe: its steps, each timed, and why (and when) it stopped.
#[derive(Debug, Default)]
struct Lane {
    steps: Vec<(Instant, Step)>,
    error: Option<(Instant, ProbeError)>,
}

impl Lane {
    /// Run one step, recording its time; `None` (after recording why) stops
    /// the conversation.
    async fn step<T>(
        &mut self,
        name: &str,
        f: impl std::future::Future<Output = Result<(T, String), (FailKind, String)>>,
    ) -> Option<T> {
        let t0 = Instant::now();
        match f.await {
            Ok((v, detail)) => {
                let rtt = t0.elapsed();
                log::debug!("probe {name}: {detail} ({} us)", rtt.as_micros());
                let name = name.to_string();
                self.steps.push((t0, Step { name, rtt, detail }));
                Some(v)
            }
            Err((kind, detail)) => {
                let elapsed = t0.elapsed();
                log::debug!("probe {name}: {kind}: {detail}");
                let e = ProbeError {
                    step: name.to_string(),
                    kind,
                    detail,
                    elapsed,
                };
                self.error = Some((t0 + elapsed, e));
                None
            }
        }
    }
}

fn io_kind(e: &io::Error) -> FailKind {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => FailKind::Timeout,
        io::ErrorKind::ConnectionRefused
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::UnexpectedEof
        | io::ErrorKind::BrokenPipe => FailKind::Refused,
        io::ErrorKind::InvalidData => FailKind::Malformed,
        _ if e.raw_os_error() == Some(libc::EHOSTUNREACH)
            || e.raw_os_error() == Some(libc::ENETUNREACH) =>
        {
            FailKind::Timeout
        }
        _ => FailKind::Other,
    }
}

fn io_fail(e: io::Error) -> (FailKind, String) {
    (io_kind(&e), e.to_string())
}

fn rpc_fail(e: RpcError) -> (FailKind, String) {
    match e {
        RpcError::Io(io) => io_fail(io),
        RpcError::ProgUnavail | RpcError::ProcUnavail => (FailKind::Unavailable, e.to_string()),
        RpcError::ProgMismatch { low, high } => (
            FailKind::Unavailable,
            format!("version not offered (server speaks {low} to {high})"),
        ),
        RpcError::Auth(_) => (FailKind::Denied, e.to_string()),
        RpcError::Xdr(_)
        | RpcError::UnexpectedCall
        | RpcError::UnexpectedXid
        | RpcError::NotFullyParsed { .. }
        | RpcError::FragmentedReply => (FailKind::Malformed, e.to_string()),
        other => (FailKind::Other, other.to_string()),
    }
}

fn pmap_fail(e: PortmapError) -> (FailKind, String) {
    match e {
        PortmapError::Rpc(r) => rpc_fail(r),
        PortmapError::ProgramUnavailable => (
            FailKind::Unavailable,
            "program not registered with the portmapper".into(),
        ),
        other => (FailKind::Other, format!("{other:?}")),
    }
}

/// Reads one XDR word.
fn xdr_u32(input: &mut impl Read) -> xdr_codec::Result<u32> {
    u32::unpack(input).map(|(v, _)| v)
}

/// Reads a variable-length opaque of at most `max` bytes (its padding included). A longer
/// length is refused before anything is allocated: `nfs3_client`'s own decoder allocates
/// whatever length a reply claims.
fn xdr_opaque(input: &mut impl Read, max: usize) -> xdr_codec::Result<(Vec<u8>, usize)> {
    let len = xdr_u32(input)? as usize;
    if len > max {
        return Err(xdr_codec::Error::InvalidLength(len));
    }
    let padded = len.div_ceil(4) * 4;
    let mut buf = vec![0u8; padded];
    input.read_exact(&mut buf)?;
    buf.truncate(len);
    Ok((buf, 4 + padded))
}

/// The MOUNT v3 procedures a probe calls.
const MOUNTPROC3_MNT: u32 = 1;
const MOUNTPROC3_UMNT: u32 = 3;
const MOUNTPROC3_EXPORT: u32 = 5;

/// A `mountres3` read within the protocol's limits: the root file handle (at most `FHSIZE3`
/// bytes; the auth flavors that follow it are read and dropped), or the refusal.
enum MntReply {
    Ok(Vec<u8>),
    Refused(String),
}

impl Unpack for MntReply {
    fn unpack(input: &mut impl Read) -> xdr_codec::Result<(Self, usize)> {
        let status = xdr_u32(input)?;
        if status != 0 {
            let name = mountstat3::unpack(&mut io::Cursor::new(status.to_be_bytes()))
                .map_or_else(|_| format!("mountstat3 {status}"), |(m, _)| m.to_string());
            return Ok((MntReply::Refused(name), 4));
        }
        let (fh, n) = xdr_opaque(input, FHSIZE3)?;
        let flavors = xdr_u32(input)? as usize;
        // RFC 1813 names a handful of flavors; a longer list is no reply of a MOUNT server
        if flavors > 64 {
            return Err(xdr_codec::Error::InvalidLength(flavors));
        }
        for _ in 0..flavors {
            xdr_u32(input)?;
        }
        Ok((MntReply::Ok(fh), 4 + n + 4 + 4 * flavors))
    }
}

/// MOUNT's export list (`exports`), each path and group name read within the protocol's
/// limits (MNTPATHLEN, MNTNAMLEN); only the paths are kept.
struct ExportList(Vec<String>);

impl Unpack for ExportList {
    fn unpack(input: &mut impl Read) -> xdr_codec::Result<(Self, usize)> {
        // every turn reads a word of a record of at most MAX_RECORD bytes: this ends
        let (mut paths, mut read) = (Vec::new(), 4);
        while xdr_u32(input)? != 0 {
            let (dir, n) = xdr_opaque(input, MNTPATHLEN)?;
            read += n + 4;
            paths.push(String::from_utf8_lossy(&dir).into_owned());
            while xdr_u32(input)? != 0 {
                read += xdr_opaque(input, MNTNAMLEN)?.1 + 4;
            }
            read += 4;
        }
        Ok((ExportList(paths), read))
    }
}

/// MOUNT MNT of `export`: its root file handle, or why not.
async fn mount_mnt(rpc: &mut RpcClient<Conn>, export: &str) -> Result<Vec<u8>, (FailKind, String)> {
    let path = dirpath(Opaque::borrowed(export.as_bytes()));
    match rpc
        .call::<dirpath, MntReply>(MOUNT_PROGRAM, 3, MOUNTPROC3_MNT, &path)
        .await
        .map_err(rpc_fail)?
    {
        MntReply::Ok(fh) => Ok(fh),
        MntReply::Refused(why) => Err((FailKind::Denied, why)),
    }
}

/// AUTH_SYS as root, like the kernel client of a root-run mount.
fn auth_sys() -> opaque_auth<'static> {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "lkhelpers".to_string());
    opaque_auth::auth_unix(&auth_unix {
        stamp: std::process::id(),
        machinename: Opaque::owned(host.into_bytes()),
        uid: 0,
        gid: 0,
        gids: vec![],
    })
}

async fn conn(addr: SocketAddr, privileged: bool, deadline: Instant) -> io::Result<Conn> {
    let s = if privileged {
        connect_privileged(addr, deadline).await?
    } else {
        connect_tcp(addr, None, deadline).await?
    };
    Ok(Conn::new(s, deadline))
}

/// A connection as a probe step's result.
async fn connect_step(
    addr: SocketAddr,
    privileged: bool,
    deadline: Instant,
) -> Result<(Conn, String), (FailKind, String)> {
    let c = conn(addr, privileged, deadline).await.map_err(io_fail)?;
    Ok((c, addr.to_string()))
}

/// Drive a whole probe on this thread; an executor failure becomes the probe's error.
fn drive(
    f: impl std::future::Future<Output = Probe>,
    started: Instant,
    deadline: Instant,
) -> Probe {
    block_on(f, deadline).unwrap_or_else(|e| Probe {
        steps: Vec::new(),
        error: Some(ProbeError {
            step: "probe".into(),
            kind: io_kind(&e),
            detail: e.to_string(),
            elapsed: started.elapsed(),
        }),
        elapsed: started.elapsed(),
        ..Probe::default()
    })
}

/// portmapper → GETPORT of `prog`/`vers` over TCP, on a connection of its own.
async fn getport(
    lane: &mut Lane,
    pmap_addr: SocketAddr,
    prog: u32,
    vers: u32,
    label: &str,
    deadline: Instant,
) -> Option<u16> {
    let connect_name = if prog == MOUNT_PROGRAM {
        "portmapper connect".to_string()
    } else {
        format!("portmapper connect ({label})")
    };
    let c = lane
        .step(&connect_name, connect_step(pmap_addr, false, deadline))
        .await?;
    let mut pmap = PortmapperClient::new(c);
    lane.step(&format!("portmapper GETPORT {label}"), async {
        let port = pmap
            .getport(prog, vers, IPPROTO_TCP)
            .await
            .map_err(pmap_fail)?;
        Ok((port, format!("{label} v{vers} tcp port {port}")))
    })
    .await
}

/// Probe an NFS v2/v3 server for `export`, all within `deadline`.
pub fn probe_v3(server: IpAddr, export: &str, version: Version, deadline: Instant) -> Probe {
    let started = Instant::now();
    drive(
        probe_v3_async(server, export, version, deadline, started),
        started,
        deadline,
    )
}

async fn probe_v3_async(
    server: IpAddr,
    export: &str,
    version: Version,
    deadline: Instant,
    started: Instant,
) -> Probe {
    let vers = version.rpc_version();
    let pmap_addr = SocketAddr::new(server, PMAP_PORT);
    let (mut m, mut n) = (Lane::default(), Lane::default());
    if vers == 2 {
        // nfs3_client speaks MOUNT v3 only; for v2 the NULL call is the probe.
        async {
            let port = getport(&mut n, pmap_addr, NFS_PROGRAM, 2, "nfs", deadline).await?;
            let c = n
                .step(
                    "nfs connect",
                    connect_step(SocketAddr::new(server, port), true, deadline),
                )
                .await?;
            let mut rpc = RpcClient::new(c);
            n.step("nfs NULL", async {
                rpc.call::<Void, Void>(NFS_PROGRAM, 2, 0, &Void)
                    .await
                    .map_err(rpc_fail)?;
                Ok(((), "nfs v2 answers".into()))
            })
            .await
        }
        .await;
        return Probe::from_lanes(vec![n], started);
    }
    // MOUNT and NFS conversations at once: each asks the portmapper for its port.
    let mount = async {
        let port = getport(&mut m, pmap_addr, MOUNT_PROGRAM, 3, "mount", deadline).await?;
        let c = m
            .step(
                "mount connect",
                connect_step(SocketAddr::new(server, port), true, deadline),
            )
            .await?;
        let mut mnt = RpcClient::new_with_auth(c, auth_sys(), opaque_auth::default());
        let fh = m
            .step("mount MNT", async {
                let fh = mount_mnt(&mut mnt, export).await?;
                let len = fh.len();
                Ok((fh, format!("{export}: file handle of {len} bytes")))
            })
            .await?;
        Some((mnt, fh, port))
    };
    let nfs = async {
        let port = getport(&mut n, pmap_addr, NFS_PROGRAM, vers, "nfs", deadline).await?;
        let c = n
            .step(
                "nfs connect",
                connect_step(SocketAddr::new(server, port), true, deadline),
            )
            .await?;
        let mut nfs = Nfs3Client::new_with_auth(c, auth_sys(), opaque_auth::default());
        n.step("nfs NULL", async {
            nfs.null().await.map_err(rpc_fail)?;
            Ok(((), "answers".into()))
        })
        .await?;
        Some((nfs, port))
    };
    // The first failure decides the probe: the other conversation is dropped then.
    let Some(((mut mnt, fh, mount_port), (mut nfs, nfs_port))) = join_ok(mount, nfs).await else {
        return Probe::from_lanes(vec![m, n], started);
    };
    let getattr = getattr_step(&mut n, &mut nfs, fh.clone());
    // Best effort, beside GETATTR: keep the server's mount list clean.
    let umnt = async {
        let path = dirpath(Opaque::borrowed(export.as_bytes()));
        if let Err(e) = mnt
            .call::<dirpath, Void>(MOUNT_PROGRAM, 3, MOUNTPROC3_UMNT, &path)
            .await
        {
            log::debug!("probe: UMNT {export} failed: {e}");
        }
    };
    join(getattr, umnt).await;
    let mut p = Probe::from_lanes(vec![m, n], started);
    if p.ok() {
        (p.root_fh, p.nfs_port, p.mount_port) = (Some(fh), Some(nfs_port), Some(mount_port));
    }
    p
}

/// GETATTR of the export's root handle as a probe step.
async fn getattr_step<T: nfs3_client::io::AsyncRead + nfs3_client::io::AsyncWrite + Send>(
    n: &mut Lane,
    nfs: &mut Nfs3Client<T>,
    fh: Vec<u8>,
) -> Option<()> {
    n.step("nfs GETATTR", async {
        let args = GETATTR3args {
            object: nfs_fh3 {
                data: Opaque::owned(fh),
            },
        };
        match nfs.getattr(&args).await.map_err(rpc_fail)? {
            Nfs3Result::Ok(ok) => Ok((
                (),
                format!(
                    "export root: {:?} mode {:o}",
                    ok.obj_attributes.type_, ok.obj_attributes.mode
                ),
            )),
            Nfs3Result::Err((stat, _)) => Err((
                FailKind::Denied,
                format!("GETATTR of the export root: {stat:?}"),
            )),
        }
    })
    .await
}

/// What a full v3 probe learnt, for `probe_v3_known`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub root_fh: Vec<u8>,
    pub nfs_port: u16,
    pub mount_port: u16,
}

impl Known {
    pub fn from_probe(p: &Probe) -> Option<Known> {
        Some(Known {
            root_fh: p.root_fh.clone()?,
            nfs_port: p.nfs_port?,
            mount_port: p.mount_port?,
        })
    }
}

/// Probe a v3 server with what an earlier full probe learnt: NFS NULL and GETATTR of
/// the export's root handle on the NFS port, and beside it MOUNT NULL on the MOUNT
/// port, whose failure is only `mount_warning` (new mounts would fail; the existing
/// one works). No portmapper, no MNT. A failure other than a timeout (stale handle,
/// port changed) means the caller should run the full probe once.
pub fn probe_v3_known(server: IpAddr, version: Version, k: &Known, deadline: Instant) -> Probe {
    let started = Instant::now();
    let vers = version.rpc_version();
    let f = async {
        let (mut m, mut n) = (Lane::default(), Lane::default());
        let nfs = async {
            let c = n
                .step(
                    "nfs connect",
                    connect_step(SocketAddr::new(server, k.nfs_port), true, deadline),
                )
                .await?;
            let mut nfs = Nfs3Client::new_with_auth(c, auth_sys(), opaque_auth::default());
            n.step("nfs NULL", async {
                nfs.null().await.map_err(rpc_fail)?;
                Ok(((), format!("v{vers} answers on port {}", k.nfs_port)))
            })
            .await?;
            getattr_step(&mut n, &mut nfs, k.root_fh.clone()).await
        };
        let mount = async {
            let c = m
                .step(
                    "mount connect",
                    connect_step(SocketAddr::new(server, k.mount_port), false, deadline),
                )
                .await?;
            let mut rpc = RpcClient::new(c);
            m.step("mount NULL", async {
                rpc.call::<Void, Void>(MOUNT_PROGRAM, 3, 0, &Void)
                    .await
                    .map_err(rpc_fail)?;
                Ok(((), format!("answers on port {}", k.mount_port)))
            })
            .await
        };
        join(nfs, mount).await;
        let warning = m.error.take().map(|(_, e)| e.to_string());
        let mut p = Probe::from_lanes(vec![m, n], started);
        p.mount_warning = warning;
        p
    };
    drive(f, started, deadline)
}

/// Raw XDR bytes as call arguments.
struct RawArgs(Vec<u8>);

impl Pack for RawArgs {
    fn packed_size(&self) -> usize {
        self.0.len()
    }
    fn pack(&self, out: &mut impl Write) -> xdr_codec::Result<usize> {
        out.write_all(&self.0)?;
        Ok(self.0.len())
    }
}

/// The rest of a reply as raw XDR bytes.
struct RawReply(Vec<u8>);

impl Unpack for RawReply {
    fn unpack(input: &mut impl Read) -> xdr_codec::Result<(Self, usize)> {
        let mut v = Vec::new();
        let n = input.read_to_end(&mut v)?;
        Ok((RawReply(v), n))
    }
}

/// COMPOUND4args { tag "", minorversion, [PUTROOTFH, GETATTR {type}] }.
fn compound_args(minor: u32) -> Vec<u8> {
    const OP_PUTROOTFH: u32 = 24;
    const OP_GETATTR: u32 = 9;
    const FATTR4_TYPE_BIT: u32 = 1 << 1;
    [0u32, minor, 2, OP_PUTROOTFH, OP_GETATTR, 1, FATTR4_TYPE_BIT]
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .collect()
}

const NFS4ERR_MINOR_VERS_MISMATCH: u32 = 10021;

/// "4.1, 4.2" for minor versions [1, 2].
pub fn minors_text(minors: &[u32]) -> String {
    let mut m = minors.to_vec();
    m.sort_unstable();
    m.iter()
        .map(|m| format!("4.{m}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map(u32::from_be_bytes)
}

/// Name of an nfsstat4 code where it matters for a probe.
fn nfs4_status(s: u32) -> String {
    match s {
        0 => "NFS4_OK".into(),
        13 => "NFS4ERR_ACCESS".into(),
        10013 => "NFS4ERR_GRACE".into(),
        10016 => "NFS4ERR_WRONGSEC".into(),
        NFS4ERR_MINOR_VERS_MISMATCH => "NFS4ERR_MINOR_VERS_MISMATCH".into(),
        10071 => "NFS4ERR_OP_NOT_IN_SESSION".into(),
        other => format!("nfsstat4 {other}"),
    }
}

/// The minor versions to ask a COMPOUND in, best first, for `version`.
fn v4_minors(version: Version) -> Vec<u32> {
    version
        .candidates(None)
        .iter()
        .filter_map(|v| v.minor())
        .collect()
}

/// Probe an NFSv4 server within `deadline`: NULL and a COMPOUND, each on a
/// connection of its own, at once. The COMPOUND is asked in the minor versions
/// `version` allows, best first, until one is accepted; when none is, the other
/// minor versions are asked too, so the failure says what the server offers.
/// `all` asks every minor version (for `lkh-nas probe`: what does it offer?).
pub fn probe_v4(server: IpAddr, version: Version, all: bool, deadline: Instant) -> Probe {
    let started = Instant::now();
    let wanted = if all {
        vec![2, 1, 0]
    } else {
        v4_minors(version)
    };
    let mut offered = Vec::new();
    let mut refused = Vec::new();
    let f = async {
        let (mut a, mut b) = (Lane::default(), Lane::default());
        let addr = SocketAddr::new(server, NFS_PORT);
        let null = async {
            let c = a
                .step("nfs4 connect", connect_step(addr, false, deadline))
                .await?;
            let mut rpc = RpcClient::new_with_auth(c, auth_sys(), opaque_auth::default());
            a.step("nfs4 NULL", async {
                rpc.call::<Void, Void>(NFS_PROGRAM, 4, 0, &Void)
                    .await
                    .map_err(rpc_fail)?;
                Ok(((), "answers".into()))
            })
            .await
        };
        let compound = async {
            let c = b
                .step(
                    "nfs4 connect (compound)",
                    connect_step(addr, false, deadline),
                )
                .await?;
            let mut rpc = RpcClient::new_with_auth(c, auth_sys(), opaque_auth::default());
            let others = [2u32, 1, 0].into_iter().filter(|m| !wanted.contains(m));
            for minor in wanted.iter().copied().chain(others) {
                let extra = !wanted.contains(&minor);
                let name = format!("nfs4.{minor} COMPOUND");
                let status = b
                    .step(&name, async {
                        let reply = rpc
                            .call::<RawArgs, RawReply>(
                                NFS_PROGRAM,
                                4,
                                1,
                                &RawArgs(compound_args(minor)),
                            )
                            .await
                            .map_err(rpc_fail)?;
                        let status = be32(&reply.0, 0)
                            .ok_or((FailKind::Other, "COMPOUND reply too short".to_string()))?;
                        Ok((
                            status,
                            format!("PUTROOTFH+GETATTR: {}", nfs4_status(status)),
                        ))
                    })
                    .await?;
                if status == NFS4ERR_MINOR_VERS_MISMATCH {
                    refused.push(minor);
                } else {
                    offered.push(minor);
                    // the rest is only asked to say what the server offers instead
                    if !all && !extra {
                        break;
                    }
                }
            }
            if offered.iter().any(|m| wanted.contains(m)) {
                return Some(());
            }
            let t = Instant::now();
            let detail = if offered.is_empty() {
                format!(
                    "the server refuses every NFSv4 minor version ({})",
                    minors_text(&refused)
                )
            } else {
                format!(
                    "the server offers NFS {} but not {}",
                    minors_text(&offered),
                    minors_text(&wanted)
                )
            };
            b.error = Some((
                t,
                ProbeError {
                    step: "nfs4 COMPOUND".into(),
                    kind: FailKind::Mismatch,
                    detail,
                    elapsed: Duration::ZERO,
                },
            ));
            None
        };
        join_ok(null, compound).await;
        Probe::from_lanes(vec![a, b], started)
    };
    let mut p = drive(f, started, deadline);
    p.v4_offered = offered;
    p.v4_refused = refused;
    p
}

/// Probe the way the configured version is mounted.
pub fn probe(server: IpAddr, export: &str, version: Version, deadline: Instant) -> Probe {
    if version.is_v4() {
        probe_v4(server, version, false, deadline)
    } else {
        probe_v3(server, export, version, deadline)
    }
}

#[cfg(test)]
mod tests;
