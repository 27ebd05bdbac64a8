//! A real 3-node Pacemaker + Corosync cluster on this machine (`tests::pcmk::Cluster`: one
//! network, mount, UTS and PID namespace per node) runs `ocf:lkhelpers:ip` and, for comparison,
//! `ocf:heartbeat:IPaddr2`, both on node n1. Then n1's Hyper-V host loses its uplink beyond the
//! virtual switch; n1 keeps its carrier and its cluster membership (Corosync has its own
//! network). lkh-ip's monitor fails and Pacemaker moves the address to another node, where it
//! answers the gateway; IPaddr2 keeps its address on n1, unreachable, for several of its monitor
//! intervals. The time from the cut to the address answering on the new node is printed
//! (`BENCH pcmk-failover`, figure in BENCHMARKS.md), never asserted.
//!
//! Needs root; installs iproute2, pacemaker, pacemaker-cli-utils, corosync, resource-agents
//! when missing (`tests::host::CLUSTER`); skips loudly when not root, fails instead under
//! `LKH_VM_REQUIRED=1` (CI). About 1–2 minutes.

use std::time::{Duration, Instant};

use tests::pcmk::{self, Agents, Cluster};

const VIP: &str = "10.210.0.100";
const VIP2: &str = "10.210.0.101";
/// Monitor intervals of the two resources.
const LKH_MONITOR: u64 = 5;
const IPADDR2_MONITOR: u64 = 5;

fn primitive(
    id: &str,
    provider: &str,
    agent: &str,
    params: &[(&str, &str)],
    monitor: u64,
) -> String {
    let nv: String = params
        .iter()
        .map(|(k, v)| format!("<nvpair id=\"{id}-{k}\" name=\"{k}\" value=\"{v}\"/>"))
        .collect();
    format!(
        "<primitive id=\"{id}\" class=\"ocf\" provider=\"{provider}\" type=\"{agent}\">\
         <instance_attributes id=\"{id}-ia\">{nv}</instance_attributes>\
         <meta_attributes id=\"{id}-ma\"><nvpair id=\"{id}-mt\" name=\"migration-threshold\" value=\"1\"/></meta_attributes>\
         <operations><op id=\"{id}-mon\" name=\"monitor\" interval=\"{monitor}s\" timeout=\"30s\"/></operations>\
         </primitive>"
    )
}

/// The "Failed Resource Actions" of `crm_mon`, one per line without the bullet
/// (`vip 5s-interval monitor on n1 returned 'error' (...)` in Pacemaker 2.1).
fn failed_actions(cluster: &Cluster) -> Vec<String> {
    let out = cluster
        .crm_ok(0, &["crm_mon", "-1", "--include=failures"])
        .unwrap_or_else(|e| panic!("crm_mon: {e}"));
    out.lines()
        .skip_while(|l| !l.starts_with("Failed Resource Actions"))
        .skip(1)
        .take_while(|l| l.trim_start().starts_with('*'))
        .map(|l| l.trim_start().trim_start_matches('*').trim().to_owned())
        .collect()
}

