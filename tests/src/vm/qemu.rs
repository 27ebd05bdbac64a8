//! One QEMU run: overlay + initrd, the QEMU command line, the console and control channels,
//! the wall-clock limit.
//!
//! Serial port 0 (the console) is QEMU's stdout, copied line by line with host timestamps to
//! the console log. Serial port 1 is connected to a Unix socket the harness listens on: the
//! guest writes `CHECK name PASS|FAIL detail`, `HOST words...` (answered with `OK text` or
//! `ERR text` by the host hooks) and finally `END rc=N`.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::bins::Bin;
use super::cpio::Cpio;
use super::parts::{Parts, cache_dir};
use super::{Check, Disk, RunReport, Vm, VmError, crate_dir};

/// After `END`, the guest gets this long to power off before it is killed.
const POWEROFF_GRACE: Duration = Duration::from_secs(10);

#[derive(Default)]
struct State {
    checks: Vec<Check>,
    rc: Option<i32>,
    ended: Option<Instant>,
    boot: Option<Duration>,
}

/// Kills QEMU when dropped, whatever happened before.
struct Qemu(Child);

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_err(msg: String) -> VmError {
    VmError::Run(msg)
}

fn overlay(vm: &Vm, bins: &[Bin]) -> Result<Vec<u8>, VmError> {
    let guest = crate_dir().join("guest");
    let mut c = Cpio::new();
    let init =
        fs::read(guest.join("init")).map_err(|e| run_err(format!("tests/guest/init: {e}")))?;
    c.file("/init", 0o755, &init);
    c.tree(&guest.join("lib"), "/lib/lkh")
        .map_err(|e| run_err(format!("tests/guest/lib: {e}")))?;
    c.file("/scenario.sh", 0o755, vm.script.as_bytes());
    for b in bins {
        let data = fs::read(&b.path).map_err(|e| run_err(format!("{}: {e}", b.path.display())))?;
        c.file(&format!("/opt/lkh/bin/{}", b.name), 0o755, &data);
    }
    for (path, mode, data) in &vm.files {
        c.file(path, *mode, data);
    }
    Ok(c.finish())
}

fn disk_args(
    vm: &Vm,
    dir: &Path,
    tag: &str,
    args: &mut Vec<String>,
) -> Result<Vec<PathBuf>, VmError> {
    let mut files = Vec::new();
    let mut scsi_bus = false;
    for (i, d) in vm.disks.iter().enumerate() {
        let (size, scsi) = match d {
            Disk::VirtioBlk { size_mb } => (*size_mb, false),
            Disk::ScsiHd { size_mb } => (*size_mb, true),
        };
        let p = dir.join(format!("{tag}-disk{i}.img"));
        File::create(&p)
            .and_then(|f| f.set_len(size * 1024 * 1024))
            .map_err(|e| run_err(format!("disk image {}: {e}", p.display())))?;
        args.push("-drive".into());
        args.push(format!("file={},format=raw,if=none,id=d{i}", p.display()));
        if scsi {
            if !scsi_bus {
                args.extend(["-device".into(), "virtio-scsi-pci,id=scsi0".into()]);
                scsi_bus = true;
            }
            args.push("-device".into());
            args.push(format!(
                "scsi-hd,drive=d{i},bus=scsi0.0,serial=lkh-nopr-{i}"
            ));
        } else {
            args.push("-device".into());
            args.push(format!("virtio-blk-pci,drive=d{i},serial=lkh-nopr-{i}"));
        }
        files.push(p);
    }
    Ok(files)
}

