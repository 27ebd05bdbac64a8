//! Boots a Debian kernel under QEMU with a busybox initramfs and runs one guest-side scenario
//! script, so the kits are tested against the real kernel paths they meet in a Hyper-V guest:
//! SCSI-3 persistent reservations on LIO over iSCSI, dm-multipath, NFS mounts.
//!
//! # Writing a VM test
//!
//! ```no_run
//! use tests::vm::{self, Vm};
//! use std::time::Duration;
//!
//! let vm = Vm::new("pr-roundtrip")
//!     .script(r#"
//!         shared_disk_setup a b            # one LU, one iSCSI nexus per node
//!         A=$(node_dev a); B=$(node_dev b)
//!         expect_rc a-register 0 sg_persist --out --register --param-sark=0xa "$A"
//!         sg_persist --in --read-keys "$B" | grep -q 0xa; check b-sees-a $?
//!     "#)
//!     .timeout(Duration::from_secs(60));
//! let Some(out) = vm::run_or_skip(&vm) else { return };
//! out.assert_all_passed();
//! ```
//!
//! [`Vm::run`] prepares the parts on first use (see [`mod@parts`]: apt packages, the Debian kernel,
//! the cached base initramfs under `<workspace>/target/vm-cache`), packs an overlay archive
//! with the scenario, the guest library (`tests/guest/lib/*.sh`), the project's static
//! binaries if asked for ([`Vm::project_bins`], see [`bins`]) and any extra files, boots QEMU
//! (TCG unless KVM really works), and returns an [`RunReport`] with the named checks.
//! QEMU is always killed: when the scenario ends, at the wall-clock limit, or on drop.
//! The console goes to `target/vm-cache/logs/<name>.console`; the `assert_*` methods print it
//! only when something failed.
//!
//! # The guest side
//!
//! `/init` mounts the usual filesystems, sources `/lib/lkh/lib.sh` and then the scenario (so
//! its functions are available without sourcing), and powers off. The scenario's exit status
//! is `rc` (0 when it runs to its end). PATH starts with `/opt/lkh/bin`, where the project
//! binaries are. Functions available to scenarios (see `tests/guest/lib/*.sh`):
//!
//! - results: `check NAME RC [DETAIL]` (PASS when RC is 0), `pass NAME`, `fail NAME DETAIL`,
//!   `expect_rc NAME WANT CMD...` (runs CMD, output to the console), `fatal MSG`,
//!   `have_bin NAME`, `host_request CMD...` (asks the host harness, e.g. the NFS server
//!   control; prints the reply, fails on error).
//! - shared disk (`lio.sh`, `iscsi.sh`, `disk.sh`): `shared_disk_setup NODE...` (default
//!   `a b`) exports one 64 MiB LU (`shared0`, unit serial `lkh-shared0`) from LIO over iSCSI
//!   on the guest loopback and logs each node in with its own initiator name
//!   (`iqn.2026-01.test.lkh:node-NODE`): one I_T nexus and one `/dev/sdX` per node.
//!   `node_dev NODE` prints that node's device, `node_sg NODE` its `/dev/sgN`, `node_iqn NODE`
//!   its initiator name. PREEMPT AND ABORT works (it hangs on tcm_loop, hence iSCSI).
//! - second target (`tgt.sh`): with `.append("lkh.target=tgt")` `shared_disk_setup` exports
//!   the LU from tgtd (LUN 1 of target `shared0`, same portals and names) instead of LIO;
//!   `lkh_target` prints `lio` or `tgt`; `tgt_start CTL PORTAL...` / `tgt_export CTL NAME
//!   SIZE_MB [SERIAL]` start another daemon and LU (same designators as the first: tgt builds
//!   them from target id and LUN; like iscsid, tgtd is no child of the scenario's shell, so a
//!   plain `wait` there does not wait for it); `tgt_freeze`/`tgt_thaw CTL` (SIGSTOP/SIGCONT; `apd_begin`
//!   and `apd_end` do this on tgt). tgt has no READ FULL STATUS: `pr_holder` maps the holder's
//!   key to a node through the nodes' `node.key` files there.
//! - multipath: `mpath_setup NODE` adds a second path (second portal, same initiator name) and
//!   builds `/dev/mapper/mpath-NODE` with `dmsetup` (round-robin, I/O fails when all paths
//!   are down); `node_paths NODE`, `mpath_status NODE`, `path_down NODE 0|1` (SCSI device
//!   offline), `path_up NODE 0|1` (back + reinstated).
//! - WWPN flip: `node_flip NODE NEW_IQN` logs the node out, renames its initiator and logs in
//!   again (new I_T nexus, old registrations stay with the old name); prints the new device.
//! - All Paths Down: `apd_begin` / `apd_end` disable / re-enable the target portal group:
//!   after the 5 s replacement timeout every command fails; after `apd_end` the sessions
//!   log back in by themselves within a few seconds.
//! - no PR support: attach [`Disk::VirtioBlk`] or [`Disk::ScsiHd`]; `nopr_disk virtio|scsi`
//!   prints the device (`/dev/vdX`: no SCSI; QEMU `scsi-hd`: PR commands rejected).
//! - NFS (`nfs.sh`, with [`Vm::nfs`] and an [`NfsServer`]): `nfs_net_up`,
//!   `nfs_mount 3|4|4.1 MOUNTPOINT [EXTRA_OPTS]` (server 10.0.2.2, export `/export`,
//!   hard, timeo=10, retrans=2, actimeo=0; `nfs_opts` prints the options),
//!   `nfs_server stop|kill|freeze|thaw|start|restart|status`; for lkh-nas scenarios `conf TAG
//!   KEY=VALUE…`, `nas NAME WANT ACTION -t TAG` (exit status checked, time in `NAS_ELAPSED`),
//!   `bounded NAME` (within `$T` + 1 s), `mounted PATH`.
//! - kernel NFS server in the guest (`knfsd.sh`, no host server needed): `knfsd_start
//!   all|v4only|v41only|no42` serves a tmpfs `/export` on 127.0.0.1 and `$KNFSD_ADDR`
//!   (192.0.2.1, on lo): v3+v4 with rpcbind and MOUNT on 20048, v4 only (no rpcbind, no MOUNT
//!   on the network), 4.1+ only, 4.0/4.1 only; `knfsd_stop` / `knfsd_nfsd_start` (threads to 0
//!   and back: connections refused), `knfsd_mountd_kill` / `knfsd_mountd_start`,
//!   `knfsd_freeze` / `knfsd_thaw` (`$KNFSD_ADDR` removed and added back: nothing answers, hard
//!   mounts hang; kernel threads ignore SIGSTOP), `knfsd_stop_all` (before another mode).
//! - nodes (`node.sh`): `on_node NODE CMD...` runs CMD as cluster node NODE (own hostname
//!   `node-NODE` in a private UTS namespace, `LKHELPERS_CONF_DIR=/etc/lkhelpers/node-NODE`,
//!   `LKHELPERS_RUN_DIR=/run/lkhelpers/node-NODE`); `node_conf NODE TAG KEY=VALUE...` writes
//!   that node's `TAG.conf`; observers: `pr_holder DEV` (holder's IQN or `none`),
//!   `pr_keys DEV` (both ask again when the answer is a UNIT ATTENTION).
//! - misc: `say TEXT` (narration, passed to [`Vm::on_line`]), `note TEXT`, `run CMD...`, `retry N CMD...` (0.2 s apart), `uptime_s`,
//!   `cmdline_arg NAME` (reads `NAME=value` set with [`Vm::append`]).
//!
//! Self-tests of the test bed showing all of it: `tests/tests/bed_pr_vm.rs`, `bed_paths_vm.rs`,
//! `bed_nfs_vm.rs` with their scenarios `tests/guest/bed_*.sh` (the map: `tests/README.md`). Environment: `LKH_VM_ACCEL=tcg|kvm` forces the
//! accelerator, `LKH_VM_KERNEL_PKG` pins the kernel package, `LKH_VM_REQUIRED=1` (or `CI`)
//! turns "QEMU unavailable" skips into failures.
//!
//! Guest output ends up in the console log; `CHECK` lines travel over a second serial port
//! (a host socket) so kernel messages cannot garble them.

