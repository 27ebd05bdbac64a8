//! The verdict: which platform the evidence points to, how sure that is,
//! and the reasons, in plain words.
//!
//! Each source of evidence makes a claim on its own: VMBus devices (only
//! Hyper-V has them), DMI strings (the vendor table in [`dmi_claim`]),
//! the CPUID signature (with KVM's second leaf behind "Microsoft Hv"),
//! `/sys/hypervisor/type`, the CPU kind (IBM Z is always virtualised), and
//! the `hypervisor` CPU flag (some VM, not which). The platform is the
//! claim of the strongest source present, in that order; the confidence:
//!
//! - **certain** needs two independent sources agreeing and none against;
//! - **likely** is one naming source (or two with one against);
//! - **guess** when nothing names the hypervisor and DMI is absent, when a
//!   bare-metal verdict lacks DMI or the CPU flag, or when sources
//!   disagree and only one is left for the verdict.
//!
//! Any source that disagrees is listed in the reasons and lowers the
//! confidence one step; a verdict with disagreement is never certain.
//!
//! Inside the Hyper-V family only Azure's own services tell Azure from
//! on-premises ([`azure_split`]): IMDS reporting `azEnvironment`
//! "AzureStack" means Azure Stack Hub, any other IMDS answer means Azure,
//! a WireServer-only answer means Azure probably (IMDS may be filtered;
//! old Azure Stack Hub has none). The Azure chassis asset tag alone is only
//! a claim: Hyper-V lets the host admin set any asset tag and Azure Stack
//! Hub carries the same tag. Without VMBus devices the family is capped at
//! likely (DMI "Virtual Machine") or guess (only CPUID or the tag), since
//! KVM and QEMU can show Hyper-V's CPUID signature.
//!
//! A container is reported next to the verdict; the verdict is about the
//! machine the container runs on.
//!
//! The facts follow the published behaviour of systemd-detect-virt,
//! virt-what, cloud-init's ds-identify and crmsh's Azure check (see
//! `/work/shared/docs/peers.md` §5); the code is our own.

use crate::cpuid::{CpuidHypervisor, MICROSOFT_HV};
use crate::evidence::{CpuKind, Dmi, LocalEvidence};
use crate::net::{NetEvidence, ProbeResult};

/// DMI chassis asset tag Azure (and Azure Stack Hub) sets: the ASCII codes
/// of "MSFT AZURE VM".
pub const AZURE_ASSET_TAG: &str = "7783-7084-3265-9085-8269-3286-77";

/// Where this node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    BareMetal,
    /// Hyper-V on premises (including Azure Stack HCI / Azure Local hosts).
    HyperV,
    /// Microsoft Azure public (or sovereign) cloud.
    Azure,
    /// Azure Stack Hub.
    AzureStack,
    Kvm,
    Vmware,
    Xen,
    OtherVm,
}

impl Platform {
    /// The stable name used on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::BareMetal => "bare-metal",
            Platform::HyperV => "hyperv",
            Platform::Azure => "azure",
            Platform::AzureStack => "azure-stack",
            Platform::Kvm => "kvm",
            Platform::Vmware => "vmware",
            Platform::Xen => "xen",
            Platform::OtherVm => "other-vm",
        }
    }

    /// A short human description.
    pub fn describe(self) -> &'static str {
        match self {
            Platform::BareMetal => "physical machine (no hypervisor seen)",
            Platform::HyperV => "on-premises Hyper-V guest",
            Platform::Azure => "Microsoft Azure VM",
            Platform::AzureStack => "Azure Stack Hub VM",
            Platform::Kvm => "KVM/QEMU guest",
            Platform::Vmware => "VMware guest",
            Platform::Xen => "Xen guest",
            Platform::OtherVm => "virtual machine of another kind",
        }
    }

    /// Whether LifeKeeper should treat this node as Azure.
    pub fn is_azure(self) -> bool {
        matches!(self, Platform::Azure)
    }
}

/// How sure the verdict is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Confidence {
    /// Only weak or contradictory signals; do not act on it.
    Guess,
    /// Consistent signals, but one check that could settle it was not made
    /// or could be fooled.
    Likely,
    /// An authoritative signal agrees with the rest.
    Certain,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Guess => "guess",
            Confidence::Likely => "likely",
            Confidence::Certain => "certain",
        }
    }
}

/// All evidence that went into a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub local: LocalEvidence,
    /// `None` when not checked (a sysroot without `cpuid.txt`, or no
    /// x86_64).
    pub cpuid: Option<CpuidHypervisor>,
    /// `None` when network probes were skipped.
    pub net: Option<NetEvidence>,
}

