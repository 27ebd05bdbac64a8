//! Fetching and caching the parts a guest is made of.
//!
//! Everything lives under `<workspace>/target/vm-cache` (derived from this crate's manifest
//! directory, so it is shared by every `cargo test` process whatever `CARGO_TARGET_DIR` says):
//!
//! - host packages (`qemu-system-x86`, `busybox-static`, `sg3-utils`, ...) are installed with
//!   apt-get when missing (root only), by the one mechanism every test uses
//!   ([`crate::host::install`]);
//! - `kernel/<package>/`: the Debian `linux-image-*-amd64` package the `linux-image-amd64`
//!   metapackage points at, fetched with `apt-get download` and unpacked with `dpkg-deb -x`
//!   (never installed), plus `modules.dep` from `depmod` and the uncompressed ELF `vmlinux`
//!   cut out of the xz bzImage: QEMU boots it through the PVH entry, which saves the ~3 s the
//!   bzImage needs to decompress itself under TCG;
//! - `iscsi-root/`: open-iscsi's `iscsid`/`iscsiadm` unpacked from their packages (installing
//!   them would start a daemon on the host);
//! - `knfsd-root/`: the kernel NFS server's `rpc.nfsd`, `rpc.mountd`, `exportfs`, likewise;
//! - `tgt-root/`: tgt's `tgtd`/`tgtadm` (the second SCSI target) and the libraries it links,
//!   unpacked the same way;
//! - `base-<kver>-<hash>.cpio`: the base initramfs (busybox, kernel modules resolved from
//!   `modules.dep`, test tools with their shared libraries); a new build removes the ones
//!   untouched for an hour.
//!
//! Several test processes may prepare parts at once: one `flock` on `vm-cache/.lock` (taken
//! with a deadline) serialises the work, and every entry is built in a temporary directory and
//! renamed into place. The project binaries have a lock of their own (`.bins.lock`, see
//! [`super::bins`]), so a process that finds the parts ready does not wait for another one's
//! cargo build.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::VmError;
use super::cmd::{run, run_ok};
use super::cpio::Cpio;
use crate::host::{apt, is_root};

/// Kernel modules put into the base image (dependencies are added from `modules.dep`): what
/// the guest library loads (LIO fileio over iSCSI, sd/sg, dm-multipath round-robin, NFS,
/// virtio devices; `dummy`, the black hole a frozen knfsd's address is routed into).
const MODULES: &[&str] = &[
    "configfs",
    "target_core_mod",
    "target_core_file",
    "iscsi_target_mod",
    "iscsi_tcp",
    "crc32c_generic",
    "sd_mod",
    "sg",
    "dm_mod",
    "dm_multipath",
    "dm_round_robin",
    "sunrpc",
    "nfsv3",
    "nfsv4",
    "nfsd",
    "dummy",
    "virtio_pci",
    "virtio_net",
    "virtio_blk",
    "virtio_scsi",
];

/// Host programs copied into the base image with the shared libraries `ldd` lists.
const HOST_TOOLS: &[&str] = &[
    "/usr/bin/sg_persist",
    "/usr/bin/sg_inq",
    "/usr/bin/sg_dd",
    "/usr/bin/sg_turs",
    "/usr/bin/sg_readcap",
    "/usr/bin/sg_raw",
    "/usr/bin/sg_vpd",
    "/usr/bin/sg_luns",
    "/usr/bin/sg_rtpg",
    "/usr/bin/sg_opcodes",
    "/sbin/dmsetup",
];

/// Debian packages the harness needs on the host.
const HOST_PACKAGES: &[&str] = &[
    "qemu-system-x86",
    "busybox-static",
    "sg3-utils",
    "kmod",
    "xz-utils",
    "dmsetup",
    "iproute2",
    "nfs-ganesha",
    "nfs-ganesha-vfs",
    "rpcbind",
];

/// Packages unpacked (not installed) for the guest's iSCSI initiator.
const ISCSI_PACKAGES: &[&str] = &["open-iscsi", "libopeniscsiusr", "libisns0"];

