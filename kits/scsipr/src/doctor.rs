//! `doctor DEVICE`: proves whether persistent reservations work on a disk and, if not, says
//! why in the admin's terms (for Hyper-V: the host-side `SupportPersistentReservations`
//! setting of the attachment).
//!
//! The read-only checks always run (INQUIRY, REPORT CAPABILITIES, READ KEYS, READ
//! RESERVATION, READ FULL STATUS, and what REPORT SUPPORTED OPERATION CODES claims, which is
//! compared with what works, never trusted). doctor writes only to a disk where nobody is
//! registered: test keys of its own (register, every type, a preempt between its keys, or of
//! its own key on a single path), always removed again, and a failed removal fails the command
//! naming the key left. With any registration on the disk it runs the read-only checks only.
//!
//! Each check is reported as it answers (`ok`, `note`, `WARN`, `FAIL` lines, [`Report`]), so
//! a disk that stalls shows where; the write tests gather their [`Findings`] first, judged
//! once the test keys are gone ([`judge`]).

use std::time::Instant;

use lkh_common::{Failure, KitSpec, Outcome};
use sg_persist::{Capabilities, Keys, Lu, PrType, Reservation, SysRoot};

use crate::actions::open::{DIAG_TIMEOUT, options};
use crate::actions::outcome::failure;
use crate::pr::{Disk, Nexus};
use crate::settings::{self, fmt_key};

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
#[derive(Default)]
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
async fn write_tests(
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
        .await
        .map_err(e("PERSISTENT RESERVE OUT (REGISTER)"))?;
    let seen = p0
        .read_keys(deadline)
        .await
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
        let works = match tried(p0.reserve(k1, t, deadline).await) {
            Ok(true) => {
                let shown = p0
                    .read_reservation(deadline)
                    .await
                    .map_err(e("READ RESERVATION"))?;
                p0.release(k1, t, deadline).await.map_err(e("RELEASE"))?;
                shown.reservation.is_some_and(|r| r.type_code == t.code())
            }
            Ok(false) => false,
            Err(err) => return Err((format!("RESERVE ({t})"), err)),
        };
        f.types.push((t, works));
    }
    let t = PrType::WriteExclusiveRegistrantsOnly;
    p0.reserve(k1, t, deadline).await.map_err(e("RESERVE"))?;
    if two {
        f.preempt_how = "two test keys on two paths";
        lu.paths[1]
            .register(0, k2, deadline)
            .await
            .map_err(e("REGISTER on the second path"))?;
        // after a preempt by `by` of `victim`: `by` holds, `victim` is gone
        let took = async |lu: &mut Lu,
                          by: u64,
                          victim: u64|
               -> Result<bool, (String, sg_persist::Error)> {
            let k = lu.paths[0]
                .read_keys(deadline)
                .await
                .map_err(e("READ KEYS"))?;
            let r = lu.paths[0]
                .read_reservation(deadline)
                .await
                .map_err(e("READ RESERVATION"))?;
            Ok(!k.keys.contains(&victim) && r.reservation.is_some_and(|r| r.key == by))
        };
        let pa = tried(lu.paths[1].preempt_abort(k2, k1, t, deadline).await)
            .map_err(e("PREEMPT AND ABORT"))?;
        let pa = pa && took(lu, k2, k1).await?;
        f.preempt_abort = Some(pa);
        // PREEMPT: back from path 0 when the abort variant moved the reservation, else from
        // path 1 as the abort variant should have
        let (by, by_key, victim) = if pa {
            lu.paths[0]
                .register(0, k1, deadline)
                .await
                .map_err(e("REGISTER again"))?;
            (0, k1, k2)
        } else {
            (1, k2, k1)
        };
        let p =
            tried(lu.paths[by].preempt(by_key, victim, t, deadline).await).map_err(e("PREEMPT"))?;
        f.preempt = Some(p && took(lu, by_key, victim).await?);
    } else {
        f.preempt_how =
            "its own key on the only path; a preempt between two nexuses needs a second path";
        f.preempt_abort = Some(
            tried(lu.paths[0].preempt_abort(k1, k1, t, deadline).await)
                .map_err(e("PREEMPT AND ABORT"))?,
        );
        f.preempt =
            Some(tried(lu.paths[0].preempt(k1, k1, t, deadline).await).map_err(e("PREEMPT"))?);
    }
    Ok(f)
}

