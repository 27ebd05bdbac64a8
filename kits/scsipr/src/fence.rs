//! `fence_lkhscsipr`: a Pacemaker fence agent (ClusterLabs' FenceAgentAPI) on SCSI-3
//! persistent reservations, the same binary as `lkh-scsipr` called by that name (a link
//! `/usr/sbin/fence_lkhscsipr` → `lkh-scsipr`).
//!
//! Arguments come as `key=value` lines on stdin when there are no command-line arguments (as
//! Pacemaker's fencer passes them: `#` comments, unknown keys ignored, the last value wins), or
//! as options (`-o/--action`, `-n/--plug`, `--devices`, `--keys`, `--delay`,
//! `--power-timeout`, `-v`). Actions: `on` (unfence the node it runs on: register its key on
//! every path of every device, reserve when nobody holds), `off` (register this node's key,
//! then PREEMPT AND ABORT the victim's key; verified), `status` (0 on, 2 off, 1 error),
//! `monitor` (reads keys and reservation of every device), `list`, `metadata`,
//! `validate-all`. No `reboot`: fabric fencing has none. Everything after `--delay` finishes
//! within `power_timeout` seconds (a worker thread abandoned at the deadline).
//!
//! # The key map, and why a typo fences nobody
//!
//! Keys are random per node (`<conf dir>/node.key`, `lkh-scsipr node-key` prints it), so the
//! agent is told which key is whose: `keys=node-a:0x4c4b…,node-b:0x4c4b…`. Its rules:
//! - the map itself: every entry `NAME:KEY`, a valid non-zero key, no name twice, **no key
//!   twice** (two nodes with one key cannot be told apart, fencing one would fence both);
//! - the plug must be a name in the map: an unknown plug is refused, listing the names;
//! - `off` runs on a survivor: this node's own key must be in the map under a name that is not
//!   the plug (our own key is never preempted; the map is proven right for us);
//! - **every key registered on a device must be in the map** before anything is changed on
//!   any device: a mistyped victim key leaves the victim's real key unaccounted for, so the
//!   agent refuses (exit 1) and changes nothing;
//! - "off" without preempting anything (the victim's key is not registered) is reported only
//!   with that proof: every registration belongs to another node of the map and a reservation
//!   exists, so the victim cannot write; `status` says 2 (off) only on the same proof;
//! - `on` runs on the node it unfences: the plug's key in the map must be this node's key.
//!
//! Errors exit 1, never 2, so that no error can read as "off" to a caller of `status`.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use lkh_common::{Deadline, Failure};
use log::{debug, error, info, warn};
use sg_persist::{Lu, PrType};

use crate::actions::{open, outcome, prim};
use crate::settings::{self, fmt_key, parse_key};

/// The name the binary answers to as a fence agent.
pub const AGENT: &str = "fence_lkhscsipr";
/// The reservation type the agent uses: only registrants may write, one of them holds.
const TYPE: PrType = PrType::WriteExclusiveRegistrantsOnly;
/// Default of `power_timeout` (seconds), as fence-agents.
const DEFAULT_TIMEOUT: u64 = 20;
/// Bounds of `power_timeout` and `delay` (seconds).
const MAX_TIMEOUT: u64 = 600;
const MAX_DELAY: u64 = 3600;
/// How long reading stdin may take (Pacemaker writes the arguments and closes it).
const STDIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The actions of the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    On,
    Off,
    Status,
    Monitor,
    List,
    Metadata,
    ValidateAll,
}

impl Action {
    fn parse(s: &str) -> Result<Action, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "on" | "enable" => Action::On,
            "off" | "disable" => Action::Off,
            "status" => Action::Status,
            "monitor" => Action::Monitor,
            "list" => Action::List,
            "metadata" | "meta-data" => Action::Metadata,
            "validate-all" => Action::ValidateAll,
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

    fn name(self) -> &'static str {
        match self {
            Action::On => "on",
            Action::Off => "off",
            Action::Status => "status",
            Action::Monitor => "monitor",
            Action::List => "list",
            Action::Metadata => "metadata",
            Action::ValidateAll => "validate-all",
        }
    }

    /// Actions that name a node.
    fn needs_plug(self) -> bool {
        matches!(self, Action::On | Action::Off | Action::Status)
    }

    /// Actions that use the devices.
    fn needs_devices(self) -> bool {
        !matches!(self, Action::List | Action::Metadata)
    }
}

/// Node name → reservation key, checked: names and keys unique, keys valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyMap(Vec<(String, u64)>);

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

