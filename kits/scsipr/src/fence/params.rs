//! What the agent is asked: its parameters, from `key=value` lines on stdin (as Pacemaker's
//! fencer passes them) or from the command line, checked into a [`Request`] before anything
//! is touched.
//!
//! [`PARAMS`] is the one table of the parameters: their names and older aliases, options,
//! types, defaults and descriptions. Parsing (stdin and command line), the unknown-key
//! messages, the metadata and `--help` ([`super::doc`]) all read it, so no parameter can be
//! known to one and missing from another.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::keymap::KeyMap;

/// The name the binary answers to as a fence agent.
pub const AGENT: &str = "fence_lkhscsipr";

/// What a parameter's value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Text (the metadata's `string`).
    Text,
    /// Whole seconds within `min..=max` (fence-agents' `second`).
    Seconds { min: u64, max: u64 },
    /// How much to log: `-v` counted on the command line, `verbose=yes` or a number on stdin
    /// (`boolean`).
    Verbosity,
    /// `-h`: print the help (`boolean`); the command line only.
    Help,
    /// `-V`: print the version (`boolean`); the command line only.
    Version,
}

/// One parameter of the agent.
#[derive(Debug)]
pub struct Param {
    /// Its name on stdin (`name=value`), in the metadata and in the parsed parameters.
    pub name: &'static str,
    /// Older names stdin accepts for it (read after lower-casing and `-` → `_`).
    pub aliases: &'static [&'static str],
    /// Its short option (`-o`).
    pub short: Option<char>,
    /// Its long options (`--action`), the first one shown in the metadata.
    pub long: &'static [&'static str],
    /// What its value is called in the metadata's getopt (`--action=[action]`); `None` for
    /// a switch.
    pub value: Option<&'static str>,
    pub kind: Kind,
    pub required: bool,
    pub default: Option<&'static str>,
    /// Shown in the metadata and `--help`; `false` for a name only Pacemaker passes.
    pub listed: bool,
    pub description: &'static str,
    /// An older name that the metadata lists as a deprecated parameter of its own, and its
    /// description.
    pub deprecated: Option<(&'static str, &'static str)>,
    /// How `--help`'s usage line shows it.
    pub usage: Option<&'static str>,
}

pub const ACTION: Param = Param {
    name: "action",
    aliases: &["option"],
    short: Some('o'),
    long: &["action", "option"],
    value: Some("action"),
    kind: Kind::Text,
    required: true,
    default: Some("off"),
    listed: true,
    description: "Fencing action",
    deprecated: None,
    usage: Some("-o ACTION"),
};

pub const PLUG: Param = Param {
    name: "plug",
    aliases: &["port"],
    short: Some('n'),
    long: &["plug", "port"],
    value: Some("nodename"),
    kind: Kind::Text,
    required: true,
    default: None,
    listed: true,
    description: "Name of the node to fence (off), unfence (on, run on that node) or query (status): one of the names in keys",
    deprecated: Some((
        "port",
        "Name of the node to fence (deprecated name of plug)",
    )),
    usage: Some("[-n NODE]"),
};

/// Pacemaker passes the target as `nodename` too; `plug` wins.
pub const NODENAME: Param = Param {
    name: "nodename",
    aliases: &[],
    short: None,
    long: &[],
    value: None,
    kind: Kind::Text,
    required: false,
    default: None,
    listed: false,
    description: "",
    deprecated: None,
    usage: None,
};

pub const DEVICES: Param = Param {
    name: "devices",
    aliases: &[],
    short: Some('d'),
    long: &["devices"],
    value: Some("devices"),
    kind: Kind::Text,
    required: true,
    default: None,
    listed: true,
    description: "The shared disks, separated by commas: /dev/disk/by-id/... names (the same on every node), /dev/sdX or dm-multipath devices (/dev/mapper/NAME); each must support SCSI-3 persistent reservations",
    deprecated: None,
    usage: Some("--devices DEV[,DEV...]"),
};

