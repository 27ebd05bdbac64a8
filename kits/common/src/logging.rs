//! One line per event: `lkh-<kit>[TAG]: <level>: <message>` on stderr (LifeKeeper collects a
//! hook's output into its log), and the same line to syslog (ident `lkhelpers`) when `/dev/log`
//! exists, with the facility LifeKeeper's own scripts use: `LKSYSLOGSELECTOR` from
//! `/etc/default/LifeKeeper`, local6 when it is unset or not a facility name. `-v` or `RUST_LOG`
//! add debug detail (stderr only).
//!
//! Syslog is written without blocking: if the socket is full or gone the line is dropped,
//! never waited for.
//!
//! Every message is made safe before it is written ([`clean`]): each byte below 0x20 and
//! 0x7f becomes `\xNN` (a newline is `\x0a`), so a process or file name with a newline in it
//! cannot start a forged line in LifeKeeper's log or syslog, and a message longer than
//! [`MAX_MESSAGE`] bytes is cut, ending in `…(N bytes cut)`.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::sys::LastWords;

/// syslog facility local6, LifeKeeper's default `LKSYSLOGSELECTOR`.
pub const FACILITY_LOCAL6: u8 = 22;
/// The facility in use (set once by [`init`]).
static FACILITY: AtomicU8 = AtomicU8::new(FACILITY_LOCAL6);

/// The syslog facility code of a name as `logger -p` takes it (`local6`, `daemon`, …; a
/// `.level` suffix is ignored).
pub fn facility_code(name: &str) -> Option<u8> {
    const NAMES: [&str; 24] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp", "", "", "", "", "local0", "local1", "local2", "local3", "local4",
        "local5", "local6", "local7",
    ];
    let name = name.split('.').next().unwrap_or(name).trim();
    if name.is_empty() {
        return None;
    }
    NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(name))
        .and_then(|i| u8::try_from(i).ok())
}

/// `LKSYSLOGSELECTOR` from LifeKeeper's defaults file, if it names a facility.
fn lk_facility() -> Option<u8> {
    let path = crate::config::Sources::from_env().lk_defaults;
    let text = crate::config::read_lk_defaults(&path).ok()??;
    crate::config::parse_assignments(&text, false)
        .ok()?
        .into_iter()
        .rev()
        .find(|a| a.key == "LKSYSLOGSELECTOR")
        .and_then(|a| facility_code(&a.value))
}
pub const SYSLOG_IDENT: &str = "lkhelpers";
/// The syslog socket (`LKHELPERS_SYSLOG_SOCKET` overrides it, for tests).
pub const SYSLOG_SOCKET: &str = "/dev/log";

struct Logger {
    prefix: String,
    filter: env_logger::Logger,
    syslog: Option<Mutex<UnixDatagram>>,
}

/// The line prefix: `lkh-scsipr[db-disk]` or `lkh-platform`.
pub fn prefix(binary: &str, tag: Option<&str>) -> String {
    match tag {
        Some(t) => format!("{binary}[{t}]"),
        None => binary.to_owned(),
    }
}

/// The level word used in our lines.
pub fn level_word(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warn => "warning",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    }
}

