//! `status`'s unit tests: the assessment rendered as JSON and text over the model, and that
//! it agrees with quickCheck.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lkh_common::{Exit, Hint};

use super::*;
use crate::actions::assess::assess_lu;
use crate::actions::check::check_lu;
use crate::actions::records::{Done, LuRecord, Memory};
use crate::actions::restore::restore_lu;
use crate::model::{Fault, Lun, Node};
use crate::pr::Nexus;
use sg_persist::exec::block_on;

const RO: PrType = PrType::WriteExclusiveRegistrantsOnly;

fn key(n: &str) -> u64 {
    0x4c4b_0000_0000_0000 | u64::from(n.as_bytes()[0])
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

/// Node `a`'s `status -t db` (JSON and text, from one assessment), checked to send no
/// PR OUT, then its quickCheck on the same state.
fn status_then_quickcheck(
    l: &Arc<Mutex<Lun>>,
    a: &mut Node,
    mem: Memory<'_>,
) -> (String, String, Result<Done, Failure>) {
    let (generation, outs) = {
        let x = l.lock().unwrap();
        (x.generation, x.pr_out)
    };
    let h = Health {
        lus: vec![block_on(assess_lu(a, key("a"), RO, mem, deadline()))],
    };
    let tag = Tag::parse("db").unwrap();
    let d = Defender {
        running: false,
        pid: None,
        last_tick_age: None,
        note: "none".into(),
    };
    let json = health_json(&tag, &h, &d, vec![(String::new(), Json::Null)]).to_string();
    let text = health_text(&tag, &h, &d, vec![("disk:\n".into(), Json::Null)]);
    let x = l.lock().unwrap();
    assert_eq!(
        (x.generation, x.pr_out),
        (generation, outs),
        "status changed the disk"
    );
    drop(x);
    (
        json,
        text,
        block_on(check_lu(a, key("a"), RO, false, mem, deadline())),
    )
}

/// quickCheck and `status -t TAG --json` agree on every state: the exit code, `healthy`,
/// the verdict, and (when quickCheck only looked) the message; status never sends PR OUT.
/// Each state's path registrations and the JSON fields the README lists are checked too.
#[test]
fn quickcheck_and_status_agree() {
    fn with(rec: &LuRecord) -> Memory<'_> {
        Memory {
            seen: Some(rec),
            was_holder: true,
        }
    }
    type Setup = fn(&Arc<Mutex<Lun>>, &mut Node);
    // (state, setup, records kept, exit, verdict, the first path's registration: on a
    // target without READ FULL STATUS; with it, "registered" when it lists the nexus)
    let cases: [(&str, Setup, bool, u8, &str, &str); 10] = [
        ("healthy", |_, _| {}, true, 0, "ours", "recorded"),
        (
            "healthy, no record",
            |_, _| {},
            false,
            0,
            "ours",
            "not probed",
        ),
        (
            "a path that did not answer when opened",
            |_, a| a.dead = 1,
            true,
            0,
            "ours",
            "not probed",
        ),
        (
            "released behind our back",
            |_, a| block_on(a.paths[0].release(key("a"), RO, deadline())).unwrap(),
            true,
            1,
            "nobody holds",
            "recorded",
        ),
        (
            "wrong type",
            |_, a| {
                block_on(a.paths[0].release(key("a"), RO, deadline())).unwrap();
                let t = PrType::WriteExclusive;
                block_on(a.paths[0].reserve(key("a"), t, deadline())).unwrap();
            },
            true,
            1,
            "wrong type",
            "recorded",
        ),
        (
            "lost PR state",
            |l, _| {
                let mut x = l.lock().unwrap();
                x.regs.clear();
                x.res = None;
            },
            true,
            1,
            "lost PR state",
            "not registered",
        ),
        (
            "taken over",
            |l, _| {
                let mut b = Node::new(l, "b", &[2]);
                block_on(restore_lu(&mut b, key("b"), RO, deadline())).unwrap();
            },
            true,
            3,
            "fenced",
            "not registered",
        ),
        (
            "key gone, another registered",
            |l, _| {
                let mut x = l.lock().unwrap();
                x.regs.clear();
                x.res = None;
                x.regs.push((2, key("b")));
            },
            true,
            3,
            "fenced",
            "not registered",
        ),
        (
            "a path that lost its registration (a new nexus)",
            |_, a| a.paths[1].nexus = 7,
            true,
            0,
            "ours",
            "not probed",
        ),
        (
            "no path answers",
            |_, a| {
                for p in &mut a.paths {
                    p.hook = Some(Box::new(|_, _| Fault::Timeout));
                }
            },
            true,
            1,
            "no answer",
            "not probed",
        ),
    ];
    for ((what, setup, recorded, code, verdict, reg), full) in
        cases.into_iter().flat_map(|c| [(c, false), (c, true)])
    {
        let l = Arc::new(Mutex::new(Lun::default()));
        l.lock().unwrap().no_full_status = !full;
        let listed = full
            && ["recorded", "not probed"].contains(&reg)
            && !what.contains("nexus")
            && !what.contains("no path");
        let reg = if listed { "registered" } else { reg };
        let what = &format!(
            "{what} ({})",
            if full {
                "READ FULL STATUS"
            } else {
                "READ KEYS"
            }
        );
        let mut a = Node::new(&l, "a", &[1, 4]);
        let (_, rec) = block_on(restore_lu(&mut a, key("a"), RO, deadline())).unwrap();
        setup(&l, &mut a);
        let mem = if recorded {
            with(&rec)
        } else {
            Memory {
                seen: None,
                was_holder: true,
            }
        };
        let (json, text, q) = status_then_quickcheck(&l, &mut a, mem);
        let q_exit = q.as_ref().err().map_or(Exit::Ok, |f| f.exit);
        assert_eq!(q_exit.code(), code, "{what}: quickCheck {q:?}");
        for field in [
            format!("{{\"tag\":\"db\",\"healthy\":{},", code == 0),
            format!("\"verdict\":\"{verdict}\",\"exit\":{code},\"message\":"),
            format!(
                "\"paths\":[{{\"name\":\"ap0\",\"hctl\":\"\",\"registration\":\"{reg}\",\"answering\":true}}"
            ),
        ] {
            assert!(json.contains(&field), "{what}: {field} not in {json}");
        }
        for field in [
            "lus",
            "device",
            "key",
            "type",
            "reservation",
            "registrations",
            "our_registrations",
            "disk",
        ] {
            assert!(
                json.contains(&format!("\"{field}\":")),
                "{what}: {field}: {json}"
            );
        }
        assert!(
            text.contains(&format!("verdict: exit {code}: ")),
            "{what}: {text}"
        );
        // quickCheck that only looked says what status said
        if let Err(f) = &q {
            let m = Json::from(f.message.as_str()).to_string();
            assert!(json.contains(&format!("\"message\":{m}")), "{what}: {json}");
        } else if what.starts_with("healthy") && (listed || recorded) {
            let (m, _) = q.as_ref().unwrap();
            let m = Json::from(m.as_str()).to_string();
            assert!(json.contains(&format!("\"message\":{m}")), "{what}: {json}");
        }
        if verdict == "ours" {
            assert!(json.contains("\"owner\":\"this node\""), "{what}: {json}");
        }
        if what.contains("did not answer") {
            let dead = "{\"name\":\"ad0\",\"hctl\":\"\",\"registration\":\"no answer\",\"answering\":false,\"error\":";
            assert!(json.contains(dead), "{what}: {json}");
        }
    }
}

/// Without a record of holding it, a disk that lost its PR state is "not running here"
/// for both (Pacemaker's monitor), with the same exit code.
#[test]
fn lost_state_without_record_is_not_running_for_both() {
    let l = Arc::new(Mutex::new(Lun::default()));
    let mut a = Node::new(&l, "a", &[1]);
    let h = block_on(assess_lu(
        &mut a,
        key("a"),
        RO,
        Memory::default(),
        deadline(),
    ));
    let q = block_on(check_lu(
        &mut a,
        key("a"),
        RO,
        false,
        Memory::default(),
        deadline(),
    ));
    let (s, q) = (h.outcome().unwrap_err(), q.unwrap_err());
    assert_eq!((s.exit, s.hint), (Exit::Failed, Hint::NotRunning));
    assert_eq!(s, q);
}
