//! `check-cluster`: nodes' `detect --json` (this node from a sysroot, the others from --peer
//! files or through a LifeKeeper whose documented tools are stood in for by scripts) judged for
//! anti-affinity: all apart, two on one host, a host unknown; and `--attribute`.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Scratch, code, copy_tree, fixture, run, stderr, stdout};
use lkh_platform::kvp;

/// A Hyper-V node tree: the hyperv-kvp fixture with its own hostname, host and VM.
fn node_tree(dir: &Path, node: &str, host: &str, vm_id: &str) -> PathBuf {
    let root = dir.join(node);
    copy_tree(&fixture("hyperv-kvp"), &root);
    std::fs::write(root.join("proc/sys/kernel/hostname"), format!("{node}\n")).unwrap();
    let short = host.split('.').next().unwrap().to_ascii_uppercase();
    std::fs::write(
        root.join("var/lib/hyperv/.kvp_pool_3"),
        kvp::encode(&[
            ("HostName", host),
            ("PhysicalHostName", &short),
            ("PhysicalHostNameFullyQualified", host),
            ("VirtualMachineId", vm_id),
            ("VirtualMachineName", &format!("vm-{node}")),
        ]),
    )
    .unwrap();
    root
}

/// `detect --json` of a tree, saved as `<dir>/<name>.json`.
fn detect_json(root: &Path, dir: &Path, name: &str) -> PathBuf {
    let o = run(&[
        "detect",
        "--json",
        "--no-network",
        "--sysroot",
        root.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let f = dir.join(format!("{name}.json"));
    std::fs::write(&f, &o.stdout).unwrap();
    f
}

fn check(sysroot: &Path, peers: &[&Path], extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "check-cluster",
        "--no-lifekeeper",
        "--sysroot",
        sysroot.to_str().unwrap(),
    ];
    for p in peers {
        args.extend(["--peer", p.to_str().unwrap()]);
    }
    args.extend(extra);
    run(&args)
}

#[test]
fn three_nodes_apart_then_two_together() {
    let s = Scratch::new("cluster3");
    let a = node_tree(s.path(), "node-a", "hv1.corp.example", "A-1");
    let b = node_tree(s.path(), "node-b", "hv2.corp.example", "B-2");
    let c = node_tree(s.path(), "node-c", "hv3.corp.example", "C-3");
    let bj = detect_json(&b, s.path(), "b");
    let cj = detect_json(&c, s.path(), "c");

    let o = check(&a, &[&bj, &cj], &[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out}{}", stderr(&o));
    common::has(
        &out,
        &format!(
            "ok: node node-b runs on Hyper-V host hv2.corp.example as VM vm-node-b (from {})",
            bj.display()
        ),
    );
    common::has(&out, "ok: all 3 nodes run on different Hyper-V hosts");
    common::has(&out, "result: every node on its own host");
    assert!(!out.contains("warning"), "{out}");

    // this node given again as a peer is the same VM, counted once
    let aj = detect_json(&a, s.path(), "a-again");
    let o = check(&a, &[&bj, &aj], &[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}");
    assert!(
        out.contains("warning: node-a (")
            && out.contains("is the same VM as node-a (this node): id A-1; counted once"),
        "{out}"
    );
    common::has(&out, "ok: all 2 nodes run on different Hyper-V hosts");

    // node-c is live-migrated onto node-a's host (its pool names the host by its short name)
    let c2 = node_tree(s.path(), "node-c2", "HV1", "C-3");
    std::fs::write(c2.join("proc/sys/kernel/hostname"), "node-c\n").unwrap();
    let cj = detect_json(&c2, s.path(), "c");
    let o = check(&a, &[&bj, &cj], &[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}");
    assert!(
        out.contains(
            "warning: nodes node-a, node-c run on one Hyper-V host, hv1.corp.example: SIOS's Hyper-V configuration guide does not support"
        ) && out.contains("only for a while (host maintenance); live-migrate one of them"),
        "{out}"
    );
    assert!(!out.contains("all 3 nodes"), "{out}");
    common::has(&out, "result: nodes share a host");

    let o = check(&a, &[&bj, &cj], &["--json"]);
    let json = stdout(&o);
    assert_eq!(code(&o), 1);
    assert!(
        json.contains(r#""check":"cluster/same-host","level":"warning""#)
            && json.contains(r#""host":"hv1.corp.example","nodes":["node-a","node-c"]"#),
        "{json}"
    );
    assert!(
        json.contains(&format!(r#""file":"{}""#, bj.display())),
        "{json}"
    );
}

#[test]
fn a_node_without_a_known_host_says_why_and_fails_the_check() {
    let s = Scratch::new("cluster-unknown");
    let a = node_tree(s.path(), "node-a", "hv1.corp.example", "A-1");
    let nj = detect_json(&fixture("hyperv-no-kvp"), s.path(), "c");
    let o = check(&a, &[&nj], &[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}");
    assert!(
        out.contains("error: node node-c: its Hyper-V host is unknown (from ")
            && out.contains("hyperv-daemons"),
        "{out}"
    );
    assert!(out.contains("1 of 2 nodes have no known host"), "{out}");
    common::has(&out, "result: undetermined");
    // alone, nothing can be compared
    let o = check(&a, &[], &[]);
    assert_eq!(code(&o), 1);
    assert!(
        stdout(&o).contains("only 1 node is known"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn peer_files_that_are_not_detect_output_are_refused_without_hanging() {
    let s = Scratch::new("cluster-bad");
    let a = node_tree(s.path(), "node-a", "hv1.corp.example", "A-1");
    let b = node_tree(s.path(), "node-b", "hv2.corp.example", "B-2");
    let bj = detect_json(&b, s.path(), "b");
    let old = s.path().join("old.json");
    std::fs::write(&old, r#"{"platform":"hyperv","confidence":"likely"}"#).unwrap();
    let junk = s.path().join("junk.json");
    std::fs::write(&junk, "platform: hyperv\n").unwrap();
    let fifo = s.path().join("fifo.json");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let o = check(&a, &[&bj, &old, &junk, &fifo], &[]);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}");
    assert!(
        out.contains("does not report the host (no \"hyperv_host\")"),
        "{out}"
    );
    assert!(out.contains("junk.json: not JSON at byte 0"), "{out}");
    assert!(out.contains("fifo.json: not a regular file"), "{out}");
    // the good peer still counts
    common::has(&out, "ok: all 2 nodes run on different Hyper-V hosts");
    let o = check(&a, &[&s.path().join("missing.json")], &[]);
    assert!(
        stdout(&o).contains("missing.json: cannot open"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn the_pacemaker_attribute_is_the_hosts_name_in_lower_case() {
    let s = Scratch::new("cluster-attr");
    let a = node_tree(s.path(), "node-a", "HV1.Corp.Example", "A-1");
    let o = check(&a, &[], &["--attribute"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "hv1.corp.example\n");
    let o = run(&[
        "check-cluster",
        "--attribute",
        "--sysroot",
        fixture("hyperv-no-kvp").to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1);
    assert_eq!(stdout(&o), "");
    assert!(
        stderr(&o).contains("no hyperv-host value"),
        "{}",
        stderr(&o)
    );
    // a host name that is not a plain name is never printed as a value
    let o = run(&[
        "check-cluster",
        "--attribute",
        "--sysroot",
        fixture("hyperv-kvp-odd").to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1);
    assert_eq!(stdout(&o), "");
}

/// A LifeKeeper root whose `bin` holds stand-ins for the documented tools: `lcduname`,
/// `sys_list` and `lcdremexec` (which checks the argv it is given and answers from
/// `<dir>/<node>.json`, or hangs for node `hang`).
fn fake_lifekeeper(dir: &Path, nodes: &[&str]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let lk = dir.join("lk");
    let bin = lk.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = |name: &str, body: String| {
        let p = bin.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    script("lcduname", "echo node-a\n".into());
    let quoted: Vec<String> = nodes.iter().map(|n| format!("'{n}'")).collect();
    script("sys_list", format!("printf '%s\\n' {}\n", quoted.join(" ")));
    script(
        "lcdremexec",
        format!(
            r#"echo "$*" >> '{log}'
[ "$1 $2" = "-e -d" ] && [ "$4" = -t ] && [ "$6 $7 $8 $9 ${{10}}" = "-- /usr/sbin/lkh-platform detect --json --no-network" ] || {{ echo "bad argv: $*" >&2; exit 2; }}
case $3 in
hang) sleep 60 ;;
down) echo "lcdremexec: cannot reach $3" >&2; exit 9 ;;
*) cat '{dir}'/"$3.json" ;;
esac
"#,
            log = dir.join("remexec.log").display(),
            dir = dir.display()
        ),
    );
    lk
}

#[test]
fn the_other_nodes_through_lifekeeper_remote_execution() {
    let s = Scratch::new("cluster-lk");
    let a = node_tree(s.path(), "node-a", "hv1.corp.example", "A-1");
    let b = node_tree(s.path(), "host-b", "hv1.corp.example", "B-2");
    detect_json(&b, s.path(), "node-b");
    let lk = fake_lifekeeper(s.path(), &["node-a", "node-b", "bad;name", "down", "hang"]);
    let t = Instant::now();
    let o = run(&[
        "check-cluster",
        "--sysroot",
        a.to_str().unwrap(),
        "--lkroot",
        lk.to_str().unwrap(),
        "--timeout",
        "2",
    ]);
    let took = t.elapsed();
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{out}{}", stderr(&o));
    // the hanging node's call was killed, not waited for
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert!(
        out.contains(
            "error: node hang: its Hyper-V host is unknown: asking it through LifeKeeper failed: "
        ) && out.contains("did not answer within 2 s and was killed"),
        "{out}"
    );
    assert!(
        out.contains("error: node down: ")
            && out.contains("exited 9: lcdremexec: cannot reach down"),
        "{out}"
    );
    // LifeKeeper's node name counts, not the answering VM's hostname
    assert!(
        out.contains("ok: node node-b runs on Hyper-V host hv1.corp.example as VM vm-host-b (from lcdremexec -d node-b)"),
        "{out}"
    );
    assert!(
        out.contains("warning: nodes node-a, node-b run on one Hyper-V host"),
        "{out}"
    );
    assert!(
        stderr(&o).contains("\"bad;name\", which is not a node name"),
        "{}",
        stderr(&o)
    );
    let log = std::fs::read_to_string(s.path().join("remexec.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l == "-e -d node-b -t 2 -- /usr/sbin/lkh-platform detect --json --no-network"),
        "{log}"
    );
    assert!(
        !log.contains("node-a"),
        "this node is not asked remotely: {log}"
    );
    // --no-lifekeeper leaves LifeKeeper alone
    let _ = std::fs::remove_file(s.path().join("remexec.log"));
    let o = run(&[
        "check-cluster",
        "--no-lifekeeper",
        "--sysroot",
        a.to_str().unwrap(),
        "--lkroot",
        lk.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1);
    assert!(!s.path().join("remexec.log").exists());
}
