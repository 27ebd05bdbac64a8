//! Pacemaker's side of the test bed: the kit binaries as OCF agents, and a real 3-node
//! Pacemaker + Corosync cluster on this machine (no systemd).
//!
//! [`Agents`] is a private OCF tree: copies of the static kit binaries (readable by `nobody`,
//! which `ocf-tester` runs meta-data as) and `resource.d/lkhelpers/{ip,nas,scsipr}` links to
//! them. [`Agents::shadowing_script`] returns the shell lines that, inside a private mount
//! namespace, put that tree over `/usr/lib/ocf/resource.d` (keeping the installed providers,
//! `heartbeat` and `pacemaker`, reachable): Pacemaker and `crm_resource` find agents only there,
//! and the host's own `/usr/lib/ocf` is never touched, so tests cannot race each other or an
//! installed package.
//!
//! [`Cluster`] follows integration.md §B3: one network namespace plus a mount, UTS and PID
//! namespace per node (`unshare --kill-child`, so killing it — or the test process dying — takes
//! every daemon of the node with it), tmpfs over `/dev/shm` and `/run`, per-node `/var/lib/pacemaker`, `/etc/corosync`,
//! `/var/lib/corosync` and `/var/log`, `corosync -f` and `pacemakerd`. The network:
//!
//! ```text
//!  node nK (K = 1..3)         host hK (its Hyper-V host)        phys (the physical network)
//!  eth0 10.210.0.1K ── pK ─── br0 ── upK ─────────────────────── lan bridge 10.210.0.1 (gateway)
//!  eth1 10.211.0.1K ─────────────────────────── ring bridge (the cluster's own network)
//! ```
//!
//! Cutting `upK` ([`Cluster::set_uplink`]) is node K's host losing its uplink: the node keeps its
//! carrier and its cluster membership (Corosync talks over the ring network), only the service
//! network beyond the virtual switch is gone — what lkh-ip notices and IPaddr2 does not.
//! Everything is torn down on drop, panics included.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::netns::{self, Topology};

/// Whether missing tools must fail the test (CI) rather than skip it.
pub fn required() -> bool {
    crate::host::required()
}

/// Skip (or fail under `LKH_VM_REQUIRED`/`CI`) with a loud message ([`crate::host::skip`]);
/// returns `None`.
pub fn skip<T>(test: &str, why: &str) -> Option<T> {
    crate::host::skip(test, why);
    None
}

/// The first of `tools` not installed (looked up in the usual sbin/bin directories).
pub fn missing_tool(tools: &[&str]) -> Option<String> {
    tools
        .iter()
        .find(|t| {
            !["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
                .iter()
                .any(|d| Path::new(d).join(t).exists())
        })
        .map(|t| (*t).to_owned())
}

/// A unique scratch directory, removed on drop.
#[derive(Debug)]
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(label: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "lkh-{label}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The kits as OCF agents: `<dir>/resource.d/lkhelpers/<kit>` → `<dir>/bin/lkh-<kit>`.
#[derive(Debug)]
pub struct Agents {
    pub dir: Scratch,
}

/// The kits that are OCF agents.
pub const KITS: &[&str] = &["ip", "nas", "scsipr"];

impl Agents {
    /// Build (once per process) the static kit binaries and lay out the tree.
    pub fn new() -> Result<Agents, String> {
        let bins = crate::vm::project_bins().map_err(|e| e.to_string())?;
        let dir = Scratch::new("ocf");
        let bin_dir = dir.0.join("bin");
        let provider = dir.0.join("resource.d/lkhelpers");
        std::fs::create_dir_all(&bin_dir).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&provider).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(dir.0.join("installed")).map_err(|e| e.to_string())?;
        for d in [&bin_dir, &provider, &dir.0.join("resource.d")] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| e.to_string())?;
        }
        for kit in KITS {
            let name = format!("lkh-{kit}");
            let b = bins
                .iter()
                .find(|b| b.name == name)
                .ok_or_else(|| format!("{name} did not build"))?;
            let copy = bin_dir.join(&name);
            std::fs::copy(&b.path, &copy).map_err(|e| format!("copy {name}: {e}"))?;
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| e.to_string())?;
            std::os::unix::fs::symlink(&copy, provider.join(kit)).map_err(|e| e.to_string())?;
        }
        // the installed providers, reachable through the bind mount made by shadowing_script
        for p in ["heartbeat", "pacemaker"] {
            std::os::unix::fs::symlink(
                dir.0.join("installed").join(p),
                dir.0.join("resource.d").join(p),
            )
            .map_err(|e| e.to_string())?;
        }
        Ok(Agents { dir })
    }

    /// The agent for `kit` (a path under `resource.d`, so the binary runs in OCF mode).
    pub fn agent(&self, kit: &str) -> PathBuf {
        self.dir.0.join("resource.d/lkhelpers").join(kit)
    }

    /// Shell lines (for a private mount namespace) that put this tree over
    /// `/usr/lib/ocf/resource.d`, the installed providers staying reachable.
    pub fn shadowing_script(&self) -> String {
        let d = self.dir.0.display();
        format!(
            "mount --bind /usr/lib/ocf/resource.d {d}/installed && mount --bind {d}/resource.d /usr/lib/ocf/resource.d"
        )
    }
}

