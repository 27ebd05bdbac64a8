//! Wrappers for LifeKeeper's Generic Application (gen/app) kit, the documented way to plug
//! third-party scripts into LifeKeeper for Linux.
//!
//! The gen/app wizard asks for the paths of a restore, remove, quickCheck and local-recovery
//! script, **copies** each file to `$LKROOT/subsys/gen/resources/app/actions/!<action>/<tag>`
//! (recover: `…/app/recovery/!recover/<tag>`) and runs the copy with `-t <tag> -i <id>`.
//! A copy of a kit binary would go stale at the next upgrade, so we hand the wizard a
//! three-line `/bin/sh` wrapper per action that execs the installed binary with its action and
//! passes LifeKeeper's arguments through. The copy then keeps working across upgrades.
//!
//! The second line of every wrapper is a marker (`# lkhelpers gen/app wrapper: kit=… action=…
//! binary=…`). It lets [`write`] tell its own files from an admin's (it never overwrites the
//! latter) and lets `lkh-platform check-lifekeeper` recognise and verify the copies.

use crate::cli::Action;
use crate::exit::Failure;
use crate::trusted;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// LifeKeeper's install root when `$LKROOT` is not set.
pub const DEFAULT_LKROOT: &str = "/opt/LifeKeeper";
/// Where `genapp` writes the wrappers by default: `/usr/lib/lkhelpers/genapp/<kit>/`.
pub const DEFAULT_DIR: &str = "/usr/lib/lkhelpers/genapp";
/// The gen/app kit's resources under `$LKROOT`, and its directories that hold the per-tag
/// copies.
pub const APP_DIR: &str = "subsys/gen/resources/app";
pub const ACTIONS_DIR: &str = "subsys/gen/resources/app/actions";
pub const RECOVERY_DIR: &str = "subsys/gen/resources/app/recovery";

const MARKER: &str = "# lkhelpers gen/app wrapper: ";
/// Bytes every lkhelpers binary contains ([`crate::run`] keeps them), so a copy of one can be
/// recognised before it is ever run (`lkh-platform check-lifekeeper` runs only those).
pub const BINARY_MARKER: &[u8] = b"lkhelpers-binary-marker:2c8f1e";
/// The binary the wrappers exec when set (default: the running binary's own path); the
/// packaging sets it to the installed path, since it writes the wrappers from a staging tree.
pub const BINARY_ENV: &str = "LKHELPERS_GENAPP_BINARY";

/// Wrappers are small; anything larger is not one of ours.
pub const MAX_WRAPPER_LEN: usize = 4096;

/// The directory `genapp` uses for `kit` when none is given.
pub fn default_dir(kit: &str) -> PathBuf {
    Path::new(DEFAULT_DIR).join(kit)
}

/// The directory where gen/app keeps its copies of the `action` scripts, one per tag.
pub fn copy_dir(lkroot: &Path, action: Action) -> PathBuf {
    let base = if action == Action::Recover {
        RECOVERY_DIR
    } else {
        ACTIONS_DIR
    };
    lkroot.join(base).join(format!("!{}", action.name()))
}

/// Where gen/app keeps its copy of the `action` script of resource `tag`.
pub fn copy_path(lkroot: &Path, action: Action, tag: &str) -> PathBuf {
    copy_dir(lkroot, action).join(tag)
}

/// The action named by a gen/app copy directory (`!restore` → restore), exactly spelt.
pub fn action_from_dir(name: &str) -> Option<Action> {
    Action::exact(name.strip_prefix('!')?)
}

/// The gen/app wizard's field that takes the `action` script.
pub fn wizard_field(action: Action) -> &'static str {
    match action {
        Action::Restore => "Restore Script",
        Action::Remove => "Remove Script",
        Action::QuickCheck => "QuickCheck Script",
        Action::Recover => "Local Recovery Script",
    }
}

/// A wrapper as `genapp` writes it, or as its marker comment describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wrapper {
    pub kit: String,
    pub action: Action,
    pub binary: PathBuf,
}

