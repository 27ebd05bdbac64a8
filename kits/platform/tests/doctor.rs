//! `doctor` over resources found in configuration files and run state, with stand-in kits
//! beside a copy of the binary that answer `status -t TAG --json` as told (the real kits are
//! asked in the VM test, `tests/tests/doctor_vm.rs`): healthy, one broken, one hanging, a
//! refused configuration, the defender's report, a Pacemaker-only tag, --standby, --json.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use common::{Scratch, code, stderr, stdout};

struct Node {
    _s: Scratch,
    dir: PathBuf,
}

const HEALTHY_DISK: &str = r#"{"tag":"disk","healthy":true,"verdict":"ours","exit":0,"message":"disk: held by this node","lus":[],"defender":{"running":true,"pid":812,"last_tick_age_s":2,"note":"judged every 5 s"}}"#;
const HEALTHY_SHARE: &str = r#"{"tag":"share","healthy":true,"verdict":"healthy","exit":0,"message":"10.0.2.2:/export on /mnt/share is healthy"}"#;
const HEALTHY_VIP: &str = r#"{"tag":"vip","healthy":true,"verdict":"healthy","exit":0,"message":"10.0.2.50/24 on eth0 is healthy"}"#;

impl Node {
    /// A node with disk (scsipr), share (nas) and vip (ip) configured and run here, the kits
    /// answering healthy.
    fn new(name: &str) -> Node {
        let s = Scratch::new(name);
        let dir = s.path().to_path_buf();
        let bin = dir.join("bin");
        for d in [
            "bin",
            "conf",
            "answers",
            "run/scsipr/disk",
            "run/nas/share",
            "run/ip/vip",
        ] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::copy(common::BIN, bin.join("lkh-platform")).unwrap();
        for kit in ["scsipr", "nas", "ip"] {
            let p = bin.join(format!("lkh-{kit}"));
            std::fs::write(
                &p,
                format!(
                    r#"#!/bin/sh
[ "$1 $2 $4" = "status -t --json" ] || {{ echo "bad argv: $*" >&2; exit 2; }}
f='{answers}/{kit}-'"$3"
[ -f "$f.hang" ] && sleep 60
[ -f "$f.refuse" ] && {{ echo "lkh-{kit}[$3]: error: $(cat "$f.refuse")" >&2; exit 2; }}
cat "$f.json"
exit "$(cat "$f.rc" 2>/dev/null || echo 0)"
"#,
                    answers = dir.join("answers").display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        for (tag, text) in [
            ("disk", "DEVICE=/dev/sdb\n"),
            ("share", "SERVER=10.0.2.2\n"),
            ("vip", "ADDRESS=10.0.2.50/24\n"),
        ] {
            std::fs::write(dir.join("conf").join(format!("{tag}.conf")), text).unwrap();
        }
        let n = Node { _s: s, dir };
        n.answer("scsipr", "disk", HEALTHY_DISK, 0);
        n.answer("nas", "share", HEALTHY_SHARE, 0);
        n.answer("ip", "vip", HEALTHY_VIP, 0);
        n
    }

    fn answer(&self, kit: &str, tag: &str, json: &str, rc: i32) {
        let a = self.dir.join("answers");
        std::fs::write(a.join(format!("{kit}-{tag}.json")), json).unwrap();
        std::fs::write(a.join(format!("{kit}-{tag}.rc")), rc.to_string()).unwrap();
    }

    fn flag(&self, kit: &str, tag: &str, what: &str, text: &str) {
        std::fs::write(
            self.dir.join("answers").join(format!("{kit}-{tag}.{what}")),
            text,
        )
        .unwrap();
    }

    fn doctor(&self, extra: &[&str]) -> Output {
        let mut c = std::process::Command::new(self.dir.join("bin/lkh-platform"));
        c.env("LKHELPERS_NO_SYSLOG", "1")
            .env("LKHELPERS_CONF_DIR", self.dir.join("conf"))
            .env("LKHELPERS_RUN_DIR", self.dir.join("run"))
            .env_remove("LKROOT")
            .env_remove("RUST_LOG")
            .args(["doctor", "--no-network", "--defaults"])
            .arg(self.dir.join("no-lifekeeper"))
            .args(extra);
        // another test thread's fork may briefly hold the fresh copy open for writing
        for _ in 0..100 {
            match c.output() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                r => return r.unwrap(),
            }
        }
        panic!("the copy of lkh-platform stayed busy");
    }
}

/// The table row of `tag`, its cells joined by one space.
fn row(out: &str, tag: &str) -> String {
    out.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(tag))
        .unwrap_or_else(|| panic!("no row for {tag}:\n{out}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn healthy_node_then_one_broken_resource() {
    let n = Node::new("doctor-healthy");
    let o = n.doctor(&[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out}{}", stderr(&o));
    assert!(
        row(&out, "disk").starts_with("lkh-scsipr disk healthy 0 ours"),
        "{out}"
    );
    assert!(
        row(&out, "share").ends_with("10.0.2.2:/export on /mnt/share is healthy"),
        "{out}"
    );
    assert!(row(&out, "vip").contains("healthy"), "{out}");
    common::has(
        &out,
        "defender (lkh-scsipr watch): running, pid 812, last cycle 2.0 s ago: judged every 5 s",
    );
    common::has(&out, "result: healthy");
    assert!(out.contains("lifekeeper: not checked ("), "{out}");

    n.answer(
        "nas",
        "share",
        r#"{"tag":"share","healthy":false,"verdict":"server not answering","exit":1,"message":"10.0.2.2 does not answer NFS NULL within 5 s: check the server"}"#,
        1,
    );
    let o = n.doctor(&[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}");
    assert!(
        row(&out, "share").contains("lkh-nas share FAILED 1 server not answering 10.0.2.2"),
        "{out}"
    );
    assert!(
        out.contains(
            "result: NOT HEALTHY (1 problem)\n  - share (lkh-nas): failed: 10.0.2.2 does not answer"
        ),
        "{out}"
    );
    let o = n.doctor(&["--json"]);
    let json = stdout(&o);
    assert_eq!(code(&o), 1);
    assert!(
        json.starts_with(r#"{"node":"#) && json.contains(r#""healthy":false,"exit":1"#),
        "{json}"
    );
    assert!(
        json.contains(r#"{"kit":"nas","tag":"share","found_in":["conf","run state"],"state":"failed","healthy":false,"problem":true,"exit":1,"verdict":"server not answering""#),
        "{json}"
    );
    assert!(
        json.contains(r#"{"kit":"ip","tag":"vip","found_in":["conf","run state"],"state":"healthy","healthy":true,"problem":false,"exit":0"#),
        "{json}"
    );
    assert!(
        json.contains(r#""defender":{"state":"running","running":true,"pid":812"#),
        "{json}"
    );
}

#[test]
fn a_hanging_kit_is_killed_and_said_and_others_still_answer() {
    let n = Node::new("doctor-hang");
    n.flag("ip", "vip", "hang", "");
    let t = Instant::now();
    let o = n.doctor(&["--timeout", "1"]);
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}");
    assert!(
        row(&out, "vip").contains("NO ANSWER")
            && row(&out, "vip").contains("did not answer within 1 s and was killed"),
        "{out}"
    );
    assert!(row(&out, "disk").contains("healthy"), "{out}");
}

#[test]
fn a_refused_configuration_and_an_unknown_kit() {
    let n = Node::new("doctor-conf");
    n.flag(
        "nas",
        "share",
        "refuse",
        "/etc/lkhelpers/share.conf:1: unknown key SERVR: did you mean SERVER?",
    );
    std::fs::write(n.dir.join("conf/orphan.conf"), "X=1\n").unwrap();
    let o = n.doctor(&[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}");
    assert!(
        row(&out, "share").contains("MISCONFIGURED 2 - lkh-nas[share]: error: /etc/lkhelpers/share.conf:1: unknown key SERVR"),
        "{out}"
    );
    assert!(
        row(&out, "orphan").contains("not checked")
            && row(&out, "orphan").contains("no gen/app resource or run state names its kit"),
        "{out}"
    );
    assert_eq!(
        out.matches("\n  - ").count(),
        1,
        "only share is a problem: {out}"
    );
}

#[test]
fn the_defender_not_running_or_not_reported() {
    let n = Node::new("doctor-defender");
    n.answer(
        "scsipr",
        "disk",
        &HEALTHY_DISK.replace(
            r#""running":true,"pid":812,"last_tick_age_s":2,"note":"judged every 5 s""#,
            r#""running":false,"pid":null,"last_tick_age_s":null,"note":"lkh-scsipr-watch.service is not active""#,
        ),
        0,
    );
    let o = n.doctor(&[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}");
    common::has(
        &out,
        "defender (lkh-scsipr watch): NOT RUNNING: lkh-scsipr-watch.service is not active",
    );
    assert!(
        out.contains("systemctl enable --now lkh-scsipr-watch"),
        "{out}"
    );
    // an lkh-scsipr that does not report it
    n.answer(
        "scsipr",
        "disk",
        r#"{"tag":"disk","verdict":"ours","exit":0,"message":"held"}"#,
        0,
    );
    let o = n.doctor(&[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out}");
    common::has(
        &out,
        "defender (lkh-scsipr watch): unknown (lkh-scsipr too old to report it)",
    );
}

#[test]
fn pacemaker_only_tags_are_listed_and_standby_expects_nothing_here() {
    let n = Node::new("doctor-standby");
    std::fs::create_dir_all(n.dir.join("run/ip/ocfvip")).unwrap();
    for (kit, tag) in [("nas", "share"), ("ip", "vip")] {
        n.answer(
            kit,
            tag,
            &format!(r#"{{"tag":"{tag}","verdict":"not here","exit":1,"message":"not in service on this node"}}"#),
            1,
        );
    }
    n.answer(
        "scsipr",
        "disk",
        r#"{"tag":"disk","verdict":"fenced","exit":3,"message":"another node holds it"}"#,
        3,
    );
    let o = n.doctor(&[]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    let o = n.doctor(&["--standby"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out}");
    assert!(row(&out, "share").contains("not here"), "{out}");
    assert!(row(&out, "disk").contains("not here 3 fenced"), "{out}");
    assert!(
        row(&out, "ocfvip").contains("not checked")
            && row(&out, "ocfvip").contains("Pacemaker resource"),
        "{out}"
    );
    common::has(&out, "result: healthy");
}

#[test]
fn a_kit_others_could_change_is_not_run() {
    let n = Node::new("doctor-trust");
    let p = n.dir.join("bin/lkh-nas");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = n.doctor(&[]);
    let out = stdout(&o);
    assert!(
        row(&out, "share").contains("not checked")
            && row(&out, "share").contains("writable by group or others"),
        "{out}"
    );
}
