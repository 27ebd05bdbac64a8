//! The verdict: which platform the evidence points to, how sure that is,
//! and the reasons, in plain words.
//!
//! Rules, strongest signal first:
//! 1. Hyper-V family (VMBus devices, DMI "Microsoft Corporation"/"Virtual
//!    Machine", a "Hyper-V" product version, or CPUID "Microsoft Hv"). Inside
//!    the family only Azure's own services tell Azure from on-premises:
//!    IMDS reporting `azEnvironment` "AzureStack" means Azure Stack Hub,
//!    any other IMDS answer means Azure, a WireServer-only answer means
//!    Azure probably (IMDS may be filtered; old Azure Stack Hub has none).
//!    The Azure chassis asset tag alone is only a claim: Hyper-V lets the
//!    host admin set any asset tag and Azure Stack Hub carries the same tag.
//! 2. Other hypervisors by DMI vendor strings, CPUID signature and
//!    `/sys/hypervisor/type`.
//! 3. No hypervisor signal at all: bare metal (a hypervisor can hide
//!    itself, so never "certain").
//!
//! The reasoning follows the published behaviour of systemd-detect-virt,
//! cloud-init's ds-identify and crmsh's Azure check (see
//! `/work/shared/docs/peers.md` §5); the code is our own.

use crate::evidence::LocalEvidence;
use crate::net::{NetEvidence, ProbeResult};
use crate::sys::CpuidHypervisor;

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
    /// `None` when not checked (inspecting a sysroot, or no x86_64).
    pub cpuid: Option<CpuidHypervisor>,
    /// `None` when network probes were skipped.
    pub net: Option<NetEvidence>,
}

/// The verdict with its reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub platform: Platform,
    pub confidence: Confidence,
    /// Why, one sentence each, strongest first.
    pub reasons: Vec<String>,
    /// Hyper-V VM generation (1 = BIOS, 2 = UEFI) for the Hyper-V family.
    pub hyperv_generation: Option<u8>,
}

fn has_prefix_ci(v: Option<&str>, prefix: &str) -> bool {
    v.is_some_and(|s| {
        s.to_ascii_lowercase()
            .starts_with(&prefix.to_ascii_lowercase())
    })
}

fn contains_ci(v: Option<&str>, needle: &str) -> bool {
    v.is_some_and(|s| {
        s.to_ascii_lowercase()
            .contains(&needle.to_ascii_lowercase())
    })
}

