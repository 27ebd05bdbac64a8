//! Network namespaces for tests: real veths and bridges, built with `ip`, torn down on drop.
//!
//! [`Topology`] owns uniquely named namespaces (prefix, pid and a counter, so parallel tests
//! and parallel test processes never collide) and deletes them when dropped, panics
//! included. [`HyperVLab`] builds the picture a Hyper-V guest lives in:
//!
//! ```text
//!  guest ns            host ns (the Hyper-V host)              phys ns (physical network)
//!  eth0 10.200.0.10 ── pg ─┐                                  ┌─ eth0 10.200.0.1 (gateway)
//!                          br0 (the virtual switch) ── up0 ───┘   lo 10.201.0.1 (remote target)
//!  cohost ns               │
//!  eth0 10.200.0.20 ── pc ─┘  (another VM on the same host)
//! ```
//!
//! Cutting `up0` is the host's physical uplink failing: the guest keeps its carrier and the
//! co-hosted VM keeps answering, exactly what makes link state useless on Hyper-V. Only
//! private addresses are used, and traffic never leaves the namespaces (the phys namespace
//! has no route anywhere else).
//!
//! The binaries under test run inside a namespace with `ip netns exec`. [`lkh_ip_binary`]
//! finds `lkh-ip`: `$LKH_IP_BIN` if set, else it runs `cargo build -p lkh-ip` once per
//! process into a target directory of its own (`<target>/ip-netns`), so this nested cargo
//! never waits for the lock held by the `cargo test` that runs us.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Why network-namespace tests cannot run here, if they cannot (not root, no `ip`, no netns).
pub fn unavailable() -> Option<String> {
    static WHY: OnceLock<Option<String>> = OnceLock::new();
    WHY.get_or_init(|| {
        if !nix::unistd::geteuid().is_root() {
            return Some(
                "not running as root (network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN)"
                    .into(),
            );
        }
        if let Err(why) = crate::host::install("network namespaces", crate::host::NETNS) {
            return Some(why);
        }
        match Command::new("ip").arg("-V").output() {
            Ok(o) if o.status.success() => {}
            _ => {
                return Some(
                    "the `ip` command (iproute2) is not installed: apt-get install -y iproute2"
                        .into(),
                );
            }
        }
        let name = format!("lkhprobe{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        if !ok {
            return Some("cannot create a network namespace here (`ip netns add` failed)".into());
        }
        None
    })
    .clone()
}

/// Run a command, failing with its stderr.
pub fn run(cmd: &mut Command) -> Result<Output, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out)
}

/// Read all of `r` on a thread of its own.
fn drain<R: std::io::Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut v);
        }
        v
    })
}

