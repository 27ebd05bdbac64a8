//! The documentation of a kit as data: the sections that `--help` prints as text and
//! [`crate::man`] renders as a man page, built from the kit's [`KitSpec`] (its key table and
//! commands) and the contract's own tables (actions, exit codes, environment). Help and man
//! page are two renderings of the same sections, so they cannot drift apart.

use crate::cli::Action;
use crate::config::{self, Scope};
use crate::exit::Exit;
use crate::genapp;
use crate::kit::KitSpec;

/// How a section's items are laid out in the help text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One item per line (usage lines), a text if any on the line below.
    Lines,
    /// Term and text on one line, the texts aligned in a column.
    Columns,
    /// Term (and note) on one line, the text indented below it.
    Hanging,
}

/// One entry of a section: a term (a key name, a command, a code), a note shown after it
/// (defaults, scope) and the text that explains it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub term: String,
    pub note: String,
    pub text: String,
}

impl Item {
    fn new(term: impl Into<String>, text: impl Into<String>) -> Item {
        Item {
            term: term.into(),
            note: String::new(),
            text: text.into(),
        }
    }
}

/// One section of the help text and the man page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// Title in the help text (`EXIT CODES`).
    pub title: &'static str,
    /// Title in the man page (`EXIT STATUS`).
    pub man_title: &'static str,
    pub layout: Layout,
    /// Paragraphs before the items.
    pub intro: Vec<String>,
    pub items: Vec<Item>,
    /// Paragraphs after the items.
    pub outro: Vec<String>,
}

impl Section {
    fn new(title: &'static str, man_title: &'static str, layout: Layout) -> Section {
        Section {
            title,
            man_title,
            layout,
            intro: Vec::new(),
            items: Vec::new(),
            outro: Vec::new(),
        }
    }
}

/// What each hook action does, for every kit.
pub const ACTIONS: [(Action, &str); 4] = [
    (
        Action::Restore,
        "bring the resource into service on this node (idempotent)",
    ),
    (
        Action::Remove,
        "take it out of service on this node (idempotent)",
    ),
    (
        Action::QuickCheck,
        "check its health; non-zero makes LifeKeeper run recover",
    ),
    (
        Action::Recover,
        "repair it locally; non-zero makes LifeKeeper fail over",
    ),
];

/// The environment variables every binary reads.
pub const ENVIRONMENT: [(&str, &str); 7] = [
    (
        "LKHELPERS_CONF_DIR",
        "directory of the TAG.conf files (default /etc/lkhelpers)",
    ),
    (
        "LKHELPERS_LK_DEFAULTS",
        "LifeKeeper's defaults file (default /etc/default/LifeKeeper)",
    ),
    (
        "LKHELPERS_RUN_DIR",
        "runtime state (default /run/lkhelpers)",
    ),
    ("LKHELPERS_NO_SYSLOG", "set to log to stderr only"),
    (
        "LKROOT",
        "LifeKeeper's root, where lkh-platform check-lifekeeper looks for gen/app resources (default /opt/LifeKeeper)",
    ),
    ("RUST_LOG", "log filter, e.g. debug"),
    (
        genapp::BINARY_ENV,
        "genapp: the binary the wrappers exec (default: this binary's own path), for packaging",
    ),
];

/// The binaries of lkhelpers and what each is for, for the overview page.
pub const BINARIES: [(&str, &str); 4] = [
    (
        "lkh-scsipr",
        "the I/O fence: SCSI-3 persistent reservations on shared disks",
    ),
    ("lkh-nas", "an NFS mount from a NAS whose checks never hang"),
    ("lkh-ip", "a virtual IP, monitored past the virtual switch"),
    (
        "lkh-platform",
        "tells on-premises Hyper-V from Azure and checks what LifeKeeper recorded",
    ),
];

/// The configuration syntax, one paragraph.
pub fn configuration_paragraph() -> String {
    format!(
        "{}/TAG.conf (directory: $LKHELPERS_CONF_DIR): KEY=value lines, # comments, optional '...' or \"...\" quotes and no shell expansion, the syntax of {} (path: $LKHELPERS_LK_DEFAULTS), whose LifeKeeper tunables (marked LK) apply unless the resource file sets them. Files must be plain files (no symbolic links) owned by root and not writable by group or others, in directories that are the same all the way up. Every key can also be given on the command line as --key value or --set KEY=VALUE, which win over both files; --no-config runs without a resource file. Unknown keys, duplicate keys and malformed values are refused with exit code 2 before anything is changed.",
        config::DEFAULT_CONF_DIR,
        config::DEFAULT_LK_DEFAULTS
    )
}

