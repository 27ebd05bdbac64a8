//! A live owner keeps its disk (issue 29): the challenger (restore with a challenge window)
//! against the holder's defender (`defend_lu`, what `watch` runs every interval) over the
//! in-memory SPC-4 LU, every interleaving: the defender starting at each of the challenger's
//! commands, a defender that never comes (dead or paused across the window), two challengers,
//! a challenger killed in its window, restores back to back on a free disk, a switchover.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lkh_common::{Exit, Failure};
use sg_persist::PrType;

use crate::actions::check::check_lu;
use crate::actions::defend::{Defense, defend_lu};
use crate::actions::records::{Done, Memory};
use crate::actions::remove::remove_lu;
use crate::actions::restore::restore_all;
use crate::model::{Fault, Lun, Node};
use crate::pr::Nexus;
use crate::race_tests::{RO, deadline, key, lun, node, registered, restore};

/// The challenge window of these tests (the real one is seconds; the interleavings are
/// written with hooks, not with time).
const WINDOW: Duration = Duration::from_millis(40);

fn challenge(n: &mut Node, t: PrType) -> Result<Vec<Done>, Failure> {
    let k = key(&n.name);
    restore_all(std::slice::from_mut(n), k, t, Some(WINDOW), deadline())
}

fn defend(a: &Arc<Mutex<Node>>, t: PrType) -> Defense {
    let mut a = a.lock().unwrap();
    let k = key(&a.name);
    defend_lu(&mut *a, k, t, deadline()).unwrap()
}

/// The commands of an undisturbed challenge against a holder that never defends, by name.
fn commands_of_a_won_challenge(t: PrType) -> Vec<&'static str> {
    let l = lun();
    let mut a = node(&l, "a", &[1]);
    restore_all(std::slice::from_mut(&mut a), key("a"), t, None, deadline()).unwrap();
    let mut b = node(&l, "b", &[2]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    b.paths[0].hook = Some(Box::new(move |_, cmd| {
        s.lock().unwrap().push(cmd);
        Fault::Pass
    }));
    challenge(&mut b, t).unwrap();
    seen.lock().unwrap().clone()
}

/// The defender comes alive at each of the challenger's commands in turn and then acts before
/// every later one (a live owner's `watch`, ticking). Before the challenger's PREEMPT it always
/// wins: the challenger exits 3 unregistered, the owner holds, its key never left. From the
/// PREEMPT on it is too late (the owner was paused across the window): the challenger holds,
/// the owner's defender sees its own key gone and sends nothing more. Never both.
#[test]
fn a_live_owner_keeps_its_disk_and_a_late_one_has_lost() {
    for t in [
        RO,
        PrType::WriteExclusive,
        PrType::WriteExclusiveAllRegistrants,
    ] {
        let cmds = commands_of_a_won_challenge(t);
        let preempt_at = cmds
            .iter()
            .position(|c| c.starts_with("PREEMPT"))
            .expect("a takeover preempts")
            + 1;
        for from in 1..=cmds.len() + 1 {
            let l = lun();
            let a = Arc::new(Mutex::new(node(&l, "a", &[1, 4])));
            restore_all(
                std::slice::from_mut(&mut *a.lock().unwrap()),
                key("a"),
                t,
                None,
                deadline(),
            )
            .unwrap();
            let mut b = node(&l, "b", &[2]);
            let d = a.clone();
            let last = Arc::new(Mutex::new(None));
            let seen = last.clone();
            b.paths[0].hook = Some(Box::new(move |n, _| {
                if n >= from {
                    *seen.lock().unwrap() = Some(defend(&d, t));
                }
                Fault::Pass
            }));
            let r = challenge(&mut b, t);
            let what = format!("{t}: defender from command {from} of {cmds:?}");
            let x = l.lock().unwrap();
            // the hook runs before the command it is called for: a defender that first acts
            // right before the PREEMPT still wins
            if from <= preempt_at {
                let f = r.as_ref().err().unwrap_or_else(|| panic!("{what}: B won"));
                assert_eq!(f.exit, Exit::Fenced, "{what}: {f}");
                assert!(!x.keys().contains(&key("b")), "{what}: B registered: {x:?}");
                assert!(x.keys().contains(&key("a")), "{what}: {x:?}");
                if !t.all_registrants() {
                    assert_eq!(x.holder_key(), Some(key("a")), "{what}");
                }
            } else {
                assert!(r.is_ok(), "{what}: {r:?}");
                assert!(
                    !x.keys().contains(&key("a")),
                    "{what}: A still registered: {x:?}"
                );
                drop(x);
                // the owner resumes: its key is gone, it has lost, and nothing brings it back
                assert_eq!(defend(&a, t), Defense::Lost, "{what}");
                let mut a = a.lock().unwrap();
                let q = check_lu(&mut *a, key("a"), t, true, Memory::default(), deadline());
                assert_eq!(q.unwrap_err().exit, Exit::Fenced, "{what}");
                assert!(!registered(&l, key("a")), "{what}");
            }
        }
    }
}

