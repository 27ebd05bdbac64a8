//! What LifeKeeper recorded about its environment, and whether that agrees
//! with the detected platform.
//!
//! Documented facts this module relies on (SIOS LifeKeeper for Linux):
//! - `LK_SERV_ENV` in `/etc/default/LifeKeeper` is "an environment where
//!   LifeKeeper runs", a string determined by the value selected in setup;
//!   SIOS says not to change it by hand but to re-run the setup script and
//!   select the right value
//!   (<https://docs.us.sios.com/spslinux/9.9.0/en/topic/parameters-list>,
//!   also 9.8.1). SIOS does not publish the list of valid values, so this
//!   module only recognises "mentions Azure" and never invents a value.
//! - From 9.6.2 the installer selects the SCSI-3 Persistent Reservations
//!   recovery kit (package `steeleye-lkSCSI3`, for Azure Shared Disk) when
//!   it detects Azure
//!   (<https://docs.us.sios.com/spslinux/9.9.0/en/topic/storage-and-adapter-configuration>,
//!   <https://us.sios.com/blog/high-availability-clusters-azure-shared-disk/>).
//!
//! Inferred, not documented: the kit's files live in
//! `$LKROOT/subsys/scsi/resources/<name>` like LifeKeeper's other SCSI
//! storage kits; we look there for a directory named `scsi3` (any case)
//! and say so in the evidence.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::classify::{Classification, Confidence, Platform};

/// The documented parameter.
pub const SERV_ENV_KEY: &str = "LK_SERV_ENV";
/// Where SIOS documents the parameter and its remediation.
pub const SERV_ENV_DOC: &str = "https://docs.us.sios.com/spslinux/9.9.0/en/topic/parameters-list";
/// Where SIOS documents that setup selects the SCSI3 kit on Azure.
pub const SCSI3_DOC: &str =
    "https://docs.us.sios.com/spslinux/9.9.0/en/topic/storage-and-adapter-configuration";
/// The SCSI3 kit's package name.
pub const SCSI3_PACKAGE: &str = "steeleye-lkSCSI3";

/// Errors reading LifeKeeper's files. All mean "configuration problem".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LkError(pub String);

impl std::fmt::Display for LkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LkError {}

/// How `LK_SERV_ENV` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServEnv {
    /// Not set, or set to an empty string.
    Unset,
    /// The value names Azure.
    Azure(String),
    /// Some other value; its meaning is not documented.
    Other(String),
}

impl ServEnv {
    pub fn from_value(v: Option<&str>) -> ServEnv {
        match v.map(str::trim) {
            None | Some("") => ServEnv::Unset,
            Some(s) if s.to_ascii_lowercase().contains("azure") => ServEnv::Azure(s.to_string()),
            Some(s) => ServEnv::Other(s.to_string()),
        }
    }

    pub fn value(&self) -> Option<&str> {
        match self {
            ServEnv::Unset => None,
            ServEnv::Azure(s) | ServEnv::Other(s) => Some(s),
        }
    }
}

/// What LifeKeeper recorded on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub defaults_file: PathBuf,
    pub serv_env: ServEnv,
    /// 1-based line of the (last) `LK_SERV_ENV=` assignment.
    pub serv_env_line: Option<usize>,
    pub lkroot: PathBuf,
    /// Directory of the SCSI3 kit, when found.
    pub scsi3_kit: Option<PathBuf>,
    /// The defaults file's text, for the other settings a check reads (`LKCHECKINTERVAL`).
    pub defaults_text: String,
}

/// Splits a `KEY=value` line of a shell-style defaults file (the syntax lkh-common reads);
/// `None` for comments, blanks and anything else.
pub fn parse_assignment(line: &str) -> Option<(String, String)> {
    lkh_common::config::parse_assignment_line(line)
}

/// The last assignment of `key` in `text`, with its 1-based line number.
pub fn find_key(text: &str, key: &str) -> Option<(usize, String)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            parse_assignment(l)
                .filter(|(k, _)| k == key)
                .map(|(_, v)| (i + 1, v))
        })
        .last()
}

