//! `status`: what the disks show, changing nothing (PR IN and INQUIRY only).
//!
//! `status DEVICE…` shows each LU as its device diagnostic: identity, each path and its sg
//! node, the registered keys with their owners and initiators (READ FULL STATUS; without it
//! "initiators unknown"), the holder, type, capabilities and generation. `status -t TAG`
//! shows the assessment quickCheck makes of the resource ([`assess`]) with each LU's device
//! diagnostic beside it, and exits with quickCheck's code.
//!
//! The device I/O gathers facts ([`look`] → [`DiskFacts`]; the assessment is a [`Health`]);
//! text and JSON are rendered from those values alone, so the two forms cannot differ in
//! what they say.

use std::path::PathBuf;
use std::time::Instant;

use lkh_common::{Action, Assessment, Failure, Json, KitSpec, Outcome, Tag};
use sg_persist::exec::join_all;
use sg_persist::parse::Inquiry;
use sg_persist::{Capabilities, FullStatus, Identity, Keys, Lu, PrType, Reservation};

use crate::actions::assess::{Health, LuHealth, PathHealth, PathReg, Verdict, assess};
use crate::actions::no_key;
use crate::actions::open::{DIAG_TIMEOUT, open_each, resolve_all};
use crate::actions::outcome::combine;
use crate::actions::prim::shared_key_warning;
use crate::pr::{DeadPath, Disk};
use crate::settings::{self, fmt_key};
use crate::watch::Defender;

fn node_key() -> Option<u64> {
    settings::read_node_key(&settings::node_key_path())
        .ok()
        .flatten()
}

struct StatusArgs {
    json: bool,
    devices: Vec<PathBuf>,
    key: Option<u64>,
    /// `-t TAG`: the resource, its TYPE and this node's key, assessed as quickCheck assesses
    /// it (no key: quickCheck's failure).
    resource: Option<(Tag, PrType, Result<u64, Failure>)>,
}

fn status_args(spec: &'static KitSpec, args: &[String]) -> Result<StatusArgs, Failure> {
    let usage = "use `status DEVICE... [--json]` or `status -t TAG [--json]`";
    let a = lkh_common::parse_args(spec.keys, args, &["--json"], &[])?;
    let json = a.has("--json");
    if a.tag.is_some() {
        a.no_operands(usage)?;
        let ctx = lkh_common::context(spec, Action::QuickCheck, &a)?;
        let s = settings::Settings::from_ctx(&ctx)?;
        let key = s.key(false)?;
        let ours = key.ok_or_else(|| no_key(&s));
        return Ok(StatusArgs {
            json,
            key,
            resource: Some((ctx.tag, s.pr_type, ours)),
            devices: s.devices,
        });
    }
    let devices: Vec<PathBuf> = a.operands(usage)?.iter().map(PathBuf::from).collect();
    if devices.is_empty() {
        return Err(Failure::usage(format!("no device given: {usage}")));
    }
    Ok(StatusArgs {
        json,
        devices,
        key: node_key(),
        resource: None,
    })
}

fn whose(k: u64, ours: Option<u64>) -> &'static str {
    if Some(k) == ours {
        "this node"
    } else if k >> 48 == settings::KEY_PREFIX {
        "another lkhelpers node"
    } else {
        "other"
    }
}

/// One answering path as `status` shows it.
struct LivePath {
    name: String,
    hctl: Option<String>,
    /// The sg node its commands go through.
    node: String,
    /// The node is a private one (`/dev` lacks it).
    private_node: bool,
}

/// The registered keys, one per I_T nexus, as the disk could tell them.
enum Registered {
    /// READ FULL STATUS: with their initiators and which one holds.
    Full(FullStatus),
    /// READ KEYS, where READ FULL STATUS failed: initiators unknown.
    Keys(Keys),
    /// Neither answered (the error).
    Unavailable(String),
}

/// What `status DEVICE` found on one LU, read with INQUIRY and PR IN only ([`look`]), before
/// it is rendered as text ([`DiskFacts::text`]) or JSON ([`DiskFacts::json`]).
struct DiskFacts {
    device: String,
    lu: String,
    inquiry: Option<Inquiry>,
    serial: Option<String>,
    identity: Option<Identity>,
    live: Vec<LivePath>,
    dead: Vec<DeadPath>,
    registered: Registered,
    /// Why the initiators of the registrations are unknown (READ FULL STATUS failed).
    no_full_status: Option<String>,
    /// This node's key registered more often than it has paths (see [`shared_key_warning`]).
    warning: Option<String>,
    reservation: Result<Option<Reservation>, String>,
    capabilities: Option<Capabilities>,
    /// This node's key, when it has one.
    ours: Option<u64>,
}

