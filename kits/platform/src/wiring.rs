//! Is each gen/app resource that uses lkhelpers wired right on this node, and is what
//! LifeKeeper will run really what the admin meant?
//!
//! LifeKeeper's Generic Application kit copies the scripts given to its wizard into
//! `$LKROOT/subsys/gen/resources/app/actions/!<action>/<tag>` (recover: `…/recovery/!recover/`)
//! and runs the copies as root with `-t <tag> -i <id>`. lkhelpers hands the wizard the small
//! wrappers `lkh-<kit> genapp` writes ([`lkh_common::genapp`]). A wrong answer in the wizard (the
//! remove wrapper in the Restore field, no quickCheck), an uninstalled binary, a missing
//! `/etc/lkhelpers/<tag>.conf` or a `TIMEOUT` longer than LifeKeeper's check interval all only
//! show at failover time; this module finds them beforehand, one [`Finding`] each.
//!
//! What runs is judged, not what a file says about itself. A wrapper's binary, action and
//! arguments come from its one executable line, read as `/bin/sh` reads it
//! ([`genapp::parse_script`]; anything but `exec BINARY ACTION "$@"` is an error naming the
//! line); its marker comment only says that genapp wrote it, and a script without the marker
//! whose line execs an lkhelpers binary is ours too. Every file LifeKeeper runs — the copies,
//! the interpreter of the wrappers ([`genapp::INTERPRETER`]) and the binary a wrapper execs —
//! is judged with its whole directory chain from `/` ([`trusted::judge`]: owned by root, not
//! writable by group or others, links only when root's), and so is `$LKROOT` itself: each
//! component another user could change is one error that names it and the fix.
//!
//! What it runs, and why that is safe: a wrapper is only read. A binary (the one a wrapper
//! execs, or a copy of one) is run with `--version` and `validate -t <tag>` only, always with
//! argv\[0\] set to [`ARGV0`] (a binary called through `…/!restore/<tag>` would otherwise
//! perform restore), bounded by [`RUN_BUDGET`], and only when its whole chain is clean, it is
//! executable and it contains a string every lkhelpers binary has ([`BINARY_MARKER`]): other
//! programs are never started. It is run from the descriptor that was judged
//! (`/proc/self/fd/N`), so nothing can swap the file between the judgement and the run.
//! Scripts that are neither ours nor run ours belong to other gen/app resources and are skipped.
//!
//! The parts: `findings` (what the check takes and returns), `script` (what each copy is),
//! `binary` (running and probing lkhelpers binaries), `tags` (the checks of one resource) and
//! `defender` (lkh-scsipr's `watch`); [`check`], here, walks `$LKROOT` and ties them together.
//!
//! Mechanism only: findings are returned, never printed.

mod binary;
mod defender;
mod findings;
mod script;
mod tags;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;

use lkh_common::Action;
use lkh_common::genapp;
use lkh_common::trusted::{self, Flaw, Want};

pub use binary::{ARGV0, BINARY_MARKER, RUN_BUDGET, Ran, run};
pub use findings::{CheckInterval, DEFAULT_CHECK_INTERVAL, Finding, Level, Options, Report};
pub use script::{Judged, Script, classify};

use defender::check_defender;
use tags::{Ctx, Slot, TagFiles, check_tag, kit_hint, slot};

/// Where earlier lkhelpers versions linked their actions (nothing ever called them).
pub const OLD_LAYOUT: &str = "subsys/lkhelpers";

/// A flawed directory of LifeKeeper's (or a link on the way to one), for chain findings.
fn below(f: &Flaw) -> String {
    format!(
        "{}, so someone other than root can change what LifeKeeper runs as root below it",
        f.what
    )
}

/// A flaw on the way to a gen/app copy, or on the copy itself.
fn copy_flaw(f: &Flaw) -> String {
    if f.target {
        format!("LifeKeeper runs this file as root, and it is {}", f.what)
    } else {
        below(f)
    }
}