/// Nobody defends (the owner is dead, or its defender frozen across the window): the
/// challenger takes over once the window has passed, not before.
#[test]
fn a_dead_owner_loses_after_the_window() {
    let l = lun();
    let mut a = node(&l, "a", &[1]);
    restore(&mut a, RO).unwrap();
    let mut b = node(&l, "b", &[2]);
    let t0 = Instant::now();
    challenge(&mut b, RO).unwrap();
    assert!(t0.elapsed() >= WINDOW);
    assert_eq!(l.lock().unwrap().holder_key(), Some(key("b")));
    assert!(!registered(&l, key("a")));
}

/// A free disk is taken at once (a switchover: remove, then restore elsewhere), and a holder
/// that leaves in the middle of a challenge ends the wait: the challenge costs nothing then.
#[test]
fn a_switchover_does_not_wait() {
    let long = Duration::from_secs(20);
    let l = lun();
    let mut a = node(&l, "a", &[1]);
    restore(&mut a, RO).unwrap();
    remove_lu(&mut a, key("a"), RO, deadline()).unwrap();
    let mut b = node(&l, "b", &[2]);
    let t0 = Instant::now();
    restore_all(
        std::slice::from_mut(&mut b),
        key("b"),
        RO,
        Some(long),
        deadline(),
    )
    .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    // B holds; A restores (challenges) and B leaves while A waits
    let bb = Arc::new(Mutex::new(b));
    let gone = bb.clone();
    a.paths[0].hook = Some(Box::new(move |_, cmd| {
        if cmd == "READ KEYS" {
            let mut b = gone.lock().unwrap();
            let _ = remove_lu(&mut *b, key("b"), RO, deadline());
        }
        Fault::Pass
    }));
    let t0 = Instant::now();
    restore_all(
        std::slice::from_mut(&mut a),
        key("a"),
        RO,
        Some(long),
        deadline(),
    )
    .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_eq!(l.lock().unwrap().holder_key(), Some(key("a")));
}

