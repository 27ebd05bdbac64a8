//! Anti-affinity: do the cluster's nodes run on different Hyper-V hosts?
//!
//! SIOS's Hyper-V guide does not support a LifeKeeper cluster whose VMs run on one host (the
//! host's failure stops the whole cluster), except for a while during host maintenance; after
//! a live migration nobody notices two nodes ending up together. Each node learns its own host
//! from Hyper-V's guest parameters ([`crate::kvp`]); this module gathers the other nodes'
//! (another node's `lkh-platform detect --json`, from a file or through LifeKeeper) and judges
//! the set: every node on a different host, two or more on one (a warning naming the host and
//! the nodes), a node whose host is unknown (why).
//!
//! LifeKeeper route: LifeKeeper documents `lcdremexec [-e] -d destname [-t remotetimeout] --
//! cmd [args]` (LCD(1M): runs `cmd` on `destname` over LifeKeeper's communication paths,
//! returns its output and exit code; `-e` keeps stderr apart) and `sys_list` (LCDI-systems:
//! the systems the configuration database knows), and SIOS's own scripts use `lcduname` for
//! this node's name. The output format of `sys_list` is not documented: one name per line is
//! assumed, and a line that is not a host name is skipped and said. Each call is bounded here
//! (the remote timeout `-t` is passed too), and only programs root may trust are run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::json_in::{self, Value};
use crate::runner;
use crate::wiring::Level;

/// Where the package installs `lkh-platform`: what `lcdremexec` runs on the other nodes.
pub const REMOTE_BINARY: &str = "/usr/sbin/lkh-platform";
/// The Pacemaker node attribute `check-cluster --attribute` gives the value of.
pub const ATTRIBUTE: &str = "hyperv-host";
/// The largest peer file read.
pub const MAX_PEER_FILE: u64 = 1 << 20;
/// SIOS's rule, said with every shared host.
pub const RULE: &str = "SIOS's Hyper-V configuration guide does not support cluster nodes on one host: when it fails, the whole cluster stops; it is allowed only for a while (host maintenance)";
/// What to do about a shared host.
pub const MOVE_APART: &str = "live-migrate one of them to another host; to keep them apart, give their VM roles the same AntiAffinityClassNames in the Windows failover cluster";

/// One node and what is known of its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeHost {
    pub node: String,
    /// Where this came from: `this node`, a file, `lcdremexec -d NODE`.
    pub source: String,
    pub host: Option<String>,
    pub vm_name: Option<String>,
    pub vm_id: Option<String>,
    /// Why the host is unknown.
    pub unknown: Option<String>,
    /// Why the host may be wrong (the KVP daemon does not run there).
    pub warning: Option<String>,
}

/// A node name: host-name characters only (what `sys_list` may give and a message may show).
pub fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// The form hosts are compared in (and the Pacemaker attribute's value): lower case.
pub fn host_key(host: &str) -> String {
    host.trim().to_ascii_lowercase()
}

/// Whether two host names name one host: equal, or the same first label when one of them is
/// a short (NetBIOS) name.
pub fn same_host(a: &str, b: &str) -> bool {
    let (a, b) = (host_key(a), host_key(b));
    if a == b {
        return true;
    }
    let short = |s: &str| s.split('.').next().unwrap_or_default().to_string();
    (!a.contains('.') || !b.contains('.')) && short(&a) == short(&b)
}

impl NodeHost {
    /// This node, from its own detection.
    pub fn from_detection(d: &crate::Detection, fallback_name: &str) -> NodeHost {
        let local = &d.evidence.local;
        let kvp = &local.kvp;
        NodeHost {
            node: local
                .node_name
                .clone()
                .unwrap_or_else(|| fallback_name.to_string()),
            source: "this node".into(),
            host: kvp.host().map(|(_, h)| h.to_string()),
            vm_name: kvp.vm_name().map(str::to_string),
            vm_id: kvp.vm_id().map(str::to_string),
            unknown: kvp.why_unknown().map(|w| {
                if d.verdict.platform.is_hyperv_family() {
                    w
                } else {
                    format!(
                        "this is not a Hyper-V guest ({}, {})",
                        d.verdict.platform.as_str(),
                        d.verdict.confidence.as_str()
                    )
                }
            }),
            warning: kvp.stale(),
        }
    }

