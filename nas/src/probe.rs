//! Server probes over the network, each bounded by one deadline: they tell
//! "the server answers" apart from "the mount is wedged" without touching
//! the mount.
//!
//! - v3 (and v2): portmapper GETPORT for MOUNT and NFS, MOUNT MNT of the
//!   export (AUTH_SYS, privileged source port), NFS NULL and GETATTR of the
//!   export's root handle, then UMNT so the server's mount list stays clean.
//! - v4: NFS NULL on port 2049 and a COMPOUND (PUTROOTFH, GETATTR type),
//!   which goes through the server's NFSv4 request path, not only its RPC
//!   layer. Any well-formed COMPOUND reply counts as an answer.
//! - `survey`: what the server offers (portmapper table, exports, versions).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use nfs3_client::nfs3_types::mount::dirpath;
use nfs3_client::nfs3_types::nfs3::{GETATTR3args, Nfs3Result, nfs_fh3};
use nfs3_client::nfs3_types::rpc::{auth_unix, opaque_auth};
use nfs3_client::nfs3_types::xdr_codec::{self, Opaque, Pack, Unpack, Void};
use nfs3_client::rpc::RpcClient;
use nfs3_client::{MountClient, MountError, Nfs3Client, PortmapError, PortmapperClient, RpcError};

use crate::net::{Conn, block_on, connect_privileged, connect_tcp, remaining};
use crate::options::Version;

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
    pub steps: Vec<Step>,
    pub error: Option<ProbeError>,
}

