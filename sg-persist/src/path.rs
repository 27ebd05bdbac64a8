//! From a name the admin wrote (`/dev/sdb`, `/dev/disk/by-id/...`, `/dev/dm-3`,
//! `/dev/mapper/mpatha`) to the SCSI disk paths of one logical unit, using sysfs only.
//!
//! Persistent reservations belong to I_T nexuses, so a multipath LU must be registered on
//! every underlying `sd` path; this module finds them (`/sys/block/dm-N/slaves`). It refuses
//! what cannot carry a reservation: partitions, non-SCSI disks, device-mapper devices that are
//! not multipath maps, and files that are not block devices. It sends nothing to any disk;
//! that the paths are one LU is confirmed by the caller with VPD page 0x83.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::parse::{self, Identity};

/// Where sysfs and device nodes are; injectable so tests can use fixture trees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysRoot {
    /// Usually `/sys`.
    pub sys: PathBuf,
    /// Usually `/dev`.
    pub dev: PathBuf,
}

impl Default for SysRoot {
    fn default() -> SysRoot {
        SysRoot {
            sys: PathBuf::from("/sys"),
            dev: PathBuf::from("/dev"),
        }
    }
}

/// One SCSI disk path (an `sd` device: one I_T nexus to the LU).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathInfo {
    /// Kernel name, e.g. `sdb`.
    pub name: String,
    /// Block node, e.g. `/dev/sdb`.
    pub dev: PathBuf,
    /// SCSI generic node, e.g. `/dev/sg1`, when the sg driver is loaded.
    pub sg: Option<PathBuf>,
    /// The sg node's device number as sysfs gives it (`major:minor`, e.g. `21:1`).
    pub sg_devnum: Option<String>,
    /// Host:channel:target:lun, e.g. `2:0:0:0`.
    pub hctl: Option<String>,
    /// The block device's number (`major:minor` as sysfs gives it, e.g. `8:16`).
    pub devnum: Option<String>,
    /// The SCSI device's state when it was resolved (`running`, `offline`, `blocked`, ...;
    /// see [`dead_state`]).
    pub state: Option<String>,
}

/// Whether the kernel sends no command to a SCSI device in `state` (offline, taken offline by
/// its transport, being deleted): a path in such a state is dead without a command. A
/// `blocked` device (a transport reconnecting) queues its commands and is tried.
pub fn dead_state(state: &str) -> bool {
    matches!(
        state,
        "offline" | "transport-offline" | "cancel" | "deleted" | "del"
    )
}

/// How the named device maps onto SCSI paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    /// A single SCSI disk.
    Disk,
    /// A dm-multipath map (`dm/uuid` starts with `mpath-`).
    Multipath {
        /// Kernel name, e.g. `dm-3`.
        map: String,
        /// Map name from `dm/name`, e.g. `mpatha`.
        alias: String,
    },
}

/// The result of resolving one device name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The name as given.
    pub input: PathBuf,
    /// Disk or multipath map.
    pub topology: Topology,
    /// Every SCSI path, sorted by name; never empty.
    pub paths: Vec<PathInfo>,
}