    /// Another node, from its `lkh-platform detect --json` output; `fallback_name` when the
    /// output names no node.
    pub fn from_detect_json(
        text: &str,
        source: &str,
        fallback_name: &str,
    ) -> Result<NodeHost, String> {
        let v = json_in::parse(text)?;
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        if v.get("platform").and_then(Value::as_str).is_none() {
            return Err("not the output of `lkh-platform detect --json` (no \"platform\")".into());
        }
        let Some(host_field) = v.get("hyperv_host") else {
            return Err(
                "`lkh-platform detect --json` of a version that does not report the host (no \"hyperv_host\"): install this version there"
                    .into(),
            );
        };
        let host = host_field.as_str().map(str::to_string);
        let note = s("hyperv_host_note");
        let platform = s("platform").unwrap_or_default();
        let unknown = match (&host, note.clone()) {
            (Some(_), _) => None,
            (None, Some(n)) => Some(n),
            (None, None) => Some(format!("this is not a Hyper-V guest ({platform})")),
        };
        let node = s("node")
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| fallback_name.to_string());
        Ok(NodeHost {
            node: crate::kvp::escape(node.as_bytes()),
            source: source.to_string(),
            host,
            vm_name: s("vm_name"),
            vm_id: s("vm_id"),
            warning: if unknown.is_none() { note } else { None },
            unknown,
        })
    }
}

/// One finding of the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    /// `cluster/node`, `cluster/same-host`, `cluster/anti-affinity`, `cluster/peer`.
    pub check: &'static str,
    pub node: Option<String>,
    pub host: Option<String>,
    /// The nodes a shared-host finding is about.
    pub nodes: Vec<String>,
    /// Where the node's facts came from.
    pub source: Option<String>,
    pub what: String,
    pub remedy: String,
}

impl Finding {
    fn new(level: Level, check: &'static str, what: String, remedy: &str) -> Finding {
        Finding {
            level,
            check,
            node: None,
            host: None,
            nodes: Vec::new(),
            source: None,
            what,
            remedy: remedy.to_string(),
        }
    }

    /// `WHAT; REMEDY`.
    pub fn message(&self) -> String {
        if self.remedy.is_empty() {
            self.what.clone()
        } else {
            format!("{}; {}", self.what, self.remedy)
        }
    }
}

const GIVE_PEERS: &str = "give each other node's `lkh-platform detect --json` with --peer FILE, or run this where LifeKeeper can reach the other nodes";

