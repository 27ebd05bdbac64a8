//! What the check returns — [`Finding`]s at a [`Level`], gathered in a [`Report`] — and
//! what it takes ([`Options`], with LifeKeeper's [`CheckInterval`]): the vocabulary the rest
//! of `wiring` and the binary's text and JSON share. Plain data, no I/O.

use std::path::{Path, PathBuf};

/// LifeKeeper's check interval when `/etc/default/LifeKeeper` does not set it.
pub const DEFAULT_CHECK_INTERVAL: u64 = 120;

/// How much a finding matters. `Error` makes `check-lifekeeper` exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Info,
    Warning,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// One finding: the file it is about, what is wrong, what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    /// The gen/app resource tag, when the finding is about one.
    pub tag: Option<String>,
    pub file: PathBuf,
    pub what: String,
    /// Empty when there is nothing to do.
    pub remedy: String,
}

impl Finding {
    pub(super) fn new(
        level: Level,
        tag: Option<&str>,
        file: &Path,
        what: String,
        remedy: String,
    ) -> Self {
        Finding {
            level,
            tag: tag.map(str::to_owned),
            file: file.to_path_buf(),
            what,
            remedy,
        }
    }

    /// `FILE: WHAT; REMEDY` on one line.
    pub fn message(&self) -> String {
        let mut s = format!("{}: {}", self.file.display(), self.what);
        if !self.remedy.is_empty() {
            s += "; ";
            s += &self.remedy;
        }
        s
    }
}

/// LifeKeeper's `LKCHECKINTERVAL`, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckInterval {
    pub seconds: u64,
    /// `FILE:LINE` of the assignment, or `FILE (unset, default 120)`.
    pub source: String,
    /// Set when the file's value was unusable and the default stands in.
    pub problem: Option<String>,
}

impl CheckInterval {
    /// Reads `LKCHECKINTERVAL` from the text of `file` (the LifeKeeper defaults file).
    pub fn from_defaults(file: &Path, text: &str) -> CheckInterval {
        let f = file.display();
        match crate::lifekeeper::find_key(text, "LKCHECKINTERVAL") {
            None => CheckInterval {
                seconds: DEFAULT_CHECK_INTERVAL,
                source: format!("{f} (unset, default {DEFAULT_CHECK_INTERVAL})"),
                problem: None,
            },
            Some((line, v)) => match v.trim().parse::<u64>() {
                Ok(n) if n > 0 => CheckInterval {
                    seconds: n,
                    source: format!("{f}:{line}"),
                    problem: None,
                },
                _ => CheckInterval {
                    seconds: DEFAULT_CHECK_INTERVAL,
                    source: format!("{f}:{line}"),
                    problem: Some(format!(
                        "LKCHECKINTERVAL=\"{v}\" is not a positive whole number of seconds; assumed {DEFAULT_CHECK_INTERVAL}"
                    )),
                },
            },
        }
    }
}

/// What to check.
#[derive(Debug, Clone)]
pub struct Options {
    pub lkroot: PathBuf,
    /// The LifeKeeper defaults file; passed to the kits as `LKHELPERS_LK_DEFAULTS`.
    pub defaults: PathBuf,
    pub interval: CheckInterval,
    /// Where the kits read `<tag>.conf` (for the messages only; the kits find it themselves).
    pub conf_dir: PathBuf,
}

/// The findings, plus debug notes on files that were skipped.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// How many gen/app tags use lkhelpers.
    pub tags: usize,
    pub notes: Vec<String>,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.level == Level::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_interval_default_value_and_garbage() {
        let f = Path::new("/etc/default/LifeKeeper");
        let d = CheckInterval::from_defaults(f, "A=1\n");
        assert_eq!((d.seconds, d.problem.is_none()), (120, true));
        let v = CheckInterval::from_defaults(f, "A=1\nLKCHECKINTERVAL=30\n");
        assert_eq!(
            (v.seconds, v.source.as_str()),
            (30, "/etc/default/LifeKeeper:2")
        );
        let g = CheckInterval::from_defaults(f, "LKCHECKINTERVAL=soon\n");
        assert_eq!(g.seconds, 120);
        assert!(g.problem.unwrap().contains("\"soon\""));
        assert!(
            CheckInterval::from_defaults(f, "LKCHECKINTERVAL=0\n")
                .problem
                .is_some()
        );
    }
}