#[test]
fn lkh_ip_fails_over_on_uplink_loss_and_ipaddr2_does_not() {
    let name = "pcmk_cluster";
    if let Some(why) = Cluster::unavailable() {
        pcmk::skip::<()>(name, &why);
        return;
    }
    let agents = Agents::new().unwrap_or_else(|e| panic!("cannot prepare the agents: {e}"));
    let booted = Instant::now();
    let cluster = Cluster::start(agents).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "cluster online after {:.1} s",
        booted.elapsed().as_secs_f64()
    );
    let fail = |msg: String| -> ! {
        panic!(
            "{msg}\n{}\n{}",
            cluster
                .crm(0, &["crm_mon", "-1", "-r", "--include=failures"])
                .map(|o| pcmk::text(&o))
                .unwrap_or_default(),
            cluster.logs()
        )
    };
    // Both prefer n1; migration-threshold=1 moves a resource away after its first failure.
    for (id, provider, agent, params, monitor) in [
        (
            "vip",
            "lkhelpers",
            "ip",
            vec![
                ("address", format!("{VIP}/24")),
                ("interface", "eth0".into()),
            ],
            LKH_MONITOR,
        ),
        (
            "vip2",
            "heartbeat",
            "IPaddr2",
            vec![
                ("ip", VIP2.to_owned()),
                ("cidr_netmask", "24".into()),
                ("nic", "eth0".into()),
            ],
            IPADDR2_MONITOR,
        ),
    ] {
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        cluster
            .add_primitive(&primitive(id, provider, agent, &params, monitor))
            .unwrap_or_else(|e| fail(e));
        cluster
            .crm_ok(
                0,
                &[
                    "cibadmin",
                    "-C",
                    "-o",
                    "constraints",
                    "-X",
                    &format!(
                        "<rsc_location id=\"{id}-prefers-n1\" rsc=\"{id}\" node=\"n1\" score=\"100\"/>"
                    ),
                ],
            )
            .unwrap_or_else(|e| fail(e));
    }
    let both_on_n1 = pcmk::wait_for(Duration::from_secs(60), Duration::from_millis(500), || {
        (cluster.holders(VIP) == [0]
            && cluster.holders(VIP2) == [0]
            && cluster.located("vip") == [0]
            && cluster.located("vip2") == [0])
        .then_some(())
    });
    if both_on_n1.is_none() {
        fail(format!(
            "the resources did not start on n1: vip on {:?}, vip2 on {:?}",
            cluster.holders(VIP),
            cluster.holders(VIP2)
        ));
    }
    let n1_mac = cluster.mac(0).unwrap_or_else(|e| fail(e));
    assert_eq!(
        cluster.answers_from_gateway(VIP).as_deref(),
        Some(n1_mac.as_str()),
        "vip answers from n1 before the cut"
    );
    assert!(
        cluster.answers_from_gateway(VIP2).is_some(),
        "vip2 answers before the cut"
    );

    // n1's host loses its uplink.
    let cut = Instant::now();
    cluster.set_uplink(0, false).unwrap_or_else(|e| fail(e));
    assert!(cluster.carrier(0), "n1 keeps its carrier");
    let moved = pcmk::wait_for(Duration::from_secs(90), Duration::from_millis(100), || {
        let on = cluster.holders(VIP);
        let &[k] = on.as_slice() else { return None };
        if k == 0 {
            return None;
        }
        let mac = cluster.mac(k).ok()?;
        (cluster.answers_from_gateway(VIP)? == mac).then_some(k)
    });
    let Some(new) = moved else {
        fail(format!(
            "vip did not move off n1 within 90 s of the cut (holders {:?})",
            cluster.holders(VIP)
        ))
    };
    let failover = cut.elapsed();
    println!(
        "BENCH pcmk-failover: ocf:lkhelpers:ip answered on {} {:.1} s after n1's uplink was cut (monitor interval {LKH_MONITOR} s)",
        cluster.nodes[new].name,
        failover.as_secs_f64()
    );
    assert_eq!(
        cluster.located("vip"),
        [new],
        "Pacemaker agrees where vip runs"
    );
    let status = cluster
        .crm_ok(0, &["crm_mon", "-1"])
        .unwrap_or_else(|e| fail(e));
    assert!(
        status.contains("Online: [ n1 n2 n3 ]"),
        "n1 stayed a cluster member (the move is the monitor's, not a membership change):\n{status}"
    );
    let failed = failed_actions(&cluster);
    assert!(
        failed
            .iter()
            .any(|l| l.starts_with("vip ") && l.contains("monitor") && l.contains("n1")),
        "the move came from vip's monitor failing on n1: {failed:#?}"
    );
    for l in failed.iter().filter(|l| l.starts_with("vip ")) {
        println!("BENCH pcmk-failover: the failed action: {l}");
    }

    // IPaddr2, on the same cut node, notices nothing: it stays on n1 (unreachable) for at least
    // three of its monitor intervals counted from the cut.
    let hold = Duration::from_secs(3 * IPADDR2_MONITOR + 2);
    while cut.elapsed() < hold {
        assert_eq!(cluster.holders(VIP2), [0], "vip2 stays on n1");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        cluster.located("vip2"),
        [0],
        "Pacemaker still runs vip2 on n1"
    );
    assert!(
        cluster.answers_from_gateway(VIP2).is_none(),
        "vip2 is really unreachable from the gateway"
    );
    let failed = failed_actions(&cluster);
    assert!(
        !failed.iter().any(|l| l.starts_with("vip2 ")),
        "IPaddr2 saw no failure: {failed:#?}"
    );
    assert!(cluster.carrier(0), "n1 kept its carrier all along");
    cluster.set_uplink(0, true).unwrap_or_else(|e| fail(e));
}
