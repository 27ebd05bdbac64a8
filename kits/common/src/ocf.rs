//! Pacemaker's side: the same hooks as an OCF resource agent.
//!
//! Called as `/usr/lib/ocf/resource.d/lkhelpers/<kit> ACTION` (a link to the binary; any path
//! with a `resource.d` component, or `OCF_ROOT` set and an OCF action as the only argument):
//! `start` = restore, `stop` = remove, `monitor` = quickCheck, `recover` = recover, plus
//! `validate-all` and `meta-data`. Parameters arrive as `OCF_RESKEY_<key in lower case>` and
//! are validated exactly as the configuration file's values are; no resource file is read.
//! The instance name (`OCF_RESOURCE_INSTANCE`) becomes the tag, for log lines and runtime
//! files. `OCF_RESKEY_CRM_meta_timeout` caps `TIMEOUT` (one second below it, so we report a
//! failure before Pacemaker kills us), and `OCF_CHECK_LEVEL` chooses the kit's check depth
//! where it has one.
//!
//! Exit codes are translated once, in [`exit_code`], from one table ([`codes::MAPPING`]),
//! shown in `--help` and the README: a probe answers 7 whenever the resource is not active on
//! this node, 6 means a value wrong on every node, 5 something this node lacks. The meta-data is generated from the kit's key table
//! ([`meta_data`]), valid against Debian's `ra-api-1.dtd` and pcs's `ocf-1.0.rng`/`ocf-1.1.rng`
//! (OCF 1.0 attributes only, with the DOCTYPE `ocf-tester` needs).

use crate::cli::Action;
use crate::config::{KeySpec, Kind, Missing, Scope, find_key};
use crate::exit::{Failure, Outcome};
use crate::kit::{HookCtx, KitSpec};
use crate::logging;
use crate::tag::Tag;
use std::process::ExitCode;

/// The OCF actions this agent knows, as Pacemaker spells them.
pub const ACTIONS: &[&str] = &[
    "start",
    "stop",
    "monitor",
    "recover",
    "validate-all",
    "meta-data",
];

pub mod codes;

pub use codes::{
    Call, OCF_ERR_CONFIGURED, OCF_ERR_GENERIC, OCF_ERR_INSTALLED, OCF_ERR_UNIMPLEMENTED,
    OCF_NOT_RUNNING, OCF_SUCCESS, exit_code,
};

/// What Pacemaker asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OcfAction {
    Hook(Action),
    ValidateAll,
    MetaData,
    Unimplemented(String),
}

impl OcfAction {
    pub fn parse(word: &str) -> OcfAction {
        match word {
            "start" => OcfAction::Hook(Action::Restore),
            "stop" => OcfAction::Hook(Action::Remove),
            "monitor" => OcfAction::Hook(Action::QuickCheck),
            "recover" => OcfAction::Hook(Action::Recover),
            "validate-all" => OcfAction::ValidateAll,
            "meta-data" => OcfAction::MetaData,
            other => OcfAction::Unimplemented(other.to_owned()),
        }
    }

    pub fn word(&self) -> &str {
        match self {
            OcfAction::Hook(Action::Restore) => "start",
            OcfAction::Hook(Action::Remove) => "stop",
            OcfAction::Hook(Action::QuickCheck) => "monitor",
            OcfAction::Hook(Action::Recover) => "recover",
            OcfAction::ValidateAll => "validate-all",
            OcfAction::MetaData => "meta-data",
            OcfAction::Unimplemented(w) => w,
        }
    }
}

/// Whether this call is an OCF one: argv\[0\] lies under a `resource.d` directory, or
/// `OCF_ROOT` is set and the only argument is an OCF action. Returns the action word.
pub fn detect(argv: &[String], ocf_root_set: bool) -> Option<&str> {
    let argv0 = argv.first()?;
    let under_resource_d = argv0.split('/').any(|c| c == "resource.d");
    let word = argv.get(1).map(String::as_str);
    if under_resource_d {
        // the action is the sole argument; Pacemaker passes nothing else, others are ignored
        return Some(word.unwrap_or(""));
    }
    (ocf_root_set && argv.len() == 2)
        .then_some(word?)
        .filter(|w| ACTIONS.contains(w))
}