/// Reads what `status DEVICE` shows of one LU: INQUIRY, the unit serial number, READ FULL
/// STATUS (else READ KEYS), READ RESERVATION and REPORT CAPABILITIES, in that order.
async fn look(lu: &mut Lu, ours: Option<u64>, deadline: Instant) -> DiskFacts {
    let inquiry = lu.any_path(async |p| p.inquiry(deadline).await).await.ok();
    let serial = lu.any_path(async |p| p.serial(deadline).await).await.ok();
    let full = lu
        .any_path(async |p| p.read_full_status(deadline).await)
        .await;
    let no_full_status = match &full {
        Ok(_) => None,
        Err(e) => Some(if e.is_unsupported() {
            "the target does not implement READ FULL STATUS: it cannot tell which initiator registered which key".to_string()
        } else {
            format!("READ FULL STATUS failed ({e}): initiators unknown")
        }),
    };
    let registered = match full {
        Ok(fs) => Registered::Full(fs),
        Err(_) => match lu.any_path(async |p| p.read_keys(deadline).await).await {
            Ok(k) => Registered::Keys(k),
            Err(e) => Registered::Unavailable(e.to_string()),
        },
    };
    let keys: Vec<u64> = match &registered {
        Registered::Full(fs) => fs.registrations.iter().map(|r| r.key).collect(),
        Registered::Keys(k) => k.keys.clone(),
        Registered::Unavailable(_) => Vec::new(),
    };
    let mine = keys.iter().filter(|k| Some(**k) == ours).count();
    let warning = ours
        .and_then(|k| shared_key_warning(lu, k, mine))
        .map(|mut w| {
            if let Some(why) = &no_full_status {
                w += &format!(
                    " — but on this disk status cannot list them: {why}; compare the initiator names of the nodes (e.g. /etc/iscsi/initiatorname.iscsi, the WWPNs) with the target's own session list instead"
                );
            }
            w
        });
    let reservation = lu
        .any_path(async |p| p.read_reservation(deadline).await)
        .await
        .map(|rs| rs.reservation)
        .map_err(|e| e.to_string());
    let capabilities = lu
        .any_path(async |p| p.report_capabilities(deadline).await)
        .await
        .ok();
    DiskFacts {
        device: lu.input().display().to_string(),
        lu: lu.id.to_string(),
        inquiry,
        serial,
        identity: lu.identity.clone(),
        live: lu
            .paths
            .iter()
            .map(|p| LivePath {
                name: p.info.name.clone(),
                hctl: p.info.hctl.clone(),
                node: p.node.display().to_string(),
                private_node: p.private_node,
            })
            .collect(),
        dead: lu.dead_paths(),
        registered,
        no_full_status,
        warning,
        reservation,
        capabilities,
        ours,
    }
}

impl DiskFacts {
    /// The capabilities' type list and flags, as shown.
    fn capability_words(c: &Capabilities) -> (Vec<&'static str>, Vec<&'static str>) {
        let types: Vec<&str> = c.types.iter().map(|t| t.short_name()).collect();
        let mut flags = Vec::new();
        for (on, n) in [
            (c.ptpl_c, "PTPL_C"),
            (c.ptpl_a, "PTPL_A"),
            (c.atp_c, "ATP_C"),
            (c.sip_c, "SIP_C"),
            (c.crh, "CRH"),
            (c.rlr_c, "RLR_C"),
        ] {
            if on {
                flags.push(n);
            }
        }
        (types, flags)
    }

