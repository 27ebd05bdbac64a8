//! The policy in `actions` over the in-memory SPC-4 logical unit (`model`): concurrent restores
//! (exact interleavings written with the per-path hooks), rollback, the PREEMPT fallback,
//! quickCheck/recover without PR OUT when healthy, the re-registration race, lost PR state.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lkh_common::{Exit, Failure, Hint};
use sg_persist::PrType;

use crate::actions::check::check_lu;
use crate::actions::classify::{Held, judge};
use crate::actions::open::{arbitration_order, order_key};
use crate::actions::records::{Done, LuRecord, Memory};
use crate::actions::restore::{self as cas, restore_lu};
use crate::model::{Fault, Lun, Node};

pub(crate) const RO: PrType = PrType::WriteExclusiveRegistrantsOnly;

pub(crate) fn key(n: &str) -> u64 {
    0x4c4b_0000_0000_0000 | u64::from(n.as_bytes()[0])
}

pub(crate) fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

pub(crate) fn lun() -> Arc<Mutex<Lun>> {
    Arc::new(Mutex::new(Lun::default()))
}

type Slot = Arc<Mutex<Option<Result<Done, Failure>>>>;

pub(crate) fn restore(n: &mut Node, t: PrType) -> Result<Done, Failure> {
    restore_lu(n, key(&n.name), t, deadline())
}

/// Node `name` with one path per nexus in `nexuses`.
pub(crate) fn node(l: &Arc<Mutex<Lun>>, name: &str, nexuses: &[usize]) -> Node {
    Node::new(l, name, nexuses)
}

/// Makes `outer`'s path 0 run `inner`'s whole restore right before its `at`-th command; the
/// result lands in the returned slot, with whether it ran while `outer` was still observing
/// (reading, before its first PR OUT): then `outer`'s observation comes after `inner`'s
/// restore, a sequential takeover rather than a race.
fn nest(outer: &mut Node, mut inner: Node, at: usize, t: PrType) -> Nested {
    nest_with(outer, at, move || restore(&mut inner, t))
}

type Nested = NestedWith<Result<Done, Failure>>;
type NestedWith<R> = Arc<Mutex<Option<(R, bool)>>>;

/// [`nest`] for any inner run `f` (a restore of one disk or of several).
fn nest_with<R: Send + 'static>(
    outer: &mut Node,
    at: usize,
    mut f: impl FnMut() -> R + Send + 'static,
) -> NestedWith<R> {
    let slot: NestedWith<R> = Arc::new(Mutex::new(None));
    let out = slot.clone();
    let mut once = Some(());
    let mut sent_out = false;
    outer.paths[0].hook = Some(Box::new(move |n, cmd| {
        if n == at && once.take().is_some() {
            let r = f();
            let observing = !sent_out && cmd.starts_with("READ");
            *out.lock().unwrap() = Some((r, observing));
        }
        sent_out |= !cmd.starts_with("READ");
        Fault::Pass
    }));
    slot
}

pub(crate) fn registered(l: &Arc<Mutex<Lun>>, k: u64) -> bool {
    l.lock().unwrap().keys().contains(&k)
}

/// Checks one round: exactly one Ok, that node holds, every other exited 3 and is not
/// registered.
fn one_winner(l: &Arc<Mutex<Lun>>, t: PrType, results: &[(&str, Result<Done, Failure>)]) {
    let winners: Vec<&str> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(winners.len(), 1, "winners {winners:?}: {results:?}");
    let w = winners[0];
    let lun = l.lock().unwrap();
    if t.all_registrants() {
        assert!(lun.res.is_some(), "{results:?}");
        assert_eq!(lun.keys().iter().filter(|k| **k != key(w)).count(), 0);
    } else {
        assert_eq!(lun.holder_key(), Some(key(w)), "{results:?} {lun:?}");
    }
    for (n, r) in results {
        if *n != w {
            let f = r.as_ref().unwrap_err();
            assert_eq!(f.exit, Exit::Fenced, "{n}: {f}");
            assert!(
                !lun.keys().contains(&key(n)),
                "{n} still registered: {lun:?}"
            );
        }
    }
}