/// A command's output as one text (stdout then stderr).
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Poll `f` every `every` until it returns `Some` or `limit` passes.
pub fn wait_for<T>(
    limit: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// One cluster node: its namespace and the `unshare` process that holds its daemons.
#[derive(Debug)]
pub struct Node {
    pub name: String,
    pub ns: String,
    pub host: String,
    pub ip: String,
    dir: PathBuf,
    daemons: Option<Child>,
}

/// A 3-node Pacemaker + Corosync cluster in namespaces (see the module docs).
#[derive(Debug)]
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub phys: String,
    pub topo: Topology,
    pub agents: Agents,
    work: Scratch,
}

impl Cluster {
    pub const GATEWAY: &'static str = "10.210.0.1";
    pub const NODES: usize = 3;
    const STARTUP: Duration = Duration::from_secs(150);

    /// Why a cluster cannot run here (not root, no namespaces, packages not to be had); the
    /// packages are installed when missing ([`crate::host::CLUSTER`]). A tool still missing
    /// after that is the test bed's failure, not a reason to skip.
    pub fn unavailable() -> Option<String> {
        if let Some(why) = netns::unavailable() {
            return Some(why);
        }
        if let Err(why) = crate::host::install("the Pacemaker cluster", crate::host::CLUSTER) {
            return Some(why);
        }
        let tools = [
            "corosync",
            "pacemakerd",
            "crm_mon",
            "cibadmin",
            "crm_attribute",
            "crm_resource",
            "unshare",
            "nsenter",
            "ping",
        ];
        if let Some(t) = missing_tool(&tools) {
            panic!("{t} is missing although its package is installed");
        }
        assert!(
            Path::new("/usr/lib/ocf/resource.d/heartbeat/IPaddr2").exists(),
            "IPaddr2 is missing although resource-agents is installed"
        );
        None
    }

    /// Build the networks, start Corosync and Pacemaker on every node, wait until all nodes
    /// are online with a DC, and disable fencing.
    pub fn start(agents: Agents) -> Result<Cluster, String> {
        let mut topo = Topology::new("pc");
        let phys = topo.add_ns("n")?;
        let ring = topo.add_ns("r")?;
        topo.bridge(&phys, "lan")?;
        topo.bridge(&ring, "ring")?;
        topo.addr(&phys, &format!("{}/24", Self::GATEWAY), "lan")?;
        let work = Scratch::new("pcmk");
        let mut cluster = Cluster {
            nodes: Vec::new(),
            phys: phys.clone(),
            topo,
            agents,
            work,
        };
        for k in 1..=Self::NODES {
            let name = format!("n{k}");
            let ns = cluster.topo.add_ns(&name)?;
            let host = cluster.topo.add_ns(&format!("h{k}"))?;
            let t = &cluster.topo;
            t.bridge(&host, "br0")?;
            t.veth(&host, &format!("p{k}"), &ns, "eth0")?;
            t.enslave(&host, &format!("p{k}"), "br0")?;
            t.veth(&host, &format!("up{k}"), &phys, &format!("l{k}"))?;
            t.enslave(&host, &format!("up{k}"), "br0")?;
            t.enslave(&phys, &format!("l{k}"), "lan")?;
            t.veth(&ns, "eth1", &ring, &format!("r{k}"))?;
            t.enslave(&ring, &format!("r{k}"), "ring")?;
            let ip = format!("10.210.0.1{k}");
            t.addr(&ns, &format!("{ip}/24"), "eth0")?;
            t.addr(&ns, &format!("10.211.0.1{k}/24"), "eth1")?;
            t.ip(&ns, &["route", "add", "default", "via", Self::GATEWAY])?;
            let dir = cluster.work.0.join(&name);
            cluster.nodes.push(Node {
                name,
                ns,
                host,
                ip,
                dir,
                daemons: None,
            });
        }
        let conf = corosync_conf(Self::NODES);
        for i in 0..cluster.nodes.len() {
            cluster.launch(i, &conf)?;
        }
        let all = (1..=Self::NODES)
            .map(|k| format!("n{k}"))
            .collect::<Vec<_>>()
            .join(" ");
        let online = format!("Online: [ {all} ]");
        let mut last = String::new();
        let up = wait_for(Self::STARTUP, Duration::from_secs(2), || {
            cluster.check_daemons().ok()?;
            last = cluster
                .crm(0, &["crm_mon", "-1"])
                .map(|o| text(&o))
                .unwrap_or_default();
            (last.contains(&online)
                && last.contains("Current DC:")
                && !last.contains("Current DC: NONE"))
            .then_some(())
        });
        if up.is_none() {
            return Err(format!(
                "the cluster did not come up within {:?}:\n{last}\n{}",
                Self::STARTUP,
                cluster.logs()
            ));
        }
        cluster.crm_ok(
            0,
            &[
                "crm_attribute",
                "-t",
                "crm_config",
                "-n",
                "stonith-enabled",
                "-v",
                "false",
            ],
        )?;
        Ok(cluster)
    }