    /// `status DEVICE` as text.
    fn text(&self) -> String {
        let ours = self.ours;
        let mut t = format!("{}:\n", self.device);
        t += &format!("  logical unit: {}", self.lu);
        if let Some(i) = &self.inquiry {
            t += &format!(" ({} {} {})", i.vendor, i.product, i.revision);
        }
        if let Some(s) = &self.serial {
            t += &format!(", serial {s}");
        }
        t += "\n";
        if let Some(id) = &self.identity {
            t += &format!("  identity: {id}\n");
        }
        t += "  paths:\n";
        for p in &self.live {
            t += &format!(
                "    {} {} via {}{}: answering\n",
                p.name,
                p.hctl.as_deref().unwrap_or("-"),
                p.node,
                if p.private_node {
                    " (private node: /dev lacks it)"
                } else {
                    ""
                }
            );
        }
        for d in &self.dead {
            t += &format!("    {}: NOT answering: {}\n", d.name, d.error);
        }
        match &self.registered {
            Registered::Full(fs) => {
                t += &format!("  generation: {}\n  registrations:\n", fs.generation);
                for r in &fs.registrations {
                    t += &format!(
                        "    {} ({}) from {}{}\n",
                        fmt_key(r.key),
                        whose(r.key, ours),
                        r.transport_id,
                        if r.holder { ", HOLDER" } else { "" }
                    );
                }
            }
            Registered::Keys(k) => {
                let why = self.no_full_status.clone().unwrap_or_default();
                t += &format!(
                    "  generation: {}\n  registered keys (initiators unknown: {why}):\n",
                    k.generation
                );
                for key in &k.keys {
                    t += &format!("    {} ({})\n", fmt_key(*key), whose(*key, ours));
                }
            }
            Registered::Unavailable(e) => t += &format!("  registrations: unavailable: {e}\n"),
        }
        if let Some(w) = &self.warning {
            t += &format!("  WARNING: {w}\n");
        }
        match &self.reservation {
            Ok(Some(r)) => {
                t += &format!(
                    "  reservation: held by {} ({}), type {}\n",
                    fmt_key(r.key),
                    whose(r.key, ours),
                    PrType::code_name(r.type_code)
                );
            }
            Ok(None) => t += "  reservation: none\n",
            Err(e) => t += &format!("  reservation: unavailable: {e}\n"),
        }
        if let Some(c) = &self.capabilities {
            let (types, flags) = Self::capability_words(c);
            t += &format!(
                "  capabilities: types {}; {}\n",
                if c.tmv {
                    types.join(", ")
                } else {
                    "not reported".into()
                },
                flags.join(" ")
            );
        }
        t
    }

    /// `status DEVICE --json`: one object per LU.
    fn json(&self) -> Json {
        let ours = self.ours;
        let mut j = Json::obj()
            .with("device", self.device.as_str())
            .with("lu", self.lu.as_str());
        if let Some(i) = &self.inquiry {
            j.push("vendor", i.vendor.as_str());
            j.push("product", i.product.as_str());
        }
        if let Some(s) = &self.serial {
            j.push("serial", s.as_str());
        }
        if let Some(id) = &self.identity {
            j.push(
                "identity",
                Json::obj()
                    .with(
                        "designators",
                        Json::Arr(
                            id.designators
                                .iter()
                                .map(|d| {
                                    Json::obj().with("id", d.to_string()).with("weak", d.weak())
                                })
                                .collect(),
                        ),
                    )
                    .with("serial", id.serial.clone().map_or(Json::Null, Json::from)),
            );
        }
        let mut paths = Vec::new();
        for p in &self.live {
            paths.push(
                Json::obj()
                    .with("name", p.name.as_str())
                    .with("hctl", p.hctl.clone().unwrap_or_default())
                    .with("node", p.node.as_str())
                    .with("private_node", p.private_node)
                    .with("answering", true),
            );
        }
        for d in &self.dead {
            paths.push(
                Json::obj()
                    .with("name", d.name.as_str())
                    .with("hctl", d.hctl.clone().unwrap_or_default())
                    .with("answering", false)
                    .with("error", d.error.as_str()),
            );
        }
        j.push("paths", Json::Arr(paths));
        j.push("initiators_known", self.no_full_status.is_none());
        match &self.registered {
            Registered::Full(fs) => {
                j.push("generation", fs.generation);
                let regs = fs.registrations.iter().map(|r| {
                    Json::obj()
                        .with("key", fmt_key(r.key))
                        .with("owner", whose(r.key, ours))
                        .with("initiator", r.transport_id.to_string())
                        .with("holder", r.holder)
                });
                j.push("registrations", Json::Arr(regs.collect()));
            }
            Registered::Keys(k) => {
                let why = self.no_full_status.clone().unwrap_or_default();
                j.push("initiators_unknown_reason", why.as_str());
                j.push("generation", k.generation);
                let regs = k.keys.iter().map(|key| {
                    Json::obj()
                        .with("key", fmt_key(*key))
                        .with("owner", whose(*key, ours))
                });
                j.push("registrations", Json::Arr(regs.collect()));
            }
            Registered::Unavailable(e) => j.push("error", e.as_str()),
        }
        if let Some(w) = &self.warning {
            j.push("warning", w.as_str());
        }
        match &self.reservation {
            Ok(Some(r)) => j.push(
                "reservation",
                Json::obj()
                    .with("holder", fmt_key(r.key))
                    .with("owner", whose(r.key, ours))
                    .with("type", PrType::code_name(r.type_code)),
            ),
            Ok(None) => j.push("reservation", Json::Null),
            Err(_) => {}
        }
        if let Some(c) = &self.capabilities {
            let (types, flags) = Self::capability_words(c);
            j.push(
                "capabilities",
                Json::obj()
                    .with(
                        "types",
                        Json::Arr(types.iter().map(|s| Json::from(*s)).collect()),
                    )
                    .with(
                        "flags",
                        Json::Arr(flags.iter().map(|s| Json::from(*s)).collect()),
                    ),
            );
        }
        if let Some(k) = ours {
            j.push("node_key", fmt_key(k));
        }
        j
    }
}