/// Two challengers of a dead owner (C's whole challenge runs before each of B's commands in
/// turn; a C that won defends from then on, as its `watch` does): exactly one wins, the other
/// exits 3 and is not registered.
#[test]
fn two_challengers_of_a_dead_owner_have_one_winner() {
    let n = commands_of_a_won_challenge(RO).len();
    for at in 1..=n {
        let l = lun();
        let mut a = node(&l, "a", &[1]);
        restore(&mut a, RO).unwrap();
        let mut b = node(&l, "b", &[2]);
        let c = Arc::new(Mutex::new(node(&l, "c", &[3])));
        let slot = Arc::new(Mutex::new(None));
        let out = slot.clone();
        let cc = c.clone();
        b.paths[0].hook = Some(Box::new(move |k, _| {
            let mut won = false;
            if k == at {
                let r = challenge(&mut cc.lock().unwrap(), RO);
                *out.lock().unwrap() = Some(r);
            }
            if let Some(Ok(_)) = out.lock().unwrap().as_ref() {
                won = true;
            }
            if won {
                defend(&cc, RO);
            }
            Fault::Pass
        }));
        let rb = challenge(&mut b, RO);
        let rc = slot.lock().unwrap().take().unwrap();
        let x = l.lock().unwrap();
        let winners = [&rb, &rc].iter().filter(|r| r.is_ok()).count();
        assert_eq!(winners, 1, "at {at}: b {rb:?} c {rc:?} {x:?}");
        let (w, loser, lr) = if rb.is_ok() {
            ("b", "c", &rc)
        } else {
            ("c", "b", &rb)
        };
        assert_eq!(x.holder_key(), Some(key(w)), "at {at}");
        assert_eq!(lr.as_ref().unwrap_err().exit, Exit::Fenced, "at {at}");
        assert!(!x.keys().contains(&key(loser)), "at {at}: {x:?}");
        assert!(!x.keys().contains(&key("a")), "at {at}: {x:?}");
    }
}

/// A challenger killed in its window leaves its registration behind: the owner's defender
/// removes it at its next look and keeps the disk.
#[test]
fn a_challenger_killed_in_its_window_is_cleaned_up_by_the_owner() {
    let l = lun();
    let a = Arc::new(Mutex::new(node(&l, "a", &[1])));
    restore(&mut a.lock().unwrap(), RO).unwrap();
    let mut b = node(&l, "b", &[2]);
    b.paths[0].register_ignore(key("b"), deadline()).unwrap();
    // ... and B dies here
    assert_eq!(defend(&a, RO), Defense::Removed(vec![key("b")]));
    assert_eq!(defend(&a, RO), Defense::Quiet);
    let x = l.lock().unwrap();
    assert_eq!(x.keys(), vec![key("a")]);
    assert_eq!(x.holder_key(), Some(key("a")));
}

/// Restores back to back on a free disk (no stop in between), the owner defending from its
/// restore on: the first takes it, every later one is a challenger of a live holder and exits
/// 3 unregistered. Exactly one exit 0.
#[test]
fn restores_back_to_back_have_one_winner() {
    for order in [["a", "b", "c"], ["c", "a", "b"]] {
        let l = lun();
        let nodes: Vec<Arc<Mutex<Node>>> = order
            .iter()
            .enumerate()
            .map(|(i, n)| Arc::new(Mutex::new(node(&l, n, &[i + 1]))))
            .collect();
        let first = nodes[0].clone();
        let mut results = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            let mut n = n.lock().unwrap();
            if i > 0 {
                // the holder's defender ticks while later ones challenge
                let d = first.clone();
                n.paths[0].hook = Some(Box::new(move |_, _| {
                    defend(&d, RO);
                    Fault::Pass
                }));
            }
            results.push((n.name.clone(), challenge(&mut n, RO)));
        }
        let wins: Vec<&str> = results
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(wins, [order[0]], "{results:?}");
        let x = l.lock().unwrap();
        assert_eq!(x.keys(), vec![key(order[0])], "{x:?}");
        for (n, r) in &results[1..] {
            let f = r.as_ref().unwrap_err();
            assert_eq!(f.exit, Exit::Fenced, "{n}: {f}");
            assert!(f.message.contains("defended the disk"), "{n}: {f}");
        }
    }
}

/// A defender never registers: a holder whose key is gone sends nothing at all.
#[test]
fn a_holder_that_lost_sends_nothing() {
    let l = lun();
    let a = Arc::new(Mutex::new(node(&l, "a", &[1])));
    restore(&mut a.lock().unwrap(), RO).unwrap();
    let mut b = node(&l, "b", &[2]);
    restore(&mut b, RO).unwrap();
    let outs = l.lock().unwrap().pr_out;
    assert_eq!(defend(&a, RO), Defense::Lost);
    let x: &Lun = &l.lock().unwrap();
    assert_eq!(x.pr_out, outs);
    assert_eq!(x.keys(), vec![key("b")]);
}
