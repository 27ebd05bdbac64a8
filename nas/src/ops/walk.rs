//! MOUNTPOINT walked from `/` without following a link: what is there ([`MountPoint`]), made
//! when restore needs it, every flaw on the way a configuration error that names it.

use super::*;

/// What is at the mount point, walked from `/` without following a link ([`mount_point`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountPoint {
    /// It (or a directory above it) does not exist: restore makes it.
    Missing,
    /// A directory: its device and inode, and the mount it lies on or is the root of (`None`
    /// before Linux 5.8).
    Dir {
        dev: (u32, u32),
        ino: u64,
        mnt_id: Option<u64>,
    },
    /// Something other than a directory (a file, a device, a socket).
    Other,
}

fn walk_error(mount_point: &str, comps: &[CString], at: usize, e: libc::c_int) -> Error {
    let shown = comps[..=at].iter().fold(String::new(), |mut p, c| {
        p.push('/');
        p.push_str(&c.to_string_lossy());
        p
    });
    let parents: Vec<&CStr> = comps[..at].iter().map(CString::as_c_str).collect();
    // which it is: the directory above it was walked a moment ago
    let what = sys::walk_owned(&parents, None)
        .ok()
        .map(|d| (sys::stat_at(d.as_raw_fd(), &comps[at]), d));
    match (Errno::from_raw(e), what) {
        (Errno::ENOTDIR | Errno::ELOOP, Some((Ok(st), dir))) if st.kind == libc::S_IFLNK => {
            let to = nix::fcntl::readlinkat(&dir, comps[at].as_c_str())
                .map(|t| format!(" (to {})", t.to_string_lossy()))
                .unwrap_or_default();
            Error::new(
                ErrorKind::Config,
                format!(
                    "MOUNTPOINT={mount_point}: {shown} is a symbolic link{to}, which lkh-nas never follows in MOUNTPOINT (whoever can change the link would choose where root mounts the export): set MOUNTPOINT to the real path"
                ),
            )
        }
        (Errno::ENOTDIR | Errno::ELOOP, _) => Error::new(
            ErrorKind::Config,
            format!(
                "MOUNTPOINT={mount_point}: {shown} is not a directory: remove it or choose another MOUNTPOINT"
            ),
        ),
        (e, _) => Error::new(
            ErrorKind::Failed,
            format!(
                "MOUNTPOINT={mount_point}: cannot open {shown}: {}: check that root can reach it",
                e.desc()
            ),
        ),
    }
}

/// Walks `mount_point` from `/` the way mount and unmount do (every component opened without
/// following a symbolic link, `sys::walk`) and says what is at its end. A symbolic link
/// anywhere in the path, or a component above the last that is not a directory, is a
/// configuration error that names it. With `create`, missing directories are made (mode 0755)
/// on the way. Never asks an NFS server: directories above the mount point are looked up,
/// the mount point itself only looked at with `AT_STATX_DONT_SYNC` (it may be a dead mount).
pub fn mount_point(mount_point: &str, create: bool) -> Result<MountPoint, Error> {
    let comps = child::components(std::path::Path::new(mount_point))
        .map_err(|e| Error::new(ErrorKind::Config, e.to_string()))?;
    let Some((last, parents)) = comps.split_last() else {
        return Err(Error::new(
            ErrorKind::Config,
            "MOUNTPOINT=/ is not allowed: mount the export on a directory of its own",
        ));
    };
    let above: Vec<&CStr> = parents.iter().map(CString::as_c_str).collect();
    let dir = match sys::walk_owned(&above, create.then_some(0o755)) {
        Ok(d) => d,
        Err((_, libc::ENOENT)) => return Ok(MountPoint::Missing),
        Err((at, e)) => return Err(walk_error(mount_point, &comps, at, e)),
    };
    let mut st = sys::stat_at(dir.as_raw_fd(), last);
    if st == Err(libc::ENOENT) && create {
        match nix::sys::stat::mkdirat(
            &dir,
            last.as_c_str(),
            nix::sys::stat::Mode::from_bits_truncate(0o755),
        ) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => {
                return Err(Error::new(
                    ErrorKind::Failed,
                    format!("cannot create mount point {mount_point}: {}", e.desc()),
                ));
            }
        }
        log::info!("created mount point {mount_point}");
        st = sys::stat_at(dir.as_raw_fd(), last);
    }
    match st {
        Ok(st) if st.kind == libc::S_IFLNK => {
            Err(walk_error(mount_point, &comps, parents.len(), libc::ELOOP))
        }
        Ok(st) if st.kind == libc::S_IFDIR => Ok(MountPoint::Dir {
            dev: st.dev,
            ino: st.ino,
            mnt_id: st.mnt_id,
        }),
        Ok(_) => Ok(MountPoint::Other),
        Err(libc::ENOENT) => Ok(MountPoint::Missing),
        Err(e) => Err(walk_error(mount_point, &comps, parents.len(), e)),
    }
}