/// What the evidence says the node runs on: the platform, how sure, and why (the detection's
/// conclusion; a kit's health has the `Verdict`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    pub platform: Platform,
    pub confidence: Confidence,
    /// Why, one sentence each, strongest first.
    pub reasons: Vec<String>,
    /// Hyper-V VM generation (1 = BIOS, 2 = UEFI) for the Hyper-V family.
    pub hyperv_generation: Option<u8>,
    /// The container runtime this runs under, if any (the verdict is about
    /// the machine underneath).
    pub container: Option<String>,
}

/// Which kind of evidence a claim comes from, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    Vmbus,
    Dmi,
    Cpuid,
    SysHypervisor,
    CpuKind,
    Flag,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Vmbus => "VMBus",
            Source::Dmi => "DMI",
            Source::Cpuid => "CPUID",
            Source::SysHypervisor => "/sys/hypervisor/type",
            Source::CpuKind => "the CPU kind",
            Source::Flag => "the CPU flag",
        }
    }
}

/// What one source says about the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Says {
    /// Names the platform (`HyperV` stands for the whole Hyper-V family).
    Is(Platform),
    /// A virtual machine, without saying which.
    SomeVm,
    /// No hypervisor.
    NoVm,
}

#[derive(Debug, Clone)]
struct Claim {
    source: Source,
    says: Says,
    reason: String,
}

impl Claim {
    fn new(source: Source, says: Says, reason: impl Into<String>) -> Claim {
        Claim {
            source,
            says,
            reason: reason.into(),
        }
    }

    /// Whether this claim supports `p`; `None` when it neither supports
    /// nor contradicts it (a missing CPU flag on a named VM: kernels
    /// before the flag existed do not show it).
    fn supports(&self, p: Platform) -> Option<bool> {
        match self.says {
            Says::Is(q) => Some(q == p),
            Says::SomeVm => Some(p != Platform::BareMetal),
            Says::NoVm if p == Platform::BareMetal => Some(true),
            Says::NoVm if self.source == Source::Flag => None,
            Says::NoVm => Some(false),
        }
    }
}

/// Decides the platform from the evidence.
pub fn classify(ev: &Evidence) -> Classification {
    let local = &ev.local;
    let dmi = &local.dmi;
    let asset_tag_azure = dmi.chassis_asset_tag.as_deref() == Some(AZURE_ASSET_TAG);
    let claims = claims(ev);

    let named = claims.iter().find(|c| matches!(c.says, Says::Is(_)));
    let platform = match named {
        Some(Claim {
            says: Says::Is(p), ..
        }) => *p,
        _ if asset_tag_azure => Platform::HyperV,
        _ if claims.iter().any(|c| c.says == Says::SomeVm) => Platform::OtherVm,
        _ => Platform::BareMetal,
    };

    let mut reasons = Vec::new();
    let mut agreeing = Vec::new();
    let mut against = Vec::new();
    for c in claims.iter().filter(|c| c.supports(platform) == Some(true)) {
        reasons.push(c.reason.clone());
        agreeing.push(c.source);
    }
    for c in &claims {
        match c.supports(platform) {
            Some(false) => {
                reasons.push(format!("{} (disagrees)", c.reason));
                against.push(c.source.name());
            }
            None => reasons.push(format!(
                "{} (older kernels do not show it, so this does not count against the rest)",
                c.reason
            )),
            Some(true) => {}
        }
    }
    if asset_tag_azure && platform != Platform::HyperV {
        reasons.push(format!(
            "the DMI chassis asset tag is Azure's ({AZURE_ASSET_TAG}) although nothing else here is Hyper-V: a tag set by hand (disagrees)"
        ));
        against.push("the asset tag");
    }

    let (platform, mut confidence, hyperv_generation) = if platform == Platform::HyperV {
        let (p, c) = hyperv_family(ev, &agreeing, asset_tag_azure, &mut reasons);
        let generation = if local.uefi {
            Some(2)
        } else if dmi.is_absent() {
            reasons.push(
                "there is no DMI, so no Hyper-V BIOS or UEFI booted this: the generation does not apply"
                    .into(),
            );
            None
        } else if local.container.is_some() {
            reasons.push(
                "no /sys/firmware/efi, but container runtimes hide it, so the Hyper-V generation is not known"
                    .into(),
            );
            None
        } else {
            Some(1)
        };
        (p, c, generation)
    } else if platform == Platform::BareMetal {
        (platform, bare_metal(ev, &mut reasons), None)
    } else {
        let has_vendor = dmi.sys_vendor.as_deref().is_some_and(|v| !v.is_empty());
        let confidence = if named.is_none() {
            if agreeing.contains(&Source::Dmi) {
                Confidence::Likely
            } else if dmi.is_absent() {
                reasons.push(
                    "nothing names the hypervisor and there is no DMI (no /sys/class/dmi/id) to say which machine this is"
                        .into(),
                );
                Confidence::Guess
            } else if has_vendor {
                reasons.push(format!(
                    "DMI names {}, which this tool does not know as a virtual machine",
                    dmi_names(dmi)
                ));
                Confidence::Likely
            } else {
                reasons.push("nothing names the hypervisor and DMI has no system vendor".into());
                Confidence::Guess
            }
        } else if independent(&agreeing) >= 2 {
            Confidence::Certain
        } else {
            Confidence::Likely
        };
        (platform, confidence, None)
    };

    if !against.is_empty() {
        confidence = match confidence {
            Confidence::Certain => Confidence::Likely,
            _ => Confidence::Guess,
        };
        reasons.push(format!(
            "the evidence disagrees ({} against), so the confidence is lowered to {}",
            against.join(", "),
            confidence.as_str()
        ));
    }
    if let Some(c) = &local.container {
        reasons.push(format!(
            "this runs in a container ({}, per {}); the verdict is about the machine underneath",
            c.kind, c.seen_in
        ));
    }
    Classification {
        platform,
        confidence,
        reasons,
        hyperv_generation,
        container: local.container.as_ref().map(|c| c.kind.clone()),
    }
}

