//! Host-side checks of `fence_lkhscsipr` (the binary called by that name through a link):
//! its metadata against fence-agents' own schema and `rng-check` (Debian's shipped
//! `/usr/share/cluster/relaxng/{metadata.rng,fence2rng.xsl}`), Pacemaker's `stonith_admin
//! --metadata/--validate` (no cluster needed), refusals on the command line and stdin, and
//! `--delay`. No disk is ever touched: the only devices named are ones that are not SCSI.
//! Missing tools are installed by the test bed's one mechanism (`tests::host`, as root); what
//! cannot be had here skips loudly, and fails under `LKH_VM_REQUIRED=1` (or `CI`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const RNG: &str = "/usr/share/cluster/relaxng/metadata.rng";
const XSL: &str = "/usr/share/cluster/relaxng/fence2rng.xsl";
const KEYS: &str = "node-a:0x4c4b0000000000a1,node-b:0x4c4b0000000000b2";

use tests::host::{self, skip};

/// A directory with `fence_lkhscsipr` → the built `lkh-scsipr`.
fn agent() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lkh-fence-agent-{}", std::process::id()));
    let link = dir.join("fence_lkhscsipr");
    if !link.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let _ = std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_lkh-scsipr"), &link);
    }
    link
}

/// Runs a command with `stdin`, killed after 30 s (the test then fails on its status).
fn run(cmd: &mut Command, stdin: &str) -> Output {
    let mut child = cmd
        .env("LKHELPERS_NO_SYSLOG", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    let end = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn fence(args: &[&str]) -> Output {
    run(Command::new(agent()).args(args), "")
}

/// A block device that is not SCSI (loop, zram, virtio, ...): existing, so the parameters
/// pass, and refused by the first step that would send a command.
fn non_scsi_block_device() -> Option<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/block")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.into_iter().find_map(|n| {
        let kind_ok = ["loop", "zram", "vd", "ram", "nbd", "nvme"]
            .iter()
            .any(|p| n.starts_with(p));
        let sys = Path::new("/sys/class/block").join(&n);
        let dev = Path::new("/dev").join(&n);
        (kind_ok
            && !sys.join("device/scsi_device").exists()
            && !sys.join("partition").exists()
            && std::fs::metadata(&dev).is_ok_and(|m| m.file_type().is_block_device()))
        .then_some(dev)
    })
}

#[test]
fn metadata_validates_against_fence_agents_schemas() {
    let t = "metadata_validates_against_fence_agents_schemas";
    let out = fence(&["-o", "metadata"]);
    assert!(out.status.success(), "{}", text(&out));
    let xml = String::from_utf8(out.stdout).unwrap();
    // the same metadata when asked on stdin, as the fencer asks
    let stdin = run(
        &mut Command::new(agent()),
        "# fencer\naction=metadata\nnodename=n1\n",
    );
    assert!(stdin.status.success(), "{}", text(&stdin));
    assert_eq!(String::from_utf8_lossy(&stdin.stdout), xml);

    if !host::need(t, host::FENCE_SCHEMAS) {
        return;
    }
    for f in [RNG, XSL] {
        assert!(
            Path::new(f).exists(),
            "{f} is missing although fence-agents is installed"
        );
    }
    let dir = agent().parent().unwrap().to_path_buf();
    let file = dir.join("metadata.xml");
    std::fs::write(&file, &xml).unwrap();
    let lint = |f: &Path| {
        run(
            Command::new("xmllint")
                .args(["--noout", "--relaxng", RNG])
                .arg(f),
            "",
        )
    };
    let ok = lint(&file);
    assert!(
        ok.status.success(),
        "metadata.rng rejects the metadata: {}",
        text(&ok)
    );
    // the check can fail: the same metadata without <vendor-url> is rejected
    let broken = dir.join("broken.xml");
    std::fs::write(&broken, xml.replace("<vendor-url></vendor-url>\n", "")).unwrap();
    assert!(
        !lint(&broken).status.success(),
        "xmllint accepted metadata without vendor-url"
    );

    // fence-agents' rng-check (make/agentpycheck.mk): fence2rng.xsl, the rha: prefix dropped,
    // then well-formed XML
    let rng = run(Command::new("xsltproc").arg(XSL).arg(&file), "");
    assert!(rng.status.success(), "{}", text(&rng));
    let fragment = String::from_utf8(rng.stdout)
        .unwrap()
        .replace(" rha:description=", " description=")
        .replace(" rha:name=", " name=");
    assert!(fragment.contains("name=\"fence_lkhscsipr\""), "{fragment}");
    for p in ["devices", "keys", "plug", "delay", "power_timeout"] {
        assert!(
            fragment.contains(&format!("<attribute name=\"{p}\"")),
            "{p}: {fragment}"
        );
    }
    let wf = run(
        Command::new("xmllint").args(["--nsclean", "--noout", "-"]),
        &fragment,
    );
    assert!(wf.status.success(), "rng-check: {}", text(&wf));
}