/// The kernel NFS server's userland, unpacked (not installed: installing it would start a
/// server on the host) for the guest's knfsd (`tests/guest/lib/knfsd.sh`); rpcbind and the
/// shared libraries come from the host, which has them for nfs-ganesha.
const KNFSD_PACKAGES: &[&str] = &["nfs-kernel-server"];
/// What the guest runs from that tree (paths inside it), and from the host.
const KNFSD_TOOLS: &[&str] = &[
    "usr/sbin/rpc.nfsd",
    "usr/sbin/rpc.mountd",
    "usr/sbin/exportfs",
];
const KNFSD_HOST_TOOLS: &[&str] = &["/usr/sbin/rpcbind"];
/// Files libtirpc (rpcbind, rpc.mountd) reads.
const KNFSD_ETC: &[&str] = &["netconfig", "rpc"];
/// The second SCSI target beside LIO: tgt (userspace iSCSI target, Debian 1:1.0.85) and the
/// libraries `tgtd` links that a host may lack, unpacked (never installed) into `tgt-root/`;
/// `tgtd` and `tgtadm` go into the base image (see [`add_tgt`]).
const TGT_PACKAGES: &[&str] = &["tgt", "libaio1", "libibverbs1", "librdmacm1"];

/// Debian's multipath-tools (`mpathpersist`, the peer lkh-scsipr's benchmark compares with)
/// and the libraries it links that a host may lack, unpacked (never installed: installing it
/// would start multipathd on the host) into `mpath-root/`; not in the base image: the
/// benchmark adds it to its own guest ([`multipath_tools`]).
const MPATH_PACKAGES: &[&str] = &["multipath-tools", "liburcu8", "libaio1"];

/// Bump when the layout of the base image changes in a way the hash below does not see.
const BASE_FORMAT: &str = "lkh-base-1";

const APT_TIMEOUT: Duration = Duration::from_secs(900);
const STEP_TIMEOUT: Duration = Duration::from_secs(300);

/// Everything needed to boot a guest.
#[derive(Debug, Clone)]
pub struct Parts {
    /// `qemu-system-x86_64`.
    pub qemu: PathBuf,
    /// The PVH-bootable ELF kernel.
    pub kernel: PathBuf,
    /// Kernel release, e.g. `6.1.0-48-amd64`.
    pub kver: String,
    /// The cached base initramfs (uncompressed cpio).
    pub base: PathBuf,
    /// Whether KVM really works (else TCG).
    pub kvm: bool,
}

/// `<workspace>/target`, independent of `CARGO_TARGET_DIR`.
pub fn workspace_target() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests crate lives inside the workspace")
        .join("target")
}

/// `<workspace>/target/vm-cache`.
pub fn cache_dir() -> PathBuf {
    workspace_target().join("vm-cache")
}

/// Prepares (once per process) and returns the parts.
pub fn parts() -> Result<&'static Parts, VmError> {
    static PARTS: OnceLock<Result<Parts, VmError>> = OnceLock::new();
    PARTS.get_or_init(prepare).as_ref().map_err(Clone::clone)
}