pub const KEYS: Param = Param {
    name: "keys",
    aliases: &[],
    short: None,
    long: &["keys"],
    value: Some("map"),
    kind: Kind::Text,
    required: true,
    default: None,
    listed: true,
    description: "Every cluster node's reservation key, as NAME:KEY separated by commas, e.g. node-a:0x4c4b0123456789ab,node-b:0x4c4bfedcba987654 (each node's key: `lkh-scsipr node-key` on that node). Refused: a name or a key twice, an unknown plug; nothing is changed while a key registered on a device is in no entry",
    deprecated: None,
    usage: Some("--keys NAME:KEY[,NAME:KEY...]"),
};

pub const DELAY: Param = Param {
    name: "delay",
    aliases: &[],
    short: None,
    long: &["delay"],
    value: Some("seconds"),
    kind: Kind::Seconds { min: 0, max: 3600 },
    required: false,
    default: Some("0"),
    listed: true,
    description: "Wait X seconds before fencing is started",
    deprecated: None,
    usage: Some("[--delay S]"),
};

/// Its default is fence-agents'.
pub const POWER_TIMEOUT: Param = Param {
    name: "power_timeout",
    aliases: &["timeout"],
    short: None,
    long: &["power-timeout", "power_timeout"],
    value: Some("seconds"),
    kind: Kind::Seconds { min: 1, max: 600 },
    required: false,
    default: Some("20"),
    listed: true,
    description: "Every action (after the delay) finishes or fails within X seconds",
    deprecated: None,
    usage: Some("[--power-timeout S]"),
};

pub const VERBOSE: Param = Param {
    name: "verbose",
    aliases: &[],
    short: Some('v'),
    long: &["verbose"],
    value: None,
    kind: Kind::Verbosity,
    required: false,
    default: None,
    listed: true,
    description: "Verbose mode: debug detail (SCSI commands) on stderr",
    deprecated: None,
    usage: Some("[-v]"),
};

pub const VERSION: Param = Param {
    name: "version",
    aliases: &[],
    short: Some('V'),
    long: &["version"],
    value: None,
    kind: Kind::Version,
    required: false,
    default: None,
    listed: true,
    description: "Display version information and exit",
    deprecated: None,
    usage: None,
};

pub const HELP: Param = Param {
    name: "help",
    aliases: &[],
    short: Some('h'),
    long: &["help"],
    value: None,
    kind: Kind::Help,
    required: false,
    default: None,
    listed: true,
    description: "Display help and exit",
    deprecated: None,
    usage: None,
};

/// Every parameter, in the order the metadata and `--help` show them.
pub const PARAMS: [&Param; 10] = [
    &ACTION,
    &PLUG,
    &NODENAME,
    &DEVICES,
    &KEYS,
    &DELAY,
    &POWER_TIMEOUT,
    &VERBOSE,
    &VERSION,
    &HELP,
];

impl Param {
    /// A parameter stdin may give (help and version are options only).
    pub fn on_stdin(&self) -> bool {
        !matches!(self.kind, Kind::Help | Kind::Version)
    }

    /// Whether `flag` (`-o`, `--action`) is one of its options.
    fn is_flag(&self, flag: &str) -> bool {
        match flag.strip_prefix("--") {
            Some(l) => self.long.contains(&l),
            None => {
                let mut c = flag.chars();
                c.next() == Some('-')
                    && self.short.is_some_and(|s| c.next() == Some(s))
                    && c.next().is_none()
            }
        }
    }

    /// How the options that take a value (and the verbosity switch) are named in the
    /// unknown-option message: `-o/--action`, `--keys`, `-v`.
    fn option_hint(&self) -> Option<String> {
        let long = self.long.first()?;
        Some(match (self.short, self.kind) {
            (Some(s), Kind::Verbosity) => format!("-{s}"),
            (_, Kind::Help | Kind::Version | Kind::Verbosity) => return None,
            (Some(s), _) => format!("-{s}/--{long}"),
            (None, _) => format!("--{long}"),
        })
    }
}

/// `-v`, `-vv`, …: the verbosity switch given more than once.
fn repeated_verbose(flag: &str) -> bool {
    flag.strip_prefix('-')
        .is_some_and(|r| !r.is_empty() && r.chars().all(|c| Some(c) == VERBOSE.short))
}

