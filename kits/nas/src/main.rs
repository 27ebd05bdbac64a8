//! `lkh-nas`: LifeKeeper hooks for an NFS export mounted from a NAS, with
//! checks that stay bounded when the server vanishes under a `hard` mount.
//!
//! Policy lives here (which check decides what, exit codes, messages, the
//! halt policy); the mechanism — mountinfo, probes, child-run IO checks,
//! bounded mount and unmount — is the `nas` library. The hook contract
//! (argv, config files, logging, the watchdog) is lkh-common's.

mod actions;
mod diag;
mod settings;

use std::process::ExitCode;

use lkh_common::{KeySpec, Kind, KitSpec};

pub(crate) static SPEC: KitSpec = KitSpec {
    kit: "nas",
    summary: "NFS v3/v4 mounts from a NAS whose checks can never hang",
    keys: &[
        KeySpec::timeout("20"),
        KeySpec::resource(
            "SERVER",
            Kind::Word,
            None,
            "the NAS's IP address (a host name is resolved once, at restore, from /etc/hosts or DNS)",
        )
        .required(),
        KeySpec::resource(
            "EXPORT",
            Kind::AbsPath,
            None,
            "the exported path on the server, e.g. /srv/data",
        )
        .required(),
        KeySpec::resource(
            "MOUNTPOINT",
            Kind::AbsPath,
            None,
            "where to mount it (created at restore if missing); no symbolic link anywhere in it",
        )
        .required(),
        KeySpec::resource(
            "VERSION",
            Kind::Choice(&["2", "3", "4", "4.0", "4.1", "4.2"]),
            Some("3"),
            "NFS version; 4 is the highest 4.x minor version the server and this kernel share (restore tries 4.2, 4.1, 4.0)",
        ),
        KeySpec::resource(
            "OPTIONS",
            Kind::Word,
            None,
            "NFS mount options, comma-separated; default (LifeKeeper's recommendation) v2/v3: rw,hard,nolock,proto=tcp,timeo=600,retrans=2,rsize=32768,wsize=32768,actimeo=0; v4: the same without nolock",
        ),
        KeySpec::resource(
            "IO_CHECK",
            Kind::Choice(&["none", "stat", "read"]),
            Some("stat"),
            "quickCheck's IO test, done by a child process abandoned at the deadline: statfs+stat of the mount point, or also reading its directory",
        ),
        KeySpec::resource(
            "ON_FAILURE",
            Kind::Choice(&["failover", "halt"]),
            Some("failover"),
            "when recover cannot repair the mount: fail (LifeKeeper fails over) or power this node off so processes hung on the mount cannot block the failover",
        ),
        KeySpec::lifekeeper(
            "LKNFSTIMEOUT",
            Kind::Uint { min: 1, max: 3600 },
            None,
            "seconds the NFS server probe and IO check may take within an action (capped by TIMEOUT)",
        ),
    ],
    commands: &[
        (
            "status -t TAG [--json]",
            "quickCheck's assessment shown: the mount, the server's answers, the IO check and the verdict, without changing anything; exits with quickCheck's code",
        ),
        (
            "probe SERVER [EXPORT] [--version V] [--timeout SECONDS] [--json]",
            "ask a server what it offers: portmapper programs, exports, NFS versions, round-trip times",
        ),
    ],
    actions_help: "  For lkh-nas: restore mounts with mount(2) after probing the server; quickCheck reports\n  \"not mounted\", \"server not answering\", \"mount wedged\" or a stale file handle; remove unmounts,\n  ends the processes holding the share in any mount namespace and unmounts its copies there,\n  and exits 0 only when nothing on this node reaches it; recover remounts if the server answers.\n",
    check: Some(check),
    depth: Some(("IO_CHECK", ["none", "stat", "read"])),
};

/// `validate` and OCF `validate-all`: the settings the actions would use, checked, nothing changed.
fn check(ctx: &lkh_common::HookCtx) -> lkh_common::Outcome {
    crate::settings::Settings::from_ctx(ctx, crate::settings::Resolve::Recorded)
        .map(|_| String::new())
}

fn main() -> ExitCode {
    lkh_common::run(&SPEC, actions::hook, diag::command)
}