/// The tag for an instance name: characters outside `[A-Za-z0-9._-]` (a clone's `vip:0`)
/// become `_`; nothing usable gives `ocf-<kit>`.
pub fn tag_for_instance(instance: Option<&str>, kit: &str) -> String {
    let t: String = instance
        .unwrap_or("")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if t.is_empty() || t == "." || t == ".." {
        format!("ocf-{kit}")
    } else {
        t
    }
}

/// The `OCF_RESKEY_*` parameters as (KEY, value) settings, in environment order; empty values
/// count as unset, Pacemaker's own `CRM_meta_*` and `crm_feature_set` are skipped. An unknown parameter is refused.
pub fn parameters(
    keys: &'static [KeySpec],
    env: &[(String, String)],
) -> Result<Vec<(String, String)>, Failure> {
    let mut out = Vec::new();
    for (k, v) in env {
        let Some(name) = k.strip_prefix("OCF_RESKEY_") else {
            continue;
        };
        // Pacemaker's own: CRM_meta_* and crm_feature_set (sent with every action)
        if name.starts_with("CRM_meta_") || name == "crm_feature_set" || v.is_empty() {
            continue;
        }
        let key = name.to_ascii_uppercase();
        let Some(spec) = find_key(keys, &key).filter(|_| name == key.to_ascii_lowercase()) else {
            let known: Vec<String> = keys.iter().map(|k| k.name.to_ascii_lowercase()).collect();
            return Err(Failure::usage(format!(
                "unknown parameter '{name}': this agent's parameters are {} (see meta-data)",
                known.join(", ")
            )));
        };
        out.push((spec.name.to_owned(), v.clone()));
    }
    Ok(out)
}

/// `TIMEOUT` under Pacemaker's own timeout for this operation (milliseconds): one second less,
/// at least one.
pub fn timeout_cap(meta_timeout_ms: Option<&str>) -> Option<u64> {
    let ms: u64 = meta_timeout_ms?.trim().parse().ok()?;
    Some((ms / 1000).saturating_sub(1).max(1))
}

/// The value of the kit's depth key for `OCF_CHECK_LEVEL` (an unknown level falls back to the
/// next lower one: 15 → 10).
pub fn depth_value(
    depth: Option<(&'static str, [&'static str; 3])>,
    level: Option<&str>,
) -> Option<(&'static str, &'static str)> {
    let (key, values) = depth?;
    let level: u32 = level?.trim().parse().ok()?;
    let i = match level {
        0..=9 => 0,
        10..=19 => 1,
        _ => 2,
    };
    Some((key, values[i]))
}

/// The value of `name` in the environment `env`.
fn var<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The context of an OCF call for resource `tag` ([`tag_for_instance`]) from its
/// environment: settings from the parameters (no resource file), TIMEOUT capped by
/// Pacemaker's, depth from `OCF_CHECK_LEVEL`.
pub fn context(
    spec: &'static KitSpec,
    action: Action,
    tag: &str,
    env: &[(String, String)],
) -> Result<HookCtx, Failure> {
    let get = |name: &str| var(env, name);
    let tag = Tag::parse(tag)?;
    let mut overrides = parameters(spec.keys, env)?;
    if action == Action::QuickCheck
        && let Some((key, value)) = depth_value(spec.depth, get("OCF_CHECK_LEVEL"))
    {
        overrides.retain(|(k, _)| k != key);
        overrides.push((key.to_owned(), value.to_owned()));
    }
    let mut ctx = crate::kit::context_with(spec, action, tag, None, Missing::Skip, &overrides)?;
    ctx.ocf = true;
    if let Some(cap) = timeout_cap(get("OCF_RESKEY_CRM_meta_timeout"))
        && cap < ctx.config.timeout().as_secs()
    {
        ctx.config.set(spec.keys, "TIMEOUT", &cap.to_string())?;
        ctx.deadline = crate::deadline::Deadline::after(ctx.config.timeout());
    }
    Ok(ctx)
}