/// How many independent sources agree: the CPU flag is CPUID leaf 1's
/// bit, so with CPUID present the two count once.
fn independent(agreeing: &[Source]) -> usize {
    let both = agreeing.contains(&Source::Cpuid) && agreeing.contains(&Source::Flag);
    agreeing.len() - usize::from(both)
}

/// Every claim the evidence makes, strongest source first.
fn claims(ev: &Evidence) -> Vec<Claim> {
    let local = &ev.local;
    let mut out = Vec::new();
    if let Some(n) = local.vmbus_devices.filter(|n| *n > 0) {
        out.push(Claim::new(
            Source::Vmbus,
            Says::Is(Platform::HyperV),
            format!(
                "the kernel lists {n} VMBus devices; only Hyper-V (on premises or Azure) has VMBus"
            ),
        ));
    }
    if let Some((says, reason)) = dmi_claim(&local.dmi) {
        out.push(Claim::new(Source::Dmi, says, reason));
    }
    if let Some(c) = &ev.cpuid {
        out.push(cpuid_claim(c));
    }
    match local.sys_hypervisor_type.as_deref() {
        Some("xen") => out.push(Claim::new(
            Source::SysHypervisor,
            Says::Is(Platform::Xen),
            "/sys/hypervisor/type is \"xen\"",
        )),
        Some(t) => out.push(Claim::new(
            Source::SysHypervisor,
            Says::SomeVm,
            format!("/sys/hypervisor/type is \"{t}\""),
        )),
        None => {}
    }
    match local.cpu_kind {
        CpuKind::S390 => out.push(Claim::new(
            Source::CpuKind,
            Says::Is(Platform::OtherVm),
            "the CPU is IBM Z, where Linux always runs in a logical partition (PR/SM), under z/VM or under KVM",
        )),
        CpuKind::Power { architected: true } => out.push(Claim::new(
            Source::CpuKind,
            Says::SomeVm,
            "the POWER CPU runs in an architected (compatibility) mode, which only a PAPR hypervisor (PowerVM or KVM) sets",
        )),
        _ => {}
    }
    match local.cpuinfo_hypervisor_flag {
        Some(true) => out.push(Claim::new(
            Source::Flag,
            Says::SomeVm,
            "the CPU reports the hypervisor flag",
        )),
        Some(false) => out.push(Claim::new(
            Source::Flag,
            Says::NoVm,
            "the CPU's flags line has no hypervisor flag",
        )),
        None => {}
    }
    out
}

/// Hyper-V, Azure or Azure Stack Hub, and how sure, for the Hyper-V family.
fn hyperv_family(
    ev: &Evidence,
    agreeing: &[Source],
    asset_tag_azure: bool,
    reasons: &mut Vec<String>,
) -> (Platform, Confidence) {
    let local = &ev.local;
    let cap = if agreeing.contains(&Source::Vmbus) {
        Confidence::Certain
    } else if agreeing.contains(&Source::Dmi) {
        reasons.push(
            "no VMBus devices are listed (the hv_vmbus driver is not loaded, or the capture has no /sys/bus/vmbus), so this rests on DMI"
                .into(),
        );
        Confidence::Likely
    } else {
        reasons.push(
            "no VMBus devices are listed and DMI does not say \"Virtual Machine\": CPUID's \"Microsoft Hv\" and the asset tag can both be imitated"
                .into(),
        );
        Confidence::Guess
    };
    let wsl = local
        .kernel_release
        .as_deref()
        .filter(|r| contains_ci(r, "microsoft") && contains_ci(r, "wsl"));
    let cap = match wsl {
        Some(r) => {
            reasons.push(format!(
                "the kernel \"{r}\" is WSL2's: a utility VM on a Windows machine's Hyper-V, not a server guest"
            ));
            cap.min(Confidence::Likely)
        }
        None => cap,
    };
    let (p, c) = azure_split(ev, asset_tag_azure, reasons);
    (p, c.min(cap))
}

