//! What a file in one of gen/app's copy directories is ([`Script`]), judged with its whole
//! chain from `/` ([`classify`]). A text file is only read — its one executable line parsed
//! as `/bin/sh` would ([`genapp::parse_script`]), its marker comment read as a claim — and an
//! ELF file is run (`--version`) only under `binary`'s rules, so classifying a directory
//! another user may have written to never runs their code.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use lkh_common::genapp::{self, Exec, MAX_WRAPPER_LEN, NotGenapp, Wrapper};
use lkh_common::trusted::{self, Flaw, Want};

use super::binary::{BINARY_MARKER, RUN_BUDGET, contains, executable, run};

/// What a file in a gen/app directory is.
#[derive(Debug, Clone)]
pub enum Script {
    /// One of our wrappers: a `/bin/sh` script whose one executable line is genapp's form and
    /// that carries genapp's marker (or execs an lkhelpers binary). `exec` is what it runs,
    /// `text` its content, `marker` what its comment claims.
    Wrapper {
        exec: Exec,
        text: String,
        marker: Option<Wrapper>,
    },
    /// Carries genapp's marker but does not run what genapp's wrappers run: the line that is
    /// not genapp's form and why.
    Broken { why: NotGenapp, marker: Wrapper },
    /// genapp's form without genapp's marker: one of ours when its binary is an lkhelpers
    /// binary ([`check`](super::check) decides).
    Candidate { exec: Exec, text: String },
    /// A copy of an lkhelpers binary; `name` is `lkh-<kit>` and `version` its `--version`
    /// line; `file` is the judged descriptor, the one that is run.
    Copy {
        name: String,
        version: String,
        file: Arc<File>,
    },
    /// Not ours (another application's script or program).
    Foreign(String),
    /// Could not be judged (unreadable, a dangling link, not a regular file).
    Unknown(String),
    /// An lkhelpers binary whose path someone other than root could change: not run.
    Insecure(String),
}

impl Script {
    /// Ours: a wrapper (a working or a broken one) or a copy of a kit binary.
    pub(super) fn ours(&self) -> bool {
        matches!(
            self,
            Script::Wrapper { .. } | Script::Broken { .. } | Script::Copy { .. }
        )
    }
}

/// A gen/app copy, judged ([`classify`]).
#[derive(Debug, Clone)]
pub struct Judged {
    pub script: Script,
    /// Every component of its path (the copy itself included) someone other than root could
    /// change.
    pub flaws: Vec<Flaw>,
    /// The copy's own metadata (through its links), when it could be opened.
    pub meta: Option<fs::Metadata>,
    /// What the copy points to, when it is a symbolic link itself.
    pub link: Option<OsString>,
}

/// Judges the file at `path` (a gen/app copy) with its whole chain and classifies it. Never
/// runs a wrapper; runs an ELF file with `--version` only under the rules in the module docs.
pub fn classify(path: &Path) -> Judged {
    let j = match trusted::judge(path, Want::File) {
        Ok(j) => j,
        Err(u) => {
            let what = if u.path == path {
                u.what
            } else {
                format!("{}: {}", u.path.display(), u.what)
            };
            return Judged {
                script: Script::Unknown(format!("cannot be followed to a file ({what})")),
                flaws: u.flaws,
                meta: None,
                link: None,
            };
        }
    };
    let link = j
        .links
        .iter()
        .find(|(at, _)| at == path)
        .map(|(_, to)| to.clone());
    let flaws = j.flaws.clone();
    let meta = Some(j.meta.clone());
    Judged {
        script: classify_open(j),
        flaws,
        meta,
        link,
    }
}

fn classify_open(j: trusted::Judged) -> Script {
    let mut head = Vec::new();
    if let Err(e) = (&j.file)
        .take(MAX_WRAPPER_LEN as u64 + 1)
        .read_to_end(&mut head)
    {
        return Script::Unknown(format!("cannot read: {e}"));
    }
    if head.starts_with(b"\x7fELF") {
        if !executable(&j.meta) {
            return Script::Foreign("an ELF file without execute permission".into());
        }
        let ours = head
            .windows(BINARY_MARKER.len())
            .any(|w| w == BINARY_MARKER)
            || contains(&j.file, BINARY_MARKER);
        if !ours {
            return Script::Foreign("an ELF program that is not an lkhelpers binary".into());
        }
        if !j.flaws.is_empty() {
            return Script::Insecure(
                "an lkhelpers binary whose path someone other than root can change".into(),
            );
        }
        return match run(&j.file, &["--version"], &[], RUN_BUDGET) {
            Ok(r) if r.status.is_some_and(|s| s.success()) => {
                let line = r.stdout.lines().next().unwrap_or_default().to_owned();
                match line.split_once(' ') {
                    Some((name, _)) if name.starts_with("lkh-") => Script::Copy {
                        name: name.to_owned(),
                        version: line,
                        file: Arc::new(j.file),
                    },
                    _ => Script::Foreign(format!("an ELF program whose --version says {line:?}")),
                }
            }
            Ok(r) => Script::Unknown(format!(
                "contains lkhelpers' code but `--version` {}",
                r.failure()
            )),
            Err(e) => Script::Unknown(format!("cannot run it with --version: {e}")),
        };
    }
    if head.len() > MAX_WRAPPER_LEN {
        return Script::Foreign("larger than any wrapper genapp writes".into());
    }
    let Ok(text) = String::from_utf8(head) else {
        return Script::Foreign("not an lkhelpers wrapper (not UTF-8 text)".into());
    };
    match (genapp::parse_script(&text), Wrapper::from_marker(&text)) {
        (Ok(exec), Some(marker)) => Script::Wrapper {
            exec,
            text,
            marker: Some(marker),
        },
        (Ok(exec), None) => Script::Candidate { exec, text },
        (Err(why), Some(marker)) => Script::Broken { why, marker },
        (Err(_), None) => Script::Foreign("not an lkhelpers wrapper".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_files_that_are_not_wrappers_are_foreign() {
        let f = std::env::temp_dir().join(format!("lkh-wiring-sh-{}", std::process::id()));
        fs::write(&f, "#!/bin/sh\necho hi\n").unwrap();
        let foreign = |f: &Path| match classify(f).script {
            Script::Foreign(why) => why,
            other => panic!("{other:?}"),
        };
        assert_eq!(foreign(&f), "not an lkhelpers wrapper");
        fs::write(&f, "x".repeat(MAX_WRAPPER_LEN + 10)).unwrap();
        foreign(&f);
        // genapp's form without its marker: a candidate, decided by what it execs
        fs::write(&f, "#!/bin/sh\nexec /opt/db/bin/start restore \"$@\"\n").unwrap();
        assert!(matches!(classify(&f).script, Script::Candidate { .. }));
        let _ = fs::remove_file(&f);
        assert!(matches!(classify(&f).script, Script::Unknown(_)));
    }
}
