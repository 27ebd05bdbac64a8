//! Per-resource configuration: `KEY=value` files in the shell-variable syntax of
//! `/etc/default/LifeKeeper`, validated against the keys a kit declares.
//!
//! Sources, lowest precedence first: the key's default, LifeKeeper-wide tunables from
//! `/etc/default/LifeKeeper` (only keys declared [`Scope::LifeKeeper`]), the resource's own
//! `<conf dir>/<TAG>.conf`, then command-line flags. The resource file is strict: every line
//! must parse, every key must be known, each key appears once. LifeKeeper's own file is read
//! leniently (it holds many settings and shell constructs that are not ours), except that a
//! malformed value for a key we use is still an error. No value is ever expanded by a shell.

use crate::exit::Failure;
use crate::tag::Tag;
use std::fmt;
use std::path::{Path, PathBuf};

mod syntax;

pub use syntax::{Assignment, parse_assignment_line, parse_assignments};

/// Where the configuration lives; both paths overridable from the environment.
#[derive(Clone, Debug)]
pub struct Sources {
    /// Directory of `<TAG>.conf` files (`LKHELPERS_CONF_DIR`, default `/etc/lkhelpers`).
    pub conf_dir: PathBuf,
    /// LifeKeeper's defaults file (`LKHELPERS_LK_DEFAULTS`, default `/etc/default/LifeKeeper`).
    pub lk_defaults: PathBuf,
}

pub const DEFAULT_CONF_DIR: &str = "/etc/lkhelpers";
pub const DEFAULT_RUN_DIR: &str = "/run/lkhelpers";
pub const DEFAULT_LK_DEFAULTS: &str = "/etc/default/LifeKeeper";
/// The longest value a key takes, in bytes; a longer one is refused (exit 2).
pub const MAX_VALUE: usize = 4096;
/// How many characters of a refused value a message echoes.
pub const SHOWN_VALUE: usize = 200;

/// A path from the environment variable `name`, or `default` when it is unset or empty.
fn env_path(name: &str, default: &str) -> PathBuf {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// The directory for runtime state that must vanish at reboot (markers, pid files):
/// `$LKHELPERS_RUN_DIR`, default `/run/lkhelpers`. Kits keep their files below it.
pub fn run_dir() -> PathBuf {
    env_path("LKHELPERS_RUN_DIR", DEFAULT_RUN_DIR)
}

impl Sources {
    pub fn from_env() -> Sources {
        Sources {
            conf_dir: env_path("LKHELPERS_CONF_DIR", DEFAULT_CONF_DIR),
            lk_defaults: env_path("LKHELPERS_LK_DEFAULTS", DEFAULT_LK_DEFAULTS),
        }
    }

    /// The resource file of `tag`.
    pub fn resource_file(&self, tag: &Tag) -> PathBuf {
        self.conf_dir.join(format!("{tag}.conf"))
    }
}

/// The shape of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Any non-empty text.
    Text,
    /// One word: no whitespace.
    Word,
    /// An absolute path without `..` components.
    AbsPath,
    /// One or more words separated by whitespace (quote the value).
    List,
    /// A whole number within bounds (seconds, counts).
    Uint { min: u64, max: u64 },
    /// 0/1, yes/no, true/false, on/off; normalised to `1` or `0`.
    Bool,
    /// One of the listed words (case-insensitive; normalised to the listed spelling).
    Choice(&'static [&'static str]),
}

/// Who may set a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Only the resource file or the command line.
    Resource,
    /// A LifeKeeper tunable: read from `/etc/default/LifeKeeper`, overridable per resource.
    LifeKeeper,
}

/// One configuration key a kit understands.
#[derive(Clone, Copy, Debug)]
pub struct KeySpec {
    pub name: &'static str,
    pub kind: Kind,
    pub scope: Scope,
    pub default: Option<&'static str>,
    pub help: &'static str,
    /// The resource cannot work without it (shown in `--help` and OCF meta-data).
    pub required: bool,
}

impl KeySpec {
    /// A per-resource key.
    pub const fn resource(
        name: &'static str,
        kind: Kind,
        default: Option<&'static str>,
        help: &'static str,
    ) -> KeySpec {
        KeySpec {
            name,
            kind,
            scope: Scope::Resource,
            default,
            help,
            required: false,
        }
    }

