//! `lkh-ip` in network namespaces shaped like a Hyper-V host (see `tests::netns`): a guest
//! and a co-hosted VM on a bridge whose uplink leads to the gateway.
//!
//! Needs root; iproute2 and `tcpdump` (the on-the-wire check of gratuitous ARPs) are installed
//! when missing (`tests::host`). Without root every test skips loudly (`SKIPPED …` on stderr),
//! and fails instead under `LKH_VM_REQUIRED`/`CI`.
//! `LKH_IP_BIN` may point at a prebuilt `lkh-ip`; otherwise it is built once per run.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tests::netns::{self, HyperVLab};

/// Hard limit on any one run of the binary; a run that hits it fails the test.
const RUN_LIMIT: Duration = Duration::from_secs(40);

struct Kit {
    lab: HyperVLab,
    bin: PathBuf,
    dir: PathBuf,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

const VIP: &str = "10.200.0.100/24";

impl Kit {
    /// A lab plus a resource `vip` with `conf` as its configuration file. `None` (after
    /// saying why) when namespaces are unavailable.
    fn new(label: &str, conf: &str) -> Option<Kit> {
        if let Some(why) = netns::unavailable() {
            tests::host::skip(label, &why);
            return None;
        }
        let bin = netns::lkh_ip_binary().unwrap_or_else(|e| panic!("cannot get lkh-ip: {e}"));
        let lab = HyperVLab::new(label).unwrap_or_else(|e| panic!("cannot build the lab: {e}"));
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "lkh-ip-netns-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("conf")).expect("temp dir");
        std::fs::set_permissions(dir.join("conf"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let kit = Kit { lab, bin, dir };
        kit.configure(conf);
        Some(kit)
    }

    fn configure(&self, conf: &str) {
        let f = self.dir.join("conf").join("vip.conf");
        std::fs::write(&f, conf).expect("write conf");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }

    fn command(&self, ns: &str, args: &[&str]) -> Command {
        let mut c = self.lab.topo.exec(ns, &self.bin);
        c.args(args)
            .env("LKHELPERS_CONF_DIR", self.dir.join("conf"))
            .env(
                "LKHELPERS_LK_DEFAULTS",
                self.dir.join("no-lifekeeper-defaults"),
            )
            .env("LKHELPERS_RUN_DIR", self.dir.join("run"))
            .env("LKHELPERS_NO_SYSLOG", "1")
            .env_remove("RUST_LOG");
        c
    }

    /// Run `lkh-ip ARGS` in the guest.
    fn run(&self, args: &[&str]) -> Run {
        let out = netns::run_limited(&mut self.command(&self.lab.guest, args), RUN_LIMIT)
            .unwrap_or_else(|| panic!("lkh-ip {args:?} did not finish within {RUN_LIMIT:?}"));
        Run::from(out)
    }

    fn hook(&self, action: &str) -> Run {
        self.run(&[action, "-t", "vip"])
    }

    fn guest_addrs(&self) -> Vec<String> {
        self.lab
            .topo
            .addrs(&self.lab.guest, "eth0")
            .expect("list guest addresses")
    }
}

impl Drop for Kit {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn conf_default() -> String {
    format!(
        "ADDRESS={VIP}\nINTERFACE=eth0\nTARGETS=\"{} {}\"\n",
        HyperVLab::GATEWAY,
        HyperVLab::REMOTE
    )
}

#[test]
fn healthy_restore_check_status() {
    let Some(kit) = Kit::new("ok", &conf_default()) else {
        return;
    };
    let r = kit.hook("restore");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(kit.guest_addrs().contains(&VIP.to_string()));
    let r = kit.hook("quickCheck");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("healthy"), "{r:?}");
    let r = kit.run(&["status", "-t", "vip", "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("\"healthy\":true"), "{r:?}");
    assert!(r.stdout.contains("\"method\":\"arp\""), "{r:?}");
    assert!(r.stdout.contains("\"method\":\"icmp\""), "{r:?}");
    // The default target is the default gateway.
    kit.configure(&format!("ADDRESS={VIP}\nINTERFACE=eth0\n"));
    let r = kit.run(&["status", "-t", "vip"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains(HyperVLab::GATEWAY), "{r:?}");
    let r = kit.run(&[
        "probe",
        "--interface",
        "eth0",
        HyperVLab::COHOST_IP,
        HyperVLab::REMOTE,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("answers by arp"), "{r:?}");
}

#[test]
fn uplink_cut_fails_although_carrier_and_cohost_stay() {
    let Some(kit) = Kit::new("cut", &conf_default()) else {
        return;
    };
    assert_eq!(kit.hook("restore").code, 0);
    kit.lab.set_uplink(false).expect("cut the uplink");
    assert!(
        kit.lab.guest_carrier().expect("carrier"),
        "the guest must keep its carrier"
    );
    let r = kit.run(&["probe", "--interface", "eth0", HyperVLab::COHOST_IP]);
    assert_eq!(r.code, 0, "the co-hosted VM still answers: {r:?}");
    let r = kit.hook("quickCheck");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("link up but no target answers"), "{r:?}");
    assert!(r.stderr.contains("uplink"), "{r:?}");
    // recover cannot help: it fails too, so LifeKeeper fails over.
    let r = kit.hook("recover");
    assert_eq!(r.code, 1, "{r:?}");
    kit.lab.set_uplink(true).expect("restore the uplink");
    let r = kit.hook("quickCheck");
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn one_second_switch_pause_does_not_fail() {
    let Some(kit) = Kit::new("pause", &conf_default()) else {
        return;
    };
    assert_eq!(kit.hook("restore").code, 0);
    // A port that stays blocked does fail the check (so the pause below really blocks)...
    kit.lab.set_guest_port_forwarding(false).expect("block");
    assert!(kit.lab.guest_carrier().expect("carrier"));
    let r = kit.hook("quickCheck");
    assert_eq!(r.code, 1, "{r:?}");
    // ...but a one-second pause, starting with the check, does not.
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_secs(1));
            kit.lab.set_guest_port_forwarding(true).expect("unblock");
        });
        let r = kit.hook("quickCheck");
        assert_eq!(r.code, 0, "{r:?}");
    });
    // With one probe per round the first round is lost entirely; GRACE makes the check look
    // again instead of failing, and says so.
    kit.configure(&format!("{}IP_PINGTRIES=1\n", conf_default()));
    kit.lab.set_guest_port_forwarding(false).expect("block");
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_secs(1));
            kit.lab.set_guest_port_forwarding(true).expect("unblock");
        });
        let r = kit.hook("quickCheck");
        assert_eq!(r.code, 0, "{r:?}");
        assert!(
            r.stderr.contains("failed before targets answered again"),
            "{r:?}"
        );
    });
}