/// Holds the cache lock until dropped.
pub(crate) struct CacheLock(#[allow(dead_code)] Flock<File>);

/// Takes the exclusive lock `vm-cache/<name>`, waiting at most `timeout`.
pub(crate) fn lock_cache(name: &str, timeout: Duration) -> Result<CacheLock, VmError> {
    let dir = cache_dir();
    fs::create_dir_all(&dir).map_err(|e| setup(format!("cannot create {}: {e}", dir.display())))?;
    let path = dir.join(name);
    let deadline = Instant::now() + timeout;
    let mut f =
        File::create(&path).map_err(|e| setup(format!("cannot open {}: {e}", path.display())))?;
    loop {
        match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(l) => return Ok(CacheLock(l)),
            Err((back, Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                f = back;
                thread::sleep(Duration::from_millis(200));
            }
            Err((_, e)) => {
                return Err(setup(format!(
                    "cannot lock {} (another test process holding it too long?): {e}",
                    path.display()
                )));
            }
        }
    }
}

fn setup(msg: String) -> VmError {
    VmError::Setup(msg)
}

fn prepare() -> Result<Parts, VmError> {
    let _lock = lock_cache(".lock", Duration::from_secs(1800))?;
    let cache = cache_dir();
    ensure_host_packages()?;
    let kdir = ensure_kernel(&cache)?;
    let kver = kernel_release(&kdir)?;
    let iscsi = ensure_unpacked(&cache, "iscsi-root", ISCSI_PACKAGES, |_, _| Ok(()))?;
    let knfsd = ensure_unpacked(&cache, "knfsd-root", KNFSD_PACKAGES, |_, _| Ok(()))?;
    let base = ensure_base(&cache, &kdir, &kver, &iscsi, &knfsd)?;
    let qemu = which("qemu-system-x86_64")
        .ok_or_else(|| VmError::Unavailable("qemu-system-x86_64 not found".into()))?;
    Ok(Parts {
        qemu,
        kernel: kdir.join(format!("boot/vmlinux-{kver}")),
        kver,
        base,
        kvm: kvm_usable(),
    })
}

/// KVM only when `/dev/kvm` is writable and the CPU has VMX/SVM: these machines have a
/// PVM-backed `/dev/kvm` a stock kernel cannot run on. `LKH_VM_ACCEL=tcg|kvm` overrides.
fn kvm_usable() -> bool {
    match std::env::var("LKH_VM_ACCEL").as_deref() {
        Ok("kvm") => return true,
        Ok("tcg") => return false,
        _ => {}
    }
    let writable = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    let flags = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    writable
        && flags
            .lines()
            .filter(|l| l.starts_with("flags"))
            .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"))
}

pub(crate) fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin"])
        .map(|d| Path::new(d).join(prog))
        .find(|p| p.is_file())
}

fn ensure_host_packages() -> Result<(), VmError> {
    crate::host::install("the VM test bed", HOST_PACKAGES).map_err(VmError::Unavailable)
}

/// The kernel package: `LKH_VM_KERNEL_PKG`, else what `linux-image-amd64` depends on.
fn kernel_package() -> Result<String, VmError> {
    if let Ok(p) = std::env::var("LKH_VM_KERNEL_PKG") {
        return Ok(p);
    }
    let ask = || -> Option<String> {
        let mut c = Command::new("apt-cache");
        c.args(["depends", "linux-image-amd64"]);
        let o = run(&mut c, STEP_TIMEOUT).ok()?;
        o.stdout_str()
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Depends: "))
            .find(|p| p.starts_with("linux-image-") && p.ends_with("-amd64"))
            .map(str::to_string)
    };
    if let Some(p) = ask() {
        return Ok(p);
    }
    if is_root() {
        let _ = apt(&["update"]);
        if let Some(p) = ask() {
            return Ok(p);
        }
    }
    Err(VmError::Unavailable(
        "cannot find the kernel package behind linux-image-amd64 (apt lists missing?)".into(),
    ))
}

fn ensure_kernel(cache: &Path) -> Result<PathBuf, VmError> {
    let pkg = match kernel_package() {
        Ok(p) => p,
        Err(e) => {
            // Offline but something cached: use it.
            let cached = fs::read_dir(cache.join("kernel")).ok().and_then(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path())
                    .find(|p| p.join(".ready").exists())
            });
            return cached.ok_or(e);
        }
    };
    ensure_unpacked(cache, &format!("kernel/{pkg}"), &[&pkg], |root, tmp| {
        let kver = kernel_release(root)?;
        run_ok(
            Command::new("depmod").arg("-b").arg(root).arg(&kver),
            STEP_TIMEOUT,
        )?;
        extract_vmlinux(
            &root.join(format!("boot/vmlinuz-{kver}")),
            &root.join(format!("boot/vmlinux-{kver}")),
            tmp,
        )
    })
}

