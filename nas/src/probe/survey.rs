//! `survey`: what a server offers — the portmapper's table, MOUNT's export list, NFS NULL per
//! version — each asked within its share of the deadline, for `lkh-nas probe`.

use super::*;

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
        let list = block_on(
            async {
                let c = conn(pmap_addr, false, until).await?;
                Ok::<_, io::Error>(PortmapperClient::new(c).dump().await)
            },
            until,
        )
        .and_then(|r| r)
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
            let ex = block_on(
                async {
                    let c = conn(SocketAddr::new(server, port), true, until).await?;
                    let mut mc = RpcClient::new_with_auth(c, auth_sys(), opaque_auth::default());
                    Ok::<_, io::Error>(
                        mc.call::<Void, ExportList>(MOUNT_PROGRAM, 3, MOUNTPROC3_EXPORT, &Void)
                            .await,
                    )
                },
                until,
            )
            .and_then(|r| r)
            .map_err(|e| e.to_string())?
            .map_err(|e| rpc_fail(e).1)?;
            Ok(ex.0)
        })(),
    };
    for (vers, parts) in [(3u32, 2), (4, 1)] {
        let until = slice(deadline, parts);
        let t0 = Instant::now();
        let r = (|| {
            block_on(
                async {
                    let c = conn(SocketAddr::new(server, NFS_PORT), vers == 3, until).await?;
                    let mut rpc = RpcClient::new(c);
                    Ok::<_, io::Error>(rpc.call::<Void, Void>(NFS_PROGRAM, vers, 0, &Void).await)
                },
                until,
            )
            .and_then(|r| r)
            .map_err(|e| e.to_string())?
            .map_err(|e| rpc_fail(e).1)?;
            Ok(t0.elapsed())
        })();
        s.nfs_versions.push((vers, r));
    }
    s
}
