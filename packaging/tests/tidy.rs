//! The workspace is the one source of truth for the kits; every hand-kept list of them must
//! agree with it, and the static target is chosen in one place. The other tests hold the
//! house to its shape: the crates layered, the status contract written once, no product file
//! over 900 lines.
//!
//! The kits are the workspace members under `kits/` (but `kits/common`, the contract); each
//! ships one binary, its package's name. A *hook kit* is one whose `main` runs the LifeKeeper
//! hook contract (`lkh_common::run`): it is also an OCF agent (`ocf:lkhelpers:<kit>`) with
//! gen/app wrappers. ARCHITECTURE.md ("Adding a kit") lists what to edit; these tests name the
//! list that disagrees.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("packaging lives in the workspace")
        .to_path_buf()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// One kit as the workspace has it.
#[derive(Debug)]
struct Kit {
    /// Its directory under `kits/` (`scsipr`).
    dir: String,
    /// Its binary, the package name (`lkh-scsipr`).
    bin: String,
    /// Whether its `main` runs the hook contract.
    hook: bool,
}

/// The workspace members under `kits/`, but `kits/common`.
fn kits() -> Vec<Kit> {
    let manifest = read("Cargo.toml");
    let members = manifest
        .split("members = [")
        .nth(1)
        .and_then(|m| m.split(']').next())
        .expect("Cargo.toml lists its members");
    let mut out = Vec::new();
    for m in members.split(',').map(|m| m.trim().trim_matches('"')) {
        let Some(dir) = m.strip_prefix("kits/") else {
            continue;
        };
        if dir == "common" {
            continue;
        }
        let toml = read(&format!("{m}/Cargo.toml"));
        let bin = toml
            .lines()
            .find_map(|l| l.strip_prefix("name = \""))
            .and_then(|n| n.strip_suffix('"'))
            .unwrap_or_else(|| panic!("{m}/Cargo.toml has no package name"))
            .to_owned();
        let main = read(&format!("{m}/src/main.rs"));
        out.push(Kit {
            dir: dir.to_owned(),
            bin,
            hook: main.contains("lkh_common::run("),
        });
    }
    assert!(out.len() >= 4, "found only {out:?}");
    out
}

fn set<'a>(i: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    i.into_iter().map(str::to_owned).collect()
}

fn bins() -> BTreeSet<String> {
    set(kits().iter().map(|k| k.bin.as_str()))
}

fn hook_kits() -> BTreeSet<String> {
    set(kits().iter().filter(|k| k.hook).map(|k| k.dir.as_str()))
}

fn hook_bins() -> BTreeSet<String> {
    set(kits().iter().filter(|k| k.hook).map(|k| k.bin.as_str()))
}