impl KeyMap {
    /// Parses `NAME:KEY` entries separated by commas or white space.
    pub fn parse(raw: &str) -> Result<KeyMap, String> {
        let mut out: Vec<(String, u64)> = Vec::new();
        for entry in raw
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|e| !e.is_empty())
        {
            let Some((name, key)) = entry.split_once(':') else {
                return Err(format!(
                    "keys: entry {entry:?} is not NAME:KEY: write keys=node-a:0x4c4b…,node-b:0x4c4b… (each node's key: `lkh-scsipr node-key` on that node)"
                ));
            };
            if !valid_name(name) {
                return Err(format!(
                    "keys: {name:?} in {entry:?} is not a node name (letters, digits, '.', '_', '-'): write NAME:KEY"
                ));
            }
            let key = parse_key(key).map_err(|e| format!("keys: node {name}: {e}"))?;
            if let Some((n, _)) = out.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
                return Err(format!(
                    "keys: node {name} appears twice (also as {n}): give each node exactly one entry"
                ));
            }
            if let Some((n, _)) = out.iter().find(|(_, k)| *k == key) {
                return Err(format!(
                    "keys: {n} and {name} have the same key {}: two nodes with one key cannot be fenced apart; correct the mistyped entry (each node's key: `lkh-scsipr node-key` on that node)",
                    fmt_key(key)
                ));
            }
            out.push((name.to_owned(), key));
        }
        if out.is_empty() {
            return Err("keys is empty: write keys=node-a:0x4c4b…,node-b:0x4c4b… (each node's key: `lkh-scsipr node-key` on that node)".into());
        }
        Ok(KeyMap(out))
    }

    pub fn key_of(&self, node: &str) -> Option<u64> {
        self.0.iter().find(|(n, _)| n == node).map(|(_, k)| *k)
    }

    pub fn node_of(&self, key: u64) -> Option<&str> {
        self.0
            .iter()
            .find(|(_, k)| *k == key)
            .map(|(n, _)| n.as_str())
    }

    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// A key as "node (0x…)" when known, else the bare key.
    fn show(&self, key: u64) -> String {
        match self.node_of(key) {
            Some(n) => format!("{n} ({})", fmt_key(key)),
            None => fmt_key(key),
        }
    }

    /// The plug's key; an unknown plug is refused.
    pub fn victim(&self, plug: &str) -> Result<u64, String> {
        self.key_of(plug).ok_or_else(|| {
            format!(
                "plug {plug:?} is not in keys= (nodes: {}): check the node name, or add {plug}:KEY to keys=; nothing was done",
                self.names().join(", ")
            )
        })
    }

    /// Refuses registrations whose key is in no entry: the proof that a key in the map is not
    /// mistyped is that every key on the disk is accounted for.
    pub fn audit(&self, dev: &str, registered: &[u64]) -> Result<(), String> {
        let mut unknown: Vec<u64> = registered
            .iter()
            .copied()
            .filter(|k| self.node_of(*k).is_none())
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        if unknown.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{dev}: key(s) {} registered but in no entry of keys= ({}): a key in keys= is mistyped or a node is missing from it (each node's key: `lkh-scsipr node-key` on that node); nothing was changed",
            unknown
                .iter()
                .map(|k| fmt_key(*k))
                .collect::<Vec<_>>()
                .join(", "),
            self.0
                .iter()
                .map(|(n, k)| format!("{n}:{}", fmt_key(*k)))
                .collect::<Vec<_>>()
                .join(",")
        ))
    }
}

/// This node's entry for `off`: its key must be in the map, under a name other than the plug.
pub fn survivor<'a>(map: &'a KeyMap, own: u64, plug: &str) -> Result<&'a str, String> {
    match map.node_of(own) {
        None => Err(format!(
            "this node's key {} is not in keys= ({}): `off` runs on a surviving node, whose own key must be listed too; add NAME:{} for this node",
            fmt_key(own),
            map.names().join(", "),
            fmt_key(own)
        )),
        Some(n) if n == plug => Err(format!(
            "plug {plug} is this node (its key {} is this node's key): a node never fences itself; run off on another node",
            fmt_key(own)
        )),
        Some(n) => Ok(n),
    }
}

/// `on` runs on the node it unfences: the plug's key must be this node's key.
pub fn unfence_target(map: &KeyMap, own: u64, plug: &str) -> Result<(), String> {
    let want = map.victim(plug)?;
    if want == own {
        return Ok(());
    }
    let who = match map.node_of(own) {
        Some(n) => format!("this node is {n} in keys="),
        None => format!(
            "this node's key is not in keys= at all (its entry would be NAME:{})",
            fmt_key(own)
        ),
    };
    Err(format!(
        "keys= gives {plug} the key {}, but this node's key is {} ({who}): `on` unfences the node it runs on; run it on {plug}, or correct {plug}'s key in keys=; nothing was done",
        fmt_key(want),
        fmt_key(own)
    ))
}