/// Confidence for "no hypervisor seen", with what is missing said.
fn bare_metal(ev: &Evidence, reasons: &mut Vec<String>) -> Confidence {
    let local = &ev.local;
    let cpu_says_none = local.cpuinfo_hypervisor_flag == Some(false)
        || ev.cpuid.as_ref().is_some_and(|c| !c.present);
    if local.cpuinfo_hypervisor_flag.is_none() {
        reasons.push(match local.cpu_kind {
            CpuKind::Unknown => "there is no /proc/cpuinfo (or it is empty), so the CPU's hypervisor flag is not known".into(),
            _ => "the CPU information has no flags line (not an x86 CPU), so it cannot show a hypervisor".to_string(),
        });
    }
    let vendor = local.dmi.sys_vendor.as_deref().filter(|v| !v.is_empty());
    if dmi_claim(&local.dmi).is_some() {
        // The DMI claim (an EC2 bare-metal instance) already said it.
    } else if vendor.is_some() {
        reasons.push(format!(
            "DMI names {}, which is not a virtual machine this tool knows",
            dmi_names(&local.dmi)
        ));
    } else if local.dmi.is_absent() {
        reasons.push("there is no DMI (no /sys/class/dmi/id), so nothing names the machine".into());
    } else {
        reasons.push("DMI has no system vendor, so nothing names the machine".into());
    }
    reasons.push("a hypervisor can hide itself, so this is never certain".into());
    if cpu_says_none && vendor.is_some() {
        Confidence::Likely
    } else {
        Confidence::Guess
    }
}

/// `"vendor" / "product"` as DMI gives them, for reasons.
fn dmi_names(dmi: &Dmi) -> String {
    let v = dmi.sys_vendor.as_deref().unwrap_or("");
    match dmi.product_name.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => format!("\"{v}\" / \"{p}\""),
        None => format!("\"{v}\""),
    }
}

/// Azure, Azure Stack Hub or on-premises Hyper-V, for a Hyper-V family VM.
fn azure_split(
    ev: &Evidence,
    asset_tag_azure: bool,
    reasons: &mut Vec<String>,
) -> (Platform, Confidence) {
    match ev.local.dmi.chassis_asset_tag.as_deref() {
        _ if asset_tag_azure => reasons.push(format!(
            "the DMI chassis asset tag is Azure's ({AZURE_ASSET_TAG}); Azure Stack Hub carries it too and a Hyper-V admin can set it, so it is a claim, not proof"
        )),
        None => reasons.push(
            "DMI has no chassis asset tag, so Azure's tag (every Azure VM carries it) is not there".into(),
        ),
        Some("") => reasons.push(
            "the DMI chassis asset tag is empty, so Azure's tag (every Azure VM carries it) is not there".into(),
        ),
        Some(_) => reasons.push(
            "the DMI chassis asset tag is not Azure's; every Azure VM carries Azure's".into(),
        ),
    }
    let Some(net) = &ev.net else {
        reasons.push(
            "the network check was skipped (--no-network), so Azure's services were not asked"
                .into(),
        );
        return if asset_tag_azure {
            (Platform::Azure, Confidence::Guess)
        } else {
            (Platform::HyperV, Confidence::Likely)
        };
    };
    match &net.imds {
        ProbeResult::Answered {
            status,
            az_environment,
        } if (200..300).contains(status) => {
            let env = az_environment.as_deref().unwrap_or("");
            if env.to_ascii_lowercase().contains("azurestack") {
                reasons.push(format!(
                    "the instance metadata service answered with azEnvironment \"{env}\", which is Azure Stack Hub"
                ));
                return (Platform::AzureStack, Confidence::Certain);
            }
            reasons.push(if env.is_empty() {
                "the Azure instance metadata service answered".to_string()
            } else {
                format!("the Azure instance metadata service answered (azEnvironment \"{env}\")")
            });
            let conf = if asset_tag_azure {
                Confidence::Certain
            } else {
                Confidence::Likely
            };
            return (Platform::Azure, conf);
        }
        ProbeResult::Answered { status, .. } => reasons.push(format!(
            "something at the instance metadata address answered HTTP {status}, which Azure's service does not for this request"
        )),
        ProbeResult::NoAnswer(why) => {
            reasons.push(format!("no instance metadata service answered ({why})"))
        }
    }
    if net.wireserver.ok() {
        reasons.push(
            "Azure's WireServer answered; IMDS may be filtered, or this is an Azure Stack Hub older than 1.2108 (no IMDS)"
                .into(),
        );
        return (Platform::Azure, Confidence::Likely);
    }
    if let ProbeResult::NoAnswer(why) = &net.wireserver {
        reasons.push(format!("Azure's WireServer did not answer ({why})"));
    }
    if asset_tag_azure {
        reasons.push(
            "the asset tag claims Azure but neither Azure service answered: an on-premises host with the tag set by hand, or an Azure VM whose firewall blocks both"
                .into(),
        );
        (Platform::HyperV, Confidence::Likely)
    } else {
        (Platform::HyperV, Confidence::Certain)
    }
}