/// Every word that follows `prefix` in `text` (letters, digits, `-`, `_`).
fn after(text: &str, prefix: &str) -> BTreeSet<String> {
    text.match_indices(prefix)
        .map(|(i, _)| {
            text[i + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// The binaries named in `text` (`lkh-<word>`, not `lkh-scsipr-watch`).
fn bins_in(text: &str) -> BTreeSet<String> {
    text.match_indices("lkh-")
        .filter_map(|(i, _)| {
            let w: String = text[i + 4..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            (!w.is_empty() && !w.contains('-')).then(|| format!("lkh-{w}"))
        })
        .collect()
}

/// The part of `text` from `start` to the next `end`.
fn between<'a>(text: &'a str, start: &str, end: &str, what: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("{what}: no {start:?}"));
    let rest = &text[from + start.len()..];
    &rest[..rest
        .find(end)
        .unwrap_or_else(|| panic!("{what}: no {end:?} after {start:?}"))]
}

/// The words of a bash array assignment `NAME=(a b c)` in `text`.
fn bash_array(text: &str, name: &str, what: &str) -> BTreeSet<String> {
    set(between(text, &format!("\n{name}=("), ")", what).split_whitespace())
}

/// Notes in `wrong` that the list `what` is `got` where the workspace has `want`.
fn check(wrong: &mut Vec<String>, what: &str, got: BTreeSet<String>, want: &BTreeSet<String>) {
    if &got != want {
        wrong.push(format!("{what}: {got:?}, the workspace has {want:?}"));
    }
}

#[test]
fn every_list_of_kits_is_the_workspaces() {
    let (bins, hook_kits, hook_bins) = (bins(), hook_kits(), hook_bins());
    let mut wrong = Vec::new();

    let kits_sh = read("packaging/kits.sh");
    check(
        &mut wrong,
        "packaging/kits.sh KITS",
        bash_array(&kits_sh, "KITS", "kits.sh"),
        &hook_kits,
    );
    check(
        &mut wrong,
        "packaging/kits.sh BINS",
        bash_array(&kits_sh, "BINS", "kits.sh"),
        &bins,
    );
    for script in ["packaging/build", "packaging/check", ".ci/run"] {
        let text = read(script);
        if !text.contains(". packaging/kits.sh") {
            wrong.push(format!("{script} does not source packaging/kits.sh"));
        }
        for name in ["KITS=(", "BINS=("] {
            if text.contains(name) {
                wrong.push(format!("{script} keeps a list of its own ({name})"));
            }
        }
    }

    let doc = read("kits/common/src/doc.rs");
    check(
        &mut wrong,
        "kits/common/src/doc.rs BINARIES",
        bins_in(between(&doc, "pub const BINARIES", "];", "doc.rs")),
        &bins,
    );

    let deb = read("packaging/Cargo.toml");
    check(
        &mut wrong,
        "packaging/Cargo.toml OCF links",
        after(&deb, "dest = \"usr/lib/ocf/resource.d/lkhelpers/"),
        &hook_kits,
    );
    let description = between(
        &deb,
        "extended-description = \"\"\"",
        "\"\"\"",
        "Cargo.toml",
    );
    check(
        &mut wrong,
        "packaging/Cargo.toml extended-description binaries",
        bins_in(description),
        &bins,
    );
    check(
        &mut wrong,
        "packaging/Cargo.toml extended-description OCF agents",
        after(description, "ocf:lkhelpers:"),
        &hook_kits,
    );

    let spec = read("packaging/lkhelpers.spec.in");
    let description = between(&spec, "%description", "\n%", "spec");
    check(
        &mut wrong,
        "packaging/lkhelpers.spec.in %description binaries",
        bins_in(description),
        &bins,
    );
    check(
        &mut wrong,
        "packaging/lkhelpers.spec.in %description OCF agents",
        after(description, "ocf:lkhelpers:"),
        &hook_kits,
    );

    check(
        &mut wrong,
        "packaging/etc-README: the kits' man pages",
        bins_in(between(
            &read("packaging/etc-README"),
            "The keys of each kit:",
            ";",
            "etc-README",
        )),
        &hook_bins,
    );

    let vm_bins = read("tests/src/vm/bins.rs");
    check(
        &mut wrong,
        "tests/src/vm/bins.rs PROJECT_BINS",
        bins_in(between(&vm_bins, "pub const PROJECT_BINS", ";", "bins.rs")),
        &bins,
    );
    let doctor = read("kits/platform/src/doctor.rs");
    check(
        &mut wrong,
        "kits/platform/src/doctor.rs KITS",
        after(between(&doctor, "pub const KITS", ";", "doctor.rs"), "\""),
        &hook_kits,
    );
    let pcmk = read("tests/src/pcmk.rs");
    check(
        &mut wrong,
        "tests/src/pcmk.rs KITS",
        after(between(&pcmk, "pub const KITS", ";", "pcmk.rs"), "\""),
        &hook_kits,
    );

    let readme = read("README.md");
    check(
        &mut wrong,
        "README.md: the table of binaries",
        bins_in(
            &readme
                .lines()
                .filter(|l| l.starts_with("| `lkh-"))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        &bins,
    );
    let arch = read("ARCHITECTURE.md");
    let entry = between(&arch, "## Entry points", "\n## ", "ARCHITECTURE.md");
    let rows: BTreeSet<String> = entry
        .lines()
        .filter(|l| l.starts_with("| `lkh-"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            format!("{} {}", cells[1], cells[2])
        })
        .collect();
    let want: BTreeSet<String> = kits()
        .iter()
        .map(|k| format!("`{}` `kits/{}`", k.bin, k.dir))
        .collect();
    check(
        &mut wrong,
        "ARCHITECTURE.md: entry points (binary, crate)",
        rows,
        &want,
    );

    assert!(
        wrong.is_empty(),
        "lists of kits disagree with the workspace members (see ARCHITECTURE.md, \"Adding a kit\"):\n  {}",
        wrong.join("\n  ")
    );
}

/// Every file of `dir` (recursively), but `target` and hidden directories.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.is_dir() {
            if name != "target" && !name.starts_with('.') {
                files(&p, out);
            }
        } else {
            out.push(p);
        }
    }
}

#[test]
fn the_static_target_is_chosen_in_one_place() {
    let root = root();
    let mut all = Vec::new();
    files(&root, &mut all);
    all.push(root.join(".ci/run"));
    let musl = concat!("x86_64-unknown-", "linux-musl");
    let mut choosers: Vec<String> = all
        .iter()
        .filter(|p| {
            let ext = p.extension().and_then(|e| e.to_str());
            // code and scripts, not the documents that name the target
            !matches!(ext, Some("md" | "txt" | "in" | "toml"))
        })
        .filter(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains(musl)))
        .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    choosers.sort();
    assert_eq!(
        choosers,
        ["packaging/static-target"],
        "only packaging/static-target names the static target; the others ask it"
    );
    for user in [".ci/run", "packaging/build", "tests/src/vm/bins.rs"] {
        assert!(
            read(user).contains("packaging/static-target"),
            "{user} does not ask packaging/static-target"
        );
    }
}