/// Judges the nodes: every node's host known and different (ok), nodes sharing a host
/// (warning), hosts unknown or fewer than two nodes (error).
pub fn judge(nodes: &[NodeHost]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut counted: Vec<&NodeHost> = Vec::new();
    for n in nodes {
        if let Some(first) = counted.iter().find(|c| {
            c.vm_id.is_some()
                && c.vm_id.as_deref().map(host_key) == n.vm_id.as_deref().map(host_key)
        }) {
            let mut f = Finding::new(
                Level::Warning,
                "cluster/node",
                format!(
                    "{} ({}) is the same VM as {} ({}): id {}; counted once",
                    n.node,
                    n.source,
                    first.node,
                    first.source,
                    n.vm_id.as_deref().unwrap_or_default()
                ),
                "give each node once",
            );
            f.node = Some(n.node.clone());
            f.source = Some(n.source.clone());
            out.push(f);
            continue;
        }
        counted.push(n);
        let mut f = match (&n.host, &n.unknown) {
            (Some(h), _) => {
                let mut f = Finding::new(
                    Level::Ok,
                    "cluster/node",
                    format!(
                        "node {} runs on Hyper-V host {h}{} (from {})",
                        n.node,
                        n.vm_name
                            .as_deref()
                            .map(|v| format!(" as VM {v}"))
                            .unwrap_or_default(),
                        n.source
                    ),
                    "",
                );
                f.host = Some(h.clone());
                f
            }
            (None, why) => Finding::new(
                Level::Error,
                "cluster/node",
                format!(
                    "node {}: its Hyper-V host is unknown (from {}): {}",
                    n.node,
                    n.source,
                    why.as_deref().unwrap_or("no reason given")
                ),
                "",
            ),
        };
        f.node = Some(n.node.clone());
        f.source = Some(n.source.clone());
        out.push(f);
        if let (Some(h), Some(w)) = (&n.host, &n.warning) {
            let mut f = Finding::new(
                Level::Warning,
                "cluster/node",
                format!("node {}: host {h} may be out of date: {w}", n.node),
                "",
            );
            f.node = Some(n.node.clone());
            f.host = Some(h.clone());
            f.source = Some(n.source.clone());
            out.push(f);
        }
    }

    // group the known nodes by host
    let known: Vec<&&NodeHost> = counted.iter().filter(|n| n.host.is_some()).collect();
    let mut groups: Vec<Vec<&NodeHost>> = Vec::new();
    for n in known {
        let h = n.host.as_deref().unwrap_or_default();
        match groups.iter_mut().find(|g| {
            g.iter()
                .any(|m| same_host(m.host.as_deref().unwrap_or_default(), h))
        }) {
            Some(g) => g.push(n),
            None => groups.push(vec![n]),
        }
    }
    let mut shared = false;
    for g in groups.iter().filter(|g| g.len() > 1) {
        shared = true;
        let names: Vec<String> = g.iter().map(|n| n.node.clone()).collect();
        let host = g[0].host.clone().unwrap_or_default();
        let mut f = Finding::new(
            Level::Warning,
            "cluster/same-host",
            format!(
                "nodes {} run on one Hyper-V host, {host}: {RULE}",
                names.join(", ")
            ),
            MOVE_APART,
        );
        f.host = Some(host);
        f.nodes = names;
        out.push(f);
    }
    let unknown = counted.iter().filter(|n| n.host.is_none()).count();
    if counted.len() < 2 {
        out.push(Finding::new(
            Level::Error,
            "cluster/anti-affinity",
            format!(
                "only {} node{} known, so there is nothing to compare",
                counted.len(),
                if counted.len() == 1 { " is" } else { "s are" }
            ),
            GIVE_PEERS,
        ));
    } else if !shared && unknown == 0 {
        out.push(Finding::new(
            Level::Ok,
            "cluster/anti-affinity",
            format!("all {} nodes run on different Hyper-V hosts", counted.len()),
            "",
        ));
    } else if !shared {
        out.push(Finding::new(
            Level::Error,
            "cluster/anti-affinity",
            format!(
                "{unknown} of {} nodes have no known host, so whether they share one cannot be told",
                counted.len()
            ),
            "see each node's finding",
        ));
    }
    out
}

/// Reads another node's `detect --json` from `path`: a regular file (no FIFO or device that
/// could block), at most [`MAX_PEER_FILE`] bytes. The node name defaults to the file's stem.
pub fn read_peer(path: &Path) -> Result<NodeHost, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let shown = path.display();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("{shown}: cannot open: {e}"))?;
    let m = f
        .metadata()
        .map_err(|e| format!("{shown}: cannot inspect: {e}"))?;
    if !m.is_file() {
        return Err(format!(
            "{shown}: not a regular file: save the other node's `lkh-platform detect --json` to a file"
        ));
    }
    let mut buf = Vec::new();
    f.take(MAX_PEER_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("{shown}: cannot read: {e}"))?;
    if buf.len() as u64 > MAX_PEER_FILE {
        return Err(format!(
            "{shown}: larger than {MAX_PEER_FILE} bytes: not `lkh-platform detect --json` output"
        ));
    }
    let text = String::from_utf8(buf).map_err(|_| format!("{shown}: not UTF-8 text"))?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| shown.to_string());
    NodeHost::from_detect_json(&text, &shown.to_string(), &stem)
        .map_err(|e| format!("{shown}: {e}"))
}