#[test]
fn link_down_and_missing_address_are_named() {
    let Some(kit) = Kit::new("down", &conf_default()) else {
        return;
    };
    assert_eq!(kit.hook("restore").code, 0);
    kit.lab
        .topo
        .ip(
            &kit.lab.host,
            &["link", "set", "dev", HyperVLab::GUEST_PORT, "down"],
        )
        .expect("port down");
    let r = kit.hook("quickCheck");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("link down"), "{r:?}");
    kit.lab
        .topo
        .ip(
            &kit.lab.host,
            &["link", "set", "dev", HyperVLab::GUEST_PORT, "up"],
        )
        .expect("port up");
    kit.lab
        .topo
        .ip(&kit.lab.guest, &["addr", "del", VIP, "dev", "eth0"])
        .expect("delete VIP");
    let r = kit.hook("quickCheck");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("address missing"), "{r:?}");
    let r = kit.hook("recover");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(kit.guest_addrs().contains(&VIP.to_string()));
    // An interface taken down loses its routes: with the default target (the gateway) the
    // verdict is still "link down", not a configuration error.
    kit.configure(&format!("ADDRESS={VIP}\nINTERFACE=eth0\n"));
    kit.lab
        .topo
        .ip(&kit.lab.guest, &["link", "set", "dev", "eth0", "down"])
        .expect("guest NIC down");
    let r = kit.hook("quickCheck");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("link down"), "{r:?}");
}

