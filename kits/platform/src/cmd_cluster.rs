//! `check-cluster`: do the cluster's nodes run on different Hyper-V hosts? And
//! `check-cluster --attribute`: this node's host as the value of Pacemaker's `hyperv-host`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lkh_common::{Exit, Failure, Json};
use lkh_platform::cluster::{self, Finding, NodeHost};
use lkh_platform::wiring::Level;
use lkh_platform::{DetectOptions, detect};

/// What `check-cluster` was asked.
pub struct Ask<'a> {
    pub sysroot: Option<&'a Path>,
    pub lkroot: PathBuf,
    pub peers: &'a [PathBuf],
    pub lifekeeper: bool,
    pub timeout: Duration,
    pub json: bool,
}

/// This node, read under the sysroot (offline: the host needs no network).
fn this_node(sysroot: Option<&Path>) -> NodeHost {
    let d = detect(&DetectOptions {
        sysroot: sysroot.map(Path::to_path_buf),
        network: false,
        ..DetectOptions::default()
    });
    let fallback = nix::unistd::gethostname()
        .ok()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|| "this node".into());
    NodeHost::from_detection(&d, &fallback)
}

/// `check-cluster --attribute`: one line, the value for `crm_attribute --name hyperv-host`.
pub fn attribute(sysroot: Option<&Path>) -> Result<Exit, Failure> {
    let me = this_node(sysroot);
    let Some(host) = me.host else {
        return Err(Failure::failed(format!(
            "this node's Hyper-V host is unknown, so there is no {} value: {}",
            cluster::ATTRIBUTE,
            me.unknown.unwrap_or_default()
        )));
    };
    let value = cluster::host_key(&host);
    if !cluster::plain_name(&value) {
        return Err(Failure::failed(format!(
            "the host name {host} is not a plain host name, so it is not given as a node attribute value; check {}",
            lkh_platform::kvp::POOL_DIR
        )));
    }
    if let Some(w) = me.warning {
        log::warn!("{w}");
    }
    println!("{value}");
    Ok(Exit::Ok)
}

fn finding_json(f: &Finding, peers: &[PathBuf]) -> Json {
    let file = f
        .source
        .as_ref()
        .filter(|s| peers.iter().any(|p| p.display().to_string() == **s));
    Json::obj()
        .with("check", f.check)
        .with("level", f.level.as_str())
        .with("tag", Json::Null)
        .with("file", file.cloned())
        .with("source", f.source.clone())
        .with("what", f.what.as_str())
        .with("remedy", f.remedy.as_str())
        .with("message", f.message())
        .with("node", f.node.clone())
        .with("host", f.host.clone())
        .with("nodes", f.nodes.clone())
}

/// `check-cluster`.
pub fn check(a: &Ask) -> Result<Exit, Failure> {
    let mut nodes = vec![this_node(a.sysroot)];
    let mut extra: Vec<Finding> = Vec::new();
    let peer_error = |what: String| Finding {
        level: Level::Error,
        check: "cluster/peer",
        node: None,
        host: None,
        nodes: Vec::new(),
        source: None,
        what,
        remedy: String::new(),
    };
    for p in a.peers {
        match cluster::read_peer(p) {
            Ok(n) => nodes.push(n),
            Err(e) => extra.push(Finding {
                source: Some(p.display().to_string()),
                ..peer_error(e)
            }),
        }
    }
    if a.lifekeeper && cluster::lifekeeper_present(&a.lkroot) {
        match cluster::ask_lifekeeper(&a.lkroot, a.timeout) {
            Ok(asked) => {
                if let Some(me) = asked.me {
                    nodes[0].node = me;
                }
                for n in &asked.notes {
                    log::warn!("{n}");
                }
                for (n, why) in asked.failed {
                    extra.push(Finding {
                        node: Some(n.clone()),
                        ..peer_error(format!(
                            "node {n}: its Hyper-V host is unknown: asking it through LifeKeeper failed: {why}"
                        ))
                    });
                }
                nodes.extend(asked.nodes);
            }
            Err(e) => extra.push(peer_error(format!(
                "the other nodes could not be asked through LifeKeeper: {e}"
            ))),
        }
    } else if a.lifekeeper {
        log::debug!(
            "{}: no LifeKeeper remote execution here; nodes only from --peer",
            a.lkroot.display()
        );
    }
    let mut findings = extra;
    findings.extend(cluster::judge(&nodes));
    if a.json {
        println!(
            "{}",
            Json::Arr(findings.iter().map(|f| finding_json(f, a.peers)).collect())
        );
    } else {
        for f in &findings {
            println!("{}: {}", f.level.as_str(), f.message());
        }
        let any = |l: Level| findings.iter().any(|f| f.level == l);
        println!(
            "result: {}",
            if findings.iter().any(|f| f.check == "cluster/same-host") {
                "nodes share a host"
            } else if any(Level::Error) {
                "undetermined"
            } else if any(Level::Warning) {
                "a host may be out of date"
            } else {
                "every node on its own host"
            }
        );
    }
    let bad = findings
        .iter()
        .filter(|f| f.level >= Level::Warning)
        .count();
    if bad > 0 {
        log::warn!(
            "{bad} finding{} need{} attention (levels warning and error)",
            if bad == 1 { "" } else { "s" },
            if bad == 1 { "s" } else { "" }
        );
        Ok(Exit::Failed)
    } else {
        Ok(Exit::Ok)
    }
}