impl Wrapper {
    /// The file's exact text.
    pub fn render(&self) -> String {
        let bin = self.binary.display();
        format!(
            "{SHEBANG}\n{MARKER}kit={} action={} binary={bin}\nexec '{bin}' {} \"$@\"\n",
            self.kit,
            self.action.name(),
            self.action.name()
        )
    }

    /// What the marker comment of `text` says, if it has one: a claim that genapp wrote the
    /// file (so `genapp` may rewrite it), **not** what the file runs — a comment runs nothing.
    /// What runs is [`parse_script`]'s answer.
    pub fn from_marker(text: &str) -> Option<Wrapper> {
        let fields = text.split('\n').find_map(|l| l.strip_prefix(MARKER))?;
        // binary= comes last and may hold spaces
        let (head, bin) = fields.split_once(" binary=")?;
        let (mut kit, mut action) = (None, None);
        for f in head.split(' ') {
            match f.split_once('=') {
                Some(("kit", v)) => kit = Some(v.to_owned()),
                Some(("action", v)) => action = Action::exact(v),
                _ => return None,
            }
        }
        Some(Wrapper {
            kit: kit?,
            action: action?,
            binary: PathBuf::from(bin),
        })
    }
}

/// The interpreter line genapp writes.
pub const SHEBANG: &str = "#!/bin/sh";
/// The interpreter genapp's wrappers run under.
pub const INTERPRETER: &str = "/bin/sh";

/// What a wrapper runs, read from its one executable line exactly as `/bin/sh` runs it:
/// `exec BINARY ACTION "$@"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exec {
    /// The program `exec` replaces the shell with (absolute: no `PATH` search).
    pub binary: PathBuf,
    /// Its first argument.
    pub action: Action,
    /// The line's number, from 1.
    pub line: usize,
}

/// Why a script is not in the form genapp writes: the line, as it reads (control bytes
/// escaped, cut to 120 characters), and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotGenapp {
    /// From 1.
    pub line: usize,
    pub text: String,
    pub what: String,
}

impl NotGenapp {
    fn new(line: usize, text: &str, what: impl Into<String>) -> NotGenapp {
        NotGenapp {
            line,
            text: crate::logging::shown(text, 120),
            what: what.into(),
        }
    }

    /// `line N: `TEXT`: WHAT`.
    pub fn message(&self) -> String {
        format!("line {}: `{}`: {}", self.line, self.text, self.what)
    }
}

/// The form every executable line must have, for messages.
pub const FORM: &str = "exec '/path/to/lkh-<kit>' <action> \"$@\"";

/// One word of a line as `/bin/sh` reads it: its value after quote removal, or `"$@"`.
#[derive(Debug, PartialEq, Eq)]
enum Word {
    Text { value: String, quoted: bool },
    AllArgs,
}

/// Characters that mean nothing special to `/bin/sh` in an unquoted word.
fn plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c)
}

/// Why `c` (unquoted, or `$`/`` ` ``/`\` inside double quotes) is refused.
fn special(c: char) -> String {
    let what = match c {
        ';' | '&' | '|' => "runs a second command (or a pipe, or in the background)",
        '<' | '>' => "redirects input or output",
        '$' | '`' => "expands a variable or a command (only \"$@\", alone, is allowed)",
        '\\' => "has a backslash (an escape or a line continuation)",
        '*' | '?' | '[' | ']' => "has a file name pattern",
        '(' | ')' => "has a subshell or a function",
        '{' | '}' | '~' | '!' => "has a character the shell may expand",
        c if c.is_control() => "has a control character",
        _ => "has a character genapp never writes",
    };
    format!("{what} ({})", crate::logging::escape(&format!("{c:?}")))
}