pub mod bins;
pub(crate) mod cmd;
pub mod cpio;
pub mod nfs;
pub mod parts;
mod qemu;

use std::fmt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

pub use bins::{PROJECT_BINS, project_bins};
pub use nfs::NfsServer;
pub use parts::{Parts, cache_dir, parts};

/// Why a VM could not be run.
#[derive(Debug, Clone)]
pub enum VmError {
    /// QEMU genuinely cannot run here (tests skip, unless `LKH_VM_REQUIRED` or `CI` is set).
    Unavailable(String),
    /// Preparing the parts failed.
    Setup(String),
    /// Starting or talking to QEMU failed.
    Run(String),
}

impl fmt::Display for VmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmError::Unavailable(m) => write!(f, "VM unavailable: {m}"),
            VmError::Setup(m) => write!(f, "VM setup failed: {m}"),
            VmError::Run(m) => write!(f, "VM run failed: {m}"),
        }
    }
}

impl std::error::Error for VmError {}

/// A request the guest sent with `host_request`: the words after `HOST`.
/// The handler returns the reply line (Ok) or an error message (the guest call fails).
pub type HostHook = Box<dyn FnMut(&[&str]) -> Result<String, String> + Send>;

/// An extra disk attached to the guest.
#[derive(Debug, Clone)]
pub enum Disk {
    /// virtio-blk (`/dev/vda`, ...): no SCSI at all.
    VirtioBlk { size_mb: u64 },
    /// QEMU's emulated SCSI disk on virtio-scsi: SCSI, but no persistent reservations.
    ScsiHd { size_mb: u64 },
}

