//! The runner every kit binary's `main` calls: parse, configure, log, run the action under its
//! deadline, and turn the outcome into one of the documented exit codes.

use crate::cli::{Action, HookArgs, Invocation, parse_invocation};
use crate::config::{self, Config, KeySpec, Missing, Sources};
use crate::deadline::{Deadline, Watchdog, run_bounded};
use crate::exit::{Exit, Failure, Outcome};
use crate::genapp;
use crate::logging;
use crate::tag::Tag;
use std::path::PathBuf;
use std::process::ExitCode;

/// What a kit declares about itself.
#[derive(Debug)]
pub struct KitSpec {
    /// Short name: `scsipr` → binary `lkh-scsipr`, resource type directory `scsipr`.
    pub kit: &'static str,
    /// One line saying what the kit protects.
    pub summary: &'static str,
    /// Every configuration key, including `TIMEOUT` ([`KeySpec::timeout`]).
    pub keys: &'static [KeySpec],
    /// The kit's own commands besides the hooks and `install`: (usage, one-line help).
    pub commands: &'static [(&'static str, &'static str)],
    /// Extra help text: what each action does for this kit.
    pub actions_help: &'static str,
    /// Checks beyond the keys' shapes (required keys, values that contradict each other) that
    /// `validate` and OCF `validate-all` run; must not change anything.
    pub check: Option<fn(&HookCtx) -> Outcome>,
    /// The key `OCF_CHECK_LEVEL` 0 / 10 / 20 sets for a Pacemaker monitor, with its values.
    pub depth: Option<(&'static str, [&'static str; 3])>,
}

impl KitSpec {
    pub fn binary(&self) -> String {
        format!("lkh-{}", self.kit)
    }

    /// The full `--help` text: usage, the hook contract, the keys, the exit codes
    /// (the same sections as the man page, [`crate::man`]).
    pub fn help(&self) -> String {
        crate::doc::kit_help(self)
    }
}

/// Everything an action needs: who called, for which resource, with which settings, until when.
#[derive(Debug)]
pub struct HookCtx {
    pub spec: &'static KitSpec,
    pub action: Action,
    pub tag: Tag,
    pub id: Option<String>,
    pub config: Config,
    pub deadline: Deadline,
    pub sources: Sources,
    /// Called as an OCF agent: the settings are the resource's `OCF_RESKEY_*` parameters.
    pub ocf: bool,
    /// The tag's run-state directory, opened and checked when the hook's lock was taken
    /// (`None` outside a hook): the hook reads and writes its run state there without
    /// walking the path again.
    pub run: Option<crate::runstate::TagDir>,
}

impl HookCtx {
    /// The resource's configuration file (which may not exist under `--no-config`).
    /// Under OCF a description of the parameters instead, so messages that say where to fix a
    /// value ("add DEVICE=… to …") point at the right place.
    pub fn conf_file(&self) -> PathBuf {
        if self.ocf {
            PathBuf::from(format!(
                "the OCF parameters of resource {} (OCF_RESKEY_<key in lower case>)",
                self.tag
            ))
        } else {
            self.sources.resource_file(&self.tag)
        }
    }

    /// A usage failure naming the resource file, for settings that must be present.
    pub fn require(&self, key: &str) -> Result<&str, Failure> {
        self.config.require(key, &self.conf_file())
    }
}

/// Builds the context for `tag` from parsed flags: validates the tag, loads and merges the
/// configuration. Kits use it for their own tag-based commands (`status -t TAG`) too.
pub fn context(
    spec: &'static KitSpec,
    action: Action,
    args: &HookArgs,
) -> Result<HookCtx, Failure> {
    let raw = args
        .tag
        .as_deref()
        .ok_or_else(|| Failure::usage("no resource tag given: add -t TAG"))?;
    let tag = Tag::parse(raw)?;
    let missing = if args.no_config {
        Missing::Allow
    } else {
        Missing::Refuse
    };
    context_with(spec, action, tag, args.id.clone(), missing, &args.overrides)
}

/// [`context`] for a tag already validated, with the given treatment of the resource file.
pub(crate) fn context_with(
    spec: &'static KitSpec,
    action: Action,
    tag: Tag,
    id: Option<String>,
    missing: Missing,
    overrides: &[(String, String)],
) -> Result<HookCtx, Failure> {
    let sources = Sources::from_env();
    let config = config::load(spec.keys, &tag, &sources, missing, overrides)?;
    let deadline = Deadline::after(config.timeout());
    Ok(HookCtx {
        spec,
        action,
        tag,
        id,
        config,
        deadline,
        sources,
        ocf: false,
        run: None,
    })
}

