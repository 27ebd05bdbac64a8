//! A real NFS server (v3 and v4) for guests: nfs-ganesha on the host, inside a private network
//! namespace that QEMU also runs in.
//!
//! The namespace has only a loopback interface; QEMU's user networking maps the guest's
//! 10.0.2.2 to that loopback, so the guest reaches this server and nothing else, and the
//! standard ports (2049, MOUNT 20048) cannot clash with anything on the host. Ganesha refuses
//! to serve NFSv3 unless it can register with rpcbind, so an rpcbind runs in the namespace
//! too, in a private mount namespace with its own `/run` (rpcbind's socket and lock file are
//! otherwise host-wide, which would allow one server per host); ganesha joins that mount
//! namespace with `nsenter`. Several servers can run at once.
//!
//! The test (or the guest, through `nfs_server CMD` → `host_request nfs CMD`) can stop
//! (SIGTERM), kill (SIGKILL), freeze (SIGSTOP), thaw (SIGCONT), start and restart the server.
//!
//! ```no_run
//! use tests::vm::{self, NfsServer, Vm};
//! let nfs = NfsServer::start().expect("nfs server");
//! std::fs::write(nfs.export_dir().join("hello.txt"), "hi\n").unwrap();
//! let vm = Vm::new("nfs-demo").nfs(&nfs).script(r#"
//!     nfs_net_up
//!     nfs_mount 3 /mnt/v3; check mount-v3 $?
//!     nfs_server freeze; timeout -s KILL 5 stat /mnt/v3/hello.txt; [ $? = 137 ]; check hangs $?
//!     nfs_server thaw
//! "#);
//! let out = vm::run_or_skip(&vm).unwrap();
//! out.assert_all_passed();
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::cmd::run_ok;
use super::parts::{cache_dir, parts};
use super::{HostHook, VmError, wait_until};

/// NFS port and the MOUNT protocol port the server listens on.
pub const NFS_PORT: u16 = 2049;
pub const MOUNT_PORT: u16 = 20048;

struct Inner {
    ns: String,
    dir: PathBuf,
    rpcbind: Option<Child>,
    ganesha: Option<Child>,
}

/// A running nfs-ganesha in its own network namespace; everything is torn down on drop.
pub struct NfsServer {
    inner: Arc<Mutex<Inner>>,
    ns: String,
    export: PathBuf,
}

fn err(m: String) -> VmError {
    VmError::Setup(m)
}

fn signal(c: &Child, s: Signal) {
    let _ = kill(Pid::from_raw(c.id() as i32), s);
}

/// Whether some socket of process `pid`'s network namespace listens on TCP `port`.
fn listening(pid: u32, port: u16) -> bool {
    let want = format!(":{port:04X} ");
    ["tcp", "tcp6"].iter().any(|f| {
        fs::read_to_string(format!("/proc/{pid}/net/{f}"))
            .map(|t| {
                t.lines()
                    .skip(1)
                    .any(|l| l.split_whitespace().nth(3) == Some("0A") && l.contains(&want))
            })
            .unwrap_or(false)
    })
}

impl Inner {
    fn conf(&self) -> PathBuf {
        self.dir.join("ganesha.conf")
    }

    fn start_ganesha(&mut self) -> Result<String, String> {
        if self
            .ganesha
            .as_mut()
            .is_some_and(|g| matches!(g.try_wait(), Ok(None)))
        {
            return Ok("already running".into());
        }
        let rpcbind = self.rpcbind.as_ref().ok_or("rpcbind not running")?.id();
        let log = fs::File::create(self.dir.join("ganesha.stdout")).map_err(|e| e.to_string())?;
        let child = Command::new("nsenter")
            .arg(format!("--target={rpcbind}"))
            .args(["--mount", "--net", "ganesha.nfsd", "-F", "-f"])
            .arg(self.conf())
            .arg("-L")
            .arg(self.dir.join("ganesha.log"))
            .arg("-p")
            .arg(self.dir.join("ganesha.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start ganesha.nfsd: {e}"))?;
        let pid = child.id();
        self.ganesha = Some(child);
        let up = wait_until(Duration::from_secs(20), Duration::from_millis(50), || {
            listening(pid, NFS_PORT) && listening(pid, MOUNT_PORT)
        });
        if up {
            Ok(format!("ganesha started (pid {pid})"))
        } else {
            let log = fs::read_to_string(self.dir.join("ganesha.log")).unwrap_or_default();
            Err(format!(
                "ganesha did not listen on {NFS_PORT}/{MOUNT_PORT} within 20 s: {log}"
            ))
        }
    }

