//! `watch`: the lkscsid-like loop. Every FAILFASTTIMER seconds it reads the reservation of
//! every resource this node has in service (see [`crate::state`]) and acts when another node
//! took it: ON_FENCED=halt reboots this node at once through the kernel (logged first, no
//! sync: a sync could block on the very disk we lost), event logs an error (LifeKeeper's next
//! quickCheck exits 3) and stops watching that resource while it keeps watching the others,
//! none only warns and stops watching it. A reservation nobody holds while our key is still
//! registered is taken again, as lkscsid re-reserves; a disk that lost all its PR state (no
//! reservation, no registration) is only logged: it is not a takeover.
//!
//! Each LU is judged by the assessment quickCheck starts from (`actions::assess::assess_lu`,
//! PR IN only), so watch and quickCheck cannot disagree about who holds a disk.
//!
//! Each tag is judged under its lock (`<run dir>/scsipr/<TAG>/lock`, the one the hook runner
//! holds around every hook), so watch never judges a resource while one of its hooks runs,
//! and a resource whose remove has started (its marker is cleared first) is not judged at all.

use std::time::{Duration, Instant};

use lkh_common::runstate::RunDir;
use lkh_common::{Action, Deadline, Failure, HookArgs, KitSpec, Outcome, Tag};
use log::{debug, error, info, warn};

use crate::actions::assess::{Verdict, assess_lu};
use crate::actions::classify::Held;
use crate::actions::open::open_all;
use crate::actions::records::Records;
use crate::settings::{OnFenced, Settings, fmt_key};
use crate::state;

/// How long watch waits for a hook of a tag to finish before it leaves that tag to its next
/// cycle.
const LOCK_WAIT: Duration = Duration::from_secs(1);

/// What watch does once it found `tag` fenced (`reason` says how): per ON_FENCED, and the tag
/// is marked fenced so it is not judged again until the next restore. Returns only if the
/// node is still running (every policy but a successful halt).
fn react(run: &RunDir, tag: &Tag, reason: &str, on_fenced: OnFenced) {
    match on_fenced {
        OnFenced::Halt => {
            let f = halt(reason);
            error!("{f}");
        }
        OnFenced::Event => error!(
            "{reason}; ON_FENCED=event: LifeKeeper's next quickCheck reports it (exit 3); no longer watching {tag}, still watching the others"
        ),
        OnFenced::None => {
            warn!("{reason}; ON_FENCED=none: no action; no longer watching {tag}")
        }
    }
    state::mark_fenced(run, tag);
}

/// Reboots now. Only returns if the kernel refused.
pub fn halt(reason: &str) -> Failure {
    let msg = format!("{reason}; ON_FENCED=halt: rebooting this node now to protect the data");
    error!("{msg}");
    log::logger().flush();
    // Also into the kernel log: it reaches the console synchronously, where a message still
    // in a pipe or syslog's queue would be lost with the reboot.
    if let Ok(mut k) = std::fs::OpenOptions::new().write(true).open("/dev/kmsg") {
        let line = format!("<2>lkh-scsipr: {}\n", lkh_common::logging::clean(&msg));
        let _ = std::io::Write::write_all(&mut k, line.as_bytes());
    }
    match nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_AUTOBOOT) {
        Err(e) => Failure::fenced(format!(
            "{reason}; ON_FENCED=halt could not reboot this node ({e}): stop it by hand now"
        )),
        Ok(never) => match never {},
    }
}

