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
    resolve_devnum(
        input,
        nix::sys::stat::major(rdev),
        nix::sys::stat::minor(rdev),
        root,
    )
}

/// The identity of the LU behind path `name` as the kernel cached it at scan time (sysfs
/// `device/vpd_pg83` and `device/vpd_pg80`, raw VPD pages): no command is sent. `None` when
/// sysfs has no page 0x83 for it (an older kernel, a device that has none) or the page holds
/// no LU designator. Reads at most 4 KiB of each page.
pub fn sysfs_identity(name: &str, root: &SysRoot) -> Option<Identity> {
    let dev = root.sys.join("class/block").join(name).join("device");
    let page = |n: &str| -> Option<Vec<u8>> {
        use std::io::Read;
        let mut b = Vec::new();
        fs::File::open(dev.join(n))
            .ok()?
            .take(4096)
            .read_to_end(&mut b)
            .ok()?;
        Some(b)
    };
    let designators = parse::vpd_designators(&page("vpd_pg83")?).ok()?;
    let serial = page("vpd_pg80")
        .and_then(|b| parse::vpd_serial(&b).ok())
        .filter(|s| !s.trim().is_empty());
    Some(Identity {
        designators,
        serial,
    })
}

fn read_trim(p: &Path) -> Option<String> {
    fs::read_to_string(p).ok().map(|s| s.trim().to_string())
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

/// Resolves a block device given by its device number.
pub fn resolve_devnum(
    input: &Path,
    major: u64,
    minor: u64,
    root: &SysRoot,
) -> Result<Resolved, PathError> {
    let link = root.sys.join(format!("dev/block/{major}:{minor}"));
    let dir = fs::canonicalize(&link).map_err(|source| PathError::Sysfs {
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
            let d = root.sys.join("block").join(&n);
            paths.push(scsi_path(input, &n, &d, root)?);
        }
        return Ok(Resolved {
            input: input.to_path_buf(),
            topology: Topology::Multipath { map: name, alias },
            paths,
        });
    }
    let p = scsi_path(input, &name, &dir, root)?;
    Ok(Resolved {
        input: input.to_path_buf(),
        topology: Topology::Disk,
        paths: vec![p],
    })
}

fn scsi_path(input: &Path, name: &str, dir: &Path, root: &SysRoot) -> Result<PathInfo, PathError> {
    let not_scsi = || PathError::NotScsi {
        path: input.to_path_buf(),
        name: name.to_string(),
    };
    let hctl = first_entry(&dir.join("device/scsi_device")).ok_or_else(not_scsi)?;
    // Only direct-access (type 0) and zoned block (0x14) devices carry data we fence.
    if let Some(t) = read_trim(&dir.join("device/type"))
        && t != "0"
        && t != "20"
    {
        return Err(not_scsi());
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
    })
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
