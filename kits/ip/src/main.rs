//! `lkh-ip`: LifeKeeper hooks for a virtual IP address whose health check looks past the
//! Hyper-V virtual switch.
//!
//! A guest's synthetic NIC keeps its carrier when the host's uplink dies, and co-hosted VMs
//! keep answering, so quickCheck requires an off-host target (by default the gateway) to
//! answer ARP or ICMP, and tolerates a failure shorter than GRACE (a live-migration pause).
//!
//! Policy lives here (what is checked, in which order, exit codes, messages); the mechanism —
//! netlink, ARP, ICMP, neighbour advertisements, the grace evaluator — is the `ip-monitor`
//! library. The hook contract (argv, config files, logging, the watchdog) is lkh-common's.

mod actions;
mod assess;
mod diag;
mod settings;

use std::process::ExitCode;

use lkh_common::{KeySpec, Kind, KitSpec};

pub(crate) static SPEC: KitSpec = KitSpec {
    kit: "ip",
    summary: "a virtual IP address, monitored past the Hyper-V virtual switch",
    keys: &[
        KeySpec::timeout("20"),
        KeySpec::resource(
            "ADDRESS",
            Kind::Word,
            None,
            "the virtual address with its prefix length, e.g. 192.0.2.10/24 or 2001:db8::10/64",
        )
        .required(),
        KeySpec::resource(
            "INTERFACE",
            Kind::Word,
            None,
            "the interface that carries it, e.g. eth0",
        )
        .required(),
        KeySpec::resource(
            "TARGETS",
            Kind::List,
            None,
            "addresses that prove the uplink works: off-host only (gateway, routers, peers on other hosts); default: the default gateway on INTERFACE",
        ),
        KeySpec::resource(
            "PROBE",
            Kind::Choice(&["arp", "icmp", "both"]),
            Some("both"),
            "how targets are asked: ARP (on-link targets only), ICMP echo, or both (ARP where on-link, ICMP for all; any answer counts)",
        ),
        KeySpec::resource(
            "GARP_COUNT",
            Kind::Uint { min: 0, max: 50 },
            Some("5"),
            "gratuitous ARPs (IPv6: unsolicited neighbour advertisements) sent after adding the address, 200 ms apart",
        ),
        KeySpec::resource(
            "GRACE",
            Kind::Uint { min: 0, max: 600 },
            Some("3"),
            "seconds a link or reachability failure must persist before quickCheck reports it (longer than a live-migration pause)",
        ),
        KeySpec::lifekeeper(
            "IP_PINGTRIES",
            Kind::Uint { min: 1, max: 100 },
            Some("3"),
            "probe rounds per check",
        ),
        KeySpec::lifekeeper(
            "IP_PINGTIME",
            Kind::Uint { min: 1, max: 60 },
            Some("1"),
            "seconds to wait for answers per round",
        ),
        KeySpec::lifekeeper(
            "IP_QUICKCHECK_TIMEOUT",
            Kind::Uint { min: 1, max: 3600 },
            Some("12"),
            "seconds quickCheck may take in all (capped by TIMEOUT)",
        ),
        KeySpec::lifekeeper(
            "IP_NOLINKCHECK",
            Kind::Bool,
            Some("0"),
            "1 = do not require the interface's link to be up",
        ),
        KeySpec::lifekeeper(
            "NOIPUNIQUE",
            Kind::Bool,
            Some("0"),
            "1 = skip the duplicate-address check before restore",
        ),
    ],
    commands: &[
        (
            "status -t TAG [--json]",
            "quickCheck's assessment shown: the address, the link, which targets answer (by which method, round-trip time) and the verdict; exits with quickCheck's code",
        ),
        (
            "probe [-t TAG | --interface IF] [--probe arp|icmp|both] [--json] [TARGET...]",
            "ask targets (default: the resource's TARGETS) whether they answer, by ARP and/or ICMP, with round-trip times",
        ),
    ],
    actions_help: "  For lkh-ip: restore checks the address is unused (RFC 5227 ARP probe; IPv6: DAD), adds it\n  through netlink and announces it; remove deletes only that address; quickCheck reports\n  \"address missing\", \"link down\" or \"link up but no target answers\" (the virtual switch's\n  uplink or the network beyond it is down), after GRACE; recover re-adds a missing address.\n",
    check: Some(check),
    depth: None,
};

/// `validate` and OCF `validate-all`: the settings the actions would use, checked, nothing changed.
fn check(ctx: &lkh_common::HookCtx) -> lkh_common::Outcome {
    crate::settings::Settings::from_ctx(ctx).map(|_| String::new())
}

fn main() -> ExitCode {
    lkh_common::run(&SPEC, actions::hook, diag::command)
}