#[test]
fn restore_refuses_an_address_in_use_and_names_the_mac() {
    let Some(kit) = Kit::new("dup", &conf_default()) else {
        return;
    };
    let lab = &kit.lab;
    lab.topo
        .ip(&lab.cohost, &["addr", "add", VIP, "dev", "eth0"])
        .expect("cohost takes the VIP");
    let mac = lab.topo.mac(&lab.cohost, "eth0").expect("cohost MAC");
    let r = kit.hook("restore");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains(&mac), "message must name {mac}: {r:?}");
    assert!(
        !kit.guest_addrs().contains(&VIP.to_string()),
        "nothing added"
    );
    // NOIPUNIQUE=1 skips the check, as LifeKeeper's tunable does.
    kit.configure(&format!("{}NOIPUNIQUE=1\n", conf_default()));
    let r = kit.hook("restore");
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn gratuitous_arps_seen_on_the_wire() {
    let Some(kit) = Kit::new("garp", &format!("{}GARP_COUNT=4\n", conf_default())) else {
        return;
    };
    let lab = &kit.lab;
    let guest_mac = lab.topo.mac(&lab.guest, "eth0").expect("guest MAC");
    // The co-hosted VM has a stale entry for the VIP pointing elsewhere; the announcements
    // must correct it.
    lab.topo
        .ip(
            &lab.cohost,
            &[
                "neigh",
                "replace",
                "10.200.0.100",
                "lladdr",
                "02:00:00:00:00:99",
                "dev",
                "eth0",
                "nud",
                "stale",
            ],
        )
        .expect("seed neighbour");
    let tcpdump = match tests::host::install("gratuitous_arps_seen_on_the_wire", &["tcpdump"]) {
        Ok(()) => true,
        Err(why) => {
            tests::host::skip(
                "gratuitous_arps_seen_on_the_wire (the capture; the neighbour cache is checked)",
                &why,
            );
            false
        }
    };
    let capture = if tcpdump {
        let mut c = lab.topo.exec(&lab.cohost, "tcpdump");
        c.args([
            "-i",
            "eth0",
            "-nn",
            "-e",
            "-t",
            "-l",
            "-c",
            "4",
            "arp and src host 10.200.0.100 and dst host 10.200.0.100",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn tcpdump");
        // Wait until tcpdump is listening.
        let mut err = child.stderr.take().expect("stderr");
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while !String::from_utf8_lossy(&seen).contains("listening on") {
            use std::io::Read;
            match err.read(&mut byte) {
                Ok(1) => seen.push(byte[0]),
                _ => panic!("tcpdump did not start: {}", String::from_utf8_lossy(&seen)),
            }
        }
        Some((child, err, seen))
    } else {
        None
    };
    let r = kit.hook("restore");
    assert_eq!(r.code, 0, "{r:?}");
    if let Some((mut child, mut err, mut seen)) = capture {
        for _ in 0..100 {
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let out = child.wait_with_output().expect("tcpdump output");
        use std::io::Read;
        let _ = err.read_to_end(&mut seen);
        let text = String::from_utf8_lossy(&out.stdout);
        let garps = text
            .lines()
            .filter(|l| {
                l.starts_with(&format!("{guest_mac} > "))
                    && l.contains("who-has 10.200.0.100 tell 10.200.0.100")
            })
            .count();
        assert_eq!(
            garps,
            4,
            "captured:\n{text}\ntcpdump said: {}",
            String::from_utf8_lossy(&seen)
        );
    }
    let neigh = lab
        .topo
        .ip(
            &lab.cohost,
            &["neigh", "show", "10.200.0.100", "dev", "eth0"],
        )
        .expect("neigh");
    assert!(neigh.contains(&guest_mac), "cohost's cache: {neigh}");
}

#[test]
fn remove_and_restore_are_idempotent_and_touch_nothing_else() {
    let Some(kit) = Kit::new("idem", &conf_default()) else {
        return;
    };
    let lab = &kit.lab;
    lab.topo
        .ip(
            &lab.guest,
            &["addr", "add", "10.200.0.101/24", "dev", "eth0"],
        )
        .expect("another secondary");
    for _ in 0..2 {
        let r = kit.hook("restore");
        assert_eq!(r.code, 0, "{r:?}");
    }
    let addrs = kit.guest_addrs();
    assert_eq!(addrs.iter().filter(|a| *a == VIP).count(), 1, "{addrs:?}");
    for _ in 0..2 {
        let r = kit.hook("remove");
        assert_eq!(r.code, 0, "{r:?}");
    }
    let addrs = kit.guest_addrs();
    assert!(!addrs.contains(&VIP.to_string()), "{addrs:?}");
    for keep in ["10.200.0.10/24", "10.200.0.101/24"] {
        assert!(
            addrs.contains(&keep.to_string()),
            "{keep} must stay: {addrs:?}"
        );
    }
}

#[test]
fn a_note_from_another_address_does_not_unlock_the_primary() {
    let Some(kit) = Kit::new("note", &conf_default()) else {
        return;
    };
    assert_eq!(kit.hook("restore").code, 0);
    // The configuration now names the guest's own address while restore's note (about the
    // VIP) is still there: remove must not take the node's address away.
    let t = format!("TARGETS={}\n", HyperVLab::GATEWAY);
    kit.configure(&format!(
        "ADDRESS={}/24\nINTERFACE=eth0\n{t}",
        HyperVLab::GUEST_IP
    ));
    for action in ["quickCheck", "remove"] {
        let r = kit.hook(action);
        assert_eq!(r.code, 2, "{action}: {r:?}");
        assert!(r.stderr.contains("primary address"), "{action}: {r:?}");
    }
    let own = format!("{}/24", HyperVLab::GUEST_IP);
    assert!(kit.guest_addrs().contains(&own), "{:?}", kit.guest_addrs());
}

#[test]
fn remove_keeps_secondaries_when_the_vip_is_primary_of_its_subnet() {
    // The VIP on a subnet of its own becomes that subnet's primary; deleting a primary
    // drops its secondaries unless promote_secondaries is set. They must survive.
    let conf = format!(
        "ADDRESS=10.202.0.5/24\nINTERFACE=eth0\nTARGETS={}\nPROBE=icmp\n",
        HyperVLab::GATEWAY
    );
    let Some(kit) = Kit::new("prim", &conf) else {
        return;
    };
    let lab = &kit.lab;
    let _ = netns::run(
        lab.topo
            .exec(&lab.guest, "sysctl")
            .args(["-qw", "net.ipv4.conf.eth0.promote_secondaries=0"]),
    );
    assert_eq!(kit.hook("restore").code, 0);
    lab.topo
        .ip(&lab.guest, &["addr", "add", "10.202.0.6/24", "dev", "eth0"])
        .expect("secondary");
    let r = kit.hook("remove");
    assert_eq!(r.code, 0, "{r:?}");
    let addrs = kit.guest_addrs();
    assert!(!addrs.contains(&"10.202.0.5/24".to_string()), "{addrs:?}");
    assert!(addrs.contains(&"10.202.0.6/24".to_string()), "{addrs:?}");
}

#[test]
fn bad_input_exits_2_and_changes_nothing() {
    let Some(kit) = Kit::new("bad", &conf_default()) else {
        return;
    };
    let before = kit.guest_addrs();
    let t = format!("TARGETS={}\n", HyperVLab::GATEWAY);
    let cases = [
        format!("ADDRESS={VIP}\nINTERFACE=eth9\n{t}"),
        format!("ADDRESS=10.200.0.300/24\nINTERFACE=eth0\n{t}"),
        format!("ADDRESS=10.200.0.100/33\nINTERFACE=eth0\n{t}"),
        format!("ADDRESS=10.200.0.100\nINTERFACE=eth0\n{t}"),
        format!("ADDRESS={VIP}\nINTERFACE=eth0\nTARGETS=gateway.example\n"),
        format!(
            "ADDRESS={VIP}\nINTERFACE=eth0\nTARGETS={}\nPROBE=arp\n",
            HyperVLab::REMOTE
        ),
        format!("ADDRESS=10.200.0.10/24\nINTERFACE=eth0\n{t}"),
        // The guest's own address answers through loopback: no proof of the network.
        format!(
            "ADDRESS={VIP}\nINTERFACE=eth0\nTARGETS={}\n",
            HyperVLab::GUEST_IP
        ),
        format!(
            "ADDRESS=2001:db8:200::10/64\nINTERFACE=eth0\nTARGETS={}\n",
            HyperVLab::GATEWAY6
        ),
        format!("ADDRESS={VIP}\nINTERFACE=eth0\n{t}PROBE=smoke\n"),
        format!("ADDRESS={VIP}\nINTERFACE=eth0\n{t}GRACE=-1\n"),
    ];
    for conf in &cases {
        kit.configure(conf);
        for action in ["restore", "remove", "quickCheck", "recover"] {
            let r = kit.hook(action);
            // remove of an interface this node does not have succeeds: the address cannot be
            // on it (and is on no other interface here); a failed stop gets a node fenced
            let want = if action == "remove" && conf.contains("INTERFACE=eth9") {
                0
            } else {
                2
            };
            assert_eq!(r.code, want, "{action} with\n{conf}\n{r:?}");
            assert!(
                !r.stderr.trim().is_empty() && r.stderr.lines().count() <= 2,
                "one clear line: {r:?}"
            );
        }
        assert_eq!(kit.guest_addrs(), before, "nothing changed with\n{conf}");
    }
}

#[test]
fn ipv6_restore_check_remove() {
    let conf = format!(
        "ADDRESS=2001:db8:200::100/64\nINTERFACE=eth0\nTARGETS={}\n",
        HyperVLab::GATEWAY6
    );
    let Some(kit) = Kit::new("v6", &conf) else {
        return;
    };
    let r = kit.hook("restore");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("neighbour advertisements"), "{r:?}");
    assert!(
        kit.guest_addrs()
            .contains(&"2001:db8:200::100/64".to_string())
    );
    let r = kit.hook("quickCheck");
    assert_eq!(r.code, 0, "{r:?}");
    kit.lab.set_uplink(false).expect("cut");
    let r = kit.hook("quickCheck");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("no target answers"), "{r:?}");
    kit.lab.set_uplink(true).expect("uncut");
    assert_eq!(kit.hook("remove").code, 0);
    assert!(
        !kit.guest_addrs()
            .contains(&"2001:db8:200::100/64".to_string())
    );
}

#[test]
fn ipv6_duplicate_is_refused() {
    let conf = format!(
        "ADDRESS=2001:db8:200::100/64\nINTERFACE=eth0\nTARGETS={}\n",
        HyperVLab::GATEWAY6
    );
    let Some(kit) = Kit::new("dup6", &conf) else {
        return;
    };
    let lab = &kit.lab;
    lab.topo
        .ip(
            &lab.cohost,
            &[
                "addr",
                "add",
                "2001:db8:200::100/64",
                "dev",
                "eth0",
                "nodad",
            ],
        )
        .expect("cohost takes it");
    let r = kit.hook("restore");
    assert_eq!(r.code, 1, "{r:?}");
    let mac = lab.topo.mac(&lab.cohost, "eth0").expect("cohost MAC");
    assert!(r.stderr.contains(&mac), "message must name {mac}: {r:?}");
    assert!(
        !kit.guest_addrs()
            .contains(&"2001:db8:200::100/64".to_string()),
        "deleted again"
    );
}

/// The value of `"key":` in one line of `status --json` output: a number, or a string's text.
fn json_field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let rest = &json[json.find(&format!("\"{key}\":"))? + key.len() + 3..];
    match rest.strip_prefix('"') {
        Some(s) => s.split('"').next(),
        None => rest.split([',', '}']).next(),
    }
}

