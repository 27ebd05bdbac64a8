//! The hardware floor lkh-scsipr is measured against (issue 30; `tests/guest/scsipr_scale.sh`
//! runs it in the guest beside the kit, `sg_persist` and `mpathpersist`):
//!
//! - `sg_floor nop`: a static binary that does nothing (T0, the cost of a start);
//! - `sg_floor lat R DEV`: R READ KEYS on DEV one after the other (L, a command at queue depth
//!   1), per command wall time;
//! - `sg_floor batch R DEV...`: R rounds of one READ KEYS on every DEV at once (n = the number
//!   of DEVs in flight): wall time and guest CPU (non-idle time of `/proc/stat`) per round;
//! - `sg_floor threads R DEV...`: the same as `batch` with one thread per DEV, each waiting
//!   for its own command (the other way to have every command in flight, measured against the
//!   one thread of `batch`);
//! - `sg_floor run R CMD ARG...`: runs CMD R times (fork, exec, wait), wall time and guest CPU
//!   of each run.
//!
//! Each prints one line `FLOOR <mode> n=… rounds=… min=… median=… max=… cpu_median=…` (ms).
//! Commands go through sg-persist's own path (`/dev/sgN`, the sg driver's asynchronous
//! interface, `exec::join_all`), the one lkh-scsipr uses.

use std::path::Path;
use std::time::{Duration, Instant};

use sg_persist::exec::{block_on, join_all};
use sg_persist::{Options, ScsiPath, SysRoot};

fn usage() -> ! {
    eprintln!("usage: sg_floor nop | lat R DEV | batch R DEV... | run R CMD ARG...");
    std::process::exit(2)
}

/// Non-idle guest CPU time so far (user, nice, system, irq, softirq, steal), in ms.
fn cpu_ms() -> f64 {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = s.lines().next() else {
        return 0.0;
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|i| v.get(*i)).sum();
    // USER_HZ is 100 on Linux
    busy as f64 * 10.0
}

fn report(mode: &str, n: usize, wall: &mut [f64], cpu: &mut [f64]) {
    let med = |v: &mut [f64]| {
        v.sort_by(|a, b| a.total_cmp(b));
        if v.is_empty() { 0.0 } else { v[v.len() / 2] }
    };
    let m = med(wall);
    let c = med(cpu);
    let sum_cpu: f64 = cpu.iter().sum();
    println!(
        "FLOOR {mode} n={n} rounds={} min={:.3} median={m:.3} max={:.3} mean={:.3} cpu_median={c:.1} cpu_mean={:.2}",
        wall.len(),
        wall.first().copied().unwrap_or(0.0),
        wall.last().copied().unwrap_or(0.0),
        wall.iter().sum::<f64>() / wall.len().max(1) as f64,
        sum_cpu / cpu.len().max(1) as f64,
    );
}

fn open(devs: &[String]) -> Vec<ScsiPath> {
    let root = SysRoot::default();
    devs.iter()
        .map(|d| {
            let r = sg_persist::path::resolve(Path::new(d), &root).unwrap_or_else(|e| {
                eprintln!("{e}");
                std::process::exit(1)
            });
            let info = r.paths.into_iter().next().expect("a path");
            ScsiPath::open(info, Options::default()).unwrap_or_else(|e| {
                eprintln!("{e}");
                std::process::exit(1)
            })
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(mode) = args.first() else { usage() };
    if mode == "nop" {
        return;
    }
    let rounds: usize = args
        .get(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| usage());
    let rest = &args[2.min(args.len())..];
    if rest.is_empty() {
        usage();
    }
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    match mode.as_str() {
        "lat" => {
            let mut p = open(&rest[..1]);
            for _ in 0..rounds {
                let deadline = Instant::now() + Duration::from_secs(10);
                let (t, c) = (Instant::now(), cpu_ms());
                block_on(p[0].read_keys(deadline)).expect("READ KEYS");
                wall.push(t.elapsed().as_secs_f64() * 1e3);
                cpu.push(cpu_ms() - c);
            }
            report("lat", 1, &mut wall, &mut cpu);
        }
        "batch" => {
            let mut ps = open(rest);
            for _ in 0..rounds {
                let deadline = Instant::now() + Duration::from_secs(30);
                let (t, c) = (Instant::now(), cpu_ms());
                let out = block_on(join_all(ps.iter_mut().map(|p| p.read_keys(deadline))));
                wall.push(t.elapsed().as_secs_f64() * 1e3);
                cpu.push(cpu_ms() - c);
                if let Some(e) = out.into_iter().find_map(Result::err) {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            }
            report("batch", rest.len(), &mut wall, &mut cpu);
        }
        "threads" => {
            let mut ps = open(rest);
            for _ in 0..rounds {
                let deadline = Instant::now() + Duration::from_secs(30);
                let (t, c) = (Instant::now(), cpu_ms());
                let failed = std::thread::scope(|s| {
                    let hs: Vec<_> = ps
                        .iter_mut()
                        .map(|p| s.spawn(move || block_on(p.read_keys(deadline)).is_err()))
                        .collect();
                    hs.into_iter()
                        .map(|h| h.join().unwrap_or(true))
                        .filter(|failed| *failed)
                        .count()
                });
                wall.push(t.elapsed().as_secs_f64() * 1e3);
                cpu.push(cpu_ms() - c);
                if failed > 0 {
                    eprintln!("{failed} command(s) failed");
                    std::process::exit(1);
                }
            }
            report("threads", rest.len(), &mut wall, &mut cpu);
        }
        "run" => {
            let mut failed = 0;
            for _ in 0..rounds {
                let (t, c) = (Instant::now(), cpu_ms());
                let ok = std::process::Command::new(&rest[0])
                    .args(&rest[1..])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                wall.push(t.elapsed().as_secs_f64() * 1e3);
                cpu.push(cpu_ms() - c);
                failed += usize::from(!ok);
            }
            report("run", 1, &mut wall, &mut cpu);
            if failed > 0 {
                println!("FLOOR run-failed {failed}");
                std::process::exit(1);
            }
        }
        _ => usage(),
    }
}