/// Reads the defaults file. A missing or unreadable file is an error: it
/// means LifeKeeper is not installed here or the path is wrong.
pub fn read_defaults(path: &Path) -> Result<String, LkError> {
    match fs::read(path) {
        Ok(bytes) if bytes.len() > 1 << 20 => Err(LkError(format!(
            "{}: larger than 1 MiB, not a LifeKeeper defaults file; pass the right file with --defaults",
            path.display()
        ))),
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(LkError(format!(
            "{}: not found; is LifeKeeper installed? pass its defaults file with --defaults",
            path.display()
        ))),
        Err(e) => Err(LkError(format!(
            "{}: cannot read: {e}; run as root or pass a readable copy with --defaults",
            path.display()
        ))),
    }
}

/// Looks for the SCSI3 kit's directory under `lkroot`.
pub fn find_scsi3_kit(lkroot: &Path) -> Option<PathBuf> {
    let dir = lkroot.join("subsys/scsi/resources");
    let entries = fs::read_dir(&dir).ok()?;
    entries
        .filter_map(Result::ok)
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .eq_ignore_ascii_case("scsi3")
        })
        .map(|e| e.path())
}

/// Reads what LifeKeeper recorded.
pub fn read_recorded(defaults: &Path, lkroot: &Path) -> Result<Recorded, LkError> {
    let text = read_defaults(defaults)?;
    if !lkroot.is_dir() {
        return Err(LkError(format!(
            "{}: not a directory; pass LifeKeeper's installation root with --lkroot",
            lkroot.display()
        )));
    }
    let found = find_key(&text, SERV_ENV_KEY);
    Ok(Recorded {
        defaults_file: defaults.to_path_buf(),
        serv_env: ServEnv::from_value(found.as_ref().map(|(_, v)| v.as_str())),
        serv_env_line: found.map(|(l, _)| l),
        lkroot: lkroot.to_path_buf(),
        scsi3_kit: find_scsi3_kit(lkroot),
        defaults_text: text,
    })
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// The platform verdict itself (too weak, or a platform SIOS documents nothing for).
    Verdict,
    /// `LK_SERV_ENV`, the one setting `fix` may change.
    ServEnv,
    /// The SCSI3 recovery kit.
    Scsi3Kit,
}

/// One finding of the consistency check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What it is about.
    pub subject: Subject,
    /// `true` when this finding makes the node inconsistent.
    pub problem: bool,
    /// What was found.
    pub what: String,
    /// What to do about it (empty when nothing).
    pub remedy: String,
}

/// The outcome of comparing the record with the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub findings: Vec<Finding>,
    /// The verdict was too weak or the platform too unusual to judge.
    pub undetermined: bool,
}

impl Check {
    pub fn consistent(&self) -> bool {
        !self.undetermined && self.findings.iter().all(|f| !f.problem)
    }
}

/// The documented remediation for a wrong `LK_SERV_ENV`.
pub fn serv_env_remedy(platform: Platform) -> String {
    let want = if platform.is_azure() {
        "Microsoft Azure"
    } else {
        "the non-Azure environment that matches this node"
    };
    format!(
        "stop LifeKeeper, re-run the setup script from the LifeKeeper installation image and select {want}; SIOS says not to edit {SERV_ENV_KEY} by hand ({SERV_ENV_DOC})"
    )
}