/// Decides the platform from the evidence.
pub fn classify(ev: &Evidence) -> Verdict {
    let dmi = &ev.local.dmi;
    let mut reasons = Vec::new();
    let cpuid_vendor = ev.cpuid.as_ref().and_then(|c| c.vendor.as_deref());
    let asset_tag_azure = dmi.chassis_asset_tag.as_deref() == Some(AZURE_ASSET_TAG);

    // ---- Hyper-V family ----
    let vmbus = ev.local.vmbus_devices.is_some_and(|n| n > 0);
    let dmi_ms_vm = has_prefix_ci(dmi.sys_vendor.as_deref(), "Microsoft Corporation")
        && has_prefix_ci(dmi.product_name.as_deref(), "Virtual Machine");
    let dmi_hyperv_version = has_prefix_ci(dmi.product_version.as_deref(), "Hyper-V");
    let cpuid_ms = cpuid_vendor == Some("Microsoft Hv");
    let other_dmi_hypervisor = other_by_dmi(ev).is_some();
    let hyperv_family = vmbus
        || dmi_ms_vm
        || dmi_hyperv_version
        || asset_tag_azure
        || (cpuid_ms && !other_dmi_hypervisor);

    if hyperv_family {
        if vmbus {
            reasons.push(format!(
                "the kernel lists {} VMBus devices, so the host is Hyper-V (on premises or Azure)",
                ev.local.vmbus_devices.unwrap_or(0)
            ));
        }
        if dmi_ms_vm {
            reasons.push(
                "DMI says \"Microsoft Corporation\" / \"Virtual Machine\", which on-premises Hyper-V and Azure both report"
                    .into(),
            );
        }
        if cpuid_ms {
            reasons.push("CPUID names the hypervisor \"Microsoft Hv\" (Hyper-V family only; QEMU can imitate it)".into());
        }
        let generation = Some(if ev.local.uefi { 2 } else { 1 });
        let (platform, confidence) = azure_split(ev, asset_tag_azure, &mut reasons);
        return Verdict {
            platform,
            confidence,
            reasons,
            hyperv_generation: generation,
        };
    }

    // ---- other hypervisors ----
    let by_dmi = other_by_dmi(ev);
    let by_cpuid = cpuid_vendor.and_then(platform_from_cpuid);
    let flag = ev.local.cpuinfo_hypervisor_flag == Some(true)
        || ev.cpuid.as_ref().is_some_and(|c| c.present);
    match (by_dmi, by_cpuid) {
        (Some((p, why)), c) => {
            reasons.push(why);
            let confidence = if c == Some(p) {
                reasons.push(format!("CPUID agrees (\"{}\")", cpuid_vendor.unwrap_or("")));
                Confidence::Certain
            } else if flag {
                reasons.push("the CPU reports the hypervisor flag".into());
                Confidence::Certain
            } else {
                Confidence::Likely
            };
            return Verdict {
                platform: p,
                confidence,
                reasons,
                hyperv_generation: None,
            };
        }
        (None, Some(p)) => {
            reasons.push(format!(
                "CPUID names the hypervisor \"{}\" but DMI does not say which product",
                cpuid_vendor.unwrap_or("")
            ));
            return Verdict {
                platform: p,
                confidence: Confidence::Likely,
                reasons,
                hyperv_generation: None,
            };
        }
        (None, None) => {}
    }
    if flag {
        reasons.push(match cpuid_vendor {
            Some(v) => format!("the CPU reports a hypervisor (\"{v}\") this tool does not know"),
            None => "the CPU reports the hypervisor flag, but nothing names the hypervisor".into(),
        });
        return Verdict {
            platform: Platform::OtherVm,
            confidence: Confidence::Likely,
            reasons,
            hyperv_generation: None,
        };
    }

    // ---- no hypervisor seen ----
    let mut confidence = Confidence::Likely;
    match ev.local.cpuinfo_hypervisor_flag {
        Some(false) => reasons.push("the CPU does not report the hypervisor flag".into()),
        _ if ev.cpuid.as_ref().is_some_and(|c| !c.present) => {
            reasons.push("CPUID reports no hypervisor".into())
        }
        _ => {
            reasons.push("no CPU information was available".into());
            confidence = Confidence::Guess;
        }
    }
    match dmi.sys_vendor.as_deref() {
        Some(v) if !v.is_empty() => reasons.push(format!(
            "DMI names a hardware vendor (\"{v}\") that is not a hypervisor"
        )),
        _ => {
            reasons.push("DMI has no system vendor".into());
            confidence = Confidence::Guess;
        }
    }
    reasons.push("a hypervisor can hide itself, so this is never certain".into());
    Verdict {
        platform: Platform::BareMetal,
        confidence,
        reasons,
        hyperv_generation: None,
    }
}