    /// A LifeKeeper tunable (also settable per resource).
    pub const fn lifekeeper(
        name: &'static str,
        kind: Kind,
        default: Option<&'static str>,
        help: &'static str,
    ) -> KeySpec {
        KeySpec {
            name,
            kind,
            scope: Scope::LifeKeeper,
            default,
            help,
            required: false,
        }
    }

    /// The `TIMEOUT=` key every kit has: the deadline of each action, in seconds.
    pub const fn timeout(default: &'static str) -> KeySpec {
        KeySpec::resource(
            "TIMEOUT",
            Kind::Uint { min: 1, max: 3600 },
            Some(default),
            "seconds an action may take before it reports failure instead of waiting longer",
        )
    }

    /// The same key, marked as required.
    pub const fn required(mut self) -> KeySpec {
        self.required = true;
        self
    }

    /// The command-line flag that sets this key: `DEVICE` → `--device`, `ON_FENCED` → `--on-fenced`.
    pub fn flag(&self) -> String {
        format!("--{}", self.name.to_ascii_lowercase().replace('_', "-"))
    }

    /// Checks and normalises a raw value; the error says what is wrong and what would be right
    /// (echoing at most [`SHOWN_VALUE`] characters of it).
    pub fn validate(&self, value: &str) -> Result<String, String> {
        let name = self.name;
        if value.len() > MAX_VALUE {
            return Err(format!(
                "{name}='{}' is {} bytes long, the limit is {MAX_VALUE}: shorten it",
                crate::logging::shown(value, 40),
                value.len()
            ));
        }
        let shown = crate::logging::shown(value, SHOWN_VALUE);
        let raw = shown.as_str();
        if value.is_empty() {
            return Err(match self.default {
                Some(d) => format!(
                    "{name} is empty: give a value or remove the line to use the default ({d})"
                ),
                None => format!("{name} is empty: give a value"),
            });
        }
        match self.kind {
            Kind::Text => Ok(value.to_owned()),
            Kind::Word if value.chars().any(char::is_whitespace) => Err(format!(
                "{name}='{raw}' must be a single word without spaces"
            )),
            Kind::Word => Ok(value.to_owned()),
            Kind::AbsPath => {
                if !value.starts_with('/') {
                    Err(format!(
                        "{name}='{raw}' is not an absolute path: write it starting with '/'"
                    ))
                } else if value.split('/').any(|c| c == "..") {
                    Err(format!(
                        "{name}='{raw}' contains '..': write the path without it"
                    ))
                } else if value.chars().any(char::is_whitespace) {
                    Err(format!(
                        "{name}='{raw}' contains whitespace, which is not supported in paths here"
                    ))
                } else {
                    Ok(value.to_owned())
                }
            }
            Kind::List => {
                let words: Vec<&str> = value.split_whitespace().collect();
                if words.is_empty() {
                    Err(format!(
                        "{name} is blank: give one or more values separated by spaces"
                    ))
                } else {
                    Ok(words.join(" "))
                }
            }
            Kind::Uint { min, max } => {
                let bad = || {
                    format!(
                        "{name}='{raw}' is not a whole number from {min} to {max}: write e.g. {name}={}",
                        self.default.unwrap_or("1")
                    )
                };
                if !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                match value.parse::<u64>() {
                    Ok(n) if (min..=max).contains(&n) => Ok(n.to_string()),
                    _ => Err(bad()),
                }
            }
            Kind::Bool => match value.to_ascii_lowercase().as_str() {
                "1" | "yes" | "true" | "on" | "y" => Ok("1".into()),
                "0" | "no" | "false" | "off" | "n" => Ok("0".into()),
                _ => Err(format!(
                    "{name}='{raw}' is not a yes/no value: write {name}=1 or {name}=0"
                )),
            },
            Kind::Choice(words) => words
                .iter()
                .find(|w| w.eq_ignore_ascii_case(value))
                .map(|w| (*w).to_owned())
                .ok_or_else(|| format!("{name}='{raw}' is not one of: {}", words.join(", "))),
        }
    }
}