/// How the binaries log, one paragraph.
pub const LOGGING: &str = "One line per event on stderr as 'lkh-KIT[TAG]: LEVEL: message', also to syslog (ident lkhelpers, facility LKSYSLOGSELECTOR from /etc/default/LifeKeeper, default local6) when /dev/log exists; -v or RUST_LOG=debug adds debug detail.";

/// The exit-code items, from [`Exit::ALL`].
pub fn exit_items() -> Vec<Item> {
    Exit::ALL
        .iter()
        .map(|e| Item::new(e.code().to_string(), e.meaning()))
        .collect()
}

/// The environment items, from [`ENVIRONMENT`].
pub fn environment_items() -> Vec<Item> {
    ENVIRONMENT.iter().map(|(k, v)| Item::new(*k, *v)).collect()
}

/// The commands lkh-common gives every kit: (usage, help).
pub fn builtin_commands(spec: &KitSpec) -> Vec<(String, String)> {
    vec![
        (
            "validate -t TAG".to_owned(),
            "check TAG's configuration as the actions would, change nothing; print the effective KEY=value settings".to_owned(),
        ),
        (
            "genapp [-t TAG] [--dir DIR]   (also: install)".to_owned(),
            format!(
                "write the restore, remove, quickCheck and recover wrappers for LifeKeeper's Generic Application wizard into DIR (default {}) and print the wizard's answers; DIR, every directory above it and this binary's own path must be root's, not writable by group or others and free of links (LifeKeeper runs the wrappers' copies as root)",
                genapp::default_dir(spec.kit).display()
            ),
        ),
    ]
}

/// Every section of a kit's help text and man page, in order.
pub fn kit_sections(spec: &KitSpec) -> Vec<Section> {
    let bin = spec.binary();
    let builtins = builtin_commands(spec);
    let mut usage = Section::new("USAGE", "SYNOPSIS", Layout::Lines);
    usage.items.push(Item::new(
        format!(
            "{bin} ACTION -t TAG [-i ID] [-v] [--no-config] [--KEY VALUE | --set KEY=VALUE]..."
        ),
        "",
    ));
    usage.items.push(Item::new(
        "$LKROOT/subsys/gen/resources/app/{actions,recovery}/!ACTION/TAG -t TAG -i ID",
        "(a gen/app copy of a wrapper or of this binary: the action is the directory's name)",
    ));
    for (u, _) in spec.commands {
        usage.items.push(Item::new(format!("{bin} {u}"), ""));
    }
    for (u, _) in &builtins {
        let u = u.split("   (").next().unwrap_or(u);
        usage.items.push(Item::new(format!("{bin} {u}"), ""));
    }

    let mut actions = Section::new("ACTIONS (called by LifeKeeper)", "ACTIONS", Layout::Columns);
    actions.items = ACTIONS
        .iter()
        .map(|(a, text)| Item::new(a.name(), *text))
        .collect();
    let extra = spec.actions_help.split_whitespace().collect::<Vec<_>>();
    if !extra.is_empty() {
        actions.outro.push(extra.join(" "));
    }

    let mut commands = Section::new("COMMANDS", "COMMANDS", Layout::Hanging);
    commands.items = spec
        .commands
        .iter()
        .map(|(u, h)| Item::new(*u, *h))
        .chain(
            builtins
                .iter()
                .map(|(u, h)| Item::new(u.clone(), h.clone())),
        )
        .collect();

    let mut configuration = Section::new("CONFIGURATION", "CONFIGURATION", Layout::Hanging);
    configuration.intro.push(configuration_paragraph());
    configuration.items = spec
        .keys
        .iter()
        .map(|k| {
            let mut note = String::new();
            if k.required {
                note += "[required]";
            }
            if k.scope == Scope::LifeKeeper {
                if !note.is_empty() {
                    note.push(' ');
                }
                note += "(LK)";
            }
            if let Some(d) = k.default {
                if !note.is_empty() {
                    note.push(' ');
                }
                note += &format!("[default: {d}]");
            }
            Item {
                term: k.name.to_owned(),
                note,
                text: format!("{} ({})", k.help, k.flag()),
            }
        })
        .collect();

    let mut exit = Section::new("EXIT CODES", "EXIT STATUS", Layout::Columns);
    exit.items = exit_items();

    let mut logging = Section::new("LOGGING", "LOGGING", Layout::Lines);
    logging.intro.push(LOGGING.to_owned());

    let mut environment = Section::new("ENVIRONMENT", "ENVIRONMENT", Layout::Columns);
    environment.items = environment_items();

    let mut ocf = Section::new("PACEMAKER (OCF)", "PACEMAKER (OCF)", Layout::Hanging);
    ocf.intro.push(format!(
        "As /usr/lib/ocf/resource.d/lkhelpers/{kit} (a link to this binary) it is an OCF resource agent: start = restore, stop = remove, monitor = quickCheck (a probe of a resource not active here: 7, whatever this node lacks), recover, validate-all, meta-data. Parameters are OCF_RESKEY_<key in lower case> (e.g. OCF_RESKEY_{k}), checked like the configuration file's values; no resource file is read; the instance name is the tag. OCF_RESKEY_CRM_meta_timeout caps TIMEOUT (one second below it){depth}. Exit codes become OCF's:",
        kit = spec.kit,
        k = spec
            .keys
            .iter()
            .find(|k| k.required)
            .unwrap_or(&spec.keys[0])
            .name
            .to_ascii_lowercase(),
        depth = spec
            .depth
            .map(|(key, v)| format!("; OCF_CHECK_LEVEL 0/10/20 sets {key} to {}/{}/{}", v[0], v[1], v[2]))
            .unwrap_or_default()
    ));
    ocf.items = crate::ocf::codes::rows()
        .into_iter()
        .map(|(ours, theirs)| Item::new(ours, theirs))
        .collect();

    vec![
        usage,
        actions,
        commands,
        configuration,
        exit,
        logging,
        environment,
        ocf,
    ]
}

