//! A node that lost the disk never takes it back (issue 28): quickCheck and recover judged with
//! this node's memory of the disk (its records, with the PR generation of its last look), over
//! the in-memory SPC-4 LU. Each check is run the way the hook runs it: the memory from the
//! records, and the records updated from what the check saw, whatever its verdict.

use lkh_common::{Exit, Failure};
use sg_persist::PrType;

use crate::actions::check::check_lu_seen;
use crate::actions::records::{Done, LuRecord, Memory};
use crate::model::Node;
use crate::pr::Nexus;
use crate::race_tests::{RO, deadline, key, lun, node, registered, restore};

/// quickCheck (`repair` false) or recover as the hook runs it on one LU: judged with the
/// record `rec`, which is then updated from what the check saw.
fn check(n: &mut Node, repair: bool, rec: &mut Option<LuRecord>) -> Result<Done, Failure> {
    let mem = Memory {
        seen: rec.as_ref(),
        was_holder: rec.as_ref().is_some_and(|r| !r.lost),
    };
    let (out, seen) = check_lu_seen(n, key(&n.name), RO, repair, mem, deadline());
    *rec = LuRecord::after(rec.as_ref(), &out, seen);
    out
}

fn remove(n: &mut Node) {
    crate::actions::remove::remove_lu(n, key(&n.name), RO, deadline()).unwrap();
}

fn fenced(r: &Result<Done, Failure>, what: &str) {
    let f = r.as_ref().unwrap_err();
    assert_eq!(f.exit, Exit::Fenced, "{what}: {f}");
    assert!(f.message.contains("taken over"), "{what}: {f}");
}

/// A holds; B takes over and then releases (its remove): the disk is empty and its PR
/// generation went up. A's quickCheck and recover say "taken over" (exit 3), recover
/// registers nothing, and A keeps saying so: only a restore takes the disk again.
#[test]
fn taken_over_and_released_is_never_taken_back() {
    for t in [
        RO,
        PrType::WriteExclusive,
        PrType::ExclusiveAccessAllRegistrants,
    ] {
        let l = lun();
        let mut a = node(&l, "a", &[1, 4]);
        let mut b = node(&l, "b", &[2]);
        let (_, rec) =
            crate::actions::restore::restore_lu(&mut a, key("a"), t, deadline()).unwrap();
        let mut rec = Some(rec);
        crate::actions::restore::restore_lu(&mut b, key("b"), t, deadline()).unwrap();
        crate::actions::remove::remove_lu(&mut b, key("b"), t, deadline()).unwrap();
        let outs = l.lock().unwrap().pr_out;
        let mem = Memory {
            seen: rec.as_ref(),
            was_holder: true,
        };
        let (q, seen) = check_lu_seen(&mut a, key("a"), t, false, mem, deadline());
        fenced(&q, &format!("{t}: quickCheck"));
        rec = LuRecord::after(rec.as_ref(), &q, seen);
        assert!(rec.as_ref().unwrap().lost, "{t}: remembered as lost");
        let mem = Memory {
            seen: rec.as_ref(),
            was_holder: false,
        };
        let (r, _) = check_lu_seen(&mut a, key("a"), t, true, mem, deadline());
        fenced(&r, &format!("{t}: recover"));
        let x = l.lock().unwrap();
        assert_eq!(x.pr_out, outs, "{t}: A sent a PR OUT");
        assert!(x.keys().is_empty() && x.res.is_none(), "{t}: {x:?}");
    }
}

/// Another initiator's PR OUT CLEAR: the generation goes up, so it is not a lost PR state.
#[test]
fn a_foreign_clear_is_not_taken_back() {
    let l = lun();
    let mut a = node(&l, "a", &[1]);
    let mut c = node(&l, "c", &[3]);
    let mut rec = Some(restore(&mut a, RO).unwrap().1);
    c.paths[0].register_ignore(key("c"), deadline()).unwrap();
    c.paths[0].clear(key("c")).unwrap();
    assert!(l.lock().unwrap().keys().is_empty());
    fenced(&check(&mut a, false, &mut rec), "quickCheck");
    fenced(&check(&mut a, true, &mut rec), "recover");
    assert!(!registered(&l, key("a")));
}

