//! `ocf-tester` for lkh-nas and lkh-scsipr in a guest kernel: the NFS mount against the
//! harness's nfs-ganesha and the SCSI-3 reservation on the LIO LU over iSCSI, which the host
//! cannot provide (its kernel may have no NFS client; no LIO). The guest gets the real
//! `ocf-tester` script (a `/bin/sh` script, which busybox runs), the `ra-api-1.dtd` it validates
//! meta-data against and the host's `xmllint` with the shared libraries `ldd` lists; busybox
//! provides `su` (meta-data as `nobody`) and `id`. One boot, scenario `guest/ocf_vm.sh`:
//! ocf-tester's whole sequence (meta-data, validate-all, monitor 7, probe, start, monitor 0,
//! start again, stop, monitor 7, stop again) plus what it cannot see (the mount and the
//! reservation really there after start, gone after stop).
//!
//! Needs resource-agents and libxml2-utils on the host besides the VM test bed, installed when
//! missing (`tests::host`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tests::host;
use tests::vm::{self, Vm};

const FILES: &[(&str, u32)] = &[
    ("/usr/sbin/ocf-tester", 0o755),
    ("/usr/share/resource-agents/ra-api-1.dtd", 0o644),
    ("/usr/bin/xmllint", 0o755),
];

/// `vm` with ocf-tester, the DTD, xmllint and xmllint's libraries; `Err` names what is missing.
fn with_ocf_tester(mut vm: Vm) -> Result<Vm, String> {
    for (f, mode) in FILES {
        let data = std::fs::read(f).map_err(|e| format!("{f}: {e}"))?;
        vm = vm.file(f, *mode, data);
    }
    let ldd = Command::new("ldd")
        .arg("/usr/bin/xmllint")
        .output()
        .map_err(|e| format!("ldd: {e}"))?;
    for lib in String::from_utf8_lossy(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        // the real file under the name the loader looks for
        let data = std::fs::read(lib).map_err(|e| format!("{lib}: {e}"))?;
        vm = vm.file(lib, 0o755, data);
    }
    Ok(vm)
}

#[test]
fn ocf_tester_passes_nas_and_scsipr_in_a_guest() {
    let name = "ocf_vm";
    if !host::need(name, host::OCF_TOOLS) {
        return;
    }
    if let Some((f, _)) = FILES.iter().find(|(f, _)| !Path::new(f).exists()) {
        panic!("{name}: {f} is missing although resource-agents and libxml2-utils are installed");
    }
    let Some(nfs) = vm::nfs_or_skip(name) else {
        return;
    };
    std::fs::write(nfs.export_dir().join("hello.txt"), "hello-from-host\n").expect("export file");
    let vm = Vm::new("ocf_vm")
        .nfs(&nfs)
        .project_bins()
        .script_file("guest/ocf_vm.sh")
        .timeout(Duration::from_secs(240));
    let vm =
        with_ocf_tester(vm).unwrap_or_else(|e| panic!("cannot give the guest ocf-tester: {e}"));
    let Some(out) = vm::run_or_skip(&vm) else {
        return;
    };
    out.assert_passed(&[
        "xmllint-runs",
        "nas-ocf-tester",
        "nas-ocf-tester-passed",
        "nas-ocf-tester-left-nothing",
        "nas-start",
        "nas-mounted-after-start",
        "nas-monitor-deep",
        "nas-stop",
        "nas-unmounted-after-stop",
        "nas-validate-bad-version",
        "nas-validate-names-the-parameter",
        "scsipr-ocf-tester",
        "scsipr-ocf-tester-passed",
        "scsipr-ocf-tester-left-no-holder",
        "scsipr-start",
        "scsipr-holds-after-start",
        "scsipr-b-probe-not-running",
        "scsipr-a-monitor",
        "scsipr-stop",
        "scsipr-free-after-stop",
        "scsipr-no-keys-after-stop",
        "scsipr-a-start-again",
        "scsipr-b-start-takes-over",
        "scsipr-b-holds",
        "scsipr-watch-judges-ocf-resource",
        "scsipr-a-monitor-fenced",
        "scsipr-a-stop-fenced",
        "scsipr-a-restart-refused",
        "scsipr-a-restart-says-why",
        "scsipr-b-keeps-the-disk",
        "scsipr-b-stop",
        "ocf-done",
    ]);
}