/// The whole OCF call: one action word, the environment; returns the OCF exit code.
pub fn run(spec: &'static KitSpec, hook: fn(&HookCtx) -> Outcome, word: &str) -> ExitCode {
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let action = OcfAction::parse(word);
    let tag = tag_for_instance(var(&env, "OCF_RESOURCE_INSTANCE"), spec.kit);
    let verbosity = u8::from(var(&env, "OCF_TRACE_RA") == Some("1"));
    logging::init(&spec.binary(), Some(&tag), verbosity);
    let outcome = match &action {
        OcfAction::MetaData => {
            print!("{}", meta_data(spec, crate::version::VERSION));
            return ExitCode::from(OCF_SUCCESS);
        }
        OcfAction::Unimplemented(w) => {
            let shown = if w.is_empty() { "(none)" } else { w };
            log::error!(
                "action {shown:?} is not one of this agent's: {}",
                ACTIONS.join(", ")
            );
            return ExitCode::from(exit_code(Call::Unimplemented, &Ok(String::new())));
        }
        OcfAction::ValidateAll => context(spec, Action::QuickCheck, &tag, &env).and_then(|ctx| {
            match spec.check {
                Some(check) => check(&ctx),
                None => Ok(String::new()),
            }
            .map(|_| "the parameters are valid".to_owned())
        }),
        OcfAction::Hook(a) => {
            context(spec, *a, &tag, &env).and_then(|ctx| crate::kit::guarded(ctx, hook))
        }
    };
    let interval = var(&env, "OCF_RESKEY_CRM_meta_interval");
    let call = Call::of(&action, interval).unwrap_or(Call::ValidateAll);
    let code = exit_code(call, &outcome);
    match &outcome {
        Ok(summary) if !summary.is_empty() => log::info!("{}: {summary}", action.word()),
        Ok(_) => {}
        Err(f) if code == OCF_NOT_RUNNING => log::info!("{}: not running: {f}", action.word()),
        Err(f) => {
            log::error!("{}: {f}", action.word());
            // Pacemaker shows this line as the failure's reason (one line, like every log line)
            eprintln!("ocf-exit-reason:{}", crate::logging::clean(&f.message));
        }
    }
    ExitCode::from(code)
}

/// Text or attribute value escaped for XML (control characters but newline dropped).
pub fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if c.is_control() && c != '\n' => {}
            c => o.push(c),
        }
    }
    o
}

fn content_type(k: &KeySpec) -> &'static str {
    match k.kind {
        Kind::Uint { .. } => "integer",
        Kind::Bool => "boolean",
        _ => "string",
    }
}

/// The first clause of a help text, for `<shortdesc>`.
fn short(help: &str) -> &str {
    let cut = [": ", "; ", " (", ". ", ", e.g."]
        .iter()
        .filter_map(|p| help.find(p))
        .filter(|&i| i >= 12)
        .min()
        .unwrap_or(help.len());
    help[..cut].trim_end_matches([' ', ',', '.'])
}