    fn stop_ganesha(&mut self, sig: Signal) -> Result<String, String> {
        let Some(mut g) = self.ganesha.take() else {
            return Ok("not running".into());
        };
        signal(&g, Signal::SIGCONT);
        signal(&g, sig);
        let gone = wait_until(Duration::from_secs(5), Duration::from_millis(20), || {
            matches!(g.try_wait(), Ok(Some(_)))
        });
        if !gone {
            let _ = g.kill();
        }
        let _ = g.wait();
        Ok(format!("ganesha stopped ({sig:?})"))
    }

    fn signal_ganesha(&mut self, sig: Signal) -> Result<String, String> {
        let g = self.ganesha.as_ref().ok_or("ganesha not running")?;
        signal(g, sig);
        Ok(format!("ganesha sent {sig:?}"))
    }

    fn command(&mut self, cmd: &str) -> Result<String, String> {
        match cmd {
            "start" => self.start_ganesha(),
            "stop" => self.stop_ganesha(Signal::SIGTERM),
            "kill" => self.stop_ganesha(Signal::SIGKILL),
            "restart" => {
                self.stop_ganesha(Signal::SIGTERM)?;
                self.start_ganesha()
            }
            // the export again under another Export_Id (handles carry it): as if re-created,
            // or another NAS behind the same address; handles given out before are stale
            "reexport" => {
                self.stop_ganesha(Signal::SIGTERM)?;
                let conf = fs::read_to_string(self.conf()).map_err(|e| e.to_string())?;
                let (from, to) = if conf.contains("Export_Id = 1;") {
                    ("Export_Id = 1;", "Export_Id = 2;")
                } else {
                    ("Export_Id = 2;", "Export_Id = 1;")
                };
                fs::write(self.conf(), conf.replace(from, to)).map_err(|e| e.to_string())?;
                self.start_ganesha()
                    .map(|m| format!("{m}, {}", to.trim_end_matches(';')))
            }
            "freeze" => self.signal_ganesha(Signal::SIGSTOP),
            "thaw" => self.signal_ganesha(Signal::SIGCONT),
            "status" => {
                let up = self
                    .ganesha
                    .as_mut()
                    .is_some_and(|g| matches!(g.try_wait(), Ok(None)));
                Ok(if up { "running" } else { "down" }.into())
            }
            _ => Err(format!(
                "unknown nfs command {cmd} (start|stop|kill|restart|reexport|freeze|thaw|status)"
            )),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.stop_ganesha(Signal::SIGKILL);
        if let Some(mut r) = self.rpcbind.take() {
            let _ = r.kill();
            let _ = r.wait();
        }
        let _ = super::cmd::run(
            Command::new("ip").args(["netns", "del", &self.ns]),
            Duration::from_secs(30),
        );
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl NfsServer {
    /// Creates the namespace and starts rpcbind and ganesha (NFSv3 and v4) exporting an empty
    /// directory as `/export`. Needs root and the host packages (installed by the harness).
    pub fn start() -> Result<NfsServer, VmError> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        if !nix::unistd::geteuid().is_root() {
            return Err(VmError::Unavailable(
                "the NFS server needs root (network namespaces)".into(),
            ));
        }
        parts()?; // host packages
        reap_stale_namespaces();
        let ns = format!(
            "lkh-nfs-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        // the real path: nfs-ganesha looks the export up without following links, and a
        // work tree's target/vm-cache may be a link to a shared cache
        let cache = fs::canonicalize(cache_dir()).unwrap_or_else(|_| cache_dir());
        let dir = cache.join("nfs").join(&ns);
        let export = dir.join("export");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&export).map_err(|e| err(format!("mkdir {}: {e}", export.display())))?;
        fs::create_dir_all(dir.join("recovery")).map_err(|e| err(format!("mkdir: {e}")))?;
        run_ok(
            Command::new("ip").args(["netns", "add", &ns]),
            Duration::from_secs(30),
        )?;
        let mut inner = Inner {
            ns: ns.clone(),
            dir: dir.clone(),
            rpcbind: None,
            ganesha: None,
        };
        run_ok(
            Command::new("ip").args(["-n", &ns, "link", "set", "lo", "up"]),
            Duration::from_secs(30),
        )?;
        fs::write(inner.conf(), ganesha_conf(&export, &dir.join("recovery")))
            .map_err(|e| err(format!("write ganesha.conf: {e}")))?;
        let log =
            fs::File::create(dir.join("rpcbind.log")).map_err(|e| err(format!("log: {e}")))?;
        let rpcbind = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
            ])
            .arg("mount -t tmpfs lkh-nfs-run /run && exec rpcbind -f")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| err(format!("log: {e}")))?)
            .stderr(log)
            .spawn()
            .map_err(|e| err(format!("cannot start rpcbind: {e}")))?;
        let pid = rpcbind.id();
        inner.rpcbind = Some(rpcbind);
        if !wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
            listening(pid, 111)
        }) {
            return Err(err(format!(
                "rpcbind did not listen in {ns}: {}",
                fs::read_to_string(dir.join("rpcbind.log")).unwrap_or_default()
            )));
        }
        inner.start_ganesha().map_err(err)?;
        Ok(NfsServer {
            inner: Arc::new(Mutex::new(inner)),
            ns,
            export,
        })
    }

    /// The exported directory on the host (the guest mounts it as `10.0.2.2:/export`).
    pub fn export_dir(&self) -> &Path {
        &self.export
    }

    /// The network namespace QEMU must run in.
    pub fn netns(&self) -> &str {
        &self.ns
    }

    /// `start`, `stop` (SIGTERM), `kill` (SIGKILL), `restart`, `reexport` (restart with
    /// another Export_Id: every handle given out before is stale), `freeze` (SIGSTOP), `thaw`
    /// (SIGCONT) or `status`; returns a short description.
    pub fn command(&self, cmd: &str) -> Result<String, VmError> {
        self.inner
            .lock()
            .expect("nfs server")
            .command(cmd)
            .map_err(VmError::Run)
    }

    /// The hook answering the guest's `host_request nfs CMD`.
    pub fn hook(&self) -> HostHook {
        let inner = Arc::clone(&self.inner);
        Box::new(move |req: &[&str]| match req {
            ["nfs", cmd] => inner
                .lock()
                .map_err(|_| "nfs server lock".to_string())?
                .command(cmd),
            _ => Err("unhandled".into()),
        })
    }
}

