//! End-to-end failover demonstration: boots the test guest (two cluster nodes sharing a SCSI
//! disk, an NFS export and a network) and narrates a failover from node A to node B of a
//! three-level hierarchy (`lkh-ip` on `lkh-nas` on `lkh-scsipr`), every call made the way
//! LifeKeeper makes it: through gen/app's copies of the kits' wrappers (the guest scenario is
//! `tests/guest/demo.sh`, the LifeKeeper side `tests/guest/lib/lk.sh`).
//! Exit status 0 when the story holds, 1 when it does not, 2 when the test bed could not be
//! started.
//!
//! `cargo run --release -p tests --bin demo`

use std::process::ExitCode;
use std::time::{Duration, Instant};

use tests::vm::{self, NfsServer, Vm};

/// Every check the story needs.
const STORY: &[&str] = &[
    "a-restore-disk",
    "a-holds-reservation",
    "a-restore-nfs",
    "a-nfs-mounted",
    "a-restore-ip",
    "a-ip-up",
    "a-quickcheck-healthy",
    "a-writes-disk",
    "a-writes-nfs",
    "partition-b-restore-refused",
    "partition-a-keeps-disk",
    "partition-a-still-writes",
    "a-quickcheck-fails",
    "a-recover-fails",
    "a-remove-ip",
    "a-remove-nfs",
    "a-remove-disk",
    "b-restore-disk",
    "b-holds-reservation",
    "a-key-preempted",
    "b-restore-nfs",
    "b-nfs-mounted",
    "b-restore-ip",
    "b-ip-up",
    "a-quickcheck-fenced",
    "a-write-refused",
    "a-dd-write-fails",
    "b-reads-a-data",
    "b-reads-a-nfs-file",
];

fn narrate(line: &str) {
    if let Some(text) = line.strip_prefix("SAY") {
        println!("{}", text.strip_prefix(' ').unwrap_or(text));
    } else if let Some(rest) = line.strip_prefix("CHECK ") {
        let mut w = rest.splitn(3, ' ');
        let (name, res, detail) = (
            w.next().unwrap_or(""),
            w.next().unwrap_or(""),
            w.next().unwrap_or(""),
        );
        if res == "PASS" {
            println!("     ok   {name}");
        } else {
            println!("     FAIL {name}  {detail}");
        }
    }
}

fn main() -> ExitCode {
    let t0 = Instant::now();
    println!("lkhelpers failover demo");
    println!(
        "Preparing the test bed: QEMU, a Debian kernel, an NFS server and the project's static"
    );
    println!("binaries (the first run downloads and builds them; cached under target/vm-cache)...");
    let nfs = match NfsServer::start() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("demo: cannot start the test bed: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = vm::project_bins() {
        eprintln!("demo: cannot build the project's binaries: {e}");
        return ExitCode::from(2);
    }
    let vm = Vm::new("demo")
        .project_bins()
        .nfs(&nfs)
        .script_file("guest/demo.sh")
        .timeout(Duration::from_secs(240))
        .on_line(Box::new(narrate));
    println!("Booting the guest...\n");
    let out = match vm.run() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::from(2);
        }
    };
    let host_copy =
        std::fs::read_to_string(nfs.export_dir().join("invoice-42.txt")).unwrap_or_default();
    let mut problems = out.problems(STORY);
    if host_copy.trim() != "invoice 42 written by node A" {
        problems.push("invoice-42.txt is not on the NFS server's disk".into());
    }
    println!();
    println!(
        "(guest booted in {}, ran {:.1} s from start to power-off; demo took {:.1} s; console log: {})",
        out.boot_time
            .map_or("?".into(), |b| format!("{:.1} s", b.as_secs_f64())),
        out.duration.as_secs_f64(),
        t0.elapsed().as_secs_f64(),
        out.console_log.display()
    );
    if problems.is_empty() {
        println!(
            "VERDICT: PASS - LifeKeeper's gen/app calls failed the hierarchy over from A to B, node A was fenced and its writes were refused, and A's data survived intact."
        );
        ExitCode::SUCCESS
    } else {
        println!("VERDICT: FAIL - {}", problems.join("; "));
        ExitCode::FAILURE
    }
}