/// Azure, Azure Stack Hub or on-premises Hyper-V, for a Hyper-V family VM.
fn azure_split(
    ev: &Evidence,
    asset_tag_azure: bool,
    reasons: &mut Vec<String>,
) -> (Platform, Confidence) {
    if asset_tag_azure {
        reasons.push(format!(
            "the DMI chassis asset tag is Azure's ({AZURE_ASSET_TAG}); Azure Stack Hub carries it too and a Hyper-V admin can set it, so it is a claim, not proof"
        ));
    } else {
        reasons.push("the DMI chassis asset tag is not Azure's; every Azure VM carries it".into());
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

/// Non-Microsoft hypervisors recognised by DMI strings or sysfs.
fn other_by_dmi(ev: &Evidence) -> Option<(Platform, String)> {
    let dmi = &ev.local.dmi;
    let vendor = dmi.sys_vendor.as_deref();
    let product = dmi.product_name.as_deref();
    let bios = dmi.bios_vendor.as_deref();
    let said = |field: &str, v: Option<&str>| format!("DMI {field} is \"{}\"", v.unwrap_or(""));
    if has_prefix_ci(vendor, "QEMU")
        || has_prefix_ci(product, "KVM")
        || has_prefix_ci(vendor, "Red Hat") && has_prefix_ci(product, "KVM")
    {
        let field = if has_prefix_ci(vendor, "QEMU") {
            ("sys_vendor", vendor)
        } else {
            ("product_name", product)
        };
        return Some((
            Platform::Kvm,
            format!("{}, a KVM/QEMU machine", said(field.0, field.1)),
        ));
    }
    if has_prefix_ci(vendor, "VMware") || has_prefix_ci(product, "VMware") {
        return Some((
            Platform::Vmware,
            format!("{}, a VMware machine", said("sys_vendor", vendor)),
        ));
    }
    if has_prefix_ci(vendor, "Xen")
        || has_prefix_ci(product, "HVM domU")
        || has_prefix_ci(bios, "Xen")
    {
        return Some((
            Platform::Xen,
            format!("{}, a Xen guest", said("sys_vendor", vendor)),
        ));
    }
    if ev.local.sys_hypervisor_type.as_deref() == Some("xen") {
        return Some((Platform::Xen, "/sys/hypervisor/type is \"xen\"".into()));
    }
    for (needle, what) in [
        ("innotek", "VirtualBox"),
        ("VirtualBox", "VirtualBox"),
        ("Parallels", "Parallels"),
        ("Amazon EC2", "Amazon EC2"),
        ("Google", "Google Compute Engine"),
        ("OpenStack", "OpenStack"),
        ("Bochs", "Bochs"),
    ] {
        if contains_ci(vendor, needle) || contains_ci(product, needle) {
            return Some((
                Platform::OtherVm,
                format!("{}, a {what} machine", said("sys_vendor", vendor)),
            ));
        }
    }
    None
}

fn platform_from_cpuid(vendor: &str) -> Option<Platform> {
    match vendor {
        "KVMKVMKVM" | "Linux KVM Hv" | "TCGTCGTCGTCG" => Some(Platform::Kvm),
        "VMwareVMware" => Some(Platform::Vmware),
        "XenVMMXenVMM" => Some(Platform::Xen),
        "Microsoft Hv" => Some(Platform::HyperV),
        "" => None,
        _ => Some(Platform::OtherVm),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::Dmi;

    fn ev(dmi: Dmi, cpuid: Option<&str>) -> Evidence {
        Evidence {
            local: LocalEvidence {
                dmi,
                cpuinfo_hypervisor_flag: Some(cpuid.is_some()),
                ..LocalEvidence::default()
            },
            cpuid: Some(CpuidHypervisor {
                present: cpuid.is_some(),
                vendor: cpuid.map(str::to_string),
            }),
            net: None,
        }
    }

    #[test]
    fn qemu_with_hyperv_enlightenments_is_kvm() {
        let dmi = Dmi {
            sys_vendor: Some("QEMU".into()),
            product_name: Some("Standard PC (i440FX + PIIX, 1996)".into()),
            ..Dmi::default()
        };
        let v = classify(&ev(dmi, Some("Microsoft Hv")));
        assert_eq!(v.platform, Platform::Kvm);
        assert_eq!(v.confidence, Confidence::Certain);
    }

    #[test]
    fn cpuid_microsoft_alone_is_hyperv_family() {
        let v = classify(&ev(Dmi::default(), Some("Microsoft Hv")));
        assert_eq!(v.platform, Platform::HyperV);
        assert_eq!(v.confidence, Confidence::Likely);
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
