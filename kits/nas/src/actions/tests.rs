//! The judgement of one look ([`judge`]) and recover's decision ([`repair`]), case by case,
//! from made-up observations: no mount, no server, no child process.

use std::time::{Duration, Instant};

use nas::probe::{FailKind, ProbeError};
use nas::{IoCheck, NfsConfig, mountinfo};

use super::*;

fn settings(version: Version) -> Settings {
    let now = Instant::now();
    Settings {
        cfg: NfsConfig::new(
            "192.0.2.1".parse().unwrap(),
            "/export",
            "/mnt/data",
            version,
            None,
        )
        .unwrap(),
        io_check: IoCheck::Stat,
        halt_on_failure: false,
        deadline: now,
        check_deadline: now,
        check_budget: Duration::from_millis(1500),
        tag: "share".into(),
        server_known: true,
        server_name: "192.0.2.1".into(),
    }
}

fn entry(source: &str, options: &str) -> mountinfo::MountEntry {
    mountinfo::parse(&format!(
        "40 1 0:50 / /mnt/data rw - nfs {source} rw,{options}\n"
    ))
    .unwrap()
    .remove(0)
}

fn ours(vers: &str) -> State {
    State::Ours {
        entry: entry("192.0.2.1:/export", &format!("vers={vers},addr=192.0.2.1")),
        mismatches: vec![],
    }
}

fn failed(kind: FailKind) -> Probe {
    Probe {
        error: Some(ProbeError {
            step: "nfs NULL".into(),
            kind,
            detail: "waited in vain".into(),
            elapsed: Duration::from_millis(1500),
        }),
        ..Probe::default()
    }
}

/// One row: the observation, and the problems the judgement must name (check, verdict,
/// message), in order.
struct Case {
    what: &'static str,
    version: Version,
    mount: State,
    negotiated: Option<Version>,
    probe: Probe,
    v4_hint: Option<&'static str>,
    io: Option<IoOutcome>,
    want: Vec<(Check, &'static str, &'static str)>,
}

impl Case {
    fn new(what: &'static str, mount: State) -> Case {
        Case {
            what,
            version: Version::V3,
            mount,
            negotiated: None,
            probe: Probe::default(),
            v4_hint: None,
            io: None,
            want: vec![],
        }
    }
}

#[test]
fn every_check_judged_from_what_was_seen() {
    let ok = || Some(IoOutcome::Ok(Duration::from_micros(70)));
    let cases = vec![
        Case {
            io: ok(),
            ..Case::new("healthy", ours("3"))
        },
        Case {
            want: vec![(
                Check::Mount,
                "not mounted",
                "not mounted: 192.0.2.1:/export is not mounted on /mnt/data (recover mounts it again)",
            )],
            ..Case::new("not mounted", State::NotMounted)
        },
        Case {
            want: vec![(
                Check::Mount,
                "not mounted",
                "not mounted: /mnt/data holds 10.9.9.9:/other (nfs) instead of 192.0.2.1:/export",
            )],
            ..Case::new(
                "something else mounted",
                State::Other(entry("10.9.9.9:/other", "vers=3")),
            )
        },
        Case {
            io: ok(),
            want: vec![(
                Check::Mount,
                "not mounted as configured",
                "not mounted as configured: 192.0.2.1:/export on /mnt/data: soft instead of hard",
            )],
            ..Case::new(
                "options differ",
                State::Ours {
                    entry: entry("192.0.2.1:/export", "vers=3,soft"),
                    mismatches: vec!["soft instead of hard".into()],
                },
            )
        },
        Case {
            version: Version::V4,
            negotiated: Some(Version::V4_2),
            io: ok(),
            want: vec![(
                Check::Mount,
                "not mounted as negotiated",
                "not mounted as negotiated: 192.0.2.1:/export on /mnt/data is NFS 4.1, restore negotiated NFS 4.2",
            )],
            ..Case::new("another minor version", ours("4.1"))
        },
        Case {
            version: Version::V4,
            negotiated: Some(Version::V4_1),
            io: ok(),
            ..Case::new("the negotiated minor version", ours("4.1"))
        },
        Case {
            probe: failed(FailKind::Timeout),
            io: ok(),
            want: vec![(
                Check::Server,
                "server not answering",
                "server not answering: 192.0.2.1 (NFS v3) nfs NULL: no answer after 1500 ms (waited in vain)",
            )],
            ..Case::new("server silent", ours("3"))
        },
        Case {
            probe: failed(FailKind::Denied),
            io: ok(),
            want: vec![(
                Check::Server,
                "server answers but refuses",
                "server answers but refuses: 192.0.2.1 (NFS v3) nfs NULL: denied after 1500 ms (waited in vain): check the export and the server's NFS services",
            )],
            ..Case::new("server refuses", ours("3"))
        },
        Case {
            probe: failed(FailKind::Refused),
            v4_hint: Some("server offers only NFSv4: set VERSION=4.2"),
            want: vec![
                (
                    Check::Mount,
                    "not mounted",
                    "not mounted: 192.0.2.1:/export is not mounted on /mnt/data (recover mounts it again)",
                ),
                (
                    Check::Server,
                    "server offers only NFSv4",
                    "server offers only NFSv4: set VERSION=4.2",
                ),
            ],
            ..Case::new("v3 refused, v4 answers", State::NotMounted)
        },
        Case {
            probe: failed(FailKind::Malformed),
            io: ok(),
            want: vec![(
                Check::Server,
                "server sent a malformed reply",
                "server sent a malformed reply: 192.0.2.1 (NFS v3) nfs NULL: malformed reply after 1500 ms (waited in vain): check what answers on that address (a broken or hostile server)",
            )],
            ..Case::new("server sends garbage", ours("3"))
        },
        Case {
            io: Some(IoOutcome::Failed(nix::errno::Errno::ESTALE)),
            want: vec![(
                Check::Io,
                "file handle stale",
                "the export's file handle is stale (the server changed the export): stat of /mnt/data failed with ESTALE: the export was re-created or moved to another file system (new fsid), or another server answers at 192.0.2.1; recover unmounts and mounts it afresh",
            )],
            ..Case::new("stale handle", ours("3"))
        },
        Case {
            io: Some(IoOutcome::TimedOut),
            want: vec![(
                Check::Io,
                "mount wedged",
                "mount wedged: stat of /mnt/data did not return within 1500 ms; the check process was killed",
            )],
            ..Case::new("IO check timed out", ours("3"))
        },
        Case {
            io: Some(IoOutcome::Stuck {
                pid: 4242,
                earlier: true,
            }),
            want: vec![(
                Check::Io,
                "mount wedged",
                "mount wedged: an earlier check process (4242) is still stuck in the kernel on /mnt/data; no new check was started",
            )],
            ..Case::new("an earlier IO check stuck", ours("3"))
        },
    ];
    for c in cases {
        let s = settings(c.version);
        let got: Vec<(Check, &str, String)> = judge(
            &s,
            &c.mount,
            c.negotiated,
            &c.probe,
            c.v4_hint.map(str::to_owned),
            c.io.as_ref(),
        )
        .into_iter()
        .map(|p| (p.check, p.verdict, p.message))
        .collect();
        let want: Vec<(Check, &str, String)> = c
            .want
            .iter()
            .map(|(k, v, m)| (*k, *v, (*m).to_owned()))
            .collect();
        assert_eq!(got, want, "{}", c.what);
    }
}