    /// Start node `i`'s daemons in their namespaces.
    fn launch(&mut self, i: usize, conf: &str) -> Result<(), String> {
        let agents_setup = self.agents.shadowing_script();
        let node = &mut self.nodes[i];
        let d = &node.dir;
        for sub in ["pacemaker", "corosync-lib", "etc-corosync", "log"] {
            std::fs::create_dir_all(d.join(sub)).map_err(|e| e.to_string())?;
        }
        std::fs::write(d.join("etc-corosync/corosync.conf"), conf).map_err(|e| e.to_string())?;
        let script = format!(
            r#"set -e
d={d}
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/crm /run/corosync /run/lkhelpers
chown hacluster:haclient /run/crm
cp -a /var/lib/pacemaker/. $d/pacemaker/
mount --bind $d/pacemaker /var/lib/pacemaker
mount --bind $d/corosync-lib /var/lib/corosync
mount --bind $d/etc-corosync /etc/corosync
mount --bind $d/log /var/log
{agents_setup}
hostname {name}
export PCMK_logfile=/var/log/pacemaker.log PCMK_logfacility=none PCMK_debug=no
corosync -f > $d/log/corosync.out 2>&1 &
i=0; until corosync-cfgtool -s >/dev/null 2>&1 || [ $i -ge 50 ]; do sleep 0.2; i=$((i+1)); done
exec pacemakerd > $d/log/pacemakerd.out 2>&1
"#,
            d = d.display(),
            name = node.name,
        );
        let mut cmd = Command::new("ip");
        // a test process killed outright still takes the node with it (ip execs unshare,
        // which keeps the parent-death signal; --kill-child passes it on to the PID namespace)
        crate::sys::kill_with_parent(&mut cmd);
        let child = cmd
            .args(["netns", "exec", &node.ns])
            .args([
                "unshare",
                "--mount",
                "--uts",
                "--pid",
                "--fork",
                "--kill-child",
                "--mount-proc",
                "--propagation",
                "private",
                "sh",
                "-c",
                &script,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("unshare.err")).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("start node {}: {e}", node.name))?;
        node.daemons = Some(child);
        Ok(())
    }