fn severity(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// The longest message written, in bytes after escaping; the rest is cut.
pub const MAX_MESSAGE: usize = 1024;

/// `s` with every byte below 0x20 and 0x7f written as `\xNN`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c < ' ' || c == '\x7f' {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// A message as it is written: escaped ([`escape`]), then cut to [`MAX_MESSAGE`] bytes on a
/// character boundary with `…(N bytes cut)` appended, N counting the escaped bytes left out.
pub fn clean(message: &str) -> String {
    // escaped up to the cut only; the rest is counted, not built (a message of a resource of
    // a hundred disks is long)
    let mut s = String::with_capacity(message.len().min(MAX_MESSAGE + 64));
    let mut cut = 0;
    for c in message.chars() {
        let n = if c < ' ' || c == '\x7f' {
            4
        } else {
            c.len_utf8()
        };
        if cut > 0 || s.len() + n > MAX_MESSAGE {
            cut += n;
        } else if n == 4 && c.is_ascii_control() {
            s.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            s.push(c);
        }
    }
    if cut > 0 {
        s.push_str(&format!("…({cut} bytes cut)"));
    }
    s
}

/// At most `max` characters of `value` (escaped), with `…` when cut: for messages that echo a
/// value someone else wrote (a 100 KB `DEVICE=` is not repeated whole in every line).
pub fn shown(value: &str, max: usize) -> String {
    let mut s: String = value.chars().take(max).collect();
    if s.len() < value.len() {
        s.push('…');
    }
    escape(&s)
}

/// One stderr line in the contract format, newline included; the message is [`clean`]ed.
pub fn stderr_line(prefix: &str, level: Level, message: &str) -> String {
    format!("{prefix}: {}: {}\n", level_word(level), clean(message))
}

/// Formats one syslog datagram (RFC 3164 style without a timestamp; syslogd adds it); the
/// message is [`clean`]ed.
pub fn syslog_line(prefix: &str, level: Level, message: &str) -> String {
    syslog_line_with(FACILITY.load(Ordering::Relaxed), prefix, level, message)
}

fn syslog_line_with(facility: u8, prefix: &str, level: Level, message: &str) -> String {
    let pri = u16::from(facility) * 8 + u16::from(severity(level));
    format!(
        "<{pri}>{SYSLOG_IDENT}[{}]: {prefix}: {}: {}",
        std::process::id(),
        level_word(level),
        clean(message)
    )
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.filter.enabled(metadata)
    }

    fn log(&self, record: &Record) {
        if !self.filter.matches(record) {
            return;
        }
        let message = record.args().to_string();
        let level = record.level();
        // One write per line, so the watchdog's last words never land inside one.
        // A failed write to stderr has nowhere to be reported.
        let line = stderr_line(&self.prefix, level, &message);
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
        if level <= Level::Info
            && let Some(sock) = &self.syslog
            && let Ok(sock) = sock.lock()
        {
            let _ = sock.send(syslog_line(&self.prefix, level, &message).as_bytes());
        }
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// When `main` started (set by the kit runner), for [`phase`].
static STARTED: OnceLock<std::time::Instant> = OnceLock::new();

/// Marks the start of `main`; [`phase`] measures from it.
pub fn started() {
    let _ = STARTED.set(std::time::Instant::now());
}

/// One debug line (target `lkh::phase`, so `RUST_LOG=lkh::phase=debug` shows these alone)
/// saying how far into the process `what` was done, in ms since `main` started: where a hook
/// spends its time (start-up, configuration, lock, sysfs, commands, records).
pub fn phase(what: &str) {
    if log::log_enabled!(target: "lkh::phase", Level::Debug)
        && let Some(t) = STARTED.get()
    {
        log::debug!(target: "lkh::phase", "{what}: {:.2} ms", t.elapsed().as_secs_f64() * 1e3);
    }
}

/// The installed logger's prefix and syslog socket, for [`last_words`].
static PREFIX: OnceLock<String> = OnceLock::new();
static SYSLOG_FD: AtomicI32 = AtomicI32::new(-1);

/// The error line the logger would emit for `message`, prepared ahead for the watchdog, which
/// cannot format or lock when it fires.
pub(crate) fn last_words(message: &str, code: u8) -> LastWords {
    let prefix = PREFIX.get().map_or("lkhelpers", String::as_str);
    let fd = SYSLOG_FD.load(Ordering::Relaxed);
    LastWords {
        stderr: stderr_line(prefix, Level::Error, message).into_bytes(),
        syslog: (fd >= 0).then(|| (fd, syslog_line(prefix, Level::Error, message).into_bytes())),
        code: i32::from(code),
    }
}

/// Installs the logger once per process. `verbosity` counts `-v` flags; `RUST_LOG` overrides.
pub fn init(binary: &str, tag: Option<&str>, verbosity: u8) {
    let default = match verbosity {
        0 => LevelFilter::Info,
        1 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    };
    let mut builder = env_logger::Builder::new();
    builder.filter_level(default);
    if verbosity == 0
        && let Ok(spec) = std::env::var("RUST_LOG")
    {
        builder.parse_filters(&spec);
    }
    let filter = builder.build();
    let max = filter.filter();
    let syslog = if std::env::var_os("LKHELPERS_NO_SYSLOG").is_some() {
        None
    } else {
        let sock = UnixDatagram::unbound()
            .and_then(|s| {
                s.connect(
                    std::env::var_os("LKHELPERS_SYSLOG_SOCKET")
                        .filter(|v| !v.is_empty())
                        .map_or_else(|| SYSLOG_SOCKET.into(), std::path::PathBuf::from),
                )?;
                s.set_nonblocking(true)?;
                Ok(s)
            })
            .ok();
        // LifeKeeper's facility matters only where there is a syslog to send to
        if sock.is_some()
            && let Some(f) = lk_facility()
        {
            FACILITY.store(f, Ordering::Relaxed);
        }
        sock.map(Mutex::new)
    };
    let syslog_fd = syslog
        .as_ref()
        .and_then(|m| m.lock().ok().map(|s| s.as_raw_fd()));
    let shown = prefix(binary, tag);
    let logger = Logger {
        prefix: shown.clone(),
        filter,
        syslog,
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(max);
        // the logger (and so its socket) lives as long as the process
        SYSLOG_FD.store(syslog_fd.unwrap_or(-1), Ordering::Relaxed);
        let _ = PREFIX.set(shown);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_line_has_local6_priority_and_ident() {
        let line = syslog_line("lkh-nas[home]", Level::Warn, "server slow");
        assert!(line.starts_with("<180>lkhelpers["), "{line}");
        assert!(
            line.ends_with("]: lkh-nas[home]: warning: server slow"),
            "{line}"
        );
        assert!(syslog_line("x", Level::Error, "m").starts_with("<179>"));
        assert!(syslog_line("x", Level::Info, "m").starts_with("<182>"));
        assert!(syslog_line_with(16, "x", Level::Info, "m").starts_with("<134>"));
    }

    #[test]
    fn facility_names_as_logger_takes_them() {
        assert_eq!(facility_code("local6"), Some(22));
        assert_eq!(facility_code("LOCAL0"), Some(16));
        assert_eq!(facility_code("daemon.info"), Some(3));
        assert_eq!(facility_code("user"), Some(1));
        for bad in ["", "local8", "6", "security", ".info"] {
            assert_eq!(facility_code(bad), None, "{bad}");
        }
    }

    #[test]
    fn last_words_are_the_error_line_the_logger_would_write() {
        // no logger is installed in unit tests: the generic prefix stands in
        let w = last_words("quickCheck: did not finish", 1);
        assert_eq!(
            String::from_utf8(w.stderr).unwrap(),
            "lkhelpers: error: quickCheck: did not finish\n"
        );
        assert_eq!(w.code, 1);
        assert!(w.syslog.is_none());
    }

    #[test]
    fn control_bytes_are_escaped_and_long_messages_cut() {
        assert_eq!(
            clean("ended 7 (a\nlkh-nas[x]: info: forged)\r\t\x7f\x1b[31m"),
            "ended 7 (a\\x0alkh-nas[x]: info: forged)\\x0d\\x09\\x7f\\x1b[31m"
        );
        let line = stderr_line("lkh-nas[x]", Level::Info, "one\ntwo");
        assert_eq!(line, "lkh-nas[x]: info: one\\x0atwo\n");
        assert_eq!(line.matches('\n').count(), 1);
        assert!(!syslog_line("p", Level::Error, "a\nb").contains('\n'));
        assert_eq!(clean("é ok"), "é ok");

        let long = "v".repeat(100_000);
        let c = clean(&long);
        assert_eq!(
            c,
            format!("{}…({} bytes cut)", "v".repeat(1024), 100_000 - 1024)
        );
        // cut on a character boundary: 'é' is two bytes, 1023 fit
        let c = clean(&format!("{}é{}", "v".repeat(1023), "w".repeat(10)));
        assert!(c.starts_with(&format!("{}…(", "v".repeat(1023))), "{c}");
        assert!(c.ends_with("…(12 bytes cut)"), "{c}");
        assert_eq!(clean(&"x".repeat(1024)), "x".repeat(1024));
        // escaping counts: 300 newlines are 1200 bytes written
        let c = clean(&"\n".repeat(300));
        assert!(c.ends_with("…(176 bytes cut)"), "{c}");
        assert_eq!(shown("abcdef", 3), "abc…");
        assert_eq!(shown("a\nb", 5), "a\\x0ab");
    }

    #[test]
    fn prefix_names_kit_and_tag() {
        assert_eq!(prefix("lkh-ip", Some("vip1")), "lkh-ip[vip1]");
        assert_eq!(prefix("lkh-platform", None), "lkh-platform");
    }
}