fn handle_line(line: &str, st: &Mutex<State>, vm: &Vm, stream: &mut UnixStream) {
    if let Some(f) = vm.on_line.lock().expect("on_line").as_mut() {
        f(line);
    }
    let mut words = line.split_whitespace();
    match words.next() {
        Some("CHECK") => {
            let name = words.next().unwrap_or("?").to_string();
            let passed = words.next() == Some("PASS");
            let detail = words.collect::<Vec<_>>().join(" ");
            st.lock().expect("state").checks.push(Check {
                name,
                passed,
                detail,
            });
        }
        Some("END") => {
            let rc = words
                .next()
                .and_then(|w| w.strip_prefix("rc="))
                .and_then(|r| r.parse().ok());
            let mut s = st.lock().expect("state");
            s.rc = rc;
            s.ended = Some(Instant::now());
        }
        Some("HOST") => {
            let req: Vec<&str> = words.collect();
            let mut reply = Err(format!("no host handler for `{}`", req.join(" ")));
            for h in vm.hooks.lock().expect("hooks").iter_mut() {
                match h(&req) {
                    Err(e) if e == "unhandled" => continue,
                    r => {
                        reply = r;
                        break;
                    }
                }
            }
            let text = match reply {
                Ok(t) => format!("OK {}\n", t.replace('\n', " ")),
                Err(e) => format!("ERR {}\n", e.replace('\n', " ")),
            };
            let _ = stream.write_all(text.as_bytes());
        }
        _ => {}
    }
}

fn control(listener: UnixListener, st: &Mutex<State>, vm: &Vm, stop: &AtomicBool) {
    let stream = loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(20)),
            Err(_) => return,
        }
    };
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut pending = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match reader.read_until(b'\n', &mut pending) {
            Ok(0) => return,
            Ok(_) if pending.ends_with(b"\n") => {
                let line = String::from_utf8_lossy(&pending).replace('\r', "");
                pending.clear();
                handle_line(line.trim(), st, vm, &mut writer);
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

fn console(out: impl std::io::Read, log: &mut File, start: Instant, st: &Mutex<State>) {
    let mut r = BufReader::new(out);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf).replace('\r', "");
                let line = line.trim_end_matches('\n');
                let t = start.elapsed();
                if line.contains("LKH-VM: init-start") {
                    st.lock().expect("state").boot.get_or_insert(t);
                }
                let _ = writeln!(log, "{:4}.{:03} {line}", t.as_secs(), t.subsec_millis());
            }
        }
    }
}

/// The files of one run: removed when dropped, whatever happened.
struct RunFiles(Vec<PathBuf>);

impl RunFiles {
    fn add(&mut self, p: &Path) -> PathBuf {
        self.0.push(p.to_path_buf());
        p.to_path_buf()
    }
}

impl Drop for RunFiles {
    fn drop(&mut self) {
        for f in &self.0 {
            let _ = fs::remove_file(f);
        }
    }
}

/// Removes the run files (initrd, disk images: `<pid>-<seq>-<name>...`) that test processes
/// killed before they could clean up left in `runs`.
fn reap_stale_runs(runs: &Path) {
    let Ok(entries) = fs::read_dir(runs) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.split('-').next()) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_file(e.path());
        }
    }
}

