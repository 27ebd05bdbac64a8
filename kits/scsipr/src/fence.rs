//! `fence_lkhscsipr`: a Pacemaker fence agent (ClusterLabs' FenceAgentAPI) on SCSI-3
//! persistent reservations, the same binary as `lkh-scsipr` called by that name (a link
//! `/usr/sbin/fence_lkhscsipr` → `lkh-scsipr`).
//!
//! Arguments come as `key=value` lines on stdin when there are no command-line arguments (as
//! Pacemaker's fencer passes them: `#` comments, unknown keys ignored, the last value wins), or
//! as options (`-o/--action`, `-n/--plug`, `--devices`, `--keys`, `--delay`,
//! `--power-timeout`, `-v`): [`params`], whose one table also makes the metadata and `--help`
//! ([`doc`]). Actions ([`ops`]): `on` (unfence the node it runs on: register its key on
//! every path of every device, reserve when nobody holds), `off` (register this node's key,
//! then PREEMPT AND ABORT the victim's key; verified), `status` (0 on, 2 off, 1 error),
//! `monitor` (reads keys and reservation of every device), `list`, `metadata`,
//! `validate-all`. No `reboot`: fabric fencing has none. Everything after `--delay` finishes
//! within `power_timeout` seconds (a worker thread abandoned at the deadline).
//!
//! The node → key map and its rules, which keep a typo from fencing anybody: [`keymap`].
//!
//! Errors exit 1, never 2, so that no error can read as "off" to a caller of `status`.

mod doc;
pub(crate) mod keymap;
pub(crate) mod ops;
mod params;

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use lkh_common::Deadline;
use log::{debug, error, info};

use crate::settings::{self, fmt_key};
use keymap::{survivor, unfence_target, valid_name};
use ops::Done;
use params::{AGENT, FenceAction, Parsed, Request};

/// How long reading stdin may take (Pacemaker writes the arguments and closes it).
const STDIN_TIMEOUT: Duration = Duration::from_secs(10);

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
        read_stdin().map(|t| Parsed::Params(params::parse_stdin(&t)))
    } else {
        params::parse_cli(args)
    };
    let params = match parsed {
        Ok(Parsed::Help) => {
            print!("{}", doc::help());
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
            lkh_common::logging::init(AGENT, plug.map(String::as_str), params::verbosity(&params));
            error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let plug = req
        .plug
        .as_deref()
        .filter(|p| valid_name(p) && req.action.needs_plug());
    lkh_common::logging::init(AGENT, plug, req.verbosity);
    for k in params::unknown(&params) {
        debug!("ignoring unknown parameter {k}");
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
    if req.action == FenceAction::Metadata {
        print!("{}", doc::metadata());
        return Ok(Done::Ok(String::new()));
    }
    let Some(map) = req.keys.clone() else {
        return Err("no keys given".into());
    };
    if req.action == FenceAction::List {
        for (n, k) in map.entries() {
            println!("{n},{}", fmt_key(*k));
        }
        return Ok(Done::Ok(String::new()));
    }
    check_device_nodes(&req.devices)?;
    let plug = req.plug.clone().unwrap_or_default();
    // Everything that does not need a disk is checked before the delay and the first command.
    let keys = match req.action {
        FenceAction::On => {
            let own =
                settings::node_key_or_create(&settings::node_key_path()).map_err(|f| f.message)?;
            unfence_target(&map, own, &plug)?;
            Some((own, own))
        }
        FenceAction::Off => {
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
    if req.action == FenceAction::ValidateAll {
        return Ok(Done::Ok(format!(
            "the parameters are valid ({} device(s), nodes {})",
            req.devices.len(),
            map.names().join(", ")
        )));
    }
    if req.action == FenceAction::Off && !req.delay.is_zero() {
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
        sg_persist::exec::block_on(async {
            match (action, keys) {
                (FenceAction::On, Some((own, _))) => ops::on(&devices, own, end).await.map(Done::Ok),
                (FenceAction::Off, Some((own, victim))) => ops::off(&devices, &map, &plug, own, victim, end)
                    .await
                    .map(Done::Ok),
                (FenceAction::Status, _) => ops::status(&devices, &map, &plug, end).await,
                _ => ops::monitor(&devices, &map, end).await.map(Done::Ok),
            }
        })
        .map_err(|f| f.message)
    })
    .unwrap_or_else(|| {
        Err(format!(
            "did not finish within power_timeout={budget}s and was abandoned: see the messages above for the device it was waiting on; if the disks are only slow, raise power_timeout"
        ))
    })
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

/// Whether argv\[0\] names the fence agent (`/usr/sbin/fence_lkhscsipr`).
pub fn is_agent(argv0: &str) -> bool {
    Path::new(argv0).file_name().is_some_and(|n| n == AGENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv0_dispatch() {
        assert!(is_agent("/usr/sbin/fence_lkhscsipr"));
        assert!(is_agent("fence_lkhscsipr"));
        assert!(!is_agent("/usr/sbin/lkh-scsipr"));
        assert!(!is_agent("/usr/sbin/fence_lkhscsipr2"));
    }
}