/// A kit's own commands: `None` when `name` is not one of them.
pub type CommandFn = fn(&'static KitSpec, &str, &[String]) -> Option<Outcome>;

/// The whole `main` of a kit binary.
pub fn run(spec: &'static KitSpec, hook: fn(&HookCtx) -> Outcome, command: CommandFn) -> ExitCode {
    logging::started();
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let bin = spec.binary();
    std::hint::black_box(genapp::BINARY_MARKER);
    if let Some(word) = crate::ocf::detect(&argv, std::env::var_os("OCF_ROOT").is_some()) {
        return crate::ocf::run(spec, hook, word);
    }
    let invocation = match parse_invocation(spec.keys, &argv) {
        Ok(i) => i,
        Err(f) => {
            logging::init(&bin, None, 0);
            log::error!("{f}");
            return f.exit.into();
        }
    };
    // what a user pipes into `head`: a closed pipe ends it quietly (never a hook or `watch`)
    if matches!(&invocation, Invocation::Help | Invocation::Version)
        || matches!(&invocation, Invocation::Command { name, .. } if name != "watch")
    {
        crate::sys::default_sigpipe();
    }
    match invocation {
        Invocation::Help => {
            print!("{}", spec.help());
            Exit::Ok.into()
        }
        Invocation::Version => {
            println!("{}", crate::version::line(&bin));
            Exit::Ok.into()
        }
        Invocation::Genapp {
            tag,
            dir,
            verbosity,
        } => {
            logging::init(
                &bin,
                tag.as_deref().filter(|t| Tag::parse(t).is_ok()),
                verbosity,
            );
            finish(run_genapp(spec, tag, dir), "genapp")
        }
        // Hidden: the man page, for the packaging script (`man`, `man lkhelpers`).
        Invocation::Command { name, args, .. } if name == "man" => {
            match crate::man::page_for(spec, &args) {
                Some(page) => {
                    print!("{page}");
                    Exit::Ok.into()
                }
                None => finish(Err(Failure::usage("man: usage: man [lkhelpers]")), "man"),
            }
        }
        Invocation::Command {
            name,
            args,
            verbosity,
        } => {
            let tag = args.windows(2).find(|w| w[0] == "-t").map(|w| w[1].clone());
            logging::init(
                &bin,
                tag.as_deref().filter(|t| Tag::parse(t).is_ok()),
                verbosity,
            );
            let outcome = command(spec, &name, &args)
                .or_else(|| (name == "validate").then(|| validate(spec, &args)))
                .unwrap_or_else(|| {
                let known: Vec<&str> = spec.commands.iter().filter_map(|(u, _)| u.split_whitespace().next()).collect();
                Err(Failure::usage(format!(
                    "unknown command '{name}': use restore, remove, quickCheck, recover, {}, validate, genapp (see --help)",
                    known.join(", ")
                )))
            });
            finish(outcome, &name)
        }
        Invocation::Hook { action, args } => run_hook(spec, action, args, hook),
    }
}

fn run_hook(
    spec: &'static KitSpec,
    action: Action,
    args: HookArgs,
    hook: fn(&HookCtx) -> Outcome,
) -> ExitCode {
    let bin = spec.binary();
    let shown_tag = args.tag.as_deref().filter(|t| Tag::parse(t).is_ok());
    logging::init(&bin, shown_tag, args.verbosity);
    logging::phase("arguments and logging");
    if !args.ignored.is_empty() {
        log::debug!("{action}: ignoring arguments {:?}", args.ignored);
    }
    let ctx = match context(spec, action, &args) {
        Ok(c) => c,
        Err(f) => return finish(Err(f), action.name()),
    };
    logging::phase("configuration");
    let code = finish(guarded(ctx, hook), action.name());
    logging::phase("done");
    code
}

/// Runs the hook under its deadline: the watchdog timer, or a worker thread abandoned at the
/// deadline where no timer can be had; and under the tag's lock
/// (`<run dir>/<kit>/<TAG>/lock`, [`crate::runstate`]), so hooks of one resource run one at a
/// time: a second one waits for the first, at most until its own deadline.
pub(crate) fn guarded(mut ctx: HookCtx, hook: fn(&HookCtx) -> Outcome) -> Outcome {
    let action = ctx.action;
    log::debug!(
        "{action}: id={:?} timeout={}s",
        ctx.id,
        ctx.deadline.budget().as_secs()
    );
    let deadline = ctx.deadline;
    // held until this function returns (or the process exits at the deadline)
    let dir = crate::runstate::RunDir::new(ctx.spec.kit).tag(&ctx.tag)?;
    let _lock = dir.lock(action.name(), deadline)?;
    ctx.run = Some(dir);
    logging::phase("lock");
    let late = Failure::failed(format!(
        "did not finish within TIMEOUT={}s and was abandoned: see the messages above for what it was waiting on; if it is only slow, raise TIMEOUT in {}",
        deadline.budget().as_secs(),
        ctx.conf_file().display()
    ));
    let words = logging::last_words(&format!("{}: {late}", action.name()), late.exit.code());
    match Watchdog::arm(deadline, words) {
        Ok(watchdog) => {
            let outcome = hook(&ctx);
            drop(watchdog);
            outcome
        }
        Err(e) => {
            log::debug!("{action}: no watchdog timer ({e}): running the action on a worker thread");
            run_bounded(deadline, move || hook(&ctx)).unwrap_or(Err(late))
        }
    }
}

/// `validate -t TAG`: loads TAG's configuration as a quickCheck would, runs the kit's own
/// checks ([`KitSpec::check`]) and prints the effective settings as `KEY=value` lines on stdout.
pub fn validate(spec: &'static KitSpec, args: &[String]) -> Outcome {
    let a = crate::cli::parse_hook_args(spec.keys, args, &[])?;
    let ctx = context(spec, Action::QuickCheck, &a)?;
    if let Some(check) = spec.check {
        check(&ctx)?;
    }
    for s in ctx.config.settings() {
        println!("{}={}", s.key, s.value);
    }
    Ok(format!(
        "the configuration is valid ({})",
        if a.no_config {
            "no resource file".to_owned()
        } else {
            ctx.conf_file().display().to_string()
        }
    ))
}

fn run_genapp(spec: &'static KitSpec, tag: Option<String>, dir: Option<String>) -> Outcome {
    if let Some(t) = &tag {
        Tag::parse(t)?;
    }
    let exe = match std::env::var_os(genapp::BINARY_ENV).filter(|v| !v.is_empty()) {
        // Packaging writes the wrappers before the binary is in its installed place (on
        // another machine): only the path is checked.
        Some(installed) => PathBuf::from(installed),
        None => {
            let exe = std::env::current_exe()
                .and_then(std::fs::canonicalize)
                .map_err(|e| Failure::failed(format!("cannot find this binary's own path: {e}")))?;
            genapp::check_binary(&exe)?;
            exe
        }
    };
    let dir = dir.map_or_else(|| genapp::default_dir(spec.kit), PathBuf::from);
    let changes = genapp::write(&dir, spec.kit, &exe)?;
    for (path, change) in &changes {
        let what = match change {
            genapp::Change::Created => "created",
            genapp::Change::Unchanged => "kept",
            genapp::Change::Updated => "updated",
        };
        log::info!("{what} {} (execs {})", path.display(), exe.display());
    }
    let sources = Sources::from_env();
    print!(
        "{}",
        genapp::wizard_answers(spec.kit, &dir, tag.as_deref(), &sources.conf_dir)
    );
    if let Some(t) = tag {
        let args = HookArgs {
            tag: Some(t.clone()),
            ..HookArgs::default()
        };
        match context(spec, Action::QuickCheck, &args) {
            Ok(ctx) => log::info!("{}: the configuration is valid", ctx.conf_file().display()),
            Err(f) => log::warn!(
                "{f} (fix this before bringing resource {t} in service: `{} validate -t {t}` checks it)",
                spec.binary()
            ),
        }
    }
    Ok(format!(
        "{} gen/app wrappers in place in {}",
        changes.len(),
        dir.display()
    ))
}

fn finish(outcome: Outcome, what: &str) -> ExitCode {
    match outcome {
        Ok(summary) => {
            if !summary.is_empty() {
                log::info!("{what}: {summary}");
            }
            Exit::Ok.into()
        }
        Err(f) => {
            log::error!("{what}: {f}");
            f.exit.into()
        }
    }
}
