//! How `detect` (and `doctor`) show the Hyper-V host: text lines and the JSON keys
//! `node`, `hyperv_host`, `vm_name`, `vm_id`, `hyperv_host_note` and `evidence.kvp`.

use lkh_common::Json;
use lkh_platform::Detection;
use lkh_platform::kvp::{Daemon, Kvp, PoolState};

/// Why the host is unknown or may be stale, for a Hyper-V family guest; `None` otherwise.
pub fn host_note(d: &Detection) -> Option<String> {
    let kvp = &d.evidence.local.kvp;
    if kvp.host().is_some() {
        return kvp.stale();
    }
    if d.verdict.platform.is_hyperv_family() {
        kvp.why_unknown()
    } else {
        None
    }
}

/// The `hyper-v host:` and `vm:` lines.
pub fn host_text(d: &Detection) -> String {
    let kvp = &d.evidence.local.kvp;
    let mut s = match (kvp.host(), host_note(d)) {
        (Some((key, host)), _) => format!("hyper-v host: {host} ({key} in {})\n", kvp.path),
        (None, Some(why)) => format!("hyper-v host: unknown: {why}\n"),
        (None, None) => "hyper-v host: none (not a Hyper-V guest)\n".to_string(),
    };
    if let Some(name) = kvp.vm_name() {
        s += &format!(
            "vm: {name}{}\n",
            kvp.vm_id()
                .map(|id| format!(" (id {id})"))
                .unwrap_or_default()
        );
    }
    if let Some(stale) = kvp.stale() {
        s += &format!("warning: {stale}\n");
    }
    s
}

fn daemon_text(d: &Daemon) -> String {
    match d {
        Daemon::Running(pids) => format!(
            "running (pid {})",
            pids.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Daemon::NotRunning => "not running".into(),
        Daemon::Unknown(why) => format!("unknown ({why})"),
    }
}

/// The evidence lines about the pool.
pub fn kvp_evidence_text(kvp: &Kvp) -> String {
    let mut s = match &kvp.state {
        PoolState::Read(p) => format!("  kvp pool {}: {} items\n", kvp.path, p.records.len()),
        PoolState::Missing => format!("  kvp pool {}: absent\n", kvp.path),
        PoolState::Unreadable(why) => format!("  kvp pool {}: not read ({why})\n", kvp.path),
    };
    s += &format!("  kvp daemon: {}\n", daemon_text(&kvp.daemon));
    if let Some(offered) = kvp.service_offered {
        s += &format!(
            "  vmbus data exchange device: {}\n",
            if offered { "present" } else { "absent" }
        );
    }
    for n in kvp.pool().map(|p| p.notes.as_slice()).unwrap_or_default() {
        s += &format!("  kvp note: {n}\n");
    }
    s
}

/// `evidence.kvp` in `detect --json`.
pub fn kvp_json(kvp: &Kvp) -> Json {
    let (state, items, error) = match &kvp.state {
        PoolState::Read(p) => ("read", Json::from(p.records.len()), Json::Null),
        PoolState::Missing => ("missing", Json::Null, Json::Null),
        PoolState::Unreadable(why) => ("unreadable", Json::Null, Json::from(why.as_str())),
    };
    let (daemon, pids) = match &kvp.daemon {
        Daemon::Running(p) => (
            Json::from("running"),
            Json::Arr(p.iter().map(|p| Json::from(*p)).collect()),
        ),
        Daemon::NotRunning => (Json::from("not running"), Json::Arr(Vec::new())),
        Daemon::Unknown(_) => (Json::from("unknown"), Json::Null),
    };
    Json::obj()
        .with("pool", kvp.path.as_str())
        .with("state", state)
        .with("items", items)
        .with("error", error)
        .with("daemon", daemon)
        .with("daemon_pids", pids)
        .with("service_offered", kvp.service_offered)
        .with("host_item", kvp.host().map(|(k, _)| k))
        .with(
            "notes",
            kvp.pool().map(|p| p.notes.clone()).unwrap_or_default(),
        )
}

/// The top-level keys `detect --json` adds: `node`, `hyperv_host`, `vm_name`, `vm_id`,
/// `hyperv_host_note`.
pub fn push_host_json(j: &mut Json, d: &Detection) {
    let local = &d.evidence.local;
    j.push("node", local.node_name.clone());
    j.push("hyperv_host", local.kvp.host().map(|(_, h)| h));
    j.push("vm_name", local.kvp.vm_name());
    j.push("vm_id", local.kvp.vm_id());
    j.push("hyperv_host_note", host_note(d));
}