/// What asking the other nodes through LifeKeeper gave.
#[derive(Debug, Clone, Default)]
pub struct LkAsked {
    /// The nodes that answered with a usable `detect --json`.
    pub nodes: Vec<NodeHost>,
    /// Nodes LifeKeeper knows that did not answer usably: (node, why).
    pub failed: Vec<(String, String)>,
    /// This node's name as LifeKeeper knows it.
    pub me: Option<String>,
    /// What else there is to say (names skipped).
    pub notes: Vec<String>,
}

/// LifeKeeper's tools under `<lkroot>/bin`.
fn lk_tool(lkroot: &Path, name: &str) -> PathBuf {
    lkroot.join("bin").join(name)
}

/// Whether LifeKeeper's remote execution is installed under `lkroot`.
pub fn lifekeeper_present(lkroot: &Path) -> bool {
    lk_tool(lkroot, "lcdremexec").exists()
}

/// Runs a LifeKeeper tool, trusted and bounded; its stdout.
fn lk_run(lkroot: &Path, name: &str, args: &[&str], budget: Duration) -> Result<String, String> {
    let p = lk_tool(lkroot, name);
    runner::trusted_program(&p)?;
    let r = runner::run(&p, args, &[], budget).map_err(|e| format!("{}: {e}", p.display()))?;
    if r.success() {
        Ok(r.stdout)
    } else {
        Err(format!("{} {}", p.display(), r.failure(budget)))
    }
}

