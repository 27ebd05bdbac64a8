//! The project's own binaries, built static for the guest.
//!
//! `cargo build --release --target <static target>` with
//! `CARGO_TARGET_DIR=<workspace>/target/vm-bins`: a target directory of its own, so this nested
//! cargo never waits for the lock of the `cargo test` that runs us. The target is the one
//! `packaging/static-target` chooses for every static build (musl, added with rustup when
//! missing; glibc with `+crt-static` when that fails). A kit
//! that does not build (yet) is left out with a warning: scenarios check for the binary
//! themselves (`have_bin` in the guest library).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::VmError;
use super::cmd::run_ok;
use super::parts::{lock_cache, workspace_target};

/// The project binaries a guest can get (package name = binary name).
pub const PROJECT_BINS: &[&str] = &["lkh-scsipr", "lkh-nas", "lkh-ip", "lkh-platform"];

const BUILD_TIMEOUT: Duration = Duration::from_secs(1200);

/// A built binary: its name and where it is on the host.
#[derive(Debug, Clone)]
pub struct Bin {
    pub name: String,
    pub path: PathBuf,
}

/// Builds (once per process) and returns the project binaries that build.
pub fn project_bins() -> Result<&'static [Bin], VmError> {
    static BINS: OnceLock<Result<Vec<Bin>, VmError>> = OnceLock::new();
    BINS.get_or_init(build_all)
        .as_ref()
        .map(Vec::as_slice)
        .map_err(Clone::clone)
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(workspace_target().parent().expect("workspace root"))
        .env("CARGO_TARGET_DIR", workspace_target().join("vm-bins"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    c
}

/// The static target and the variables its build needs, as `packaging/static-target` (the
/// one choice, which `.ci/run` and `packaging/build` ask too) prints them.
fn static_target() -> Result<(String, Vec<(String, String)>), VmError> {
    let script = workspace_target()
        .parent()
        .expect("workspace root")
        .join("packaging/static-target");
    let o = run_ok(Command::new("bash").arg(&script), Duration::from_secs(300))?;
    let mut target = None;
    let mut env = Vec::new();
    for line in o.stdout_str().lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim_matches('\'');
        if k == "LKH_STATIC_TARGET" {
            target = Some(v.to_owned());
        } else {
            env.push((k.to_owned(), v.to_owned()));
        }
    }
    let target = target.ok_or_else(|| {
        VmError::Setup(format!("{} printed no LKH_STATIC_TARGET", script.display()))
    })?;
    Ok((target, env))
}

fn build(target: &str, env: &[(String, String)], pkgs: &[&str]) -> Result<(), VmError> {
    let mut c = cargo();
    c.args(["build", "--release", "--target", target]);
    for p in pkgs {
        c.args(["-p", p]);
    }
    c.envs(env.iter().map(|(k, v)| (k, v)));
    run_ok(&mut c, BUILD_TIMEOUT).map(|_| ())
}

/// Builds example `name` of package `pkg` the way the project binaries are built (static,
/// release, `target/vm-bins`) and returns where it is, for a guest file (a benchmark's probe).
pub fn example_bin(pkg: &str, name: &str) -> Result<PathBuf, VmError> {
    let _lock = lock_cache(".bins.lock", Duration::from_secs(1800))?;
    let (target, env) = static_target()?;
    let mut c = cargo();
    c.args([
        "build",
        "--release",
        "--target",
        &target,
        "-p",
        pkg,
        "--example",
        name,
    ]);
    c.envs(env.iter().map(|(k, v)| (k, v)));
    run_ok(&mut c, BUILD_TIMEOUT)?;
    Ok(workspace_target()
        .join("vm-bins")
        .join(&target)
        .join("release/examples")
        .join(name))
}

fn build_all() -> Result<Vec<Bin>, VmError> {
    // one build (and one `rustup target add`) at a time across test processes
    let _lock = lock_cache(".bins.lock", Duration::from_secs(1800))?;
    let (target, env) = static_target()?;
    let dir = workspace_target()
        .join("vm-bins")
        .join(&target)
        .join("release");
    let found = |name: &str| -> Option<Bin> {
        let p = dir.join(name);
        p.is_file().then(|| Bin {
            name: name.to_string(),
            path: p,
        })
    };
    if build(&target, &env, PROJECT_BINS).is_ok() {
        return Ok(PROJECT_BINS.iter().filter_map(|b| found(b)).collect());
    }
    let mut out = Vec::new();
    for b in PROJECT_BINS {
        match build(&target, &env, &[b]) {
            Ok(()) => out.extend(found(b)),
            Err(e) => eprintln!("vm: {b} does not build, leaving it out of the guest: {e}"),
        }
    }
    Ok(out)
}