#[test]
fn sequential_takeovers_keep_working() {
    let l = lun();
    let (mut a, mut b, mut c) = (
        node(&l, "a", &[1]),
        node(&l, "b", &[2]),
        node(&l, "c", &[3]),
    );
    restore(&mut a, RO).unwrap();
    assert_eq!(l.lock().unwrap().holder_key(), Some(key("a")));
    let (msg, _) = restore(&mut b, RO).unwrap();
    assert!(msg.contains("took over"), "{msg}");
    assert_eq!(l.lock().unwrap().holder_key(), Some(key("b")));
    assert!(!registered(&l, key("a")));
    restore(&mut c, RO).unwrap();
    assert_eq!(l.lock().unwrap().keys(), vec![key("c")]);
    // restore again where it is held: idempotent
    restore(&mut c, RO).unwrap();
    assert_eq!(l.lock().unwrap().holder_key(), Some(key("c")));
}

/// Three restores, nested at every pair of command positions: B runs inside A's window, C
/// inside B's. Starting from a free disk and from one held by an old holder D, for every type
/// and with PREEMPT AND ABORT supported or not.
#[test]
fn concurrent_restores_have_one_winner() {
    let types = [
        PrType::WriteExclusive,
        PrType::ExclusiveAccess,
        RO,
        PrType::ExclusiveAccessRegistrantsOnly,
        PrType::WriteExclusiveAllRegistrants,
        PrType::ExclusiveAccessAllRegistrants,
    ];
    let mut rounds = 0;
    for t in types {
        for old_holder in [false, true] {
            for no_pa in [false, true] {
                // position 1 would run the inner restore before the outer one's first
                // command: a sequential takeover, not a race
                for i in 2..=10 {
                    for j in 2..=10 {
                        let l = lun();
                        l.lock().unwrap().no_preempt_abort = no_pa;
                        if old_holder {
                            restore(&mut node(&l, "d", &[9]), t).unwrap();
                        }
                        let mut a = node(&l, "a", &[1, 4]);
                        let mut b = node(&l, "b", &[2, 5]);
                        let c = node(&l, "c", &[3, 6]);
                        let sc = nest(&mut b, c, j, t);
                        let sb = nest(&mut a, b, i, t);
                        let ra = restore(&mut a, t);
                        // an inner restore whose position is past the outer one's last
                        // command on that path did not run: no race to judge
                        let Some((rb, seq_b)) = sb.lock().unwrap().take() else {
                            continue;
                        };
                        let Some((rc, seq_c)) = sc.lock().unwrap().take() else {
                            continue;
                        };
                        if seq_b || seq_c {
                            continue;
                        }
                        let mut all = vec![("a", ra), ("b", rb), ("c", rc)];
                        if old_holder {
                            assert!(!registered(&l, key("d")), "{t} {i} {j}: d left");
                        }
                        one_winner(&l, t, &all);
                        all.clear();
                        rounds += 1;
                    }
                }
            }
        }
    }
    // most positions overlap (every type sends at least 6 commands on path 0)
    assert!(rounds > 6 * 2 * 2 * 25, "{rounds} rounds");
}

/// Issue 15's sequence: C reserves and wins while A, which saw nobody holding, is between
/// its registration and its RESERVE. A must not preempt C (before the fix it did, and B then
/// preempted A): its RESERVE conflicts, it has lost, exits 3 and rolls back.
#[test]
fn a_restore_that_saw_no_holder_never_preempts() {
    for at in 3..=4 {
        let l = lun();
        let mut a = node(&l, "a", &[1]);
        let c = node(&l, "c", &[3]);
        // A: observe (1), register (2), read keys (3), read reservation (4), RESERVE (5)
        let sc = nest(&mut a, c, at, RO);
        let ra = restore(&mut a, RO);
        assert!(sc.lock().unwrap().take().unwrap().0.is_ok());
        let f = ra.unwrap_err();
        assert_eq!(f.exit, Exit::Fenced, "{f}");
        assert!(f.message.contains("another node won"), "{f}");
        assert!(f.message.contains("removed again"), "{f}");
        assert_eq!(l.lock().unwrap().keys(), vec![key("c")]);
    }
}

