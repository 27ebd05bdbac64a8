//! VM proof of issue 15's race items and issue 18's rollback, against LIO and against tgt
//! (`_tgt`: every takeover through the PREEMPT fallback, fewer rounds): three nodes
//! restoring one LU at the same instant (one winner, losers exit 3 and are not registered),
//! restores and quickChecks frozen mid-command while another node takes over, a healthy check
//! leaving the PR generation unchanged, a LU that loses its PR state, and a resource of two
//! disks restored by three nodes at once. Scenario:
//! `tests/guest/scsipr_race.sh` (header lists the steps). The race's wall time per round is
//! printed as a `BENCH` note (see BENCHMARKS.md).

use std::time::Duration;

use tests::vm::{self, Vm};

/// Every check the scenario reports, on either target.
const CHECKS: &[&str] = &[
    "race-free-one-winner",
    "race-takeover-one-winner",
    "race-barrier-held",
    "vanish-a-restore",
    "vanish-b-frozen-after-observing",
    "vanish-c-takeover",
    "vanish-b-exits-3",
    "vanish-b-not-registered",
    "vanish-c-holds",
    "vanish2-a-restore",
    "vanish2-b-frozen-at-preempt",
    "vanish2-c-takeover",
    "vanish2-b-exits-3",
    "vanish2-b-not-registered",
    "vanish2-c-holds",
    "rereg-a-restore",
    "rereg-a-frozen-at-reregistration",
    "rereg-b-takeover",
    "rereg-a-exits-3",
    "rereg-a-not-registered",
    "rereg-b-holds",
    "rereg-a-says-removed",
    "rereg-a-write-refused",
    "gen-a-restore",
    "gen-a-quickcheck",
    "gen-a-quickcheck-2",
    "gen-a-recover",
    "gen-healthy-check-unchanged",
    "aptpl-not-set",
    "lost-cleared",
    "lost-watch-still-running",
    "lost-watch-says-lost",
    "lost-quickcheck-1",
    "lost-b-recover-takes-nothing",
    "lost-b-not-registered",
    "lost-recover-restores",
    "lost-a-holds-again",
    "lost-quickcheck-after",
    "lost-a-remove",
    "two-second-lu",
    "two-one-winner",
    "two-barrier-held",
    "race-done",
];

/// The scenario's text, with its round counts set (the script's defaults otherwise).
fn scenario(rounds: Option<(u32, u32)>) -> String {
    let text = include_str!("../guest/scsipr_race.sh");
    match rounds {
        Some((free, takeover)) => format!("ROUNDS={free}\nROUNDS_TAKEOVER={takeover}\n{text}"),
        None => text.to_string(),
    }
}

fn run(name: &str, append: &str, rounds: Option<(u32, u32)>) -> Option<vm::RunReport> {
    let vm = Vm::new(name)
        .project_bins()
        .append(append)
        .script(&scenario(rounds))
        .timeout(Duration::from_secs(1800));
    let out = vm::run_or_skip(&vm)?;
    for line in out.console().lines().filter(|l| l.contains("BENCH ")) {
        eprintln!("{}", line.trim());
    }
    Some(out)
}

#[test]
fn scsipr_races() {
    let Some(out) = run("scsipr_race", "lkh.target=lio", None) else {
        return;
    };
    out.assert_passed(CHECKS);
}

/// The same races against tgt, where every takeover goes through the PREEMPT fallback (tgt
/// refuses PREEMPT AND ABORT) and the holder is known from its key (no READ FULL STATUS);
/// fewer rounds.
#[test]
fn scsipr_races_tgt() {
    let Some(out) = run("scsipr_race_tgt", "lkh.target=tgt", Some((20, 10))) else {
        return;
    };
    out.assert_passed(CHECKS);
}
