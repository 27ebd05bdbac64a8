//! Issue 30 over the in-memory SPC-4 LU: every LU (and every path) of a resource in flight at
//! once — the model's commands yield as a real command in flight does, and count how many were
//! outstanding together —, and a healthy check that costs one READ FULL STATUS per LU where
//! the target has it, whether or not this node has records.

use lkh_common::Failure;
use sg_persist::PrType;
use sg_persist::exec::block_on;

use crate::actions::check::check_all;
use crate::actions::records::{Done, Records};
use crate::actions::restore::restore_all;
use crate::model::{Lun, Node, yielding};
use crate::race_tests::{RO, deadline, key, lun};

/// Node `a` with one LU per entry of `luns`, `paths` paths each.
fn lus(luns: &[std::sync::Arc<std::sync::Mutex<Lun>>], paths: usize) -> Vec<Node> {
    let nexuses: Vec<usize> = (1..=paths).collect();
    luns.iter().map(|l| Node::new(l, "a", &nexuses)).collect()
}

/// quickCheck of every LU as the hook runs it, with the records of `done` (or none).
fn quick_check(a: Vec<Node>, done: Option<&[Done]>) -> Vec<Result<Done, Failure>> {
    let mut records = Records::default();
    let names: Vec<String> = (0..a.len()).map(|i| format!("/dev/lu{i}")).collect();
    if let Some(done) = done {
        for (n, (_, rec)) in names.iter().zip(done) {
            records.set(n, Some(rec.clone()));
        }
    }
    let mut opened: Vec<Result<Node, Failure>> = a.into_iter().map(Ok).collect();
    block_on(check_all(
        &mut opened,
        &names,
        key("a"),
        RO,
        false,
        &records,
        deadline(),
    ))
    .into_iter()
    .map(|(_, out, _)| out)
    .collect()
}

fn counts(luns: &[std::sync::Arc<std::sync::Mutex<Lun>>]) -> (usize, usize) {
    luns.iter().fold((0, 0), |(i, o), l| {
        let l = l.lock().unwrap();
        (i + l.pr_in, o + l.pr_out)
    })
}

fn reset(luns: &[std::sync::Arc<std::sync::Mutex<Lun>>]) {
    for l in luns {
        let mut l = l.lock().unwrap();
        l.pr_in = 0;
        l.pr_out = 0;
    }
}

/// A quickCheck of 32 LUs has all 32 commands in flight at once, and a restore of 32 free
/// LUs of two paths each takes the first alone and then registers on the 62 paths of the
/// others at once (a sequential check had one command in flight at a time).
#[test]
fn every_lu_and_path_is_in_flight_at_once() {
    let luns: Vec<_> = (0..32).map(|_| lun()).collect();
    let mut a = lus(&luns, 2);
    yielding(true);
    let done = block_on(restore_all(&mut a, key("a"), RO, None, deadline())).unwrap();
    let most = yielding(false);
    assert_eq!(most, 31 * 2, "a restore's registrations at once");
    yielding(true);
    let outs = quick_check(lus(&luns, 2), Some(&done));
    let most = yielding(false);
    assert!(outs.iter().all(Result::is_ok), "{outs:?}");
    assert_eq!(most, 32, "quickCheck's looks at once");
}

/// Where the target has READ FULL STATUS a healthy quickCheck is one PR IN per LU and no PR
/// OUT, with or without records (it lists each path's I_T nexus with the key); where it does
/// not (tgt), the records tell that no path can have lost its registration, READ KEYS and
/// READ RESERVATION are the look, and the records say READ FULL STATUS need not be asked.
#[test]
fn a_healthy_check_costs_one_read_full_status_per_lu() {
    for full in [true, false] {
        let luns: Vec<_> = (0..8).map(|_| lun()).collect();
        for l in &luns {
            l.lock().unwrap().no_full_status = !full;
        }
        let mut a = lus(&luns, 2);
        let done = block_on(restore_all(&mut a, key("a"), RO, None, deadline())).unwrap();
        reset(&luns);
        let outs = quick_check(lus(&luns, 2), Some(&done));
        assert!(outs.iter().all(Result::is_ok), "{outs:?}");
        assert_eq!(
            counts(&luns),
            (8 * if full { 1 } else { 2 }, 0),
            "full {full}"
        );
        let gens: Vec<u32> = luns.iter().map(|l| l.lock().unwrap().generation).collect();
        // without records: READ FULL STATUS still proves every path; READ KEYS cannot
        reset(&luns);
        let outs = quick_check(lus(&luns, 2), None);
        assert!(outs.iter().all(Result::is_ok), "{outs:?}");
        let (ins, outs) = counts(&luns);
        if full {
            assert_eq!((ins, outs), (8, 0), "no PR OUT without records");
        } else {
            assert!(outs >= 8 * 2, "probed every path: {outs} PR OUT");
        }
        let now: Vec<u32> = luns.iter().map(|l| l.lock().unwrap().generation).collect();
        assert_eq!(
            now == gens,
            full,
            "the PR generation stays with READ FULL STATUS only"
        );
    }
}

/// READ FULL STATUS is no proof when it does not list a path's own I_T nexus with the key:
/// a path that came back on a new nexus (its old one still registered, so the key count is
/// what it was) is probed and registered again.
#[test]
fn a_registration_on_an_old_nexus_proves_nothing() {
    let l = lun();
    let mut a = vec![Node::new(&l, "a", &[1, 4])];
    let done = block_on(restore_all(&mut a, key("a"), RO, None, deadline())).unwrap();
    let mut flipped = Node::new(&l, "a", &[1, 7]);
    flipped.full_status = Some(true);
    let outs = quick_check(vec![flipped], None);
    let (msg, _) = outs[0].as_ref().unwrap();
    assert!(msg.contains("1 re-registered"), "{msg}");
    let keys = l.lock().unwrap().keys();
    assert_eq!(
        keys.iter().filter(|k| **k == key("a")).count(),
        3,
        "{keys:?}"
    );
    drop(done);
}

/// Every look of a check reads the same snapshot whatever answers first: with all LUs in
/// flight a takeover by another node on one LU is fenced (exit 3) on that LU only.
#[test]
fn one_fenced_lu_among_many_is_reported_as_such() {
    let luns: Vec<_> = (0..8).map(|_| lun()).collect();
    let mut a = lus(&luns, 1);
    let done = block_on(restore_all(&mut a, key("a"), RO, None, deadline())).unwrap();
    let mut b = vec![Node::new(&luns[5], "b", &[9])];
    block_on(restore_all(
        &mut b,
        key("b"),
        PrType::WriteExclusiveRegistrantsOnly,
        None,
        deadline(),
    ))
    .unwrap();
    yielding(true);
    let outs = quick_check(lus(&luns, 1), Some(&done));
    yielding(false);
    for (i, o) in outs.iter().enumerate() {
        assert_eq!(o.is_err(), i == 5, "{i}: {o:?}");
    }
    assert_eq!(outs[5].as_ref().unwrap_err().exit, lkh_common::Exit::Fenced);
}