/// The meta-data XML of `spec`'s agent, from the same key table as `--help`.
pub fn meta_data(spec: &KitSpec, version: &str) -> String {
    let timeout = spec
        .keys
        .iter()
        .find(|k| k.name == "TIMEOUT")
        .and_then(|k| k.default)
        .and_then(|d| d.parse::<u64>().ok())
        .unwrap_or(30);
    // Pacemaker's timeout leaves room above the kit's own deadline
    let op = format!("{}s", timeout + 10);
    let mut x = String::new();
    x += "<?xml version=\"1.0\"?>\n<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n";
    x += &format!(
        "<resource-agent name=\"{}\" version=\"{}\">\n<version>1.0</version>\n",
        xml_escape(spec.kit),
        xml_escape(version)
    );
    x += &format!(
        "<longdesc lang=\"en\">\n{} ({}, OCF mode). The same binary is a LifeKeeper resource; see {}(8).\n</longdesc>\n",
        xml_escape(spec.summary),
        spec.binary(),
        spec.binary()
    );
    x += &format!(
        "<shortdesc lang=\"en\">{}</shortdesc>\n",
        xml_escape(spec.summary)
    );
    x += "<parameters>\n";
    for k in spec.keys {
        let mut long = k.help.to_owned();
        if k.scope == Scope::LifeKeeper {
            long += " (a LifeKeeper tunable, also read from /etc/default/LifeKeeper when present)";
        }
        if let Kind::Choice(words) = k.kind {
            long += &format!(" One of: {}.", words.join(", "));
        }
        let default = k
            .default
            .map(|d| format!(" default=\"{}\"", xml_escape(d)))
            .unwrap_or_default();
        x += &format!(
            "<parameter name=\"{}\" unique=\"0\" required=\"{}\">\n<longdesc lang=\"en\">{}</longdesc>\n<shortdesc lang=\"en\">{}</shortdesc>\n<content type=\"{}\"{default}/>\n</parameter>\n",
            k.name.to_ascii_lowercase(),
            u8::from(k.required),
            xml_escape(&long),
            xml_escape(short(k.help)),
            content_type(k)
        );
    }
    x += "</parameters>\n<actions>\n";
    for a in ["start", "stop"] {
        x += &format!("<action name=\"{a}\" timeout=\"{op}\"/>\n");
    }
    x += &format!("<action name=\"monitor\" timeout=\"{op}\" interval=\"10s\" depth=\"0\"/>\n");
    if spec.depth.is_some() {
        for d in [10, 20] {
            x += &format!(
                "<action name=\"monitor\" timeout=\"{op}\" interval=\"60s\" depth=\"{d}\"/>\n"
            );
        }
    }
    x += &format!("<action name=\"recover\" timeout=\"{op}\"/>\n");
    x += "<action name=\"validate-all\" timeout=\"20s\"/>\n<action name=\"meta-data\" timeout=\"5s\"/>\n";
    x += "</actions>\n</resource-agent>\n";
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::Exit;

    static KEYS: &[KeySpec] = &[
        KeySpec::timeout("20"),
        KeySpec::resource("DEVICE", Kind::List, None, "the disks").required(),
        KeySpec::resource(
            "ON_FENCED",
            Kind::Choice(&["halt", "event"]),
            Some("event"),
            "policy",
        ),
    ];

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn detects_ocf_calls() {
        assert_eq!(
            detect(&v("/usr/lib/ocf/resource.d/lkhelpers/nas monitor"), false),
            Some("monitor")
        );
        assert_eq!(
            detect(&v("/usr/lib/ocf/resource.d/lkhelpers/nas"), false),
            Some("")
        );
        assert_eq!(detect(&v("lkh-nas start"), true), Some("start"));
        assert_eq!(detect(&v("lkh-nas start"), false), None);
        assert_eq!(detect(&v("lkh-nas restore -t x"), true), None);
        assert_eq!(detect(&v("lkh-nas status"), true), None);
        assert_eq!(
            detect(
                &v("/lk/subsys/gen/resources/app/actions/!restore/x -t x"),
                true
            ),
            None
        );
    }

    #[test]
    fn instance_names_become_safe_tags() {
        assert_eq!(tag_for_instance(Some("vip"), "ip"), "vip");
        assert_eq!(tag_for_instance(Some("vip:0"), "ip"), "vip_0");
        assert_eq!(tag_for_instance(Some("../../etc"), "ip"), ".._.._etc");
        assert_eq!(tag_for_instance(Some(".."), "ip"), "ocf-ip");
        assert_eq!(tag_for_instance(None, "nas"), "ocf-nas");
        assert_eq!(tag_for_instance(Some("a\nb/c"), "ip"), "a_b_c");
    }

    #[test]
    fn parameters_map_to_keys_and_unknown_ones_are_refused() {
        let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect()
        };
        let p = parameters(
            KEYS,
            &env(&[
                ("OCF_RESKEY_device", "/dev/sdb"),
                ("OCF_RESKEY_on_fenced", ""),
                ("OCF_RESKEY_CRM_meta_timeout", "20000"),
                ("OCF_RESKEY_crm_feature_set", "3.16.2"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(p, [("DEVICE".to_owned(), "/dev/sdb".to_owned())]);
        // values are checked where the configuration is built, named as Pacemaker's parameter
        let p = parameters(KEYS, &env(&[("OCF_RESKEY_on_fenced", "sometimes")])).unwrap();
        let f = crate::config::Config::defaults(KEYS)
            .set_from(KEYS, &p[0].0, &p[0].1, crate::config::Origin::OcfParameter)
            .unwrap_err();
        assert_eq!(f.exit, Exit::Usage);
        assert!(
            f.message
                .starts_with("parameter on_fenced (OCF_RESKEY_on_fenced): ON_FENCED='sometimes'")
                && !f.message.contains("command line"),
            "{f}"
        );
        for bad in ["OCF_RESKEY_devcie", "OCF_RESKEY_DEVICE"] {
            let f = parameters(KEYS, &env(&[(bad, "x")])).unwrap_err();
            assert_eq!(f.exit, Exit::Usage, "{bad}");
            assert!(f.message.contains("device, on_fenced"), "{f}");
        }
    }

    #[test]
    fn timeouts_and_depths() {
        assert_eq!(timeout_cap(Some("20000")), Some(19));
        assert_eq!(timeout_cap(Some("500")), Some(1));
        assert_eq!(timeout_cap(Some("soon")), None);
        assert_eq!(timeout_cap(None), None);
        let d = Some(("IO_CHECK", ["none", "stat", "read"]));
        assert_eq!(depth_value(d, Some("0")), Some(("IO_CHECK", "none")));
        assert_eq!(depth_value(d, Some("15")), Some(("IO_CHECK", "stat")));
        assert_eq!(depth_value(d, Some("20")), Some(("IO_CHECK", "read")));
        assert_eq!(depth_value(d, None), None);
        assert_eq!(depth_value(None, Some("20")), None);
    }

    #[test]
    fn short_descriptions_are_first_clauses() {
        assert_eq!(
            short("the exported path on the server, e.g. /srv/data"),
            "the exported path on the server"
        );
        assert_eq!(
            short("the NAS's IP address (a host name is resolved)"),
            "the NAS's IP address"
        );
        assert_eq!(short("where: x"), "where: x");
        assert_eq!(short("one thing; another"), "one thing; another");
        assert_eq!(short("a longer thing; another"), "a longer thing");
    }

    #[test]
    fn readme_shows_the_exit_table() {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("### OCF exit codes")
            .nth(1)
            .expect("README has an OCF exit codes section");
        let rows: Vec<&str> = section
            .lines()
            .skip_while(|l| !l.starts_with("|---"))
            .skip(1)
            .take_while(|l| l.starts_with('|'))
            .collect();
        let want: Vec<String> = codes::rows()
            .iter()
            .map(|(ours, theirs)| format!("| {ours} | {theirs} |"))
            .collect();
        assert_eq!(
            rows, want,
            "README's OCF exit codes table must be ocf::codes::MAPPING"
        );
    }

    #[test]
    fn unknown_actions_are_unimplemented() {
        assert_eq!(
            OcfAction::parse("migrate_to"),
            OcfAction::Unimplemented("migrate_to".into())
        );
    }
}
