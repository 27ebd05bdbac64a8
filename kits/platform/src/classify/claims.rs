//! Each source of evidence makes its own claim ([`claims`]): VMBus devices, DMI strings (the
//! vendor table in [`dmi_claim`]), Hyper-V's KVP guest parameters, the CPUID signature
//! ([`cpuid_claim`]),
//! `/sys/hypervisor/type`, the CPU kind and the `hypervisor` CPU flag. The parent module
//! weighs them.

use super::{Evidence, Platform};
use crate::cpuid::{CpuidHypervisor, MICROSOFT_HV};
use crate::evidence::{CpuKind, Dmi};

/// Which kind of evidence a claim comes from, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Source {
    Vmbus,
    Dmi,
    Kvp,
    Cpuid,
    SysHypervisor,
    CpuKind,
    Flag,
}

impl Source {
    pub(super) fn name(self) -> &'static str {
        match self {
            Source::Vmbus => "VMBus",
            Source::Dmi => "DMI",
            Source::Kvp => "the KVP pool",
            Source::Cpuid => "CPUID",
            Source::SysHypervisor => "/sys/hypervisor/type",
            Source::CpuKind => "the CPU kind",
            Source::Flag => "the CPU flag",
        }
    }
}

/// What one source says about the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Says {
    /// Names the platform (`HyperV` stands for the whole Hyper-V family).
    Is(Platform),
    /// A virtual machine, without saying which.
    SomeVm,
    /// No hypervisor.
    NoVm,
}

#[derive(Debug, Clone)]
pub(super) struct Claim {
    pub(super) source: Source,
    pub(super) says: Says,
    pub(super) reason: String,
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
    pub(super) fn supports(&self, p: Platform) -> Option<bool> {
        match self.says {
            Says::Is(q) => Some(q == p),
            Says::SomeVm => Some(p != Platform::BareMetal),
            Says::NoVm if p == Platform::BareMetal => Some(true),
            Says::NoVm if self.source == Source::Flag => None,
            Says::NoVm => Some(false),
        }
    }
}

/// Every claim the evidence makes, strongest source first.
pub(super) fn claims(ev: &Evidence) -> Vec<Claim> {
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
    if let Some((key, host)) = local.kvp.host() {
        out.push(Claim::new(
            Source::Kvp,
            Says::Is(Platform::HyperV),
            format!(
                "{} names the host \"{host}\" ({key}): only Hyper-V sends guest parameters through its KVP data exchange (Azure's hosts too, so this does not tell Azure from on-premises; a pool copied from a Hyper-V VM says it too)",
                local.kvp.path
            ),
        ));
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

/// `"vendor" / "product"` as DMI gives them, for reasons.
pub(super) fn dmi_names(dmi: &Dmi) -> String {
    let v = dmi.sys_vendor.as_deref().unwrap_or("");
    match dmi.product_name.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => format!("\"{v}\" / \"{p}\""),
        None => format!("\"{v}\""),
    }
}

pub(super) fn starts_ci(v: Option<&str>, prefix: &str) -> bool {
    v.is_some_and(|s| {
        s.len() >= prefix.len()
            && s.is_char_boundary(prefix.len())
            && s[..prefix.len()].eq_ignore_ascii_case(prefix)
    })
}

pub(super) fn contains_ci(v: &str, needle: &str) -> bool {
    v.to_ascii_lowercase()
        .contains(&needle.to_ascii_lowercase())
}

/// Whether `word` is one of the alphanumeric words of `v` ("Xen" is in
/// "Xen" and "Xen HVM", not in "XENTA").
pub(super) fn has_word(v: Option<&str>, word: &str) -> bool {
    v.is_some_and(|s| {
        s.split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| w.eq_ignore_ascii_case(word))
    })
}

/// What the DMI strings say, with the reason; first match wins, so the
/// specific products (clouds, KVM distributions) come before the generic
/// QEMU/Bochs strings they often carry too.
pub(super) fn dmi_claim(dmi: &Dmi) -> Option<(Says, String)> {
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
pub(super) fn cpuid_claim(c: &CpuidHypervisor) -> Claim {
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
pub(super) fn signature_platform(sig: &str) -> (Platform, &'static str) {
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