/// `apt-get download PKG` into `dir` (after an `apt-get update` if the first try fails and we
/// are root); returns the .deb.
fn download(dir: &Path, pkg: &str) -> Result<PathBuf, VmError> {
    let fetch = || {
        let mut c = Command::new("apt-get");
        c.current_dir(dir).args(["-q", "download", pkg]);
        run_ok(&mut c, APT_TIMEOUT)
    };
    if fetch().is_err() && is_root() {
        let _ = apt(&["update"]);
        fetch().map_err(|e| VmError::Unavailable(format!("cannot download {pkg}: {e}")))?;
    }
    let prefix = format!("{pkg}_");
    fs::read_dir(dir)
        .map_err(|e| setup(format!("read {}: {e}", dir.display())))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            let n = p.file_name().unwrap_or_default().to_string_lossy();
            n.starts_with(&prefix) && n.ends_with(".deb")
        })
        .ok_or_else(|| setup(format!("apt-get download {pkg} left no .deb")))
}

fn kernel_release(kdir: &Path) -> Result<String, VmError> {
    let m = kdir.join("lib/modules");
    fs::read_dir(&m)
        .map_err(|e| setup(format!("no {}: {e}", m.display())))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .ok_or_else(|| setup(format!("{} is empty", m.display())))
}

/// Cuts the xz payload out of a bzImage and decompresses it to the ELF `vmlinux`.
fn extract_vmlinux(vmlinuz: &Path, out: &Path, tmp: &Path) -> Result<(), VmError> {
    let img = fs::read(vmlinuz).map_err(|e| setup(format!("read {}: {e}", vmlinuz.display())))?;
    let magic = b"\xfd7zXZ\x00";
    let off = img
        .windows(magic.len())
        .position(|w| w == magic)
        .ok_or_else(|| setup(format!("no xz payload in {}", vmlinuz.display())))?;
    let payload = tmp.join("payload.xz");
    fs::write(&payload, &img[off..]).map_err(|e| setup(format!("write payload: {e}")))?;
    // xz complains about the bytes after the stream; the ELF check below decides.
    let o = run(
        Command::new("xz")
            .args(["-dc", "--single-stream"])
            .arg(&payload),
        STEP_TIMEOUT,
    )?;
    if !o.stdout.starts_with(b"\x7fELF") {
        return Err(setup(format!("no ELF kernel in {}", vmlinuz.display())));
    }
    fs::write(out, &o.stdout).map_err(|e| setup(format!("write {}: {e}", out.display())))?;
    let _ = fs::remove_file(&payload);
    Ok(())
}

/// Downloads `pkgs` and unpacks them (never installs them) into `cache/<name>`, once: the tree
/// is built in a temporary directory, completed by `finish(root, tmp)` and renamed into place.
fn ensure_unpacked(
    cache: &Path,
    name: &str,
    pkgs: &[&str],
    finish: impl FnOnce(&Path, &Path) -> Result<(), VmError>,
) -> Result<PathBuf, VmError> {
    let dir = cache.join(name);
    if dir.join(".ready").exists() {
        return Ok(dir);
    }
    eprintln!("vm: fetching {}", pkgs.join(" "));
    let tmp = cache.join(format!(
        "tmp-{}-{}",
        name.replace('/', "-"),
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&tmp);
    let root = tmp.join("root");
    let r = (|| {
        mkdirs(&root)?;
        for p in pkgs {
            let deb = download(&tmp, p)?;
            run_ok(
                Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root),
                STEP_TIMEOUT,
            )?;
        }
        finish(&root, &tmp)?;
        fs::write(root.join(".ready"), pkgs.join(" "))
            .map_err(|e| setup(format!("marker: {e}")))?;
        mkdirs(dir.parent().expect("cache entry"))?;
        let _ = fs::remove_dir_all(&dir);
        fs::rename(&root, &dir).map_err(|e| setup(format!("rename {name}: {e}")))
    })();
    let _ = fs::remove_dir_all(&tmp);
    r.map(|()| dir)
}