/// quickCheck and `status` make one assessment: on a healthy resource and in each failed
/// state, quickCheck's exit code is `status --json`'s own exit code and its `exit`, and
/// both name the same verdict.
#[test]
fn quick_check_and_status_agree() {
    let conf = format!("{}GRACE=0\nIP_PINGTRIES=1\n", conf_default());
    let Some(kit) = Kit::new("agree", &conf) else {
        return;
    };
    let lab = &kit.lab;
    let port = |state: &str| {
        lab.topo
            .ip(
                &lab.host,
                &["link", "set", "dev", HyperVLab::GUEST_PORT, state],
            )
            .expect("guest port");
    };
    assert_eq!(kit.hook("restore").code, 0);
    let check = |state: &str, code: i32, verdict: &str| {
        let q = kit.hook("quickCheck");
        assert_eq!(q.code, code, "{state}: quickCheck {q:?}");
        let s = kit.run(&["status", "-t", "vip", "--json"]);
        assert_eq!(s.code, q.code, "{state}: status exits as quickCheck: {s:?}");
        let json = s.stdout.trim();
        assert_eq!(
            json_field(json, "exit"),
            Some(code.to_string().as_str()),
            "{state}: {s:?}"
        );
        assert_eq!(
            json_field(json, "healthy"),
            Some(if code == 0 { "true" } else { "false" }),
            "{state}: {s:?}"
        );
        let v = json_field(json, "verdict").unwrap_or_default();
        assert!(v.starts_with(verdict), "{state}: verdict {v:?}: {s:?}");
        if code != 0 {
            assert!(q.stderr.contains(verdict), "{state}: {q:?}");
            // the failure line status logs is quickCheck's message
            let msg = json_field(json, "message").unwrap_or_default();
            assert!(!msg.is_empty() && s.stderr.contains(msg), "{state}: {s:?}");
        }
    };
    check("healthy", 0, "healthy");
    lab.set_uplink(false).expect("cut the uplink");
    check("uplink cut", 1, "link up but no target answers");
    lab.set_uplink(true).expect("restore the uplink");
    check("uplink back", 0, "healthy");
    port("down");
    check("guest port down", 1, "link down");
    port("up");
    lab.topo
        .ip(&lab.guest, &["addr", "del", VIP, "dev", "eth0"])
        .expect("delete VIP");
    check("address deleted", 1, "address missing");
}
