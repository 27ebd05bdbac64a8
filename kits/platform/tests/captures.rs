//! The peer captures (`tests/fixtures/captures`, other projects' test data
//! and field reports) against the table of expected verdicts in
//! `tests/fixtures/captures/VERDICTS.md`, each run through the binary as a
//! user would: `detect --json --no-network --sysroot TREE`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{code, run, stdout};

fn captures() -> PathBuf {
    common::fixture("captures")
}

/// One row of `VERDICTS.md`.
struct Row {
    tree: String,
    platform: String,
    confidence: String,
    argued: String,
}

fn table() -> Vec<Row> {
    let text = fs::read_to_string(captures().join("VERDICTS.md")).expect("VERDICTS.md");
    text.lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| tree "))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 4, "malformed row: {l}");
            Row {
                tree: cells[0].into(),
                platform: cells[1].into(),
                confidence: cells[2].into(),
                argued: cells[3].into(),
            }
        })
        .collect()
}

/// The `expect:` line of a tree's PEER file: the verdicts that agree with
/// the source, or `None` for a tree that is not scored.
fn peer_expect(tree: &Path) -> Option<Vec<String>> {
    let peer = fs::read_to_string(tree.join("PEER")).expect("PEER file");
    let line = peer
        .lines()
        .find_map(|l| l.strip_prefix("expect:"))
        .expect("expect: line");
    let names: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    (names != ["-"]).then_some(names)
}

/// The string value of the first `"key":"..."` in a JSON line.
fn json_str<'a>(json: &'a str, key: &str) -> &'a str {
    let pat = format!("\"{key}\":\"");
    let start = json
        .find(&pat)
        .unwrap_or_else(|| panic!("no {key} in {json}"))
        + pat.len();
    let len = json[start..].find('"').expect("closing quote");
    &json[start..start + len]
}

fn reasons(json: &str) -> &str {
    let start = json.find("\"reasons\":[").expect("reasons");
    let end = json[start..].find("],").expect("end of reasons");
    &json[start..start + end]
}

#[test]
fn every_capture_gives_the_verdict_in_the_table() {
    let rows = table();
    let mut trees: Vec<String> = fs::read_dir(captures())
        .expect("captures dir")
        .map(|e| e.expect("entry"))
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    trees.sort();
    let mut listed: Vec<String> = rows.iter().map(|r| r.tree.clone()).collect();
    listed.sort();
    assert_eq!(trees, listed, "VERDICTS.md must have one row per tree");

    let (mut scored, mut agree) = (0, 0);
    let mut wrong = Vec::new();
    for row in &rows {
        let dir = captures().join(&row.tree);
        let o = run(&[
            "detect",
            "--json",
            "--no-network",
            "--sysroot",
            dir.to_str().unwrap(),
        ]);
        assert_eq!(code(&o), 0, "{}: {}", row.tree, common::stderr(&o));
        let j = stdout(&o);
        let (platform, confidence) = (json_str(&j, "platform"), json_str(&j, "confidence"));
        if (platform, confidence) != (row.platform.as_str(), row.confidence.as_str()) {
            wrong.push(format!(
                "{}: got {platform} ({confidence}), table says {} ({})",
                row.tree, row.platform, row.confidence
            ));
            continue;
        }
        let Some(expect) = peer_expect(&dir) else {
            continue;
        };
        scored += 1;
        if expect.iter().any(|e| e == platform) {
            agree += 1;
            assert!(
                row.argued.is_empty(),
                "{}: agrees, so nothing to argue",
                row.tree
            );
            continue;
        }
        // A disagreement with the source must be argued, and is never
        // more than a guess.
        assert!(
            !row.argued.is_empty(),
            "{}: disagreement not argued",
            row.tree
        );
        assert_eq!(
            confidence, "guess",
            "{}: a disagreement must be a guess",
            row.tree
        );
        if row.argued.contains("nothing here can tell") {
            assert!(
                platform == "bare-metal" || platform == "other-vm",
                "{}: undecidable data must give bare-metal or other-vm",
                row.tree
            );
            let r = reasons(&j);
            assert!(
                r.contains("there is no") || r.contains("no flags line"),
                "{}: the reasons must say what is missing: {r}",
                row.tree
            );
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    eprintln!("{agree} of {scored} scored captures agree with their source; the rest are argued");
}

#[test]
fn the_azure_tag_on_ovirt_dmi_is_shown_as_disagreeing() {
    let dir = captures().join("insights-dmidecode-azure-asset-tag");
    let o = run(&["detect", "--no-network", "--sysroot", dir.to_str().unwrap()]);
    let out = stdout(&o);
    common::has(&out, "platform: kvm (KVM/QEMU guest)");
    common::has(&out, "confidence: guess");
    assert!(out.contains("oVirt, which is KVM"), "{out}");
    assert!(
        out.contains("asset tag is Azure's") && out.contains("(disagrees)"),
        "{out}"
    );
}
