//! Diagnostics that change nothing on the disk's reservation state: `status` shows the LU,
//! its paths, the registrations and their owners, the holder, type, capabilities and
//! generation; `doctor` proves whether persistent reservations work on a disk and, if not,
//! says why in the admin's terms (for Hyper-V: the host-side `SupportPersistentReservations`
//! setting of the attachment). `doctor` writes only to a disk where nobody is registered:
//! test keys of its own (register, every type, a preempt between its keys, or of its own key
//! on a single path), always removed again, and a failed removal fails the command naming
//! the key left. With any registration on the disk it runs the read-only checks only.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lkh_common::{Action, Exit, Failure, Json, KitSpec, Outcome, Tag};
use sg_persist::{Lu, PrType, Reservation, SysRoot};

use crate::actions::assess::{Health, LuHealth, PathHealth, PathReg, Verdict};
use crate::actions::{self, open, outcome, prim};
use crate::settings::{self, fmt_key};

/// Dispatches the kit's own commands.
pub fn command(spec: &'static KitSpec, name: &str, args: &[String]) -> Option<Outcome> {
    match name {
        "status" => Some(status(spec, args)),
        "doctor" => Some(doctor(spec, args)),
        "watch" => Some(crate::watch::watch(spec, args)),
        "node-key" => Some(node_key_command(spec, args)),
        _ => None,
    }
}

/// `node-key`: prints this node's key (creating it once, as the first restore or fence `on`
/// would), for the fence agent's `keys=` map.
fn node_key_command(spec: &'static KitSpec, args: &[String]) -> Outcome {
    let a = lkh_common::parse_args(spec.keys, args, &[], &[])?;
    a.no_operands(
        "node-key takes no arguments: it prints this node's key from <conf dir>/node.key",
    )?;
    let key = settings::node_key_or_create(&settings::node_key_path())?;
    println!("{}", fmt_key(key));
    Ok(String::new())
}

const DIAG_TIMEOUT: Duration = Duration::from_secs(20);

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
        let ours = key.ok_or_else(|| actions::no_key(&s));
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

