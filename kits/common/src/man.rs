//! Man pages in roff (man(7) macros), rendered from the same [`doc`](crate::doc) sections as
//! `--help`: `lkh-<kit>(8)` from a kit's [`KitSpec`], and `lkhelpers(7)`, the overview of the
//! hook contract, the configuration syntax and the exit codes. Each binary prints its page with
//! the hidden command `man` (`lkh-scsipr man`, `lkh-scsipr man lkhelpers`); the packaging
//! script calls it.

use crate::doc::{self, Item, Layout, Section};
use crate::kit::KitSpec;
use crate::version;

/// Escapes text for roff and fills it into source lines of at most 78 bytes where the words
/// allow (roff joins them again); no line starts with a `.` or `'`, which would be a request.
pub fn fill(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace().map(breakable) {
        if !line.is_empty() && line.len() + 1 + word.len() > 78 {
            out += &line;
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line += &word;
    }
    out += &line;
    out
}

/// A word escaped, and when it is too long for a line (a path), with break points (`\:`)
/// after its `/` and `,`, since the pages are neither hyphenated nor justified.
fn breakable(word: &str) -> String {
    let escaped = escape(word);
    if word.chars().count() <= 30 {
        return escaped;
    }
    escaped.replace('/', "/\\:").replace(',', ",\\:")
}

/// Escapes text for roff: backslashes, minus signs, and a leading `.` or `'` that would
/// otherwise start a request.
pub fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => s.push_str("\\e"),
            '-' => s.push_str("\\-"),
            _ => s.push(c),
        }
    }
    if s.starts_with('.') || s.starts_with('\'') {
        s.insert_str(0, "\\&");
    }
    s
}

/// The `.TH` line and the NAME section; no hyphenation and no justification, so that option
/// names and paths stay whole.
pub fn header(name: &str, section: u8, what: &str) -> String {
    format!(
        ".TH \"{}\" \"{section}\" \"{}\" \"lkhelpers {}\" \"lkhelpers\"\n.nh\n.ad l\n.SH NAME\n{} \\- {}\n",
        name.to_ascii_uppercase(),
        version::DATE,
        version::VERSION,
        escape(name),
        escape(what)
    )
}

/// A section heading.
pub fn heading(title: &str) -> String {
    format!(".SH \"{}\"\n", title.replace('"', ""))
}

/// A paragraph.
pub fn paragraph(text: &str) -> String {
    format!(".PP\n{}\n", fill(text))
}

/// A tagged paragraph: `term` in bold, then `note`, then `text` indented below.
pub fn tagged(term: &str, note: &str, text: &str) -> String {
    let mut s = format!(".TP\n.B {}", escape(term));
    if !note.is_empty() {
        s = format!(".TP\n\\fB{}\\fR {}", escape(term), escape(note));
    }
    s.push('\n');
    if !text.is_empty() {
        s += &fill(text);
        s.push('\n');
    }
    s
}

/// The finished page: no paragraph macro right after a heading, where it would do nothing.
pub fn finish(page: String) -> String {
    let mut out = String::with_capacity(page.len());
    let mut after_heading = false;
    for line in page.lines() {
        if !(after_heading && line == ".PP") {
            out += line;
            out.push('\n');
        }
        after_heading = line.starts_with(".SH ");
    }
    out
}

/// Lines kept as they are (a synopsis).
pub fn lines(lines: &[String]) -> String {
    let mut s = String::new();
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            s += ".br\n";
        }
        s += &fill(l);
        s.push('\n');
    }
    s
}

/// One [`Section`] as man(7) source.
pub fn section(sec: &Section) -> String {
    let mut s = heading(sec.man_title);
    for p in &sec.intro {
        s += &paragraph(p);
    }
    match sec.layout {
        Layout::Lines => {
            for (i, item) in sec.items.iter().enumerate() {
                if i > 0 {
                    s += ".br\n";
                }
                s += &fill(&item.term);
                s.push('\n');
                if !item.text.is_empty() {
                    s += &format!(".RS\n{}\n.RE\n", fill(&item.text));
                }
            }
        }
        Layout::Columns | Layout::Hanging => {
            for Item { term, note, text } in &sec.items {
                s += &tagged(term, note, text);
            }
        }
    }
    for p in &sec.outro {
        s += &paragraph(p);
    }
    s
}