const WIDTH: usize = 100;

/// Appends `text` wrapped at [`WIDTH`]: the first line after `first` (already indented), the
/// others indented by `indent` spaces.
fn wrap_into(out: &mut String, first: &str, indent: usize, text: &str) {
    let mut line = first.to_owned();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = " ".repeat(indent);
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// The sections as the text `--help` prints.
pub fn text(head: &str, sections: &[Section]) -> String {
    let mut s = format!("{head}\n");
    for sec in sections {
        s += &format!("\n{}\n", sec.title);
        for p in &sec.intro {
            wrap_into(&mut s, "  ", 2, p);
        }
        let width = sec
            .items
            .iter()
            .map(|i| i.term.chars().count())
            .max()
            .unwrap_or(0);
        for item in &sec.items {
            let term = if item.note.is_empty() {
                item.term.clone()
            } else {
                format!("{} {}", item.term, item.note)
            };
            match sec.layout {
                Layout::Lines => {
                    s += &format!("  {term}\n");
                    if !item.text.is_empty() {
                        wrap_into(&mut s, "      ", 6, &item.text);
                    }
                }
                Layout::Columns => {
                    let first = format!("  {:width$}  ", item.term);
                    wrap_into(&mut s, &first, width + 4, &item.text);
                }
                Layout::Hanging => {
                    s += &format!("  {term}\n");
                    wrap_into(&mut s, "      ", 6, &item.text);
                }
            }
        }
        for p in &sec.outro {
            wrap_into(&mut s, "  ", 2, p);
        }
    }
    s
}

/// A kit's whole `--help` text.
pub fn kit_help(spec: &KitSpec) -> String {
    text(
        &format!("{}: {}", spec.binary(), spec.summary),
        &kit_sections(spec),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_every_word_and_the_width() {
        let mut out = String::new();
        let text = "word ".repeat(60);
        wrap_into(&mut out, "  x  ", 5, &text);
        assert_eq!(out.split_whitespace().filter(|w| *w == "word").count(), 60);
        assert!(out.lines().all(|l| l.chars().count() <= WIDTH), "{out}");
        assert!(
            out.lines().skip(1).all(|l| l.starts_with("     word")),
            "{out}"
        );
    }

    #[test]
    fn a_word_longer_than_the_line_stays_whole() {
        let mut out = String::new();
        let long = "x".repeat(WIDTH + 10);
        wrap_into(&mut out, "  ", 2, &format!("a {long} b"));
        assert_eq!(out, format!("  a\n  {long}\n  b\n"));
    }
}
