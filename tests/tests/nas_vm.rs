//! lkh-nas in a guest kernel against a real NFS server (the harness's nfs-ganesha on the host,
//! v3 and v4): restore/quickCheck/remove/recover, bad input, server stopped and frozen under
//! hard mounts, a process holding the mount, remove on a dead server's mount. One boot runs
//! the whole scenario (`guest/nas_vm.sh`); each check there is one line of the proof.

use std::time::Duration;

use tests::vm::{self, Vm};

#[test]
fn nas_kit_in_a_guest() {
    let Some(nfs) = vm::nfs_or_skip("nas_vm") else {
        return;
    };
    std::fs::write(nfs.export_dir().join("hello.txt"), "hello-from-host\n").expect("export file");
    let vm = Vm::new("nas_vm")
        .nfs(&nfs)
        .project_bins()
        .script_file("guest/nas_vm.sh")
        .timeout(Duration::from_secs(240));
    let Some(out) = vm::run_or_skip(&vm) else {
        return;
    };
    out.assert_passed(&[
        "restore-v3",
        "restore-v4",
        "mountinfo-v3",
        "mountinfo-v4",
        "qc-v3-healthy",
        "qc-v4-healthy",
        "restore-v4n",
        "restore-v4n-says-negotiated-from-VERSION=4",
        "restore-v4n-logs-negotiated-version",
        "qc-v4n",
        "remove-v4n",
        "remove-v4n-unmounted",
        "agree-v3-healthy",
        "status-v3-verdict-healthy",
        "agree-v3-not-mounted",
        "status-v3-verdict-not-mounted",
        "agree-v3-stopped",
        "status-v3-verdict-stopped",
        "named-mounted-by-address",
        "qc-named-after-dns-change",
        "bad-input-mounted-nothing",
        "restore-busy",
        "remove-ended-cwd-user",
        "remove-ended-fd-user",
        "remove-unmounted-v3",
        "remove-left-covered-mount",
        "v3-stacked-twice",
        "remove-over-unmounted-v3",
        "qc-v3-stopped-bounded",
        "qc-v4-stopped-bounded",
        "recover-v3-back",
        "recover-remounted-v3",
        "qc-v3-frozen-bounded",
        "qc-v3-frozen-again-bounded",
        "no-stuck-checkers",
        "restore-on-frozen-server-mounted-nothing",
        "remove-ended-hung-reader",
        "remove-v4-dead-bounded",
        "remove-on-dead-server-unmounted",
        "qc-v3-thawed",
        "server-reexport",
        "qc-v3-stale",
        "qc-v3-stale-says-file-handle-is-stale",
        "qc-v4-stale",
        "qc-v4-stale-says-file-handle-is-stale",
        "recover-v3-stale",
        "recover-v4-stale",
        "recover-v4-stale-says-recover:-unmounted-/mnt/v4",
        "read-v3-after-stale-recover",
        "read-v4-after-stale-recover",
        "qc-v3-after-stale",
        "all-unmounted",
    ]);
}

