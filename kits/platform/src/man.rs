//! `lkh-platform(8)`, rendered from the clap definition that also produces `--help`: the
//! commands, their options and help texts, each command's own text after its help (kept as
//! written, unfilled), and the exit-code text shown after the help.

use clap::{Arg, Command};
use lkh_common::man;

/// How an option is written: `-v, --verbose`, `--sysroot DIR`.
fn flag(arg: &Arg) -> String {
    let mut names = Vec::new();
    if let Some(s) = arg.get_short() {
        names.push(format!("-{s}"));
    }
    if let Some(l) = arg.get_long() {
        names.push(format!("--{l}"));
    }
    let mut s = names.join(", ");
    if arg.get_action().takes_values() {
        for v in arg.get_value_names().unwrap_or_default() {
            s += &format!(" {v}");
        }
    }
    s
}

fn help_of(arg: &Arg) -> String {
    arg.get_long_help()
        .or_else(|| arg.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default()
}

fn about(cmd: &Command) -> String {
    cmd.get_long_about()
        .or_else(|| cmd.get_about())
        .map(|h| h.to_string())
        .unwrap_or_default()
}

/// clap's own `--help`, `--version` and `help` command, which every page would repeat.
fn generated(id: &str) -> bool {
    matches!(id, "help" | "version")
}

/// The options of `cmd` that `--help` shows (its own, not the inherited global ones).
fn options(cmd: &Command) -> impl Iterator<Item = &Arg> {
    cmd.get_arguments().filter(|a| {
        !a.is_hide_set()
            && !a.is_global_set()
            && !a.is_positional()
            && !generated(a.get_id().as_str())
    })
}

/// The commands `--help` lists, without clap's `help`.
fn commands(cmd: &Command) -> impl Iterator<Item = &Command> {
    cmd.get_subcommands()
        .filter(|c| !c.is_hide_set() && !generated(c.get_name()))
}

/// `text` as written, line by line (roff no-fill), in the command's indented block.
fn preformatted(text: &str) -> String {
    let mut s = String::from(".PP\n.nf\n");
    for line in text.lines() {
        let line = man::escape(line);
        if line.starts_with(['.', '\'']) {
            s += "\\&";
        }
        s += &line;
        s += "\n";
    }
    s + ".fi\n"
}

/// The whole page; `cmd` is the binary's clap command, `after_help` its exit-code text.
pub fn page(mut cmd: Command, after_help: &str) -> String {
    cmd.build();
    let bin = cmd.get_name().to_owned();
    let mut s = man::header(&bin, 8, &about(&cmd));
    s += &man::heading("SYNOPSIS");
    let usages: Vec<String> = commands(&cmd)
        .map(|c| {
            let mut line = format!("{bin} [-v] {}", c.get_name());
            for a in options(c) {
                line += &format!(" [{}]", flag(a));
            }
            line
        })
        .collect();
    s += &man::lines(&usages);
    s += &man::heading("DESCRIPTION");
    s += &man::paragraph(&format!(
        "{bin} is one of the lkhelpers binaries; lkhelpers(7) describes what they share."
    ));
    s += &man::heading("COMMANDS");
    for c in commands(&cmd) {
        s += &man::tagged(c.get_name(), "", &about(c));
        let mut opts = options(c).peekable();
        let after = c
            .get_after_long_help()
            .or_else(|| c.get_after_help())
            .map(|h| h.to_string());
        if opts.peek().is_some() || after.is_some() {
            s += ".RS\n";
            for a in opts {
                s += &man::tagged(&flag(a), "", &help_of(a));
            }
            if let Some(text) = after {
                s += &preformatted(&text);
            }
            s += ".RE\n";
        }
    }
    s += &man::heading("OPTIONS");
    for a in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        // --help and --version are shown once here, for the binary.
        s += &man::tagged(&flag(a), "", &help_of(a));
    }
    s += &man::heading("EXIT STATUS");
    // a line indented past the code column continues the one above
    let mut joined: Vec<String> = Vec::new();
    for line in after_help.lines() {
        match joined.last_mut() {
            Some(prev) if line.starts_with("     ") => {
                prev.push(' ');
                prev.push_str(line.trim());
            }
            _ => joined.push(line.to_string()),
        }
    }
    for line in joined.iter().map(|l| l.trim()).filter(|l| !l.is_empty()) {
        match line.split_once("  ") {
            Some((code, text)) if code.parse::<u8>().is_ok() => {
                s += &man::tagged(code, "", text.trim());
            }
            _ if line == "Exit codes:" => {}
            _ => s += &man::paragraph(line),
        }
    }
    s += &man::see_also(&bin, &[]);
    man::finish(s)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn each_commands_own_text_is_on_the_page() {
        let page = super::page(crate::Cli::command(), crate::AFTER_HELP).replace("\\-", "-");
        for text in [
            crate::DETECT_HELP,
            crate::CHECK_HELP,
            crate::CLUSTER_HELP,
            crate::DOCTOR_HELP,
        ] {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                assert!(page.contains(line), "{line}");
            }
        }
        // an exit-code entry that goes on over two lines is one entry
        let words = page.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            words.contains(".TP .B 0 detect: verdict printed; check-lifekeeper: consistent; check-cluster: every node on a host of its own;"),
            "{page}"
        );
    }
}