fn ensure_base(
    cache: &Path,
    kdir: &Path,
    kver: &str,
    iscsi: &Path,
    knfsd: &Path,
) -> Result<PathBuf, VmError> {
    let mut h = DefaultHasher::new();
    (
        BASE_FORMAT,
        MODULES,
        HOST_TOOLS,
        kdir,
        include_str!("parts.rs"),
    )
        .hash(&mut h);
    let out = cache.join(format!("base-{kver}-{:016x}.cpio", h.finish()));
    if out.exists() {
        return Ok(out);
    }
    let t0 = Instant::now();
    let stage = cache.join(format!("tmp-stage-{}", std::process::id()));
    let _ = fs::remove_dir_all(&stage);
    let r = build_base(&stage, kdir, kver, iscsi, knfsd).and_then(|cpio| {
        let tmp = out.with_extension("cpio.tmp");
        fs::write(&tmp, cpio.finish()).map_err(|e| setup(format!("write base: {e}")))?;
        fs::rename(&tmp, &out).map_err(|e| setup(format!("rename base: {e}")))
    });
    let _ = fs::remove_dir_all(&stage);
    r?;
    eprintln!(
        "vm: built base initramfs {} in {:.1} s",
        out.display(),
        t0.elapsed().as_secs_f64()
    );
    prune_old_bases(cache, &out);
    Ok(out)
}

/// Each change to the harness makes a new base initramfs (about 30 MB); earlier ones are
/// removed once they have not been written for an hour (a run of an older checkout that
/// started just before may still be reading one).
fn prune_old_bases(cache: &Path, keep: &Path) {
    let Ok(dir) = fs::read_dir(cache) else {
        return;
    };
    for e in dir.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(3600));
        if path != keep && name.starts_with("base-") && name.ends_with(".cpio") && old {
            match fs::remove_file(&path) {
                Ok(()) => eprintln!("vm: removed old base initramfs {}", path.display()),
                Err(e) => eprintln!("vm: cannot remove old {}: {e}", path.display()),
            }
        }
    }
}

fn mkdirs(p: &Path) -> Result<(), VmError> {
    fs::create_dir_all(p).map_err(|e| setup(format!("mkdir {}: {e}", p.display())))
}

fn copy(from: &Path, to: &Path) -> Result<(), VmError> {
    if let Some(d) = to.parent() {
        mkdirs(d)?;
    }
    fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| setup(format!("copy {} -> {}: {e}", from.display(), to.display())))
}