/// Checks every gen/app resource under `opts.lkroot` that uses lkhelpers.
pub fn check(opts: &Options) -> Report {
    let mut report = Report::default();
    let mut ctx = Ctx::new(opts);
    // LifeKeeper's root itself, then each directory gen/app keeps its copies in
    match trusted::judge(&opts.lkroot, Want::Dir) {
        Ok(j) => {
            ctx.chains.add(&mut report.findings, None, &j.flaws, below);
        }
        Err(u) => {
            ctx.chains.add(&mut report.findings, None, &u.flaws, below);
            if u.missing {
                report
                    .notes
                    .push(format!("{}: not there", opts.lkroot.display()));
            } else {
                report.findings.push(Finding::new(
                    Level::Error,
                    None,
                    &u.path,
                    format!(
                        "{} (on the way to LifeKeeper's root {}), so its gen/app resources were not checked",
                        u.what,
                        opts.lkroot.display()
                    ),
                    "give the real path with --lkroot, or fix the path".into(),
                ));
            }
        }
    }
    let mut tags: BTreeMap<OsString, TagFiles> = BTreeMap::new();
    let mut scsipr_tags: Vec<String> = Vec::new();
    for action in Action::ALL {
        let dir = genapp::copy_dir(&opts.lkroot, action);
        let judged = match trusted::judge(&dir, Want::Dir) {
            Ok(j) => j,
            Err(u) => {
                ctx.chains.add(&mut report.findings, None, &u.flaws, below);
                if u.missing {
                    report.notes.push(format!("{}: not there", dir.display()));
                } else {
                    report.findings.push(Finding::new(
                        Level::Error,
                        None,
                        &u.path,
                        format!(
                            "{} (on the way to {}), so its gen/app resources were not checked",
                            u.what,
                            dir.display()
                        ),
                        "make it the real directory gen/app keeps its copies in".into(),
                    ));
                }
                continue;
            }
        };
        ctx.chains
            .add(&mut report.findings, None, &judged.flaws, below);
        let entries = match fs::read_dir(&judged.real) {
            Ok(entries) => entries,
            Err(e) => {
                report.findings.push(Finding::new(
                    Level::Error,
                    None,
                    &dir,
                    format!("cannot be read ({e}), so its gen/app resources were not checked"),
                    "run check-lifekeeper as root".into(),
                ));
                continue;
            }
        };
        for e in entries.flatten() {
            let path = dir.join(e.file_name());
            let judged = classify(&path);
            tags.entry(e.file_name()).or_default().slots[slot(action)] =
                Some(Slot { path, judged });
        }
    }

    for (name, files) in &mut tags {
        let tag = name.to_string_lossy().into_owned();
        // a script in genapp's form without the marker is ours when it execs ours
        for s in files.slots.iter_mut().flatten() {
            if let Script::Candidate { exec, text } = &s.judged.script {
                let hint = kit_hint(&exec.binary, None);
                let b = ctx.probe(&exec.binary, &hint);
                s.judged.script = if b.ours {
                    Script::Wrapper {
                        exec: exec.clone(),
                        text: text.clone(),
                        marker: None,
                    }
                } else {
                    Script::Foreign(format!(
                        "a script that execs {}, which is not an lkhelpers binary",
                        exec.binary.display()
                    ))
                };
            }
        }
        let before = report.findings.len();
        let mut flawed = false;
        for s in files.slots.iter().flatten() {
            flawed |= ctx
                .chains
                .add(&mut report.findings, Some(&tag), &s.judged.flaws, copy_flaw);
        }
        if !files.slots.iter().flatten().any(|s| s.judged.script.ours()) {
            for s in files.slots.iter().flatten() {
                if let Script::Foreign(why) | Script::Unknown(why) | Script::Insecure(why) =
                    &s.judged.script
                {
                    report
                        .notes
                        .push(format!("{}: skipped: {why}", s.path.display()));
                }
            }
            continue;
        }
        report.tags += 1;
        let (tainted, kit) = check_tag(&mut ctx, &tag, files, &mut report);
        if kit.as_deref() == Some("scsipr") {
            scsipr_tags.push(tag.clone());
        }
        flawed |= tainted;
        if !flawed
            && report.findings[before..]
                .iter()
                .all(|f| f.level <= Level::Info)
        {
            let there: Vec<&str> = Action::ALL
                .iter()
                .zip(&files.slots)
                .filter(|(_, s)| s.is_some())
                .map(|(a, _)| a.name())
                .collect();
            let dir = opts.lkroot.join(genapp::APP_DIR);
            report.findings.insert(
                before,
                Finding::new(
                    Level::Ok,
                    Some(&tag),
                    &dir,
                    format!(
                        "resource {tag}: lkh-{} scripts {} are wired right and its configuration validates",
                        kit.as_deref().unwrap_or("?"),
                        there.join(", ")
                    ),
                    String::new(),
                ),
            );
        }
    }

    if report.tags > 0
        && let Some(p) = &opts.interval.problem
    {
        report.findings.push(Finding::new(
            Level::Warning,
            None,
            &opts.defaults,
            format!("{p} ({})", opts.interval.source),
            "set LKCHECKINTERVAL to the seconds between LifeKeeper's quickChecks, or remove the line".into(),
        ));
    }
    if !scsipr_tags.is_empty() {
        check_defender(&scsipr_tags, &mut report);
    }
    let old = opts.lkroot.join(OLD_LAYOUT);
    if fs::symlink_metadata(&old).is_ok() {
        report.findings.push(Finding::new(
            Level::Warning,
            None,
            &old,
            "left over from an earlier lkhelpers version (subsys/lkhelpers/Resources/…); LifeKeeper never calls it".into(),
            format!("remove it: rm -r {}", old.display()),
        ));
    }
    if report.tags == 0 {
        report.findings.push(Finding::new(
            Level::Info,
            None,
            &opts.lkroot.join(genapp::APP_DIR),
            "no gen/app resource uses lkhelpers on this node".into(),
            String::new(),
        ));
    }
    report
}