/// The SEE ALSO section: lkhelpers(7) and every binary's page but `except`'s, then `extra`
/// (`"name (N)"`).
pub fn see_also(except: &str, extra: &[&str]) -> String {
    let mut refs: Vec<String> = Vec::new();
    if except != "lkhelpers" {
        refs.push("lkhelpers (7)".to_owned());
    }
    for (bin, _) in doc::BINARIES {
        if bin != except {
            refs.push(format!("{bin} (8)"));
        }
    }
    refs.extend(extra.iter().map(|s| s.to_string()));
    let mut s = heading("SEE ALSO");
    for (i, r) in refs.iter().enumerate() {
        let (name, sect) = r.split_once(' ').unwrap_or((r, ""));
        let sep = if i + 1 < refs.len() { "," } else { "" };
        s += &format!(".BR {} {}{sep}\n", escape(name), sect);
    }
    s
}

/// `lkh-<kit>(8)`.
pub fn kit_page(spec: &KitSpec) -> String {
    let bin = spec.binary();
    let mut s = header(&bin, 8, spec.summary);
    let mut sections = doc::kit_sections(spec);
    // The synopsis comes first, then what the page is about.
    if !sections.is_empty() {
        s += &section(&sections.remove(0));
    }
    s += &heading("DESCRIPTION");
    s += &paragraph(&format!(
        "{bin} is one of the lkhelpers binaries. LifeKeeper runs it as the restore, remove, quickCheck and recover scripts of a resource; an administrator runs its other commands by hand. lkhelpers(7) describes the contract all of them share."
    ));
    for sec in &sections {
        s += &section(sec);
    }
    s += &see_also(&bin, &[]);
    finish(s)
}

/// `lkhelpers(7)`: the overview of the hook contract.
pub fn overview_page() -> String {
    let mut s = header(
        "lkhelpers",
        7,
        "LifeKeeper resource hooks for Linux guests on Hyper-V",
    );
    s += &heading("DESCRIPTION");
    s += &paragraph(
        "lkhelpers is a set of small static binaries that SIOS LifeKeeper runs as the action scripts of its resources inside Linux guests on Hyper-V, plus the diagnostics an administrator runs by hand. Every call is one process: it reads its configuration, does one bounded piece of work, logs one line per event and exits with one of the codes below.",
    );
    for (bin, what) in doc::BINARIES {
        s += &tagged(&format!("{bin}(8)"), "", what);
    }
    s += &heading("THE HOOK CONTRACT");
    s += &paragraph(
        "A kit binary is called as lkh-KIT ACTION -t TAG [-i ID]. LifeKeeper calls it through its Generic Application (gen/app) kit: lkh-KIT genapp writes four wrapper scripts (restore, remove, quickCheck, recover) into /usr/lib/lkhelpers/genapp/KIT/, each of which execs the installed binary with its action; the gen/app wizard copies each to $LKROOT/subsys/gen/resources/app/{actions,recovery}/!ACTION/TAG and runs the copy with -t TAG -i ID, the action taken from the directory's name. Extra short flags LifeKeeper may pass are ignored; unknown long options are refused. lkh-KIT validate -t TAG checks a resource's configuration without changing anything. Every action has a deadline, TIMEOUT= seconds: an action still running then logs why and exits 1, and one that cannot be interrupted is killed one second later.",
    );
    for (action, what) in doc::ACTIONS {
        s += &tagged(action.name(), "", what);
    }
    s += &heading("CONFIGURATION");
    s += &paragraph(&doc::configuration_paragraph());
    s += &paragraph(
        "Tags are made of the characters A-Z a-z 0-9 . _ - and are neither . nor ..; each kit's page lists the keys it understands.",
    );
    let mut exit = Section {
        title: "EXIT CODES",
        man_title: "EXIT STATUS",
        layout: Layout::Columns,
        intro: Vec::new(),
        items: doc::exit_items(),
        outro: Vec::new(),
    };
    s += &section(&exit);
    exit.man_title = "LOGGING";
    exit.items.clear();
    exit.intro.push(doc::LOGGING.to_owned());
    s += &section(&exit);
    s += &heading("ENVIRONMENT");
    for Item { term, note, text } in doc::environment_items() {
        s += &tagged(&term, &note, &text);
    }
    s += &see_also("lkhelpers", &[]);
    finish(s)
}

