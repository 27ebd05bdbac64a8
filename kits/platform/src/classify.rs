//! The verdict: which platform the evidence points to, how sure that is,
//! and the reasons, in plain words.
//!
//! Each source of evidence makes a claim on its own: VMBus devices (only
//! Hyper-V has them), DMI strings (the vendor table in `claims::dmi_claim`),
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

mod claims;

use crate::cpuid::CpuidHypervisor;
use crate::evidence::{CpuKind, LocalEvidence};
use crate::net::{NetEvidence, ProbeResult};
use claims::{Claim, Says, Source, claims, contains_ci, dmi_claim, dmi_names};

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

    /// Hyper-V on premises, Azure or Azure Stack Hub: a guest that has a Hyper-V host.
    pub fn is_hyperv_family(self) -> bool {
        matches!(
            self,
            Platform::HyperV | Platform::Azure | Platform::AzureStack
        )
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
    } else if agreeing.contains(&Source::Kvp) {
        reasons.push(
            "no VMBus devices are listed and DMI does not say \"Virtual Machine\", so this rests on the KVP pool"
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
