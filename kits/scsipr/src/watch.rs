//! `watch`: the lkscsid-like loop, and the holder's defense.
//!
//! - Every FAILFASTTIMER seconds it judges every resource this node has in service (see
//!   [`crate::state`]) with the assessment quickCheck starts from
//!   (`actions::assess::assess_lu`, PR IN only, so the two cannot disagree) and acts when
//!   another node took it: ON_FENCED=halt reboots this node at once through the kernel (logged
//!   first, no sync: a sync could block on the very disk we lost), event logs an error
//!   (LifeKeeper's next quickCheck exits 3) and stops watching that resource while it keeps
//!   watching the others, none only warns and stops watching it. A reservation nobody holds
//!   while our key is still registered is taken again, as lkscsid re-reserves; a disk that lost
//!   all its PR state (no reservation, no registration, its PR generation not gone up) is only
//!   logged: it is not a takeover. Every look is remembered (the PR generation, a lost disk:
//!   `actions::records`).
//! - At every tick — half a second, well within any defense interval (FAILFASTTIMER, at most
//!   2 s), which a challenger's window is counted in — and before any judgement, it defends the
//!   disks of every LifeKeeper resource it holds (`actions::defend`): one READ KEYS per disk, and a
//!   PREEMPT of any key that is not this node's — a challenger's registration (see
//!   `actions::challenge`); a judgement that finds another key registered on a disk this node
//!   holds defends it again in the same tick. A disk where this node's own key is gone is
//!   judged at once. A resource whose restore just finished is defended from the next tick on
//!   (half a second later at most; the restore itself removed every other registration until
//!   its last read). The disks of a resource are defended all at once (one future per disk on
//!   one thread, `sg_persist::exec`), so a tick's defense takes about one command's time
//!   whatever the number of disks.
//!   The packaged unit runs it at `Nice=-10`: a defender starved of the CPU loses its disk.
//!   Pacemaker resources (their start stored their parameters, see [`crate::state`]) are
//!   judged, never defended: there `fence_lkhscsipr` arbitrates.
//!
//! Each tag is judged and defended under its lock (`<run dir>/scsipr/<TAG>/lock`, the one the
//! hook runner holds around every hook), so watch never acts on a resource while one of its
//! hooks runs, and a resource whose remove has started (its marker is cleared first) is left
//! alone. The running daemon holds `<run dir>/scsipr/watch.pid` (lkh-common's daemon lock) and
//! renews it at every tick: `status` and restore tell from it whether a defender runs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lkh_common::runstate::RunDir;
use lkh_common::{Action, Deadline, Failure, HookArgs, KitSpec, Outcome, Tag};
use log::{debug, error, info, warn};
use sg_persist::Lu;
use sg_persist::exec::{block_on, join_all};

use crate::actions::assess::{Verdict, assess_lu};
use crate::actions::classify::Held;
use crate::actions::defend::{Defense, defend_lu};
use crate::actions::open::open_all;
use crate::actions::records::Records;
use crate::settings::{OnFenced, Settings, fmt_key};
use crate::state;

/// How long a judgement waits for a hook of a tag to finish before it leaves that tag to the
/// next tick.
const LOCK_WAIT: Duration = Duration::from_secs(1);
/// How long a defense look waits for a hook of the tag (the hook decides meanwhile).
const DEFENSE_LOCK_WAIT: Duration = Duration::from_millis(100);
/// The longest tick, also while nothing is watched: a resource restored meanwhile is
/// defended this soon, within any defense interval.
const IDLE_TICK: Duration = Duration::from_millis(500);
/// How long a resource whose settings or disks could not be read waits for its next try.
const RETRY: Duration = Duration::from_secs(5);
/// The daemon's name in the run directory (`watch.pid`).
pub const DAEMON: &str = "watch";

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

/// One watched resource between two judgements: its settings, key and open disks.
struct Guard {
    settings: Settings,
    key: u64,
    lus: Vec<Lu>,
    next_judge: Instant,
}