/// One pass over every watched resource; returns how many were found fenced, and the
/// shortest FAILFASTTIMER among them.
fn cycle(spec: &'static KitSpec, run: &RunDir) -> (usize, Option<Duration>) {
    let mut fenced = 0;
    let mut interval: Option<Duration> = None;
    for tag in state::watched(run) {
        // a run directory that is not safe is the admin's to fix: say so every cycle
        let dir = match run.tag(&tag) {
            Ok(d) => d,
            Err(f) => {
                warn!("{tag}: {f}; not judged until this is fixed");
                continue;
            }
        };
        // a hook of this resource is running: it decides, and the next cycle judges again
        let _lock = match dir.lock("watch", Deadline::after(LOCK_WAIT)) {
            Ok(l) => l,
            Err(f) => {
                debug!("{tag}: {f}; judged in the next cycle");
                continue;
            }
        };
        // a remove may have started (and cleared the marker) while we waited
        if !state::is_watched(run, &tag) {
            continue;
        }
        // a Pacemaker resource is judged by the parameters its start stored
        let args = match state::ocf_params(run, &tag) {
            Some(overrides) => HookArgs {
                tag: Some(tag.to_string()),
                no_config: true,
                overrides,
                ..HookArgs::default()
            },
            None => HookArgs {
                tag: Some(tag.to_string()),
                ..HookArgs::default()
            },
        };
        let ctx = match lkh_common::context(spec, Action::QuickCheck, &args) {
            Ok(c) => c,
            Err(f) => {
                warn!("{tag}: {f}");
                continue;
            }
        };
        let s = match Settings::from_ctx(&ctx) {
            Ok(s) => s,
            Err(f) => {
                warn!("{tag}: {f}");
                continue;
            }
        };
        interval = Some(interval.map_or(s.failfast, |i| i.min(s.failfast)));
        // One cycle must end well before the next one starts.
        let budget = (s.failfast * 2)
            .max(Duration::from_secs(2))
            .min(ctx.deadline.remaining());
        let deadline = Instant::now() + budget;
        let key = match s.key(false) {
            Ok(Some(k)) => k,
            Ok(None) => {
                warn!("{tag}: this node has no reservation key: not watching");
                continue;
            }
            Err(f) => {
                warn!("{tag}: {f}");
                continue;
            }
        };
        let mut lus = match open_all(&s.devices, false, deadline) {
            Ok(l) => l,
            Err(f) => {
                warn!("{tag}: {f}");
                continue;
            }
        };
        let known = Records::load(tag.as_str());
        let mut next = known.clone();
        for lu in &mut lus {
            let name = lu.input().display().to_string();
            let h = assess_lu(lu, key, s.pr_type, known.memory(&name), deadline);
            // every look is remembered (its PR generation; a fenced verdict), before acting
            next.set(&name, h.remembered(known.get(&name)));
            next.store(tag.as_str(), &known);
            match &h.verdict {
                Verdict::Held(Held::Ours | Held::WrongType(_)) => {
                    debug!("{tag}: {name}: reservation held by {}", fmt_key(key))
                }
                // Not a takeover: nobody holds and nobody is registered. quickCheck reports it
                // and recover registers and reserves again; never halt for it.
                Verdict::Held(Held::Lost) => warn!(
                    "{tag}: {name}: the disk lost its persistent-reservation state (no reservation, no registration): not fenced; LifeKeeper's quickCheck reports it and recover takes it again"
                ),
                Verdict::Held(Held::Free) => {
                    match lu.any_path(|p| p.reserve(key, s.pr_type, deadline)) {
                        Ok(()) => warn!(
                            "{tag}: {name}: nobody held the reservation: taken again with {}",
                            fmt_key(key)
                        ),
                        Err(e) => warn!(
                            "{tag}: {name}: nobody holds the reservation and taking it failed: {e}"
                        ),
                    }
                }
                Verdict::Fenced(f) => {
                    fenced += 1;
                    let f = f.failure(&name, key);
                    react(run, &tag, &format!("{tag}: {f}"), s.on_fenced);
                    break;
                }
                Verdict::NoAnswer(f) => warn!("{tag}: {f}"),
            }
        }
    }
    (fenced, interval)
}

/// `watch [--once]`.
pub fn watch(spec: &'static KitSpec, args: &[String]) -> Outcome {
    let a = lkh_common::parse_args(&[], args, &["--once"], &[])?;
    a.no_operands("use `watch [--once]`")?;
    if a.tag.is_some() || a.id.is_some() || a.no_config || !a.overrides.is_empty() {
        return Err(Failure::usage(
            "it takes no resource: it checks every tag marked in the run directory; use `watch [--once]`",
        ));
    }
    let once = a.has("--once");
    let run = state::run_dir();
    info!(
        "watching the reservations marked in {}/<TAG>/{}",
        run.path().display(),
        state::MARKER
    );
    loop {
        let start = Instant::now();
        let (fenced, interval) = cycle(spec, &run);
        if once {
            return if fenced > 0 {
                Err(Failure::fenced(format!("{fenced} resource(s) fenced")))
            } else {
                Ok(String::new())
            };
        }
        let next = start + interval.unwrap_or(Duration::from_secs(5));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ON_FENCED=event and none: logged, the tag is no longer watched, the others still are,
    /// and watch goes on (react returns).
    #[test]
    fn event_and_none_stop_watching_only_the_fenced_tag() {
        let root = std::env::temp_dir().join(format!("lkh-scsipr-watch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let run = RunDir::at(&root, "scsipr");
        let t = |s: &str| Tag::parse(s).unwrap();
        for tag in ["db", "db.fenced", ".db"] {
            state::mark_in(&run, tag, true);
        }
        react(&run, &t("db"), "db: held by another node", OnFenced::Event);
        assert_eq!(state::watched(&run), [t(".db"), t("db.fenced")]);
        react(&run, &t(".db"), ".db: held by another node", OnFenced::None);
        assert_eq!(state::watched(&run), [t("db.fenced")]);
        let _ = std::fs::remove_dir_all(&root);
    }
}
