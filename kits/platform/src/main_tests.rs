//! The binary's own unit tests (the command-line parser, the renderings).

use super::*;
use clap::CommandFactory;

/// `--help` of the binary and of every command, as the user sees them.
fn all_help() -> String {
    let mut cmd = Cli::command();
    cmd.build();
    let mut text = cmd.render_long_help().to_string();
    for sub in cmd.get_subcommands_mut() {
        text += &sub.render_long_help().to_string();
    }
    text
}

#[test]
fn man_page_and_help_show_the_same_commands_and_options() {
    let help = all_help();
    let roff = man::page(Cli::command(), AFTER_HELP).replace("\\-", "-");
    let page = roff.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut cmd = Cli::command();
    cmd.build();
    for sub in cmd.get_subcommands().filter(|c| c.get_name() != "help") {
        let name = sub.get_name();
        assert_eq!(
            sub.is_hide_set(),
            !roff.contains(&format!(".B {name}\n")),
            "{name}"
        );
        for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
            if let Some(long) = arg.get_long() {
                let flag = format!("--{long}");
                assert!(help.contains(&flag), "help lacks {flag}");
                assert!(page.contains(&flag), "man page lacks {flag}");
            }
        }
    }
    for line in AFTER_HELP
        .lines()
        .filter(|l| l.trim_start().starts_with(['0', '1', '2']))
    {
        let text = line
            .trim()
            .split_once("  ")
            .map(|(_, t)| t.trim())
            .unwrap_or_default();
        assert!(help.contains(text) && page.contains(text), "{line}");
    }
    assert!(roff.starts_with(".TH \"LKH-PLATFORM\" \"8\""), "{roff}");
}