    /// An error when a node's daemons have exited.
    fn check_daemons(&mut self) -> Result<(), String> {
        for n in &mut self.nodes {
            if let Some(c) = n.daemons.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                return Err(format!("node {}'s daemons exited: {st}", n.name));
            }
        }
        Ok(())
    }

    /// Run a Pacemaker tool on node `i` (inside its namespaces), bounded.
    pub fn crm(&self, i: usize, args: &[&str]) -> Result<Output, String> {
        let pid = self.nodes[i]
            .daemons
            .as_ref()
            .map(Child::id)
            .ok_or("node not running")?;
        let mut c = Command::new("nsenter");
        c.args(["-t", &pid.to_string(), "-m", "-u", "-n", "--"])
            .args(args);
        netns::run_limited(&mut c, Duration::from_secs(30)).ok_or_else(|| {
            format!(
                "{args:?} on {} did not finish within 30 s",
                self.nodes[i].name
            )
        })
    }

    /// [`Cluster::crm`], failing unless it exits 0.
    pub fn crm_ok(&self, i: usize, args: &[&str]) -> Result<String, String> {
        let o = self.crm(i, args)?;
        if o.status.success() {
            Ok(text(&o))
        } else {
            Err(format!("{args:?} failed ({}): {}", o.status, text(&o)))
        }
    }

    /// Add a primitive to the CIB.
    pub fn add_primitive(&self, xml: &str) -> Result<(), String> {
        self.crm_ok(0, &["cibadmin", "-C", "-o", "resources", "-X", xml])
            .map(|_| ())
    }

    /// The nodes (indices) whose `eth0` carries `addr`.
    pub fn holders(&self, addr: &str) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| {
                self.topo
                    .addrs(&self.nodes[i].ns, "eth0")
                    .is_ok_and(|a| a.iter().any(|a| a.split('/').next() == Some(addr)))
            })
            .collect()
    }

    /// Where Pacemaker says `rsc` runs (node indices).
    pub fn located(&self, rsc: &str) -> Vec<usize> {
        let out = self
            .crm(0, &["crm_resource", "--locate", "-r", rsc])
            .map(|o| text(&o))
            .unwrap_or_default();
        out.lines()
            .filter_map(|l| l.split("is running on:").nth(1))
            .filter_map(|n| self.nodes.iter().position(|x| x.name == n.trim()))
            .collect()
    }

    /// Whether `addr` answers one ping from the physical network (the gateway), and from
    /// which MAC address (the gateway's neighbour entry afterwards).
    pub fn answers_from_gateway(&self, addr: &str) -> Option<String> {
        let mut ping = self.topo.exec(&self.phys, "ping");
        ping.args(["-c", "1", "-W", "1", "-n", "-q", addr]);
        let ok = netns::run_limited(&mut ping, Duration::from_secs(5))
            .is_some_and(|o| o.status.success());
        if !ok {
            return None;
        }
        let neigh = self.topo.ip(&self.phys, &["neigh", "show", addr]).ok()?;
        neigh
            .split_whitespace()
            .skip_while(|w| *w != "lladdr")
            .nth(1)
            .map(str::to_owned)
    }

    /// The MAC address of node `i`'s `eth0`.
    pub fn mac(&self, i: usize) -> Result<String, String> {
        self.topo.mac(&self.nodes[i].ns, "eth0")
    }

    /// Node `i`'s host loses (or regains) its uplink beyond the virtual switch.
    pub fn set_uplink(&self, i: usize, up: bool) -> Result<(), String> {
        self.topo
            .ip(
                &self.nodes[i].host,
                &[
                    "link",
                    "set",
                    "dev",
                    &format!("up{}", i + 1),
                    if up { "up" } else { "down" },
                ],
            )
            .map(|_| ())
    }

    /// Whether node `i`'s `eth0` has carrier.
    pub fn carrier(&self, i: usize) -> bool {
        self.topo
            .ip(&self.nodes[i].ns, &["-o", "link", "show", "dev", "eth0"])
            .is_ok_and(|o| o.contains("LOWER_UP"))
    }

    /// The ends of every node's logs, for a failure message.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for n in &self.nodes {
            for f in [
                "unshare.err",
                "log/corosync.out",
                "log/pacemakerd.out",
                "log/pacemaker.log",
            ] {
                let body = std::fs::read_to_string(n.dir.join(f)).unwrap_or_default();
                let lines: Vec<&str> = body.lines().collect();
                let tail = &lines[lines.len().saturating_sub(40)..];
                s += &format!(
                    "===== {} {f} (last {} lines)\n{}\n",
                    n.name,
                    tail.len(),
                    tail.join("\n")
                );
            }
        }
        s
    }

    /// Lines of node `i`'s Pacemaker log that contain `needle`.
    pub fn log_lines(&self, i: usize, needle: &str) -> Vec<String> {
        std::fs::read_to_string(self.nodes[i].dir.join("log/pacemaker.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // SIGKILL to unshare: --kill-child takes the node's PID namespace, and so every one of
        // its daemons, with it.
        for n in &mut self.nodes {
            if let Some(mut c) = n.daemons.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        // the namespaces (Topology) and the scratch directories go when the fields drop
    }
}

/// corosync.conf for `n` nodes on the ring network, with a short token so failures are
/// noticed in seconds.
fn corosync_conf(n: usize) -> String {
    let mut nodes = String::new();
    for k in 1..=n {
        nodes += &format!(
            "  node {{\n    ring0_addr: 10.211.0.1{k}\n    name: n{k}\n    nodeid: {k}\n  }}\n"
        );
    }
    format!(
        "totem {{\n  version: 2\n  cluster_name: lkhtest\n  transport: knet\n  crypto_cipher: none\n  crypto_hash: none\n  token: 1000\n  join: 50\n}}\nnodelist {{\n{nodes}}}\nquorum {{\n  provider: corosync_votequorum\n}}\nlogging {{\n  to_stderr: yes\n  to_logfile: no\n  to_syslog: no\n  timestamp: on\n}}\n"
    )
}
