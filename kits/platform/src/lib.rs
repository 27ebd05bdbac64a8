//! Platform detection for LifeKeeper nodes: on-premises Hyper-V or Azure
//! (or something else), with the evidence and how sure we are.
//!
//! Why this exists: on-premises Hyper-V and Azure guests look alike from
//! inside (same DMI vendor/product, same VMBus devices, same CPUID
//! signature, `systemd-detect-virt` says `microsoft` for both), and
//! LifeKeeper's installer can take a Hyper-V guest for Azure, record an
//! Azure `LK_SERV_ENV` and install the Azure-only SCSI3 kit. This crate
//! tells the two apart using what only Azure has (its metadata service and
//! WireServer), and compares the answer with what LifeKeeper recorded.
//!
//! Mechanism only: nothing here prints or exits. The `lkh-platform` binary
//! holds the policy. Other kits ask [`is_azure`] (or [`detect`]).
//!
//! Modules: [`evidence`] (files under a root), [`net`] (bounded HTTP
//! probes), [`cpuid`] (the hypervisor leaves, decoded from the CPU or a
//! captured dump), `sys` (the CPUID instruction, the only `unsafe`),
//! [`classify`] (the rules), [`kvp`] (Hyper-V's guest parameters: the host),
//! [`cluster`] (do the nodes run on different hosts), [`json_in`] (reads other commands'
//! JSON), [`runner`] (other programs, bounded), [`doctor`] (the resources on this node and
//! their kits' status),
//! [`lifekeeper`] (the record and the check), [`wiring`] (the gen/app
//! resources that use lkhelpers), [`procs`] (is LifeKeeper running),
//! [`fix`] (plan and apply the remediation).

pub mod classify;
pub mod cluster;
pub mod cpuid;
pub mod doctor;
pub mod evidence;
pub mod fix;
pub mod json_in;
pub mod kvp;
pub mod lifekeeper;
pub mod net;
pub mod procs;
pub mod runner;
mod sys;
pub mod wiring;

use std::path::PathBuf;
use std::time::Duration;

pub use classify::{AZURE_ASSET_TAG, Classification, Confidence, Evidence, Platform};
pub use cpuid::CpuidHypervisor;

/// How to detect.
#[derive(Debug, Clone)]
pub struct DetectOptions {
    /// Root for file reads; `None` means the live system (`/`), which also
    /// enables the CPUID check. A root may hold a `cpuid -r` dump as
    /// [`CPUID_DUMP`], which then stands in for the instruction.
    pub sysroot: Option<PathBuf>,
    /// Ask Azure's IMDS and WireServer.
    pub network: bool,
    /// Where the network probes go.
    pub targets: net::Targets,
    /// Time allowed for all network probes together.
    pub net_budget: Duration,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            sysroot: None,
            network: true,
            targets: net::Targets::default(),
            net_budget: net::DEFAULT_BUDGET,
        }
    }
}

/// A CPUID register dump (`cpuid -r` output) at the root of a sysroot.
pub const CPUID_DUMP: &str = "cpuid.txt";

/// The verdict together with the evidence behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    pub verdict: Classification,
    pub evidence: Evidence,
}

/// Gathers the evidence and classifies the node. Bounded in time by
/// `opts.net_budget` plus a few file reads.
pub fn detect(opts: &DetectOptions) -> Detection {
    let root = opts.sysroot.clone().unwrap_or_else(|| PathBuf::from("/"));
    let local = evidence::gather(&root);
    let cpuid = match &opts.sysroot {
        None => cpuid::read(&sys::cpuid),
        Some(root) => match evidence::read_text(root, CPUID_DUMP) {
            Ok(Some(text)) => {
                let leaves = cpuid::parse_dump(&text);
                cpuid::read(&|leaf| leaves.iter().find(|(l, _)| *l == leaf).map(|(_, r)| *r))
            }
            _ => None,
        },
    };
    let net = opts
        .network
        .then(|| net::probe(opts.targets, opts.net_budget));
    let evidence = Evidence { local, cpuid, net };
    Detection {
        verdict: classify::classify(&evidence),
        evidence,
    }
}

/// "Are we on Azure?" for other kits: detects live, with the network
/// probes (at most [`net::DEFAULT_BUDGET`]). `Some(true)` only for a
/// confident Azure verdict, `Some(false)` for a confident non-Azure one,
/// `None` when the evidence is only a guess.
pub fn is_azure() -> Option<bool> {
    let d = detect(&DetectOptions::default());
    match d.verdict.confidence {
        Confidence::Guess => None,
        _ => Some(d.verdict.platform.is_azure()),
    }
}