/// One guest run: a builder, then [`Vm::run`].
pub struct Vm {
    pub(crate) name: String,
    pub(crate) script: String,
    pub(crate) files: Vec<(String, u32, Vec<u8>)>,
    pub(crate) project_bins: bool,
    pub(crate) timeout: Duration,
    pub(crate) mem_mb: u32,
    pub(crate) disks: Vec<Disk>,
    pub(crate) append: String,
    pub(crate) netns: Option<String>,
    pub(crate) user_net: bool,
    pub(crate) hooks: std::sync::Mutex<Vec<HostHook>>,
    pub(crate) qemu_args: Vec<String>,
    pub(crate) on_line: std::sync::Mutex<Option<LineHook>>,
}

/// Sees every line the guest sends over the control port (`SAY ...`, `CHECK ...`, `END ...`)
/// as it arrives, e.g. to narrate live.
pub type LineHook = Box<dyn FnMut(&str) + Send>;

impl Vm {
    /// A guest named `name` (used for the log file names).
    pub fn new(name: &str) -> Self {
        Vm {
            name: name.to_string(),
            script: String::new(),
            files: Vec::new(),
            project_bins: false,
            timeout: Duration::from_secs(90),
            mem_mb: 512,
            disks: Vec::new(),
            append: String::new(),
            netns: None,
            user_net: false,
            hooks: std::sync::Mutex::new(Vec::new()),
            qemu_args: Vec::new(),
            on_line: std::sync::Mutex::new(None),
        }
    }

    /// The scenario: busybox `sh` text run as PID 1's child with the guest library loaded.
    pub fn script(mut self, text: &str) -> Self {
        self.script = text.to_string();
        self
    }

    /// The scenario from a file (relative paths are relative to the `tests` crate).
    pub fn script_file(self, path: impl AsRef<Path>) -> Self {
        let p = crate_dir().join(path);
        let text = std::fs::read_to_string(&p)
            .unwrap_or_else(|e| format!("fatal 'cannot read scenario {}: {e}'\n", p.display()));
        self.script(&text)
    }

    /// An extra file in the guest (absolute guest path).
    pub fn file(mut self, guest_path: &str, mode: u32, data: impl Into<Vec<u8>>) -> Self {
        self.files.push((guest_path.to_string(), mode, data.into()));
        self
    }

    /// Put the project's static binaries (`lkh-*`) into `/opt/lkh/bin`.
    pub fn project_bins(mut self) -> Self {
        self.project_bins = true;
        self
    }

    /// Wall-clock limit for the whole boot-run-poweroff (default 90 s).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Guest RAM (default 512 MiB).
    pub fn mem_mb(mut self, mb: u32) -> Self {
        self.mem_mb = mb;
        self
    }