/// Removes the test keys from every path they may be on (REGISTER with the key and 0: a
/// nexus without that key answers RESERVATION CONFLICT and keeps what it has) and checks
/// that none is left. Unregistering the holder also ends its reservation.
async fn cleanup<D: Disk>(lu: &mut D, keys: [u64; 2], deadline: Instant) -> Result<(), String> {
    for p in lu.paths() {
        for k in keys {
            match p.register(k, 0, deadline).await {
                Ok(()) => {}
                Err(e) if e.is_conflict() => {}
                Err(e) => log::debug!("cleanup {}: {e}", fmt_key(k)),
            }
        }
    }
    let left = lu
        .any_path(async |p| p.read_keys(deadline).await)
        .await
        .map_err(|e| format!("the test keys may be left: READ KEYS failed: {e}"))?;
    match left.keys.iter().find(|k| keys.contains(k)) {
        None => Ok(()),
        Some(k) => Err(format!("test key {} is still registered", fmt_key(*k))),
    }
}

/// `doctor DEVICE`: proves what restore and takeover need on this disk (see the module doc
/// and the README), and names each missing piece with its consequence.
pub fn doctor(spec: &'static KitSpec, args: &[String]) -> Outcome {
    sg_persist::exec::block_on(doctor_async(spec, args))
}