/// The words of one line, as `/bin/sh` splits them; a `#` at the start of a word ends it.
fn words(line: &str) -> Result<Vec<Word>, String> {
    let mut out = Vec::new();
    let mut rest = line;
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if rest.is_empty() || rest.starts_with('#') {
            return Ok(out);
        }
        if let Some(after) = rest.strip_prefix("\"$@\"") {
            match after.chars().next() {
                None | Some(' ' | '\t') => {}
                Some(c) if plain(c) || c == '\'' || c == '"' => {
                    return Err("joins other characters to \"$@\"".into());
                }
                Some(c) => return Err(special(c)),
            }
            out.push(Word::AllArgs);
            rest = after;
            continue;
        }
        let (mut value, mut quoted) = (String::new(), false);
        let mut chars = rest.char_indices();
        let end = loop {
            let Some((i, c)) = chars.next() else {
                break rest.len();
            };
            match c {
                ' ' | '\t' => break i,
                '\'' | '"' => {
                    quoted = true;
                    let mut closed = false;
                    for (_, q) in chars.by_ref() {
                        if q == c {
                            closed = true;
                            break;
                        }
                        if q.is_control() || (c == '"' && matches!(q, '$' | '`' | '\\')) {
                            return Err(special(q));
                        }
                        value.push(q);
                    }
                    if !closed {
                        return Err("has an unterminated quote".into());
                    }
                }
                c if plain(c) => value.push(c),
                c => return Err(special(c)),
            }
        };
        out.push(Word::Text { value, quoted });
        rest = &rest[end..];
    }
}

/// Reads what a wrapper runs, as `/bin/sh` would: the first line must be `#!/bin/sh`; blank
/// lines and comments are skipped; exactly one line runs something, and it must be
/// `exec BINARY ACTION "$@"` — one absolute binary, one action, LifeKeeper's arguments passed
/// on, nothing else (no second command, no variable, no redirection, no escape; single or
/// double quotes around the binary or action are fine). Anything else names the line.
pub fn parse_script(text: &str) -> Result<Exec, NotGenapp> {
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or_default();
    let interp = first
        .strip_prefix("#!")
        .map(|l| l.trim_matches([' ', '\t']));
    if interp != Some(INTERPRETER) {
        let what = match interp {
            Some(i) => format!(
                "the kernel runs this file with {}, not {INTERPRETER}: genapp's wrappers start with {SHEBANG}",
                crate::logging::shown(i, 60)
            ),
            None => {
                format!("not a script for {INTERPRETER}: genapp's wrappers start with {SHEBANG}")
            }
        };
        return Err(NotGenapp::new(1, first, what));
    }
    let mut found: Option<Exec> = None;
    let mut last = (1, first);
    for (i, line) in lines.enumerate() {
        let n = i + 2;
        if line.contains('\0') {
            return Err(NotGenapp::new(
                n,
                line,
                "has a NUL byte: not a text file genapp writes",
            ));
        }
        // blank means spaces and tabs only: a carriage return is a command to /bin/sh
        let body = line.trim_start_matches([' ', '\t']);
        if body.is_empty() {
            continue;
        }
        last = (n, line);
        if body.starts_with('#') {
            continue;
        }
        if let Some(e) = &found {
            return Err(NotGenapp::new(
                n,
                line,
                format!(
                    "a second command (line {} already execs {}): genapp's wrappers run one line, {FORM}",
                    e.line,
                    e.binary.display()
                ),
            ));
        }
        found = Some(exec_line(n, line)?);
    }
    found.ok_or_else(|| {
        NotGenapp::new(
            last.0,
            last.1,
            format!("the file runs nothing (this is its last line that is not blank): genapp's wrappers end with {FORM}"),
        )
    })
}