impl Probe {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }

    pub fn total(&self) -> Duration {
        self.steps.iter().map(|s| s.rtt).sum::<Duration>()
            + self.error.as_ref().map(|e| e.elapsed).unwrap_or_default()
    }

    /// Run one step, recording its time; `Err` stops the probe.
    fn step<T>(
        &mut self,
        name: &str,
        f: impl FnOnce() -> Result<(T, String), (FailKind, String)>,
    ) -> Option<T> {
        let t0 = Instant::now();
        match f() {
            Ok((v, detail)) => {
                let rtt = t0.elapsed();
                log::debug!("probe {name}: {detail} ({} us)", rtt.as_micros());
                self.steps.push(Step {
                    name: name.to_string(),
                    rtt,
                    detail,
                });
                Some(v)
            }
            Err((kind, detail)) => {
                let elapsed = t0.elapsed();
                log::debug!("probe {name}: {kind}: {detail}");
                self.error = Some(ProbeError {
                    step: name.to_string(),
                    kind,
                    detail,
                    elapsed,
                });
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

fn mount_fail(e: MountError) -> (FailKind, String) {
    match e {
        MountError::Rpc(r) => rpc_fail(r),
        MountError::Denied(s) => (FailKind::Denied, format!("{s:?}")),
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

fn conn(addr: SocketAddr, privileged: bool, deadline: Instant) -> io::Result<Conn> {
    let s = if privileged {
        connect_privileged(addr, deadline)?
    } else {
        connect_tcp(addr, None, deadline)?
    };
    Ok(Conn::new(s, deadline))
}

fn run<T>(
    f: impl std::future::Future<Output = Result<T, (FailKind, String)>>,
) -> Result<T, (FailKind, String)> {
    block_on(f).map_err(io_fail)?
}

/// Probe an NFS v2/v3 server for `export`, all within `deadline`.
pub fn probe_v3(server: IpAddr, export: &str, version: Version, deadline: Instant) -> Probe {
    let mut p = Probe::default();
    let vers = version.rpc_version();
    let mount_vers = if vers == 2 { 1 } else { 3 };
    let pmap_addr = SocketAddr::new(server, PMAP_PORT);
    let Some(mut pmap) = p.step("portmapper connect", || {
        let c = conn(pmap_addr, false, deadline).map_err(io_fail)?;
        Ok((PortmapperClient::new(c), format!("{pmap_addr}")))
    }) else {
        return p;
    };
    let Some(mount_port) = p.step("portmapper GETPORT mount", || {
        let port = run(async {
            pmap.getport(MOUNT_PROGRAM, mount_vers, IPPROTO_TCP)
                .await
                .map_err(pmap_fail)
        })?;
        Ok((port, format!("mountd v{mount_vers} tcp port {port}")))
    }) else {
        return p;
    };
    let Some(nfs_port) = p.step("portmapper GETPORT nfs", || {
        let port = run(async {
            pmap.getport(NFS_PROGRAM, vers, IPPROTO_TCP)
                .await
                .map_err(pmap_fail)
        })?;
        Ok((port, format!("nfs v{vers} tcp port {port}")))
    }) else {
        return p;
    };
    drop(pmap);
    if vers == 2 {
        // nfs3_client speaks MOUNT v3 only; for v2 the NULL call is the probe.
        p.step("nfs NULL", || {
            let c = conn(SocketAddr::new(server, nfs_port), true, deadline).map_err(io_fail)?;
            let mut rpc = RpcClient::new(c);
            run(async {
                rpc.call::<Void, Void>(NFS_PROGRAM, 2, 0, &Void)
                    .await
                    .map_err(rpc_fail)
            })?;
            Ok(((), "nfs v2 answers".into()))
        });
        return p;
    }
    let mount_addr = SocketAddr::new(server, mount_port);
    let Some(mut mnt) = p.step("mount connect", || {
        let c = conn(mount_addr, true, deadline).map_err(io_fail)?;
        Ok((
            MountClient::new_with_auth(c, auth_sys(), opaque_auth::default()),
            format!("{mount_addr}"),
        ))
    }) else {
        return p;
    };
    let Some(fh) = p.step("mount MNT", || {
        let ok = run(async {
            mnt.mnt(dirpath(Opaque::borrowed(export.as_bytes())))
                .await
                .map_err(mount_fail)
        })?;
        let fh = ok.fhandle.0.to_vec();
        let n = fh.len();
        Ok((fh, format!("{export}: file handle of {n} bytes")))
    }) else {
        return p;
    };
    let nfs_addr = SocketAddr::new(server, nfs_port);
    let mut nfs = p.step("nfs connect", || {
        let c = conn(nfs_addr, true, deadline).map_err(io_fail)?;
        Ok((
            Nfs3Client::new_with_auth(c, auth_sys(), opaque_auth::default()),
            format!("{nfs_addr}"),
        ))
    });
    if let Some(nfs) = nfs.as_mut() {
        let answered = p.step("nfs NULL", || {
            run(async { nfs.null().await.map_err(rpc_fail) })?;
            Ok(((), "answers".into()))
        });
        if answered.is_some() {
            p.step("nfs GETATTR", || {
                let args = GETATTR3args {
                    object: nfs_fh3 {
                        data: Opaque::owned(fh),
                    },
                };
                let res = run(async { nfs.getattr(&args).await.map_err(rpc_fail) })?;
                match res {
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
            });
        }
    }
    // Best effort: keep the server's mount list clean, within the deadline.
    if remaining(deadline, "UMNT").is_ok() {
        let r = block_on(mnt.umnt(dirpath(Opaque::borrowed(export.as_bytes()))));
        if let Ok(Err(e)) | Err(e) = r.map_err(RpcError::Io) {
            log::debug!("probe: UMNT {export} failed: {e}");
        }
    }
    p
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

/// COMPOUND4args { tag "", minorversion 0, [PUTROOTFH, GETATTR {type}] }.
fn compound_args() -> Vec<u8> {
    const OP_PUTROOTFH: u32 = 24;
    const OP_GETATTR: u32 = 9;
    const FATTR4_TYPE_BIT: u32 = 1 << 1;
    [0u32, 0, 2, OP_PUTROOTFH, OP_GETATTR, 1, FATTR4_TYPE_BIT]
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .collect()
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
        10021 => "NFS4ERR_MINOR_VERS_MISMATCH (server wants 4.1+)".into(),
        10071 => "NFS4ERR_OP_NOT_IN_SESSION".into(),
        other => format!("nfsstat4 {other}"),
    }
}

/// Probe an NFSv4 server: NULL, then a COMPOUND, within `deadline`.
pub fn probe_v4(server: IpAddr, deadline: Instant) -> Probe {
    let mut p = Probe::default();
    let addr = SocketAddr::new(server, NFS_PORT);
    let Some(c) = p.step("nfs4 connect", || {
        let c = conn(addr, false, deadline).map_err(io_fail)?;
        Ok((c, format!("{addr}")))
    }) else {
        return p;
    };
    let mut rpc = RpcClient::new_with_auth(c, auth_sys(), opaque_auth::default());
    if p.step("nfs4 NULL", || {
        run(async {
            rpc.call::<Void, Void>(NFS_PROGRAM, 4, 0, &Void)
                .await
                .map_err(rpc_fail)
        })?;
        Ok(((), "answers".into()))
    })
    .is_none()
    {
        return p;
    }
    p.step("nfs4 COMPOUND", || {
        let reply = run(async {
            rpc.call::<RawArgs, RawReply>(NFS_PROGRAM, 4, 1, &RawArgs(compound_args()))
                .await
                .map_err(rpc_fail)
        })?;
        let status =
            be32(&reply.0, 0).ok_or((FailKind::Other, "COMPOUND reply too short".to_string()))?;
        Ok(((), format!("PUTROOTFH+GETATTR: {}", nfs4_status(status))))
    });
    p
}

/// Probe the way the configured version is mounted.
pub fn probe(server: IpAddr, export: &str, version: Version, deadline: Instant) -> Probe {
    if version.is_v4() {
        probe_v4(server, deadline)
    } else {
        probe_v3(server, export, version, deadline)
    }
}

/// What a server offers, for `probe SERVER [EXPORT]`.
#[derive(Debug, Clone)]
pub struct Survey {
    /// (program, version, protocol, port) from the portmapper, if it answered.
    pub portmap: Result<Vec<(u32, u32, u32, u32)>, String>,
    /// Exported paths from MOUNT EXPORT (v3), if mountd answered.
    pub exports: Result<Vec<String>, String>,
    /// NFS NULL on 2049 per version: Ok(rtt) or the failure.
    pub nfs_versions: Vec<(u32, Result<Duration, String>)>,
}

/// The earlier of `deadline` and `1/parts` of the time left before it, so
/// one silent service cannot use up the time of those asked after it.
fn slice(deadline: Instant, parts: u32) -> Instant {
    let left = deadline.saturating_duration_since(Instant::now());
    Instant::now() + left / parts.max(1)
}

/// Ask the server what it offers; all of it ends by `deadline`.
pub fn survey(server: IpAddr, deadline: Instant) -> Survey {
    let pmap_addr = SocketAddr::new(server, PMAP_PORT);
    let mut s = Survey {
        portmap: Err("not asked".into()),
        exports: Err("not asked".into()),
        nfs_versions: Vec::new(),
    };
    let until = slice(deadline, 4);
    s.portmap = (|| {
        let c = conn(pmap_addr, false, until).map_err(|e| e.to_string())?;
        let mut pm = PortmapperClient::new(c);
        let list = block_on(pm.dump())
            .map_err(|e| e.to_string())?
            .map_err(|e| rpc_fail(e).1)?;
        Ok(list
            .into_iter()
            .map(|m| (m.prog, m.vers, m.prot, m.port))
            .collect::<Vec<_>>())
    })();
    let mount_port = s.portmap.as_ref().ok().and_then(|list| {
        list.iter()
            .find(|m| m.0 == MOUNT_PROGRAM && m.1 == 3 && m.2 == IPPROTO_TCP)
            .and_then(|m| u16::try_from(m.3).ok())
    });
    let until = slice(deadline, 3);
    s.exports = match mount_port {
        None if s.portmap.is_err() => Err("not asked: the portmapper did not answer".into()),
        None => Err("no MOUNT v3 over TCP registered (NFSv4-only server?)".into()),
        Some(port) => (|| {
            let c = conn(SocketAddr::new(server, port), true, until).map_err(|e| e.to_string())?;
            let mut mc = MountClient::new_with_auth(c, auth_sys(), opaque_auth::default());
            let ex = block_on(mc.export())
                .map_err(|e| e.to_string())?
                .map_err(|e| rpc_fail(e).1)?;
            Ok(ex
                .into_inner()
                .into_iter()
                .map(|n| String::from_utf8_lossy(n.ex_dir.0.as_ref()).into_owned())
                .collect())
        })(),
    };
    for (vers, parts) in [(3u32, 2), (4, 1)] {
        let until = slice(deadline, parts);
        let t0 = Instant::now();
        let r = (|| {
            let c = conn(SocketAddr::new(server, NFS_PORT), vers == 3, until)
                .map_err(|e| e.to_string())?;
            let mut rpc = RpcClient::new(c);
            block_on(rpc.call::<Void, Void>(NFS_PROGRAM, vers, 0, &Void))
                .map_err(|e| e.to_string())?
                .map_err(|e| rpc_fail(e).1)?;
            Ok(t0.elapsed())
        })();
        s.nfs_versions.push((vers, r));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compound_args_layout() {
        let a = compound_args();
        assert_eq!(a.len(), 28);
        assert_eq!(be32(&a, 8), Some(2));
        assert_eq!(be32(&a, 12), Some(24));
        assert_eq!(be32(&a, 16), Some(9));
    }

    #[test]
    fn refused_port_is_classified_as_refused() {
        // Port 1 on loopback: nothing listens there.
        let deadline = Instant::now() + Duration::from_secs(2);
        let e = conn(SocketAddr::from(([127, 0, 0, 1], 1)), false, deadline).unwrap_err();
        assert_eq!(io_kind(&e), FailKind::Refused);
    }
}