/// B observed holder D, but by the time it preempts, A already took D's key: B's PREEMPT of
/// D conflicts; B reads the disk, sees A, exits 3 and rolls back (before: exit 3 without a
/// read, or exit 1 "only 0 of 1 paths show key").
#[test]
fn a_vanished_victim_means_lost() {
    let l = lun();
    restore(&mut node(&l, "d", &[9]), RO).unwrap();
    let mut b = node(&l, "b", &[2]);
    let a = node(&l, "a", &[1]);
    // B: observe (1), register (2), read keys (3), read reservation (4): A runs before B's
    // PREEMPT (5)
    let sa = nest(&mut b, a, 5, RO);
    let rb = restore(&mut b, RO);
    assert!(sa.lock().unwrap().take().unwrap().0.is_ok());
    let f = rb.unwrap_err();
    assert_eq!(f.exit, Exit::Fenced, "{f}");
    assert!(f.message.contains(&format!("{:016x}", key("a"))), "{f}");
    assert!(!registered(&l, key("b")));
    assert_eq!(l.lock().unwrap().holder_key(), Some(key("a")));
}

#[test]
fn preempt_and_abort_refused_falls_back_to_preempt() {
    let l = lun();
    l.lock().unwrap().no_preempt_abort = true;
    restore(&mut node(&l, "a", &[1]), RO).unwrap();
    let (msg, _) = restore(&mut node(&l, "b", &[2]), RO).unwrap();
    assert!(msg.contains("took over"), "{msg}");
    assert_eq!(l.lock().unwrap().keys(), vec![key("b")]);
}

/// A RESERVE whose answer is lost (it ran): restore reads the disk back and succeeds; a
/// PREEMPT that never reaches the disk on any path: restore fails (1), rolls back, and says
/// what the disk shows.
#[test]
fn timeouts_are_judged_by_what_the_disk_shows() {
    let l = lun();
    let mut a = node(&l, "a", &[1]);
    a.paths[0].hook = Some(Box::new(|_, cmd| {
        if cmd == "RESERVE" {
            Fault::AnswerLost
        } else {
            Fault::Pass
        }
    }));
    // one path only: the lost answer leaves no other path to try; the read-back decides
    let r = restore(&mut a, RO);
    assert!(
        r.is_ok() || l.lock().unwrap().holder_key() == Some(key("a")),
        "{r:?}"
    );
    let mut b = node(&l, "b", &[2, 5]);
    for p in &mut b.paths {
        p.hook = Some(Box::new(|_, cmd| {
            if cmd.starts_with("PREEMPT") {
                Fault::Timeout
            } else {
                Fault::Pass
            }
        }));
    }
    let f = restore(&mut b, RO).unwrap_err();
    assert_eq!(f.exit, Exit::Fenced, "another node holds: {f}");
    assert!(f.message.contains("the disk shows reservation key"), "{f}");
    assert!(!registered(&l, key("b")), "rolled back");
    assert_eq!(l.lock().unwrap().holder_key(), Some(key("a")));
}

/// Issue 18 item 2: a restore that fails after registering (here: its reads time out once)
/// leaves no registration that could write under the holder's registrants-only type.
#[test]
fn failing_restore_rolls_back() {
    let l = lun();
    let mut b = node(&l, "b", &[2]);
    b.paths[0].hook = Some(Box::new(
        |n, _| {
            if n == 3 { Fault::Timeout } else { Fault::Pass }
        },
    ));
    let f = restore(&mut b, RO).unwrap_err();
    assert_eq!(f.exit, Exit::Failed, "{f}");
    assert!(f.message.contains("removed again"), "{f}");
    assert!(l.lock().unwrap().keys().is_empty());
}

pub(crate) fn mem(seen: &LuRecord) -> Memory<'_> {
    Memory {
        seen: Some(seen),
        was_holder: true,
    }
}

