//! The command line of every kit binary.
//!
//! Hook form, as LifeKeeper calls it: `lkh-<kit> ACTION -t TAG [-i ID]`; a copy of the binary
//! that gen/app keeps as `…/actions/!restore/<tag>` (the action is the parent directory's name);
//! or a link whose name is the action (`…/restore -t TAG`). Extra short flags LifeKeeper may
//! pass (`-A`, `-e EVENT`, `-C CLASS`, …) and stray words are ignored; unknown long options are
//! refused, because LifeKeeper never passes them and a misspelt `--devcie` must not be ignored
//! in a manual run. Settings can be given as `--set KEY=VALUE` or as the key's own flag
//! (`--timeout 20`, `--on-fenced=event`).

use crate::config::{KeySpec, find_key};
use crate::exit::Failure;
use std::fmt;

/// The four hook actions LifeKeeper runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Restore,
    Remove,
    QuickCheck,
    Recover,
}

impl Action {
    pub const ALL: [Action; 4] = [
        Action::Restore,
        Action::Remove,
        Action::QuickCheck,
        Action::Recover,
    ];

    /// LifeKeeper's spelling, also the action link's file name.
    pub fn name(self) -> &'static str {
        match self {
            Action::Restore => "restore",
            Action::Remove => "remove",
            Action::QuickCheck => "quickCheck",
            Action::Recover => "recover",
        }
    }

    /// Exactly LifeKeeper's spelling (file and directory names, wrapper markers).
    pub fn exact(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == s)
    }

    /// Accepts LifeKeeper's spelling, case-insensitively (`quickcheck` too).
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Flags of the hook form (also usable by a kit's own commands that take a tag).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HookArgs {
    pub tag: Option<String>,
    pub id: Option<String>,
    pub verbosity: u8,
    /// `--no-config`: run without a resource file (settings from flags and LifeKeeper's file).
    pub no_config: bool,
    /// `KEY=VALUE` settings from the command line, in order.
    pub overrides: Vec<(String, String)>,
    /// Extra long switches the caller allowed (e.g. `--json`) that were present.
    pub switches: Vec<String>,
    /// Extra long options with a value the caller allowed (e.g. `--dir DIR`), in order.
    pub values: Vec<(String, String)>,
    /// Words and short flags that were ignored.
    pub ignored: Vec<String>,
    pub help: bool,
}

impl HookArgs {
    pub fn has(&self, switch: &str) -> bool {
        self.switches.iter().any(|s| s == switch)
    }

    /// The value of the allowed option `flag` (the last one given).
    pub fn value(&self, flag: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(f, _)| f == flag)
            .map(|(_, v)| v.as_str())
    }

    /// A kit command's operands: the words that are not flags. The hook form ignores short
    /// flags it does not know (LifeKeeper passes extras); a command refuses them, with `usage`.
    pub fn operands(&self, usage: &str) -> Result<&[String], Failure> {
        match self
            .ignored
            .iter()
            .find(|w| w.len() > 1 && w.starts_with('-'))
        {
            Some(f) => Err(Failure::usage(format!("unknown option {f}: {usage}"))),
            None => Ok(&self.ignored),
        }
    }

    /// For a command that takes no operands: refuses any word left over, with `usage`.
    pub fn no_operands(&self, usage: &str) -> Result<(), Failure> {
        match self.operands(usage)?.first() {
            Some(w) => Err(Failure::usage(format!(
                "unexpected argument '{w}': {usage}"
            ))),
            None => Ok(()),
        }
    }
}

fn need_value(flag: &str, v: Option<String>) -> Result<String, Failure> {
    v.ok_or_else(|| Failure::usage(format!("{flag} needs a value")))
}

/// Parses hook-form flags. `switches` lists extra long flags without values the caller accepts.
pub fn parse_hook_args(
    keys: &'static [KeySpec],
    args: &[String],
    switches: &[&str],
) -> Result<HookArgs, Failure> {
    parse_args(keys, args, switches, &[])
}

