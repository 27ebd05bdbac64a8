//! Figures for BENCHMARKS.md (issue 6, Performance), printed, never asserted:
//!
//! - wall time of a healthy `lkh-ip quickCheck` against Pacemaker's `IPaddr2 monitor`
//!   (Debian `resource-agents`) on the same namespace topology, the same address;
//! - time from cutting the host's uplink to quickCheck reporting it (defaults, and tight
//!   settings), and what IPaddr2 says meanwhile;
//! - a one-second switch pause, with the defaults: quickCheck's verdict and its duration;
//! - CPU time per run of `/bin/true`, `lkh-ip --version` (start-up) and a healthy quickCheck,
//!   which other work on the machine disturbs far less than wall time.
//!
//! Run (root; release build of lkh-ip, ~2 min the first time):
//! `cargo test -p tests --test ip_bench -- --ignored --nocapture`
//! `LKH_IP_BIN=/path/to/lkh-ip` skips the build.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tests::netns::{self, HyperVLab};

const IPADDR2: &str = "/usr/lib/ocf/resource.d/heartbeat/IPaddr2";
const RUNS: u32 = 50;

struct Bench {
    lab: HyperVLab,
    bin: PathBuf,
    dir: PathBuf,
}

impl Bench {
    fn conf(&self, extra: &str) {
        let f = self.dir.join("conf").join("vip.conf");
        let text = format!(
            "ADDRESS=10.200.0.100/24\nINTERFACE=eth0\nTARGETS=\"{} {}\"\n{extra}",
            HyperVLab::GATEWAY,
            HyperVLab::REMOTE
        );
        std::fs::write(&f, text).expect("conf");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }

    fn env(&self) -> String {
        format!(
            "LKHELPERS_CONF_DIR={} LKHELPERS_LK_DEFAULTS=/nonexistent LKHELPERS_RUN_DIR={} LKHELPERS_NO_SYSLOG=1",
            self.dir.join("conf").display(),
            self.dir.join("run").display()
        )
    }

    fn lkh(&self, action: &str) -> String {
        format!("env {} {} {action} -t vip", self.env(), self.bin.display())
    }

    /// Mean wall time of `cmd` over `runs`, measured inside the guest namespace by one shell
    /// (so `ip netns exec` is paid once, not per run), and the last exit status.
    fn mean_in_guest(&self, cmd: &str, runs: u32) -> (Duration, i32) {
        let script = format!(
            "i=0; s=$(date +%s%N); while [ $i -lt {runs} ]; do {cmd} >/dev/null 2>&1; rc=$?; i=$((i+1)); done; e=$(date +%s%N); echo $(( (e-s)/{runs} )) $rc"
        );
        let out = netns::run(
            self.lab
                .topo
                .exec(&self.lab.guest, "sh")
                .args(["-c", &script]),
        )
        .expect("run");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut w = text.split_whitespace();
        let ns: u64 = w.next().and_then(|v| v.parse().ok()).expect("ns");
        let rc: i32 = w.next().and_then(|v| v.parse().ok()).expect("rc");
        (Duration::from_nanos(ns), rc)
    }

    /// Mean CPU time (user + system, of the children) of `cmd` over `runs`, measured like
    /// [`Bench::mean_in_guest`] by one bash in the guest: unlike wall time it hardly moves
    /// when other work shares the machine.
    fn cpu_in_guest(&self, cmd: &str, runs: u32) -> Duration {
        let script = format!(
            "TIMEFORMAT='%3U %3S'; time (i=0; while [ $i -lt {runs} ]; do {cmd} >/dev/null 2>&1; i=$((i+1)); done)"
        );
        let out = netns::run(
            self.lab
                .topo
                .exec(&self.lab.guest, "bash")
                .args(["-c", &script]),
        )
        .expect("run");
        let text = String::from_utf8_lossy(&out.stderr);
        let secs: f64 = text
            .split_whitespace()
            .filter_map(|v| v.parse::<f64>().ok())
            .sum();
        Duration::from_secs_f64(secs / f64::from(runs))
    }