/// A target power cycle (PRgeneration back to zero): the PR state is lost, not taken; recover
/// takes it again, and the check after that is healthy.
#[test]
fn a_power_cycle_is_a_lost_state_and_recover_takes_it_again() {
    let l = lun();
    let mut a = node(&l, "a", &[1, 4]);
    let mut rec = Some(restore(&mut a, RO).unwrap().1);
    assert!(l.lock().unwrap().generation > 0);
    l.lock().unwrap().power_cycle(&[1, 4]);
    let f = check(&mut a, false, &mut rec).unwrap_err();
    assert_eq!(f.exit, Exit::Failed, "{f}");
    assert!(
        f.message.contains("lost its persistent-reservation state"),
        "{f}"
    );
    assert_eq!(
        rec.as_ref().unwrap().generation,
        Some(0),
        "the look is remembered"
    );
    check(&mut a, true, &mut rec).unwrap();
    assert_eq!(l.lock().unwrap().holder_key(), Some(key("a")));
    check(&mut a, false, &mut rec).unwrap();
}

/// The PR state was lost, this node saw it (its record holds generation 0), and then another
/// node took the disk and released it: the generation went up from what this node saw last,
/// so recover does not take it.
#[test]
fn a_lost_state_changed_by_another_node_is_not_taken_back() {
    let l = lun();
    let mut a = node(&l, "a", &[1]);
    let mut b = node(&l, "b", &[2]);
    let mut rec = Some(restore(&mut a, RO).unwrap().1);
    l.lock().unwrap().power_cycle(&[1, 2]);
    assert_eq!(
        check(&mut a, false, &mut rec).unwrap_err().exit,
        Exit::Failed
    );
    restore(&mut b, RO).unwrap();
    remove(&mut b);
    fenced(&check(&mut a, true, &mut rec), "recover");
    assert!(!registered(&l, key("a")));
}

/// A fenced verdict is remembered: after B took over, A's quickCheck says fenced; when B then
/// releases, A still says "taken over" and recover registers nothing.
#[test]
fn a_fenced_node_stays_fenced_when_the_winner_leaves() {
    let l = lun();
    let mut a = node(&l, "a", &[1]);
    let mut b = node(&l, "b", &[2]);
    let mut rec = Some(restore(&mut a, RO).unwrap().1);
    restore(&mut b, RO).unwrap();
    let f = check(&mut a, false, &mut rec).unwrap_err();
    assert_eq!(f.exit, Exit::Fenced, "{f}");
    assert!(rec.as_ref().unwrap().lost);
    remove(&mut b);
    fenced(&check(&mut a, false, &mut rec), "quickCheck");
    fenced(&check(&mut a, true, &mut rec), "recover");
    assert!(!registered(&l, key("a")));
    // a restore (LifeKeeper bringing the resource here) takes it afresh
    let (_, fresh) = restore(&mut a, RO).unwrap();
    assert!(!fresh.lost);
}

/// A healthy check records the generation it saw (every look is remembered), so a challenge
/// the owner defended does not later make an empty disk look taken over.
#[test]
fn every_look_records_the_generation() {
    let l = lun();
    let mut a = node(&l, "a", &[1]);
    let mut c = node(&l, "c", &[3]);
    let mut rec = Some(restore(&mut a, RO).unwrap().1);
    // someone registers and goes again: the generation moves while A holds
    c.paths[0].register_ignore(key("c"), deadline()).unwrap();
    c.paths[0].register_ignore(0, deadline()).unwrap();
    check(&mut a, false, &mut rec).unwrap();
    let g = l.lock().unwrap().generation;
    assert_eq!(rec.as_ref().unwrap().generation, Some(g));
    // then the target loses its state: not taken over
    l.lock().unwrap().power_cycle(&[1, 3]);
    check(&mut a, true, &mut rec).unwrap();
    assert_eq!(l.lock().unwrap().holder_key(), Some(key("a")));
}

/// A resource of two disks whose first disk does not answer: remove still releases the
/// second (it used to stop at the first), and exits 0 only because no disk that answered
/// keeps this node's key.
#[test]
fn remove_releases_every_disk_it_can_reach() {
    use crate::actions::remove::remove_each;
    let l2 = lun();
    let mut a2 = node(&l2, "a", &[1, 4]);
    restore(&mut a2, RO).unwrap();
    let gone = Failure::failed("/dev/mapper/a1: no path answers");
    let out = remove_each(vec![Err(gone), Ok(a2)], key("a"), RO, deadline());
    assert_eq!(out.len(), 2);
    assert!(
        out[0]
            .as_ref()
            .unwrap()
            .contains("does not answer from this node"),
        "{out:?}"
    );
    assert!(
        out[0].as_ref().unwrap().contains("/dev/mapper/a1"),
        "{out:?}"
    );
    assert!(
        out[1]
            .as_ref()
            .unwrap()
            .contains("released and unregistered"),
        "{out:?}"
    );
    let x = l2.lock().unwrap();
    assert!(x.keys().is_empty() && x.res.is_none(), "{x:?}");
    drop(x);
    // a disk that answers but keeps the key (every unregister refused) is a failure
    let l3 = lun();
    let mut a3 = node(&l3, "a", &[1]);
    restore(&mut a3, RO).unwrap();
    a3.paths[0].hook = Some(Box::new(|_, cmd| {
        if cmd.starts_with("READ") {
            crate::model::Fault::Pass
        } else {
            crate::model::Fault::Timeout
        }
    }));
    let out = remove_each(vec![Ok(a3)], key("a"), RO, deadline());
    assert_eq!(out[0].as_ref().unwrap_err().exit, Exit::Failed, "{out:?}");
}

