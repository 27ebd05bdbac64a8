//! The crate's only `unsafe` code: reading the CPUID hypervisor leaves.
//!
//! CPUID leaf 1, ECX bit 31 is the "hypervisor present" bit; leaf
//! 0x4000_0000 then names the hypervisor in EBX, ECX, EDX (12 ASCII bytes,
//! e.g. "Microsoft Hv", "KVMKVMKVM\0\0\0", "VMwareVMware"). Only meaningful
//! on the machine we run on, so callers skip it when inspecting a sysroot.
//!
//! `__cpuid` is an `unsafe fn` in older toolchains and a safe one in
//! current ones (rustc 1.95 reports the block as unnecessary); the blocks
//! stay, with `allow(unused_unsafe)`, so the crate builds on both.
#![allow(unsafe_code)]

/// The hypervisor CPUID reports, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuidHypervisor {
    /// Leaf 1 ECX bit 31.
    pub present: bool,
    /// Leaf 0x4000_0000 vendor signature, trailing NULs trimmed; `None`
    /// when the bit is clear.
    pub vendor: Option<String>,
}

/// Reads the hypervisor bit and vendor signature of the running CPU.
/// Returns `None` on architectures without CPUID.
#[cfg(target_arch = "x86_64")]
pub fn cpuid_hypervisor() -> Option<CpuidHypervisor> {
    use core::arch::x86_64::__cpuid;
    // SAFETY: CPUID exists on every x86_64 CPU; leaf 1 is always valid and
    // leaf 0x4000_0000 is only queried when the hypervisor bit says the
    // hypervisor range is defined. The instruction only writes registers.
    #[allow(unused_unsafe)]
    let leaf1 = unsafe { __cpuid(1) };
    let present = leaf1.ecx & (1 << 31) != 0;
    if !present {
        return Some(CpuidHypervisor {
            present,
            vendor: None,
        });
    }
    // SAFETY: as above; the hypervisor bit is set, so leaf 0x4000_0000 is
    // defined by the hypervisor.
    #[allow(unused_unsafe)]
    let hv = unsafe { __cpuid(0x4000_0000) };
    let mut bytes = Vec::with_capacity(12);
    for reg in [hv.ebx, hv.ecx, hv.edx] {
        bytes.extend_from_slice(&reg.to_le_bytes());
    }
    let vendor: String = String::from_utf8_lossy(&bytes)
        .trim_end_matches('\0')
        .to_string();
    Some(CpuidHypervisor {
        present,
        vendor: Some(vendor),
    })
}

/// Reads the hypervisor bit and vendor signature of the running CPU.
/// Returns `None` on architectures without CPUID.
#[cfg(not(target_arch = "x86_64"))]
pub fn cpuid_hypervisor() -> Option<CpuidHypervisor> {
    None
}