/// Where a value came from, for messages that name the file and line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Default,
    File {
        path: PathBuf,
        line: usize,
    },
    CommandLine,
    /// A Pacemaker resource parameter (`OCF_RESKEY_<key in lower case>`).
    OcfParameter,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("built-in default"),
            Origin::File { path, line } => write!(f, "{} line {line}", path.display()),
            Origin::CommandLine => f.write_str("command line"),
            Origin::OcfParameter => f.write_str("OCF parameter"),
        }
    }
}

/// One effective setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub key: &'static str,
    pub value: String,
    pub origin: Origin,
}

/// The validated, merged configuration of one resource.
#[derive(Clone, Debug, Default)]
pub struct Config {
    settings: Vec<Setting>,
}

impl Config {
    /// A configuration holding only defaults (and later, what [`Config::set`] adds).
    pub fn defaults(keys: &'static [KeySpec]) -> Config {
        let mut c = Config::default();
        for k in keys {
            if let Some(d) = k.default {
                c.put(k.name, d.to_owned(), Origin::Default);
            }
        }
        c
    }

    fn put(&mut self, key: &'static str, value: String, origin: Origin) {
        match self.settings.iter_mut().find(|s| s.key == key) {
            Some(s) => {
                s.value = value;
                s.origin = origin;
            }
            None => self.settings.push(Setting { key, value, origin }),
        }
    }

    /// Validates and sets one value from the command line.
    pub fn set(&mut self, keys: &'static [KeySpec], key: &str, raw: &str) -> Result<(), Failure> {
        self.set_from(keys, key, raw, Origin::CommandLine)
    }

    /// Validates and sets one value from `origin` (the command line or an OCF parameter);
    /// a refusal names the value the way its caller wrote it.
    pub fn set_from(
        &mut self,
        keys: &'static [KeySpec],
        key: &str,
        raw: &str,
        origin: Origin,
    ) -> Result<(), Failure> {
        let spec = find_key(keys, key)
            .ok_or_else(|| Failure::usage(unknown_key_message(&origin.to_string(), key, keys)))?;
        let value = spec.validate(raw).map_err(|e| {
            Failure::usage(match origin {
                Origin::OcfParameter => {
                    let p = spec.name.to_ascii_lowercase();
                    format!("parameter {p} (OCF_RESKEY_{p}): {e}")
                }
                _ => format!("command line {}: {e}", spec.flag()),
            })
        })?;
        self.put(spec.name, value, origin);
        Ok(())
    }

    /// The raw (normalised) value of a key, if set or defaulted.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.setting(key).map(|s| s.value.as_str())
    }

    pub fn setting(&self, key: &str) -> Option<&Setting> {
        self.settings.iter().find(|s| s.key == key)
    }

    /// A whole-number value (validated at load time).
    pub fn uint(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(|v| v.parse().ok())
    }

    /// A yes/no value (validated at load time).
    pub fn flag(&self, key: &str) -> Option<bool> {
        self.get(key).map(|v| v == "1")
    }

    /// The words of a list value; empty when unset.
    pub fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| v.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// The action deadline from `TIMEOUT=`, or 30 s when a kit declares no TIMEOUT key.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.uint("TIMEOUT").unwrap_or(30))
    }

    /// All effective settings, in declaration order of first appearance.
    pub fn settings(&self) -> &[Setting] {
        &self.settings
    }

    /// A usage failure about `key` that names where its value came from, for checks a kit makes
    /// beyond the value's shape (e.g. "DEVICE /dev/sdq does not exist").
    pub fn invalid(&self, key: &str, problem: &str) -> Failure {
        match self.setting(key) {
            Some(s) => Failure::usage(format!("{} ({}): {problem}", key, s.origin)),
            None => Failure::usage(format!("{key} is not set: {problem}")),
        }
    }

    /// Fails with a clear message unless `key` has a value.
    pub fn require(&self, key: &str, source: &Path) -> Result<&str, Failure> {
        self.get(key).ok_or_else(|| {
            Failure::usage(format!(
                "{key} is not set: add {key}=... to {}",
                source.display()
            ))
        })
    }
}