/// Compares what LifeKeeper recorded with the detected platform.
pub fn check(rec: &Recorded, verdict: &Classification) -> Check {
    let mut findings = Vec::new();
    let file = rec.defaults_file.display();
    let at = rec
        .serv_env_line
        .map(|l| format!("{file}:{l}"))
        .unwrap_or_else(|| file.to_string());
    let p = verdict.platform;

    if verdict.confidence == Confidence::Guess {
        findings.push(Finding {
            subject: Subject::Verdict,
            problem: false,
            what: format!(
                "the platform verdict ({}) is only a guess, so the record cannot be judged",
                p.as_str()
            ),
            remedy: "run `lkh-platform detect` without --no-network as root on the node itself"
                .into(),
        });
        return Check {
            findings,
            undetermined: true,
        };
    }
    if p == Platform::AzureStack {
        findings.push(Finding {
            subject: Subject::Verdict,
            problem: false,
            what: format!(
                "this is Azure Stack Hub; SIOS documents no {SERV_ENV_KEY} value or SCSI3 kit support for it (recorded: {})",
                rec.serv_env.value().unwrap_or("unset")
            ),
            remedy: "ask SIOS support which environment setup should record on Azure Stack Hub".into(),
        });
        return Check {
            findings,
            undetermined: true,
        };
    }

    match (&rec.serv_env, p.is_azure()) {
        (ServEnv::Azure(v), false) => findings.push(Finding {
            subject: Subject::ServEnv,
            problem: true,
            what: format!(
                "{at}: {SERV_ENV_KEY}=\"{v}\" records Azure, but this node was detected as {} ({})",
                p.describe(),
                p.as_str()
            ),
            remedy: serv_env_remedy(p),
        }),
        (ServEnv::Azure(v), true) => findings.push(Finding {
            subject: Subject::ServEnv,
            problem: false,
            what: format!("{at}: {SERV_ENV_KEY}=\"{v}\" records Azure, which matches"),
            remedy: String::new(),
        }),
        (ServEnv::Unset, false) => findings.push(Finding {
            subject: Subject::ServEnv,
            problem: false,
            what: format!("{file}: {SERV_ENV_KEY} is not set, so no Azure environment is recorded"),
            remedy: String::new(),
        }),
        (ServEnv::Other(v), false) => findings.push(Finding {
            subject: Subject::ServEnv,
            problem: false,
            what: format!(
                "{at}: {SERV_ENV_KEY}=\"{v}\" does not mention Azure (SIOS does not publish the list of values; confirm with setup if in doubt)"
            ),
            remedy: String::new(),
        }),
        (other, true) => findings.push(Finding {
            subject: Subject::ServEnv,
            problem: true,
            what: format!(
                "{at}: {SERV_ENV_KEY} is {} but this node runs in Azure",
                other.value().map(|v| format!("\"{v}\"")).unwrap_or_else(|| "not set".into())
            ),
            remedy: serv_env_remedy(p),
        }),
    }

    match (&rec.scsi3_kit, p.is_azure()) {
        (Some(dir), false) => findings.push(Finding {
            subject: Subject::Scsi3Kit,
            problem: true,
            what: format!(
                "the SCSI-3 PR recovery kit ({SCSI3_PACKAGE}) is installed ({}), which setup selects only when it detects Azure",
                dir.display()
            ),
            remedy: format!(
                "re-running setup on a correctly detected node does not select it ({SCSI3_DOC}); if no resource uses it, remove package {SCSI3_PACKAGE} with the package manager while LifeKeeper is stopped (confirm with SIOS support first)"
            ),
        }),
        (Some(dir), true) => findings.push(Finding {
            subject: Subject::Scsi3Kit,
            problem: false,
            what: format!("the SCSI3 kit is installed ({}), as expected on Azure", dir.display()),
            remedy: String::new(),
        }),
        (None, _) => findings.push(Finding {
            subject: Subject::Scsi3Kit,
            problem: false,
            what: format!(
                "no SCSI3 kit directory under {}/subsys/scsi/resources",
                rec.lkroot.display()
            ),
            remedy: String::new(),
        }),
    }
    Check {
        findings,
        undetermined: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_with_quotes_comments_and_export() {
        assert_eq!(parse_assignment("A=b"), Some(("A".into(), "b".into())));
        assert_eq!(parse_assignment(" A = x"), None);
        assert_eq!(
            parse_assignment("A=\"x y\" # c"),
            Some(("A".into(), "x y".into()))
        );
        assert_eq!(parse_assignment("A='q'"), Some(("A".into(), "q".into())));
        assert_eq!(
            parse_assignment("A=v # note"),
            Some(("A".into(), "v".into()))
        );
        assert_eq!(
            parse_assignment("export A=v"),
            Some(("A".into(), "v".into()))
        );
        assert_eq!(parse_assignment("# A=v"), None);
        assert_eq!(parse_assignment("A="), Some(("A".into(), String::new())));
    }

    #[test]
    fn last_assignment_wins() {
        let t = "X=1\nLK_SERV_ENV=one\n#LK_SERV_ENV=c\nLK_SERV_ENV=two\n";
        assert_eq!(find_key(t, SERV_ENV_KEY), Some((4, "two".into())));
        assert_eq!(find_key(t, "NOPE"), None);
    }

    #[test]
    fn serv_env_reads_azure_case_insensitively() {
        assert_eq!(
            ServEnv::from_value(Some("MS_AZURE")),
            ServEnv::Azure("MS_AZURE".into())
        );
        assert_eq!(ServEnv::from_value(Some(" ")), ServEnv::Unset);
        assert_eq!(ServEnv::from_value(Some("x")), ServEnv::Other("x".into()));
    }
}