    fn once(&self, action: &str) -> (Duration, i32) {
        let t = Instant::now();
        let out = netns::run_limited(
            self.lab
                .topo
                .exec(&self.lab.guest, "sh")
                .args(["-c", &self.lkh(action)]),
            Duration::from_secs(60),
        )
        .expect("finished");
        (t.elapsed(), out.status.code().unwrap_or(-1))
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn ip_benchmarks() {
    if let Some(why) = netns::unavailable() {
        eprintln!("SKIP ip_benchmarks: {why}");
        return;
    }
    let bin = match std::env::var_os("LKH_IP_BIN") {
        Some(p) => PathBuf::from(p),
        None => netns::build_lkh_ip(true).expect("release build of lkh-ip"),
    };
    let lab = HyperVLab::new("bench").expect("lab");
    let dir = std::env::temp_dir().join(format!("lkh-ip-bench-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("conf")).expect("dir");
    let b = Bench { lab, bin, dir };
    b.conf("");
    let (t, rc) = b.once("restore");
    assert_eq!(rc, 0, "restore failed");
    println!(
        "lkh-ip restore (ARP probe 0.9 s + 5 GARPs 200 ms apart): {}",
        ms(t)
    );

    let (base, _) = b.mean_in_guest("/bin/true", RUNS);
    let (ours, rc) = b.mean_in_guest(&b.lkh("quickCheck"), RUNS);
    assert_eq!(rc, 0);
    println!(
        "fork+exec /bin/true baseline: {} (mean of {RUNS})",
        ms(base)
    );
    println!(
        "lkh-ip quickCheck, healthy (address, link, 2 targets by ARP/ICMP): {} (mean of {RUNS}, exit {rc})",
        ms(ours)
    );
    println!(
        "CPU time (user + system) per run, mean of {}: /bin/true {}, lkh-ip --version {}, lkh-ip quickCheck {}",
        RUNS * 4,
        ms(b.cpu_in_guest("/bin/true", RUNS * 4)),
        ms(b.cpu_in_guest(&format!("{} --version", b.bin.display()), RUNS * 4)),
        ms(b.cpu_in_guest(&b.lkh("quickCheck"), RUNS * 4))
    );
    let ipaddr2 = Path::new(IPADDR2).is_file();
    let pcmk = format!(
        "env OCF_ROOT=/usr/lib/ocf OCF_RESKEY_ip=10.200.0.100 OCF_RESKEY_cidr_netmask=24 OCF_RESKEY_nic=eth0 {IPADDR2} monitor"
    );
    if ipaddr2 {
        let (theirs, rc) = b.mean_in_guest(&pcmk, RUNS);
        println!(
            "IPaddr2 monitor (address on NIC only): {} (mean of {RUNS}, exit {rc})",
            ms(theirs)
        );
        println!(
            "ratio lkh-ip / IPaddr2: {:.3}x (goal <= 0.1x)",
            ours.as_secs_f64() / theirs.as_secs_f64()
        );
    } else {
        println!("IPaddr2 not installed ({IPADDR2}): apt-get install -y resource-agents");
    }

    b.lab.set_uplink(false).expect("cut");
    let (t, rc) = b.once("quickCheck");
    println!(
        "uplink cut, defaults (IP_PINGTRIES=3 IP_PINGTIME=1 GRACE=3): quickCheck exit {rc} after {}",
        ms(t)
    );
    b.conf("IP_PINGTRIES=1\nGRACE=1\n");
    let (t, rc) = b.once("quickCheck");
    println!(
        "uplink cut, IP_PINGTRIES=1 IP_PINGTIME=1 GRACE=1: quickCheck exit {rc} after {}",
        ms(t)
    );
    if ipaddr2 {
        let (_, rc) = b.mean_in_guest(&pcmk, 1);
        println!("uplink cut: IPaddr2 monitor exit {rc} (0 = it does not notice)");
    }
    b.conf("");
    b.lab.set_uplink(true).expect("uncut");

    b.lab.set_guest_port_forwarding(false).expect("pause");
    let t = Instant::now();
    let (d, rc) = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_secs(1));
            b.lab.set_guest_port_forwarding(true).expect("resume");
        });
        b.once("quickCheck")
    });
    println!(
        "1 s switch pause starting with the check: quickCheck exit {rc} after {} (pause ended at {})",
        ms(d),
        ms(Duration::from_secs(1).min(t.elapsed()))
    );
    let _ = std::fs::remove_dir_all(&b.dir);
}
