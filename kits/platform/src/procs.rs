//! Is LifeKeeper (or another daemon, by name) running? Found by walking `<root>/proc`.
//!
//! A process counts as LifeKeeper when its command name (`comm`) or the
//! base name of its `argv[0]` is one of LifeKeeper's daemons: `lcm` (the
//! communications manager), `lcd` (configuration database), `lkcheck`
//! (the periodic quickCheck driver), `lkscsid`/`lkccissd` (SCSI
//! reservation monitors), `ttymonlcm`, `lk_logmgr` and `lkguarded`. The
//! first five appear in SIOS's documentation; the others are inferred from
//! LifeKeeper installations and only widen the net (refusing too often is
//! the safe error here).

use std::fs;
use std::path::Path;

/// Daemon names that mean "LifeKeeper is running".
pub const LK_DAEMONS: &[&str] = &[
    "lcm",
    "lcd",
    "lkcheck",
    "lkscsid",
    "lkccissd",
    "ttymonlcm",
    "lk_logmgr",
    "lkguarded",
];

/// A LifeKeeper process found running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LkProcess {
    pub pid: u32,
    pub name: String,
}

/// Lists LifeKeeper processes under `<root>/proc`. Processes that vanish
/// while we look are skipped. An unreadable `/proc` is an error, because
/// "cannot tell" must not pass for "not running".
pub fn lifekeeper_processes(root: &Path) -> Result<Vec<LkProcess>, String> {
    named(root, LK_DAEMONS).map(|f| f.matches)
}

/// What a walk of `<root>/proc` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// The processes whose `comm` or `argv[0]` base name is one of the names, by pid.
    pub matches: Vec<LkProcess>,
    /// How many processes were seen at all (none: a captured tree without processes).
    pub processes: usize,
}

/// The processes under `<root>/proc` named one of `names` (`comm`, or the base name of
/// `argv[0]`). Processes that vanish while we look are skipped; an unreadable `/proc` is an
/// error.
pub fn named(root: &Path, names: &[&str]) -> Result<Found, String> {
    let proc_dir = root.join("proc");
    let entries = fs::read_dir(&proc_dir)
        .map_err(|e| format!("{}: cannot list processes: {e}", proc_dir.display()))?;
    let mut found = Found::default();
    for entry in entries.filter_map(Result::ok) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        found.processes += 1;
        let dir = entry.path();
        let comm = fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let comm = comm.trim();
        let argv0 = fs::read(dir.join("cmdline"))
            .ok()
            .and_then(|b| {
                b.split(|&c| c == 0)
                    .next()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
            })
            .unwrap_or_default();
        let base = argv0.rsplit('/').next().unwrap_or("");
        if let Some(name) = [comm, base].into_iter().find(|n| names.contains(n)) {
            found.matches.push(LkProcess {
                pid,
                name: name.to_string(),
            });
        }
    }
    found.matches.sort_by_key(|p| p.pid);
    Ok(found)
}