/// The parameters a stdin key is not: ignored, and logged at debug level.
pub fn unknown(params: &BTreeMap<String, String>) -> impl Iterator<Item = &str> {
    params
        .keys()
        .map(String::as_str)
        .filter(|k| !PARAMS.iter().any(|p| p.on_stdin() && p.name == *k))
}

/// The fence agent's actions (FenceAgentAPI's `action=`), apart from LifeKeeper's hook actions
/// (`lkh_common::Action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FenceAction {
    On,
    Off,
    Status,
    Monitor,
    List,
    Metadata,
    ValidateAll,
}

impl FenceAction {
    fn parse(s: &str) -> Result<FenceAction, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "on" | "enable" => FenceAction::On,
            "off" | "disable" => FenceAction::Off,
            "status" => FenceAction::Status,
            "monitor" => FenceAction::Monitor,
            "list" => FenceAction::List,
            "metadata" | "meta-data" => FenceAction::Metadata,
            "validate-all" => FenceAction::ValidateAll,
            "reboot" => {
                return Err(
                    "action reboot is not supported: fabric fencing cuts the node off the disk and has no reboot; configure Pacemaker to use off (pcmk_reboot_action=off)"
                        .into(),
                );
            }
            other => {
                return Err(format!(
                    "unknown action {other:?}: use on, off, status, monitor, list, metadata or validate-all"
                ));
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            FenceAction::On => "on",
            FenceAction::Off => "off",
            FenceAction::Status => "status",
            FenceAction::Monitor => "monitor",
            FenceAction::List => "list",
            FenceAction::Metadata => "metadata",
            FenceAction::ValidateAll => "validate-all",
        }
    }

    /// Actions that name a node.
    pub fn needs_plug(self) -> bool {
        matches!(
            self,
            FenceAction::On | FenceAction::Off | FenceAction::Status
        )
    }

    /// Actions that use the devices.
    fn needs_devices(self) -> bool {
        !matches!(self, FenceAction::List | FenceAction::Metadata)
    }
}

/// A checked request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub action: FenceAction,
    pub plug: Option<String>,
    pub devices: Vec<PathBuf>,
    pub keys: Option<KeyMap>,
    pub delay: Duration,
    pub timeout: Duration,
    pub verbosity: u8,
}

/// What the command line asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    Help,
    Version,
    Params(BTreeMap<String, String>),
}

/// Normalises an option name: lower case, `-` → `_`, the deprecated aliases to their names.
fn canonical(name: &str) -> String {
    let n = name.trim().to_ascii_lowercase().replace('-', "_");
    match PARAMS.iter().find(|p| p.aliases.contains(&n.as_str())) {
        Some(p) => p.name.into(),
        None => n,
    }
}

/// `key=value` lines (stdin): `#` comments and blank lines skipped, lines without `=` and
/// unknown keys ignored (logged at debug level later), the last value wins.
pub fn parse_stdin(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.insert(canonical(k), v.trim().to_owned());
        }
    }
    out
}

/// Command-line options. Unknown options are refused: a misspelt `--devcies` must not be
/// ignored by hand.
pub fn parse_cli(args: &[String]) -> Result<Parsed, String> {
    let mut out = BTreeMap::new();
    let mut verbose = 0usize;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => match arg.as_str() {
                a if a.len() > 2
                    && a.is_char_boundary(2)
                    && a.starts_with('-')
                    && !a.starts_with("--")
                    && !repeated_verbose(a) =>
                {
                    (a[..2].to_owned(), Some(a[2..].to_owned()))
                }
                a => (a.to_owned(), None),
            },
        };
        let name = match PARAMS.iter().find(|p| p.is_flag(&flag)) {
            Some(p) => match p.kind {
                Kind::Help => return Ok(Parsed::Help),
                Kind::Version => return Ok(Parsed::Version),
                Kind::Verbosity => {
                    verbose += 1;
                    continue;
                }
                Kind::Text | Kind::Seconds { .. } => p.name,
            },
            None if repeated_verbose(&flag) => {
                verbose += flag.len() - 1;
                continue;
            }
            None if flag.starts_with('-') => {
                let options: Vec<String> = PARAMS.iter().filter_map(|p| p.option_hint()).collect();
                return Err(format!(
                    "unknown option {flag}: see {AGENT} --help (options: {})",
                    options.join(", ")
                ));
            }
            None => {
                return Err(format!(
                    "unexpected argument {flag:?}: options take the form --name=value or --name value (see {AGENT} --help)"
                ));
            }
        };
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))?,
        };
        out.insert(name.to_owned(), value);
    }
    if verbose > 0 {
        out.insert(VERBOSE.name.into(), verbose.to_string());
    }
    Ok(Parsed::Params(out))
}

