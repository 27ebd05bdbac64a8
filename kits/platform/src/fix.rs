//! Planning and applying the remediation, safely.
//!
//! The documented remediation is to re-run LifeKeeper's setup and pick the
//! right environment; SIOS publishes no list of `LK_SERV_ENV` values, so
//! this tool never picks one. It changes the file only when the admin
//! names the value (`--lk-serv-env`, e.g. the one setup offers), and then:
//! only while LifeKeeper is stopped, only the `LK_SERV_ENV` line, after a
//! timestamped backup beside the file, through a temporary file renamed
//! into place with the original mode and owner. Everything else is printed
//! as a manual step.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::lifekeeper::{SERV_ENV_KEY, ServEnv, parse_assignment};

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Copy `file` to `backup` before changing it.
    Backup { file: PathBuf, backup: PathBuf },
    /// Set `LK_SERV_ENV` in `file` to `value` (was `old`).
    SetServEnv {
        file: PathBuf,
        old: Option<String>,
        value: String,
    },
    /// Something the admin must do by hand.
    Manual(String),
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Backup { file, backup } => {
                write!(f, "back up {} to {}", file.display(), backup.display())
            }
            Step::SetServEnv { file, old, value } => write!(
                f,
                "set {SERV_ENV_KEY}=\"{value}\" in {} (was {})",
                file.display(),
                old.as_deref()
                    .map(|o| format!("\"{o}\""))
                    .unwrap_or_else(|| "unset".into())
            ),
            Step::Manual(s) => write!(f, "by hand: {s}"),
        }
    }
}

/// Whether a value can go into the file unquoted and harmlessly.
pub fn valid_serv_env_value(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// `YYYYmmddTHHMMSSZ` for `secs` since the epoch (UTC).
pub fn timestamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (proleptic Gregorian), after H. Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The backup path for `file` at time `now`.
pub fn backup_path(file: &Path, now: SystemTime) -> PathBuf {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut name = file.as_os_str().to_owned();
    name.push(format!(".lkh-backup-{}", timestamp(secs)));
    PathBuf::from(name)
}

/// `text` with every `LK_SERV_ENV=` line replaced by one with `value`, or
/// the line appended when there was none. Other lines are kept byte for
/// byte.
pub fn rewrite_serv_env(text: &str, value: &str) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    let mut replaced = false;
    for line in text.split_inclusive('\n') {
        let is_key = parse_assignment(line.trim_end_matches(['\n', '\r']))
            .is_some_and(|(k, _)| k == SERV_ENV_KEY);
        if is_key {
            out.push_str(&format!("{SERV_ENV_KEY}={value}"));
            out.push('\n');
            replaced = true;
        } else {
            out.push_str(line);
        }
    }
    if !replaced {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("{SERV_ENV_KEY}={value}\n"));
    }
    out
}

/// Builds the plan. `value` is the admin's chosen `LK_SERV_ENV`, if any.
pub fn plan(
    defaults: &Path,
    current: &ServEnv,
    serv_env_wrong: bool,
    value: Option<&str>,
    manual: &[String],
    now: SystemTime,
) -> Vec<Step> {
    let mut steps = Vec::new();
    if serv_env_wrong {
        match value {
            Some(v) => {
                steps.push(Step::Backup {
                    file: defaults.to_path_buf(),
                    backup: backup_path(defaults, now),
                });
                steps.push(Step::SetServEnv {
                    file: defaults.to_path_buf(),
                    old: current.value().map(str::to_string),
                    value: v.to_string(),
                });
            }
            None => steps.push(Step::Manual(format!(
                "stop LifeKeeper, re-run setup from the installation image and select the right environment; or, if you know the value setup would record, run `lkh-platform fix --lk-serv-env VALUE` ({})",
                crate::lifekeeper::SERV_ENV_DOC
            ))),
        }
    }
    steps.extend(manual.iter().cloned().map(Step::Manual));
    steps
}

/// Copies `file` to `backup`, never overwriting an existing file, with the
/// original's permission bits.
fn backup(file: &Path, backup: &Path) -> Result<(), String> {
    let meta = fs::metadata(file).map_err(|e| format!("{}: cannot stat: {e}", file.display()))?;
    let data = fs::read(file).map_err(|e| format!("{}: cannot read: {e}", file.display()))?;
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(meta.mode() & 0o7777)
        .open(backup)
        .map_err(|e| match e.kind() {
            ErrorKind::AlreadyExists => format!(
                "{}: backup already exists; wait a second and run again",
                backup.display()
            ),
            _ => format!("{}: cannot create backup: {e}", backup.display()),
        })?;
    out.write_all(&data)
        .and_then(|()| out.sync_all())
        .map_err(|e| format!("{}: cannot write backup: {e}", backup.display()))
}

/// Replaces `file`'s contents atomically, keeping its mode and owner.
fn replace(file: &Path, contents: &str) -> Result<(), String> {
    let meta = fs::metadata(file).map_err(|e| format!("{}: cannot stat: {e}", file.display()))?;
    let dir = file.parent().unwrap_or(Path::new("."));
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.lkh-tmp-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        out.write_all(contents.as_bytes())?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        // Keeping the owner only matters (and only works) as root.
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(&tmp, Some(meta.uid()), Some(meta.gid()))?;
        }
        out.sync_all()?;
        fs::rename(&tmp, file)?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!(
            "{}: cannot replace: {e}; the original is unchanged",
            file.display()
        )
    })
}

/// Carries out the file-changing steps in order; returns a line per step
/// done. Stops at the first failure (earlier steps stay done, and a
/// backup always precedes the change it protects).
pub fn apply(steps: &[Step]) -> Result<Vec<String>, String> {
    let mut done = Vec::new();
    for step in steps {
        match step {
            Step::Backup { file, backup: to } => {
                backup(file, to)?;
                done.push(format!("backed up {} to {}", file.display(), to.display()));
            }
            Step::SetServEnv { file, value, .. } => {
                let text = fs::read_to_string(file)
                    .map_err(|e| format!("{}: cannot read: {e}", file.display()))?;
                replace(file, &rewrite_serv_env(&text, value))?;
                done.push(format!("set {SERV_ENV_KEY}={value} in {}", file.display()));
            }
            Step::Manual(_) => {}
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_civil_dates() {
        assert_eq!(timestamp(0), "19700101T000000Z");
        assert_eq!(timestamp(951_782_400), "20000229T000000Z");
        assert_eq!(timestamp(1_795_324_981), "20261122T052301Z");
    }

    #[test]
    fn rewrite_touches_only_the_key_line() {
        let t = "# c\nA=1\nLK_SERV_ENV=AZURE\nB=2";
        assert_eq!(rewrite_serv_env(t, "X"), "# c\nA=1\nLK_SERV_ENV=X\nB=2");
        assert_eq!(rewrite_serv_env("A=1", "X"), "A=1\nLK_SERV_ENV=X\n");
        assert_eq!(rewrite_serv_env("", "X"), "LK_SERV_ENV=X\n");
    }

    #[test]
    fn values_are_restricted() {
        assert!(valid_serv_env_value("ON_PREM-1.x"));
        assert!(!valid_serv_env_value(""));
        assert!(!valid_serv_env_value("a b"));
        assert!(!valid_serv_env_value("x;rm"));
        assert!(!valid_serv_env_value("\"q\""));
    }
}