/// Looks up a declared key by exact name.
pub fn find_key(keys: &'static [KeySpec], name: &str) -> Option<&'static KeySpec> {
    keys.iter().find(|k| k.name == name)
}

fn unknown_key_message(place: &str, key: &str, keys: &'static [KeySpec]) -> String {
    let hint = match keys.iter().find(|k| k.name.eq_ignore_ascii_case(key)) {
        Some(k) => format!("did you mean {}?", k.name),
        None => format!(
            "known keys: {}",
            keys.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
        ),
    };
    let key = crate::logging::shown(key, 64);
    format!("{place}: unknown key '{key}': remove it or fix its spelling ({hint})")
}

/// Reads a configuration file the way [`crate::trusted`] says (no links, root's, not writable
/// by others, nor any directory above it); `Ok(None)` when it does not exist.
fn read_checked(path: &Path) -> Result<Option<Vec<u8>>, Failure> {
    crate::trusted::read_file(path)
}

type Read = Result<Option<Vec<u8>>, Failure>;
/// What the logger read of LifeKeeper's defaults file, left for the configuration to take.
static PRIMED: std::sync::Mutex<Option<(PathBuf, Read)>> = std::sync::Mutex::new(None);

/// LifeKeeper's defaults file at `path`, read through [`crate::trusted`] for the logger (its
/// syslog facility) and left for the configuration's next [`load`] in the same process, which
/// takes it instead of reading the file a second time; later loads (`watch` runs for days)
/// read it afresh.
pub fn read_lk_defaults(path: &Path) -> Read {
    let r = read_checked(path);
    *PRIMED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((path.to_path_buf(), r.clone()));
    r
}

/// LifeKeeper's defaults file: what the logger read just before, else read now.
fn take_lk_defaults(path: &Path) -> Read {
    let primed = PRIMED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    match primed {
        Some((p, r)) if p == path => r,
        _ => read_checked(path),
    }
}

/// How the resource file is treated when it does not exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// A missing resource file is a configuration error (the normal hook case).
    Refuse,
    /// Settings come from LifeKeeper's file and the command line only (`--no-config`).
    Allow,
    /// The resource file is not read even if it exists, and the overrides are the resource's
    /// OCF parameters (Pacemaker: settings come from the environment only).
    Skip,
}