/// `status DEVICE…`: the device diagnostic of each LU. `status -t TAG`: the assessment
/// quickCheck makes of the resource ([`assess`]; PR IN only, nothing changed), with
/// each LU's device diagnostic beside it, as text or JSON; the exit code is quickCheck's.
pub fn status(spec: &'static KitSpec, args: &[String]) -> Outcome {
    sg_persist::exec::block_on(status_async(spec, args))
}

async fn status_async(spec: &'static KitSpec, args: &[String]) -> Outcome {
    let a = status_args(spec, args)?;
    // in quickCheck's order: device names, this node's key, then the disks
    let resolved = resolve_all(&a.devices)?;
    let resource = match a.resource {
        Some((tag, t, key)) => Some((tag, t, key?)),
        None => None,
    };
    let deadline = Instant::now() + DIAG_TIMEOUT;
    // every disk opened on its own: one whose paths are all down is reported among the others
    let mut opened = open_each(resolved.clone(), true, deadline).await;
    let health = match resource {
        Some((tag, t, key)) => {
            let h = assess(&mut opened, &resolved, tag.as_str(), key, t, deadline).await;
            Some((tag, h))
        }
        None => None,
    };
    let ours = a.key;
    let disks: Vec<(String, Json)> =
        join_all(opened.iter_mut().zip(&resolved).map(|(lu, r)| async move {
            match lu {
                Ok(lu) => {
                    let facts = look(lu, ours, deadline).await;
                    (facts.text(), facts.json())
                }
                Err(f) => {
                    let name = r.input.display().to_string();
                    (
                        format!("{name}:\n  cannot be opened: {}\n", f.message),
                        Json::obj()
                            .with("device", name.as_str())
                            .with("error", f.message.as_str()),
                    )
                }
            }
        }))
        .await;
    let unopened = combine(
        opened
            .into_iter()
            .map(|lu| lu.map(|_| String::new()))
            .collect(),
    );
    let Some((tag, h)) = health else {
        let (text, arr): (Vec<String>, Vec<Json>) = disks.into_iter().unzip();
        if a.json {
            println!("{}", Json::Arr(arr));
        } else {
            print!("{}", text.concat());
        }
        return unopened.map(|_| String::new());
    };
    let run = crate::state::run_dir();
    let mut defender = Defender::look(&run);
    if crate::state::ocf_params(&run, &tag).is_some() {
        defender.note = format!(
            "a Pacemaker resource: fence_lkhscsipr arbitrates, nothing defends it ({})",
            if defender.running {
                "lkh-scsipr watch runs and judges it"
            } else {
                "no lkh-scsipr watch runs to judge it"
            }
        );
    }
    if a.json {
        println!("{}", health_json(&tag, &h, &defender, disks));
    } else {
        print!("{}", health_text(&tag, &h, &defender, disks));
    }
    h.status()
}

fn reservation_json(r: Option<Reservation>, ours: u64) -> Json {
    r.map_or(Json::Null, |r| {
        Json::obj()
            .with("holder", fmt_key(r.key))
            .with("owner", whose(r.key, Some(ours)))
            .with("type", PrType::code_name(r.type_code))
    })
}

fn lu_health_json(h: &LuHealth, disk: Json) -> Json {
    let paths = h.paths.iter().map(|p| {
        let mut j = Json::obj()
            .with("name", p.name.as_str())
            .with("hctl", p.hctl.clone().unwrap_or_default())
            .with("registration", p.reg.word())
            .with("answering", !matches!(p.reg, PathReg::NoAnswer(_)));
        if let PathReg::NoAnswer(e) = &p.reg {
            j.push("error", e.as_str());
        }
        j
    });
    let regs = h.keys.iter().map(|k| {
        Json::obj()
            .with("key", fmt_key(*k))
            .with("owner", whose(*k, Some(h.key)))
    });
    let facts = Json::obj()
        .with("device", h.device.as_str())
        .with("key", fmt_key(h.key))
        .with("type", h.pr_type.short_name())
        .with("paths", Json::Arr(paths.collect()))
        .with("reservation", reservation_json(h.reservation, h.key))
        .with("registrations", Json::Arr(regs.collect()))
        .with("our_registrations", h.ours())
        .with("generation", h.generation.map_or(Json::Null, Json::from))
        .with(
            "remembered_generation",
            h.last_generation.map_or(Json::Null, Json::from),
        );
    h.json(facts).with("disk", disk)
}