/// A [`Kind::Seconds`] parameter's value, its default when not given.
fn seconds(params: &BTreeMap<String, String>, p: &Param) -> Result<u64, String> {
    let (name, default) = (p.name, p.default.unwrap_or("0"));
    let Kind::Seconds { min, max } = p.kind else {
        return Err(format!("{name} is not a number of seconds"));
    };
    let raw = params.get(name).map_or(default, String::as_str);
    // fence-agents' "second" type; a trailing "s" and a fraction are tolerated
    let t = raw.trim().trim_end_matches('s');
    let v = t
        .split_once('.')
        .map_or(t, |(i, _)| i)
        .parse::<u64>()
        .map_err(|_| {
            format!("{name}={raw:?} is not a number of seconds: write e.g. {name}={default}")
        })?;
    if !(min..=max).contains(&v) {
        return Err(format!(
            "{name}={v} is out of range: use {min} to {max} seconds"
        ));
    }
    Ok(v)
}

pub fn verbosity(params: &BTreeMap<String, String>) -> u8 {
    match params
        .get(VERBOSE.name)
        .map(|v| v.trim().to_ascii_lowercase())
    {
        None => 0,
        Some(v) => match v.as_str() {
            "" | "0" | "no" | "false" | "off" => 0,
            "1" | "yes" | "true" | "on" => 1,
            n => n.parse::<u8>().unwrap_or(1),
        },
    }
}