/// A checked request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub action: Action,
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
    match n.as_str() {
        "option" => "action".into(),
        "port" => "plug".into(),
        "timeout" => "power_timeout".into(),
        _ => n,
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
                    && !a[1..].bytes().all(|b| b == b'v') =>
                {
                    (a[..2].to_owned(), Some(a[2..].to_owned()))
                }
                a => (a.to_owned(), None),
            },
        };
        let name = match flag.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "-V" | "--version" => return Ok(Parsed::Version),
            "--verbose" => {
                verbose += 1;
                continue;
            }
            f if f.len() > 1 && f.starts_with('-') && f[1..].bytes().all(|b| b == b'v') => {
                verbose += f.len() - 1;
                continue;
            }
            "-o" | "--action" | "--option" => "action",
            "-n" | "--plug" | "--port" => "plug",
            "-d" | "--devices" => "devices",
            "--keys" => "keys",
            "--delay" => "delay",
            "--power-timeout" | "--power_timeout" => "power_timeout",
            f if f.starts_with('-') => {
                return Err(format!(
                    "unknown option {f}: see {AGENT} --help (options: -o/--action, -n/--plug, -d/--devices, --keys, --delay, --power-timeout, -v)"
                ));
            }
            w => {
                return Err(format!(
                    "unexpected argument {w:?}: options take the form --name=value or --name value (see {AGENT} --help)"
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
        out.insert("verbose".into(), verbose.to_string());
    }
    Ok(Parsed::Params(out))
}

fn seconds(
    params: &BTreeMap<String, String>,
    name: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, String> {
    let Some(raw) = params.get(name) else {
        return Ok(default);
    };
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

fn verbosity(params: &BTreeMap<String, String>) -> u8 {
    match params.get("verbose").map(|v| v.trim().to_ascii_lowercase()) {
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
        let action = Action::parse(params.get("action").map_or("off", String::as_str))?;
        // Pacemaker passes the target as plug (or port) and as nodename
        let plug = params
            .get("plug")
            .or_else(|| params.get("nodename"))
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty());
        let devices: Vec<PathBuf> = params
            .get("devices")
            .map(|d| {
                d.split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        let keys = match params.get("keys") {
            Some(k) => Some(KeyMap::parse(k)?),
            None => None,
        };
        let delay = seconds(params, "delay", 0, 0, MAX_DELAY)?;
        let timeout = seconds(params, "power_timeout", DEFAULT_TIMEOUT, 1, MAX_TIMEOUT)?;
        let req = Request {
            action,
            plug,
            devices,
            keys,
            delay: Duration::from_secs(delay),
            timeout: Duration::from_secs(timeout),
            verbosity: verbosity(params),
        };
        if matches!(action, Action::Metadata) {
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

/// Each device name exists and is a block device (no command is sent; `monitor` proves the
/// disks answer).
fn check_device_nodes(devices: &[PathBuf]) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    for d in devices {
        match std::fs::metadata(d) {
            Ok(m) if m.file_type().is_block_device() => {}
            Ok(_) => {
                return Err(format!(
                    "{}: not a block device: give the shared disk, e.g. /dev/disk/by-id/wwn-…",
                    d.display()
                ));
            }
            Err(e) => {
                return Err(format!(
                    "{}: {e}: check the name in devices= (the same /dev/disk/by-id/… name on every node)",
                    d.display()
                ));
            }
        }
    }
    Ok(())
}

use lkh_common::ocf::xml_escape as esc;

/// One parameter of the metadata: name, required ("0"/"1"), getopt, content type, default,
/// description.
type Param = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
);

/// The agent's metadata (validates against fence-agents' `metadata.rng`).
pub fn metadata() -> String {
    let params: [Param; 10] = [
        (
            "action",
            "1",
            "-o, --action=[action]",
            "string",
            Some("off"),
            "Fencing action",
        ),
        (
            "plug",
            "1",
            "-n, --plug=[nodename]",
            "string",
            None,
            "Name of the node to fence (off), unfence (on, run on that node) or query (status): one of the names in keys",
        ),
        (
            "port",
            "1",
            "-n, --plug=[nodename]",
            "string",
            None,
            "Name of the node to fence (deprecated name of plug)",
        ),
        (
            "devices",
            "1",
            "-d, --devices=[devices]",
            "string",
            None,
            "The shared disks, separated by commas: /dev/disk/by-id/... names (the same on every node), /dev/sdX or dm-multipath devices (/dev/mapper/NAME); each must support SCSI-3 persistent reservations",
        ),
        (
            "keys",
            "1",
            "--keys=[map]",
            "string",
            None,
            "Every cluster node's reservation key, as NAME:KEY separated by commas, e.g. node-a:0x4c4b0123456789ab,node-b:0x4c4bfedcba987654 (each node's key: `lkh-scsipr node-key` on that node). Refused: a name or a key twice, an unknown plug; nothing is changed while a key registered on a device is in no entry",
        ),
        (
            "delay",
            "0",
            "--delay=[seconds]",
            "second",
            Some("0"),
            "Wait X seconds before fencing is started",
        ),
        (
            "power_timeout",
            "0",
            "--power-timeout=[seconds]",
            "second",
            Some("20"),
            "Every action (after the delay) finishes or fails within X seconds",
        ),
        (
            "verbose",
            "0",
            "-v, --verbose",
            "boolean",
            None,
            "Verbose mode: debug detail (SCSI commands) on stderr",
        ),
        (
            "version",
            "0",
            "-V, --version",
            "boolean",
            None,
            "Display version information and exit",
        ),
        (
            "help",
            "0",
            "-h, --help",
            "boolean",
            None,
            "Display help and exit",
        ),
    ];
    let mut s = String::from("<?xml version=\"1.0\" ?>\n");
    s += &format!(
        "<resource-agent name=\"{AGENT}\" shortdesc=\"Fence agent for SCSI-3 persistent reservations (lkhelpers, raw SG_IO)\" >\n"
    );
    s += "<longdesc>";
    s += &esc(
        "fence_lkhscsipr fences a node off shared disks with SCSI-3 persistent reservations issued directly with SG_IO (no sg_persist). \
Each node has its own random key (/etc/lkhelpers/node.key; `lkh-scsipr node-key` prints it), and keys maps node names to keys. \
on (unfencing, run on the node itself; needs meta provides=unfencing) registers the node's key on every path of every device and reserves (Write Exclusive, Registrants Only) when nobody holds. \
off registers this node's key first, then preempts and aborts the victim's key, and verifies that the key is gone and a reservation exists. \
A typo cannot fence the wrong node: an unknown plug, a map with a name or a key twice, or this node's own key as the victim are refused, and nothing is changed while any key registered on a device is in no entry of keys. \
status is 0 (on) when the key is registered, 2 (off) only when it is not and every registration belongs to another node of keys under a reservation; errors are 1. \
The fenced node is cut off the disks, not rebooted: run lkh-scsipr watch with ON_FENCED=halt on every node to make it reboot.",
    );
    s += "</longdesc>\n<vendor-url></vendor-url>\n<parameters>\n";
    for (name, required, getopt, kind, default, desc) in params {
        let extra = match name {
            "plug" => " obsoletes=\"port\"",
            "port" => " deprecated=\"1\"",
            _ => "",
        };
        s += &format!(
            "\t<parameter name=\"{name}\" unique=\"0\" required=\"{required}\"{extra}>\n\t\t<getopt mixed=\"{}\" />\n",
            esc(getopt)
        );
        match default {
            Some(d) => {
                s += &format!("\t\t<content type=\"{kind}\" default=\"{}\"  />\n", esc(d));
            }
            None => s += &format!("\t\t<content type=\"{kind}\"  />\n"),
        }
        s += &format!(
            "\t\t<shortdesc lang=\"en\">{}</shortdesc>\n\t</parameter>\n",
            esc(desc)
        );
    }
    s += "</parameters>\n<actions>\n";
    s += "\t<action name=\"on\" on_target=\"1\" automatic=\"1\"/>\n";
    for a in [
        "off",
        "status",
        "monitor",
        "list",
        "metadata",
        "validate-all",
    ] {
        s += &format!("\t<action name=\"{a}\" />\n");
    }
    s += "</actions>\n</resource-agent>\n";
    s
}

fn help() -> String {
    format!(
        "{AGENT}: fence agent (Pacemaker) on SCSI-3 persistent reservations, part of lkhelpers' lkh-scsipr

USAGE
  {AGENT} -o ACTION [-n NODE] --devices DEV[,DEV...] --keys NAME:KEY[,NAME:KEY...] [--delay S] [--power-timeout S] [-v]
  {AGENT} < key=value lines (action=, plug=, devices=, keys=, delay=, power_timeout=, verbose=)

ACTIONS
  on            unfence NODE (run on NODE itself): register its key on every path, reserve if nobody holds
  off           fence NODE (run on a survivor): register this node's key, PREEMPT AND ABORT NODE's key, verify
  status        0 if NODE's key is registered, 2 if it is provably fenced, 1 on error
  monitor       read keys and reservation of every device (0 ok, 1 failed)
  list          the nodes of --keys
  metadata      the agent's XML metadata
  validate-all  check the parameters (and that the devices exist) without sending anything

Each node's key: `lkh-scsipr node-key` on that node (created once in /etc/lkhelpers/node.key).
Refused, changing nothing: an unknown NODE, a name or a key twice in --keys, this node's own key
as the victim, and any key registered on a device that is in no entry of --keys (a typo).
Errors exit 1 (never 2, which only status uses, for off). One line per event on stderr and syslog.
"
    )
}

/// The result of an action: exit 0 with a summary, or status "off" (exit 2).
enum Done {
    Ok(String),
    Off(String),
}

/// Reads stdin within [`STDIN_TIMEOUT`]; a terminal is not read (nothing would come).
fn read_stdin() -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        return Err(format!(
            "no arguments: give key=value lines on stdin (as Pacemaker does) or options (see {AGENT} --help)"
        ));
    }
    lkh_common::run_bounded(Deadline::after(STDIN_TIMEOUT), || {
        let mut s = String::new();
        std::io::stdin()
            .take(1 << 20)
            .read_to_string(&mut s)
            .map(|_| s)
    })
    .ok_or_else(|| {
        format!(
            "stdin was not closed within {}s: pass the arguments and close it",
            STDIN_TIMEOUT.as_secs()
        )
    })?
    .map_err(|e| format!("cannot read the arguments from stdin: {e}"))
}

/// The whole `main` when called as `fence_lkhscsipr`.
pub fn main(args: &[String]) -> ExitCode {
    let parsed = if args.is_empty() {
        read_stdin().map(|t| Parsed::Params(parse_stdin(&t)))
    } else {
        parse_cli(args)
    };
    let params = match parsed {
        Ok(Parsed::Help) => {
            print!("{}", help());
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            println!(
                "{AGENT} (lkhelpers lkh-scsipr) {}",
                env!("CARGO_PKG_VERSION")
            );
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Params(p)) => p,
        Err(e) => return fail_early(&e),
    };
    let req = match Request::from_params(&params) {
        Ok(r) => r,
        Err(e) => {
            let plug = params.get("plug").filter(|p| valid_name(p));
            lkh_common::logging::init(AGENT, plug.map(String::as_str), verbosity(&params));
            error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let plug = req
        .plug
        .as_deref()
        .filter(|p| valid_name(p) && req.action.needs_plug());
    lkh_common::logging::init(AGENT, plug, req.verbosity);
    for k in params.keys() {
        if ![
            "action",
            "plug",
            "nodename",
            "devices",
            "keys",
            "delay",
            "power_timeout",
            "verbose",
        ]
        .contains(&k.as_str())
        {
            debug!("ignoring unknown parameter {k}");
        }
    }
    let what = req.action.name();
    match run(req) {
        Ok(Done::Ok(msg)) => {
            if !msg.is_empty() {
                info!("{what}: {msg}");
            }
            ExitCode::SUCCESS
        }
        Ok(Done::Off(msg)) => {
            info!("{what}: {msg}");
            ExitCode::from(2)
        }
        Err(e) => {
            error!("{what}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn fail_early(e: &str) -> ExitCode {
    lkh_common::logging::init(AGENT, None, 0);
    error!("{e}");
    ExitCode::FAILURE
}

fn run(req: Request) -> Result<Done, String> {
    if req.action == Action::Metadata {
        print!("{}", metadata());
        return Ok(Done::Ok(String::new()));
    }
    let Some(map) = req.keys.clone() else {
        return Err("no keys given".into());
    };
    if req.action == Action::List {
        for (n, k) in &map.0 {
            println!("{n},{}", fmt_key(*k));
        }
        return Ok(Done::Ok(String::new()));
    }
    check_device_nodes(&req.devices)?;
    let plug = req.plug.clone().unwrap_or_default();
    // Everything that does not need a disk is checked before the delay and the first command.
    let keys = match req.action {
        Action::On => {
            let own =
                settings::node_key_or_create(&settings::node_key_path()).map_err(|f| f.message)?;
            unfence_target(&map, own, &plug)?;
            Some((own, own))
        }
        Action::Off => {
            let path = settings::node_key_path();
            let own = settings::read_node_key(&path)
                .map_err(|f| f.message)?
                .ok_or_else(|| {
                    format!(
                        "this node has no reservation key ({} is missing): unfence this node first (`{AGENT} -o on`, Pacemaker does it with meta provides=unfencing), then add its key to keys=",
                        path.display()
                    )
                })?;
            survivor(&map, own, &plug)?;
            Some((own, map.victim(&plug)?))
        }
        _ => None,
    };
    if req.action == Action::ValidateAll {
        return Ok(Done::Ok(format!(
            "the parameters are valid ({} device(s), nodes {})",
            req.devices.len(),
            map.names().join(", ")
        )));
    }
    if req.action == Action::Off && !req.delay.is_zero() {
        info!(
            "waiting {}s (delay) before fencing {plug}",
            req.delay.as_secs()
        );
        std::thread::sleep(req.delay);
    }
    let deadline = Deadline::after(req.timeout);
    let budget = req.timeout.as_secs();
    let action = req.action;
    let devices = req.devices.clone();
    lkh_common::run_bounded(deadline, move || {
        let end = deadline.instant();
        match (action, keys) {
            (Action::On, Some((own, _))) => on(&devices, own, end).map(Done::Ok),
            (Action::Off, Some((own, victim))) => off(&devices, &map, &plug, own, victim, end).map(Done::Ok),
            (Action::Status, _) => status(&devices, &map, &plug, end),
            _ => monitor(&devices, &map, end).map(Done::Ok),
        }
        .map_err(|f| f.message)
    })
    .unwrap_or_else(|| {
        Err(format!(
            "did not finish within power_timeout={budget}s and was abandoned: see the messages above for the device it was waiting on; if the disks are only slow, raise power_timeout"
        ))
    })
}

/// `on`: register this node's key on every path, reserve if nobody holds, verify.
fn on(devices: &[PathBuf], own: u64, deadline: Instant) -> Result<String, Failure> {
    let mut lus = open::open_all(devices, false, deadline)?;
    outcome::combine(lus.iter_mut().map(|lu| on_lu(lu, own, deadline)).collect())
}

fn on_lu(lu: &mut Lu, own: u64, deadline: Instant) -> Result<String, Failure> {
    let name = prim::dev(lu);
    let registered = prim::register_all(lu, own, deadline)?;
    if prim::read_reservation(lu, deadline)?.is_none() {
        match lu.any_path(|p| p.reserve(own, TYPE, deadline)) {
            Ok(()) => info!("{name}: reserved with {} ({TYPE})", fmt_key(own)),
            Err(e) if e.is_conflict() => {} // another node reserved meanwhile
            Err(e) => return Err(outcome::failure(&e)),
        }
    }
    let ours = prim::count(&prim::read_keys(lu, deadline)?, own);
    if ours < registered {
        return Err(Failure::failed(format!(
            "{name}: only {ours} of {registered} path(s) show this node's key {} after registering (another node preempted it meanwhile?): see `lkh-scsipr status {name}`",
            fmt_key(own)
        )));
    }
    if let Some(w) = prim::shared_key_warning(lu, own, ours) {
        warn!("{w}");
    }
    let Some(r) = prim::read_reservation(lu, deadline)? else {
        return Err(Failure::failed(format!(
            "{name}: nobody holds a reservation after reserving: run on again; `lkh-scsipr status {name}` shows the state"
        )));
    };
    Ok(format!(
        "{name}: {} registered on {registered} path(s), reservation {}",
        fmt_key(own),
        prim::describe(&r)
    ))
}

/// `off`: first every device is audited (all registered keys known), then on each: register
/// this node's key, PREEMPT AND ABORT the victim's, make sure a reservation exists, verify.
fn off(
    devices: &[PathBuf],
    map: &KeyMap,
    plug: &str,
    own: u64,
    victim: u64,
    deadline: Instant,
) -> Result<String, Failure> {
    let mut lus = open::open_all(devices, false, deadline)?;
    for lu in &mut lus {
        let keys = prim::read_keys(lu, deadline)?;
        map.audit(&prim::dev(lu), &keys)
            .map_err(|e| Failure::failed(format!("{e}: {plug} was not fenced")))?;
    }
    outcome::combine(
        lus.iter_mut()
            .map(|lu| off_lu(lu, map, plug, own, victim, deadline))
            .collect(),
    )
}

fn off_lu(
    lu: &mut Lu,
    map: &KeyMap,
    plug: &str,
    own: u64,
    victim: u64,
    deadline: Instant,
) -> Result<String, Failure> {
    let name = prim::dev(lu);
    prim::register_all(lu, own, deadline)?;
    let keys = prim::read_keys(lu, deadline)?;
    // a node registered between the audit and now is audited too
    map.audit(&name, &keys)
        .map_err(|e| Failure::failed(format!("{e}: {plug} was not fenced on {name}")))?;
    let present = prim::count(&keys, victim);
    if present > 0 {
        match prim::preempt(lu, own, victim, TYPE, &mut false, deadline) {
            Ok(()) => info!("{name}: preempted and aborted {}", map.show(victim)),
            Err(e) if e.is_conflict() => {
                return Err(Failure::failed(format!(
                    "{name}: PREEMPT AND ABORT of {} was refused with RESERVATION CONFLICT: this node's own registration was removed meanwhile (this node may be the one being fenced); {plug} was not fenced",
                    map.show(victim)
                )));
            }
            Err(e) => return Err(outcome::failure(&e)),
        }
    }
    if prim::read_reservation(lu, deadline)?.is_none() {
        match lu.any_path(|p| p.reserve(own, TYPE, deadline)) {
            Ok(()) => info!(
                "{name}: nobody held a reservation: reserved with {}",
                fmt_key(own)
            ),
            Err(e) if e.is_conflict() => {}
            Err(e) => return Err(outcome::failure(&e)),
        }
    }
    // verify
    let keys = prim::read_keys(lu, deadline)?;
    if keys.contains(&victim) {
        return Err(Failure::failed(format!(
            "{name}: {} is still registered after PREEMPT AND ABORT: {plug} is NOT fenced; see `lkh-scsipr status {name}`",
            map.show(victim)
        )));
    }
    if !keys.contains(&own) {
        return Err(Failure::failed(format!(
            "{name}: this node's key {} is gone after fencing (another node preempted it): {plug}'s state is unknown; see `lkh-scsipr status {name}`",
            fmt_key(own)
        )));
    }
    let Some(r) = prim::read_reservation(lu, deadline)? else {
        return Err(Failure::failed(format!(
            "{name}: nobody holds a reservation, so {plug} could still write: run off again"
        )));
    };
    let others: Vec<String> = uniq(&keys).iter().map(|k| map.show(*k)).collect();
    Ok(if present > 0 {
        format!(
            "{name}: {plug} fenced: {} preempted; registered now: {}; reservation {}",
            fmt_key(victim),
            others.join(", "),
            prim::describe(&r)
        )
    } else {
        format!(
            "{name}: {plug} was already off: its key {} is not registered, every registration belongs to another node of keys= ({}) and the reservation is held ({})",
            fmt_key(victim),
            others.join(", "),
            prim::describe(&r)
        )
    })
}

/// `status`: on when the plug's key is registered on any device; off only with proof on every
/// device (all registrations known, a reservation held); else an error.
fn status(
    devices: &[PathBuf],
    map: &KeyMap,
    plug: &str,
    deadline: Instant,
) -> Result<Done, Failure> {
    let victim = map.victim(plug).map_err(Failure::failed)?;
    let mut lus = open::open_all(devices, false, deadline)?;
    let mut errors = Vec::new();
    let mut on_at = Vec::new();
    for lu in &mut lus {
        let name = prim::dev(lu);
        let r = (|| {
            let keys = prim::read_keys(lu, deadline)?;
            if keys.contains(&victim) {
                return Ok(true);
            }
            map.audit(&name, &keys)
                .map_err(|e| Failure::failed(format!("{e}: cannot tell whether {plug} is off")))?;
            if prim::read_reservation(lu, deadline)?.is_none() {
                return Err(Failure::failed(format!(
                    "{name}: {plug}'s key {} is not registered, but nobody holds a reservation, so {plug} is not fenced from it: unfence the nodes (on)",
                    fmt_key(victim)
                )));
            }
            Ok(false)
        })();
        match r {
            Ok(true) => on_at.push(name),
            Ok(false) => {}
            Err(f) => errors.push(f.message),
        }
    }
    if !on_at.is_empty() {
        println!("Status: ON");
        return Ok(Done::Ok(format!(
            "{plug} is on: its key {} is registered on {}",
            fmt_key(victim),
            on_at.join(", ")
        )));
    }
    if !errors.is_empty() {
        return Err(Failure::failed(errors.join("; ")));
    }
    println!("Status: OFF");
    Ok(Done::Off(format!(
        "{plug} is off: its key {} is registered on none of the {} device(s), under a reservation",
        fmt_key(victim),
        devices.len()
    )))
}

/// `monitor`: every device answers READ KEYS and READ RESERVATION through some path, and every
/// registered key is in the map.
fn monitor(devices: &[PathBuf], map: &KeyMap, deadline: Instant) -> Result<String, Failure> {
    let mut lus = open::open_all(devices, false, deadline)?;
    outcome::combine(
        lus.iter_mut()
            .map(|lu| {
                let name = prim::dev(lu);
                let keys = prim::read_keys(lu, deadline)?;
                let res = prim::read_reservation(lu, deadline)?;
                map.audit(&name, &keys).map_err(Failure::failed)?;
                let k = uniq(&keys);
                Ok(format!(
                    "{name}: {} path(s) answer; registered: {}; reservation: {}",
                    lu.paths.len(),
                    if k.is_empty() {
                        "none".to_owned()
                    } else {
                        k.iter()
                            .map(|k| map.show(*k))
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                    res.map_or_else(|| "none".to_owned(), |r| prim::describe(&r))
                ))
            })
            .collect(),
    )
}

/// The distinct keys, in first-seen order.
fn uniq(keys: &[u64]) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    for k in keys {
        if !out.contains(k) {
            out.push(*k);
        }
    }
    out
}

/// Whether argv\[0\] names the fence agent (`/usr/sbin/fence_lkhscsipr`).
pub fn is_agent(argv0: &str) -> bool {
    Path::new(argv0).file_name().is_some_and(|n| n == AGENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KA: u64 = 0x4c4b_0000_0000_00a1;
    const KB: u64 = 0x4c4b_0000_0000_00b2;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn map() -> KeyMap {
        KeyMap::parse("node-a:0x4c4b0000000000a1, node-b:4c4b0000000000b2").unwrap()
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
        assert_eq!(r.action, Action::Off);
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
        assert_eq!(r.action, Action::Status);
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
        assert_eq!(Request::from_params(&p).unwrap().action, Action::Off);
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

    #[test]
    fn key_map_rules() {
        let m = map();
        assert_eq!(m.key_of("node-a"), Some(KA));
        assert_eq!(m.node_of(KB), Some("node-b"));
        assert_eq!(m.key_of("Node-A"), None, "plugs match exactly");
        assert_eq!(
            KeyMap::parse("a:1 b:2\tc:3").unwrap().names(),
            vec!["a", "b", "c"]
        );
        for (bad, why) in [
            (
                "node-a:0x4c4b0000000000a1,node-b:0x4c4b0000000000a1",
                "the same key",
            ),
            ("node-a:1,node-b:0x0001", "the same key"),
            ("node-a:1,NODE-A:2", "appears twice"),
            ("node-a:1,node-a:2", "appears twice"),
            ("node-a:0", "key 0"),
            ("node-a:0x4c4b00000000zz", "not hexadecimal"),
            ("node-a:0x1ffffffffffffffff", "8 bytes"),
            ("node-a=1", "not NAME:KEY"),
            ("0x4c4b0000000000a1", "not NAME:KEY"),
            ("node a:1", "not NAME:KEY"),
            ("no/de:1", "not a node name"),
            (":1", "not a node name"),
            (" , ", "empty"),
        ] {
            let e = KeyMap::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn audit_refuses_unknown_registrations() {
        let m = map();
        assert!(m.audit("/dev/sdb", &[]).is_ok());
        assert!(m.audit("/dev/sdb", &[KA, KA, KB]).is_ok());
        // node-a's real key differs from the (mistyped) map entry: it is unaccounted for
        let e = m
            .audit("/dev/sdb", &[KB, 0x4c4b_0000_0000_00a7])
            .unwrap_err();
        assert!(
            e.starts_with("/dev/sdb: key(s) 0x4c4b0000000000a7 registered"),
            "{e}"
        );
        assert!(e.contains("nothing was changed"), "{e}");
    }

    #[test]
    fn survivor_and_unfence_rules() {
        let m = map();
        assert_eq!(survivor(&m, KB, "node-a"), Ok("node-b"));
        let e = survivor(&m, KA, "node-a").unwrap_err();
        assert!(e.contains("never fences itself"), "{e}");
        let e = survivor(&m, 0x77, "node-a").unwrap_err();
        assert!(e.contains("not in keys="), "{e}");
        assert!(unfence_target(&m, KA, "node-a").is_ok());
        let e = unfence_target(&m, KB, "node-a").unwrap_err();
        assert!(
            e.contains("this node is node-b") && e.contains("run it on node-a"),
            "{e}"
        );
        let e = unfence_target(&m, 0x77, "node-a").unwrap_err();
        assert!(e.contains("NAME:0x0000000000000077"), "{e}");
        assert!(
            unfence_target(&m, KA, "node-c")
                .unwrap_err()
                .contains("not in keys=")
        );
    }

    #[test]
    fn metadata_is_well_formed_and_complete() {
        let m = metadata();
        assert!(
            m.starts_with("<?xml version=\"1.0\" ?>\n<resource-agent name=\"fence_lkhscsipr\"")
        );
        for p in [
            "action",
            "plug",
            "port",
            "devices",
            "keys",
            "delay",
            "power_timeout",
        ] {
            assert!(m.contains(&format!("<parameter name=\"{p}\"")), "{p}");
        }
        assert!(m.contains("<action name=\"on\" on_target=\"1\" automatic=\"1\"/>"));
        for a in [
            "off",
            "status",
            "monitor",
            "list",
            "metadata",
            "validate-all",
        ] {
            assert!(m.contains(&format!("<action name=\"{a}\" />")), "{a}");
        }
        assert!(!m.contains("\"reboot\""));
        // every tag opened is closed (a cheap well-formedness check; xmllint runs in tests/)
        assert_eq!(
            m.matches("<parameter ").count(),
            m.matches("</parameter>").count()
        );
        assert!(
            !m.replace("&amp;", "")
                .replace("&lt;", "")
                .replace("&gt;", "")
                .replace("&quot;", "")
                .replace("&apos;", "")
                .contains('&')
        );
    }

    #[test]
    fn argv0_dispatch() {
        assert!(is_agent("/usr/sbin/fence_lkhscsipr"));
        assert!(is_agent("fence_lkhscsipr"));
        assert!(!is_agent("/usr/sbin/lkh-scsipr"));
        assert!(!is_agent("/usr/sbin/fence_lkhscsipr2"));
    }
}
