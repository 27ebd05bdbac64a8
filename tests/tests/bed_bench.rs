//! Benchmark of the VM test bed, run by hand:
//! `cargo test -p tests --test bed_bench -- --ignored --nocapture`.
//! Prints the time from QEMU start to the guest's /init and a whole boot-run-poweroff for an
//! empty scenario (three runs), then for the shared-disk setup (LIO + two iSCSI logins).

use std::time::{Duration, Instant};

use tests::vm::{self, Vm};

fn secs(d: Option<Duration>) -> String {
    d.map_or("?".into(), |d| format!("{:.2} s", d.as_secs_f64()))
}

#[test]
#[ignore = "benchmark: prints figures, run with --ignored"]
fn boot_and_setup_times() {
    let t = Instant::now();
    if let Err(e) = vm::parts() {
        eprintln!("SKIPPED bed_bench: {e}");
        return;
    }
    println!(
        "parts ready (cached or prepared) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    for i in 1..=3 {
        let out = Vm::new("bench_boot")
            .script("pass up\n")
            .run()
            .expect("boot");
        out.assert_passed(&["up"]);
        println!(
            "empty scenario #{i} ({}): QEMU start -> /init {}, boot-run-poweroff {}",
            out.accel,
            secs(out.boot_time),
            secs(Some(out.duration))
        );
    }
    let out = Vm::new("bench_disk")
        .script("t0=$(uptime_s); shared_disk_setup a b; check setup $?; note \"setup took $(awk \"BEGIN{print $(uptime_s)-$t0}\") s\"\n")
        .run()
        .expect("boot");
    out.assert_passed(&["setup"]);
    let setup = out
        .console()
        .lines()
        .find_map(|l| l.split_once("NOTE setup took ").map(|(_, s)| s.to_string()))
        .unwrap_or_default();
    println!(
        "shared disk (LIO + 2 iSCSI logins): {setup} in the guest; boot-run-poweroff {}",
        secs(Some(out.duration))
    );
}