/// The fence agent (issue 28 item 2): both nodes unfenced, B fences A, then A — not rebooted
/// — tries to fence B, as both sides of a split do: A's key is gone from the LU, so A's `off`
/// fails (exit 1) and changes nothing; B keeps the disk.
mod fence_off {
    use super::*;
    use crate::fence::keymap::KeyMap;
    use crate::fence::ops::off_lu;
    use crate::model::Fault;

    const WERO: PrType = PrType::WriteExclusiveRegistrantsOnly;

    fn map() -> KeyMap {
        KeyMap::parse(&format!("node-a:{:#x},node-b:{:#x}", key("a"), key("b"))).unwrap()
    }

    /// `on` for node `n`: every path registered, reserved when nobody holds.
    fn unfence(n: &mut Node) {
        let k = key(&n.name);
        for p in &mut n.paths {
            p.register_ignore(k, deadline()).unwrap();
        }
        let _ = n.paths[0].reserve(k, WERO, deadline());
    }

    #[test]
    fn a_fenced_node_cannot_fence_the_winner() {
        let l = lun();
        let (mut a, mut b) = (node(&l, "a", &[1, 4]), node(&l, "b", &[2]));
        unfence(&mut a);
        unfence(&mut b);
        off_lu(&mut b, &map(), "node-a", key("b"), key("a"), deadline()).unwrap();
        assert!(!registered(&l, key("a")));
        let (generation, outs) = {
            let x = l.lock().unwrap();
            (x.generation, x.pr_out)
        };
        let f = off_lu(&mut a, &map(), "node-b", key("a"), key("b"), deadline()).unwrap_err();
        assert_eq!(f.exit, Exit::Failed, "{f}");
        assert!(f.message.contains("has been fenced itself"), "{f}");
        let x = l.lock().unwrap();
        assert_eq!(
            (x.generation, x.pr_out),
            (generation, outs),
            "A changed the disk"
        );
        assert_eq!(x.holder_key(), Some(key("b")));
    }

    /// A nexus changed by a reconnect (the key is still registered on the node's old nexus):
    /// the new one is registered, and the victim fenced.
    #[test]
    fn a_node_registered_on_another_nexus_fences_through_its_new_one() {
        let l = lun();
        let (mut a, mut b) = (node(&l, "a", &[1]), node(&l, "b", &[2]));
        unfence(&mut a);
        unfence(&mut b);
        a.paths[0].nexus = 9; // a new session id after a reconnect: nexus 1 keeps A's key
        off_lu(&mut a, &map(), "node-b", key("a"), key("b"), deadline()).unwrap();
        let x = l.lock().unwrap();
        assert!(!x.keys().contains(&key("b")));
        assert_eq!(x.key_of(9), Some(key("a")));
    }

    /// B fences A right after A read the keys and before A registers its new nexus: A's
    /// REGISTER lands on a LU where its key is gone; the count after it shows that, A removes
    /// what it added and fails; B keeps the disk and its registration.
    #[test]
    fn a_node_fenced_while_it_registers_again_removes_what_it_added() {
        for at in 1..=3 {
            let l = lun();
            let (mut a, mut b) = (node(&l, "a", &[1]), node(&l, "b", &[2]));
            unfence(&mut a);
            unfence(&mut b);
            a.paths[0].nexus = 9;
            a.paths[0].sent = 0;
            let mut b = Some(b);
            a.paths[0].hook = Some(Box::new(move |n, _| {
                if n == at
                    && let Some(mut b) = b.take()
                {
                    off_lu(&mut b, &map(), "node-a", key("b"), key("a"), deadline()).unwrap();
                }
                Fault::Pass
            }));
            let r = off_lu(&mut a, &map(), "node-b", key("a"), key("b"), deadline());
            let x = l.lock().unwrap();
            assert!(r.is_err(), "at {at}: A fenced B after it was fenced: {x:?}");
            assert!(x.keys().contains(&key("b")), "at {at}: {x:?}");
            assert!(
                !x.keys().contains(&key("a")),
                "at {at}: A still registered: {x:?}"
            );
            assert_eq!(x.holder_key(), Some(key("b")), "at {at}");
        }
    }
}
