//! Diagnostics that change nothing on the disk's reservation state: `status` shows the LU,
//! its paths, the registrations and their owners, the holder, type, capabilities and
//! generation; `doctor` proves whether persistent reservations work on a disk and, if not,
//! says why in the admin's terms (for Hyper-V: the host-side `SupportPersistentReservations`
//! setting of the attachment). `doctor` registers a temporary key on a path that has none and
//! removes it again; it never touches a registration that exists.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lkh_common::{Action, Failure, Json, KitSpec, Outcome};
use sg_persist::{Lu, PrType, SysRoot};

use crate::ops;
use crate::settings::{self, fmt_key};

/// Dispatches the kit's own commands.
pub fn command(spec: &'static KitSpec, name: &str, args: &[String]) -> Option<Outcome> {
    match name {
        "status" => Some(status(spec, args)),
        "doctor" => Some(doctor(args)),
        "watch" => Some(crate::watch::watch(spec, args)),
        "node-key" => Some(node_key_command(args)),
        _ => None,
    }
}

/// `node-key`: prints this node's key (creating it once, as the first restore or fence `on`
/// would), for the fence agent's `keys=` map.
fn node_key_command(args: &[String]) -> Outcome {
    if let Some(a) = args.first() {
        return Err(Failure::usage(format!(
            "node-key takes no arguments (got {a:?}): it prints this node's key from <conf dir>/node.key"
        )));
    }
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
}