/// `status -t TAG --json`: quickCheck's `exit`, `verdict` and `message` for the resource,
/// and per LU what was checked and found, its own verdict, and its device diagnostic
/// (`disk`, as `status DEVICE --json` shows it).
fn health_json(tag: &Tag, h: &Health, defender: &Defender, disks: Vec<(String, Json)>) -> Json {
    let lus = h
        .lus
        .iter()
        .zip(disks)
        .map(|(l, (_, d))| lu_health_json(l, d));
    h.json(Json::obj().with("tag", tag.to_string()))
        .with("defender", defender_json(defender))
        .with("lus", Json::Arr(lus.collect()))
}

/// Whether a defender runs on this node (see [`Defender`]).
fn defender_json(d: &Defender) -> Json {
    Json::obj()
        .with("running", d.running)
        .with(
            "pid",
            d.pid.map_or(Json::Null, |p| Json::from(i64::from(p))),
        )
        .with(
            "last_tick_age_s",
            d.last_tick_age.map_or(Json::Null, Json::from),
        )
        .with("note", d.note.as_str())
}

fn path_text(p: &PathHealth) -> String {
    let what = match &p.reg {
        PathReg::Recorded => "registered (the records of the last verified check hold)".into(),
        PathReg::Listed => {
            "registered (READ FULL STATUS lists this path's I_T nexus with the key)".into()
        }
        PathReg::Unprobed => {
            "registration not probed (a new nexus or no record; quickCheck probes it with REGISTER, status sends no PR OUT)".into()
        }
        PathReg::Unregistered => "not registered (this node's key is registered nowhere)".into(),
        PathReg::Registered => "registered (probed)".into(),
        PathReg::ReRegistered => "re-registered".into(),
        PathReg::NoAnswer(e) => format!("NOT answering: {e}"),
    };
    format!("{} {}: {what}", p.name, p.hctl.as_deref().unwrap_or("-"))
}

/// `status -t TAG` as text: per LU the look (checked, found, verdict) and the device
/// diagnostic under `disk:`, then the resource's verdict.
fn health_text(tag: &Tag, h: &Health, defender: &Defender, disks: Vec<(String, Json)>) -> String {
    let mut t = format!("resource {tag}: {}\n", h.verdict());
    t += &format!(
        "defender: {}{}\n",
        if defender.running { "" } else { "WARNING: " },
        defender.note
    );
    for (l, (disk, _)) in h.lus.iter().zip(disks) {
        t += &format!("{}: {}\n", l.device, l.verdict());
        t += &format!(
            "  checked       key {}, type {}\n",
            fmt_key(l.key),
            l.pr_type
        );
        for p in &l.paths {
            t += &format!("  path          {}\n", path_text(p));
        }
        if let Verdict::NoAnswer(_) = l.verdict {
            t += "  reservation   unreadable\n";
        } else {
            t += &format!(
                "  reservation   {}\n",
                l.reservation.map_or("none".into(), |r| format!(
                    "{} ({}), type {}",
                    fmt_key(r.key),
                    whose(r.key, Some(l.key)),
                    PrType::code_name(r.type_code)
                ))
            );
            let regs: Vec<String> = l
                .keys
                .iter()
                .map(|k| format!("{} ({})", fmt_key(*k), whose(*k, Some(l.key))))
                .collect();
            t += &format!(
                "  registered    {}\n",
                if regs.is_empty() {
                    "nobody".into()
                } else {
                    regs.join(", ")
                }
            );
            let g = |g: Option<u32>| g.map_or("unknown".into(), |g| format!("{g:#x}"));
            t += &format!(
                "  generation    {} (this node's last look: {})\n",
                g(l.generation),
                g(l.last_generation)
            );
        }
        t += &format!("  verdict       {}\n", l.conclusion());
        t += "  disk:\n";
        for line in disk.lines().skip(1) {
            t += &format!("  {line}\n");
        }
    }
    t += &format!("verdict: {}\n", h.conclusion());
    t
}

#[cfg(test)]
mod tests;
