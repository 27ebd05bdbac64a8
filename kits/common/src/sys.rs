//! Every `unsafe` block of lkh-common: the watchdog's `SIGALRM` handler, and SIGPIPE's
//! default action for the commands whose output is read by a pipe.
//!
//! The handler runs at the deadline in the middle of whatever the action was doing (possibly
//! holding a lock or allocating), so it only makes async-signal-safe calls — `write`, `send`,
//! `_exit` — on bytes prepared before the timer was armed, and never returns.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;
use std::sync::OnceLock;

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

/// What the process says and how it exits when the watchdog fires.
#[derive(Debug)]
pub(crate) struct LastWords {
    /// One line for stderr, newline included.
    pub stderr: Vec<u8>,
    /// A connected datagram socket to syslog and the datagram to send, if logging to syslog.
    pub syslog: Option<(RawFd, Vec<u8>)>,
    pub code: i32,
}

static LAST_WORDS: OnceLock<LastWords> = OnceLock::new();

extern "C" fn on_alarm(_: libc::c_int) {
    let code = LAST_WORDS.get().map_or(1, |w| {
        // SAFETY: `write` and `send` are async-signal-safe; the buffers are immutable and live
        // as long as the process (they sit in a `static`). Errors are ignored: nothing better
        // can be done this late.
        unsafe {
            libc::write(2, w.stderr.as_ptr().cast(), w.stderr.len());
            if let Some((fd, line)) = &w.syslog {
                libc::send(
                    *fd,
                    line.as_ptr().cast(),
                    line.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                );
            }
        }
        w.code
    });
    // SAFETY: `_exit` is async-signal-safe and never returns; it skips destructors and atexit
    // handlers on purpose (they could take locks the interrupted code holds).
    unsafe { libc::_exit(code) }
}

/// Installs the `SIGALRM` handler that says `words` and exits. Once per process: a second
/// call is refused (the watchdog guards one action).
pub(crate) fn install_last_words(words: LastWords) -> io::Result<()> {
    LAST_WORDS
        .set(words)
        .map_err(|_| io::Error::other("the watchdog was already armed once"))?;
    let action = SigAction::new(
        SigHandler::Handler(on_alarm),
        SaFlags::SA_RESTART,
        SigSet::all(),
    );
    // SAFETY: `on_alarm` only makes async-signal-safe calls on data that is fully
    // initialised before this point (the `OnceLock` was set above) and never returns.
    unsafe { sigaction(Signal::SIGALRM, &action) }?;
    Ok(())
}

/// Restores SIGPIPE's default action (the Rust runtime ignores it, so that a write to a closed
/// pipe is an error — and `print!` panics on it). For the commands a user pipes into `head` or
/// `grep -q` (`status`, `--help`, `detect`…): a closed pipe ends the process quietly, as it
/// ends `cat`. Never for a hook or a daemon: those must not die with their reader.
pub fn default_sigpipe() {
    // SAFETY: SIG_DFL installs no handler of ours; changing a signal's disposition is
    // process-wide but has no memory-safety requirement.
    let _ = unsafe { nix::sys::signal::signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}