/// Reads the settings of `tag` (a Pacemaker resource's stored parameters, else its
/// configuration file), its key, and opens its disks.
async fn prepare(spec: &'static KitSpec, run: &RunDir, tag: &Tag) -> Result<Guard, Failure> {
    // a Pacemaker resource is judged by the parameters its start stored
    let args = match state::ocf_params(run, tag) {
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
    let ctx = lkh_common::context(spec, Action::QuickCheck, &args)?;
    let mut settings = Settings::from_ctx(&ctx)?;
    settings.arbitrate = state::ocf_params(run, tag).is_none();
    let key = settings.key(false)?.ok_or_else(|| {
        Failure::failed("this node has no reservation key: not watching".to_owned())
    })?;
    let deadline = Instant::now() + judge_budget(&settings);
    let lus = open_all(&settings.devices, false, deadline).await?;
    Ok(Guard {
        settings,
        key,
        lus,
        next_judge: Instant::now(),
    })
}

/// One judgement must end well before the next one starts.
fn judge_budget(s: &Settings) -> Duration {
    (s.failfast * 2).max(Duration::from_secs(2))
}

/// Judges every disk of `tag` (see the module doc); returns whether it was found fenced.
async fn judge(run: &RunDir, tag: &Tag, g: &mut Guard) -> bool {
    let s = &g.settings;
    let deadline = Instant::now() + judge_budget(s);
    let known = Records::load(tag.as_str());
    let mut next = known.clone();
    let mut fenced = None;
    let key = g.key;
    let known = &known;
    // every disk's look at once, then each verdict in order
    let looks = join_all(g.lus.iter_mut().map(|lu| async move {
        let name = lu.input().display().to_string();
        let h = assess_lu(lu, key, s.pr_type, known.memory(&name), deadline).await;
        (name, h)
    }))
    .await;
    // every look is remembered (its PR generation; a fenced verdict), before acting
    for (name, h) in &looks {
        next.set(name, h.remembered(known.get(name)));
    }
    // the disks this node holds with another key registered (a challenger): defended in this
    // tick too, so that a judgement never leaves a defense interval without a defense look
    let contested: Vec<bool> = looks
        .iter()
        .map(|(_, h)| {
            s.arbitrate
                && matches!(h.verdict, Verdict::Held(Held::Ours))
                && h.keys.iter().any(|k| *k != key && *k != 0)
        })
        .collect();
    for (lu, (name, h)) in g.lus.iter_mut().zip(looks) {
        match &h.verdict {
            Verdict::Held(Held::Ours | Held::WrongType(_)) => {
                debug!("{tag}: {name}: reservation held by {}", fmt_key(g.key))
            }
            // Not a takeover: nobody holds and nobody is registered. quickCheck reports it
            // and recover registers and reserves again; never halt for it.
            Verdict::Held(Held::Lost) => warn!(
                "{tag}: {name}: the disk lost its persistent-reservation state (no reservation, no registration): not fenced; LifeKeeper's quickCheck reports it and recover takes it again"
            ),
            Verdict::Held(Held::Free) => {
                match lu
                    .any_path(async |p| p.reserve(g.key, s.pr_type, deadline).await)
                    .await
                {
                    Ok(()) => warn!(
                        "{tag}: {name}: nobody held the reservation: taken again with {}",
                        fmt_key(g.key)
                    ),
                    Err(e) => warn!(
                        "{tag}: {name}: nobody holds the reservation and taking it failed: {e}"
                    ),
                }
            }
            Verdict::Fenced(f) => {
                fenced = Some(f.failure(&name, g.key));
                break;
            }
            Verdict::NoAnswer(f) => warn!("{tag}: {f}"),
        }
    }
    next.store(tag.as_str(), known);
    if fenced.is_none() && contested.contains(&true) {
        let t = s.pr_type;
        let defended = join_all(
            g.lus
                .iter_mut()
                .zip(&contested)
                .filter(|(_, c)| **c)
                .map(|(lu, _)| defend_lu(lu, key, t, deadline)),
        )
        .await;
        if defended.iter().any(|d| matches!(d, Ok(Defense::Lost))) {
            // gone meanwhile: the next judgement says how
            debug!("{tag}: this node's key went while it judged");
        }
    }
    match fenced {
        Some(f) => {
            react(run, tag, &format!("{tag}: {f}"), s.on_fenced);
            true
        }
        None => false,
    }
}

/// One defense look at every disk of `tag`; a disk where this node's key is gone is judged
/// at once. Returns whether the resource was found fenced.
async fn defend(run: &RunDir, tag: &Tag, g: &mut Guard) -> bool {
    let deadline = Instant::now() + g.settings.defense_interval();
    let mut lost = false;
    let (key, t) = (g.key, g.settings.pr_type);
    let looks = join_all(g.lus.iter_mut().map(|lu| defend_lu(lu, key, t, deadline))).await;
    for look in looks {
        match look {
            Ok(Defense::Quiet | Defense::Removed(_)) => {}
            Ok(Defense::Unsettled(keys)) => debug!(
                "{tag}: {} other key(s) still registered; tried again at the next tick",
                keys.len()
            ),
            Ok(Defense::Lost) => lost = true,
            Err(f) => debug!("{tag}: defense look: {f}"),
        }
    }
    lost && judge(run, tag, g).await
}

/// One tick over every watched resource: a judgement where one is due (and for a resource
/// not seen before), else a defense look. Returns how many were found fenced and the next
/// tick's interval.
async fn tick(
    spec: &'static KitSpec,
    run: &RunDir,
    guards: &mut BTreeMap<String, Guard>,
    retry: &mut BTreeMap<String, Instant>,
) -> (usize, Duration) {
    let mut fenced = 0;
    crate::pr::forget_hosts();
    let tags = state::watched(run);
    guards.retain(|t, _| tags.iter().any(|x| x.as_str() == t));
    retry.retain(|t, _| tags.iter().any(|x| x.as_str() == t));
    for tag in tags {
        // a resource whose settings or disks failed is tried again after a while, not at
        // every tick (its warning once per try)
        if retry
            .get(tag.as_str())
            .is_some_and(|at| Instant::now() < *at)
        {
            continue;
        }
        // a run directory that is not safe is the admin's to fix: say so at every tick
        let dir = match run.tag(&tag) {
            Ok(d) => d,
            Err(f) => {
                warn!("{tag}: {f}; not judged until this is fixed");
                continue;
            }
        };
        let name = tag.to_string();
        let due = guards
            .get(&name)
            .is_none_or(|g| Instant::now() >= g.next_judge);
        let wait = if due { LOCK_WAIT } else { DEFENSE_LOCK_WAIT };
        // a hook of this resource is running: it decides, and the next tick acts again
        let _lock = match dir.lock("watch", Deadline::after(wait)) {
            Ok(l) => l,
            Err(f) => {
                debug!("{tag}: {f}; next tick");
                continue;
            }
        };
        // a remove may have started (and cleared the marker) while we waited
        if !state::is_watched(run, &tag) {
            guards.remove(&name);
            continue;
        }
        // the defense look first, at every tick, with the disks as they were opened: a
        // challenger's window is counted in defense intervals, and re-opening for a judgement
        // must not delay it
        if let Some(g) = guards.get_mut(&name)
            && g.settings.arbitrate
            && defend(run, &tag, g).await
        {
            fenced += 1;
            guards.remove(&name);
            continue;
        }
        if !due {
            continue;
        }
        // opened afresh at every judgement: paths that changed are seen
        let mut g = match prepare(spec, run, &tag).await {
            Ok(g) => {
                retry.remove(&name);
                g
            }
            Err(f) => {
                warn!("{tag}: {f}");
                guards.remove(&name);
                retry.insert(name, Instant::now() + RETRY);
                continue;
            }
        };
        g.next_judge = Instant::now() + g.settings.failfast;
        // a resource seen for the first time is defended at once too
        let fresh = !guards.contains_key(&name);
        let lost = (fresh && g.settings.arbitrate && defend(run, &tag, &mut g).await)
            || judge(run, &tag, &mut g).await;
        if lost {
            fenced += 1;
            guards.remove(&name);
        } else {
            guards.insert(name, g);
        }
    }
    let next = guards
        .values()
        .map(|g| {
            if g.settings.arbitrate {
                g.settings.defense_interval()
            } else {
                g.settings.failfast
            }
        })
        .min()
        .unwrap_or(IDLE_TICK)
        .min(IDLE_TICK);
    (fenced, next)
}

/// Whether a defender (`watch`) runs on this node, as `status` and restore tell it.
#[derive(Debug, Clone, PartialEq)]
pub struct Defender {
    pub running: bool,
    pub pid: Option<i32>,
    /// Seconds since its last tick.
    pub last_tick_age: Option<f64>,
    /// One line for the reader.
    pub note: String,
}

impl Defender {
    /// Looks at `<run dir>/scsipr/watch.pid`. A daemon whose last tick is older than three
    /// idle ticks is reported as not running (stopped or stuck: it defends nothing).
    pub fn look(run: &RunDir) -> Defender {
        let stale = 3 * IDLE_TICK + crate::settings::DEFENSE_MAX;
        match run.daemon(DAEMON) {
            Ok(Some(d)) => {
                let age = d.since_beat.map(|a| a.as_secs_f64());
                let fresh = d.since_beat.is_some_and(|a| a <= stale);
                Defender {
                    running: fresh,
                    pid: Some(d.pid),
                    last_tick_age: age,
                    note: if fresh {
                        format!("lkh-scsipr watch (pid {}) defends the disks this node holds", d.pid)
                    } else {
                        format!(
                            "lkh-scsipr watch (pid {}) has not ticked for {} s: it is stopped or stuck and defends nothing; restart it (systemctl restart lkh-scsipr-watch)",
                            d.pid,
                            age.map_or("?".into(), |a| format!("{a:.0}"))
                        )
                    },
                }
            }
            Ok(None) => Defender {
                running: false,
                pid: None,
                last_tick_age: None,
                note: "no lkh-scsipr watch runs on this node: nothing defends the disks it holds, so a node that stops hearing this one takes them after the challenge window; start it: systemctl enable --now lkh-scsipr-watch".into(),
            },
            Err(f) => Defender {
                running: false,
                pid: None,
                last_tick_age: None,
                note: format!("cannot tell whether lkh-scsipr watch runs: {f}"),
            },
        }
    }
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
    let mut guards = BTreeMap::new();
    let mut retry = BTreeMap::new();
    if once {
        let (fenced, _) = block_on(tick(spec, &run, &mut guards, &mut retry));
        return if fenced > 0 {
            Err(Failure::fenced(format!("{fenced} resource(s) fenced")))
        } else {
            Ok(String::new())
        };
    }
    let daemon = run.hold_daemon(DAEMON)?;
    info!(
        "watching the reservations marked in {}/<TAG>/{} and defending the disks this node holds",
        run.path().display(),
        state::MARKER
    );
    loop {
        let start = Instant::now();
        daemon.beat();
        let (_, interval) = block_on(tick(spec, &run, &mut guards, &mut retry));
        std::thread::sleep((start + interval).saturating_duration_since(Instant::now()));
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
