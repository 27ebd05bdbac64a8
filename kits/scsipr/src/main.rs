//! `lkh-scsipr`: LifeKeeper hooks that fence a shared disk (Hyper-V shared VHD Set, virtual
//! Fibre Channel LUN) with SCSI-3 persistent reservations over raw `SG_IO`.
//!
//! Policy lives here (which key, which type, when to preempt, what "fenced" means, halting);
//! the SCSI mechanism is the `sg-persist` library; the hook contract (argv, configuration,
//! logging, deadline, exit codes) is lkh-common's.

mod actions;
#[cfg(test)]
mod defense_tests;
mod doctor;
mod fence;
#[cfg(test)]
mod memory_tests;
#[cfg(test)]
mod model;
mod pr;
#[cfg(test)]
mod race_tests;
#[cfg(test)]
mod scale_tests;
mod settings;
mod state;
mod status;
mod watch;

use std::process::ExitCode;

use lkh_common::{KeySpec, Kind, KitSpec, Outcome};

pub(crate) static SPEC: KitSpec = KitSpec {
    kit: "scsipr",
    summary: "fence shared disks with SCSI-3 persistent reservations (raw SG_IO, no sg_persist)",
    keys: &[
        KeySpec::timeout("20"),
        KeySpec::resource(
            "DEVICE",
            Kind::List,
            None,
            "the shared disk(s): /dev/sdX, /dev/disk/by-id/..., or a dm-multipath device (/dev/mapper/NAME, /dev/dm-N); several separated by spaces",
        )
        .required(),
        KeySpec::resource(
            "KEY",
            Kind::Word,
            None,
            "reservation key, up to 16 hex digits, not 0 (default: this node's key, generated once in <conf dir>/node.key)",
        ),
        KeySpec::resource(
            "TYPE",
            Kind::Word,
            Some(settings::DEFAULT_TYPE),
            "reservation type: write-exclusive, exclusive-access, write-exclusive-registrants-only, exclusive-access-registrants-only, write-exclusive-all-registrants, exclusive-access-all-registrants (or we, ea, wero, earo, wear, eaar, or the SCSI code)",
        ),
        KeySpec::resource(
            "ON_FENCED",
            Kind::Choice(&["halt", "event", "none"]),
            None,
            "what `watch` does when another node took the reservation: halt (reboot at once), event (log for LifeKeeper), none (default: halt if SCSIHALT, else event)",
        ),
        KeySpec::lifekeeper(
            "FAILFASTTIMER",
            Kind::Uint { min: 1, max: 600 },
            Some("5"),
            "seconds between two judgements of `watch` (as lkscsid); the defense interval is min(FAILFASTTIMER, 2 s) and a restore that finds another holder waits twice that plus 1 s for it to defend the disk: keep it the same on every node",
        ),
        KeySpec::lifekeeper(
            "SCSIHALT",
            Kind::Bool,
            Some("1"),
            "halt and reboot when the reservation is lost (the default of ON_FENCED)",
        ),
    ],
    commands: &[
        (
            "status DEVICE... [--json] | status -t TAG [--json]",
            "show the LU identity, paths, registered keys with their owners, holder, type, capabilities and generation",
        ),
        (
            "doctor DEVICE",
            "prove whether persistent reservations work on the disk, and if not, say why (e.g. the Hyper-V host setting to check)",
        ),
        (
            "node-key",
            "print this node's reservation key (created once in <conf dir>/node.key): the value of this node's entry in fence_lkhscsipr's keys= map",
        ),
        (
            "watch [--once]",
            "every FAILFASTTIMER seconds judge the reservations this node holds and act per ON_FENCED when one is lost; every half second defend them (remove any other node's registration: a challenge) (systemd unit: lkh-scsipr-watch.service)",
        ),
    ],
    actions_help: "  For lkh-scsipr: restore takes a free disk at once (registers this node's key on every path,\n  reserves); a disk another node holds is challenged: restore registers and waits the challenge\n  window, a live holder's watch removes that registration (restore exits 3), and only a\n  registration that survived takes over (PREEMPT AND ABORT of the holder it saw); then it reads\n  the state back. remove releases and unregisters this node only, disk by disk. quickCheck exits\n  3 (fenced) when another node holds the reservation or took the disk over and released it (its\n  PR generation went up since this node's last look), and re-registers paths that lost their\n  registration (WWPN flip); recover re-takes the reservation only when nobody holds it, or when\n  the target lost its PR state (generation not gone up) and this node held the disk; a node that\n  lost the disk never takes it back. watch defends the disks this node holds every half second.\n  Called as fence_lkhscsipr (a link to this binary), it is a Pacemaker fence agent: see fence_lkhscsipr --help.\n",
    check: Some(check),
    depth: None,
};

/// Dispatches the kit's own commands (see `SPEC.commands`).
fn command(spec: &'static KitSpec, name: &str, args: &[String]) -> Option<Outcome> {
    match name {
        "status" => Some(status::status(spec, args)),
        "doctor" => Some(doctor::doctor(spec, args)),
        "watch" => Some(watch::watch(spec, args)),
        "node-key" => Some(node_key(spec, args)),
        _ => None,
    }
}

/// `node-key`: prints this node's key (creating it once, as the first restore or fence `on`
/// would), for the fence agent's `keys=` map.
fn node_key(spec: &'static KitSpec, args: &[String]) -> Outcome {
    let a = lkh_common::parse_args(spec.keys, args, &[], &[])?;
    a.no_operands(
        "node-key takes no arguments: it prints this node's key from <conf dir>/node.key",
    )?;
    let key = settings::node_key_or_create(&settings::node_key_path())?;
    println!("{}", settings::fmt_key(key));
    Ok(String::new())
}

/// `validate` and OCF `validate-all`: the settings the actions would use, checked, nothing changed.
fn check(ctx: &lkh_common::HookCtx) -> lkh_common::Outcome {
    let s = crate::settings::Settings::from_ctx(ctx)?;
    s.check_timeout(ctx).map(|()| String::new())
}

fn main() -> ExitCode {
    // Called as fence_lkhscsipr (a link to this binary): the Pacemaker fence agent.
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if argv.first().is_some_and(|a| fence::is_agent(a)) {
        return fence::main(argv.get(1..).unwrap_or(&[]));
    }
    lkh_common::run(&SPEC, actions::hook, command)
}