/// Reads `exec BINARY ACTION "$@"`.
fn exec_line(n: usize, line: &str) -> Result<Exec, NotGenapp> {
    let bad =
        |what: String| NotGenapp::new(n, line, format!("{what}; genapp's wrappers run {FORM}"));
    let w = words(line).map_err(|what| bad(format!("not the form genapp writes: it {what}")))?;
    match w.first() {
        Some(Word::Text {
            value,
            quoted: false,
        }) if value == "exec" => {}
        Some(Word::Text { value, .. }) if value.contains('=') => {
            return Err(bad("sets a variable before the command".into()));
        }
        _ => return Err(bad("runs a command other than exec".into())),
    }
    let (binary, action) = match &w[1..] {
        [
            Word::Text { value: bin, .. },
            Word::Text { value: act, .. },
            Word::AllArgs,
        ] => (bin, act),
        [.., Word::AllArgs] | [] => {
            let n = w.len().saturating_sub(2);
            return Err(bad(format!(
                "has {n} word{} between exec and \"$@\" where genapp writes two, a binary and an action",
                if n == 1 { "" } else { "s" }
            )));
        }
        _ => {
            return Err(bad(
                "does not end with \"$@\", so LifeKeeper's -t TAG -i ID do not reach the kit"
                    .into(),
            ));
        }
    };
    if !binary.starts_with('/') {
        return Err(bad(format!(
            "execs {}, not an absolute path (/bin/sh would search LifeKeeper's PATH)",
            crate::logging::shown(binary, 120)
        )));
    }
    let Some(action) = Action::exact(action) else {
        return Err(bad(format!(
            "passes {:?}, not an action (restore, remove, quickCheck, recover)",
            crate::logging::shown(action, 40)
        )));
    };
    Ok(Exec {
        binary: PathBuf::from(binary),
        action,
        line: n,
    })
}

/// What happened to one wrapper file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Created,
    Unchanged,
    /// An older wrapper of ours (another binary path, an earlier format, a wrong mode or
    /// owner) was replaced.
    Updated,
}

fn check_binary_path(exe: &Path) -> Result<(), Failure> {
    let s = exe.to_string_lossy();
    if !exe.is_absolute() || s.contains(['\'', '\n', '\\']) || exe.to_str().is_none() {
        return Err(Failure::usage(format!(
            "{}: the binary path must be absolute, valid UTF-8 and free of quotes, backslashes and newlines: install the binary elsewhere (e.g. /usr/sbin)",
            exe.display()
        )));
    }
    Ok(())
}

/// The binary the wrappers will exec, judged with its whole directory chain
/// ([`trusted::judge`]): LifeKeeper runs it as root, so a user who can replace it, or a
/// directory on its way, must not exist. A binary that is not there is not judged (the
/// packaging names the installed path before installing).
pub fn check_binary(exe: &Path) -> Result<(), Failure> {
    match trusted::judge(exe, trusted::Want::File) {
        Ok(j) => match j.flaws.first() {
            None => Ok(()),
            Some(f) => Err(Failure::usage(format!(
                "{}: {}, so the wrappers would exec {} as root while another user can replace it; nothing was written: run `{}`, or install the binary in a root-owned directory (e.g. /usr/sbin) and run genapp from there",
                f.path.display(),
                f.what,
                exe.display(),
                f.fix
            ))),
        },
        Err(u) if u.missing => Ok(()),
        Err(u) => Err(Failure::failed(format!(
            "{}: {} (on the way to {}): cannot judge the binary the wrappers would exec",
            u.path.display(),
            u.what,
            exe.display()
        ))),
    }
}

/// A directory refusal with what it means for genapp.
fn refused(dir: &Path, f: Failure) -> Failure {
    Failure {
        message: format!(
            "{}; LifeKeeper runs copies of the wrappers as root, so nothing was written to {}: fix that, or give another --dir",
            f.message,
            dir.display()
        ),
        ..f
    }
}

