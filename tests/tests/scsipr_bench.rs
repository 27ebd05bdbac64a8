//! Issue 30's benchmark: lkh-scsipr at scale against the hardware floor and its peers, in one
//! guest run (`tests/guest/scsipr_scale.sh`): the floor probes (`sg-persist`'s example
//! `sg_floor`: T0 = a start of a static binary that does nothing, L = one PR IN at queue depth
//! 1, s = guest CPU per command with n in flight), lkh-scsipr (quickCheck, restore of free
//! disks, takeover under Pacemaker and LifeKeeper's takeover from a dead owner with its
//! challenge window), the `sg_persist` script (fence_scsi's way) and `mpathpersist`
//! (multipath-tools), at N LUs x P paths. Prints every figure as a `BENCH name value` line
//! (milliseconds) and writes them to `target/scsipr-scale-bench.txt`, from which
//! `tests/bench/scsipr_scale.py` makes the table and the plot in `BENCHMARKS.md`.
//!
//! Run by hand (it takes an hour or more under TCG):
//! `cargo test -p tests --test scsipr_bench -- --ignored --nocapture`;
//! `LKH_SCALE_NS=1,16 LKH_SCALE_PS=1,2 LKH_SCALE_ROUNDS=3` make it smaller.

use std::time::Duration;

use tests::vm::{self, Vm};

#[test]
#[ignore = "a benchmark: run by hand with --ignored --nocapture"]
fn scsipr_scale() {
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    let floor = vm::bins::example_bin("sg-persist", "sg_floor").expect("sg_floor builds");
    let mut v = Vm::new("scsipr_scale")
        .project_bins()
        .mem_mb(
            env("LKH_SCALE_MEM_MB", "2048")
                .parse()
                .expect("LKH_SCALE_MEM_MB"),
        )
        .file(
            "/opt/floor/sg_floor",
            0o755,
            std::fs::read(&floor).expect("sg_floor"),
        )
        .append(&format!(
            "lkh.ns={} lkh.ps={} lkh.rounds={} lkh.aslr={}",
            env("LKH_SCALE_NS", "1,16,64,128"),
            env("LKH_SCALE_PS", "1,2,4"),
            env("LKH_SCALE_ROUNDS", "10"),
            env("LKH_SCALE_ASLR", "0"),
        ))
        .script_file("guest/scsipr_scale.sh")
        .timeout(Duration::from_secs(
            env("LKH_SCALE_TIMEOUT_S", "10800")
                .parse()
                .expect("LKH_SCALE_TIMEOUT_S"),
        ));
    match vm::parts::multipath_tools() {
        Ok(files) => {
            for (path, data) in files {
                v = v.file(&path, 0o755, data);
            }
        }
        Err(e) => eprintln!("mpathpersist left out: {e}"),
    }
    let Some(out) = vm::run_or_skip(&v) else {
        return;
    };
    let lines: Vec<String> = out
        .console()
        .lines()
        .filter_map(|l| {
            l.split_once("BENCH ")
                .map(|(_, b)| format!("BENCH {}", b.trim()))
        })
        .collect();
    for l in out.console().lines().filter(|l| l.contains("NOTE ")) {
        eprintln!("{}", l.trim());
    }
    for l in &lines {
        eprintln!("{l}");
    }
    let file = vm::parts::workspace_target().join("scsipr-scale-bench.txt");
    std::fs::write(&file, lines.join("\n") + "\n").expect("write the figures");
    eprintln!("figures in {}; {}", file.display(), out.summary());
    out.assert_passed(&["bench-done"]);
}
