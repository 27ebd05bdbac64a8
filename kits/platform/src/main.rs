//! `lkh-platform`: tells on-premises Hyper-V from Azure (and other platforms), checks what
//! LifeKeeper recorded about its environment and the gen/app resources that use lkhelpers, and
//! applies the documented remediation when the record is wrong.
//!
//! Policy lives here (what to print, which exit code); the detection, checks and file changes
//! are in the library. Exit codes are lkh-common's table: 0 done / consistent, 1 inconsistent,
//! refused or failed, 2 usage or configuration error with nothing changed.

mod cmd_cluster;
mod cmd_doctor;
mod host_out;
mod man;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Args, Parser, Subcommand};
use lkh_common::{Exit, Failure, Json};
use lkh_platform::evidence::CpuKind;
use lkh_platform::lifekeeper::{self, Check, Recorded, Subject};
use lkh_platform::net::ProbeResult;
use lkh_platform::wiring::{self, Level};
use lkh_platform::{AZURE_ASSET_TAG, CPUID_DUMP, DetectOptions, Detection, fix, procs};

const BIN: &str = "lkh-platform";

const DETECT_HELP: &str = "\
Evidence, strongest first: VMBus devices (/sys/bus/vmbus: only Hyper-V has them), DMI strings
(/sys/class/dmi/id), the CPUID hypervisor signature (leaf 0x40000000, and 0x40000100 behind
\"Microsoft Hv\", where KVM with Hyper-V enlightenments names itself), /sys/hypervisor/type,
the CPU kind and hypervisor flag (/proc/cpuinfo), then Azure's IMDS and WireServer. The verdict
is the strongest source's; containers are reported and the machine underneath is classified.

Confidence: certain = two independent sources agree and none disagrees (Hyper-V only with VMBus
devices); likely = one source names the platform; guess = nothing names it and data is missing
(no DMI, no CPU flag), or Hyper-V rests on CPUID or the asset tag alone. A source that disagrees
is shown and lowers the confidence one step, so disagreement never gives certain. Bare metal is
at best likely. The Azure asset tag alone is a claim, not proof. With --sysroot, CPUID comes
from DIR/cpuid.txt (a `cpuid -r` dump) when present.";

const CHECK_HELP: &str = "\
Platform: LK_SERV_ENV in the defaults file and the SCSI3 kit must match the detected platform.

gen/app wiring: every resource whose scripts under $LKROOT/subsys/gen/resources/app
(actions/!restore, !remove, !quickCheck and recovery/!recover, one file per tag) are wrappers
written by `lkh-<kit> genapp`, /bin/sh scripts that exec a kit binary, or copies of a kit
binary, is checked. What runs is judged, not what a file says: a wrapper's binary and action
come from its one executable line, read as /bin/sh reads it; its marker comment runs nothing.
  error    a wrapper's executable line is not exactly exec BINARY ACTION \"$@\" (a second
           command, a variable, a redirection, a relative binary, another interpreter than
           #!/bin/sh): the line is named
  error    a wrapper execs a binary that is missing, not executable or not an lkhelpers kit
  error    a directory or link on the way to a copy, to /bin/sh or to the binary a wrapper
           execs, $LKROOT itself, or such a file, is owned by someone other than root or
           writable by group or others (root-owned links, as /bin -> usr/bin, are followed)
  error    a wrapper sits in another action's directory (the wizard field to fix is named)
  error    `lkh-<kit> validate -t TAG` fails: the configuration is missing or invalid
  error    the kit's TIMEOUT is not below LKCHECKINTERVAL (defaults file; 120 when unset)
  error    restore or remove script missing; the tag's scripts belong to different kits
  warning  no quickCheck script (failures are never detected); a copy of a kit binary (works,
           goes stale on upgrade); a wrapper that runs the right thing but differs from what
           genapp writes; a symbolic link instead of a copy; a leftover $LKROOT/subsys/lkhelpers
           tree from earlier versions
  info     no recover script (a quickCheck failure fails over at once); no resource uses
           lkhelpers
Binaries are only run with --version and validate, with argv[0] \"lkhelpers-check\", for at most
5 s each, from the descriptor that was judged (nothing can swap them in between), and only
when their whole path is root's and not writable by group or others, they are executable and
carry lkhelpers' code. Other applications' scripts and programs are skipped. One line per
finding; each names the file or directory to fix; --json gives them as an array of {check,
level, tag, file, what, remedy, message}. Exit 1 on any error, a platform mismatch or an
undecidable platform, else 0.";

const DOCTOR_HELP: &str = "\
Resources: every <conf dir>/<TAG>.conf (LKHELPERS_CONF_DIR, /etc/lkhelpers), every gen/app copy
of a kit's wrapper under $LKROOT (it names the kit), every tag directory in the kits' run state
(<run dir>/<kit>/<TAG>, LKHELPERS_RUN_DIR, /run/lkhelpers: a hook ran it here since boot). Each
resource with a known kit and a configuration file is asked `lkh-<kit> status -t TAG --json` (the
kit beside this binary; root's, not writable by others), all at once, each killed after
--timeout. A tag only in run state is a Pacemaker resource (its parameters are in Pacemaker's
configuration): listed, not asked.

  healthy         status exit 0
  failed          exit 1: failing here, or not in service on this node
  misconfigured   exit 2: its configuration is wrong or names something missing here
  held elsewhere  exit 3: another node holds it (lkh-scsipr: fenced)
  no answer       killed at --timeout, or no status JSON
  not checked     kit or configuration file unknown, kit not installed
With --standby, failed and held elsewhere are expected (\"not here\"). The defender is
lkh-scsipr's `watch` loop as lkh-scsipr's status reports it (\"unknown\" from a version that does
not). LifeKeeper (when its defaults file and $LKROOT exist): the platform record and the gen/app
wiring, as check-lifekeeper judges them. Unhealthy: a resource failed, misconfigured, held
elsewhere or without answer; the defender not running while a reservation is held here; the
platform record wrong; a wiring error. --json: one object {node, healthy, exit, standby, platform,
resources: [{kit, tag, found_in, state, healthy, problem, exit, verdict, message, took_ms}],
defender, lifekeeper, notes, problems}.";

const CLUSTER_HELP: &str = "\
SIOS's Hyper-V configuration guide does not support a LifeKeeper cluster whose VMs run on one
Hyper-V host (its failure stops the whole cluster), except for a while during host maintenance.
Each node's host comes from the guest parameters the host pushes through the Data Exchange (KVP)
service, /var/lib/hyperv/.kvp_pool_3 (PhysicalHostNameFullyQualified, else PhysicalHostName,
else HostName), compared case-insensitively (a short name matches its fully qualified form).

The other nodes: with LifeKeeper installed ($LKROOT/bin/lcdremexec), every node `sys_list` names
(except this one, `lcduname`) is asked `lcdremexec -e -d NODE -t SECS -- /usr/sbin/lkh-platform
detect --json --no-network`, all at once, each call killed after --timeout; and each --peer FILE
(another node's `lkh-platform detect --json`). The same VM given twice (same VirtualMachineId)
counts once.

  ok       a node's host; all nodes on different hosts
  warning  two or more nodes on one host (named, with the guide's rule: temporary only); a
           node whose KVP daemon is not running (its host may be out of date)
  error    a node whose host is unknown (why: no pool, no daemon, not Hyper-V, no answer);
           fewer than two nodes known
Exit 0 only when every node's host is known, current and different from the others', else 1.
--json gives the findings as an array of {check, level, tag, file, what, remedy, message, node,
host, nodes, source} (file: the --peer FILE a node came from).

Pacemaker: `crm_attribute --node \"$(crm_node -n)\" --name hyperv-host --update
\"$(lkh-platform check-cluster --attribute)\" --lifetime reboot` on every node (after boot and
after every live migration) gives each node the attribute; `pcs constraint colocation add B with
A -1000 node-attribute=hyperv-host` then keeps resources A and B on nodes of different hosts.";

const AFTER_HELP: &str = "\
Exit codes:
  0  detect: verdict printed; check-lifekeeper: consistent; check-cluster: every node on a
     host of its own; doctor: everything healthy; fix: nothing left to do
  1  check-lifekeeper: inconsistent or undecidable; check-cluster: nodes share a host, or a
     host is unknown or may be out of date; doctor: a problem found (listed under result);
     fix: refused, failed, or manual steps remain
  2  usage or configuration error; nothing was changed

LifeKeeper documents LK_SERV_ENV as set by its setup script, not by hand:
https://docs.us.sios.com/spslinux/9.9.0/en/topic/parameters-list";

/// Platform detection for LifeKeeper nodes: on-premises Hyper-V or Azure?
#[derive(Parser, Debug)]
#[command(name = BIN, version = lkh_common::version::LONG, after_help = AFTER_HELP)]
struct Cli {
    /// More detail on stderr (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
struct DetectArgs {
    /// Read /sys and /proc under DIR instead of / (CPUID then only from DIR/cpuid.txt).
    #[arg(long, value_name = "DIR")]
    sysroot: Option<PathBuf>,
    /// Do not ask Azure's metadata service or WireServer.
    #[arg(long)]
    no_network: bool,
}

#[derive(Args, Debug, Clone)]
struct LkArgs {
    /// LifeKeeper's installation root [default: $LKROOT or /opt/LifeKeeper].
    #[arg(long, value_name = "DIR")]
    lkroot: Option<PathBuf>,
    /// LifeKeeper's defaults file [default: $LKHELPERS_LK_DEFAULTS or /etc/default/LifeKeeper].
    #[arg(long, value_name = "FILE")]
    defaults: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Classify this node and print the evidence behind the verdict.
    #[command(after_help = DETECT_HELP)]
    Detect {
        #[command(flatten)]
        detect: DetectArgs,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Compare LifeKeeper's recorded environment (LK_SERV_ENV, SCSI3 kit) with the platform,
    /// and check the gen/app resources that use lkhelpers.
    #[command(after_help = CHECK_HELP)]
    CheckLifekeeper {
        #[command(flatten)]
        lk: LkArgs,
        #[command(flatten)]
        detect: DetectArgs,
        /// Print the findings as one JSON array instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Apply the remediation: refuses while LifeKeeper runs (processes found under
    /// <sysroot>/proc), backs up each file beside itself before changing it, changes only
    /// LK_SERV_ENV and only to the value given; prints the rest as manual steps.
    Fix {
        #[command(flatten)]
        lk: LkArgs,
        #[command(flatten)]
        detect: DetectArgs,
        /// Show the plan and change nothing; exits as the real run would.
        #[arg(long)]
        dry_run: bool,
        /// Record this LK_SERV_ENV value (the one LifeKeeper's setup offers for this
        /// platform); without it, fix only prints the steps to take.
        #[arg(long, value_name = "VALUE")]
        lk_serv_env: Option<String>,
    },
    /// Do the cluster's nodes run on different Hyper-V hosts? Each node's host comes from
    /// its KVP guest parameters: this node's own, the others' through LifeKeeper (lcdremexec)
    /// or from --peer files.
    #[command(after_help = CLUSTER_HELP)]
    CheckCluster {
        /// Read this node's /sys, /proc and /var/lib/hyperv under DIR instead of /.
        #[arg(long, value_name = "DIR")]
        sysroot: Option<PathBuf>,
        /// Another node's `lkh-platform detect --json` output, saved to FILE (repeat for each
        /// node).
        #[arg(long, value_name = "FILE")]
        peer: Vec<PathBuf>,
        /// Do not ask the other nodes through LifeKeeper.
        #[arg(long)]
        no_lifekeeper: bool,
        /// LifeKeeper's installation root [default: $LKROOT or /opt/LifeKeeper].
        #[arg(long, value_name = "DIR")]
        lkroot: Option<PathBuf>,
        /// Seconds allowed for each other node's answer through LifeKeeper.
        #[arg(long, value_name = "SECS", default_value_t = 20,
              value_parser = clap::value_parser!(u64).range(1..=300))]
        timeout: u64,
        /// Print only this node's host, in the form of the Pacemaker node attribute
        /// hyperv-host (for `crm_attribute --update`), and exit.
        #[arg(long)]
        attribute: bool,
        /// Print the findings as one JSON array instead of text.
        #[arg(long)]
        json: bool,
    },
    /// One node-wide health report: every lkhelpers resource configured here and what its
    /// kit's `status` says, the platform and Hyper-V host, LifeKeeper's wiring findings and
    /// lkh-scsipr's defender. Exit 0 only when everything is healthy.
    #[command(after_help = DOCTOR_HELP)]
    Doctor {
        #[command(flatten)]
        lk: LkArgs,
        /// Do not ask Azure's metadata service or WireServer.
        #[arg(long)]
        no_network: bool,
        /// Seconds allowed for each kit's `status` (all run at once).
        #[arg(long, value_name = "SECS", default_value_t = 30,
              value_parser = clap::value_parser!(u64).range(1..=600))]
        timeout: u64,
        /// This node is a standby: resources not in service here (status exit 1 or 3) are
        /// expected, not problems.
        #[arg(long)]
        standby: bool,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The man page, rendered from this command-line definition (for packaging).
    #[command(hide = true)]
    Man,
}

fn main() -> ExitCode {
    // its output is read by people and pipes (`detect | head`): a closed pipe ends it quietly
    lkh_common::default_sigpipe();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return clap_exit(&e),
    };
    lkh_common::logging::init(BIN, None, cli.verbose);
    let result = match cli.command {
        Command::Detect { detect, json } => cmd_detect(&detect, json),
        Command::CheckLifekeeper { lk, detect, json } => cmd_check(&lk, &detect, json),
        Command::Fix {
            lk,
            detect,
            dry_run,
            lk_serv_env,
        } => cmd_fix(&lk, &detect, dry_run, lk_serv_env.as_deref()),
        Command::CheckCluster {
            sysroot,
            peer,
            no_lifekeeper,
            lkroot,
            timeout,
            attribute,
            json,
        } => cmd_check_cluster(
            sysroot.as_deref(),
            &peer,
            !no_lifekeeper,
            lkroot,
            timeout,
            attribute,
            json,
        ),
        Command::Doctor {
            lk,
            no_network,
            timeout,
            standby,
            json,
        } => {
            let (defaults, lkroot) = lk_paths(&lk);
            cmd_doctor::doctor(&cmd_doctor::Ask {
                defaults,
                lkroot,
                network: !no_network,
                timeout: std::time::Duration::from_secs(timeout),
                standby,
                json,
            })
        }
        Command::Man => {
            print!(
                "{}",
                man::page(<Cli as clap::CommandFactory>::command(), AFTER_HELP)
            );
            Ok(Exit::Ok)
        }
    };
    match result {
        Ok(exit) => exit.into(),
        Err(f) => {
            log::error!("{}", f.message);
            f.exit.into()
        }
    }
}

/// `--help` and `--version` print as clap renders them (exit 0); every other clap error is a
/// usage error reported like any failure: one line `lkh-platform: error: ...`, exit 2.
fn clap_exit(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let what = match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            return Exit::Ok.into();
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            "no command given (detect, check-lifekeeper, check-cluster, doctor or fix)".to_string()
        }
        // clap's first line is "error: <what went wrong>"; usage and tips follow.
        _ => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or_default();
            first.strip_prefix("error: ").unwrap_or(first).to_string()
        }
    };
    lkh_common::logging::init(BIN, None, 0);
    log::error!("{what}: see '{BIN} --help'; nothing changed");
    Exit::Usage.into()
}

fn detect_options(a: &DetectArgs) -> Result<DetectOptions, Failure> {
    if let Some(root) = &a.sysroot
        && !root.is_dir()
    {
        return Err(Failure::usage(format!(
            "{}: --sysroot is not a directory; give the root of a captured tree",
            root.display()
        )));
    }
    Ok(DetectOptions {
        sysroot: a.sysroot.clone(),
        network: !a.no_network,
        ..DetectOptions::default()
    })
}

fn run_detect(a: &DetectArgs) -> Result<Detection, Failure> {
    let opts = detect_options(a)?;
    let d = lkh_platform::detect(&opts);
    for note in &d.evidence.local.notes {
        log::warn!("{note}");
    }
    log::debug!(
        "verdict {} ({})",
        d.verdict.platform.as_str(),
        d.verdict.confidence.as_str()
    );
    Ok(d)
}

fn cmd_detect(a: &DetectArgs, json: bool) -> Result<Exit, Failure> {
    let d = run_detect(a)?;
    if json {
        println!("{}", detection_json(&d));
    } else {
        print!("{}", detection_text(&d, a));
    }
    Ok(Exit::Ok)
}

fn probe_text(p: &ProbeResult) -> String {
    match p {
        ProbeResult::Answered {
            status,
            az_environment: Some(env),
        } => format!("answered HTTP {status}, azEnvironment \"{env}\""),
        ProbeResult::Answered { status, .. } => format!("answered HTTP {status}"),
        ProbeResult::NoAnswer(why) => format!("no answer ({why})"),
    }
}

fn probe_json(p: &ProbeResult) -> Json {
    match p {
        ProbeResult::Answered {
            status,
            az_environment,
        } => Json::obj()
            .with("answered", true)
            .with("status", u32::from(*status))
            .with("az_environment", az_environment.clone())
            .with("detail", Json::Null),
        ProbeResult::NoAnswer(why) => Json::obj()
            .with("answered", false)
            .with("status", Json::Null)
            .with("az_environment", Json::Null)
            .with("detail", why.as_str()),
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// The human report: verdict, reasons, then one line per piece of evidence.
fn detection_text(d: &Detection, a: &DetectArgs) -> String {
    let v = &d.verdict;
    let ev = &d.evidence;
    let mut s = String::new();
    s += &format!(
        "platform: {} ({})\n",
        v.platform.as_str(),
        v.platform.describe()
    );
    s += &format!("confidence: {}\n", v.confidence.as_str());
    if let Some(g) = v.hyperv_generation {
        let fw = if g == 2 { "UEFI" } else { "BIOS" };
        s += &format!("hyper-v generation: {g} ({fw})\n");
    }
    s += &host_out::host_text(d);
    s += "why:\n";
    for r in &v.reasons {
        s += &format!("  - {r}\n");
    }
    s += "evidence:\n";
    for (name, value) in ev.local.dmi.fields() {
        match value {
            Some(val) => s += &format!("  dmi {name}: {val}\n"),
            None => s += &format!("  dmi {name}: (absent)\n"),
        }
    }
    let tag_is_azure = ev.local.dmi.chassis_asset_tag.as_deref() == Some(AZURE_ASSET_TAG);
    s += &format!("  azure asset tag: {}\n", yes_no(tag_is_azure));
    match ev.local.vmbus_devices {
        Some(n) => s += &format!("  vmbus: present ({n} devices)\n"),
        None => s += "  vmbus: absent\n",
    }
    s += &format!(
        "  firmware: {}\n",
        if ev.local.uefi {
            "UEFI"
        } else {
            "BIOS or hidden (no /sys/firmware/efi)"
        }
    );
    match (ev.local.cpuinfo_hypervisor_flag, ev.local.cpu_kind) {
        (Some(b), _) => s += &format!("  cpuinfo hypervisor flag: {}\n", yes_no(b)),
        (None, CpuKind::Unknown) => {
            s += "  cpuinfo hypervisor flag: unknown (no /proc/cpuinfo, or empty)\n"
        }
        (None, kind) => {
            s += &format!(
                "  cpuinfo hypervisor flag: unknown (no flags line; cpu kind {})\n",
                kind.as_str()
            )
        }
    }
    if let Some(t) = &ev.local.sys_hypervisor_type {
        s += &format!("  /sys/hypervisor/type: {t}\n");
    }
    if let Some(r) = &ev.local.kernel_release {
        s += &format!("  kernel release: {r}\n");
    }
    match &ev.local.container {
        Some(c) => s += &format!("  container: {} ({})\n", c.kind, c.seen_in),
        None => s += "  container: none seen\n",
    }
    s += &host_out::kvp_evidence_text(&ev.local.kvp);
    match (&ev.cpuid, a.sysroot.is_some()) {
        (Some(c), from_dump) => {
            s += &format!(
                "  cpuid hypervisor: {}{}{}\n",
                match (&c.vendor, c.present) {
                    (Some(vendor), _) => format!("\"{vendor}\""),
                    (None, true) => "present, unnamed".into(),
                    (None, false) => "none".into(),
                },
                match &c.vendor_next {
                    Some(next) => format!(", leaf 0x40000100 \"{next}\""),
                    None => String::new(),
                },
                if from_dump {
                    format!(" (from {CPUID_DUMP})")
                } else {
                    String::new()
                }
            )
        }
        (None, true) => {
            s += &format!("  cpuid hypervisor: not checked (--sysroot, no {CPUID_DUMP})\n")
        }
        (None, false) => s += "  cpuid hypervisor: not available on this architecture\n",
    }
    match &ev.net {
        None => s += "  network: not checked (--no-network)\n",
        Some(n) => {
            s += &format!("  imds 169.254.169.254: {}\n", probe_text(&n.imds));
            s += &format!(
                "  wireserver 168.63.129.16: {}\n",
                probe_text(&n.wireserver)
            );
            if !n.imds.ok() && !n.wireserver.ok() {
                s += "  metadata: no Azure metadata service answered\n";
            } else {
                s += "  metadata: an Azure metadata service answered\n";
            }
        }
    }
    s
}

/// The machine report (`detect --json`); keys are stable.
fn detection_json(d: &Detection) -> Json {
    let v = &d.verdict;
    let ev = &d.evidence;
    let mut dmi = Json::obj();
    for (name, value) in ev.local.dmi.fields() {
        dmi.push(name, value);
    }
    let cpuid = match &ev.cpuid {
        None => Json::obj().with("checked", false),
        Some(c) => Json::obj()
            .with("checked", true)
            .with("hypervisor", c.present)
            .with("vendor", c.vendor.clone())
            .with("vendor_0x40000100", c.vendor_next.clone()),
    };
    let container = match &ev.local.container {
        None => Json::Null,
        Some(c) => Json::obj()
            .with("kind", c.kind.as_str())
            .with("seen_in", c.seen_in.as_str()),
    };
    let network = match &ev.net {
        None => Json::obj().with("checked", false),
        Some(n) => Json::obj()
            .with("checked", true)
            .with("metadata_service", n.imds.ok() || n.wireserver.ok())
            .with("imds", probe_json(&n.imds))
            .with("wireserver", probe_json(&n.wireserver)),
    };
    let evidence = Json::obj()
        .with("dmi", dmi)
        .with(
            "azure_asset_tag",
            ev.local.dmi.chassis_asset_tag.as_deref() == Some(AZURE_ASSET_TAG),
        )
        .with("vmbus_devices", ev.local.vmbus_devices)
        .with("uefi", ev.local.uefi)
        .with("cpuinfo_hypervisor_flag", ev.local.cpuinfo_hypervisor_flag)
        .with("cpu_kind", ev.local.cpu_kind.as_str())
        .with("sys_hypervisor_type", ev.local.sys_hypervisor_type.clone())
        .with("kernel_release", ev.local.kernel_release.clone())
        .with("container", container)
        .with("kvp", host_out::kvp_json(&ev.local.kvp))
        .with("cpuid", cpuid)
        .with("network", network)
        .with("notes", ev.local.notes.clone());
    let mut j = Json::obj()
        .with("platform", v.platform.as_str())
        .with("description", v.platform.describe())
        .with("confidence", v.confidence.as_str())
        .with("is_azure", v.platform.is_azure())
        .with("hyperv_generation", v.hyperv_generation.map(u32::from));
    host_out::push_host_json(&mut j, d);
    j.with("container", v.container.clone())
        .with("reasons", v.reasons.clone())
        .with("evidence", evidence)
}

/// `--defaults`, else the kits' own `LifeKeeper` defaults file (`$LKHELPERS_LK_DEFAULTS`,
/// lkh-common's rule); `--lkroot`, else `$LKROOT`, else `/opt/LifeKeeper`.
fn lk_paths(a: &LkArgs) -> (PathBuf, PathBuf) {
    let defaults = a
        .defaults
        .clone()
        .unwrap_or_else(|| lkh_common::Sources::from_env().lk_defaults);
    let lkroot = a
        .lkroot
        .clone()
        .or_else(|| {
            std::env::var_os("LKROOT")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(lkh_common::genapp::DEFAULT_LKROOT));
    (defaults, lkroot)
}

fn read_record(a: &LkArgs) -> Result<Recorded, Failure> {
    let (defaults, lkroot) = lk_paths(a);
    lifekeeper::read_recorded(&defaults, &lkroot).map_err(|e| Failure::usage(e.0))
}

fn check_text(d: &Detection, rec: &Recorded, c: &Check, w: Option<&wiring::Report>) -> String {
    let mut s = format!(
        "platform: {} ({}, {})\n",
        d.verdict.platform.as_str(),
        d.verdict.platform.describe(),
        d.verdict.confidence.as_str()
    );
    s += &format!(
        "recorded: {}={} in {}; SCSI3 kit: {}\n",
        lifekeeper::SERV_ENV_KEY,
        rec.serv_env
            .value()
            .map(|v| format!("\"{v}\""))
            .unwrap_or_else(|| "(unset)".into()),
        rec.defaults_file.display(),
        rec.scsi3_kit
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "not installed".into())
    );
    for f in &c.findings {
        let mark = if f.problem { "MISMATCH" } else { "ok" };
        s += &format!("{mark}: {}\n", f.what);
        if !f.remedy.is_empty() {
            s += &format!("  fix: {}\n", f.remedy);
        }
    }
    let wiring_errors = w.is_some_and(wiring::Report::has_errors);
    if let Some(w) = w {
        s += &format!(
            "gen/app wiring ({} resource{} using lkhelpers):\n",
            w.tags,
            if w.tags == 1 { "" } else { "s" }
        );
        for f in &w.findings {
            s += &format!("{}: {}\n", f.level.as_str(), f.message());
        }
    }
    s += &format!(
        "result: {}\n",
        if c.undetermined {
            "undetermined"
        } else if c.consistent() && !wiring_errors {
            "consistent"
        } else {
            "inconsistent"
        }
    );
    s
}

/// The wiring check's inputs from the LifeKeeper paths and the environment.
pub(crate) fn wiring_options(rec: &Recorded) -> wiring::Options {
    wiring::Options {
        lkroot: rec.lkroot.clone(),
        defaults: rec.defaults_file.clone(),
        interval: wiring::CheckInterval::from_defaults(&rec.defaults_file, &rec.defaults_text),
        conf_dir: lkh_common::Sources::from_env().conf_dir,
    }
}

/// `check-lifekeeper --json`: every finding, platform and wiring, as one array.
fn check_json(rec: &Recorded, c: &Check, w: &wiring::Report) -> Json {
    let mut all = Vec::new();
    for f in &c.findings {
        let error = f.problem || (c.undetermined && f.subject == Subject::Verdict);
        let (subject, file) = match f.subject {
            Subject::Verdict => ("verdict", None),
            Subject::ServEnv => ("serv_env", Some(rec.defaults_file.display().to_string())),
            Subject::Scsi3Kit => (
                "scsi3_kit",
                rec.scsi3_kit.as_ref().map(|p| p.display().to_string()),
            ),
        };
        let message = if f.remedy.is_empty() {
            f.what.clone()
        } else {
            format!("{}; {}", f.what, f.remedy)
        };
        all.push(
            Json::obj()
                .with("check", format!("platform/{subject}"))
                .with("level", if error { "error" } else { "ok" })
                .with("tag", Json::Null)
                .with("file", file)
                .with("what", f.what.as_str())
                .with("remedy", f.remedy.as_str())
                .with("message", message),
        );
    }
    for f in &w.findings {
        all.push(
            Json::obj()
                .with("check", "wiring")
                .with("level", f.level.as_str())
                .with("tag", f.tag.clone())
                .with("file", f.file.display().to_string())
                .with("what", f.what.as_str())
                .with("remedy", f.remedy.as_str())
                .with("message", f.message()),
        );
    }
    Json::Arr(all)
}

fn cmd_check(lk: &LkArgs, da: &DetectArgs, json: bool) -> Result<Exit, Failure> {
    let d = run_detect(da)?;
    let rec = read_record(lk)?;
    let c = lifekeeper::check(&rec, &d.verdict);
    let w = wiring::check(&wiring_options(&rec));
    for n in &w.notes {
        log::debug!("{n}");
    }
    if json {
        println!("{}", check_json(&rec, &c, &w));
    } else {
        print!("{}", check_text(&d, &rec, &c, Some(&w)));
    }
    for f in c.findings.iter().filter(|f| f.problem || c.undetermined) {
        log::warn!("{}", f.what);
    }
    let errors = w
        .findings
        .iter()
        .filter(|f| f.level == Level::Error)
        .count();
    if errors > 0 {
        log::warn!(
            "{errors} gen/app wiring error{} (see the lines starting with \"error:\")",
            if errors == 1 { "" } else { "s" }
        );
    }
    if c.consistent() && !w.has_errors() {
        Ok(Exit::Ok)
    } else {
        Ok(Exit::Failed)
    }
}

fn cmd_check_cluster(
    sysroot: Option<&std::path::Path>,
    peers: &[PathBuf],
    lifekeeper: bool,
    lkroot: Option<PathBuf>,
    timeout: u64,
    attribute: bool,
    json: bool,
) -> Result<Exit, Failure> {
    if let Some(root) = sysroot
        && !root.is_dir()
    {
        return Err(Failure::usage(format!(
            "{}: --sysroot is not a directory; give the root of a captured tree",
            root.display()
        )));
    }
    if attribute {
        return cmd_cluster::attribute(sysroot);
    }
    let (_, lkroot) = lk_paths(&LkArgs {
        lkroot,
        defaults: None,
    });
    cmd_cluster::check(&cmd_cluster::Ask {
        sysroot,
        lkroot,
        peers,
        lifekeeper,
        timeout: std::time::Duration::from_secs(timeout),
        json,
    })
}

fn cmd_fix(
    lk: &LkArgs,
    da: &DetectArgs,
    dry_run: bool,
    value: Option<&str>,
) -> Result<Exit, Failure> {
    if let Some(v) = value
        && !fix::valid_serv_env_value(v)
    {
        return Err(Failure::usage(format!(
            "--lk-serv-env \"{v}\": not a plain value (1-64 of A-Z a-z 0-9 . _ -); give the value LifeKeeper's setup offers"
        )));
    }
    let d = run_detect(da)?;
    let rec = read_record(lk)?;
    let c = lifekeeper::check(&rec, &d.verdict);
    let platform = d.verdict.platform;
    if let Some(v) = value {
        let names_azure = v.to_ascii_lowercase().contains("azure");
        if names_azure != platform.is_azure() {
            return Err(Failure::usage(format!(
                "--lk-serv-env \"{v}\": {} Azure, but this node is {} ({}); nothing changed",
                if names_azure {
                    "names"
                } else {
                    "does not name"
                },
                platform.as_str(),
                d.verdict.confidence.as_str()
            )));
        }
    }
    print!("{}", check_text(&d, &rec, &c, None));
    if c.consistent() {
        println!("nothing to do");
        return Ok(Exit::Ok);
    }
    if c.undetermined {
        return Err(Failure::failed(
            "the platform cannot be judged surely enough to change LifeKeeper's record; nothing changed (see the findings above)",
        ));
    }

    let serv_env_wrong = c
        .findings
        .iter()
        .any(|f| f.problem && f.subject == Subject::ServEnv);
    let manual: Vec<String> = c
        .findings
        .iter()
        .filter(|f| f.problem && f.subject != Subject::ServEnv)
        .map(|f| f.remedy.clone())
        .collect();
    let steps = fix::plan(
        &rec.defaults_file,
        &rec.serv_env,
        serv_env_wrong,
        value,
        &manual,
        SystemTime::now(),
    );
    let proc_root = da.sysroot.clone().unwrap_or_else(|| PathBuf::from("/"));
    let running = procs::lifekeeper_processes(&proc_root).map_err(|e| {
        Failure::failed(format!(
            "{e}; cannot tell whether LifeKeeper is running, so nothing was changed"
        ))
    })?;
    let leftover = steps.iter().any(|s| matches!(s, fix::Step::Manual(_)));

    println!("plan:");
    for s in &steps {
        println!("  - {s}");
    }
    if !running.is_empty() {
        let list: Vec<String> = running
            .iter()
            .map(|p| format!("{} (pid {})", p.name, p.pid))
            .collect();
        return Err(Failure::failed(format!(
            "LifeKeeper is running ({}); stop it (lkstop) and run fix again; nothing changed",
            list.join(", ")
        )));
    }
    if dry_run {
        println!("dry run: nothing changed");
        return Ok(if leftover { Exit::Failed } else { Exit::Ok });
    }
    let done = fix::apply(&steps).map_err(Failure::failed)?;
    for line in &done {
        println!("done: {line}");
        log::info!("{line}");
    }
    let after = read_record(lk)?;
    let c2 = lifekeeper::check(&after, &d.verdict);
    if c2.consistent() {
        println!("result: consistent");
        Ok(Exit::Ok)
    } else {
        println!("result: manual steps remain (see plan)");
        Ok(Exit::Failed)
    }
}

#[cfg(test)]
#[path = "main_tests.rs"]
mod tests;