/// Writes the four wrappers of `kit` (calling `exe`) into `dir`, creating it if needed.
///
/// `dir` is opened through lkh-common's trusted walk ([`trusted::Dir::open`]): every
/// component from `/` is opened without following links and must be root's (or ours, when
/// not root) and not writable by group or others — a directory another user controls is
/// refused, and missing directories are made with `mkdirat` and set to 0755 on their
/// descriptor. Refuses, before changing anything, when a file there is not a wrapper of ours
/// (or not a regular file). A wrapper is kept only when its text, mode (0755) and owner are
/// exactly right; otherwise it is replaced atomically (written aside, mode set on the
/// descriptor, renamed).
pub fn write(dir: &Path, kit: &str, exe: &Path) -> Result<Vec<(PathBuf, Change)>, Failure> {
    check_binary_path(exe)?;
    let existing = trusted::Dir::open(dir, None).map_err(|f| refused(dir, f))?;
    let mut plan = Vec::new();
    for action in Action::ALL {
        let name = OsStr::new(action.name());
        let path = dir.join(name);
        let want = Wrapper {
            kit: kit.to_owned(),
            action,
            binary: exe.to_owned(),
        }
        .render();
        let entry = match &existing {
            None => trusted::Entry::Missing,
            Some(d) => d.peek(name, MAX_WRAPPER_LEN as u64)?,
        };
        let change = match entry {
            trusted::Entry::Missing => Change::Created,
            trusted::Entry::Other => {
                return Err(Failure::usage(format!(
                    "{}: exists and is not a regular file (a link, a directory?); nothing was changed: move it away, or give another --dir",
                    path.display()
                )));
            }
            trusted::Entry::File {
                data,
                whole,
                uid,
                mode,
            } => {
                let text = String::from_utf8(data).map_err(|_| not_ours(&path))?;
                if !whole || Wrapper::from_marker(&text).is_none() {
                    return Err(not_ours(&path));
                }
                let owner_ok = uid == nix::unistd::geteuid().as_raw();
                if text == want && mode == 0o755 && owner_ok {
                    Change::Unchanged
                } else {
                    Change::Updated
                }
            }
        };
        plan.push((path, want, change));
    }
    let d = trusted::Dir::open(dir, Some(0o755))
        .map_err(|f| refused(dir, f))?
        .ok_or_else(|| {
            Failure::failed(format!("{}: vanished while being created", dir.display()))
        })?;
    let mut done = Vec::new();
    for (path, text, change) in plan {
        if change != Change::Unchanged {
            let name = path.file_name().unwrap_or_default();
            d.write_atomic(name, text.as_bytes(), 0o755)?;
        }
        done.push((path, change));
    }
    Ok(done)
}

fn not_ours(path: &Path) -> Failure {
    Failure::usage(format!(
        "{}: exists and was not written by genapp; nothing was changed: move it away, or give another --dir",
        path.display()
    ))
}