fn build_base(
    stage: &Path,
    kdir: &Path,
    kver: &str,
    iscsi: &Path,
    knfsd: &Path,
) -> Result<Cpio, VmError> {
    let sym = |target: &str, link: &str| {
        std::os::unix::fs::symlink(target, stage.join(link))
            .map_err(|e| setup(format!("symlink {link}: {e}")))
    };
    for d in ["bin", "lib/x86_64-linux-gnu", "lib64", "usr", "etc"] {
        mkdirs(&stage.join(d))?;
    }
    // merged layout: the kernel's /sbin/modprobe and copied /usr/{s,}bin tools all land in /bin
    sym("bin", "sbin")?;
    sym("../bin", "usr/bin")?;
    sym("../bin", "usr/sbin")?;

    let busybox = Path::new("/bin/busybox");
    copy(busybox, &stage.join("bin/busybox"))?;
    let list = run_ok(Command::new(busybox).arg("--list"), STEP_TIMEOUT)?.stdout_str();
    for a in list
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox")
    {
        let _ = std::os::unix::fs::symlink("busybox", stage.join("bin").join(a));
    }

    // kernel modules in dependency order, with a modules.dep for the subset
    let modroot = kdir.join("lib/modules").join(kver);
    let dst = stage.join("lib/modules").join(kver);
    let mut seen = BTreeSet::new();
    for m in MODULES {
        let o = run_ok(
            Command::new("modprobe")
                .arg("-d")
                .arg(kdir)
                .args(["-S", kver, "--show-depends", m]),
            STEP_TIMEOUT,
        )?;
        for line in o.stdout_str().lines() {
            let mut w = line.split_whitespace();
            if w.next() != Some("insmod") {
                continue;
            }
            let Some(path) = w.next() else { continue };
            if !seen.insert(path.to_string()) {
                continue;
            }
            let rel = Path::new(path)
                .strip_prefix(&modroot)
                .map_err(|_| setup(format!("module {path} outside {}", modroot.display())))?;
            let target = dst.join(rel);
            let name = target.to_string_lossy().into_owned();
            if let Some(plain) = name.strip_suffix(".xz") {
                mkdirs(Path::new(plain).parent().expect("module dir"))?;
                let o = run_ok(Command::new("xz").arg("-dc").arg(path), STEP_TIMEOUT)?;
                fs::write(plain, o.stdout).map_err(|e| setup(format!("write {plain}: {e}")))?;
            } else {
                copy(Path::new(path), &target)?;
            }
        }
    }
    for f in [
        "modules.builtin",
        "modules.builtin.modinfo",
        "modules.order",
    ] {
        if modroot.join(f).exists() {
            copy(&modroot.join(f), &dst.join(f))?;
        }
    }
    run_ok(
        Command::new("depmod").arg("-b").arg(stage).arg(kver),
        STEP_TIMEOUT,
    )?;

    // test tools + shared libraries
    let mut tools: Vec<PathBuf> = HOST_TOOLS.iter().map(PathBuf::from).collect();
    tools.push(iscsi.join("sbin/iscsid"));
    tools.push(iscsi.join("sbin/iscsiadm"));
    tools.extend(KNFSD_TOOLS.iter().map(|t| knfsd.join(t)));
    tools.extend(KNFSD_HOST_TOOLS.iter().map(PathBuf::from));
    for t in &tools {
        install_tool(stage, t, iscsi)?;
    }

    let etc = |name: &str, text: &str| {
        let p = stage.join("etc").join(name);
        if let Some(d) = p.parent() {
            mkdirs(d)?;
        }
        fs::write(&p, text).map_err(|e| setup(format!("write {}: {e}", p.display())))
    };
    add_tgt(stage)?;
    etc(
        "passwd",
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )?;
    etc("group", "root:x:0:\nnogroup:x:65534:\n")?;
    etc("hosts", "127.0.0.1 localhost\n")?;
    etc(
        "nsswitch.conf",
        "passwd: files\ngroup: files\nhosts: files\nservices: files\nprotocols: files\n",
    )?;
    for f in ["services", "protocols"].iter().chain(KNFSD_ETC) {
        if Path::new("/etc").join(f).exists() {
            copy(&Path::new("/etc").join(f), &stage.join("etc").join(f))?;
        }
    }
    etc("iscsi/iscsid.conf", ISCSID_CONF)?;
    etc(
        "iscsi/initiatorname.iscsi",
        "InitiatorName=iqn.2026-01.test.lkh:default\n",
    )?;
    for d in [
        "proc",
        "sys",
        "dev",
        "tmp",
        "run",
        "root",
        "mnt",
        "var/lib/iscsi",
        "var/lib/nfs/v4recovery",
        "opt/lkh/bin",
    ] {
        mkdirs(&stage.join(d))?;
    }

    let mut cpio = Cpio::new();
    cpio.tree(stage, "/")
        .map_err(|e| setup(format!("pack {}: {e}", stage.display())))?;
    Ok(cpio)
}

/// iscsid is started by hand in the guest; short timeouts so a vanished LUN is noticed fast.
const ISCSID_CONF: &str = "\
iscsid.startup = /bin/true
node.startup = manual
node.session.timeo.replacement_timeout = 5
node.conn[0].timeo.login_timeout = 5
node.conn[0].timeo.logout_timeout = 5
node.conn[0].timeo.noop_out_interval = 0
node.conn[0].timeo.noop_out_timeout = 0
node.session.err_timeo.abort_timeout = 5
node.session.err_timeo.lu_reset_timeout = 10
node.session.err_timeo.tgt_reset_timeout = 10
node.session.initial_login_retry_max = 2
node.session.scan = auto
";

