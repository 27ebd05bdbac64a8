//! The three kits as OCF agents, seen by Pacemaker's own tools on the host:
//!
//! - `ocf-tester` (resource-agents) runs its whole sequence against `lkh-ip` inside the
//!   network-namespace lab (`tests::netns::HyperVLab`): meta-data as `nobody` and against the
//!   DTD, validate-all, monitor of a stopped resource, probe, start, monitor, double start,
//!   stop, monitor after stop, double stop.
//! - `crm_resource --validate --class ocf --provider lkhelpers --agent ip|nas|scsipr` (no
//!   daemons) finds the agents under `/usr/lib/ocf/resource.d/lkhelpers/` and accepts good
//!   parameters, refuses bad ones. The agents are put there only inside a private mount
//!   namespace (`tests::pcmk::Agents::shadowing_script`), so the host's `/usr/lib/ocf` is never
//!   changed and parallel tests or an installed package cannot interfere.
//!
//! lkh-nas and lkh-scsipr need an NFS mount and a SCSI LU, which only the VM guest has (the
//! host kernel may not even have an NFS client): their sequences run in `nas_vm.rs` /
//! `scsipr_vm.rs` (`tests/guest/ocf_*.sh`).
//!
//! Needs root; installs iproute2, resource-agents, libxml2-utils and pacemaker-cli-utils when
//! missing (`tests::host`); skips loudly when not root, fails instead under `LKH_VM_REQUIRED=1`
//! (CI).

use std::process::Command;
use std::time::Duration;

use tests::host;
use tests::netns::{self, HyperVLab};
use tests::pcmk::{self, Agents, Scratch};

const VIP: &str = "10.200.0.100/24";

fn ready(test: &str, tools: &[&str]) -> Option<Agents> {
    if let Some(why) = netns::unavailable() {
        return pcmk::skip(test, &why);
    }
    if !host::need(test, &[host::OCF_TOOLS, host::PACEMAKER_CLI].concat()) {
        return None;
    }
    if let Some(t) = pcmk::missing_tool(tools) {
        panic!("{test}: {t} is missing although its package is installed");
    }
    assert!(
        std::path::Path::new("/usr/lib/ocf/resource.d").is_dir(),
        "{test}: /usr/lib/ocf/resource.d is missing although resource-agents is installed"
    );
    Some(Agents::new().unwrap_or_else(|e| panic!("cannot prepare the agents: {e}")))
}

#[test]
fn ocf_tester_passes_lkh_ip_in_a_namespace() {
    let Some(agents) = ready("ocf_tester_ip", &["ocf-tester", "xmllint", "su"]) else {
        return;
    };
    let lab = HyperVLab::new("ocft").unwrap_or_else(|e| panic!("cannot build the lab: {e}"));
    let run = Scratch::new("ocft-run");
    let mut c = lab.topo.exec(&lab.guest, "ocf-tester");
    c.args(["-n", "vip", "-o"])
        .arg(format!("address={VIP}"))
        .args(["-o", "interface=eth0"])
        .arg(agents.agent("ip"))
        .env("LKHELPERS_NO_SYSLOG", "1")
        .env("LKHELPERS_RUN_DIR", run.0.join("run"));
    let o = netns::run_limited(&mut c, Duration::from_secs(240))
        .expect("ocf-tester did not finish within 240 s");
    let out = pcmk::text(&o);
    assert!(o.status.success(), "ocf-tester failed:\n{out}");
    assert!(out.contains(" passed all tests"), "{out}");
    let addrs = lab.topo.addrs(&lab.guest, "eth0").expect("addresses");
    assert!(
        !addrs.contains(&VIP.to_owned()),
        "the last stop removed the address: {addrs:?}"
    );
}

/// `crm_resource --validate` for `kit` with `options`, in the lab's guest namespace with the
/// agents shadowing `/usr/lib/ocf/resource.d`; returns (exit code, output).
fn validate(agents: &Agents, lab: &HyperVLab, kit: &str, options: &[&str]) -> (i32, String) {
    let mut line = format!(
        "{} && exec crm_resource --validate --class ocf --provider lkhelpers --agent {kit}",
        agents.shadowing_script()
    );
    for o in options {
        line += &format!(" --option '{o}'");
    }
    let mut c = lab.topo.exec(&lab.guest, "unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-c", &line])
        .env("LKHELPERS_NO_SYSLOG", "1");
    let o = netns::run_limited(&mut c, Duration::from_secs(60))
        .unwrap_or_else(|| panic!("crm_resource --validate {kit} did not finish within 60 s"));
    (o.status.code().unwrap_or(-1), pcmk::text(&o))
}

#[test]
fn crm_resource_validates_the_three_agents() {
    let Some(agents) = ready("crm_resource_validate", &["crm_resource", "unshare"]) else {
        return;
    };
    let lab = HyperVLab::new("crmv").unwrap_or_else(|e| panic!("cannot build the lab: {e}"));
    let mnt = Scratch::new("crmv-mnt");
    let mountpoint = format!("mountpoint={}", mnt.0.join("share").display());
    let mut good: Vec<(&str, Vec<String>)> = vec![
        (
            "ip",
            vec![format!("address={VIP}"), "interface=eth0".into()],
        ),
        (
            "nas",
            vec![
                "server=10.200.0.1".into(),
                "export=/export".into(),
                mountpoint.clone(),
                "version=4.1".into(),
            ],
        ),
    ];
    // validate-all checks values, not this node's devices (start does: 5 when missing)
    good.push((
        "scsipr",
        vec![
            "device=/dev/disk/by-id/scsi-lkh-shared0".into(),
            "key=0x1234abcd".into(),
        ],
    ));
    for (kit, options) in &good {
        let opts: Vec<&str> = options.iter().map(String::as_str).collect();
        let (code, out) = validate(&agents, &lab, kit, &opts);
        assert_eq!(code, 0, "{kit} {opts:?}:\n{out}");
        assert!(out.contains("returned 0 (ok)"), "{kit}:\n{out}");
    }
    // refused: a malformed value (6, not configured), an unknown parameter (6), a missing
    // required parameter (6)
    for (kit, options, want) in [
        ("ip", vec!["address=10.200.0.300/24", "interface=eth0"], 6),
        (
            "ip",
            vec!["address=10.200.0.100/24", "interface=eth0", "colour=red"],
            6,
        ),
        ("nas", vec!["server=10.200.0.1", "export=/export"], 6),
        ("scsipr", vec!["device=/dev/sdb", "key=0"], 6),
        ("scsipr", vec!["key=0x1234abcd"], 6),
    ] {
        let (code, out) = validate(&agents, &lab, kit, &options);
        assert_ne!(code, 0, "{kit} {options:?} must be refused:\n{out}");
        assert!(
            out.contains(&format!("returned {want} ")),
            "{kit} {options:?}: expected OCF code {want}:\n{out}"
        );
    }
    // and the host's own tree was not touched
    assert!(
        !std::path::Path::new("/usr/lib/ocf/resource.d/lkhelpers/ip").exists()
            || Command::new("dpkg")
                .args(["-S", "/usr/lib/ocf/resource.d/lkhelpers/ip"])
                .output()
                .is_ok_and(|o| o.status.success()),
        "no stray agent links left on the host"
    );
}