#[test]
fn healthy_check_sends_no_pr_out() {
    let l = lun();
    let mut a = node(&l, "a", &[1, 4]);
    let (_, rec) = restore(&mut a, RO).unwrap();
    let (generation, outs) = {
        let x = l.lock().unwrap();
        (x.generation, x.pr_out)
    };
    for repair in [false, true] {
        let (msg, rec2) = check_lu(&mut a, key("a"), RO, repair, mem(&rec), deadline()).unwrap();
        assert!(msg.contains("2/2 path(s) registered"), "{msg}");
        assert_eq!(rec2, rec);
    }
    let x = l.lock().unwrap();
    assert_eq!((x.generation, x.pr_out), (generation, outs), "PR OUT sent");
}

/// Without a record (first check, or after a nexus changed) every path is probed, and a new
/// nexus is re-registered.
#[test]
fn new_nexus_is_probed_and_reregistered() {
    let l = lun();
    let mut a = node(&l, "a", &[1, 4]);
    let (_, rec) = restore(&mut a, RO).unwrap();
    a.paths[1].nexus = 7; // a WWPN flip of the second path
    let (msg, rec2) = check_lu(&mut a, key("a"), RO, false, mem(&rec), deadline()).unwrap();
    assert!(msg.contains("1 re-registered"), "{msg}");
    assert_ne!(rec, rec2);
    assert_eq!(l.lock().unwrap().key_of(7), Some(key("a")));
}

/// Issue 15's slow-path race: A re-registers a new nexus while its first path's probe times
/// out and B takes over meanwhile. Before: A registered itself back under B's
/// registrants-only reservation and quickCheck said 0. Now: 3, and nothing of A left.
#[test]
fn reregistration_race_is_closed() {
    for at in [1usize, 2, 3] {
        let l = lun();
        let mut a = node(&l, "a", &[1, 4]);
        let (_, rec) = restore(&mut a, RO).unwrap();
        // the new nexus: path 1, or (case 3) path 0, so that the slow probe comes after it
        if at == 3 {
            a.paths[0].nexus = 7;
        } else {
            a.paths[1].nexus = 7;
        }
        let slot: Slot = Arc::new(Mutex::new(None));
        let out = slot.clone();
        let mut b = Some(node(&l, "b", &[2]));
        if at == 1 {
            // path 0's probe is slow: B takes over while it waits, the probe times out
            a.paths[0].hook = Some(Box::new(move |_, cmd| {
                if cmd == "REGISTER" {
                    if let Some(mut b) = b.take() {
                        *out.lock().unwrap() = Some(restore(&mut b, RO));
                    }
                    return Fault::Timeout;
                }
                Fault::Pass
            }));
        } else if at == 3 {
            // path 0 is re-registered, then path 1's probe is slow: B takes over meanwhile
            a.paths[1].hook = Some(Box::new(move |_, cmd| {
                if cmd == "REGISTER" {
                    if let Some(mut b) = b.take() {
                        *out.lock().unwrap() = Some(restore(&mut b, RO));
                    }
                    return Fault::Timeout;
                }
                Fault::Pass
            }));
        } else {
            // B takes over right between A's re-judging and A's re-registration of path 1
            a.paths[1].hook = Some(Box::new(move |_, cmd| {
                if cmd == "REGISTER AND IGNORE EXISTING KEY"
                    && let Some(mut b) = b.take()
                {
                    *out.lock().unwrap() = Some(restore(&mut b, RO));
                }
                Fault::Pass
            }));
        }
        let f = check_lu(&mut a, key("a"), RO, false, mem(&rec), deadline()).unwrap_err();
        assert_eq!(f.exit, Exit::Fenced, "{at}: {f}");
        assert!(slot.lock().unwrap().take().unwrap().is_ok());
        assert!(!registered(&l, key("a")), "{at}: A is back in: {f}");
        assert_eq!(l.lock().unwrap().holder_key(), Some(key("b")));
    }
}