/// Loads, validates and merges the configuration of `tag`, then applies command-line values.
pub fn load(
    keys: &'static [KeySpec],
    tag: &Tag,
    sources: &Sources,
    missing: Missing,
    overrides: &[(String, String)],
) -> Result<Config, Failure> {
    let mut config = Config::defaults(keys);

    if let Some(text) = take_lk_defaults(&sources.lk_defaults)? {
        let lk = &sources.lk_defaults;
        let lines = parse_assignments(&text, false)
            .map_err(|(n, e)| Failure::usage(format!("{} line {n}: {e}", lk.display())))?;
        for a in lines {
            let Some(spec) = find_key(keys, &a.key).filter(|k| k.scope == Scope::LifeKeeper) else {
                continue;
            };
            if a.value.is_empty() {
                continue;
            }
            let value = spec
                .validate(&a.value)
                .map_err(|e| Failure::usage(format!("{} line {}: {e}", lk.display(), a.line)))?;
            config.put(
                spec.name,
                value,
                Origin::File {
                    path: lk.clone(),
                    line: a.line,
                },
            );
        }
    }

    let path = sources.resource_file(tag);
    let text = match missing {
        Missing::Skip => None,
        _ => read_checked(&path)?,
    };
    match text {
        Some(text) => {
            let lines = parse_assignments(&text, true)
                .map_err(|(n, e)| Failure::usage(format!("{} line {n}: {e}", path.display())))?;
            let mut seen: Vec<(&'static str, usize)> = Vec::new();
            for a in lines {
                let place = format!("{} line {}", path.display(), a.line);
                let spec = find_key(keys, &a.key)
                    .ok_or_else(|| Failure::usage(unknown_key_message(&place, &a.key, keys)))?;
                if let Some((_, first)) = seen.iter().find(|(k, _)| *k == spec.name) {
                    return Err(Failure::usage(format!(
                        "{place}: {} is already set on line {first}: keep only one of the two lines",
                        spec.name
                    )));
                }
                seen.push((spec.name, a.line));
                let value = spec
                    .validate(&a.value)
                    .map_err(|e| Failure::usage(format!("{place}: {e}")))?;
                config.put(
                    spec.name,
                    value,
                    Origin::File {
                        path: path.clone(),
                        line: a.line,
                    },
                );
            }
        }
        None if missing == Missing::Refuse => {
            return Err(Failure::usage(format!(
                "{}: no such file: create it on this node with resource {tag}'s settings (see --help); every node needs its own file named after the tag the resource has on that node (LifeKeeper may give another tag when the resource is extended)",
                path.display()
            )));
        }
        None => {}
    }

    let origin = match missing {
        Missing::Skip => Origin::OcfParameter,
        _ => Origin::CommandLine,
    };
    for (k, v) in overrides {
        config.set_from(keys, k, v, origin.clone())?;
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::Exit;

    static KEYS: &[KeySpec] = &[
        KeySpec::timeout("20"),
        KeySpec::resource("DEVICE", Kind::List, None, "disks"),
        KeySpec::resource("MOUNTPOINT", Kind::AbsPath, None, "where"),
        KeySpec::resource("TYPE", Kind::Choice(&["wero", "ea"]), Some("wero"), "type"),
        KeySpec::resource("NAME", Kind::Word, None, "a word"),
        KeySpec::resource("NOTE", Kind::Text, None, "text"),
        KeySpec::lifekeeper("SCSIHALT", Kind::Bool, Some("1"), "halt"),
        KeySpec::lifekeeper(
            "FAILFASTTIMER",
            Kind::Uint { min: 1, max: 600 },
            Some("5"),
            "interval",
        ),
    ];

    struct Dir(PathBuf);
    impl Dir {
        fn new(name: &str) -> Dir {
            let d = std::env::temp_dir().join(format!("lkh-config-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            Dir(d)
        }
        fn sources(&self) -> Sources {
            Sources {
                conf_dir: self.0.clone(),
                lk_defaults: self.0.join("LifeKeeper"),
            }
        }
        fn write(&self, name: &str, text: &[u8]) -> PathBuf {
            let p = self.0.join(name);
            std::fs::write(&p, text).unwrap();
            p
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tag() -> Tag {
        Tag::parse("res1").unwrap()
    }

    fn load_text(name: &str, text: &[u8]) -> Result<Config, Failure> {
        let d = Dir::new(name);
        d.write("res1.conf", text);
        load(KEYS, &tag(), &d.sources(), Missing::Refuse, &[])
    }

    #[test]
    fn loads_and_merges_with_origins() {
        let d = Dir::new("merge");
        d.write("LifeKeeper", b"PATH=/bin:$PATH\nFAILFASTTIMER=9\nSCSIHALT=0\nweird line without equals\nLKROOT=/opt/LifeKeeper\n");
        let conf = d.write("res1.conf", b"DEVICE=/dev/sdb\nSCSIHALT=yes\nTYPE=ea\n");
        let c = load(
            KEYS,
            &tag(),
            &d.sources(),
            Missing::Refuse,
            &[("TIMEOUT".into(), "7".into())],
        )
        .unwrap();
        assert_eq!(c.list("DEVICE"), ["/dev/sdb"]);
        assert_eq!(c.uint("FAILFASTTIMER"), Some(9));
        assert_eq!(
            c.flag("SCSIHALT"),
            Some(true),
            "resource file overrides LifeKeeper's"
        );
        assert_eq!(c.get("TYPE"), Some("ea"));
        assert_eq!(c.timeout(), std::time::Duration::from_secs(7));
        assert_eq!(c.setting("TIMEOUT").unwrap().origin, Origin::CommandLine);
        assert_eq!(
            c.setting("DEVICE").unwrap().origin,
            Origin::File {
                path: conf.clone(),
                line: 1
            }
        );
        assert_eq!(
            c.setting("FAILFASTTIMER").unwrap().origin,
            Origin::File {
                path: d.0.join("LifeKeeper"),
                line: 2
            }
        );
        let f = c.invalid("DEVICE", "no such disk");
        assert!(f.message.contains("res1.conf line 1"), "{}", f.message);
    }

    #[test]
    fn defaults_apply_and_resource_only_keys_ignore_lifekeeper_file() {
        let d = Dir::new("defaults");
        d.write("LifeKeeper", b"DEVICE=/dev/evil\nTIMEOUT=99\n");
        d.write("res1.conf", b"NAME=x\n");
        let c = load(KEYS, &tag(), &d.sources(), Missing::Refuse, &[]).unwrap();
        assert_eq!(c.get("DEVICE"), None);
        assert_eq!(c.uint("TIMEOUT"), Some(20));
        assert_eq!(c.flag("SCSIHALT"), Some(true));
        assert_eq!(c.setting("TYPE").unwrap().origin, Origin::Default);
    }

    #[test]
    fn refuses_malformed_files_naming_file_line_and_fix() {
        let cases: &[(&[u8], usize, &str)] = &[
            (b"DEVICE\n", 1, "not a KEY=value"),
            (b"\nDEVICE = /dev/sdb\n", 2, "spaces around '='"),
            (b"DEVICE= /dev/sdb\n", 1, "spaces around '='"),
            (b"DEVICE=/dev/sdb /dev/sdc\n", 1, "double quotes"),
            (b"DEVICE=\"/dev/sdb\n", 1, "unterminated double quote"),
            (b"NAME='abc\n", 1, "unterminated single quote"),
            (b"NAME=\"a\"b c\n", 1, "double quotes"),
            (b"NOTE=\"$HOME\"\n", 1, "shell expansion"),
            (b"NOTE=`id`\n", 1, "shell expansion"),
            (b"NAME=a;reboot\n", 1, "shell syntax"),
            (b"1KEY=x\n", 1, "not a valid key name"),
            (b"DE-VICE=x\n", 1, "not a valid key name"),
            (b"DEVICE=/dev/sdb\r\n", 1, "carriage return"),
            (b"NAME=\xff\xfe\n", 1, "UTF-8"),
            (b"NAME=a\0b\n", 1, "NUL"),
            (b"device=/dev/sdb\n", 1, "did you mean DEVICE"),
            (b"COLOUR=blue\n", 1, "unknown key 'COLOUR'"),
            (
                b"DEVICE=/dev/sdb\nDEVICE=/dev/sdc\n",
                2,
                "already set on line 1",
            ),
            (b"TIMEOUT=abc\n", 1, "not a whole number"),
            (b"TIMEOUT=-5\n", 1, "not a whole number"),
            (b"TIMEOUT=0\n", 1, "from 1 to 3600"),
            (
                b"TIMEOUT=99999999999999999999999\n",
                1,
                "not a whole number",
            ),
            (b"TIMEOUT=\n", 1, "empty"),
            (b"SCSIHALT=maybe\n", 1, "yes/no"),
            (b"TYPE=wr-ex\n", 1, "not one of: wero, ea"),
            (b"MOUNTPOINT=mnt/data\n", 1, "absolute path"),
            (b"MOUNTPOINT=/mnt/../etc\n", 1, "'..'"),
            (b"NAME=\"two words\"\n", 1, "single word"),
            (b"NAME=x\\\n", 1, "lone backslash"),
        ];
        for (i, (text, line, needle)) in cases.iter().enumerate() {
            let f = load_text(&format!("bad{i}"), text).expect_err(&String::from_utf8_lossy(text));
            assert_eq!(f.exit, Exit::Usage, "{}", f.message);
            assert!(
                f.message.contains(&format!("res1.conf line {line}")),
                "case {i}: {}",
                f.message
            );
            assert!(
                f.message.contains(needle),
                "case {i}: expected '{needle}' in: {}",
                f.message
            );
        }
    }

    #[test]
    fn malformed_tunable_in_lifekeeper_file_is_an_error() {
        let d = Dir::new("lkbad");
        d.write("LifeKeeper", b"FAILFASTTIMER=fast\n");
        d.write("res1.conf", b"");
        let f = load(KEYS, &tag(), &d.sources(), Missing::Refuse, &[]).unwrap_err();
        assert!(
            f.message
                .contains("LifeKeeper line 1: FAILFASTTIMER='fast'"),
            "{}",
            f.message
        );
    }

    #[test]
    fn missing_file_is_refused_unless_allowed() {
        let d = Dir::new("missing");
        let f = load(KEYS, &tag(), &d.sources(), Missing::Refuse, &[]).unwrap_err();
        assert_eq!(f.exit, Exit::Usage);
        assert!(
            f.message.contains("res1.conf: no such file"),
            "{}",
            f.message
        );
        let c = load(
            KEYS,
            &tag(),
            &d.sources(),
            Missing::Allow,
            &[("DEVICE".into(), "/dev/sdx".into())],
        )
        .unwrap();
        assert_eq!(c.list("DEVICE"), ["/dev/sdx"]);
    }

    #[test]
    fn command_line_values_are_validated() {
        let d = Dir::new("cli");
        let f = load(
            KEYS,
            &tag(),
            &d.sources(),
            Missing::Allow,
            &[("TIMEOUT".into(), "soon".into())],
        )
        .unwrap_err();
        assert!(
            f.message.contains("command line --timeout"),
            "{}",
            f.message
        );
        let f = load(
            KEYS,
            &tag(),
            &d.sources(),
            Missing::Allow,
            &[("NOPE".into(), "1".into())],
        )
        .unwrap_err();
        assert!(f.message.contains("unknown key 'NOPE'"), "{}", f.message);
    }

    #[test]
    fn permissions_are_checked() {
        use std::os::unix::fs::PermissionsExt;
        let d = Dir::new("perm");
        let p = d.write("res1.conf", b"NAME=x\n");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        let s = d.sources();
        let f = load(KEYS, &tag(), &s, Missing::Refuse, &[]).unwrap_err();
        assert_eq!(f.exit, Exit::Usage);
        assert!(
            f.message.contains("writable by group or others"),
            "{}",
            f.message
        );
        assert!(f.message.contains("chmod go-w"), "{}", f.message);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(load(KEYS, &tag(), &s, Missing::Refuse, &[]).is_ok());
        if nix::unistd::geteuid().is_root() {
            nix::unistd::chown(&p, Some(nix::unistd::Uid::from_raw(1234)), None).unwrap();
            let f = load(KEYS, &tag(), &s, Missing::Refuse, &[]).unwrap_err();
            assert!(f.message.contains("owned by uid 1234"), "{}", f.message);
        }
        // the directory that holds it: neither 0777 nor 1777
        std::fs::remove_file(&p).unwrap();
        let p = d.write("res1.conf", b"NAME=x\n");
        for mode in [0o777, 0o1777] {
            std::fs::set_permissions(&d.0, std::fs::Permissions::from_mode(mode)).unwrap();
            let f = load(KEYS, &tag(), &s, Missing::Refuse, &[]).unwrap_err();
            assert!(f.message.contains("chmod 0755"), "{mode:o}: {}", f.message);
        }
        std::fs::set_permissions(&d.0, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink(d.0.join("elsewhere"), &p).unwrap();
        let f = load(KEYS, &tag(), &s, Missing::Refuse, &[]).unwrap_err();
        assert!(f.message.contains("symbolic link"), "{}", f.message);
        std::fs::remove_file(&p).unwrap();
        std::fs::create_dir(&p).unwrap();
        let f = load(KEYS, &tag(), &s, Missing::Refuse, &[]).unwrap_err();
        assert!(f.message.contains("not a regular file"), "{}", f.message);
    }

    #[test]
    fn long_values_are_refused_and_never_echoed_whole() {
        let big = format!("DEVICE=\"{}\"\n", "/dev/sdb ".repeat(12_000));
        let f = load_text("big", big.as_bytes()).unwrap_err();
        assert_eq!(f.exit, Exit::Usage);
        assert!(f.message.contains("the limit is 4096"), "{}", f.message);
        assert!(f.message.len() < 400, "{}", f.message.len());
        let f = load_text("bigline", "x".repeat(100_000).as_bytes()).unwrap_err();
        assert!(f.message.len() < 400, "{}", f.message.len());
        let f = load_text("bigkey", format!("{}=1", "K".repeat(100_000)).as_bytes()).unwrap_err();
        assert!(f.message.len() < 400, "{}", f.message.len());
        let spec = KeySpec::resource("N", Kind::Word, None, "");
        let e = spec
            .validate(&format!("{} b", "a".repeat(1000)))
            .unwrap_err();
        assert!(e.len() < 300 && e.contains("…"), "{e}");
    }

    #[test]
    fn flags_name_keys() {
        assert_eq!(KEYS[6].flag(), "--scsihalt");
        assert_eq!(
            KeySpec::resource("ON_FENCED", Kind::Text, None, "").flag(),
            "--on-fenced"
        );
    }
}