fn starts_ci(v: Option<&str>, prefix: &str) -> bool {
    v.is_some_and(|s| {
        s.len() >= prefix.len()
            && s.is_char_boundary(prefix.len())
            && s[..prefix.len()].eq_ignore_ascii_case(prefix)
    })
}

fn contains_ci(v: &str, needle: &str) -> bool {
    v.to_ascii_lowercase()
        .contains(&needle.to_ascii_lowercase())
}

/// Whether `word` is one of the alphanumeric words of `v` ("Xen" is in
/// "Xen" and "Xen HVM", not in "XENTA").
fn has_word(v: Option<&str>, word: &str) -> bool {
    v.is_some_and(|s| {
        s.split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| w.eq_ignore_ascii_case(word))
    })
}

/// What the DMI strings say, with the reason; first match wins, so the
/// specific products (clouds, KVM distributions) come before the generic
/// QEMU/Bochs strings they often carry too.
fn dmi_claim(dmi: &Dmi) -> Option<(Says, String)> {
    let sv = dmi.sys_vendor.as_deref();
    let pn = dmi.product_name.as_deref();
    let pv = dmi.product_version.as_deref();
    let cv = dmi.chassis_vendor.as_deref();
    let bv = dmi.bios_vendor.as_deref();
    let bdv = dmi.board_vendor.as_deref();
    let names = dmi_names(dmi);
    let is = |p: Platform, what: &str| Some((Says::Is(p), format!("DMI says {names}: {what}")));
    let field_is = |p: Platform, field: &str, value: Option<&str>, what: &str| {
        let value = value.unwrap_or("");
        Some((Says::Is(p), format!("DMI {field} is \"{value}\": {what}")))
    };

    if starts_ci(sv, "Microsoft Corporation") && starts_ci(pn, "Virtual Machine") {
        return is(
            Platform::HyperV,
            "a Hyper-V virtual machine, which on-premises Hyper-V and Azure both report",
        );
    }
    if starts_ci(pv, "Hyper-V") {
        return field_is(
            Platform::HyperV,
            "product_version",
            pv,
            "Hyper-V's firmware",
        );
    }
    if starts_ci(sv, "Amazon EC2") {
        return if pn.is_some_and(|p| p.ends_with(".metal")) {
            is(
                Platform::BareMetal,
                "an EC2 bare-metal instance, with no hypervisor",
            )
        } else {
            is(
                Platform::Kvm,
                "an Amazon EC2 instance on the Nitro hypervisor, which is KVM-based",
            )
        };
    }
    if pn.is_some_and(|p| contains_ci(p, "Google Compute Engine")) {
        return is(
            Platform::Kvm,
            "a Google Compute Engine VM, which is KVM-based",
        );
    }
    if starts_ci(sv, "Alibaba Cloud") || starts_ci(pn, "Alibaba Cloud ECS") {
        return is(
            Platform::Kvm,
            "an Alibaba Cloud ECS instance, which is KVM-based",
        );
    }
    if has_word(pn, "AHV") {
        return is(Platform::Kvm, "Nutanix AHV, which is KVM-based");
    }
    if starts_ci(pn, "RHEV Hypervisor") {
        return is(Platform::Kvm, "Red Hat Virtualization (RHEV), which is KVM");
    }
    if starts_ci(sv, "oVirt") || starts_ci(pn, "oVirt") {
        return is(Platform::Kvm, "oVirt, which is KVM");
    }
    if starts_ci(sv, "OpenStack") || pn.is_some_and(|p| contains_ci(p, "OpenStack")) {
        return Some((
            Says::SomeVm,
            format!(
                "DMI says {names}: an OpenStack instance; DMI does not say which hypervisor runs it"
            ),
        ));
    }
    if starts_ci(sv, "UpCloud") {
        return is(Platform::Kvm, "an UpCloud server, which is KVM-based");
    }
    if starts_ci(sv, "KubeVirt") || starts_ci(pn, "KubeVirt") {
        return is(Platform::Kvm, "a KubeVirt VM, which is KVM");
    }
    if has_word(pn, "KVM") {
        return field_is(Platform::Kvm, "product_name", pn, "a KVM guest");
    }
    for (field, value) in [
        ("sys_vendor", sv),
        ("chassis_vendor", cv),
        ("board_vendor", bdv),
    ] {
        if starts_ci(value, "QEMU") {
            return field_is(Platform::Kvm, field, value, "a KVM/QEMU guest");
        }
    }
    if starts_ci(pn, "Standard PC (") {
        return field_is(
            Platform::Kvm,
            "product_name",
            pn,
            "QEMU's machine type, a KVM/QEMU guest",
        );
    }
    for (field, value) in [
        ("sys_vendor", sv),
        ("product_name", pn),
        ("chassis_vendor", cv),
        ("bios_vendor", bv),
    ] {
        if starts_ci(value, "Bochs") {
            return field_is(
                Platform::Kvm,
                field,
                value,
                "the SMBIOS strings of QEMU's older firmware, a KVM/QEMU guest (the Bochs emulator sets them too)",
            );
        }
    }
    if starts_ci(sv, "VMware") || starts_ci(pn, "VMware") {
        return is(Platform::Vmware, "a VMware virtual machine");
    }
    if has_word(sv, "Xen") || has_word(bv, "Xen") || starts_ci(pn, "HVM domU") {
        return is(Platform::Xen, "a Xen guest");
    }
    let any = |needle: &str| {
        [sv, pn, bv]
            .into_iter()
            .flatten()
            .any(|v| contains_ci(v, needle))
    };
    if any("innotek") || any("VirtualBox") {
        return is(Platform::OtherVm, "an Oracle VirtualBox virtual machine");
    }
    if any("Parallels") {
        return is(Platform::OtherVm, "a Parallels virtual machine");
    }
    if starts_ci(pn, "BHYVE") || starts_ci(bv, "BHYVE") {
        return field_is(
            Platform::OtherVm,
            "product_name",
            pn,
            "a bhyve (FreeBSD) virtual machine",
        );
    }
    None
}