/// Removes the namespaces (and their rpcbind/ganesha) left by test processes that were killed
/// before they could clean up: `lkh-nfs-<pid>-<n>` whose `<pid>` no longer exists.
fn reap_stale_namespaces() {
    let Ok(o) = super::cmd::run(
        Command::new("ip").args(["netns", "list"]),
        Duration::from_secs(30),
    ) else {
        return;
    };
    for ns in o
        .stdout_str()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
    {
        let Some(pid) = ns
            .strip_prefix("lkh-nfs-")
            .and_then(|r| r.split('-').next())
        else {
            continue;
        };
        if pid.parse::<u32>().is_err() || Path::new("/proc").join(pid).exists() {
            continue;
        }
        if let Ok(p) = super::cmd::run(
            Command::new("ip").args(["netns", "pids", ns]),
            Duration::from_secs(30),
        ) {
            for pid in p
                .stdout_str()
                .split_whitespace()
                .filter_map(|x| x.parse::<i32>().ok())
            {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        let _ = super::cmd::run(
            Command::new("ip").args(["netns", "del", ns]),
            Duration::from_secs(30),
        );
        let _ = fs::remove_dir_all(cache_dir().join("nfs").join(ns));
    }
}

/// The nfs-ganesha configuration (shared with lkh-nas's own server tests: `tests/ganesha.conf.in`).
fn ganesha_conf(export: &Path, recovery: &Path) -> String {
    include_str!("../../ganesha.conf.in")
        .replace("@NFS_PORT@", &NFS_PORT.to_string())
        .replace("@MOUNT_PORT@", &MOUNT_PORT.to_string())
        .replace("@RECOVERY@", &recovery.display().to_string())
        .replace("@EXPORT@", &export.display().to_string())
}