    /// Attach an extra disk (see [`Disk`]); in the guest `nopr_disk` prints it.
    pub fn disk(mut self, d: Disk) -> Self {
        self.disks.push(d);
        self
    }

    /// Extra kernel command line (`lkh.*=` words are visible to scenarios in /proc/cmdline).
    pub fn append(mut self, s: &str) -> Self {
        self.append.push(' ');
        self.append.push_str(s);
        self
    }

    /// Handle `host_request` lines from the guest. Hooks are tried in order; a hook returning
    /// `Err("unhandled")` passes the request on.
    pub fn host_hook(self, h: HostHook) -> Self {
        self.hooks.lock().expect("hooks").push(h);
        self
    }

    /// Run QEMU inside network namespace `ns` (via `ip netns exec`) with user networking:
    /// the guest's `eth0` reaches that namespace's loopback as 10.0.2.2.
    pub fn netns(mut self, ns: &str) -> Self {
        self.netns = Some(ns.to_string());
        self.user_net = true;
        self
    }

    /// Connect the guest to `server` (see [`nfs`]): QEMU runs in the server's namespace, the
    /// guest reaches it as 10.0.2.2 (`nfs_net_up`, `nfs_mount`), and `nfs_server CMD` in the
    /// guest stops/kills/freezes/thaws/starts/restarts it.
    pub fn nfs(self, server: &NfsServer) -> Self {
        self.netns(server.netns()).host_hook(server.hook())
    }

    /// Call `f` with every control-port line as it arrives (`say TEXT` in the guest sends
    /// `SAY TEXT`).
    pub fn on_line(self, f: LineHook) -> Self {
        *self.on_line.lock().expect("on_line") = Some(f);
        self
    }

    /// Extra raw QEMU arguments.
    pub fn qemu_arg(mut self, a: &str) -> Self {
        self.qemu_args.push(a.to_string());
        self
    }

    /// Boots the guest, runs the scenario, powers off; always kills QEMU.
    pub fn run(&self) -> Result<RunReport, VmError> {
        let parts = parts()?;
        let bins = if self.project_bins {
            project_bins()?
        } else {
            &[]
        };
        qemu::run(self, parts, bins)
    }
}

/// The `tests` crate directory.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One guest-side `CHECK` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// What a guest run produced.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub name: String,
    pub checks: Vec<Check>,
    /// The scenario's exit status (None: it never finished).
    pub rc: Option<i32>,
    pub timed_out: bool,
    /// Host time from QEMU start to the guest's `/init`.
    pub boot_time: Option<Duration>,
    /// Host time from QEMU start to its exit.
    pub duration: Duration,
    /// Where the console log was left (`target/vm-cache/logs/<name>.console`: the latest run
    /// of a guest of that name).
    pub console_log: PathBuf,
    pub accel: &'static str,
    /// This run's console log, kept: another process may already have replaced the file.
    pub(crate) console: String,
}

impl RunReport {
    /// The check named `name` (the last one if repeated).
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().rev().find(|c| c.name == name)
    }

    /// Whether check `name` was reported and passed.
    pub fn passed(&self, name: &str) -> bool {
        self.check(name).is_some_and(|c| c.passed)
    }

    /// The failed checks.
    pub fn failures(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| !c.passed).collect()
    }

    /// This run's console log text.
    pub fn console(&self) -> String {
        self.console.clone()
    }

    /// A one-line summary with timings.
    pub fn summary(&self) -> String {
        format!(
            "vm {}: {} checks, {} failed, rc={}, accel={}, boot {}, total {:.1} s{}",
            self.name,
            self.checks.len(),
            self.failures().len(),
            self.rc.map_or("none".into(), |r| r.to_string()),
            self.accel,
            self.boot_time
                .map_or("?".into(), |b| format!("{:.1} s", b.as_secs_f64())),
            self.duration.as_secs_f64(),
            if self.timed_out { " (TIMED OUT)" } else { "" }
        )
    }

    /// What is wrong with this run (empty: all good): timeout, no or non-zero exit status,
    /// no checks, failed checks, `required` checks never reported.
    pub fn problems(&self, required: &[&str]) -> Vec<String> {
        let mut p = Vec::new();
        if self.timed_out {
            p.push("the scenario hit its wall-clock limit".to_string());
        }
        match self.rc {
            None => p.push("the scenario never finished".to_string()),
            Some(0) => {}
            Some(r) => p.push(format!("the scenario exited with {r}")),
        }
        if self.checks.is_empty() {
            p.push("the guest reported no checks".to_string());
        }
        for c in self.failures() {
            p.push(format!("FAIL {} {}", c.name, c.detail));
        }
        for r in required {
            if self.check(r).is_none() {
                p.push(format!("check {r} was never reported"));
            }
        }
        p
    }

    /// Panics (printing the console log and the problems) unless the scenario finished with
    /// rc 0, reported at least one check, no check failed, and every `required` check was
    /// reported.
    pub fn assert_passed(&self, required: &[&str]) {
        eprintln!("{}", self.summary());
        let p = self.problems(required);
        if !p.is_empty() {
            eprintln!(
                "===== guest console {} =====\n{}\n===== end of console =====",
                self.console_log.display(),
                self.console()
            );
            panic!("vm {} failed:\n  {}", self.name, p.join("\n  "));
        }
    }

    /// [`RunReport::assert_passed`] without required names.
    pub fn assert_all_passed(&self) {
        self.assert_passed(&[]);
    }
}