/// The workspace crates a member's `[section]` names (`name.workspace = true` or a path).
fn internal_deps(member: &str, section: &str) -> BTreeSet<String> {
    let internal: BTreeSet<String> = read("Cargo.toml")
        .lines()
        .filter(|l| l.contains("{ path = "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    let toml = read(&format!("{member}/Cargo.toml"));
    let Some(body) = toml.split(&format!("\n{section}\n")).nth(1) else {
        return BTreeSet::new();
    };
    body.lines()
        .take_while(|l| !l.starts_with('['))
        .filter_map(|l| l.split(['.', ' ', '=']).next())
        .filter(|name| internal.contains(*name))
        .map(str::to_owned)
        .collect()
}

/// The crates stay layered: libraries (the mechanism) depend on no workspace crate, the
/// contract (lkh-common) on none either, a kit on the contract and its libraries (lkh-ip also
/// on lkh-platform's detection) — never a library back up on a kit. The test bed depends on
/// no workspace crate, so the kits' own tests may use it.
#[test]
fn the_crates_stay_layered() {
    let allowed: &[(&str, &[&str])] = &[
        ("sg-persist", &[]),
        ("nas", &[]),
        ("ip-monitor", &[]),
        ("kits/common", &[]),
        ("tests", &[]),
        ("packaging", &[]),
        ("kits/platform", &["lkh-common"]),
        ("kits/scsipr", &["lkh-common", "sg-persist"]),
        ("kits/nas", &["lkh-common", "nas"]),
        ("kits/ip", &["lkh-common", "lkh-platform", "ip-monitor"]),
    ];
    let members: BTreeSet<&str> = allowed.iter().map(|(m, _)| *m).collect();
    let manifest = read("Cargo.toml");
    for m in between(&manifest, "members = [", "]", "Cargo.toml")
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
    {
        assert!(
            members.contains(m),
            "{m}: a member this test does not place in a layer"
        );
    }
    for (member, ok) in allowed {
        let got = internal_deps(member, "[dependencies]");
        let ok: BTreeSet<String> = ok.iter().map(|s| (*s).to_owned()).collect();
        assert!(
            got.is_subset(&ok),
            "{member} depends on {:?}, outside its layer",
            got.difference(&ok).collect::<Vec<_>>()
        );
    }
    // dev-dependencies: only the test bed, which depends on nothing of ours
    for (member, _) in allowed {
        let dev = internal_deps(member, "[dev-dependencies]");
        assert!(
            dev.iter().all(|d| d == "tests"),
            "{member}'s tests depend on {dev:?}"
        );
    }
}

/// The status contract (exit code, verdict, message, the JSON members) is written once, in
/// lkh-common's `assessment`: no hook kit spells it out again for its own health
/// (lkh-platform, no hook kit, relays the kits' answers in `doctor`).
#[test]
fn the_status_contract_is_written_once() {
    let mut all = Vec::new();
    for k in kits().iter().filter(|k| k.hook) {
        files(&root().join("kits").join(&k.dir), &mut all);
    }
    let copies = [
        "\"exit\", u32::from",
        "push(\"exit\"",
        "with(\"exit\"",
        "with(\"verdict\"",
        "push(\"verdict\"",
        "fn verdict_name(",
        "|f| f.exit, |_| Exit::Ok",
        "fn conclusion(",
    ];
    let mut found = Vec::new();
    for p in all
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
    {
        let text = std::fs::read_to_string(p).unwrap();
        // test code may spell the contract out to check it
        let product = text.split("#[cfg(test)]").next().unwrap_or("");
        for c in copies {
            if product.contains(c) {
                found.push(format!(
                    "{}: {c}",
                    p.strip_prefix(root()).unwrap().display()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "copies of the status contract (use lkh_common::Assessment):\n  {}",
        found.join("\n  ")
    );
}

/// The most lines a product file may have: a file that grows past it holds several rooms and
/// is split along its seams (a module directory, `<module>/<part>.rs`).
const MAX_PRODUCT_LINES: usize = 900;

/// No product file is over [`MAX_PRODUCT_LINES`]. Product: the Rust files under every
/// workspace member's `src/` but test code — a `tests` directory (the test bed `tests/`
/// included), a `tests.rs` module or a `*_tests.rs` one (unit tests moved out of their module).
#[test]
fn no_product_file_is_over_900_lines() {
    let root = root();
    let manifest = read("Cargo.toml");
    let mut all = Vec::new();
    for m in between(&manifest, "members = [", "]", "Cargo.toml")
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
    {
        let src = root.join(m).join("src");
        if src.is_dir() {
            files(&src, &mut all);
        }
    }
    let product: Vec<&PathBuf> = all
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .filter(|p| {
            let rel = p.strip_prefix(&root).unwrap();
            let name = rel.file_name().unwrap().to_string_lossy();
            !rel.components().any(|c| c.as_os_str() == "tests")
                && name != "tests.rs"
                && !name.ends_with("_tests.rs")
        })
        .collect();
    assert!(
        product.len() > 50,
        "found only {} product files: {product:?}",
        product.len()
    );
    let mut over: Vec<String> = product
        .iter()
        .filter_map(|p| {
            let n = std::fs::read_to_string(p).unwrap().lines().count();
            (n > MAX_PRODUCT_LINES)
                .then(|| format!("{} ({n} lines)", p.strip_prefix(&root).unwrap().display()))
        })
        .collect();
    over.sort();
    assert!(
        over.is_empty(),
        "product files over {MAX_PRODUCT_LINES} lines (split each along its seams into a module directory; unit tests may go to <module>/tests.rs):\n  {}",
        over.join("\n  ")
    );
}
