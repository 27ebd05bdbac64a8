//! What a test needs from the host, had the one way: Debian packages installed with apt-get
//! when missing (as root; loudly, one line naming the test and the packages), for the VM test
//! bed (QEMU and its parts, [`crate::vm::parts`]) and the OCF, fence-agent and Pacemaker tests
//! alike (the groups below), in this crate's tests and in the kits' own.
//!
//! What cannot be had here (not root, no package archive) skips the test with a loud
//! `SKIPPED test: why` line on the process's stderr — or fails it when [`required`]
//! (`LKH_VM_REQUIRED=1` or `CI`). So `cargo test --workspace` as root on a fresh Debian 12
//! machine with the package archive reachable runs every test and skips none.
//!
//! Several test threads and processes may ask at once: one `flock` on
//! `target/vm-cache/.apt.lock` serialises the installs, and each asker looks again under it.

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use crate::vm::VmError;
use crate::vm::cmd::{run, run_ok};
use crate::vm::parts::lock_cache;

/// `ocf-tester`, `ra-api-1.dtd` and the `heartbeat` agents (resource-agents), `xmllint`
/// (libxml2-utils), `su` (util-linux; ocf-tester runs meta-data as `nobody`).
pub const OCF_TOOLS: &[&str] = &["resource-agents", "libxml2-utils", "util-linux"];
/// pcs's OCF 1.0 and 1.1 schemas (`/usr/share/pcs/data/ocf-1.*.rng`), for meta-data.
pub const OCF_SCHEMAS: &[&str] = &["pcs"];
/// `crm_resource`, `stonith_admin`, `crm_mon`… without a cluster.
pub const PACEMAKER_CLI: &[&str] = &["pacemaker-cli-utils"];
/// fence-agents' `metadata.rng` and `fence2rng.xsl`, with `xsltproc` and `xmllint`.
pub const FENCE_SCHEMAS: &[&str] = &["fence-agents", "xsltproc", "libxml2-utils"];
/// nfs-ganesha with rpcbind, the NFS server of lkh-nas's host tests (the VM test bed gets the
/// same with QEMU's parts).
pub const NFS_SERVER: &[&str] = &[
    "nfs-ganesha",
    "nfs-ganesha-vfs",
    "rpcbind",
    "util-linux",
    "iproute2",
];
/// `ip` (network namespaces, veths, bridges).
pub const NETNS: &[&str] = &["iproute2"];
/// A Pacemaker + Corosync cluster in namespaces ([`crate::pcmk::Cluster`]): the daemons, the
/// command-line tools, IPaddr2 to compare with, `unshare`/`nsenter`, `ping`.
pub const CLUSTER: &[&str] = &[
    "pacemaker",
    "pacemaker-cli-utils",
    "corosync",
    "resource-agents",
    "util-linux",
    "iputils-ping",
    "iproute2",
];

const APT_TIMEOUT: Duration = Duration::from_secs(900);
const QUERY_TIMEOUT: Duration = Duration::from_secs(300);
/// How long an install may wait for another process's.
const LOCK_WAIT: Duration = Duration::from_secs(1800);

/// Whether a test that cannot run here must fail rather than skip (`LKH_VM_REQUIRED=1`, or
/// `CI` set as CI systems do).
pub fn required() -> bool {
    let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    set("LKH_VM_REQUIRED") || set("CI")
}

/// Skips `test` loudly — `SKIPPED test: why` straight to the process's stderr, which the test
/// harness does not capture (unlike `eprintln!`) — or panics when [`required`].
pub fn skip(test: &str, why: &str) {
    assert!(
        !required(),
        "{test}: {why} (LKH_VM_REQUIRED/CI: must not skip)"
    );
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// Whether this process runs as root (and so may install packages).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `apt-get ARGS` without questions, waiting for dpkg's lock up to 10 minutes.
pub(crate) fn apt(args: &[&str]) -> Result<(), VmError> {
    let mut c = Command::new("apt-get");
    c.env("DEBIAN_FRONTEND", "noninteractive")
        .args(["-q", "-o", "DPkg::Lock::Timeout=600"])
        .args(args);
    run_ok(&mut c, APT_TIMEOUT).map(|_| ())
}

/// Which of `packages` dpkg does not list as installed.
pub fn missing(packages: &[&str]) -> Vec<String> {
    let mut c = Command::new("dpkg-query");
    c.args(["-W", "-f=${Package} ${Status}\n"]).args(packages);
    let listed = run(&mut c, QUERY_TIMEOUT)
        .map(|o| o.stdout_str())
        .unwrap_or_default();
    let mut out: Vec<String> = packages
        .iter()
        .filter(|p| {
            !listed
                .lines()
                .any(|l| l.starts_with(&format!("{p} ")) && l.ends_with("ok installed"))
        })
        .map(|p| (*p).to_owned())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Installs whichever of `packages` is missing, for `test` (named in the line that says what
/// is installed). `Err` says why they cannot be had here: not root, or apt-get failed (after
/// an `apt-get update` and a second try).
pub fn install(test: &str, packages: &[&str]) -> Result<(), String> {
    if missing(packages).is_empty() {
        return Ok(());
    }
    let _lock = lock_cache(".apt.lock", LOCK_WAIT).map_err(|e| e.to_string())?;
    // another thread or process may have installed them meanwhile
    let wanted = missing(packages);
    if wanted.is_empty() {
        return Ok(());
    }
    if !is_root() {
        return Err(format!(
            "host packages missing and not root to install them: apt-get install {}",
            wanted.join(" ")
        ));
    }
    let _ = writeln!(
        std::io::stderr(),
        "tests: {test}: installing host packages: apt-get install -y --no-install-recommends {}",
        wanted.join(" ")
    );
    let mut args = vec!["install", "-y", "--no-install-recommends"];
    args.extend(wanted.iter().map(String::as_str));
    if apt(&args).is_err() {
        apt(&["update"]).map_err(|e| format!("apt-get update failed: {e}"))?;
        apt(&args).map_err(|e| format!("cannot install {}: {e}", wanted.join(" ")))?;
    }
    Ok(())
}

/// The packages `test` needs, installed when missing ([`install`]); `false` after a loud skip
/// (or a panic when [`required`]) when they cannot be had here.
pub fn need(test: &str, packages: &[&str]) -> bool {
    match install(test, packages) {
        Ok(()) => true,
        Err(why) => {
            skip(test, &why);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_lists_exactly_the_packages_dpkg_does_not_have() {
        // dpkg is on every Debian machine; the other name exists nowhere
        assert_eq!(
            missing(&["dpkg", "lkh-no-such-package", "dpkg", "lkh-no-such-package"]),
            ["lkh-no-such-package"]
        );
        assert!(missing(&["dpkg"]).is_empty());
    }
}