fn status_args(spec: &'static KitSpec, args: &[String]) -> Result<StatusArgs, Failure> {
    let json = args.iter().any(|a| a == "--json");
    if args.iter().any(|a| a == "-t" || a.starts_with("--tag")) {
        let a = lkh_common::parse_hook_args(spec.keys, args, &["--json"])?;
        let ctx = lkh_common::context(spec, Action::QuickCheck, &a)?;
        let s = settings::Settings::from_ctx(&ctx)?;
        let key = s.key(false)?;
        return Ok(StatusArgs {
            json,
            devices: s.devices,
            key,
        });
    }
    let mut devices = Vec::new();
    for a in args {
        match a.as_str() {
            "--json" => {}
            d if d.starts_with('-') => {
                return Err(Failure::usage(format!(
                    "status: unknown option {d}: use `status DEVICE... [--json]` or `status -t TAG [--json]`"
                )));
            }
            d => devices.push(PathBuf::from(d)),
        }
    }
    if devices.is_empty() {
        return Err(Failure::usage(
            "status: no device given: use `status DEVICE... [--json]` or `status -t TAG [--json]`",
        ));
    }
    Ok(StatusArgs {
        json,
        devices,
        key: node_key(),
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
    t += "\n  paths:\n";
    let mut paths = Vec::new();
    for p in &lu.paths {
        t += &format!(
            "    {} {} via {}: answering\n",
            p.info.name,
            p.info.hctl.as_deref().unwrap_or("-"),
            p.node.display()
        );
        paths.push(
            Json::obj()
                .with("name", p.info.name.as_str())
                .with("hctl", p.info.hctl.clone().unwrap_or_default())
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
    let registered: Vec<u64> = match lu.any_path(|p| p.read_full_status(deadline)) {
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
                t += &format!("  generation: {}\n  registered keys:\n", k.generation);
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
    if let Some(w) = ours.and_then(|k| ops::shared_key_warning(lu, k, mine)) {
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

fn status(spec: &'static KitSpec, args: &[String]) -> Outcome {
    let a = status_args(spec, args)?;
    let deadline = Instant::now() + DIAG_TIMEOUT;
    let mut lus = ops::open_all(&a.devices, true, deadline)?;
    let mut text = String::new();
    let mut arr = Vec::new();
    for lu in &mut lus {
        let (t, j) = lu_status(lu, a.key, deadline);
        text += &t;
        arr.push(j);
    }
    if a.json {
        println!("{}", Json::Arr(arr));
    } else {
        print!("{text}");
    }
    Ok(String::new())
}

fn hyperv_hint(vendor: &str) -> String {
    if vendor.eq_ignore_ascii_case("Msft") {
        " This is a Hyper-V virtual disk: Hyper-V passes persistent reservations only for a shared disk (VHD Set) attachment with SupportPersistentReservations enabled. On the host run `Get-VMHardDiskDrive -VMName <this VM> | Format-List VMName,Path,SupportPersistentReservations`: the line for this disk must show `SupportPersistentReservations : True`; if not, re-attach the .vhds with `Add-VMHardDiskDrive ... -SupportPersistentReservations` (VM off)."
            .into()
    } else {
        " Use a disk that supports SCSI-3 persistent reservations (a Hyper-V shared VHD Set with SupportPersistentReservations, or a virtual Fibre Channel LUN from an array that supports PR), or fence with LifeKeeper's quorum/witness instead.".into()
    }
}

/// `doctor DEVICE`.
fn doctor(args: &[String]) -> Outcome {
    let [dev] = args else {
        return Err(Failure::usage(
            "doctor: give exactly one device: `doctor DEVICE`",
        ));
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
            ..ops::options(DIAG_TIMEOUT)
        },
        deadline,
    )
    .map_err(|e| {
        println!("FAIL  {e}");
        ops::failure(&e)
    })?;
    println!(
        "ok    all answering paths report one logical unit: {}",
        lu.id
    );
    for d in &lu.dead {
        println!("WARN  path {} does not answer: {}", d.info.name, d.error);
    }
    let inq = lu
        .any_path(|p| p.inquiry(deadline))
        .map_err(|e| ops::failure(&e))?;
    println!(
        "ok    INQUIRY: {} {} {}",
        inq.vendor, inq.product, inq.revision
    );
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
    match lu.any_path(|p| p.report_capabilities(deadline)) {
        Ok(c) => println!(
            "ok    REPORT CAPABILITIES: types {}",
            c.types
                .iter()
                .map(|t| t.short_name())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Err(e) if e.is_unsupported() => println!("note  REPORT CAPABILITIES not supported ({e})"),
        Err(e) => return Err(fail("REPORT CAPABILITIES", &e)),
    }
    let keys = lu
        .any_path(|p| p.read_keys(deadline))
        .map_err(|e| fail("PERSISTENT RESERVE IN (READ KEYS)", &e))?;
    println!(
        "ok    READ KEYS: generation {}, {} registration(s)",
        keys.generation,
        keys.keys.len()
    );
    let rs = lu
        .any_path(|p| p.read_reservation(deadline))
        .map_err(|e| fail("PERSISTENT RESERVE IN (READ RESERVATION)", &e))?;
    match rs.reservation {
        Some(r) => println!(
            "ok    READ RESERVATION: held by {} ({})",
            fmt_key(r.key),
            PrType::code_name(r.type_code)
        ),
        None => println!("ok    READ RESERVATION: none"),
    }
    let test_key = (settings::KEY_PREFIX << 48) | 0xd0c0_0000_0000 | u64::from(std::process::id());
    let Some(p) = lu.paths.first_mut() else {
        return Err(Failure::failed(format!("{dev}: no path answers")));
    };
    match p.register(0, test_key, deadline) {
        Ok(()) => {
            let seen = p
                .read_keys(deadline)
                .map(|k| k.keys.contains(&test_key))
                .unwrap_or(false);
            let removed = p.register(test_key, 0, deadline);
            if !seen {
                let msg = format!(
                    "{dev}: a test registration was accepted but READ KEYS does not show it: the disk's PR support is unreliable"
                );
                println!("FAIL  {msg}");
                return Err(Failure::failed(msg));
            }
            if let Err(e) = removed {
                println!(
                    "WARN  removing the test key {} failed: {e}",
                    fmt_key(test_key)
                );
            }
            println!(
                "ok    PERSISTENT RESERVE OUT: registered and removed test key {} through {}",
                fmt_key(test_key),
                p.info.name
            );
        }
        Err(e) if e.is_conflict() => println!(
            "ok    PERSISTENT RESERVE OUT: path {} is already registered (in use); not touching it",
            p.info.name
        ),
        Err(e) => return Err(fail("PERSISTENT RESERVE OUT (REGISTER)", &e)),
    }
    println!("ok    {dev}: SCSI-3 persistent reservations work");
    Ok(String::new())
}