/// Removes the `/usr/sbin/fence_lkhscsipr` link this test made.
struct SbinLink(PathBuf);
impl Drop for SbinLink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn stonith_admin_accepts_the_agent() {
    let t = "stonith_admin_accepts_the_agent";
    if !host::need(t, host::PACEMAKER_CLI) {
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        return skip(
            t,
            "not root: Pacemaker finds agents only as /usr/sbin/fence_*",
        );
    }
    let Some(dev) = non_scsi_block_device() else {
        return skip(
            t,
            "no non-SCSI block device (loop, zram, virtio) to name in devices=",
        );
    };
    let sbin = PathBuf::from("/usr/sbin/fence_lkhscsipr");
    if std::fs::symlink_metadata(&sbin).is_ok() {
        return skip(
            t,
            "/usr/sbin/fence_lkhscsipr exists already: not replacing an installed agent",
        );
    }
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_lkh-scsipr"), &sbin).unwrap();
    let _guard = SbinLink(sbin);

    let meta = run(
        Command::new("stonith_admin").args(["--metadata", "--agent", "fence_lkhscsipr"]),
        "",
    );
    let m = text(&meta);
    assert!(meta.status.success(), "{m}");
    assert!(
        m.contains("<resource-agent name=\"fence_lkhscsipr\""),
        "{m}"
    );
    assert!(m.contains("on_target=\"1\""), "{m}");

    let devices = format!("devices={}", dev.display());
    let validate = |keys: &str| {
        run(
            Command::new("stonith_admin").args([
                "--validate",
                "--agent",
                "fence_lkhscsipr",
                "--option",
                &devices,
                "--option",
                keys,
            ]),
            "",
        )
    };
    let ok = validate(&format!("keys={KEYS}"));
    assert!(ok.status.success(), "{}", text(&ok));
    let dup = validate("keys=node-a:0x4c4b01,node-b:0x4c4b01");
    assert!(!dup.status.success(), "{}", text(&dup));
    assert!(text(&dup).contains("have the same key"), "{}", text(&dup));
}

#[test]
fn refusals_on_the_command_line_and_stdin() {
    let out = fence(&[
        "-o",
        "off",
        "-n",
        "node-c",
        "--devices",
        "/dev/sdz",
        "--keys",
        KEYS,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("plug \"node-c\" is not in keys= (nodes: node-a, node-b)"),
        "{}",
        text(&out)
    );
    let out = fence(&[
        "-o",
        "reboot",
        "-n",
        "node-a",
        "--devices",
        "/dev/sdz",
        "--keys",
        KEYS,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("reboot is not supported"));
    let out = fence(&["-o", "off", "-n", "node-a", "--devcies", "/dev/sdz"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("unknown option --devcies"),
        "{}",
        text(&out)
    );
    // an error is 1 for status too: 2 would say "off"
    let out = fence(&[
        "-o",
        "status",
        "-n",
        "node-a",
        "--devices",
        "/dev/nonexistent",
        "--keys",
        KEYS,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("/dev/nonexistent"), "{}", text(&out));

    // stdin: comments, unknown keys, last value wins
    let out = run(
        &mut Command::new(agent()),
        &format!("# fencer\naction=off\ncolour=blue\nkeys=node-a:1\nkeys={KEYS}\naction=list\n"),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "node-a,0x4c4b0000000000a1\nnode-b,0x4c4b0000000000b2\n"
    );
    let out = run(
        &mut Command::new(agent()),
        "action=off\nport=node-a\ndevices=/dev/sdz\nkeys=node-a:0x4c4b01,node-b:0x4c4b01\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("have the same key"), "{}", text(&out));
}

/// `--delay` is waited before fencing starts (fence-agents' delay-check): the run then fails
/// on a device that is not SCSI, after at least the delay.
#[test]
fn delay_is_waited_before_fencing() {
    let t = "delay_is_waited_before_fencing";
    let Some(dev) = non_scsi_block_device() else {
        return skip(
            t,
            "no non-SCSI block device (loop, zram, virtio) to name in devices=",
        );
    };
    let conf = agent().parent().unwrap().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    // this node is node-b
    std::fs::write(conf.join("node.key"), "0x4c4b0000000000b2\n").unwrap();
    let dev = dev.display().to_string();
    let start = Instant::now();
    let out = run(
        Command::new(agent())
            .env("LKHELPERS_CONF_DIR", &conf)
            .args([
                "-o",
                "off",
                "-n",
                "node-a",
                "--devices",
                &dev,
                "--keys",
                KEYS,
                "--delay",
                "2",
            ]),
        "",
    );
    let took = start.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("not a SCSI disk"), "{}", text(&out));
    assert!(
        took >= Duration::from_secs(2),
        "took {took:?}: the delay was not waited"
    );
    // a refusal comes before the delay
    let out = run(
        Command::new(agent())
            .env("LKHELPERS_CONF_DIR", &conf)
            .args([
                "-o",
                "off",
                "-n",
                "node-b",
                "--devices",
                &dev,
                "--keys",
                KEYS,
                "--delay",
                "1",
            ]),
        "",
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("never fences itself"), "{}", text(&out));
}
