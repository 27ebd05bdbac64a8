//! Records which commit the binaries are built from, for `--version` and the man pages.
//!
//! `LKHELPERS_COMMIT` and `LKHELPERS_DATE` (YYYY-MM-DD) override what git says, for builds from
//! a source tarball; without either, the commit is `unknown` and the date empty.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_owned())
}

fn from_env(name: &str) -> Option<String> {
    println!("cargo:rerun-if-env-changed={name}");
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = from_env("LKHELPERS_COMMIT")
        .or_else(|| git(&dir, &["rev-parse", "--short=7", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    let date = from_env("LKHELPERS_DATE")
        .or_else(|| git(&dir, &["log", "-1", "--format=%cs"]))
        .unwrap_or_default();
    println!("cargo:rustc-env=LKH_COMMIT={commit}");
    println!("cargo:rustc-env=LKH_DATE={date}");
    // Run again when HEAD moves: watch HEAD, the branch it names and the packed refs.
    let mut watch = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    watch.extend(git(&dir, &["symbolic-ref", "-q", "HEAD"]));
    for name in watch {
        if let Some(p) = git(&dir, &["rev-parse", "--git-path", &name]) {
            let p = dir.join(p);
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
}