/// The move of a WRITE EXCLUSIVE reservation off a vanished nexus (after a WWPN flip): B takes
/// over right before A's PREEMPT of its own key, or right before A re-registers its other
/// path. Before: the PREEMPT's conflict was exit 1, and A's REGISTER AND IGNORE EXISTING KEY
/// put it back in as a registrant under B's reservation. Now: 3, and nothing of A is left.
#[test]
fn move_to_live_nexus_is_rejudged() {
    let we = PrType::WriteExclusive;
    for (path, at) in [(0, "PREEMPT"), (1, "REGISTER AND IGNORE EXISTING KEY")] {
        let l = lun();
        let mut a = node(&l, "a", &[1, 4]);
        let (_, rec) = restore(&mut a, we).unwrap();
        assert_eq!(l.lock().unwrap().res.map(|r| r.holder), Some(1));
        a.paths[0].nexus = 7; // the holding path's WWPN flipped
        let slot: Slot = Arc::new(Mutex::new(None));
        let out = slot.clone();
        let mut b = Some(node(&l, "b", &[2]));
        a.paths[path].hook = Some(Box::new(move |_, cmd| {
            if cmd == at
                && let Some(mut b) = b.take()
            {
                *out.lock().unwrap() = Some(restore(&mut b, we));
            }
            Fault::Pass
        }));
        let f = check_lu(&mut a, key("a"), we, true, mem(&rec), deadline()).unwrap_err();
        assert!(
            slot.lock().unwrap().take().unwrap().is_ok(),
            "{at}: B took over"
        );
        assert_eq!(f.exit, Exit::Fenced, "{at}: {f}");
        assert!(!registered(&l, key("a")), "{at}: A is back in: {f}");
        assert_eq!(l.lock().unwrap().holder_key(), Some(key("b")));
    }
}

#[test]
fn fenced_check_exits_3_and_sends_nothing() {
    let l = lun();
    let mut a = node(&l, "a", &[1]);
    let (_, rec) = restore(&mut a, RO).unwrap();
    restore(&mut node(&l, "b", &[2]), RO).unwrap();
    let outs = l.lock().unwrap().pr_out;
    for repair in [false, true] {
        let f = check_lu(&mut a, key("a"), RO, repair, mem(&rec), deadline()).unwrap_err();
        assert_eq!(f.exit, Exit::Fenced);
    }
    assert_eq!(l.lock().unwrap().pr_out, outs);
    assert!(matches!(
        judge(&mut a, key("a"), RO, deadline()),
        Err(f) if f.exit == Exit::Fenced
    ));
}

/// PR OUT CLEAR, or a target restart without persist-through-power-loss: not fenced.
#[test]
fn lost_pr_state_is_its_own_verdict() {
    let l = lun();
    let mut a = node(&l, "a", &[1, 4]);
    let (_, rec) = restore(&mut a, RO).unwrap();
    {
        let mut x = l.lock().unwrap();
        x.regs.clear();
        x.res = None;
    }
    assert_eq!(judge(&mut a, key("a"), RO, deadline()).unwrap(), Held::Lost);
    let f = check_lu(&mut a, key("a"), RO, false, mem(&rec), deadline()).unwrap_err();
    assert_eq!(f.exit, Exit::Failed, "{f}");
    assert_eq!(
        f.hint,
        Hint::None,
        "held by our records: a failure to recover, not 'stopped'"
    );
    assert!(
        f.message.contains("lost its persistent-reservation state"),
        "{f}"
    );
    // without a record of holding it, recover does not take it; for Pacemaker's monitor
    // that is "not running here" (a stopped resource on an empty disk)
    let none = Memory::default();
    let f = check_lu(&mut a, key("a"), RO, true, none, deadline()).unwrap_err();
    assert_eq!(f.exit, Exit::Failed, "{f}");
    assert_eq!(f.hint, Hint::NotRunning, "{f}");
    assert!(l.lock().unwrap().keys().is_empty());
    // with it, recover registers every path and reserves
    check_lu(&mut a, key("a"), RO, true, mem(&rec), deadline()).unwrap();
    let x = l.lock().unwrap();
    assert_eq!(x.holder_key(), Some(key("a")));
    assert_eq!(x.keys(), vec![key("a"), key("a")]);
}

