//! The checks of one gen/app resource (a tag): each of its copies ([`check_script`]: the right
//! action in the right slot, the interpreter and the binary a wrapper execs judged, a wrapper
//! as genapp writes it), the scripts LifeKeeper needs ([`check_presence`]) and its
//! configuration (`validate -t TAG` and `TIMEOUT` below `LKCHECKINTERVAL`, [`check_config`]).
//! [`Ctx`] carries what one check learns across tags: each binary probed once, each flawed
//! component reported once.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lkh_common::genapp::{self, Wrapper};
use lkh_common::trusted::{self, Flaw, Want};
use lkh_common::{Action, Tag};

use super::binary::{Binary, RUN_BUDGET, executable, probe_binary, run};
use super::findings::{Finding, Level, Options, Report};
use super::script::{Judged, Script};

/// The lkhelpers binary that is not a resource kit.
const NOT_A_KIT: &str = "platform";

/// One gen/app copy: where it is and what it was judged to be.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    pub(super) path: PathBuf,
    pub(super) judged: Judged,
}

/// One tag's four slots (restore, remove, quickCheck, recover).
#[derive(Debug, Default)]
pub(super) struct TagFiles {
    pub(super) slots: [Option<Slot>; 4],
}

pub(super) fn slot(action: Action) -> usize {
    Action::ALL.iter().position(|a| *a == action).unwrap_or(0)
}

/// Reports each flawed component once, whichever path led to it.
#[derive(Debug, Default)]
pub(super) struct Chains {
    seen: BTreeSet<PathBuf>,
}

impl Chains {
    /// One error per component not reported yet, `why` saying what it means; true when
    /// `flaws` is not empty (reported now or before).
    pub(super) fn add(
        &mut self,
        out: &mut Vec<Finding>,
        tag: Option<&str>,
        flaws: &[Flaw],
        why: impl Fn(&Flaw) -> String,
    ) -> bool {
        for f in flaws {
            if self.seen.insert(f.path.clone()) {
                out.push(Finding::new(
                    Level::Error,
                    tag,
                    &f.path,
                    why(f),
                    f.fix.clone(),
                ));
            }
        }
        !flaws.is_empty()
    }
}

/// The state of one check: the binaries probed and the components reported so far.
pub(super) struct Ctx<'a> {
    opts: &'a Options,
    probes: BTreeMap<PathBuf, Binary>,
    pub(super) chains: Chains,
    /// The interpreter's flaws, once judged.
    shell: Option<Vec<Flaw>>,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(opts: &'a Options) -> Self {
        Ctx {
            opts,
            probes: BTreeMap::new(),
            chains: Chains::default(),
            shell: None,
        }
    }

    pub(super) fn probe(&mut self, bin: &Path, hint: &str) -> &Binary {
        self.probes
            .entry(bin.to_path_buf())
            .or_insert_with(|| probe_binary(bin, hint))
    }

    /// Judges the wrappers' interpreter (once); true when it is flawed.
    fn shell(&mut self, out: &mut Vec<Finding>, tag: &str) -> bool {
        let flaws = self.shell.get_or_insert_with(|| {
            let sh = Path::new(genapp::INTERPRETER);
            match trusted::judge(sh, Want::File) {
                Ok(j) => j.flaws,
                Err(u) => {
                    let mut flaws = u.flaws;
                    flaws.push(Flaw {
                        what: format!("{} (on the way to {})", u.what, sh.display()),
                        fix: format!(
                            "reinstall the shell so that {} is a root-owned program",
                            sh.display()
                        ),
                        path: u.path,
                        target: true,
                    });
                    flaws
                }
            }
        });
        let sh = genapp::INTERPRETER;
        self.chains.add(out, Some(tag), flaws, |f| {
            if f.target {
                format!("{sh} runs the lkhelpers wrappers as root, and this file is {}", f.what)
            } else {
                format!(
                    "{}, so someone other than root can change {sh}, which runs the lkhelpers wrappers as root",
                    f.what
                )
            }
        })
    }
}

/// The kit to name in remedies for a wrapper: its marker's, else the binary's file name
/// without `lkh-`, else `<kit>`.
pub(super) fn kit_hint(binary: &Path, marker: Option<&Wrapper>) -> String {
    if let Some(m) = marker {
        return m.kit.clone();
    }
    binary
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("lkh-"))
        .filter(|k| !k.is_empty())
        .unwrap_or("<kit>")
        .to_owned()
}