/// Copies `tool` into the stage's `bin/` with the shared libraries `ldd` lists for it: those
/// of the unpacked package tree `unpacked` (searched first) go into `lib/x86_64-linux-gnu`,
/// the host's keep their paths.
fn install_tool(stage: &Path, tool: &Path, unpacked: &Path) -> Result<(), VmError> {
    if !tool.exists() {
        return Err(setup(format!("{} missing on the host", tool.display())));
    }
    copy(
        tool,
        &stage.join("bin").join(tool.file_name().expect("tool name")),
    )?;
    let libpath = format!(
        "{0}/usr/lib/x86_64-linux-gnu:{0}/lib/x86_64-linux-gnu",
        unpacked.display()
    );
    let o = run_ok(
        Command::new("ldd")
            .arg(tool)
            .env("LD_LIBRARY_PATH", &libpath),
        STEP_TIMEOUT,
    )?;
    let text = o.stdout_str();
    if text.contains("not found") {
        return Err(setup(format!(
            "{}: libraries not found:\n{text}",
            tool.display()
        )));
    }
    for lib in text.split_whitespace().filter(|w| w.starts_with('/')) {
        let lib = Path::new(lib);
        let dest = if lib.starts_with(unpacked) {
            stage
                .join("lib/x86_64-linux-gnu")
                .join(lib.file_name().expect("lib name"))
        } else {
            stage.join(lib.strip_prefix("/").expect("absolute"))
        };
        if !dest.exists() {
            copy(lib, &dest)?;
        }
    }
    Ok(())
}

/// `mpathpersist` for a guest: (guest path, bytes) of the program, its plugins and every
/// shared library `ldd` lists for it and them (those of the unpacked packages first, then the
/// host's), under `/opt/mpath` (run it with `LD_LIBRARY_PATH=/opt/mpath/lib`) but for the
/// plugins, which go where libmultipath looks for them (`/lib/multipath`).
pub fn multipath_tools() -> Result<Vec<(String, Vec<u8>)>, VmError> {
    let _lock = lock_cache(".lock", Duration::from_secs(1800))?;
    let root = ensure_unpacked(&cache_dir(), "mpath-root", MPATH_PACKAGES, |_, _| Ok(()))?;
    let read = |p: &Path| fs::read(p).map_err(|e| setup(format!("read {}: {e}", p.display())));
    let mut out = vec![(
        "/opt/mpath/sbin/mpathpersist".to_owned(),
        read(&root.join("sbin/mpathpersist"))?,
    )];
    let plugins = root.join("lib/multipath");
    let mut objects = vec![root.join("sbin/mpathpersist")];
    for e in fs::read_dir(&plugins).map_err(|e| setup(format!("{}: {e}", plugins.display())))? {
        let p = e.map_err(|e| setup(e.to_string()))?.path();
        let name = p.file_name().expect("entry").to_string_lossy().into_owned();
        // where libmultipath looks for its checkers and prioritizers (compiled in)
        out.push((format!("/lib/multipath/{name}"), read(&p)?));
        objects.push(p);
    }
    let libpath = format!(
        "{0}/lib:{0}/usr/lib/x86_64-linux-gnu:{0}/lib/x86_64-linux-gnu",
        root.display()
    );
    let mut libs = BTreeSet::new();
    for o in &objects {
        let l = run_ok(
            Command::new("ldd").arg(o).env("LD_LIBRARY_PATH", &libpath),
            STEP_TIMEOUT,
        )?
        .stdout_str();
        for line in l.lines() {
            // "libfoo.so.1 => /path/libfoo.so.1 (0x...)"
            let mut w = line.split_whitespace();
            if let (Some(name), Some("=>"), Some(path)) = (w.next(), w.next(), w.next())
                && path.starts_with('/')
                && !name.starts_with("libc.so")
            {
                libs.insert((name.to_owned(), PathBuf::from(path)));
            }
        }
    }
    // glibc loads libgcc_s when a thread exits (mpathpersist runs one thread per path)
    libs.insert((
        "libgcc_s.so.1".to_owned(),
        PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
    ));
    for (name, path) in libs {
        out.push((format!("/opt/mpath/lib/{name}"), read(&path)?));
    }
    Ok(out)
}

/// `tgtd` and `tgtadm` from `tgt-root/` with the shared libraries `ldd` lists (those of the
/// unpacked packages first, then the host's).
fn add_tgt(stage: &Path) -> Result<(), VmError> {
    let root = ensure_unpacked(&cache_dir(), "tgt-root", TGT_PACKAGES, |_, _| Ok(()))?;
    for t in ["usr/sbin/tgtd", "usr/sbin/tgtadm"] {
        install_tool(stage, &root.join(t), &root)?;
    }
    Ok(())
}