async fn doctor_async(spec: &'static KitSpec, args: &[String]) -> Outcome {
    let a = lkh_common::parse_args(spec.keys, args, &[], &[])?;
    let [dev] = a.operands("give exactly one device: `doctor DEVICE`")? else {
        return Err(Failure::usage("give exactly one device: `doctor DEVICE`"));
    };
    let deadline = Instant::now() + DIAG_TIMEOUT;
    let mut lu = open(dev, deadline).await?;
    let mut rep = Report::default();
    identify(&lu, dev, &mut rep);
    let reads = read_checks(&mut lu, dev, &mut rep, deadline).await?;
    if !reads.keys.keys.is_empty() || reads.reservation.is_some() {
        println!(
            "skip  write tests (register, reserve, every type, preempt): {} registration(s) on the disk ({}): doctor writes nothing while any node is registered; run it again when none is (after `lkh-scsipr remove` on every node)",
            reads.keys.keys.len(),
            reads
                .keys
                .keys
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
    let f = write_checks(&mut lu, dev, &reads.vendor, &mut rep, deadline).await?;
    judge(dev, &f, &reads, &mut rep);
    verdict(dev, &rep, true)
}

/// Resolves and opens the LU (identifying a single path too), saying so.
async fn open(dev: &str, deadline: Instant) -> Result<Lu, Failure> {
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
    Lu::open_resolved(
        resolved,
        &root,
        sg_persist::Options {
            identify_single: true,
            ..options(DIAG_TIMEOUT)
        },
        deadline,
    )
    .await
    .map_err(|e| {
        println!("FAIL  {e}");
        failure(&e)
    })
}

/// What the opened LU showed of itself: its identity and paths.
fn identify(lu: &Lu, dev: &str, rep: &mut Report) {
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
}

/// What the read-only checks found that the write tests and their judgement use.
struct Reads {
    /// The INQUIRY vendor (`Msft`: a Hyper-V disk).
    vendor: String,
    caps: Option<Capabilities>,
    keys: Keys,
    reservation: Option<Reservation>,
    /// Whether REPORT SUPPORTED OPERATION CODES claims PREEMPT AND ABORT.
    claims_pa: Option<bool>,
}

/// The read-only checks, each reported as it answers: INQUIRY, REPORT CAPABILITIES, READ
/// KEYS, READ RESERVATION, what REPORT SUPPORTED OPERATION CODES claims, READ FULL STATUS.
async fn read_checks(
    lu: &mut Lu,
    dev: &str,
    rep: &mut Report,
    deadline: Instant,
) -> Result<Reads, Failure> {
    let inq = lu
        .any_path(async |p| p.inquiry(deadline).await)
        .await
        .map_err(|e| failure(&e))?;
    rep.ok(format!(
        "INQUIRY: {} {} {}",
        inq.vendor, inq.product, inq.revision
    ));
    let vendor = inq.vendor;
    let caps = match lu
        .any_path(async |p| p.report_capabilities(deadline).await)
        .await
    {
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
        Err(e) => return Err(fail(dev, &vendor, "REPORT CAPABILITIES", &e)),
    };
    let keys = lu
        .any_path(async |p| p.read_keys(deadline).await)
        .await
        .map_err(|e| fail(dev, &vendor, "PERSISTENT RESERVE IN (READ KEYS)", &e))?;
    rep.ok(format!(
        "READ KEYS: generation {}, {} registration(s)",
        keys.generation,
        keys.keys.len()
    ));
    let rs = lu
        .any_path(async |p| p.read_reservation(deadline).await)
        .await
        .map_err(|e| fail(dev, &vendor, "PERSISTENT RESERVE IN (READ RESERVATION)", &e))?;
    match rs.reservation {
        Some(r) => rep.ok(format!(
            "READ RESERVATION: held by {} ({})",
            fmt_key(r.key),
            PrType::code_name(r.type_code)
        )),
        None => rep.ok("READ RESERVATION: none"),
    }
    // what REPORT SUPPORTED OPERATION CODES claims, compared below with what works
    let claim = async |lu: &mut Lu, op: u8, sa: u16| {
        lu.any_path(async |p| p.claims_command(op, sa, deadline).await)
            .await
            .ok()
            .flatten()
    };
    let claims_rfs = claim(lu, sg_persist::cdb::PERSISTENT_RESERVE_IN, 3).await;
    let claims_pa = claim(lu, sg_persist::cdb::PERSISTENT_RESERVE_OUT, 5).await;
    match lu
        .any_path(async |p| p.read_full_status(deadline).await)
        .await
    {
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
    Ok(Reads {
        vendor,
        caps,
        keys,
        reservation: rs.reservation,
        claims_pa,
    })
}

/// A command that failed, as doctor's failure (printed): one the disk rejects as unsupported
/// means no SCSI-3 persistent reservations, with the hint for the platform (`vendor`).
fn fail(dev: &str, vendor: &str, what: &str, e: &sg_persist::Error) -> Failure {
    let msg = if e.is_unsupported() {
        format!(
            "{dev}: the disk rejects {what} ({e}): it does not implement SCSI-3 persistent reservations.{}",
            hyperv_hint(vendor)
        )
    } else {
        format!("{dev}: {what} failed: {e}")
    };
    println!("FAIL  {msg}");
    Failure::failed(msg)
}

/// The write tests on a disk where nobody is registered, with two test keys of doctor's own
/// (see [`write_tests`]), always cleaned up; a failed cleanup fails doctor naming the key.
async fn write_checks(
    lu: &mut Lu,
    dev: &str,
    vendor: &str,
    rep: &mut Report,
    deadline: Instant,
) -> Result<Findings, Failure> {
    let base = (settings::KEY_PREFIX << 48) | 0xd0c0_0000_0000;
    let k1 = base | (u64::from(std::process::id()) & 0x7fff_ffff);
    let test_keys = [k1, k1 | 0x8000_0000];
    let result = write_tests(lu, test_keys, deadline).await;
    let cleaned = cleanup(lu, test_keys, deadline).await;
    if let Err(why) = &cleaned {
        let path = lu
            .paths
            .first()
            .map_or_else(|| dev.to_owned(), |p| p.info.dev.display().to_string());
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
        Err((what, e)) => return Err(fail(dev, vendor, &what, &e)),
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
    Ok(f)
}

/// What the write tests found, against what the disk claims: each type, the preempts.
fn judge(dev: &str, f: &Findings, reads: &Reads, rep: &mut Report) {
    for (t, works) in &f.types {
        let claimed = reads
            .caps
            .as_ref()
            .is_some_and(|c| c.tmv && c.types.contains(t));
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
    if f.preempt_abort == Some(false) && reads.claims_pa == Some(true) {
        rep.warn(format!(
            "{dev}: REPORT SUPPORTED OPERATION CODES claims PREEMPT AND ABORT, which the disk rejects: lkh-scsipr never relies on that list"
        ));
    }
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

    use super::*;
    use crate::model::{Fault, Lun, Node};
    use sg_persist::exec::block_on;

    fn key(n: &str) -> u64 {
        0x4c4b_0000_0000_0000 | u64::from(n.as_bytes()[0])
    }

    fn deadline() -> Instant {
        Instant::now() + Duration::from_secs(30)
    }

    /// doctor's cleanup: when unregistering a test key does not reach the disk, it says the
    /// key is still registered (doctor then fails with the command that removes it); when it
    /// does, nothing is left.
    #[test]
    fn doctor_cleanup_failure_is_loud() {
        let l = Arc::new(Mutex::new(Lun::default()));
        let mut a = Node::new(&l, "a", &[1]);
        let keys = [key("d"), key("e")];
        block_on(a.paths[0].register(0, keys[0], deadline())).unwrap();
        a.paths[0].hook = Some(Box::new(|_, cmd| {
            if cmd == "REGISTER" {
                Fault::Timeout
            } else {
                Fault::Pass
            }
        }));
        let why = block_on(cleanup(&mut a, keys, deadline())).unwrap_err();
        assert!(why.contains("still registered"), "{why}");
        assert!(why.contains(&fmt_key(keys[0])), "{why}");
        a.paths[0].hook = None;
        block_on(cleanup(&mut a, keys, deadline())).unwrap();
        assert!(l.lock().unwrap().keys().is_empty());
    }
}