/// Asks every other node LifeKeeper knows for its `detect --json`, all at once, each call
/// bounded by `budget` (passed to `lcdremexec -t` as well).
pub fn ask_lifekeeper(lkroot: &Path, budget: Duration) -> Result<LkAsked, String> {
    let local_budget = Duration::from_secs(10).min(budget);
    let me = lk_run(lkroot, "lcduname", &[], local_budget)?
        .trim()
        .to_string();
    let listed = lk_run(lkroot, "sys_list", &[], local_budget)?;
    let mut asked = LkAsked {
        me: Some(me.clone()),
        ..LkAsked::default()
    };
    let mut names = Vec::new();
    for line in listed.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !plain_name(line) {
            asked.notes.push(format!(
                "sys_list gave {:?}, which is not a node name: skipped",
                lkh_common::logging::shown(line, 80)
            ));
        } else if line != me && !names.contains(&line.to_string()) {
            names.push(line.to_string());
        }
    }
    let secs = budget.as_secs().max(1).to_string();
    let remexec = lk_tool(lkroot, "lcdremexec");
    runner::trusted_program(&remexec)?;
    let results: Vec<(String, Result<runner::Ran, String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .map(|n| {
                let (remexec, secs) = (&remexec, &secs);
                (
                    n.clone(),
                    s.spawn(move || {
                        runner::run(
                            remexec,
                            &[
                                "-e",
                                "-d",
                                n,
                                "-t",
                                secs,
                                "--",
                                REMOTE_BINARY,
                                "detect",
                                "--json",
                                "--no-network",
                            ],
                            &[],
                            budget,
                        )
                        .map_err(|e| format!("{}: {e}", remexec.display()))
                    }),
                )
            })
            .collect();
        handles
            .into_iter()
            .map(|(n, h)| {
                (
                    n,
                    h.join()
                        .unwrap_or_else(|_| Err("the call's thread failed".into())),
                )
            })
            .collect()
    });
    for (n, r) in results {
        let source = format!("lcdremexec -d {n}");
        match r {
            Err(e) => asked.failed.push((n, e)),
            Ok(ran) if !ran.success() => asked
                .failed
                .push((n.clone(), format!("{source} {}", ran.failure(budget)))),
            Ok(ran) => match NodeHost::from_detect_json(&ran.stdout, &source, &n) {
                // LifeKeeper's name for the node, whatever its hostname
                Ok(mut h) => {
                    h.node = n;
                    asked.nodes.push(h);
                }
                Err(e) => asked.failed.push((n, format!("{source}: {e}"))),
            },
        }
    }
    Ok(asked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, host: Option<&str>, id: &str) -> NodeHost {
        NodeHost {
            node: name.into(),
            source: format!("{name}.json"),
            host: host.map(str::to_string),
            vm_name: Some(format!("vm-{name}")),
            vm_id: Some(id.into()),
            unknown: host.is_none().then(|| "no pool".to_string()),
            warning: None,
        }
    }

    fn levels(f: &[Finding]) -> Vec<(&'static str, Level)> {
        f.iter().map(|f| (f.check, f.level)).collect()
    }

    #[test]
    fn different_hosts_are_ok() {
        let f = judge(&[
            node("a", Some("hv1.corp"), "1"),
            node("b", Some("hv2.corp"), "2"),
            node("c", Some("HV3"), "3"),
        ]);
        assert!(f.iter().all(|f| f.level == Level::Ok), "{f:#?}");
        assert!(f.last().unwrap().what.contains("all 3 nodes"));
    }

    #[test]
    fn two_nodes_on_one_host_are_named_with_the_rule() {
        let f = judge(&[
            node("a", Some("hv1.corp"), "1"),
            node("b", Some("HV1"), "2"),
            node("c", Some("hv2.corp"), "3"),
        ]);
        let shared: Vec<&Finding> = f
            .iter()
            .filter(|f| f.check == "cluster/same-host")
            .collect();
        assert_eq!(shared.len(), 1, "{f:#?}");
        assert_eq!(shared[0].level, Level::Warning);
        assert_eq!(shared[0].nodes, ["a", "b"]);
        assert!(shared[0].what.contains("hv1.corp"));
        assert!(shared[0].what.contains("only for a while"));
        assert!(!f.iter().any(|f| f.check == "cluster/anti-affinity"));
    }

    #[test]
    fn unknown_hosts_and_lone_nodes_cannot_be_judged() {
        let f = judge(&[node("a", Some("hv1"), "1"), node("b", None, "2")]);
        assert!(levels(&f).contains(&("cluster/node", Level::Error)));
        assert!(levels(&f).contains(&("cluster/anti-affinity", Level::Error)));
        assert!(f.iter().any(|f| f.what.contains("no pool")));
        let f = judge(&[node("a", Some("hv1"), "1")]);
        assert!(f.last().unwrap().what.contains("only 1 node is known"));
    }

    #[test]
    fn the_same_vm_twice_is_counted_once() {
        let f = judge(&[
            node("a", Some("hv1"), "ABC"),
            node("a-again", Some("hv1"), "abc"),
            node("b", Some("hv2"), "2"),
        ]);
        assert!(!f.iter().any(|f| f.check == "cluster/same-host"), "{f:#?}");
        assert!(f.iter().any(|f| f.what.contains("is the same VM as a")));
    }

    #[test]
    fn names_and_hosts() {
        assert!(same_host("HV1", "hv1.corp.example"));
        assert!(!same_host("hv1.a.example", "hv1.b.example"));
        assert!(plain_name("node-a.corp_1"));
        assert!(!plain_name("a b") && !plain_name("") && !plain_name("a;reboot"));
    }

    #[test]
    fn peer_json() {
        let j = r#"{"platform":"hyperv","node":"n2","hyperv_host":"hv2","vm_name":"v","vm_id":"9","hyperv_host_note":null}"#;
        let n = NodeHost::from_detect_json(j, "f", "x").unwrap();
        assert_eq!((n.node.as_str(), n.host.as_deref()), ("n2", Some("hv2")));
        let old = r#"{"platform":"hyperv","node":"n2"}"#;
        assert!(
            NodeHost::from_detect_json(old, "f", "x")
                .unwrap_err()
                .contains("install this version")
        );
        assert!(NodeHost::from_detect_json("[]", "f", "x").is_err());
        let none = r#"{"platform":"kvm","hyperv_host":null,"hyperv_host_note":null}"#;
        let n = NodeHost::from_detect_json(none, "f", "fallback").unwrap();
        assert_eq!(n.node, "fallback");
        assert!(n.unknown.unwrap().contains("not a Hyper-V guest (kvm)"));
    }
}