/// The claim the CPUID signatures make.
fn cpuid_claim(c: &CpuidHypervisor) -> Claim {
    let claim = |says, reason: String| Claim::new(Source::Cpuid, says, reason);
    let Some(vendor) = c.vendor.as_deref() else {
        return if c.present {
            claim(
                Says::SomeVm,
                "the CPUID hypervisor bit is set, but no signature names the hypervisor".into(),
            )
        } else {
            claim(Says::NoVm, "CPUID reports no hypervisor".into())
        };
    };
    if vendor == MICROSOFT_HV {
        if let Some(next) = c.vendor_next.as_deref() {
            let (p, name) = signature_platform(next);
            return claim(
                Says::Is(p),
                format!(
                    "CPUID leaf 0x40000000 says \"Microsoft Hv\" but leaf 0x40000100 says \"{next}\": {name} offering Hyper-V enlightenments, not Hyper-V"
                ),
            );
        }
        return claim(
            Says::Is(Platform::HyperV),
            "CPUID names the hypervisor \"Microsoft Hv\" (Hyper-V's signature; KVM and QEMU show it too when they offer Hyper-V enlightenments)".into(),
        );
    }
    let (p, name) = signature_platform(vendor);
    claim(
        Says::Is(p),
        format!("CPUID names the hypervisor \"{vendor}\": {name}"),
    )
}