fn lu_status(lu: &mut Lu, ours: Option<u64>, deadline: Instant) -> (String, Json) {
    let mut t = format!("{}:\n", lu.input().display());
    let mut j = Json::obj()
        .with("device", lu.input().display().to_string())
        .with("lu", lu.id.to_string());
    let inq = lu.any_path(|p| p.inquiry(deadline)).ok();
    let serial = lu.any_path(|p| p.serial(deadline)).ok();
    t += &format!("  logical unit: {}", lu.id);
    if let Some(i) = &inq {
        t += &format!(" ({} {} {})", i.vendor, i.product, i.revision);
        j.push("vendor", i.vendor.as_str());
        j.push("product", i.product.as_str());
    }
    if let Some(s) = &serial {
        t += &format!(", serial {s}");
        j.push("serial", s.as_str());
    }
    t += "\n";
    if let Some(id) = &lu.identity {
        t += &format!("  identity: {id}\n");
        j.push(
            "identity",
            Json::obj()
                .with(
                    "designators",
                    Json::Arr(
                        id.designators
                            .iter()
                            .map(|d| Json::obj().with("id", d.to_string()).with("weak", d.weak()))
                            .collect(),
                    ),
                )
                .with("serial", id.serial.clone().map_or(Json::Null, Json::from)),
        );
    }
    t += "  paths:\n";
    let mut paths = Vec::new();
    for p in &lu.paths {
        t += &format!(
            "    {} {} via {}{}: answering\n",
            p.info.name,
            p.info.hctl.as_deref().unwrap_or("-"),
            p.node.display(),
            if p.private_node {
                " (private node: /dev lacks it)"
            } else {
                ""
            }
        );
        paths.push(
            Json::obj()
                .with("name", p.info.name.as_str())
                .with("hctl", p.info.hctl.clone().unwrap_or_default())
                .with("node", p.node.display().to_string())
                .with("private_node", p.private_node)
                .with("answering", true),
        );
    }
    for d in &lu.dead {
        t += &format!("    {}: NOT answering: {}\n", d.info.name, d.error);
        paths.push(
            Json::obj()
                .with("name", d.info.name.as_str())
                .with("hctl", d.info.hctl.clone().unwrap_or_default())
                .with("answering", false)
                .with("error", d.error.to_string()),
        );
    }
    j.push("paths", Json::Arr(paths));
    // the registered keys, one per I_T nexus, shown in full status or as plain keys
    let full = lu.any_path(|p| p.read_full_status(deadline));
    let no_full_status = match &full {
        Ok(_) => None,
        Err(e) => Some(if e.is_unsupported() {
            "the target does not implement READ FULL STATUS: it cannot tell which initiator registered which key".to_string()
        } else {
            format!("READ FULL STATUS failed ({e}): initiators unknown")
        }),
    };
    j.push("initiators_known", no_full_status.is_none());
    let registered: Vec<u64> = match full {
        Ok(fs) => {
            t += &format!("  generation: {}\n  registrations:\n", fs.generation);
            j.push("generation", fs.generation);
            let mut regs = Vec::new();
            for r in &fs.registrations {
                t += &format!(
                    "    {} ({}) from {}{}\n",
                    fmt_key(r.key),
                    whose(r.key, ours),
                    r.transport_id,
                    if r.holder { ", HOLDER" } else { "" }
                );
                regs.push(
                    Json::obj()
                        .with("key", fmt_key(r.key))
                        .with("owner", whose(r.key, ours))
                        .with("initiator", r.transport_id.to_string())
                        .with("holder", r.holder),
                );
            }
            j.push("registrations", Json::Arr(regs));
            fs.registrations.iter().map(|r| r.key).collect()
        }
        Err(_) => match lu.any_path(|p| p.read_keys(deadline)) {
            Ok(k) => {
                let why = no_full_status.clone().unwrap_or_default();
                t += &format!(
                    "  generation: {}\n  registered keys (initiators unknown: {why}):\n",
                    k.generation
                );
                j.push("initiators_unknown_reason", why.as_str());
                j.push("generation", k.generation);
                let mut regs = Vec::new();
                for key in &k.keys {
                    t += &format!("    {} ({})\n", fmt_key(*key), whose(*key, ours));
                    regs.push(
                        Json::obj()
                            .with("key", fmt_key(*key))
                            .with("owner", whose(*key, ours)),
                    );
                }
                j.push("registrations", Json::Arr(regs));
                k.keys
            }
            Err(e) => {
                t += &format!("  registrations: unavailable: {e}\n");
                j.push("error", e.to_string());
                Vec::new()
            }
        },
    };
    let mine = registered.iter().filter(|k| Some(**k) == ours).count();
    if let Some(mut w) = ours.and_then(|k| prim::shared_key_warning(lu, k, mine)) {
        if let Some(why) = &no_full_status {
            w += &format!(
                " — but on this disk status cannot list them: {why}; compare the initiator names of the nodes (e.g. /etc/iscsi/initiatorname.iscsi, the WWPNs) with the target's own session list instead"
            );
        }
        t += &format!("  WARNING: {w}\n");
        j.push("warning", w);
    }
    match lu.any_path(|p| p.read_reservation(deadline)) {
        Ok(rs) => match rs.reservation {
            Some(r) => {
                t += &format!(
                    "  reservation: held by {} ({}), type {}\n",
                    fmt_key(r.key),
                    whose(r.key, ours),
                    PrType::code_name(r.type_code)
                );
                j.push(
                    "reservation",
                    Json::obj()
                        .with("holder", fmt_key(r.key))
                        .with("owner", whose(r.key, ours))
                        .with("type", PrType::code_name(r.type_code)),
                );
            }
            None => {
                t += "  reservation: none\n";
                j.push("reservation", Json::Null);
            }
        },
        Err(e) => t += &format!("  reservation: unavailable: {e}\n"),
    }
    if let Ok(c) = lu.any_path(|p| p.report_capabilities(deadline)) {
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
        t += &format!(
            "  capabilities: types {}; {}\n",
            if c.tmv {
                types.join(", ")
            } else {
                "not reported".into()
            },
            flags.join(" ")
        );
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
    (t, j)
}

/// `status DEVICE…`: the device diagnostic of each LU. `status -t TAG`: the assessment
/// quickCheck makes of the resource ([`actions::assess`]; PR IN only, nothing changed), with
/// each LU's device diagnostic beside it, as text or JSON; the exit code is quickCheck's.
fn status(spec: &'static KitSpec, args: &[String]) -> Outcome {
    let a = status_args(spec, args)?;
    // in quickCheck's order: device names, this node's key, then the disks
    let resolved = open::resolve_all(&a.devices)?;
    let resource = match a.resource {
        Some((tag, t, key)) => Some((tag, t, key?)),
        None => None,
    };
    let deadline = Instant::now() + DIAG_TIMEOUT;
    let mut lus = open::open_resolved(resolved, true, deadline)?;
    let health = resource.map(|(tag, t, key)| {
        let h = actions::assess::assess(&mut lus, tag.as_str(), key, t, deadline);
        (tag, h)
    });
    let disks: Vec<(String, Json)> = lus
        .iter_mut()
        .map(|lu| lu_status(lu, a.key, deadline))
        .collect();
    let Some((tag, h)) = health else {
        let (text, arr): (Vec<String>, Vec<Json>) = disks.into_iter().unzip();
        if a.json {
            println!("{}", Json::Arr(arr));
        } else {
            print!("{}", text.concat());
        }
        return Ok(String::new());
    };
    if a.json {
        println!("{}", health_json(&tag, &h, disks));
    } else {
        print!("{}", health_text(&tag, &h, disks));
    }
    h.outcome().map(|_| String::new())
}

/// What quickCheck concluded, in one line: the summary or the failure message.
fn conclusion(o: Result<String, Failure>) -> String {
    o.unwrap_or_else(|f| f.message)
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
    Json::obj()
        .with("device", h.device.as_str())
        .with("key", fmt_key(h.key))
        .with("type", h.pr_type.short_name())
        .with("paths", Json::Arr(paths.collect()))
        .with("reservation", reservation_json(h.reservation, h.key))
        .with("registrations", Json::Arr(regs.collect()))
        .with("our_registrations", h.ours())
        .with("verdict", h.verdict_name())
        .with("exit", u32::from(h.exit().code()))
        .with("message", conclusion(h.outcome()))
        .with("disk", disk)
}

/// `status -t TAG --json`: quickCheck's `exit`, `verdict` and `message` for the resource,
/// and per LU what was checked and found, its own verdict, and its device diagnostic
/// (`disk`, as `status DEVICE --json` shows it).
fn health_json(tag: &Tag, h: &Health, disks: Vec<(String, Json)>) -> Json {
    let lus = h
        .lus
        .iter()
        .zip(disks)
        .map(|(l, (_, d))| lu_health_json(l, d));
    Json::obj()
        .with("tag", tag.to_string())
        .with("healthy", h.exit() == Exit::Ok)
        .with("verdict", h.verdict_name())
        .with("exit", u32::from(h.exit().code()))
        .with("message", conclusion(h.outcome()))
        .with("lus", Json::Arr(lus.collect()))
}

fn path_text(p: &PathHealth) -> String {
    let what = match &p.reg {
        PathReg::Recorded => "registered (the records of the last verified check hold)".into(),
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
fn health_text(tag: &Tag, h: &Health, disks: Vec<(String, Json)>) -> String {
    let mut t = format!("resource {tag}: {}\n", h.verdict_name());
    for (l, (disk, _)) in h.lus.iter().zip(disks) {
        t += &format!("{}: {}\n", l.device, l.verdict_name());
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
        }
        t += &format!(
            "  verdict       exit {}: {}\n",
            l.exit().code(),
            conclusion(l.outcome())
        );
        t += "  disk:\n";
        for line in disk.lines().skip(1) {
            t += &format!("  {line}\n");
        }
    }
    t += &format!(
        "verdict: exit {}: {}\n",
        h.exit().code(),
        conclusion(h.outcome())
    );
    t
}

fn hyperv_hint(vendor: &str) -> String {
    if vendor.eq_ignore_ascii_case("Msft") {
        " This is a Hyper-V virtual disk: Hyper-V passes persistent reservations only for a shared disk (VHD Set) attachment with SupportPersistentReservations enabled. On the host run `Get-VMHardDiskDrive -VMName <this VM> | Format-List VMName,Path,SupportPersistentReservations`: the line for this disk must show `SupportPersistentReservations : True`; if not, re-attach the .vhds with `Add-VMHardDiskDrive ... -SupportPersistentReservations` (VM off)."
            .into()
    } else {
        " Use a disk that supports SCSI-3 persistent reservations (a Hyper-V shared VHD Set with SupportPersistentReservations, or a virtual Fibre Channel LUN from an array that supports PR), or fence with LifeKeeper's quorum/witness instead.".into()
    }
}

/// What doctor found out by trying: `None` = not tried.
#[derive(Default)]
struct Findings {
    preempt_abort: Option<bool>,
    preempt: Option<bool>,
    /// How the preempts were tried (two nexuses, or one nexus preempting its own key).
    preempt_how: &'static str,
    types: Vec<(PrType, bool)>,
}

/// Prints `line` and keeps it for the verdict.
struct Report {
    warnings: Vec<String>,
    failures: Vec<String>,
}

impl Report {
    fn ok(&self, m: impl AsRef<str>) {
        println!("ok    {}", m.as_ref());
    }
    fn note(&self, m: impl AsRef<str>) {
        println!("note  {}", m.as_ref());
    }
    fn warn(&mut self, m: String) {
        println!("WARN  {m}");
        self.warnings.push(m);
    }
    fn fail(&mut self, m: String) {
        println!("FAIL  {m}");
        self.failures.push(m);
    }
}

/// `Ok(true)` works, `Ok(false)` the disk rejects the service action (ILLEGAL REQUEST),
/// `Err` anything else (a conflict or a path failure: the test could not decide).
fn tried(r: Result<(), sg_persist::Error>) -> Result<bool, sg_persist::Error> {
    match r {
        Ok(()) => Ok(true),
        Err(e) if e.is_unsupported() => Ok(false),
        Err(e) => Err(e),
    }
}

/// The write tests, on a disk where nobody is registered: `keys[i]` goes on path `i`.
/// Registers `keys[0]`, tries every type (RESERVE, READ RESERVATION, RELEASE), then the
/// preempts: with two paths `keys[1]` preempts `keys[0]` across nexuses (PREEMPT AND ABORT,
/// then PREEMPT back); with one path the nexus preempts its own key, as restore does to move
/// a reservation. Every step's failure is returned; cleanup is the caller's.
fn write_tests(
    lu: &mut Lu,
    keys: [u64; 2],
    deadline: Instant,
) -> Result<Findings, (String, sg_persist::Error)> {
    let mut f = Findings::default();
    let e = |what: &str| {
        let w = what.to_string();
        move |err| (w.clone(), err)
    };
    let two = lu.paths.len() >= 2;
    let [k1, k2] = keys;
    let p0 = &mut lu.paths[0];
    p0.register(0, k1, deadline)
        .map_err(e("PERSISTENT RESERVE OUT (REGISTER)"))?;
    let seen = p0
        .read_keys(deadline)
        .map_err(e("READ KEYS after REGISTER"))?;
    if !seen.keys.contains(&k1) {
        return Err((
            "READ KEYS after REGISTER".into(),
            sg_persist::Error::Parse {
                dev: p0.info.dev.clone(),
                cmd: "READ KEYS",
                err: sg_persist::parse::ParseError::Invalid(
                    "a registration accepted by the disk is not listed",
                ),
            },
        ));
    }
    for t in PrType::ALL {
        let works = match tried(p0.reserve(k1, t, deadline)) {
            Ok(true) => {
                let shown = p0
                    .read_reservation(deadline)
                    .map_err(e("READ RESERVATION"))?;
                p0.release(k1, t, deadline).map_err(e("RELEASE"))?;
                shown.reservation.is_some_and(|r| r.type_code == t.code())
            }
            Ok(false) => false,
            Err(err) => return Err((format!("RESERVE ({t})"), err)),
        };
        f.types.push((t, works));
    }
    let t = PrType::WriteExclusiveRegistrantsOnly;
    p0.reserve(k1, t, deadline).map_err(e("RESERVE"))?;
    if two {
        f.preempt_how = "two test keys on two paths";
        lu.paths[1]
            .register(0, k2, deadline)
            .map_err(e("REGISTER on the second path"))?;
        // after a preempt by `by` of `victim`: `by` holds, `victim` is gone
        let took =
            |lu: &mut Lu, by: u64, victim: u64| -> Result<bool, (String, sg_persist::Error)> {
                let k = lu.paths[0].read_keys(deadline).map_err(e("READ KEYS"))?;
                let r = lu.paths[0]
                    .read_reservation(deadline)
                    .map_err(e("READ RESERVATION"))?;
                Ok(!k.keys.contains(&victim) && r.reservation.is_some_and(|r| r.key == by))
            };
        let pa = tried(lu.paths[1].preempt_abort(k2, k1, t, deadline))
            .map_err(e("PREEMPT AND ABORT"))?;
        let pa = pa && took(lu, k2, k1)?;
        f.preempt_abort = Some(pa);
        // PREEMPT: back from path 0 when the abort variant moved the reservation, else from
        // path 1 as the abort variant should have
        let (by, by_key, victim) = if pa {
            lu.paths[0]
                .register(0, k1, deadline)
                .map_err(e("REGISTER again"))?;
            (0, k1, k2)
        } else {
            (1, k2, k1)
        };
        let p = tried(lu.paths[by].preempt(by_key, victim, t, deadline)).map_err(e("PREEMPT"))?;
        f.preempt = Some(p && took(lu, by_key, victim)?);
    } else {
        f.preempt_how =
            "its own key on the only path; a preempt between two nexuses needs a second path";
        f.preempt_abort = Some(
            tried(lu.paths[0].preempt_abort(k1, k1, t, deadline))
                .map_err(e("PREEMPT AND ABORT"))?,
        );
        f.preempt = Some(tried(lu.paths[0].preempt(k1, k1, t, deadline)).map_err(e("PREEMPT"))?);
    }
    Ok(f)
}

/// Removes the test keys from every path they may be on (REGISTER with the key and 0: a
/// nexus without that key answers RESERVATION CONFLICT and keeps what it has) and checks
/// that none is left. Unregistering the holder also ends its reservation.
fn cleanup<D: crate::pr::Disk>(
    lu: &mut D,
    keys: [u64; 2],
    deadline: Instant,
) -> Result<(), String> {
    use crate::pr::Nexus;
    for p in lu.paths() {
        for k in keys {
            match p.register(k, 0, deadline) {
                Ok(()) => {}
                Err(e) if e.is_conflict() => {}
                Err(e) => log::debug!("cleanup {}: {e}", fmt_key(k)),
            }
        }
    }
    let left = lu
        .any_path(|p| p.read_keys(deadline))
        .map_err(|e| format!("the test keys may be left: READ KEYS failed: {e}"))?;
    match left.keys.iter().find(|k| keys.contains(k)) {
        None => Ok(()),
        Some(k) => Err(format!("test key {} is still registered", fmt_key(*k))),
    }
}

/// `doctor DEVICE`: proves what restore and takeover need on this disk (see the module doc
/// and the README), and names each missing piece with its consequence.
fn doctor(spec: &'static KitSpec, args: &[String]) -> Outcome {
    let a = lkh_common::parse_args(spec.keys, args, &[], &[])?;
    let [dev] = a.operands("give exactly one device: `doctor DEVICE`")? else {
        return Err(Failure::usage("give exactly one device: `doctor DEVICE`"));
    };
    let deadline = Instant::now() + DIAG_TIMEOUT;
    let root = SysRoot::default();
    let resolved = sg_persist::path::resolve(std::path::Path::new(dev), &root).map_err(|e| {
        println!("FAIL  {e}");
        Failure::usage(e.to_string())
    })?;
    println!(
        "ok    {dev}: SCSI disk with {} path(s): {}",
        resolved.paths.len(),
        resolved
            .paths
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut lu = Lu::open_resolved(
        resolved,
        sg_persist::Options {
            identify_single: true,
            ..open::options(DIAG_TIMEOUT)
        },
        deadline,
    )
    .map_err(|e| {
        println!("FAIL  {e}");
        outcome::failure(&e)
    })?;
    let mut rep = Report {
        warnings: Vec::new(),
        failures: Vec::new(),
    };
    rep.ok(format!(
        "all answering paths report one logical unit: {}",
        lu.id
    ));
    if let Some(id) = &lu.identity {
        rep.ok(format!("identified by: {id}"));
        if id.designators.iter().all(|d| d.weak()) {
            match &id.serial {
                Some(_) => rep.note(
                    "every VPD 0x83 designator is one the target assigns locally (a tgt-like target): paths are told apart by the unit serial number too",
                ),
                None => rep.warn(format!(
                    "{dev}: only locally assigned designators and no unit serial number: this LU cannot be told apart from another target's, so a multipath map over it is refused; give the LU a unique serial number on the target"
                )),
            }
        }
    }
    for p in &lu.paths {
        rep.ok(format!(
            "path {}: commands through {}{} (each bounded by the deadline)",
            p.info.name,
            p.node.display(),
            if p.private_node {
                ", a private node: /dev lacks it"
            } else {
                ""
            }
        ));
    }
    for d in &lu.dead {
        println!("WARN  path {} does not answer: {}", d.info.name, d.error);
    }
    let inq = lu
        .any_path(|p| p.inquiry(deadline))
        .map_err(|e| outcome::failure(&e))?;
    rep.ok(format!(
        "INQUIRY: {} {} {}",
        inq.vendor, inq.product, inq.revision
    ));
    let fail = |what: &str, e: &sg_persist::Error| {
        let msg = if e.is_unsupported() {
            format!(
                "{dev}: the disk rejects {what} ({e}): it does not implement SCSI-3 persistent reservations.{}",
                hyperv_hint(&inq.vendor)
            )
        } else {
            format!("{dev}: {what} failed: {e}")
        };
        println!("FAIL  {msg}");
        Failure::failed(msg)
    };
    let caps = match lu.any_path(|p| p.report_capabilities(deadline)) {
        Ok(c) => {
            rep.ok(format!(
                "REPORT CAPABILITIES: types {}",
                c.types
                    .iter()
                    .map(|t| t.short_name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            Some(c)
        }
        Err(e) if e.is_unsupported() => {
            rep.note(format!("REPORT CAPABILITIES not supported ({e})"));
            None
        }
        Err(e) => return Err(fail("REPORT CAPABILITIES", &e)),
    };
    let keys = lu
        .any_path(|p| p.read_keys(deadline))
        .map_err(|e| fail("PERSISTENT RESERVE IN (READ KEYS)", &e))?;
    rep.ok(format!(
        "READ KEYS: generation {}, {} registration(s)",
        keys.generation,
        keys.keys.len()
    ));
    let rs = lu
        .any_path(|p| p.read_reservation(deadline))
        .map_err(|e| fail("PERSISTENT RESERVE IN (READ RESERVATION)", &e))?;
    match rs.reservation {
        Some(r) => rep.ok(format!(
            "READ RESERVATION: held by {} ({})",
            fmt_key(r.key),
            PrType::code_name(r.type_code)
        )),
        None => rep.ok("READ RESERVATION: none"),
    }
    // what REPORT SUPPORTED OPERATION CODES claims, compared below with what works
    let claim = |lu: &mut Lu, op: u8, sa: u16| {
        lu.any_path(|p| p.claims_command(op, sa, deadline))
            .ok()
            .flatten()
    };
    let claims_rfs = claim(&mut lu, sg_persist::cdb::PERSISTENT_RESERVE_IN, 3);
    let claims_pa = claim(&mut lu, sg_persist::cdb::PERSISTENT_RESERVE_OUT, 5);
    match lu.any_path(|p| p.read_full_status(deadline)) {
        Ok(fs) => rep.ok(format!(
            "READ FULL STATUS: {} registration(s) with their initiators",
            fs.registrations.len()
        )),
        Err(e) if e.is_unsupported() => {
            rep.warn(format!(
                "{dev}: READ FULL STATUS unsupported ({e}): `lkh-scsipr status` cannot say which initiator registered which key, so its shared-key warning cannot name the initiators"
            ));
            if claims_rfs == Some(true) {
                rep.warn(format!(
                    "{dev}: REPORT SUPPORTED OPERATION CODES claims READ FULL STATUS, which the disk rejects: lkh-scsipr never relies on that list"
                ));
            }
        }
        Err(e) => rep.warn(format!("{dev}: READ FULL STATUS failed: {e}")),
    }
    if !keys.keys.is_empty() || rs.reservation.is_some() {
        println!(
            "skip  write tests (register, reserve, every type, preempt): {} registration(s) on the disk ({}): doctor writes nothing while any node is registered; run it again when none is (after `lkh-scsipr remove` on every node)",
            keys.keys.len(),
            keys.keys
                .iter()
                .map(|k| fmt_key(*k))
                .collect::<Vec<_>>()
                .join(", ")
        );
        return verdict(dev, &rep, false);
    }
    if lu.paths.is_empty() {
        return Err(Failure::failed(format!("{dev}: no path answers")));
    }
    let base = (settings::KEY_PREFIX << 48) | 0xd0c0_0000_0000;
    let k1 = base | (u64::from(std::process::id()) & 0x7fff_ffff);
    let test_keys = [k1, k1 | 0x8000_0000];
    let result = write_tests(&mut lu, test_keys, deadline);
    let cleaned = cleanup(&mut lu, test_keys, deadline);
    if let Err(why) = &cleaned {
        let path = lu
            .paths
            .first()
            .map_or_else(|| dev.clone(), |p| p.info.dev.display().to_string());
        let msg = format!(
            "{dev}: doctor's cleanup failed: {why}: it can write to the disk; remove it now with `sg_persist --out --register --param-rk=<KEY> {path}` for each of {} (on the path that has it)",
            test_keys
                .iter()
                .map(|k| fmt_key(*k))
                .collect::<Vec<_>>()
                .join(" and ")
        );
        println!("FAIL  {msg}");
        return Err(Failure::failed(msg));
    }
    let f = match result {
        Ok(f) => f,
        Err((what, e)) => return Err(fail(&what, &e)),
    };
    rep.ok(format!(
        "PERSISTENT RESERVE OUT: registered and removed test key(s) {}",
        test_keys
            .iter()
            .take(lu.paths.len().min(2))
            .map(|k| fmt_key(*k))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for (t, works) in &f.types {
        let claimed = caps.as_ref().is_some_and(|c| c.tmv && c.types.contains(t));
        match (works, claimed) {
            (true, _) => rep.ok(format!("type {t}: RESERVE, READ RESERVATION and RELEASE work")),
            (false, true) => rep.warn(format!(
                "{dev}: type {t} is claimed by REPORT CAPABILITIES but RESERVE with it fails: do not configure TYPE={t}"
            )),
            (false, false) => rep.note(format!("type {t} does not work (not claimed either)")),
        }
        if !works && t.short_name() == settings::DEFAULT_TYPE {
            rep.fail(format!(
                "{dev}: the default type {t} does not work: restore fails unless TYPE= names a working type"
            ));
        }
    }
    match (f.preempt_abort, f.preempt) {
        (Some(true), Some(true)) => rep.ok(format!(
            "PREEMPT AND ABORT and PREEMPT work (tried: {})",
            f.preempt_how
        )),
        (Some(false), Some(true)) => rep.warn(format!(
            "{dev}: PREEMPT AND ABORT unsupported: takeover falls back to PREEMPT; the fenced node's queued commands are not aborted by the disk (its next commands still get RESERVATION CONFLICT) (tried: {})",
            f.preempt_how
        )),
        (Some(true), _) => rep.warn(format!(
            "{dev}: PREEMPT unsupported: takeover uses PREEMPT AND ABORT, which works; nothing else is lost (tried: {})",
            f.preempt_how
        )),
        _ => rep.fail(format!(
            "{dev}: neither PREEMPT AND ABORT nor PREEMPT works: a takeover from another node is impossible on this disk (tried: {}); fence with something else",
            f.preempt_how
        )),
    }
    if f.preempt_abort == Some(false) && claims_pa == Some(true) {
        rep.warn(format!(
            "{dev}: REPORT SUPPORTED OPERATION CODES claims PREEMPT AND ABORT, which the disk rejects: lkh-scsipr never relies on that list"
        ));
    }
    verdict(dev, &rep, true)
}

fn verdict(dev: &str, rep: &Report, wrote: bool) -> Outcome {
    if let Some(first) = rep.failures.first() {
        return Err(Failure::failed(first.clone()));
    }
    let what = if wrote {
        "SCSI-3 persistent reservations work"
    } else {
        "SCSI-3 persistent reservations answer (read-only checks; write tests skipped)"
    };
    if rep.warnings.is_empty() {
        println!("ok    {dev}: {what}");
    } else {
        println!(
            "ok    {dev}: {what}, with {} deviation(s) listed as WARN above",
            rep.warnings.len()
        );
    }
    Ok(String::new())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use lkh_common::Hint;

    use super::*;
    use crate::actions::records::{Done, Memory};
    use crate::model::{Fault, Lun, Node};
    use crate::pr::Nexus;

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
            lus: vec![actions::assess::assess_lu(a, key("a"), RO, mem, deadline())],
        };
        let tag = Tag::parse("db").unwrap();
        let json = health_json(&tag, &h, vec![(String::new(), Json::Null)]).to_string();
        let text = health_text(&tag, &h, vec![("disk:\n".into(), Json::Null)]);
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
            actions::check::check_lu(a, key("a"), RO, false, mem, deadline()),
        )
    }

    /// quickCheck and `status -t TAG --json` agree on every state: the exit code, `healthy`,
    /// the verdict, and (when quickCheck only looked) the message; status never sends PR OUT.
    /// Each state's path registrations and the JSON fields the README lists are checked too.
    #[test]
    fn quickcheck_and_status_agree() {
        fn with(rec: &str) -> Memory<'_> {
            Memory {
                seen: Some(rec),
                was_holder: true,
            }
        }
        type Setup = fn(&Arc<Mutex<Lun>>, &mut Node);
        // (state, setup, records kept, exit, verdict, the first path's registration)
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
                |_, a| a.paths[0].release(key("a"), RO, deadline()).unwrap(),
                true,
                1,
                "nobody holds",
                "recorded",
            ),
            (
                "wrong type",
                |_, a| {
                    a.paths[0].release(key("a"), RO, deadline()).unwrap();
                    let t = PrType::WriteExclusive;
                    a.paths[0].reserve(key("a"), t, deadline()).unwrap();
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
                    actions::restore::restore_lu(&mut b, key("b"), RO, deadline()).unwrap();
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
        for (what, setup, recorded, code, verdict, reg) in cases {
            let l = Arc::new(Mutex::new(Lun::default()));
            let mut a = Node::new(&l, "a", &[1, 4]);
            let (_, rec) = actions::restore::restore_lu(&mut a, key("a"), RO, deadline()).unwrap();
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
            let q_exit = q.as_ref().map_or_else(|f| f.exit, |_| Exit::Ok);
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
            } else if what == "healthy" {
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
        let h = actions::assess::assess_lu(&mut a, key("a"), RO, Memory::default(), deadline());
        let q =
            actions::check::check_lu(&mut a, key("a"), RO, false, Memory::default(), deadline());
        let (s, q) = (h.outcome().unwrap_err(), q.unwrap_err());
        assert_eq!((s.exit, s.hint), (Exit::Failed, Hint::NotRunning));
        assert_eq!(s, q);
    }

    /// doctor's cleanup: when unregistering a test key does not reach the disk, it says the
    /// key is still registered (doctor then fails with the command that removes it); when it
    /// does, nothing is left.
    #[test]
    fn doctor_cleanup_failure_is_loud() {
        let l = Arc::new(Mutex::new(Lun::default()));
        let mut a = Node::new(&l, "a", &[1]);
        let keys = [key("d"), key("e")];
        a.paths[0].register(0, keys[0], deadline()).unwrap();
        a.paths[0].hook = Some(Box::new(|_, cmd| {
            if cmd == "REGISTER" {
                Fault::Timeout
            } else {
                Fault::Pass
            }
        }));
        let why = cleanup(&mut a, keys, deadline()).unwrap_err();
        assert!(why.contains("still registered"), "{why}");
        assert!(why.contains(&fmt_key(keys[0])), "{why}");
        a.paths[0].hook = None;
        cleanup(&mut a, keys, deadline()).unwrap();
        assert!(l.lock().unwrap().keys().is_empty());
    }
}