/// The page the hidden `man` command prints: `args` empty → the kit's own page,
/// `lkhelpers` → the overview. `None` for anything else.
pub fn page_for(spec: &KitSpec, args: &[String]) -> Option<String> {
    match args {
        [] => Some(kit_page(spec)),
        [one] if one == "lkhelpers" => Some(overview_page()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{KeySpec, Kind};

    static SPEC: KitSpec = KitSpec {
        kit: "toy",
        summary: "a toy kit",
        keys: &[
            KeySpec::timeout("20"),
            KeySpec::resource("DEVICE", Kind::List, None, "the disks"),
            KeySpec::lifekeeper(
                "FAILFASTTIMER",
                Kind::Uint { min: 1, max: 9 },
                Some("5"),
                "how often",
            ),
        ],
        commands: &[
            ("status -t TAG [--json]", "show it"),
            ("doctor DEVICE", "diagnose it"),
        ],
        actions_help: "  For toy: restore\n  does things.\n",
        check: None,
        depth: None,
    };

    /// The text a reader sees, roughly: roff escapes and requests removed.
    fn plain(roff: &str) -> String {
        roff.lines()
            .map(|l| l.trim_start_matches(".TP").trim_start_matches(".B "))
            .collect::<Vec<_>>()
            .join("\n")
            .replace("\\-", "-")
            .replace("\\fB", "")
            .replace("\\fR", "")
            .replace("\\e", "\\")
            .replace("\\&", "")
            .replace("\\:", "")
    }

    #[test]
    fn escapes_what_roff_would_interpret() {
        assert_eq!(escape("--lkroot"), "\\-\\-lkroot");
        assert_eq!(escape("a\\b"), "a\\eb");
        assert_eq!(escape(".../actions"), "\\&.../actions");
        assert_eq!(escape("'x'"), "\\&'x'");
        let long = format!("{} .x 'y", "word ".repeat(40));
        let filled = fill(&long);
        assert!(
            filled
                .lines()
                .all(|l| l.len() <= 78 && !l.starts_with(['.', '\''])),
            "{filled}"
        );
        assert_eq!(filled.split_whitespace().count(), 42);
        let path = "DIR/subsys/lkhelpers/Resources/kit/actions/{restore,remove}";
        assert_eq!(fill(path).replace("\\:", ""), path);
        assert!(fill(path).contains("/\\:subsys"), "{}", fill(path));
    }

    /// Words separated by single spaces, whatever the line breaks.
    fn squash(s: &str) -> String {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn help_and_man_page_show_every_key_command_and_exit_code() {
        let help = squash(&SPEC.help());
        let text = squash(&plain(&kit_page(&SPEC)));
        for k in SPEC.keys {
            assert!(help.contains(k.name), "help lacks {}", k.name);
            assert!(text.contains(k.name), "man page lacks {}", k.name);
            assert!(
                help.contains(&k.flag()) && text.contains(&k.flag()),
                "{}",
                k.flag()
            );
            assert!(
                text.contains(&squash(k.help)),
                "man page lacks help of {}",
                k.name
            );
            assert!(
                help.contains(&squash(k.help)),
                "help lacks help of {}",
                k.name
            );
        }
        for (usage, what) in SPEC.commands {
            for page in [&help, &text] {
                assert!(page.contains(usage) && page.contains(what), "{usage}");
            }
        }
        for e in crate::Exit::ALL {
            assert!(help.contains(&squash(e.meaning())), "{e:?}");
            assert!(text.contains(&squash(e.meaning())), "{e:?}");
        }
        assert!(help.contains("FAILFASTTIMER (LK) [default: 5]"), "{help}");
        assert!(text.contains("FAILFASTTIMER (LK) [default: 5]"), "{text}");
        assert!(text.contains("For toy: restore does things."), "{text}");
    }

    #[test]
    fn every_help_section_is_a_man_section() {
        let help = SPEC.help();
        let man = kit_page(&SPEC);
        for sec in doc::kit_sections(&SPEC) {
            assert!(
                help.contains(&format!("\n{}\n", sec.title)),
                "{}",
                sec.title
            );
            assert!(man.contains(&heading(sec.man_title)), "{}", sec.man_title);
        }
    }

    #[test]
    fn pages_are_well_formed() {
        for (page, title) in [
            (kit_page(&SPEC), "LKH-TOY\" \"8\""),
            (overview_page(), "LKHELPERS\" \"7\""),
        ] {
            assert!(page.starts_with(&format!(".TH \"{title}")), "{page}");
            assert!(page.contains("\n.SH NAME\n"));
            assert!(page.contains("\n.SH \"SEE ALSO\"\n"));
            // No text line may start a request by accident.
            for line in page.lines() {
                let known = [
                    ".TH ", ".nh", ".ad l", ".SH ", ".PP", ".TP", ".B ", ".BR ", ".br", ".RS",
                    ".RE",
                ];
                assert!(
                    !line.starts_with(['.', '\'']) || known.iter().any(|k| line.starts_with(k)),
                    "{line}"
                );
            }
        }
        let overview = squash(&plain(&overview_page()));
        for e in crate::Exit::ALL {
            assert!(overview.contains(&squash(e.meaning())));
        }
        assert!(overview.contains(&squash(&doc::configuration_paragraph())));
        assert!(page_for(&SPEC, &["lkhelpers".into()]).is_some());
        assert!(page_for(&SPEC, &["other".into()]).is_none());
    }
}