/// Whether VM tests must not skip (`LKH_VM_REQUIRED=1`, or `CI` set as CI systems do):
/// [`crate::host::required`].
pub fn vm_required() -> bool {
    crate::host::required()
}

/// Prints `SKIPPED name: why` straight to the process's stderr, which the test harness does
/// not capture (unlike `eprintln!`), so a skip shows in every `cargo test` run.
pub fn skip_loudly(name: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {name}: QEMU test bed unavailable: {why}"
    );
}

/// Runs `vm`; when QEMU genuinely cannot run here, prints a loud SKIPPED line and returns None
/// (or panics when [`vm_required`]). Any other error panics.
pub fn run_or_skip(vm: &Vm) -> Option<RunReport> {
    match vm.run() {
        Ok(o) => Some(o),
        Err(VmError::Unavailable(why)) if !vm_required() => {
            skip_loudly(&vm.name, &why);
            None
        }
        Err(e) => panic!("vm {}: {e}", vm.name),
    }
}

/// Starts the test NFS server for test `name`; when it genuinely cannot run here, prints a
/// loud SKIPPED line and returns None (or panics when [`vm_required`]). Any other error panics.
pub fn nfs_or_skip(name: &str) -> Option<NfsServer> {
    match NfsServer::start() {
        Ok(s) => Some(s),
        Err(VmError::Unavailable(why)) if !vm_required() => {
            skip_loudly(name, &why);
            None
        }
        Err(e) => panic!("{name}: nfs server: {e}"),
    }
}

/// Polls `cond` every `poll` until it returns true or `timeout` passes; returns whether it did.
pub fn wait_until(timeout: Duration, poll: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        thread::sleep(poll.min(deadline - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_until_returns_when_the_condition_holds_or_the_time_is_up() {
        let mut n = 0;
        assert!(wait_until(
            Duration::from_secs(5),
            Duration::from_millis(1),
            || {
                n += 1;
                n == 3
            }
        ));
        assert_eq!(n, 3);
        assert!(!wait_until(
            Duration::from_millis(30),
            Duration::from_millis(5),
            || false
        ));
    }

    #[test]
    fn outcome_problems_name_what_went_wrong() {
        let mut o = RunReport {
            name: "t".into(),
            checks: vec![Check {
                name: "a".into(),
                passed: true,
                detail: String::new(),
            }],
            rc: Some(0),
            timed_out: false,
            boot_time: None,
            duration: Duration::ZERO,
            console_log: PathBuf::from("/nonexistent"),
            console: String::new(),
            accel: "tcg",
        };
        assert!(o.problems(&["a"]).is_empty());
        assert_eq!(
            o.problems(&["b"]),
            vec!["check b was never reported".to_string()]
        );
        o.checks.push(Check {
            name: "c".into(),
            passed: false,
            detail: "why".into(),
        });
        o.rc = None;
        let p = o.problems(&[]);
        assert!(p.iter().any(|s| s.contains("never finished")));
        assert!(p.iter().any(|s| s == "FAIL c why"));
    }
}