/// Two nodes recovering a LU that lost its state at once (both had records): one wins, the
/// other exits 3 and is not registered.
#[test]
fn lost_state_recovered_by_two_has_one_winner() {
    for at in 1..=8 {
        let l = lun();
        let mut a = node(&l, "a", &[1]);
        let b = node(&l, "b", &[2]);
        let slot: Slot = Arc::new(Mutex::new(None));
        let out = slot.clone();
        let mut b = Some(b);
        a.paths[0].hook = Some(Box::new(move |n, _| {
            if n == at
                && let Some(mut b) = b.take()
            {
                let m = Memory {
                    seen: None,
                    was_holder: true,
                };
                *out.lock().unwrap() = Some(check_lu(&mut b, key("b"), RO, true, m, deadline()));
            }
            Fault::Pass
        }));
        let m = Memory {
            seen: None,
            was_holder: true,
        };
        let ra = check_lu(&mut a, key("a"), RO, true, m, deadline());
        let rb = slot.lock().unwrap().take().unwrap();
        one_winner(&l, RO, &[("a", ra), ("b", rb)]);
    }
}

/// Threads instead of nesting: three restores on three threads, 200 rounds; whoever's first
/// command lands after another's RESERVE takes over (a sequential takeover), so the property
/// checked is the one that always holds: at most one holder, every restore that exited 0 and
/// is not the holder was preempted after it returned, every other is 3 and not registered.
#[test]
fn threaded_restores_leave_one_holder() {
    for _ in 0..200 {
        let l = lun();
        let handles: Vec<_> = ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let mut nd = node(&l, n, &[i + 1]);
                std::thread::spawn(move || (nd.name.clone(), restore(&mut nd, RO)))
            })
            .collect();
        let results: Vec<(String, Result<Done, Failure>)> =
            handles.into_iter().map(|h| h.join().unwrap()).collect();
        let x = l.lock().unwrap();
        let holder = x.holder_key().expect("someone holds");
        assert_eq!(x.keys(), vec![holder], "{results:?}");
        for (n, r) in &results {
            if let Err(f) = r {
                assert_eq!(f.exit, Exit::Fenced, "{n}: {f}");
            }
        }
        assert!(results.iter().any(|(n, r)| r.is_ok() && key(n) == holder));
    }
}

fn restore_all(nodes: &mut [Node], t: PrType) -> Result<Vec<Done>, Failure> {
    let k = key(&nodes[0].name);
    cas::restore_all(nodes, k, t, None, deadline())
}

/// Node `name` on each LU of `luns` (one path per LU, nexus `nexus`).
fn disks(luns: &[Arc<Mutex<Lun>>], name: &str, nexus: usize) -> Vec<Node> {
    luns.iter().map(|l| node(l, name, &[nexus])).collect()
}

/// [`nest`] for a whole multi-disk restore run inside `outer`'s path 0.
fn nest_all(
    outer: &mut Node,
    mut inner: Vec<Node>,
    at: usize,
    t: PrType,
) -> NestedWith<Result<Vec<Done>, Failure>> {
    nest_with(outer, at, move || restore_all(&mut inner, t))
}

/// A resource of two disks, restored by A and B at once (B's whole restore run before each
/// of A's commands on either disk, or during A's final look), from free disks and from disks
/// an old holder D holds: exactly one restore exits 0 and holds both disks, the other exits 3
/// and is registered on neither. Before, each disk was restored on its own: A could win the
/// first and B the second, both exiting 3 while each kept a disk.
#[test]
fn multi_disk_restores_have_one_winner() {
    let mut rounds = 0;
    for t in [
        RO,
        PrType::WriteExclusive,
        PrType::WriteExclusiveAllRegistrants,
    ] {
        for old_holder in [false, true] {
            for disk in 0..2 {
                for at in 2..=12 {
                    let luns = [lun(), lun()];
                    if old_holder {
                        restore_all(&mut disks(&luns, "d", 9), t).unwrap();
                    }
                    let mut a = disks(&luns, "a", 1);
                    let b = disks(&luns, "b", 2);
                    let sb = nest_all(&mut a[disk], b, at, t);
                    let ra = restore_all(&mut a, t);
                    let Some((rb, observing)) = sb.lock().unwrap().take() else {
                        continue;
                    };
                    if observing && disk == 0 {
                        continue;
                    }
                    let results = [("a", ra), ("b", rb)];
                    let winners: Vec<&str> = results
                        .iter()
                        .filter(|(_, r)| r.is_ok())
                        .map(|(n, _)| *n)
                        .collect();
                    let ctx = format!("{t} old={old_holder} disk={disk} at={at}: {results:?}");
                    assert_eq!(winners.len(), 1, "{ctx}");
                    let w = winners[0];
                    for l in &luns {
                        let x = l.lock().unwrap();
                        assert_eq!(x.keys(), vec![key(w)], "{ctx} {x:?}");
                        if !t.all_registrants() {
                            assert_eq!(x.holder_key(), Some(key(w)), "{ctx}");
                        }
                    }
                    for (n, r) in &results {
                        if *n != w {
                            let f = r.as_ref().unwrap_err();
                            assert_eq!(f.exit, Exit::Fenced, "{n}: {ctx}");
                        }
                    }
                    rounds += 1;
                }
            }
        }
    }
    assert!(rounds > 3 * 2 * 2 * 4, "{rounds} rounds");
}