/// The one parser of every command line of the kits: the hook form and each kit's own
/// commands. `-t TAG`, `-i ID`, `-v`, `--set KEY=VALUE`, `--no-config`, `--KEY VALUE` for the
/// kit's settings, the caller's `switches` (no value) and `options` (a value, `--opt V` or
/// `--opt=V`); other words are kept in order in `ignored` (see [`HookArgs::operands`]).
pub fn parse_args(
    keys: &'static [KeySpec],
    args: &[String],
    switches: &[&str],
    options: &[&str],
) -> Result<HookArgs, Failure> {
    let mut out = HookArgs::default();
    let mut it = args.iter().cloned();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        match flag.as_str() {
            "-t" | "--tag" => out.tag = Some(need_value(&flag, inline.or_else(|| it.next()))?),
            "-i" | "--id" => out.id = Some(need_value(&flag, inline.or_else(|| it.next()))?),
            "-v" | "--verbose" => out.verbosity = out.verbosity.saturating_add(1),
            "-h" | "--help" => out.help = true,
            "--no-config" => out.no_config = true,
            "--set" => {
                let kv = need_value("--set", inline.or_else(|| it.next()))?;
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| Failure::usage(format!("--set {kv}: write --set KEY=VALUE")))?;
                out.overrides.push((k.to_owned(), v.to_owned()));
            }
            f if switches.contains(&f) => out.switches.push(f.to_owned()),
            f if options.contains(&f) => {
                let v = need_value(f, inline.or_else(|| it.next()))?;
                out.values.push((f.to_owned(), v));
            }
            f if f.starts_with("--") => {
                let key = f[2..].to_ascii_uppercase().replace('-', "_");
                let Some(spec) = find_key(keys, &key) else {
                    return Err(Failure::usage(format!(
                        "unknown option {f}: see --help for the options and the KEY settings"
                    )));
                };
                let v = need_value(f, inline.or_else(|| it.next()))?;
                out.overrides.push((spec.name.to_owned(), v));
            }
            f if f.starts_with("-t") && f.len() > 2 => out.tag = Some(f[2..].to_owned()),
            f if f.starts_with("-i") && f.len() > 2 => out.id = Some(f[2..].to_owned()),
            f if f.len() > 1 && f.starts_with('-') && f[1..].bytes().all(|b| b == b'v') => {
                out.verbosity = out.verbosity.saturating_add((f.len() - 1) as u8);
            }
            _ => out.ignored.push(arg),
        }
    }
    Ok(out)
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invocation {
    Hook {
        action: Action,
        args: HookArgs,
    },
    /// `genapp [-t TAG] [--dir DIR]` (also spelt `install`): write the gen/app wrappers.
    Genapp {
        tag: Option<String>,
        dir: Option<String>,
        verbosity: u8,
    },
    Help,
    Version,
    /// A kit-specific command (`status`, `doctor`, `watch`, `probe`, …) with its arguments,
    /// `-v` flags already removed and counted.
    Command {
        name: String,
        args: Vec<String>,
        verbosity: u8,
    },
}

/// The action named by how the binary was called, if any: the parent directory of a gen/app
/// copy (`…/actions/!restore/<tag>`), else the file name of a link (`…/restore`).
pub fn action_from_argv0(argv0: &str) -> Option<Action> {
    let mut parts = argv0.rsplit('/');
    let base = parts.next().unwrap_or(argv0);
    if let Some(action) = parts.next().and_then(crate::genapp::action_from_dir) {
        return Some(action);
    }
    Action::exact(base)
}

fn strip_verbose(args: &[String]) -> (Vec<String>, u8) {
    let mut v = 0u8;
    let rest = args
        .iter()
        .filter(|a| {
            let is_v = *a == "--verbose"
                || (a.len() > 1 && a.starts_with('-') && a[1..].bytes().all(|b| b == b'v'));
            if is_v {
                v = v.saturating_add(if *a == "--verbose" {
                    1
                } else {
                    (a.len() - 1) as u8
                });
            }
            !is_v
        })
        .cloned()
        .collect();
    (rest, v)
}