/// The wizard's questions and what to answer, for `kit` with wrappers in `dir`.
/// `tag` is shown where the wizard asks for it (`TAG` when not given).
pub fn wizard_answers(kit: &str, dir: &Path, tag: Option<&str>, conf_dir: &Path) -> String {
    let tag = tag.unwrap_or("TAG");
    let p = |a: Action| dir.join(a.name()).display().to_string();
    let conf = conf_dir.join(format!("{tag}.conf"));
    let conf = conf.display();
    let bin = format!("lkh-{kit}");
    let rows = [
        (
            "Switchback Type",
            "your policy (intelligent: switch back only when you say so)".to_owned(),
        ),
        ("Server", "this node".to_owned()),
        (wizard_field(Action::Restore), p(Action::Restore)),
        (wizard_field(Action::Remove), p(Action::Remove)),
        (
            wizard_field(Action::QuickCheck),
            format!(
                "{}\n{:29}optional to LifeKeeper, not to you: left out, LifeKeeper assumes the resource is always healthy",
                p(Action::QuickCheck),
                ""
            ),
        ),
        (
            wizard_field(Action::Recover),
            format!(
                "{}\n{:29}optional: left out, every quickCheck failure fails the hierarchy over at once",
                p(Action::Recover),
                ""
            ),
        ),
        (
            "Application Info",
            format!("leave empty (the settings are in {conf})"),
        ),
        (
            "Bring Resource In Service",
            format!("Yes, once {conf} exists and `{bin} validate -t {tag}` passes"),
        ),
        ("Resource Tag", format!("{tag} (names {conf})")),
    ];
    let mut s = String::from(
        "LifeKeeper GUI: Edit > Server > Create Resource Hierarchy, Recovery Kit \"Generic Application\"; answer:\n",
    );
    for (q, a) in rows {
        s += &format!("  {q:<27}{a}\n");
    }
    s += &format!(
        "Then extend the resource to every other node. gen/app passes its copies of the scripts on; on each node\n\
         the tag LifeKeeper offers there (or the one you enter) needs its own file: {}/<that node's tag>.conf.\n\
         Check the wiring on each node with `lkh-platform check-lifekeeper`. {bin} must stay installed where the\n\
         wrappers exec it (upgrades keep it there), so LifeKeeper's copies of the wrappers never go stale.\n",
        conf_dir.display()
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lkh-genapp-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn wrapper_renders_and_parses_back() {
        for action in Action::ALL {
            let w = Wrapper {
                kit: "nas".into(),
                action,
                binary: "/usr/sbin/lkh-nas".into(),
            };
            let text = w.render();
            assert!(
                text.ends_with(&format!("exec '/usr/sbin/lkh-nas' {action} \"$@\"\n")),
                "{text}"
            );
            assert_eq!(Wrapper::from_marker(&text), Some(w.clone()));
            assert_eq!(
                parse_script(&text),
                Ok(Exec {
                    binary: w.binary,
                    action,
                    line: 3
                })
            );
        }
        let spaced = Wrapper {
            kit: "ip".into(),
            action: Action::Recover,
            binary: "/opt/my tools/lkh-ip".into(),
        };
        assert_eq!(Wrapper::from_marker(&spaced.render()), Some(spaced.clone()));
        assert_eq!(
            parse_script(&spaced.render()).map(|e| e.binary),
            Ok(spaced.binary)
        );
        for other in [
            "",
            "#!/bin/sh\nexec /usr/sbin/lkh-nas restore \"$@\"\n",
            "#!/bin/sh\n# lkhelpers gen/app wrapper: kit=nas action=start binary=/x\n",
            "#!/bin/sh\n# lkhelpers gen/app wrapper: kit=nas action=restore\n",
        ] {
            assert_eq!(Wrapper::from_marker(other), None, "{other:?}");
        }
    }

    /// The executable line is read as /bin/sh reads it; the comment runs nothing.
    #[test]
    fn the_exec_line_is_what_runs() {
        let ok = |text: &str| parse_script(text).map(|e| (e.binary, e.action, e.line));
        let want = |line| Ok((PathBuf::from("/usr/sbin/lkh-nas"), Action::Restore, line));
        // hand-written forms /bin/sh runs the same way
        for text in [
            "#!/bin/sh\nexec /usr/sbin/lkh-nas restore \"$@\"\n",
            "#! /bin/sh\n\n  # a comment\n\texec \"/usr/sbin/lkh-nas\" 'restore' \"$@\"  # trailing\n",
            "#!/bin/sh\nexec '/usr/sbin/'lkh-nas restore \"$@\"",
            "#!/bin/sh\n# a comment ending in a backslash does not continue \\\nexec /usr/sbin/lkh-nas restore \"$@\"\n",
        ] {
            assert_eq!(ok(text).map(|x| x.0), want(0).map(|x| x.0), "{text:?}");
        }
        assert_eq!(
            ok("#!/bin/sh\nexec /usr/sbin/lkh-nas restore \"$@\"\n"),
            want(2)
        );
        // the marker says restore, the line runs remove: the line wins
        let edited = "#!/bin/sh\n# lkhelpers gen/app wrapper: kit=nas action=restore binary=/usr/sbin/lkh-nas\nexec /usr/sbin/lkh-nas remove \"$@\"\n";
        assert_eq!(ok(edited).map(|x| x.1), Ok(Action::Remove));

        let bad = |text: &str, line: usize, what: &str| {
            let e = parse_script(text).expect_err(text);
            assert_eq!(e.line, line, "{text:?}: {e:?}");
            assert!(e.message().contains(what), "{text:?}: {}", e.message());
        };
        let m = "# lkhelpers gen/app wrapper: kit=nas action=restore binary=/usr/sbin/lkh-nas\n";
        bad(
            &format!("#!/bin/sh\n{m}exec /bin/true \"$@\"\n"),
            3,
            "has 1 word between exec",
        );
        bad(
            &format!("#!/bin/sh\n{m}set -x; exec /usr/sbin/lkh-nas restore \"$@\"\n"),
            3,
            "runs a second command",
        );
        bad(
            &format!("#!/bin/sh\n{m}PATH=/tmp exec lkh-nas restore \"$@\"\n"),
            3,
            "sets a variable before the command",
        );
        bad(
            &format!("#!/bin/sh\n{m}/usr/sbin/lkh-nas restore \"$@\"\n"),
            3,
            "runs a command other than exec",
        );
        bad(
            &format!("#!/bin/sh\n{m}touch /tmp/x\nexec /usr/sbin/lkh-nas restore \"$@\"\n"),
            3,
            "runs a command other than exec",
        );
        bad(
            &format!("#!/bin/sh\n{m}exec /usr/sbin/lkh-nas restore \"$@\"\nexec /bin/true\n"),
            4,
            "a second command (line 3 already execs /usr/sbin/lkh-nas)",
        );
        bad(
            "#!/bin/sh\nexec lkh-nas restore \"$@\"\n",
            2,
            "not an absolute path",
        );
        bad(
            "#!/bin/sh\nexec /usr/sbin/lkh-nas start \"$@\"\n",
            2,
            "\"start\", not an action",
        );
        bad(
            "#!/bin/sh\nexec /usr/sbin/lkh-nas restore\n",
            2,
            "does not end with \"$@\"",
        );
        bad(
            "#!/bin/sh\nexec /usr/sbin/lkh-nas restore -t x \"$@\"\n",
            2,
            "has 4 words",
        );
        bad(
            "#!/bin/sh\nexec /usr/sbin/lkh-nas restore \"$@\" >/dev/null\n",
            2,
            "redirects",
        );
        bad(
            "#!/bin/sh\nexec /usr/sbin/lkh-nas restore \"$@\" && true\n",
            2,
            "second command",
        );
        bad(
            "#!/bin/sh\nexec $BIN restore \"$@\"\n",
            2,
            "expands a variable",
        );
        bad(
            "#!/bin/sh\nexec \"$HOME/lkh-nas\" restore \"$@\"\n",
            2,
            "expands a variable",
        );
        bad(
            "#!/bin/sh\nexec /usr/sbin/lkh-nas restore \"${@}\"\n",
            2,
            "expands a variable",
        );
        bad(
            "#!/bin/sh\nexec /usr/sbin/lkh-nas restore \\\n\"$@\"\n",
            2,
            "backslash",
        );
        bad(
            "#!/bin/sh\nexec '/usr/sbin/lkh-nas restore \"$@\"\n",
            2,
            "unterminated quote",
        );
        bad(
            "#!/bin/sh\nexec /usr/sbin/lkh-nas restore \"$@\"\r\n",
            2,
            "control character",
        );
        bad(
            "#!/bin/sh\n\r\nexec /usr/sbin/lkh-nas restore \"$@\"\n",
            2,
            "control character",
        );
        bad(
            "#!/bin/sh\nexec /usr/sbin/lkh-* restore \"$@\"\n",
            2,
            "pattern",
        );
        bad(
            "#!/bin/bash\nexec /usr/sbin/lkh-nas restore \"$@\"\n",
            1,
            "with /bin/bash, not /bin/sh",
        );
        bad(
            "# lkhelpers\nexec /usr/sbin/lkh-nas restore \"$@\"\n",
            1,
            "not a script for /bin/sh",
        );
        bad("#!/bin/sh\n# only comments\n", 2, "the file runs nothing");
        bad("#!/bin/sh\nexec /x\0 restore \"$@\"\n", 2, "NUL byte");
        // the line is shown escaped: a control byte cannot forge output
        let e = parse_script("#!/bin/sh\nexec /x\x1b[2J restore \"$@\"\n").unwrap_err();
        assert!(e.message().contains("\\x1b"), "{}", e.message());
    }

    #[test]
    fn copy_paths_follow_gen_app_layout() {
        let root = Path::new("/opt/LifeKeeper");
        assert_eq!(
            copy_path(root, Action::QuickCheck, "nfs1"),
            Path::new("/opt/LifeKeeper/subsys/gen/resources/app/actions/!quickCheck/nfs1")
        );
        assert_eq!(
            copy_path(root, Action::Recover, "nfs1"),
            Path::new("/opt/LifeKeeper/subsys/gen/resources/app/recovery/!recover/nfs1")
        );
        assert_eq!(action_from_dir("!remove"), Some(Action::Remove));
        assert_eq!(action_from_dir("!quickcheck"), None);
        assert_eq!(action_from_dir("remove"), None);
    }

    #[test]
    fn write_is_idempotent_updates_its_own_and_refuses_foreign_files() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let d = dir("write");
        let exe = Path::new("/usr/sbin/lkh-nas");
        let first = write(&d, "nas", exe).unwrap();
        assert!(first.iter().all(|(_, c)| *c == Change::Created));
        let again = write(&d, "nas", exe).unwrap();
        assert!(again.iter().all(|(_, c)| *c == Change::Unchanged));
        assert_eq!(
            std::fs::metadata(d.join("restore")).unwrap().mode() & 0o7777,
            0o755
        );
        assert_eq!(std::fs::metadata(&d).unwrap().mode() & 0o7777, 0o755);
        let moved = write(&d, "nas", Path::new("/usr/local/sbin/lkh-nas")).unwrap();
        assert!(moved.iter().all(|(_, c)| *c == Change::Updated));
        // a wrong mode is repaired by replacing the file, never by a chmod through its path
        let before = std::fs::metadata(d.join("quickCheck")).unwrap().ino();
        std::fs::set_permissions(d.join("quickCheck"), std::fs::Permissions::from_mode(0o777))
            .unwrap();
        let fixed = write(&d, "nas", Path::new("/usr/local/sbin/lkh-nas")).unwrap();
        assert_eq!(fixed[2], (d.join("quickCheck"), Change::Updated));
        let m = std::fs::metadata(d.join("quickCheck")).unwrap();
        assert_eq!((m.mode() & 0o7777, m.ino() == before), (0o755, false));

        std::fs::write(d.join("remove"), "#!/bin/sh\n/my/own/script\n").unwrap();
        let before = std::fs::read_to_string(d.join("restore")).unwrap();
        let f = write(&d, "nas", exe).unwrap_err();
        assert_eq!(f.exit, crate::exit::Exit::Usage);
        assert!(f.message.contains("not written by genapp"), "{f}");
        assert_eq!(
            std::fs::read_to_string(d.join("restore")).unwrap(),
            before,
            "nothing changed"
        );
        assert_eq!(
            std::fs::read_to_string(d.join("remove")).unwrap(),
            "#!/bin/sh\n/my/own/script\n"
        );

        std::fs::remove_file(d.join("remove")).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", d.join("remove")).unwrap();
        let f = write(&d, "nas", exe).unwrap_err();
        assert!(f.message.contains("not a regular file"), "{f}");
        let f = write(&d, "nas", Path::new("relative/lkh-nas")).unwrap_err();
        assert_eq!(f.exit, crate::exit::Exit::Usage, "{f}");
        assert!(
            f.message
                .starts_with("relative/lkh-nas: the binary path must be absolute"),
            "{f}"
        );

        // a directory others may write to, or one that is a link, is refused before any write
        let open = dir("open");
        std::fs::create_dir_all(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let f = write(&open, "nas", exe).unwrap_err();
        assert!(f.message.contains("writable by group or others"), "{f}");
        assert!(f.message.contains("nothing was written"), "{f}");
        assert!(!open.join("restore").exists(), "nothing was written");
        let f = write(&open.join("below"), "nas", exe).unwrap_err();
        assert!(f.message.contains("writable by group or others"), "{f}");
        assert!(!open.join("below").exists(), "nothing was created");
        let link = dir("link");
        std::os::unix::fs::symlink(&d, &link).unwrap();
        let f = write(&link, "nas", exe).unwrap_err();
        assert!(f.message.contains("is a symbolic link"), "{f}");
        let f = write(&link.join("sub"), "nas", exe).unwrap_err();
        assert!(f.message.contains("is a symbolic link"), "{f}");
        assert!(
            !d.join("sub").exists(),
            "nothing was created through the link"
        );
        let _ = std::fs::remove_dir_all(&open);
        let _ = std::fs::remove_file(&link);
        let f = write(&d, "nas", Path::new("/bad'quote/lkh-nas")).unwrap_err();
        assert!(
            f.message.starts_with(
                "/bad'quote/lkh-nas: the binary path must be absolute, valid UTF-8 and free of quotes"
            ),
            "{f}"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