/// The platform and a name for a CPUID hypervisor signature.
fn signature_platform(sig: &str) -> (Platform, &'static str) {
    match sig {
        "KVMKVMKVM" | "Linux KVM Hv" => (Platform::Kvm, "KVM"),
        "TCGTCGTCGTCG" => (Platform::Kvm, "QEMU without KVM (TCG)"),
        "LKVMLKVMLKVM" => (Platform::Kvm, "kvmtool (KVM)"),
        "VMwareVMware" => (Platform::Vmware, "VMware"),
        "XenVMMXenVMM" => (Platform::Xen, "Xen"),
        MICROSOFT_HV => (Platform::HyperV, "Hyper-V"),
        "bhyve bhyve " => (Platform::OtherVm, "bhyve"),
        "VBoxVBoxVBox" => (Platform::OtherVm, "VirtualBox"),
        " lrpepyh  vr" | "prl hyperv  " => (Platform::OtherVm, "Parallels"),
        "OpenBSDVMM58" => (Platform::OtherVm, "OpenBSD vmm"),
        "ACRNACRNACRN" => (Platform::OtherVm, "ACRN"),
        _ => (Platform::OtherVm, "a hypervisor this tool does not know"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::Dmi;

    fn ev(dmi: Dmi, cpuid: Option<&str>) -> Evidence {
        ev2(dmi, cpuid, None)
    }

    /// Evidence with CPUID leaf 0x40000000 `cpuid` and leaf 0x40000100
    /// `next`, the CPU flag matching, no VMBus.
    fn ev2(dmi: Dmi, cpuid: Option<&str>, next: Option<&str>) -> Evidence {
        Evidence {
            local: LocalEvidence {
                dmi,
                cpuinfo_hypervisor_flag: Some(cpuid.is_some()),
                cpu_kind: CpuKind::X86,
                ..LocalEvidence::default()
            },
            cpuid: Some(CpuidHypervisor {
                present: cpuid.is_some(),
                vendor: cpuid.map(str::to_string),
                vendor_next: next.map(str::to_string),
            }),
            net: None,
        }
    }

    fn nutanix() -> Dmi {
        Dmi {
            sys_vendor: Some("Nutanix".into()),
            product_name: Some("AHV".into()),
            chassis_vendor: Some("Red Hat".into()),
            bios_vendor: Some("SeaBIOS".into()),
            ..Dmi::default()
        }
    }

    fn ms_vm() -> Dmi {
        Dmi {
            sys_vendor: Some("Microsoft Corporation".into()),
            product_name: Some("Virtual Machine".into()),
            chassis_asset_tag: Some("2188-6071-1573-2386-8403-4529-56".into()),
            ..Dmi::default()
        }
    }

    fn timed_out() -> NetEvidence {
        NetEvidence {
            imds: ProbeResult::NoAnswer("timed out".into()),
            wireserver: ProbeResult::NoAnswer("timed out".into()),
        }
    }

    #[test]
    fn nutanix_with_hyperv_enlightenments_is_kvm() {
        let mut e = ev2(nutanix(), Some("Microsoft Hv"), Some("KVMKVMKVM"));
        e.net = Some(timed_out());
        let v = classify(&e);
        assert_eq!(v.platform, Platform::Kvm, "{v:?}");
        assert_eq!(v.confidence, Confidence::Certain, "{v:?}");
        assert!(v.reasons.iter().any(|r| r.contains("0x40000100")), "{v:?}");
    }

    #[test]
    fn microsoft_hv_without_the_second_leaf_disagrees_with_kvm_dmi() {
        let mut e = ev2(nutanix(), Some("Microsoft Hv"), None);
        e.net = Some(timed_out());
        let v = classify(&e);
        assert_eq!(v.platform, Platform::Kvm, "{v:?}");
        assert_eq!(v.confidence, Confidence::Likely, "{v:?}");
        assert!(
            v.reasons
                .iter()
                .any(|r| r.contains("Microsoft Hv") && r.contains("(disagrees)")),
            "{v:?}"
        );
    }

    #[test]
    fn microsoft_hv_alone_without_vmbus_is_only_a_guess_even_when_azure_is_silent() {
        let mut e = ev2(Dmi::default(), Some("Microsoft Hv"), None);
        e.net = Some(timed_out());
        let v = classify(&e);
        assert_eq!(v.platform, Platform::HyperV);
        assert_eq!(v.confidence, Confidence::Guess, "{v:?}");
    }

    #[test]
    fn hyperv_is_certain_only_with_vmbus() {
        let mut e = ev2(ms_vm(), Some("Microsoft Hv"), None);
        e.net = Some(timed_out());
        let v = classify(&e);
        assert_eq!(
            (v.platform, v.confidence),
            (Platform::HyperV, Confidence::Likely)
        );
        e.local.vmbus_devices = Some(11);
        let v = classify(&e);
        assert_eq!(
            (v.platform, v.confidence),
            (Platform::HyperV, Confidence::Certain)
        );
    }

    #[test]
    fn vmbus_with_kvm_behind_microsoft_hv_is_never_certain() {
        let mut e = ev2(ms_vm(), Some("Microsoft Hv"), Some("KVMKVMKVM"));
        e.local.vmbus_devices = Some(3);
        e.net = Some(timed_out());
        let v = classify(&e);
        assert_eq!(v.platform, Platform::HyperV);
        assert_eq!(v.confidence, Confidence::Likely, "{v:?}");
    }

    #[test]
    fn bochs_dmi_with_kvm_cpuid_is_kvm_and_says_so() {
        let dmi = Dmi {
            sys_vendor: Some("Bochs".into()),
            product_name: Some("Bochs".into()),
            ..Dmi::default()
        };
        let v = classify(&ev(dmi.clone(), Some("KVMKVMKVM")));
        assert_eq!(
            (v.platform, v.confidence),
            (Platform::Kvm, Confidence::Certain)
        );
        assert!(v.reasons.iter().any(|r| r.contains("CPUID")), "{v:?}");
        let v = classify(&ev(dmi, Some("VMwareVMware")));
        assert_eq!(
            (v.platform, v.confidence),
            (Platform::Kvm, Confidence::Likely)
        );
        assert!(
            v.reasons
                .iter()
                .any(|r| r.contains("VMwareVMware") && r.contains("disagrees")),
            "{v:?}"
        );
    }

    #[test]
    fn words_not_prefixes() {
        let xenta = Dmi {
            sys_vendor: Some("XENTA".into()),
            product_name: Some("PC".into()),
            ..Dmi::default()
        };
        assert_eq!(classify(&ev(xenta, None)).platform, Platform::BareMetal);
        let chromebook = Dmi {
            sys_vendor: Some("Google".into()),
            product_name: Some("Eve".into()),
            ..Dmi::default()
        };
        let v = classify(&ev(chromebook, None));
        assert_eq!(
            (v.platform, v.confidence),
            (Platform::BareMetal, Confidence::Likely)
        );
        assert!(
            v.reasons.iter().all(|r| !r.contains("Compute Engine")),
            "{v:?}"
        );
    }

    #[test]
    fn an_unknown_vendor_is_not_called_a_hardware_vendor() {
        let dmi = Dmi {
            sys_vendor: Some("Acme Virtual".into()),
            ..Dmi::default()
        };
        let v = classify(&ev(dmi, Some("AcmeAcmeAcme")));
        assert_eq!(v.platform, Platform::OtherVm);
        assert!(
            v.reasons.iter().all(|r| !r.contains("hardware vendor")),
            "{v:?}"
        );
    }

    #[test]
    fn a_container_is_reported_and_the_machine_still_classified() {
        let mut e = ev2(ms_vm(), Some("Microsoft Hv"), None);
        e.local.vmbus_devices = Some(11);
        e.local.container = Some(crate::evidence::Container {
            kind: "docker".into(),
            seen_in: "/.dockerenv".into(),
        });
        let v = classify(&e);
        assert_eq!(v.platform, Platform::HyperV);
        assert_eq!(v.container.as_deref(), Some("docker"));
        assert_eq!(v.hyperv_generation, None, "a container hides /sys/firmware");
        assert!(
            v.reasons.iter().any(|r| r.contains("container (docker")),
            "{v:?}"
        );
    }

    #[test]
    fn qemu_with_hyperv_enlightenments_is_kvm() {
        let dmi = Dmi {
            sys_vendor: Some("QEMU".into()),
            product_name: Some("Standard PC (i440FX + PIIX, 1996)".into()),
            ..Dmi::default()
        };
        let v = classify(&ev(dmi.clone(), Some("Microsoft Hv")));
        assert_eq!(v.platform, Platform::Kvm);
        assert_eq!(v.confidence, Confidence::Likely, "CPUID disagrees: {v:?}");
        let v = classify(&ev2(dmi, Some("Microsoft Hv"), Some("KVMKVMKVM")));
        assert_eq!(v.platform, Platform::Kvm);
        assert_eq!(v.confidence, Confidence::Certain);
    }

    #[test]
    fn cpuid_microsoft_alone_is_hyperv_family_but_a_guess() {
        let v = classify(&ev(Dmi::default(), Some("Microsoft Hv")));
        assert_eq!(v.platform, Platform::HyperV);
        assert_eq!(v.confidence, Confidence::Guess);
    }

    #[test]
    fn unknown_cpuid_vendor_is_other_vm() {
        let v = classify(&ev(Dmi::default(), Some("bhyve bhyve ")));
        assert_eq!(v.platform, Platform::OtherVm);
    }

    #[test]
    fn no_hypervisor_bit_and_a_hardware_vendor_is_bare_metal() {
        let dmi = Dmi {
            sys_vendor: Some("HPE".into()),
            ..Dmi::default()
        };
        let v = classify(&ev(dmi, None));
        assert_eq!(v.platform, Platform::BareMetal);
        assert_eq!(v.confidence, Confidence::Likely);
    }
}