/// Parses a whole argv (including argv\[0\]).
pub fn parse_invocation(keys: &'static [KeySpec], argv: &[String]) -> Result<Invocation, Failure> {
    let argv0 = argv.first().map(String::as_str).unwrap_or("");
    if let Some(action) = action_from_argv0(argv0) {
        let args = parse_hook_args(keys, argv.get(1..).unwrap_or(&[]), &[])?;
        return Ok(if args.help {
            Invocation::Help
        } else {
            Invocation::Hook { action, args }
        });
    }
    let Some(first) = argv.get(1) else {
        return Ok(Invocation::Help);
    };
    let rest = argv.get(2..).unwrap_or(&[]);
    if let Some(action) = Action::parse(first) {
        let args = parse_hook_args(keys, rest, &[])?;
        return Ok(if args.help {
            Invocation::Help
        } else {
            Invocation::Hook { action, args }
        });
    }
    match first.as_str() {
        "-h" | "--help" | "help" => Ok(Invocation::Help),
        "-V" | "--version" | "version" => Ok(Invocation::Version),
        "genapp" | "install" => {
            let usage = "usage: genapp [-t TAG] [--dir DIR]";
            let a = parse_args(&[], rest, &["--lkroot"], &["--dir"])?;
            if a.help {
                return Ok(Invocation::Help);
            }
            if a.has("--lkroot") {
                return Err(Failure::usage(format!(
                    "{first} --lkroot: LifeKeeper only runs scripts of resources it created, so nothing is linked under $LKROOT any more: run `genapp` and give its scripts to the Generic Application wizard ({usage})"
                )));
            }
            let extra = a.operands(usage)?.first().cloned().or_else(|| {
                a.id.as_ref()
                    .map(|_| "-i".to_owned())
                    .or(a.no_config.then(|| "--no-config".to_owned()))
                    .or(a.overrides.first().map(|(k, v)| format!("--set {k}={v}")))
            });
            if let Some(w) = extra {
                return Err(Failure::usage(format!(
                    "{first}: unexpected argument '{w}': {usage}"
                )));
            }
            let (tag, dir, verbosity) = (
                a.tag.clone(),
                a.value("--dir").map(str::to_owned),
                a.verbosity,
            );
            Ok(Invocation::Genapp {
                tag,
                dir,
                verbosity,
            })
        }
        _ => {
            let (args, verbosity) = strip_verbose(rest);
            Ok(Invocation::Command {
                name: first.clone(),
                args,
                verbosity,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Kind;

    static KEYS: &[KeySpec] = &[
        KeySpec::timeout("20"),
        KeySpec::resource("DEVICE", Kind::List, None, "disks"),
        KeySpec::resource(
            "ON_FENCED",
            Kind::Choice(&["halt", "event", "none"]),
            None,
            "policy",
        ),
    ];

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn hook_form_with_lifekeeper_extras() {
        let i = parse_invocation(
            KEYS,
            &argv("lkh-x quickCheck -t db -i 0123 -A -e 7 stray -vv"),
        )
        .unwrap();
        let Invocation::Hook { action, args } = i else {
            panic!("{i:?}")
        };
        assert_eq!(action, Action::QuickCheck);
        assert_eq!(args.tag.as_deref(), Some("db"));
        assert_eq!(args.id.as_deref(), Some("0123"));
        assert_eq!(args.verbosity, 2);
        assert_eq!(args.ignored, ["-A", "-e", "7", "stray"]);
    }

    /// A kit command's own flags go through the same parser as the hook form: its switches
    /// and options (`--opt V`, `--opt=V`), `-v`, `--KEY V` settings, operands in order, and
    /// an unknown short flag refused (the hook form ignores it).
    #[test]
    fn command_args() {
        let a = parse_args(
            KEYS,
            &argv("10.0.0.1 --json --port=2049 -v --timeout 5 /export --port 111"),
            &["--json"],
            &["--port"],
        )
        .unwrap();
        assert!(a.has("--json"));
        assert_eq!(a.value("--port"), Some("111"));
        assert_eq!(a.verbosity, 1);
        assert_eq!(a.overrides, [("TIMEOUT".to_owned(), "5".to_owned())]);
        assert_eq!(a.operands("usage").unwrap(), argv("10.0.0.1 /export"));
        let a = parse_args(KEYS, &argv("x -q"), &[], &[]).unwrap();
        let f = a.operands("usage: probe X").unwrap_err();
        assert_eq!(f.exit, crate::Exit::Usage);
        assert!(
            f.message.contains("-q") && f.message.contains("usage: probe X"),
            "{f}"
        );
        assert!(parse_args(KEYS, &argv("--port"), &[], &["--port"]).is_err());
        assert!(parse_args(KEYS, &argv("--bogus 1"), &[], &["--port"]).is_err());
    }

    #[test]
    fn action_from_link_name() {
        let i = parse_invocation(KEYS, &argv("/usr/lib/lkhelpers/x/restore -tdb -ixyz")).unwrap();
        let Invocation::Hook { action, args } = i else {
            panic!("{i:?}")
        };
        assert_eq!(action, Action::Restore);
        assert_eq!(
            (args.tag.as_deref(), args.id.as_deref()),
            (Some("db"), Some("xyz"))
        );
        assert_eq!(action_from_argv0("/usr/sbin/lkh-scsipr"), None);
        assert_eq!(action_from_argv0("quickCheck"), Some(Action::QuickCheck));
        assert_eq!(
            action_from_argv0("/a/quickcheck"),
            None,
            "link names are exact"
        );
    }

    #[test]
    fn action_from_gen_app_copy_directory() {
        for a in Action::ALL {
            let path = crate::genapp::copy_path(std::path::Path::new("/opt/LifeKeeper"), a, "nfs1");
            let line = format!("{} -t nfs1 -i nfs1", path.display());
            let i = parse_invocation(KEYS, &argv(&line)).unwrap();
            let Invocation::Hook { action, args } = i else {
                panic!("{line}: {i:?}")
            };
            assert_eq!(action, a, "{line}");
            assert_eq!(args.tag.as_deref(), Some("nfs1"));
        }
        // a tag that happens to be an action's name: the directory decides
        assert_eq!(
            action_from_argv0("/lk/subsys/gen/resources/app/actions/!remove/restore"),
            Some(Action::Remove)
        );
        assert_eq!(action_from_argv0("/lk/actions/!start/db"), None);
    }

    #[test]
    fn every_action_by_name() {
        for a in Action::ALL {
            let i = parse_invocation(KEYS, &argv(&format!("lkh-x {} -t t", a.name()))).unwrap();
            assert!(
                matches!(i, Invocation::Hook { action, .. } if action == a),
                "{a}"
            );
        }
        assert_eq!(Action::parse("QUICKCHECK"), Some(Action::QuickCheck));
    }

    #[test]
    fn settings_as_flags() {
        let i = parse_invocation(KEYS, &argv("lkh-x restore -t t --device /dev/sdb --on-fenced=event --set TIMEOUT=9 --no-config")).unwrap();
        let Invocation::Hook { args, .. } = i else {
            panic!()
        };
        assert!(args.no_config);
        assert_eq!(
            args.overrides,
            [
                ("DEVICE".into(), "/dev/sdb".into()),
                ("ON_FENCED".into(), "event".into()),
                ("TIMEOUT".into(), "9".into())
            ]
        );
    }

    #[test]
    fn refuses_unknown_long_options_and_missing_values() {
        for bad in [
            "lkh-x restore -t t --devcie /dev/sdb",
            "lkh-x restore -t",
            "lkh-x restore -t t --set TIMEOUT",
            "lkh-x restore -t t --device",
        ] {
            let f = parse_invocation(KEYS, &argv(bad)).expect_err(bad);
            assert_eq!(f.exit, crate::exit::Exit::Usage, "{bad}");
        }
    }

    #[test]
    fn other_forms() {
        assert_eq!(
            parse_invocation(KEYS, &argv("lkh-x")).unwrap(),
            Invocation::Help
        );
        assert_eq!(
            parse_invocation(KEYS, &argv("lkh-x --help")).unwrap(),
            Invocation::Help
        );
        assert_eq!(
            parse_invocation(KEYS, &argv("lkh-x restore --help")).unwrap(),
            Invocation::Help
        );
        assert_eq!(
            parse_invocation(KEYS, &argv("lkh-x --version")).unwrap(),
            Invocation::Version
        );
        assert_eq!(
            parse_invocation(KEYS, &argv("lkh-x genapp -t db --dir=/tmp/w -v")).unwrap(),
            Invocation::Genapp {
                tag: Some("db".into()),
                dir: Some("/tmp/w".into()),
                verbosity: 1
            }
        );
        assert_eq!(
            parse_invocation(KEYS, &argv("lkh-x install")).unwrap(),
            Invocation::Genapp {
                tag: None,
                dir: None,
                verbosity: 0
            }
        );
        assert!(parse_invocation(KEYS, &argv("lkh-x genapp /tmp")).is_err());
        for bad in ["-x", "--timeout 5", "-i 7", "--set A=b", "--no-config"] {
            let f = parse_invocation(KEYS, &argv(&format!("lkh-x genapp {bad}"))).unwrap_err();
            assert_eq!(f.exit, crate::Exit::Usage, "{bad}: {f}");
        }
        let f =
            parse_invocation(KEYS, &argv("lkh-x install --lkroot /opt/LifeKeeper")).unwrap_err();
        assert!(f.message.contains("Generic Application"), "{f}");
        assert_eq!(
            parse_invocation(KEYS, &argv("lkh-x status /dev/sdb -v --json")).unwrap(),
            Invocation::Command {
                name: "status".into(),
                args: argv("/dev/sdb --json"),
                verbosity: 1
            }
        );
    }

    #[test]
    fn allowed_switches_are_collected() {
        let a = parse_hook_args(KEYS, &argv("-t x --json"), &["--json"]).unwrap();
        assert!(a.has("--json"));
        assert!(parse_hook_args(KEYS, &argv("-t x --json"), &[]).is_err());
    }
}