pub(super) fn run(vm: &Vm, parts: &Parts, bins: &[Bin]) -> Result<RunReport, VmError> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    // this process's id first: reap_stale_runs recognises files of processes that are gone
    let id = format!(
        "{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let tag = format!("{id}-{}", vm.name);
    let cache = cache_dir();
    let logs = cache.join("logs");
    let runs = cache.join("runs");
    for d in [&logs, &runs] {
        fs::create_dir_all(d).map_err(|e| run_err(format!("mkdir {}: {e}", d.display())))?;
    }
    reap_stale_runs(&runs);
    let mut files = RunFiles(Vec::new());
    // The console is written to a file of this run and moved to logs/<name>.console at the
    // end, so test processes running the same guest at once do not write into each other's log.
    let run_log = files.add(&runs.join(format!("{tag}.console")));
    let console_log = logs.join(format!("{}.console", vm.name));
    let initrd = files.add(&runs.join(format!("{tag}.initrd")));
    let mut img =
        fs::read(&parts.base).map_err(|e| run_err(format!("{}: {e}", parts.base.display())))?;
    img.extend(overlay(vm, bins)?);
    fs::write(&initrd, img).map_err(|e| run_err(format!("write {}: {e}", initrd.display())))?;

    let sock = files.add(&std::env::temp_dir().join(format!("lkh-vm-{id}.sock")));
    let _ = fs::remove_file(&sock);
    let listener =
        UnixListener::bind(&sock).map_err(|e| run_err(format!("bind {}: {e}", sock.display())))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| run_err(format!("socket: {e}")))?;

    let mut args: Vec<String> = Vec::new();
    let accel = if parts.kvm { "kvm" } else { "tcg" };
    if parts.kvm {
        args.extend(["-accel", "kvm", "-cpu", "host"].map(String::from));
    } else {
        args.extend(["-accel", "tcg"].map(String::from));
    }
    args.extend(
        [
            "-machine",
            "pc",
            "-smp",
            "1",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
            "-serial",
            "stdio",
        ]
        .map(String::from),
    );
    args.push("-m".into());
    args.push(vm.mem_mb.to_string());
    args.push("-chardev".into());
    args.push(format!("socket,id=ctl,path={}", sock.display()));
    args.extend(["-serial".into(), "chardev:ctl".into()]);
    args.extend(["-kernel".into(), parts.kernel.display().to_string()]);
    args.extend(["-initrd".into(), initrd.display().to_string()]);
    args.push("-append".into());
    args.push(format!(
        "console=ttyS0 quiet loglevel=3 panic=-1 oops=panic tsc=reliable{}",
        vm.append
    ));
    if vm.user_net {
        args.extend(["-netdev".into(), "user,id=n0".into()]);
        args.extend(["-device".into(), "virtio-net-pci,netdev=n0".into()]);
    }
    for f in disk_args(vm, &runs, &tag, &mut args)? {
        files.add(&f);
    }
    args.extend(vm.qemu_args.iter().cloned());

    let mut cmd = match &vm.netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(&parts.qemu);
            c
        }
        None => Command::new(&parts.qemu),
    };
    cmd.args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    crate::sys::kill_with_parent(&mut cmd);

    let mut log = File::create(&run_log)
        .map_err(|e| run_err(format!("create {}: {e}", run_log.display())))?;
    let _ = writeln!(log, "# {} {}", parts.qemu.display(), args.join(" "));
    let st = Mutex::new(State::default());
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let deadline = start + vm.timeout;

    let result = thread::scope(|s| -> Result<(bool, Duration), VmError> {
        let mut q = Qemu(
            cmd.spawn()
                .map_err(|e| run_err(format!("cannot start QEMU: {e}")))?,
        );
        let out = q.0.stdout.take().expect("piped stdout");
        let err = q.0.stderr.take().expect("piped stderr");
        let (st_ref, stop_ref) = (&st, &stop);
        s.spawn(move || control(listener, st_ref, vm, stop_ref));
        let mut log2 = log.try_clone().map_err(|e| run_err(format!("log: {e}")))?;
        s.spawn(move || console(out, &mut log, start, st_ref));
        s.spawn(move || console(err, &mut log2, start, st_ref));
        let mut timed_out = false;
        loop {
            if let Ok(Some(_)) = q.0.try_wait() {
                break;
            }
            let now = Instant::now();
            let ended = st.lock().expect("state").ended;
            if now >= deadline {
                timed_out = ended.is_none();
                break;
            }
            if ended.is_some_and(|e| now.duration_since(e) > POWEROFF_GRACE) {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let took = start.elapsed();
        drop(q);
        stop.store(true, Ordering::Relaxed);
        Ok((timed_out, took))
    });
    if let Ok((true, _)) = result
        && let Ok(mut f) = fs::OpenOptions::new().append(true).open(&run_log)
    {
        let limit = vm.timeout.as_secs();
        let _ = writeln!(f, "# wall-clock limit of {limit} s reached: QEMU killed");
    }
    let console = fs::read_to_string(&run_log).unwrap_or_default();
    let _ = fs::rename(&run_log, &console_log);
    drop(files);
    let (timed_out, duration) = result?;
    let st = st.into_inner().expect("state");
    Ok(RunReport {
        name: vm.name.clone(),
        checks: st.checks,
        rc: st.rc,
        timed_out,
        boot_time: st.boot,
        duration,
        console_log,
        console,
        accel,
    })
}
