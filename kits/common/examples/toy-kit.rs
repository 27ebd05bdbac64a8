//! A minimal kit built on lkh-common, used by the contract tests: its "resource" is a file
//! named by `FILE=` holding the last action (in service unless that was remove); `MODE=`
//! makes an action fail, report fencing or hang (`deaf`: hang with SIGALRM blocked, like a
//! wait only a fatal signal ends), `wait` makes it write `FILE.inside` and wait for `FILE.go`
//! to appear (so a test can hold the tag's lock), `echo` makes it log what FILE holds (text
//! it did not choose, like a process name).

use lkh_common::{Failure, HookCtx, KeySpec, Kind, KitSpec, Outcome};
use std::process::ExitCode;

static SPEC: KitSpec = KitSpec {
    kit: "toy",
    summary: "a toy resource for testing the hook contract",
    keys: &[
        KeySpec::timeout("5"),
        KeySpec::resource("FILE", Kind::AbsPath, None, "the file that is the resource"),
        KeySpec::resource(
            "MODE",
            Kind::Choice(&["ok", "fail", "fenced", "hang", "deaf", "wait", "echo"]),
            Some("ok"),
            "how actions behave",
        ),
        KeySpec::lifekeeper(
            "FAILFASTTIMER",
            Kind::Uint { min: 1, max: 600 },
            Some("5"),
            "a LifeKeeper tunable",
        ),
    ],
    commands: &[("status -t TAG [--json]", "show the settings")],
    actions_help: "",
    check: Some(check),
    depth: Some(("MODE", ["ok", "ok", "fail"])),
};

fn check(ctx: &HookCtx) -> Outcome {
    ctx.require("FILE").map(|_| String::new())
}

fn hook(ctx: &HookCtx) -> Outcome {
    let file = ctx.require("FILE")?;
    match ctx.config.get("MODE") {
        Some("fail") => return Err(Failure::failed(format!("{file}: told to fail"))),
        Some("fenced") => return Err(Failure::fenced(format!("{file}: held by another node"))),
        Some("hang") => std::thread::sleep(std::time::Duration::from_secs(3600)),
        Some("deaf") => {
            use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
            let mut alarm = SigSet::empty();
            alarm.add(Signal::SIGALRM);
            pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&alarm), None)
                .map_err(|e| Failure::failed(format!("sigmask: {e}")))?;
            // long enough to tell "killed at the backstop" from "ran to the end"
            std::thread::sleep(std::time::Duration::from_secs(30));
        }
        Some("wait") => {
            let inside = format!("{file}.inside");
            std::fs::write(&inside, format!("{} {}\n", ctx.action, std::process::id()))
                .map_err(|e| Failure::failed(format!("{inside}: {e}")))?;
            let go = std::path::PathBuf::from(format!("{file}.go"));
            while !go.exists() && !ctx.deadline.expired() {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        Some("echo") => {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            log::warn!("{file} holds: {text}");
            return Ok(String::new());
        }
        _ => {}
    }
    let active = std::fs::read_to_string(file).is_ok_and(|t| !t.starts_with("remove "));
    if ctx.action == lkh_common::Action::QuickCheck && !active {
        return Err(Failure::failed(format!("{file}: not in service on this node")).not_running());
    }
    std::fs::write(
        file,
        format!(
            "{} id={:?} fft={:?}\n",
            ctx.action,
            ctx.id,
            ctx.config.uint("FAILFASTTIMER")
        ),
    )
    .map_err(|e| Failure::failed(format!("{file}: {e}")))?;
    log::warn!("a warning from {}", ctx.action);
    Ok(format!("{file} written"))
}

fn command(spec: &'static KitSpec, name: &str, args: &[String]) -> Option<Outcome> {
    if name != "status" {
        return None;
    }
    Some((|| {
        let a = lkh_common::parse_hook_args(spec.keys, args, &["--json"])?;
        let ctx = lkh_common::context(spec, lkh_common::Action::QuickCheck, &a)?;
        let mut obj = lkh_common::Json::obj().with("tag", ctx.tag.as_str());
        for s in ctx.config.settings() {
            obj.push(s.key, s.value.as_str());
        }
        println!("{obj}");
        Ok(String::new())
    })())
}

fn main() -> ExitCode {
    lkh_common::run(&SPEC, hook, command)
}