/// Why a device name cannot be used for persistent reservations.
#[derive(Debug)]
pub enum PathError {
    /// The name does not exist (or a link in it dangles).
    NotFound {
        /// The name as given.
        path: PathBuf,
        /// The error of stat(2).
        source: io::Error,
    },
    /// It exists but is not a block device.
    NotBlockDevice {
        /// The name as given.
        path: PathBuf,
    },
    /// It is a partition; reservations apply to the whole disk.
    Partition {
        /// The name as given.
        path: PathBuf,
        /// The whole disk's kernel name.
        disk: String,
    },
    /// A block device that is not a SCSI disk (virtio-blk, NVMe, loop, md, ...).
    NotScsi {
        /// The name as given.
        path: PathBuf,
        /// The kernel name of the device.
        name: String,
    },
    /// A device-mapper device that is not a multipath map (LVM, crypt, ...).
    NotMultipath {
        /// The name as given.
        path: PathBuf,
        /// The kernel name (`dm-N`).
        name: String,
        /// Its device-mapper uuid.
        uuid: String,
    },
    /// A multipath map with no paths at all.
    NoPaths {
        /// The name as given.
        path: PathBuf,
        /// The kernel name (`dm-N`).
        name: String,
    },
    /// sysfs could not be read.
    Sysfs {
        /// The sysfs file.
        path: PathBuf,
        /// The error reading it.
        source: io::Error,
    },
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::NotFound { path, source } => {
                write!(f, "{}: no such device ({source})", path.display())
            }
            PathError::NotBlockDevice { path } => write!(
                f,
                "{}: not a block device; give the disk's device node, e.g. /dev/sdb",
                path.display()
            ),
            PathError::Partition { path, disk } => write!(
                f,
                "{}: is a partition; reservations apply to the whole disk, use /dev/{disk}",
                path.display()
            ),
            PathError::NotScsi { path, name } => write!(
                f,
                "{}: {name} is not a SCSI disk; persistent reservations need a SCSI disk \
                 (Hyper-V shared VHDS or virtual Fibre Channel LUN on a SCSI controller)",
                path.display()
            ),
            PathError::NotMultipath { path, name, uuid } => write!(
                f,
                "{}: {name} is a device-mapper device but not a multipath map (uuid {uuid:?}); \
                 give the multipath device or the SCSI disk under it",
                path.display()
            ),
            PathError::NoPaths { path, name } => write!(
                f,
                "{}: multipath map {name} has no paths; check `multipath -ll`",
                path.display()
            ),
            PathError::Sysfs { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for PathError {}

/// Resolves a device name: follows links, checks it is a whole SCSI disk or a multipath map,
/// and lists its SCSI paths.
pub fn resolve(input: &Path, root: &SysRoot) -> Result<Resolved, PathError> {
    let (major, minor) = block_devnum(input)?;
    resolve_devnum(input, major, minor, root)
}

/// The identity of the LU behind path `name` as the kernel cached it at scan time (sysfs
/// `device/vpd_pg83` and `device/vpd_pg80`, raw VPD pages): no command is sent. `None` when
/// sysfs has no page 0x83 for it (an older kernel, a device that has none) or the page holds
/// no LU designator. Reads at most 4 KiB of each page.
pub fn sysfs_identity(name: &str, root: &SysRoot) -> Option<Identity> {
    let dev = root.sys.join("class/block").join(name).join("device");
    let page = |n: &str| read_page(&dev.join(n));
    let designators = parse::vpd_designators(&page("vpd_pg83")?).ok()?;
    let serial = page("vpd_pg80")
        .and_then(|b| parse::vpd_serial(&b).ok())
        .filter(|s| !s.trim().is_empty());
    Some(Identity {
        designators,
        serial,
    })
}

/// A raw sysfs attribute of at most `max` bytes: open, one read (sysfs hands a small
/// attribute over whole), close; a read that fills the buffer is continued.
fn read_attr(p: &Path, max: usize) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut f = fs::File::open(p).ok()?;
    let mut b = vec![0u8; max];
    let mut n = 0;
    while n < b.len() {
        match f.read(&mut b[n..]) {
            Ok(0) => break,
            Ok(k) => {
                n += k;
                // sysfs gives a whole attribute in one read: a short read is the end
                if n < max {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    b.truncate(n);
    Some(b)
}

/// A VPD page as the kernel cached it (at most 4 KiB).
fn read_page(p: &Path) -> Option<Vec<u8>> {
    read_attr(p, 4096)
}

/// A short text attribute (a state, a device number, a name), trimmed.
fn read_trim(p: &Path) -> Option<String> {
    read_attr(p, 256).map(|b| String::from_utf8_lossy(&b).trim().to_string())
}

fn first_entry(dir: &Path) -> Option<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.into_iter().next()
}

/// `link` followed once (one `readlink`): a relative target is taken from the link's
/// directory, its `..` removed lexically (sysfs links point at real directories).
fn follow(link: &Path) -> io::Result<PathBuf> {
    let target = fs::read_link(link)?;
    let mut out = PathBuf::new();
    for c in link
        .parent()
        .unwrap_or(Path::new("/"))
        .join(target)
        .components()
    {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    Ok(out)
}

/// `H:C:T:L` when `s` is one (four unsigned numbers).
fn hctl_word(s: &str) -> Option<&str> {
    let ok = s.split(':').count() == 4
        && s.split(':')
            .all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()));
    ok.then_some(s)
}

/// Resolves a block device given by its device number: one `readlink` of
/// `/sys/dev/block/MAJ:MIN` finds its sysfs directory (and, for a SCSI disk, its
/// `H:C:T:L`), then the few attributes that decide are read.
pub fn resolve_devnum(
    input: &Path,
    major: u64,
    minor: u64,
    root: &SysRoot,
) -> Result<Resolved, PathError> {
    let link = root.sys.join(format!("dev/block/{major}:{minor}"));
    let dir = follow(&link).map_err(|source| PathError::Sysfs {
        path: link.clone(),
        source,
    })?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if dir.join("partition").exists() {
        let disk = dir
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Err(PathError::Partition {
            path: input.to_path_buf(),
            disk,
        });
    }
    if let Some(uuid) = read_trim(&dir.join("dm/uuid")) {
        // multipathd names its maps "mpath-<wwid>"; a map made by hand with dmsetup may have
        // no uuid at all and is accepted when its paths are SCSI disks (the caller confirms
        // by VPD 0x83 that they are one LU). Any other owner (LVM-, CRYPT-, ...) is refused.
        if !uuid.is_empty() && !uuid.starts_with("mpath-") {
            return Err(PathError::NotMultipath {
                path: input.to_path_buf(),
                name,
                uuid,
            });
        }
        let alias = read_trim(&dir.join("dm/name")).unwrap_or_default();
        let slaves = dir.join("slaves");
        let mut names: Vec<String> = fs::read_dir(&slaves)
            .map_err(|source| PathError::Sysfs {
                path: slaves.clone(),
                source,
            })?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        if names.is_empty() {
            return Err(PathError::NoPaths {
                path: input.to_path_buf(),
                name,
            });
        }
        let mut paths = Vec::new();
        for n in names {
            let l = root.sys.join("block").join(&n);
            let d = follow(&l).unwrap_or(l);
            paths.push(scsi_path(input, &n, &d, root)?);
        }
        return Ok(Resolved {
            input: input.to_path_buf(),
            topology: Topology::Multipath { map: name, alias },
            paths,
        });
    }
    let mut p = scsi_path(input, &name, &dir, root)?;
    p.devnum = Some(format!("{major}:{minor}"));
    Ok(Resolved {
        input: input.to_path_buf(),
        topology: Topology::Disk,
        paths: vec![p],
    })
}

/// One SCSI disk path from its sysfs directory `dir` (`.../H:C:T:L/block/NAME` for a SCSI
/// disk): its `H:C:T:L` from that name (else `device/scsi_device`), its type (a direct-access
/// or zoned disk), its sg node and the device's state.
fn scsi_path(input: &Path, name: &str, dir: &Path, root: &SysRoot) -> Result<PathInfo, PathError> {
    let not_scsi = || PathError::NotScsi {
        path: input.to_path_buf(),
        name: name.to_string(),
    };
    let from_name = dir
        .parent()
        .filter(|b| b.file_name().is_some_and(|n| n == "block"))
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .and_then(hctl_word)
        .map(str::to_owned);
    let hctl = match from_name {
        Some(h) => h,
        None => first_entry(&dir.join("device/scsi_device")).ok_or_else(not_scsi)?,
    };
    // Only direct-access (type 0) and zoned block (0x14) devices carry data we fence.
    match read_trim(&dir.join("device/type")) {
        Some(t) if t != "0" && t != "20" => return Err(not_scsi()),
        None if !dir.join("device/scsi_device").exists() => return Err(not_scsi()),
        _ => {}
    }
    let sg_name = first_entry(&dir.join("device/scsi_generic"));
    let sg_devnum = sg_name
        .as_ref()
        .and_then(|n| read_trim(&dir.join("device/scsi_generic").join(n).join("dev")));
    let sg = sg_name.map(|n| root.dev.join(n));
    Ok(PathInfo {
        name: name.to_string(),
        dev: root.dev.join(name),
        sg,
        sg_devnum,
        hctl: Some(hctl),
        devnum: read_trim(&dir.join("dev")),
        state: read_trim(&dir.join("device/state")),
    })
}

impl Resolved {
    /// What [`Resolved::revalidate`] needs to find this resolution again without resolving
    /// anew: the input's device number, the topology, and per path its name, block and sg
    /// device numbers and sg node; with `serial`, the LU's unit serial number, which every
    /// path must still show. One line without tabs or newlines (`None` when a field has one,
    /// or a path lacks its numbers).
    pub fn record(&self, rdev: (u64, u64), serial: &str) -> Option<String> {
        let mut s = format!(
            "v1 {}:{} {} {}",
            rdev.0,
            rdev.1,
            match &self.topology {
                Topology::Disk => "disk".to_owned(),
                Topology::Multipath { map, alias } => format!("mp/{map}/{alias}"),
            },
            hex_str(serial)
        );
        for p in &self.paths {
            let sg = p.sg.as_ref()?.file_name()?.to_str()?;
            s += &format!(
                " {}/{}/{}/{}",
                p.name,
                p.devnum.as_deref()?,
                sg,
                p.sg_devnum.as_deref()?
            );
        }
        let clean = !s.contains(['\t', '\n', '|']) && s.split(' ').all(|w| !w.is_empty());
        clean.then_some(s)
    }

    /// The resolution `record` describes, when it still holds for `input` (checked cheaply:
    /// the input's device number; a multipath map's path names; per path, one `readlink` of
    /// its block device and one of its sg device, which must be one SCSI device, and that
    /// device's unit serial number from the kernel's VPD cache, which must be the recorded
    /// one), with each path's `H:C:T:L` and state read afresh. `None` when anything
    /// differs: the caller resolves anew.
    pub fn revalidate(
        input: &Path,
        rdev: (u64, u64),
        record: &str,
        root: &SysRoot,
    ) -> Option<Resolved> {
        let mut w = record.split(' ');
        if w.next()? != "v1" || w.next()? != format!("{}:{}", rdev.0, rdev.1) {
            return None;
        }
        let topology = match w.next()? {
            "disk" => Topology::Disk,
            t => {
                let mut m = t.strip_prefix("mp/")?.splitn(2, '/');
                Topology::Multipath {
                    map: m.next()?.to_owned(),
                    alias: m.next()?.to_owned(),
                }
            }
        };
        let serial = unhex_str(w.next()?)?;
        let mut paths = Vec::new();
        for p in w {
            let mut f = p.split('/');
            let (name, devnum, sg, sg_devnum) = (f.next()?, f.next()?, f.next()?, f.next()?);
            let bdir = follow(&root.sys.join("dev/block").join(devnum)).ok()?;
            let gdir = follow(&root.sys.join("dev/char").join(sg_devnum)).ok()?;
            // .../H:C:T:L/block/NAME and .../H:C:T:L/scsi_generic/SG: one SCSI device
            let sdev = bdir.parent()?.parent()?;
            if bdir.file_name()? != name
                || gdir.file_name()? != sg
                || gdir.parent()?.parent()? != sdev
            {
                return None;
            }
            let hctl = hctl_word(sdev.file_name()?.to_str()?)?.to_owned();
            // a unit serial number page: 4 bytes of header and at most 255 of serial
            let pg80 = read_attr(&sdev.join("vpd_pg80"), 260)?;
            if parse::vpd_serial(&pg80).ok()?.trim() != serial.trim() || serial.trim().is_empty() {
                return None;
            }
            paths.push(PathInfo {
                name: name.to_owned(),
                dev: root.dev.join(name),
                sg: Some(root.dev.join(sg)),
                sg_devnum: Some(sg_devnum.to_owned()),
                hctl: Some(hctl),
                devnum: Some(devnum.to_owned()),
                state: read_trim(&sdev.join("state")),
            });
        }
        if paths.is_empty() {
            return None;
        }
        match &topology {
            Topology::Disk => {
                if paths.len() != 1
                    || paths[0].devnum.as_deref() != Some(&format!("{}:{}", rdev.0, rdev.1))
                {
                    return None;
                }
            }
            Topology::Multipath { .. } => {
                let slaves = root
                    .sys
                    .join(format!("dev/block/{}:{}/slaves", rdev.0, rdev.1));
                let mut names: Vec<String> = fs::read_dir(slaves)
                    .ok()?
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                if names
                    .iter()
                    .map(String::as_str)
                    .ne(paths.iter().map(|p| p.name.as_str()))
                {
                    return None;
                }
            }
        }
        Some(Resolved {
            input: input.to_path_buf(),
            topology,
            paths,
        })
    }
}

fn hex_str(s: &str) -> String {
    if s.is_empty() {
        return "-".into();
    }
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex_str(s: &str) -> Option<String> {
    if s == "-" {
        return Some(String::new());
    }
    let b: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(b?).ok()
}

/// The device number of the block device `input` (one `stat`).
pub fn block_devnum(input: &Path) -> Result<(u64, u64), PathError> {
    let meta = fs::metadata(input).map_err(|source| PathError::NotFound {
        path: input.to_path_buf(),
        source,
    })?;
    if !meta.file_type().is_block_device() {
        return Err(PathError::NotBlockDevice {
            path: input.to_path_buf(),
        });
    }
    let rdev = meta.rdev();
    Ok((nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev)))
}

/// The unit serial number of the LU behind path `name` as the kernel cached it (sysfs
/// `device/vpd_pg80`); `None` when sysfs has no such page or it is empty.
pub fn sysfs_serial(name: &str, root: &SysRoot) -> Option<String> {
    let page = read_page(
        &root
            .sys
            .join("class/block")
            .join(name)
            .join("device/vpd_pg80"),
    )?;
    parse::vpd_serial(&page)
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// The relative target port of path `name` (see [`parse::vpd_relative_port`]), from the VPD
/// page 0x83 the kernel cached in sysfs; `None` when sysfs has no such page or it names no
/// port.
pub fn sysfs_relative_port(name: &str, root: &SysRoot) -> Option<u16> {
    let page = read_page(
        &root
            .sys
            .join("class/block")
            .join(name)
            .join("device/vpd_pg83"),
    )?;
    parse::vpd_relative_port(&page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct Fixture(PathBuf);

    impl Fixture {
        fn new(tag: &str) -> Fixture {
            let d =
                std::env::temp_dir().join(format!("sg-persist-path-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&d);
            fs::create_dir_all(d.join("sys/dev/block")).unwrap();
            fs::create_dir_all(d.join("sys/block")).unwrap();
            Fixture(d)
        }
        fn root(&self) -> SysRoot {
            SysRoot {
                sys: self.0.join("sys"),
                dev: self.0.join("dev"),
            }
        }
        fn disk(&self, name: &str, devnum: &str, hctl: Option<&str>, sg: Option<&str>) -> PathBuf {
            let d = self.0.join(format!("sys/devices/host/{name}/block/{name}"));
            fs::create_dir_all(d.join("device")).unwrap();
            if let Some(h) = hctl {
                fs::create_dir_all(d.join("device/scsi_device").join(h)).unwrap();
                fs::write(d.join("device/type"), "0\n").unwrap();
            }
            if let Some(s) = sg {
                fs::create_dir_all(d.join("device/scsi_generic").join(s)).unwrap();
            }
            symlink(&d, self.0.join("sys/dev/block").join(devnum)).unwrap();
            symlink(&d, self.0.join("sys/block").join(name)).unwrap();
            d
        }
        fn dm(&self, name: &str, devnum: &str, uuid: &str, slaves: &[&str]) {
            let d = self.0.join(format!("sys/devices/virtual/block/{name}"));
            fs::create_dir_all(d.join("dm")).unwrap();
            fs::create_dir_all(d.join("slaves")).unwrap();
            fs::write(d.join("dm/uuid"), format!("{uuid}\n")).unwrap();
            fs::write(d.join("dm/name"), "mpatha\n").unwrap();
            for s in slaves {
                symlink(self.0.join("sys/block").join(s), d.join("slaves").join(s)).unwrap();
            }
            symlink(&d, self.0.join("sys/dev/block").join(devnum)).unwrap();
        }
    }

    /// A SCSI disk laid out as the kernel does: `.../H:C:T:L/block/NAME` (with `device`
    /// pointing back at `H:C:T:L`) and `.../H:C:T:L/scsi_generic/SG`, reachable from
    /// `dev/block/MAJ:MIN` and `dev/char/MAJ:MIN` by relative links.
    fn scsi(
        f: &Fixture,
        name: &str,
        devnum: &str,
        hctl: &str,
        sg: &str,
        sgnum: &str,
        serial: &str,
    ) {
        let sdev =
            f.0.join(format!("sys/devices/platform/host/session/target/{hctl}"));
        let block = sdev.join("block").join(name);
        fs::create_dir_all(&block).unwrap();
        fs::create_dir_all(sdev.join("scsi_device").join(hctl)).unwrap();
        fs::create_dir_all(sdev.join("scsi_generic").join(sg)).unwrap();
        fs::write(
            sdev.join("scsi_generic").join(sg).join("dev"),
            format!("{sgnum}\n"),
        )
        .unwrap();
        fs::write(sdev.join("type"), "0\n").unwrap();
        fs::write(sdev.join("state"), "running\n").unwrap();
        let mut pg80 = vec![0, 0x80, 0, serial.len() as u8];
        pg80.extend_from_slice(serial.as_bytes());
        fs::write(sdev.join("vpd_pg80"), pg80).unwrap();
        fs::write(block.join("dev"), format!("{devnum}\n")).unwrap();
        symlink("../..", block.join("device")).unwrap();
        let rel = |from: &str| format!("../../devices/platform/host/session/target/{hctl}/{from}");
        symlink(
            rel(&format!("block/{name}")),
            f.0.join("sys/dev/block").join(devnum),
        )
        .unwrap();
        fs::create_dir_all(f.0.join("sys/dev/char")).unwrap();
        symlink(
            rel(&format!("scsi_generic/{sg}")),
            f.0.join("sys/dev/char").join(sgnum),
        )
        .unwrap();
        symlink(
            format!("../devices/platform/host/session/target/{hctl}/block/{name}"),
            f.0.join("sys/block").join(name),
        )
        .unwrap();
    }

    #[test]
    fn one_readlink_finds_the_disk_and_its_address() {
        let f = Fixture::new("readlink");
        scsi(&f, "sdb", "8:16", "2:0:0:1", "sg1", "21:1", "lkh-shared0");
        let r = resolve_devnum(Path::new("/dev/sdb"), 8, 16, &f.root()).unwrap();
        let p = &r.paths[0];
        assert_eq!(p.hctl.as_deref(), Some("2:0:0:1"));
        assert_eq!(p.sg_devnum.as_deref(), Some("21:1"));
        assert_eq!(p.devnum.as_deref(), Some("8:16"));
        assert_eq!(p.state.as_deref(), Some("running"));
        assert!(dead_state("offline") && dead_state("transport-offline") && !dead_state("blocked"));
    }

    #[test]
    fn a_recorded_resolution_is_revalidated_cheaply_and_refused_when_anything_moved() {
        let f = Fixture::new("revalidate");
        scsi(&f, "sdb", "8:16", "2:0:0:1", "sg1", "21:1", "lkh-shared0");
        scsi(&f, "sdc", "8:32", "3:0:0:1", "sg2", "21:2", "lkh-shared0");
        f.dm("dm-0", "253:0", "mpath-36001405abc", &["sdb", "sdc"]);
        let root = f.root();
        let input = Path::new("/dev/mapper/mpatha");
        let r = resolve_devnum(input, 253, 0, &root).unwrap();
        assert_eq!(r.paths.len(), 2);
        let rec = r.record((253, 0), "lkh-shared0").unwrap();
        assert!(!rec.contains(['\t', '\n', '|']), "{rec}");
        let again = Resolved::revalidate(input, (253, 0), &rec, &root).unwrap();
        assert_eq!(again, r);
        // another device number, another serial number: resolved anew
        assert_eq!(Resolved::revalidate(input, (253, 1), &rec, &root), None);
        let other = r.record((253, 0), "lkh-shared1").unwrap();
        assert_eq!(Resolved::revalidate(input, (253, 0), &other, &root), None);
        // the sg node now belongs to another SCSI device: refused
        let moved = rec.replace("sg1/21:1", "sg2/21:2");
        assert_eq!(Resolved::revalidate(input, (253, 0), &moved, &root), None);
        // a path taken out of the map: refused
        fs::remove_file(f.0.join("sys/devices/virtual/block/dm-0/slaves/sdc")).unwrap();
        assert_eq!(Resolved::revalidate(input, (253, 0), &rec, &root), None);
        // a single disk; its state is read afresh
        let d = resolve_devnum(Path::new("/dev/sdb"), 8, 16, &root).unwrap();
        let rec = d.record((8, 16), "lkh-shared0").unwrap();
        fs::write(
            f.0.join("sys/devices/platform/host/session/target/2:0:0:1/state"),
            "offline\n",
        )
        .unwrap();
        let again = Resolved::revalidate(Path::new("/dev/sdb"), (8, 16), &rec, &root).unwrap();
        assert_eq!(again.paths[0].state.as_deref(), Some("offline"));
        assert_eq!(
            Resolved::revalidate(Path::new("/dev/sdb"), (8, 32), &rec, &root),
            None
        );
        assert_eq!(
            sysfs_serial("sdb", &root),
            None,
            "no class/block in this fixture"
        );
    }

    #[test]
    fn identity_comes_from_the_kernels_vpd_cache() {
        let f = Fixture::new("vpd");
        f.disk("sdb", "8:16", Some("2:0:0:1"), None);
        let root = f.root();
        fs::create_dir_all(root.sys.join("class/block")).unwrap();
        symlink(
            f.0.join("sys/devices/host/sdb/block/sdb"),
            root.sys.join("class/block/sdb"),
        )
        .unwrap();
        assert_eq!(sysfs_identity("sdb", &root), None, "no page 0x83 cached");
        let dev = f.0.join("sys/devices/host/sdb/block/sdb/device");
        // NAA 6 (LU), then a relative target port designator (association 1, not the LU's)
        let mut pg83 = vec![0, 0x83, 0, 20, 0x01, 0x03, 0, 8];
        pg83.extend_from_slice(&[0x60, 0x01, 0x40, 0x5a, 0, 0, 0, 1]);
        pg83.extend_from_slice(&[0x01, 0x14, 0, 4, 0, 0, 0, 2]);
        fs::write(dev.join("vpd_pg83"), &pg83).unwrap();
        let id = sysfs_identity("sdb", &root).unwrap();
        assert_eq!(id.designators.len(), 1);
        assert_eq!(id.designators[0].to_string(), "naa.6001405a00000001");
        assert_eq!(id.serial, None);
        fs::write(dev.join("vpd_pg80"), b"\0\x80\0\x0blkh-shared0").unwrap();
        assert_eq!(
            sysfs_identity("sdb", &root).unwrap().serial.as_deref(),
            Some("lkh-shared0")
        );
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn scsi_disk_resolves_with_sg_node() {
        let f = Fixture::new("disk");
        f.disk("sdb", "8:16", Some("2:0:0:1"), Some("sg1"));
        let r = resolve_devnum(Path::new("/dev/sdb"), 8, 16, &f.root()).unwrap();
        assert_eq!(r.topology, Topology::Disk);
        assert_eq!(r.paths.len(), 1);
        assert_eq!(r.paths[0].name, "sdb");
        assert_eq!(r.paths[0].sg, Some(f.0.join("dev/sg1")));
        assert_eq!(r.paths[0].hctl.as_deref(), Some("2:0:0:1"));
    }

    #[test]
    fn partition_is_refused_naming_the_disk() {
        let f = Fixture::new("part");
        let d = f.disk("sdb", "8:16", Some("2:0:0:1"), None);
        fs::create_dir_all(d.join("sdb1")).unwrap();
        fs::write(d.join("sdb1/partition"), "1\n").unwrap();
        symlink(d.join("sdb1"), f.0.join("sys/dev/block/8:17")).unwrap();
        let e = resolve_devnum(Path::new("/dev/sdb1"), 8, 17, &f.root()).unwrap_err();
        assert!(matches!(&e, PathError::Partition { disk, .. } if disk == "sdb"));
        assert!(e.to_string().contains("use /dev/sdb"));
    }

    #[test]
    fn non_scsi_disk_is_refused() {
        let f = Fixture::new("virtio");
        f.disk("vda", "254:0", None, None);
        let e = resolve_devnum(Path::new("/dev/vda"), 254, 0, &f.root()).unwrap_err();
        assert!(matches!(e, PathError::NotScsi { .. }));
        assert!(e.to_string().contains("need a SCSI disk"));
    }

    #[test]
    fn multipath_lists_every_slave() {
        let f = Fixture::new("mpath");
        f.disk("sdc", "8:32", Some("3:0:0:0"), Some("sg2"));
        f.disk("sdb", "8:16", Some("2:0:0:0"), None);
        f.dm("dm-0", "253:0", "mpath-36001405abc", &["sdc", "sdb"]);
        let r = resolve_devnum(Path::new("/dev/mapper/mpatha"), 253, 0, &f.root()).unwrap();
        assert_eq!(
            r.topology,
            Topology::Multipath {
                map: "dm-0".into(),
                alias: "mpatha".into()
            }
        );
        let names: Vec<_> = r.paths.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["sdb", "sdc"]);
    }

    #[test]
    fn other_dm_and_empty_maps_are_refused() {
        let f = Fixture::new("lvm");
        f.dm("dm-1", "253:1", "LVM-abcdef", &[]);
        let e = resolve_devnum(Path::new("/dev/dm-1"), 253, 1, &f.root()).unwrap_err();
        assert!(matches!(e, PathError::NotMultipath { .. }));
        f.disk("sdd", "8:48", Some("4:0:0:0"), None);
        f.dm("dm-4", "253:4", "", &["sdd"]);
        let r = resolve_devnum(Path::new("/dev/dm-4"), 253, 4, &f.root()).unwrap();
        assert_eq!(r.paths.len(), 1);
        f.dm("dm-2", "253:2", "mpath-x", &[]);
        let e = resolve_devnum(Path::new("/dev/dm-2"), 253, 2, &f.root()).unwrap_err();
        assert!(matches!(e, PathError::NoPaths { .. }));
    }

    #[test]
    fn multipath_over_non_scsi_slave_is_refused() {
        let f = Fixture::new("mpvirtio");
        f.disk("vdb", "254:16", None, None);
        f.dm("dm-3", "253:3", "mpath-y", &["vdb"]);
        let e = resolve_devnum(Path::new("/dev/dm-3"), 253, 3, &f.root()).unwrap_err();
        assert!(matches!(e, PathError::NotScsi { name, .. } if name == "vdb"));
    }

    #[test]
    fn missing_and_non_block_inputs_are_refused() {
        let root = SysRoot::default();
        let e = resolve(Path::new("/nonexistent/sdz"), &root).unwrap_err();
        assert!(matches!(e, PathError::NotFound { .. }));
        let e = resolve(Path::new("/proc/self/status"), &root).unwrap_err();
        assert!(matches!(e, PathError::NotBlockDevice { .. }));
        let e = resolve(Path::new("/dev/null"), &root).unwrap_err();
        assert!(matches!(e, PathError::NotBlockDevice { .. }));
    }
}