/// Issue 16: lkh-nas remove against what local users do (`guest/nas_safe.sh`): plain unmount
/// first, holders named, never an ancestor or another mount namespace's process, unmount by
/// identity through a symbolic-link swap, a non-UTF-8 submount, an IO-check child that holds
/// nothing of its caller's, remove without a name server.
#[test]
fn nas_remove_is_safe_against_local_users() {
    let Some(nfs) = vm::nfs_or_skip("nas_safe") else {
        return;
    };
    let export = nfs.export_dir().to_path_buf();
    let vm = Vm::new("nas_safe")
        .nfs(&nfs)
        .host_hook(Box::new(move |req: &[&str]| match req {
            // the size of a file of the export as the server sees it (a plain name only)
            ["export", "size", name] if !name.contains('/') && !name.starts_with('.') => {
                Ok(std::fs::metadata(export.join(name))
                    .map_or(0, |m| m.len())
                    .to_string())
            }
            _ => Err("unhandled".into()),
        }))
        .project_bins()
        .script_file("guest/nas_safe.sh")
        .timeout(Duration::from_secs(240));
    let Some(out) = vm::run_or_skip(&vm) else {
        return;
    };
    out.assert_passed(&[
        "remove-idle",
        "remove-idle-unmounted",
        "remove-idle-signalled-nobody",
        "bystander-alive",
        "remove-busy",
        "remove-ended-holder",
        "remove-busy-unmounted",
        "other-namespace-cwd-same-path",
        "remove-ns",
        "other-namespace-process-not-killed",
        "own-namespace-holder-ended",
        "other-namespace-process-not-named",
        "ancestor-remove-fails",
        "ancestor-named",
        "ancestor-mount-left-mounted",
        "remove-after-ancestor",
        "remove-after-ancestor-unmounted",
        "user-efi-mounted",
        "remove-swap",
        "swap-victim-still-mounted",
        "swap-victim-intact",
        "swap-victim-parent-still-mounted",
        "swap-resource-tree-unmounted",
        "swap-holder-ended",
        "swap-link-was-in-place",
        "lnk-validate",
        "lnk-restore",
        "lnk-quickCheck",
        "lnk-recover",
        "lnk-remove",
        "lnk-status",
        "lnk-mounted-nothing",
        "latin1-submount",
        "remove-latin1",
        "remove-latin1-unmounted-all",
        "io-child-found",
        "io-child-only-0-1-2",
        "io-child-stdio-dev-null",
        "io-reader-saw-end-of-file",
        "io-qc-said-wedged",
        "root-is-shared",
        "map-tools",
        "restore-slave",
        "slave-holders-in-place",
        "copies-in-place",
        "server-sees-slave-writes",
        "remove-slave",
        "slave-no-write-after-remove",
        "slave-cwd-holder-ended",
        "slave-fd-holder-ended",
        "slave-map-holder-ended",
        "copy-only-processes-alive",
        "slave-nested-copy-unmounted",
        "private-copy-unmounted",
        "user-namespace-process-ended",
        "remove-slave-unmounted",
        "remove-dns-never-restored",
        "qc-dns-never-restored",
        "qc-dns-asked-no-resolver",
        "status-dns-never-restored",
        "status-dns-not-probed",
        "restore-dns",
        "restore-dns-mounted-nothing",
        "remove-dns2-from-mount",
        "remove-dns2-unmounted",
        "all-unmounted",
    ]);
    assert!(
        ["remove-busy-says-", "remove-swap-says-"]
            .iter()
            .all(|p| out.checks.iter().any(|c| c.name.starts_with(p) && c.passed)),
        "remove did not name its holder or the renamed submount: {}",
        out.summary()
    );
    // issue 24: every action named the symbolic link in MOUNTPOINT
    let lnk: Vec<_> = out
        .checks
        .iter()
        .filter(|c| c.name.starts_with("lnk-") && c.name.contains("-says-"))
        .collect();
    assert!(
        lnk.len() == 6 && lnk.iter().all(|c| c.passed),
        "an action did not name the symbolic link in MOUNTPOINT: {}",
        out.summary()
    );
    // issue 24: what remove said about the holders in other namespaces (names carry pids)
    let said: Vec<_> = out
        .checks
        .iter()
        .filter(|c| c.name.starts_with("remove-slave-says-"))
        .collect();
    assert!(
        said.len() == 4 && said.iter().all(|c| c.passed),
        "remove did not name the holders in other mount namespaces: {}",
        out.summary()
    );
}

/// Issue 16 with lkh-common's log escaping (`guest/nas_forge.sh`): a holder whose name holds
/// newlines, a submount whose path does (remove with `-v`) and a mount source that does (status)
/// turn into no forged line; the newline shows as `\x0a`.
#[test]
fn nas_remove_log_is_not_forged_by_a_process_name() {
    let Some(nfs) = vm::nfs_or_skip("nas_forge") else {
        return;
    };
    let vm = Vm::new("nas_forge")
        .nfs(&nfs)
        .project_bins()
        .script_file("guest/nas_forge.sh")
        .timeout(Duration::from_secs(120));
    let Some(out) = vm::run_or_skip(&vm) else {
        return;
    };
    out.assert_passed(&[
        "remove-forge",
        "forge-holder-ended",
        "remove-log-not-forged",
        "restore-forge-sub",
        "forge-submount",
        "remove-forge-sub",
        "forge-sub-unmounted-all",
        "remove-sub-log-not-forged",
        "forge-source-mounted",
        "status-text-not-forged",
        "status-text-escaped",
    ]);
    for p in ["remove-forge-says-", "remove-forge-sub-says-"] {
        assert!(
            out.checks.iter().any(|c| c.name.starts_with(p) && c.passed),
            "the holder's name or the submount's path is not shown escaped: {}",
            out.summary()
        );
    }
}