/// Run a command with a hard time limit; it is killed at the limit and `None` returned.
/// Its output is read while it runs, so a chatty command cannot stall on a full pipe.
pub fn run_limited(cmd: &mut Command, limit: Duration) -> Option<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let end = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    };
    Some(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// A set of network namespaces deleted on drop.
#[derive(Debug)]
pub struct Topology {
    prefix: String,
    namespaces: Vec<String>,
}

impl Topology {
    /// A new, empty topology whose namespace names start with `lkh<label><pid>x<n>`.
    pub fn new(label: &str) -> Topology {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        Topology {
            prefix: format!("lkh{label}{}x{n}", std::process::id()),
            namespaces: Vec::new(),
        }
    }

    /// Create namespace `<prefix>-<role>` with its loopback up; returns its name.
    pub fn add_ns(&mut self, role: &str) -> Result<String, String> {
        let name = format!("{}-{role}", self.prefix);
        run(Command::new("ip").args(["netns", "add", &name]))?;
        self.namespaces.push(name.clone());
        self.ip(&name, &["link", "set", "dev", "lo", "up"])?;
        Ok(name)
    }

    /// `ip -n NS ARGS...`.
    pub fn ip(&self, ns: &str, args: &[&str]) -> Result<String, String> {
        let out = run(Command::new("ip").arg("-n").arg(ns).args(args))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A command run inside `ns` (`ip netns exec NS PROGRAM`).
    pub fn exec(&self, ns: &str, program: impl AsRef<Path>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(program.as_ref());
        c
    }

    /// A bridge `name` in `ns` (no STP, so ports forward at once), up.
    pub fn bridge(&self, ns: &str, name: &str) -> Result<(), String> {
        self.ip(
            ns,
            &[
                "link",
                "add",
                "dev",
                name,
                "type",
                "bridge",
                "stp_state",
                "0",
            ],
        )?;
        self.ip(ns, &["link", "set", "dev", name, "up"])?;
        Ok(())
    }

    /// Puts `dev` (in `ns`) into `bridge` as a port.
    pub fn enslave(&self, ns: &str, dev: &str, bridge: &str) -> Result<(), String> {
        self.ip(ns, &["link", "set", "dev", dev, "master", bridge])
            .map(drop)
    }

    /// Adds the address `cidr` (`a.b.c.d/len`) to `dev` in `ns`.
    pub fn addr(&self, ns: &str, cidr: &str, dev: &str) -> Result<(), String> {
        self.ip(ns, &["addr", "add", cidr, "dev", dev]).map(drop)
    }

    /// A veth pair: `a` in `ns_a`, `b` in `ns_b`, both up.
    pub fn veth(&self, ns_a: &str, a: &str, ns_b: &str, b: &str) -> Result<(), String> {
        self.ip(
            ns_a,
            &[
                "link", "add", "dev", a, "type", "veth", "peer", "name", b, "netns", ns_b,
            ],
        )?;
        self.ip(ns_a, &["link", "set", "dev", a, "up"])?;
        self.ip(ns_b, &["link", "set", "dev", b, "up"])?;
        Ok(())
    }

    /// The MAC address of `dev` in `ns`.
    pub fn mac(&self, ns: &str, dev: &str) -> Result<String, String> {
        let out = self.ip(ns, &["-o", "link", "show", "dev", dev])?;
        out.split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .map(str::to_owned)
            .ok_or_else(|| format!("no MAC address for {dev} in {ns}: {out}"))
    }

    /// The IPv4/IPv6 addresses on `dev` in `ns`, as `a.b.c.d/len`.
    pub fn addrs(&self, ns: &str, dev: &str) -> Result<Vec<String>, String> {
        let out = self.ip(ns, &["-o", "addr", "show", "dev", dev])?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let mut w = l
                    .split_whitespace()
                    .skip_while(|w| *w != "inet" && *w != "inet6");
                w.next()?;
                w.next().map(str::to_owned)
            })
            .collect())
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The Hyper-V picture drawn in the module docs.
#[derive(Debug)]
pub struct HyperVLab {
    pub topo: Topology,
    pub guest: String,
    pub host: String,
    pub phys: String,
    pub cohost: String,
}

impl HyperVLab {
    /// The guest's fixed address.
    pub const GUEST_IP: &'static str = "10.200.0.10";
    /// The co-hosted VM's address.
    pub const COHOST_IP: &'static str = "10.200.0.20";
    /// The gateway, beyond the uplink.
    pub const GATEWAY: &'static str = "10.200.0.1";
    /// A remote target, routed through the gateway.
    pub const REMOTE: &'static str = "10.201.0.1";
    /// IPv6 counterparts (documentation prefix, inside the namespaces only).
    pub const GUEST_IP6: &'static str = "2001:db8:200::10";
    pub const GATEWAY6: &'static str = "2001:db8:200::1";
    /// The guest's interface, its bridge port, the uplink port.
    pub const GUEST_IF: &'static str = "eth0";
    pub const GUEST_PORT: &'static str = "pg";
    pub const UPLINK_PORT: &'static str = "up0";

    pub fn new(label: &str) -> Result<HyperVLab, String> {
        let mut topo = Topology::new(label);
        let guest = topo.add_ns("g")?;
        let host = topo.add_ns("h")?;
        let phys = topo.add_ns("n")?;
        let cohost = topo.add_ns("c")?;
        topo.bridge(&host, "br0")?;
        for (port, ns) in [
            (Self::GUEST_PORT, &guest),
            ("pc", &cohost),
            (Self::UPLINK_PORT, &phys),
        ] {
            topo.veth(&host, port, ns, "eth0")?;
            topo.enslave(&host, port, "br0")?;
            // No IPv6 autoconfiguration or DAD noise on the switch ports.
            let _ = run(topo
                .exec(&host, "sysctl")
                .args(["-qw", &format!("net.ipv6.conf.{port}.disable_ipv6=1")]));
        }
        for ns in [&guest, &cohost, &phys] {
            // Keep the kernel's IPv6 DAD quick and predictable on the test links.
            let _ = run(topo
                .exec(ns, "sysctl")
                .args(["-qw", "net.ipv6.conf.eth0.dad_transmits=1"]));
        }
        topo.addr(&guest, &format!("{}/24", Self::GUEST_IP), "eth0")?;
        topo.ip(&guest, &["route", "add", "default", "via", Self::GATEWAY])?;
        topo.ip(
            &guest,
            &[
                "addr",
                "add",
                &format!("{}/64", Self::GUEST_IP6),
                "dev",
                "eth0",
                "nodad",
            ],
        )?;
        topo.ip(
            &guest,
            &["-6", "route", "add", "default", "via", Self::GATEWAY6],
        )?;
        topo.addr(&cohost, &format!("{}/24", Self::COHOST_IP), "eth0")?;
        topo.addr(&phys, &format!("{}/24", Self::GATEWAY), "eth0")?;
        topo.ip(
            &phys,
            &[
                "addr",
                "add",
                &format!("{}/64", Self::GATEWAY6),
                "dev",
                "eth0",
                "nodad",
            ],
        )?;
        topo.addr(&phys, &format!("{}/24", Self::REMOTE), "lo")?;
        Ok(HyperVLab {
            topo,
            guest,
            host,
            phys,
            cohost,
        })
    }

    /// The host's physical uplink fails (or comes back).
    pub fn set_uplink(&self, up: bool) -> Result<(), String> {
        let state = if up { "up" } else { "down" };
        self.topo.ip(
            &self.host,
            &["link", "set", "dev", Self::UPLINK_PORT, state],
        )?;
        Ok(())
    }

    /// The virtual switch stops (or resumes) forwarding for the guest's port, while the
    /// guest keeps its carrier — like the pause of a live migration.
    pub fn set_guest_port_forwarding(&self, on: bool) -> Result<(), String> {
        let state = if on { "3" } else { "0" };
        run(self.topo.exec(&self.host, "bridge").args([
            "link",
            "set",
            "dev",
            Self::GUEST_PORT,
            "state",
            state,
        ]))?;
        Ok(())
    }

    /// Whether the guest's NIC has carrier (`LOWER_UP`).
    pub fn guest_carrier(&self) -> Result<bool, String> {
        let out = self
            .topo
            .ip(&self.guest, &["-o", "link", "show", "dev", Self::GUEST_IF])?;
        Ok(out.contains("LOWER_UP"))
    }
}

/// The `lkh-ip` binary to run in namespaces: `$LKH_IP_BIN`, or a debug build made once per
/// process.
pub fn lkh_ip_binary() -> Result<PathBuf, String> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(
        || match std::env::var_os("LKH_IP_BIN").filter(|p| !p.is_empty()) {
            Some(p) => Ok(PathBuf::from(p)),
            None => build_lkh_ip(false),
        },
    )
    .clone()
}

/// Build `lkh-ip` (debug, or release as shipped) into `<target>/ip-netns` and return its path.
pub fn build_lkh_ip(release: bool) -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .ok_or("no workspace root")?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("ip-netns");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut c = Command::new(cargo);
    c.current_dir(&root)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("CARGO_BUILD_TARGET")
        .args(["build", "-q", "-p", "lkh-ip", "--bin", "lkh-ip"]);
    if release {
        c.arg("--release");
    }
    run(&mut c)?;
    let bin = target
        .join(if release { "release" } else { "debug" })
        .join("lkh-ip");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "cargo build -p lkh-ip did not produce {}",
            bin.display()
        ))
    }
}
