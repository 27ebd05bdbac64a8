//! The LifeKeeper hook contract, implemented once for every lkhelpers kit.
//!
//! A kit binary declares a [`KitSpec`] (its name, configuration keys and extra commands) and
//! calls [`run`] from `main` with two functions: the hook (restore / remove / quickCheck /
//! recover, given a [`HookCtx`]) and its own commands (`status`, `doctor`, …). This crate does
//! the rest: argv and argv\[0\] dispatch ([`cli`]), tag validation ([`tag`]), configuration from
//! `/etc/lkhelpers/<TAG>.conf`, `/etc/default/LifeKeeper` and flags ([`config`]), the deadline
//! watchdog ([`deadline`]), logging to stderr and syslog ([`logging`]), the gen/app wrappers
//! ([`genapp`]), the exit-code table ([`exit`]), the help text and man pages rendered from the
//! same tables ([`doc`], [`man`]), the version line ([`version`]), the files a hook trusts
//! ([`trusted`]), the kits' run-state layout with its per-tag lock ([`runstate`]) and the
//! status contract every kit's assessment implements ([`Assessment`]: exit code, verdict,
//! message, JSON).
//!
//! ```no_run
//! use lkh_common::{Failure, HookCtx, KeySpec, Kind, KitSpec, Outcome};
//! static SPEC: KitSpec = KitSpec {
//!     kit: "demo",
//!     summary: "an example",
//!     keys: &[KeySpec::timeout("20"), KeySpec::resource("PATH", Kind::AbsPath, None, "what to check")],
//!     commands: &[("status -t TAG [--json]", "show the resource")],
//!     actions_help: "",
//!     check: None,
//!     depth: None,
//! };
//! fn hook(ctx: &HookCtx) -> Outcome {
//!     let path = ctx.require("PATH")?;
//!     if std::path::Path::new(path).exists() { Ok(format!("{path} is there")) }
//!     else { Err(Failure::failed(format!("{path} is missing: recreate it"))) }
//! }
//! fn command(_: &'static KitSpec, _name: &str, _args: &[String]) -> Option<Outcome> { None }
//! fn main() -> std::process::ExitCode { lkh_common::run(&SPEC, hook, command) }
//! ```
//!
//! This crate never prints except through [`run`] (help, version) and the logger.

pub mod assessment;
pub mod cli;
pub mod config;
pub mod deadline;
pub mod doc;
pub mod exit;
pub mod genapp;
pub mod json;
pub mod kit;
pub mod logging;
pub mod man;
pub mod ocf;
pub mod runstate;
mod sys;
pub use sys::default_sigpipe;
pub mod tag;
pub mod trusted;
pub mod version;

pub use assessment::Assessment;
pub use cli::{Action, HookArgs, parse_args, parse_hook_args};
pub use config::{Config, KeySpec, Kind, Scope, Sources};
pub use deadline::{Deadline, run_bounded};
pub use exit::{Exit, Failure, Hint, Outcome};
pub use json::Json;
pub use kit::{CommandFn, HookCtx, KitSpec, context, run};
pub use tag::Tag;