/// Benchmark, run by hand: `cargo test -p tests --test nas_vm -- --ignored --nocapture`.
/// Prints healthy quickCheck vs the Pacemaker Filesystem agent's monitor (Debian package
/// resource-agents, copied into the guest) on the same NFS v3 mount, and the frozen-server
/// verdict time against TIMEOUT.
#[test]
#[ignore = "benchmark: prints figures, run with --ignored"]
fn nas_bench() {
    let Some(nfs) = vm::nfs_or_skip("nas_bench") else {
        return;
    };
    let mut vm = Vm::new("nas_bench")
        .nfs(&nfs)
        .project_bins()
        .script_file("guest/nas_bench.sh")
        .timeout(Duration::from_secs(300));
    let agent = std::path::Path::new("/usr/lib/ocf/resource.d/heartbeat/Filesystem");
    let lib = std::path::Path::new("/usr/lib/ocf/lib/heartbeat");
    if let (Ok(a), Ok(dir)) = (std::fs::read(agent), std::fs::read_dir(lib)) {
        vm = vm.file(&agent.to_string_lossy(), 0o755, a);
        for e in dir.flatten() {
            if e.path().is_file()
                && let Ok(data) = std::fs::read(e.path())
            {
                vm = vm.file(&e.path().to_string_lossy(), 0o644, data);
            }
        }
    } else {
        eprintln!("resource-agents is not installed: the Filesystem agent figures will be missing");
    }
    let Some(out) = vm::run_or_skip(&vm) else {
        return;
    };
    eprintln!("{}", out.summary());
    for c in out.checks.iter().filter(|c| c.name.starts_with("bench-")) {
        println!(
            "BENCH {} {} {}",
            c.name,
            if c.passed { "ok" } else { "FAILED" },
            c.detail
        );
    }
    out.assert_passed(&["bench-quickcheck-healthy", "bench-frozen-verdict-1"]);
}

/// LKNFSTIMEOUT (read from /etc/default/LifeKeeper) bounds the checks below TIMEOUT, and
/// ON_FAILURE=halt powers the guest off when recover finds the server gone: the scenario never
/// reaches its end, and QEMU exits before the wall-clock limit.
#[test]
fn nas_halt_policy_and_lknfstimeout() {
    let Some(nfs) = vm::nfs_or_skip("nas_halt") else {
        return;
    };
    let vm = Vm::new("nas_halt")
        .nfs(&nfs)
        .project_bins()
        .script_file("guest/nas_halt.sh")
        .timeout(Duration::from_secs(120));
    let Some(out) = vm::run_or_skip(&vm) else {
        return;
    };
    eprintln!("{}", out.summary());
    let console = out.console();
    let problems: Vec<String> = [
        "restore",
        "qc-healthy",
        "qc-frozen-fails",
        "qc-frozen-bounded-by-lknfstimeout",
        "qc-after-thaw",
        "before-halt",
    ]
    .iter()
    .filter(|n| !out.passed(n))
    .map(|n| format!("check {n} did not pass"))
    .chain(
        out.check("still-running-after-halt")
            .map(|c| format!("{c:?}")),
    )
    .chain(
        out.rc
            .map(|rc| format!("the scenario ended (rc={rc}) instead of the node powering off")),
    )
    .chain(
        out.timed_out
            .then(|| "the guest hit the wall-clock limit".to_string()),
    )
    .chain(
        (!console.contains("ON_FAILURE=halt: powering this node off"))
            .then(|| "no halt message".to_string()),
    )
    .collect();
    assert!(problems.is_empty(), "{problems:#?}\n{console}");
}