fn health(mount: State, problems: &[(Check, &'static str)]) -> Health {
    Health {
        source: "192.0.2.1:/export".into(),
        mount_point: "/mnt/data".into(),
        version: Version::V3,
        negotiated: None,
        server: "192.0.2.1 (NFS v3)".into(),
        server_check: "portmapper, MOUNT MNT, NFS NULL + GETATTR".into(),
        io_check: IoCheck::Stat,
        mount,
        probe: Probe::default(),
        io: None,
        learnt: None,
        problems: problems
            .iter()
            .map(|(check, verdict)| Problem::new(*check, verdict, format!("{verdict}: details")))
            .collect(),
    }
}

/// Recover decides on every check by name: a server problem fails over whatever else is
/// wrong; a mount or IO problem remounts (unmounting ours first); another mount is left alone.
#[test]
fn recover_decides_on_every_check() {
    let server = (Check::Server, "server not answering");
    let mount = (Check::Mount, "not mounted");
    let io = (Check::Io, "mount wedged");
    let other = State::Other(entry("10.9.9.9:/other", "vers=3"));
    let cases = [
        ("healthy", health(ours("3"), &[]), Repair::Nothing),
        (
            "server silent",
            health(ours("3"), &[server]),
            Repair::FailOver("server not answering: details".into()),
        ),
        (
            "not mounted, server silent",
            health(State::NotMounted, &[mount, server]),
            Repair::FailOver("server not answering: details".into()),
        ),
        (
            "not mounted",
            health(State::NotMounted, &[mount]),
            Repair::Remount { unmount: false },
        ),
        (
            "wedged",
            health(ours("3"), &[io]),
            Repair::Remount { unmount: true },
        ),
        (
            "stale handle",
            health(ours("3"), &[(Check::Io, "file handle stale")]),
            Repair::Remount { unmount: true },
        ),
        (
            "server sends garbage",
            health(
                ours("3"),
                &[(Check::Server, "server sent a malformed reply")],
            ),
            Repair::FailOver("server sent a malformed reply: details".into()),
        ),
        (
            "options differ and wedged",
            health(
                ours("3"),
                &[(Check::Mount, "not mounted as configured"), io],
            ),
            Repair::Remount { unmount: true },
        ),
        (
            "something else mounted",
            health(other, &[mount]),
            Repair::Foreign {
                source: "10.9.9.9:/other".into(),
                fstype: "nfs".into(),
            },
        ),
    ];
    for (what, h, want) in cases {
        assert_eq!(repair(&h), want, "{what}");
    }
}

/// What a full v3 chain learnt is recorded only when the record lacks or contradicts it.
#[test]
fn only_new_knowledge_is_to_be_recorded() {
    let s = settings(Version::V3);
    let k = probe::Known {
        root_fh: vec![1, 2, 3],
        nfs_port: 2049,
        mount_port: 20048,
    };
    let record = |known: Option<probe::Known>, version| Learnt {
        server: s.cfg.server,
        export: s.cfg.export.clone(),
        version,
        known,
    };
    assert_eq!(to_record(&s, None, k.clone()), Some(k.clone()), "no record");
    let same = record(Some(k.clone()), Version::V3);
    assert_eq!(to_record(&s, Some(&same), k.clone()), None, "known already");
    let moved = probe::Known {
        mount_port: 892,
        ..k.clone()
    };
    assert_eq!(
        to_record(&s, Some(&same), moved.clone()),
        Some(moved),
        "MOUNT moved"
    );
    let other_version = record(Some(k.clone()), Version::V4);
    assert_eq!(
        to_record(&s, Some(&other_version), k.clone()),
        Some(k),
        "a record of another version"
    );
}