/// Findings about one tag; `flawed` when a chain finding (maybe reported under another tag)
/// concerns one of its files.
struct TagReport<'a> {
    tag: &'a str,
    findings: &'a mut Vec<Finding>,
    flawed: bool,
}

impl TagReport<'_> {
    fn push(&mut self, level: Level, file: &Path, what: String, remedy: String) {
        self.findings
            .push(Finding::new(level, Some(self.tag), file, what, remedy));
    }
}

/// The wrapper of `action` that `lkh-<kit> genapp` writes, for remedies.
fn genapp_wrapper(kit: &str, action: Action) -> String {
    format!(
        "the {} wrapper `lkh-{kit} genapp` writes (by default {})",
        action.name(),
        genapp::default_dir(kit).join(action.name()).display()
    )
}

/// What can run `validate`: the judged descriptor, the path to name, the kit.
type Runner = (Arc<File>, PathBuf, String);

/// Checks one tag; returns whether a chain finding concerns it, and its kit.
pub(super) fn check_tag(
    ctx: &mut Ctx,
    tag: &str,
    files: &TagFiles,
    report: &mut Report,
) -> (bool, Option<String>) {
    let mut r = TagReport {
        tag,
        findings: &mut report.findings,
        flawed: false,
    };
    // the kit of each script, and a program that can run `validate` (a checked binary or copy)
    let mut kits: Vec<(String, Action)> = Vec::new();
    let mut runner: Option<Runner> = None;
    for (action, s) in Action::ALL
        .into_iter()
        .zip(&files.slots)
        .filter_map(|(a, s)| s.as_ref().map(|s| (a, s)))
    {
        if let Some(kit) = check_script(ctx, &mut r, action, s, &mut runner) {
            kits.push((kit, action));
        }
    }
    let first_file = files
        .slots
        .iter()
        .flatten()
        .next()
        .map(|s| s.path.clone())
        .unwrap_or_default();
    let mut distinct: Vec<&str> = kits.iter().map(|(k, _)| k.as_str()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() > 1 {
        let list: Vec<String> = kits
            .iter()
            .map(|(k, a)| format!("lkh-{k} in !{}", a.name()))
            .collect();
        r.push(
            Level::Error,
            &first_file,
            format!(
                "the scripts of resource {tag} belong to different kits ({})",
                list.join(", ")
            ),
            "re-create the resource with the wrappers of one kit".into(),
        );
    }
    let hint = distinct.first().map(|k| k.to_string()).or_else(|| {
        files
            .slots
            .iter()
            .flatten()
            .find_map(|s| match &s.judged.script {
                Script::Wrapper { exec, marker, .. } => {
                    Some(kit_hint(&exec.binary, marker.as_ref()))
                }
                Script::Broken { marker, .. } => Some(marker.kit.clone()),
                _ => None,
            })
    });
    check_presence(ctx.opts, &mut r, files, hint.as_deref().unwrap_or("<kit>"));
    if let Err(f) = Tag::parse(tag) {
        r.push(
            Level::Error,
            &first_file,
            format!("{f}, so lkhelpers cannot name its configuration file"),
            "re-create the resource with a tag of letters, digits, '.', '_' and '-'".into(),
        );
    } else if let Some(runner) = &runner {
        check_config(ctx.opts, &mut r, runner);
    }
    let kit = (distinct.len() == 1).then(|| distinct[0].to_owned());
    (r.flawed, kit)
}

/// Checks one script; returns its kit when it is ours and its kit is known.
fn check_script(
    ctx: &mut Ctx,
    r: &mut TagReport,
    action: Action,
    s: &Slot,
    runner: &mut Option<Runner>,
) -> Option<String> {
    let path = &s.path;
    if let Some(to) = &s.judged.link
        && s.judged.script.ours()
    {
        r.push(
            Level::Warning,
            path,
            format!(
                "is a symbolic link (to {}), but gen/app keeps copies: something other than the wizard put it there",
                Path::new(to).display()
            ),
            "replace it with a copy of the file it points to (cp --remove-destination TARGET LINK)"
                .into(),
        );
    }
    match &s.judged.script {
        Script::Wrapper { exec, text, marker } => {
            let hint = kit_hint(&exec.binary, marker.as_ref());
            if let Some(m) = &s.judged.meta
                && !executable(m)
            {
                r.push(
                    Level::Error,
                    path,
                    "is not executable, so LifeKeeper cannot run it".into(),
                    format!("chmod 755 {}", path.display()),
                );
            }
            r.flawed |= ctx.shell(r.findings, r.tag);
            if exec.action != action {
                r.push(
                    Level::Error,
                    path,
                    format!(
                        "is the {} wrapper, but LifeKeeper runs it to {}: the wizard's {} field got the wrong file (line {} passes {})",
                        exec.action.name(),
                        action.name(),
                        genapp::wizard_field(action),
                        exec.line,
                        exec.action.name(),
                    ),
                    format!(
                        "re-create the resource with {} in the {} field, or copy that file over this one on every node",
                        genapp_wrapper(&hint, action),
                        genapp::wizard_field(action)
                    ),
                );
            }
            let bin = exec.binary.clone();
            let b = ctx.probe(&bin, &hint).clone();
            r.flawed |= ctx.chains.add(r.findings, Some(r.tag), &b.way, |f| {
                format!(
                    "{}, so someone other than root can replace {}, which {} execs as root",
                    f.what,
                    bin.display(),
                    path.display()
                )
            });
            if let Some((what, fix)) = &b.problem {
                r.push(
                    Level::Error,
                    path,
                    format!("line {} execs {}, {what}", exec.line, bin.display()),
                    fix.clone(),
                );
            }
            let (kit, file) = (b.kit?, b.file?);
            if kit == NOT_A_KIT {
                r.push(
                    Level::Error,
                    path,
                    format!(
                        "line {} execs {}, which is lkh-{kit}: it has no LifeKeeper actions",
                        exec.line,
                        bin.display()
                    ),
                    format!(
                        "re-create the resource with the wrappers `lkh-<kit> genapp` writes (its {} wrapper in the {} field)",
                        action.name(),
                        genapp::wizard_field(action)
                    ),
                );
                return None;
            }
            runner.get_or_insert_with(|| (file, bin.clone(), kit.clone()));
            let genapps = Wrapper {
                kit: kit.clone(),
                action: exec.action,
                binary: bin.clone(),
            };
            if *text != genapps.render() {
                let claim = match marker {
                    Some(m) if *m != genapps => format!(
                        "; its marker comment says kit={} action={} binary={}, but line {} runs lkh-{kit} {} from {}",
                        m.kit,
                        m.action.name(),
                        m.binary.display(),
                        exec.line,
                        exec.action.name(),
                        bin.display()
                    ),
                    _ => String::new(),
                };
                r.push(
                    Level::Warning,
                    path,
                    format!(
                        "differs from the wrapper genapp writes for what it runs (edited by hand?){claim}"
                    ),
                    format!(
                        "run `lkh-{kit} genapp` and copy its {} wrapper over this file on every node",
                        exec.action.name()
                    ),
                );
            }
            Some(kit)
        }
        Script::Broken { why, marker } => {
            r.push(
                Level::Error,
                path,
                format!(
                    "{}; LifeKeeper runs this line as root, whatever the marker comment says",
                    why.message()
                ),
                format!(
                    "run `lkh-{} genapp` and copy its {} wrapper over this file on every node",
                    marker.kit,
                    action.name()
                ),
            );
            None
        }
        Script::Copy {
            name,
            version,
            file,
        } => {
            let kit = name.strip_prefix("lkh-").unwrap_or(name).to_owned();
            if kit == NOT_A_KIT {
                r.push(
                    Level::Error,
                    path,
                    format!("is a copy of {name} ({version}), which has no LifeKeeper actions"),
                    format!(
                        "re-create the resource with the wrappers `lkh-<kit> genapp` writes (its {} wrapper in the {} field)",
                        action.name(),
                        genapp::wizard_field(action)
                    ),
                );
                return None;
            }
            r.push(
                Level::Warning,
                path,
                format!(
                    "is a copy of the {name} binary ({version}): it works (the action comes from the !{} directory) but goes stale when {name} is upgraded",
                    action.name()
                ),
                format!(
                    "run `{name} genapp` and re-create the resource with its wrappers (or copy the {} wrapper over this file on every node)",
                    action.name()
                ),
            );
            runner.get_or_insert_with(|| (file.clone(), path.to_path_buf(), kit.clone()));
            Some(kit)
        }
        Script::Insecure(why) => {
            r.push(
                Level::Error,
                path,
                format!("{why}; not run"),
                "fix the errors that name its path".into(),
            );
            None
        }
        Script::Foreign(why) | Script::Unknown(why) => {
            r.push(
                Level::Warning,
                path,
                format!("{why}, while this resource's other scripts are lkhelpers'"),
                "check what this file is; re-create the resource with the wrappers `lkh-<kit> genapp` writes".into(),
            );
            None
        }
        Script::Candidate { .. } => None,
    }
}

/// Restore and remove are required; quickCheck and recover are optional to LifeKeeper.
fn check_presence(opts: &Options, r: &mut TagReport, files: &TagFiles, kit: &str) {
    let tag = r.tag;
    let absent: Vec<Action> = Action::ALL
        .into_iter()
        .filter(|a| files.slots[slot(*a)].is_none())
        .collect();
    for a in absent {
        let (level, what, remedy) = match a {
            Action::Restore => (
                Level::Error,
                format!("resource {tag} has no restore script, so LifeKeeper cannot bring it in service"),
                format!("re-create the resource with {} as Restore Script", genapp_wrapper(kit, a)),
            ),
            Action::Remove => (
                Level::Error,
                format!("resource {tag} has no remove script, so LifeKeeper cannot take it out of service"),
                format!("re-create the resource with {} as Remove Script", genapp_wrapper(kit, a)),
            ),
            Action::QuickCheck => (
                Level::Warning,
                "LifeKeeper will assume the resource is always healthy: failures are never detected".into(),
                format!("re-create the resource with {}", genapp_wrapper(kit, a)),
            ),
            Action::Recover => (
                Level::Info,
                "a quickCheck failure fails the resource over at once, without local recovery".into(),
                format!(
                    "to try local recovery first, re-create the resource with {} as Local Recovery Script",
                    genapp_wrapper(kit, a)
                ),
            ),
        };
        let path = genapp::copy_path(&opts.lkroot, a, tag);
        r.push(level, &path, format!("is missing: {what}"), remedy);
    }
}

/// `validate -t TAG` passes and the kit's TIMEOUT stays below LKCHECKINTERVAL.
fn check_config(opts: &Options, r: &mut TagReport, runner: &Runner) {
    let (file, program, kit) = runner;
    let program = program.as_path();
    let tag = r.tag;
    let name = format!("lkh-{kit}");
    let conf = opts.conf_dir.join(format!("{tag}.conf"));
    let env = [("LKHELPERS_LK_DEFAULTS", opts.defaults.as_path())];
    let ran = match run(file, &["validate", "-t", tag], &env, RUN_BUDGET) {
        Ok(ran) => ran,
        Err(e) => {
            return r.push(
                Level::Error,
                program,
                format!("cannot run `{name} validate -t {tag}`: {e}"),
                format!("reinstall {name}"),
            );
        }
    };
    match ran.status.and_then(|s| s.code()) {
        Some(0) => {}
        Some(2) => {
            return r.push(
                Level::Error,
                &conf,
                format!(
                    "the configuration of resource {tag} is missing or invalid: {}",
                    ran.reason()
                ),
                format!(
                    "write or fix {}, then check it with `{name} validate -t {tag}`",
                    conf.display()
                ),
            );
        }
        _ => {
            return r.push(
                Level::Error,
                &conf,
                format!("`{name} validate -t {tag}` {}", ran.failure()),
                format!("run `{name} validate -t {tag}` by hand and fix what it says"),
            );
        }
    }
    let timeout = ran
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("TIMEOUT="))
        .and_then(|v| v.trim().parse::<u64>().ok());
    let iv = &opts.interval;
    match timeout {
        Some(t) if t >= iv.seconds => r.push(
            Level::Error,
            &conf,
            format!(
                "resource {tag}: TIMEOUT={t} is not below LKCHECKINTERVAL={} ({}), so a hung quickCheck is still running when the next one is due",
                iv.seconds, iv.source
            ),
            format!(
                "lower TIMEOUT in {} below {}, or raise LKCHECKINTERVAL in {}",
                conf.display(),
                iv.seconds,
                opts.defaults.display()
            ),
        ),
        Some(_) => {}
        None => r.push(
            Level::Info,
            &conf,
            format!(
                "`{name} validate -t {tag}` printed no TIMEOUT=, so it cannot be compared with LKCHECKINTERVAL"
            ),
            String::new(),
        ),
    }
}