/// A failure on the second disk (every path times out) gives the first back: the restore
/// exits 1, names both disks, and leaves no registration anywhere.
#[test]
fn multi_disk_failure_gives_the_first_disks_back() {
    let luns = [lun(), lun(), lun()];
    let mut a = disks(&luns, "a", 1);
    a[1].paths[0].hook = Some(Box::new(
        |n, _| {
            if n >= 2 { Fault::Timeout } else { Fault::Pass }
        },
    ));
    let f = restore_all(&mut a, RO).unwrap_err();
    assert_eq!(f.exit, Exit::Failed, "{f}");
    assert!(f.message.contains("given back"), "{f}");
    assert!(f.message.contains("not tried"), "{f}");
    assert!(
        luns[0].lock().unwrap().keys().is_empty(),
        "first disk given back"
    );
    assert!(
        luns[2].lock().unwrap().keys().is_empty(),
        "third never touched"
    );
    assert_eq!(luns[2].lock().unwrap().generation, 0);
}

/// Every node takes the disks in one order whatever DEVICE= says: by their LU designators and
/// serial numbers; two disks nothing tells apart are refused (exit 2).
#[test]
fn disks_are_taken_in_identity_order() {
    use sg_persist::{Identity, LuId};
    let id = |naa: Option<&str>, sn: Option<&str>| Identity {
        designators: naa
            .map(|n| LuId {
                kind: 1,
                bytes: n.as_bytes().to_vec(),
            })
            .into_iter()
            .collect(),
        serial: sn.map(str::to_owned),
    };
    // the same order whatever the configured order (node b lists them the other way round)
    let here = vec![
        ("sdz", id(None, Some("s9"))),
        ("sdc", id(Some("IET 0002"), Some("s1"))),
        ("sda", id(None, Some("s2"))),
        ("sdb", id(Some("IET 0001"), Some("s1"))),
    ];
    let mut there = here.clone();
    there.reverse();
    let order = |v: Vec<(&'static str, Identity)>| {
        arbitration_order(v, |d| order_key(&d.1), |d| d.0.to_owned())
            .unwrap()
            .iter()
            .map(|d| d.0)
            .collect::<Vec<_>>()
    };
    assert_eq!(order(here), order(there));
    // tgt's two daemons: the same designators, only the serial differs: told apart
    let two = vec![
        ("sdb", id(Some("IET 0001"), Some("a"))),
        ("sdc", id(Some("IET 0001"), Some("b"))),
    ];
    assert!(arbitration_order(two, |d| order_key(&d.1), |d| d.0.to_owned()).is_ok());
    // nothing tells them apart: refused with exit 2, both named
    let same = vec![
        ("sdb", id(Some("IET 0001"), Some("x"))),
        ("sdc", id(Some("IET 0001"), Some("x"))),
    ];
    let f = arbitration_order(same, |d| order_key(&d.1), |d| d.0.to_owned()).unwrap_err();
    assert_eq!(f.exit, Exit::Usage);
    assert!(
        f.message.contains("sdb and sdc cannot be told apart"),
        "{f}"
    );
}