impl Request {
    /// Checks every parameter; touches nothing (not even the device names).
    pub fn from_params(params: &BTreeMap<String, String>) -> Result<Request, String> {
        let action = FenceAction::parse(
            params
                .get(ACTION.name)
                .map(String::as_str)
                .or(ACTION.default)
                .unwrap_or_default(),
        )?;
        // Pacemaker passes the target as plug (or port) and as nodename
        let plug = params
            .get(PLUG.name)
            .or_else(|| params.get(NODENAME.name))
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty());
        let devices: Vec<PathBuf> = params
            .get(DEVICES.name)
            .map(|d| {
                d.split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        let keys = match params.get(KEYS.name) {
            Some(k) => Some(KeyMap::parse(k)?),
            None => None,
        };
        let delay = seconds(params, &DELAY)?;
        let timeout = seconds(params, &POWER_TIMEOUT)?;
        let req = Request {
            action,
            plug,
            devices,
            keys,
            delay: Duration::from_secs(delay),
            timeout: Duration::from_secs(timeout),
            verbosity: verbosity(params),
        };
        if matches!(action, FenceAction::Metadata) {
            return Ok(req);
        }
        let Some(map) = &req.keys else {
            return Err("no keys given: write keys=node-a:0x4c4b…,node-b:0x4c4b… (each node's key: `lkh-scsipr node-key` on that node)".into());
        };
        if action.needs_devices() {
            if req.devices.is_empty() {
                return Err("no devices given: write devices=/dev/disk/by-id/… (the shared disks, separated by commas)".into());
            }
            if let Some(d) = req.devices.iter().find(|d| !d.is_absolute()) {
                return Err(format!(
                    "devices: {} is not an absolute path: write e.g. /dev/disk/by-id/wwn-…",
                    d.display()
                ));
            }
        }
        // Only on, off and status name a node: Pacemaker passes a placeholder plug with
        // validate-all (its own node name), which must not be refused.
        match &req.plug {
            Some(p) if action.needs_plug() => {
                map.victim(p)?;
            }
            None if action.needs_plug() => {
                return Err(format!(
                    "no plug given: {} needs the node's name (plug=NAME, one of {})",
                    action.name(),
                    map.names().join(", ")
                ));
            }
            _ => {}
        }
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn params(p: Parsed) -> BTreeMap<String, String> {
        match p {
            Parsed::Params(p) => p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stdin_lines() {
        let p = parse_stdin(
            "# from the fencer\naction=reboot\nnodename=node-a\n port = node-b \nnot a pair\n\ncolour=blue\naction=off\npower-timeout=7\n",
        );
        assert_eq!(p["action"], "off", "last wins");
        assert_eq!(p["plug"], "node-b", "port is plug, trimmed");
        assert_eq!(p["power_timeout"], "7");
        assert_eq!(p["colour"], "blue", "unknown keys kept, then ignored");
        assert!(!p.contains_key("not a pair"));
        let mut p = p;
        p.insert("devices".into(), "/dev/sdb, /dev/sdc".into());
        p.insert(
            "keys".into(),
            "node-a:0x4c4b0000000000a1,node-b:0x4c4b0000000000b2".into(),
        );
        let r = Request::from_params(&p).unwrap();
        assert_eq!(r.action, FenceAction::Off);
        assert_eq!(r.plug.as_deref(), Some("node-b"));
        assert_eq!(
            r.devices,
            vec![PathBuf::from("/dev/sdb"), PathBuf::from("/dev/sdc")]
        );
        assert_eq!(r.timeout, Duration::from_secs(7));
        assert_eq!(r.delay, Duration::ZERO);
        // nodename alone names the target
        let p = parse_stdin(
            "action=status\nnodename=node-a\ndevices=/dev/sdb\nkeys=node-a:1,node-b:2\n",
        );
        assert_eq!(
            Request::from_params(&p).unwrap().plug.as_deref(),
            Some("node-a")
        );
    }

    #[test]
    fn command_line() {
        let p = params(
            parse_cli(&s(&[
                "-o",
                "status",
                "-nnode-a",
                "--devices=/dev/sdb",
                "--keys",
                "node-a:1,node-b:2",
                "--delay",
                "3",
                "--power_timeout=9",
                "-vv",
            ]))
            .unwrap(),
        );
        let r = Request::from_params(&p).unwrap();
        assert_eq!(r.action, FenceAction::Status);
        assert_eq!(r.plug.as_deref(), Some("node-a"));
        assert_eq!(r.delay, Duration::from_secs(3));
        assert_eq!(r.timeout, Duration::from_secs(9));
        assert_eq!(r.verbosity, 2);
        assert_eq!(parse_cli(&s(&["-h"])).unwrap(), Parsed::Help);
        assert_eq!(parse_cli(&s(&["--version"])).unwrap(), Parsed::Version);
        assert!(
            parse_cli(&s(&["--devcies", "/dev/sdb"]))
                .unwrap_err()
                .contains("unknown option --devcies")
        );
        assert!(
            parse_cli(&s(&["off"]))
                .unwrap_err()
                .contains("unexpected argument")
        );
        assert!(
            parse_cli(&s(&["-o"]))
                .unwrap_err()
                .contains("needs a value")
        );
        // no panic on any input
        for odd in ["-é", "-éx", "--é=1", "-", "--", "=", "-o=", "--keys="] {
            let _ = parse_cli(&s(&[odd]));
        }
        assert!(
            parse_cli(&s(&["-éx"]))
                .unwrap_err()
                .contains("unknown option")
        );
        // the default action is off, as fence_scsi's
        let p = params(
            parse_cli(&s(&[
                "-n",
                "node-a",
                "-d",
                "/dev/sdb",
                "--keys",
                "node-a:1,node-b:2",
            ]))
            .unwrap(),
        );
        assert_eq!(Request::from_params(&p).unwrap().action, FenceAction::Off);
    }

    #[test]
    fn bad_requests_are_refused() {
        let req = |extra: &[(&str, &str)]| {
            let mut p: BTreeMap<String, String> = [
                ("action", "off"),
                ("plug", "node-a"),
                ("devices", "/dev/sdb"),
                ("keys", "node-a:1,node-b:2"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            for (k, v) in extra {
                if v.is_empty() {
                    p.remove(*k);
                } else {
                    p.insert(k.to_string(), v.to_string());
                }
            }
            Request::from_params(&p)
        };
        assert!(req(&[]).is_ok());
        let e = req(&[("action", "reboot")]).unwrap_err();
        assert!(e.contains("reboot is not supported"), "{e}");
        assert!(
            req(&[("action", "dance")])
                .unwrap_err()
                .contains("unknown action")
        );
        let e = req(&[("plug", "node-c")]).unwrap_err();
        assert!(
            e.contains("\"node-c\" is not in keys=") && e.contains("node-a, node-b"),
            "{e}"
        );
        assert!(req(&[("plug", "")]).unwrap_err().contains("no plug"));
        assert!(req(&[("devices", "")]).unwrap_err().contains("no devices"));
        assert!(req(&[("devices", "sdb")]).unwrap_err().contains("absolute"));
        assert!(req(&[("keys", "")]).unwrap_err().contains("no keys"));
        assert!(req(&[("delay", "soon")]).unwrap_err().contains("delay"));
        assert!(
            req(&[("power_timeout", "0")])
                .unwrap_err()
                .contains("out of range")
        );
        assert!(
            req(&[("power_timeout", "601")])
                .unwrap_err()
                .contains("out of range")
        );
        assert_eq!(
            req(&[("delay", "2s")]).unwrap().delay,
            Duration::from_secs(2)
        );
        // list and monitor need no plug; metadata needs nothing at all
        assert!(req(&[("action", "monitor"), ("plug", "")]).is_ok());
        // Pacemaker's validate-all passes its own node name as a placeholder plug
        assert!(req(&[("action", "validate-all"), ("plug", "node1")]).is_ok());
        assert!(req(&[("action", "list"), ("plug", ""), ("devices", "")]).is_ok());
        let mut only = BTreeMap::new();
        only.insert("action".to_string(), "metadata".to_string());
        assert!(Request::from_params(&only).is_ok());
    }

    /// The names and options come from [`PARAMS`] alone: stdin's older names, the command
    /// line's options (`--timeout` is stdin's only), the defaults, the unknown-option hint.
    #[test]
    fn table_drives_names_and_defaults() {
        let p = parse_stdin("Option=on\ntimeout=9\nport=node-b\nPower-Timeout=8\nhelp=1\n");
        assert_eq!(p["action"], "on");
        assert_eq!(
            p["power_timeout"], "8",
            "the last of timeout and power-timeout wins"
        );
        assert_eq!(p["plug"], "node-b");
        assert_eq!(unknown(&p).collect::<Vec<_>>(), vec!["help"]);
        let p =
            params(parse_cli(&s(&["--option", "on", "--port=n", "--power_timeout", "3"])).unwrap());
        assert_eq!((p["action"].as_str(), p["plug"].as_str()), ("on", "n"));
        assert_eq!(p["power_timeout"], "3");
        assert_eq!(
            parse_cli(&s(&["--timeout", "9"])).unwrap_err(),
            "unknown option --timeout: see fence_lkhscsipr --help (options: -o/--action, -n/--plug, -d/--devices, --keys, --delay, --power-timeout, -v)"
        );
        assert_eq!(
            params(parse_cli(&s(&["-vvv", "--verbose", "-v"])).unwrap())["verbose"],
            "5"
        );
        let mut only = BTreeMap::new();
        only.insert("action".to_string(), "metadata".to_string());
        let r = Request::from_params(&only).unwrap();
        assert_eq!(
            (r.delay, r.timeout),
            (Duration::ZERO, Duration::from_secs(20))
        );
        for p in PARAMS
            .iter()
            .filter(|p| matches!(p.kind, Kind::Seconds { .. }))
        {
            assert!(seconds(&BTreeMap::new(), p).is_ok(), "{}", p.name);
        }
    }
}
