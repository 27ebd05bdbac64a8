//! What CPUID says about the hypervisor, decoded from registers.
//!
//! Leaf 1 ECX bit 31 is the "hypervisor present" bit; leaf 0x4000_0000
//! names the hypervisor in EBX, ECX, EDX (12 ASCII bytes: "Microsoft Hv",
//! "KVMKVMKVM", "VMwareVMware", ...). KVM and QEMU offering Hyper-V
//! enlightenments (Nutanix AHV, `hv-*` flags) put "Microsoft Hv" there and
//! move their own signature to leaf 0x4000_0100, so that leaf is read too
//! whenever the first says "Microsoft Hv".
//!
//! The registers come from a [`Source`]: the CPU itself (live, through
//! `sys`) or, in `--sysroot` mode, a `cpuid.txt` at the tree's root in the
//! format `cpuid -r` prints (`0x40000000 0x00: eax=0x... ebx=0x... ...`).
//! Both go through the same [`read`].

/// The four registers one CPUID leaf returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Regs {
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
}

/// Where register values come from: `leaf -> registers`, `None` when the
/// leaf cannot be read (no CPUID, or not in a capture).
pub type Source<'a> = &'a dyn Fn(u32) -> Option<Regs>;

pub const LEAF_HYPERVISOR: u32 = 0x4000_0000;
/// Where KVM puts its own signature when it shows Hyper-V's at 0x4000_0000.
pub const LEAF_HYPERVISOR_NEXT: u32 = 0x4000_0100;

/// The hypervisor CPUID reports, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuidHypervisor {
    /// Leaf 1 ECX bit 31.
    pub present: bool,
    /// Leaf 0x4000_0000 vendor signature, trailing NULs trimmed; `None`
    /// when the bit is clear or the leaf holds no printable signature.
    pub vendor: Option<String>,
    /// Leaf 0x4000_0100 signature, read only when `vendor` is
    /// "Microsoft Hv": the real hypervisor behind Hyper-V enlightenments.
    pub vendor_next: Option<String>,
}

pub const MICROSOFT_HV: &str = "Microsoft Hv";

/// Decodes the hypervisor leaves. `None` when leaf 1 cannot be read.
pub fn read(source: Source) -> Option<CpuidHypervisor> {
    let leaf1 = source(1)?;
    let present = leaf1.ecx & (1 << 31) != 0;
    let vendor = present
        .then(|| source(LEAF_HYPERVISOR).and_then(signature))
        .flatten();
    let vendor_next = (vendor.as_deref() == Some(MICROSOFT_HV))
        .then(|| source(LEAF_HYPERVISOR_NEXT).and_then(signature))
        .flatten()
        .filter(|v| v != MICROSOFT_HV);
    Some(CpuidHypervisor {
        present,
        vendor,
        vendor_next,
    })
}

/// The 12-byte signature in EBX, ECX, EDX; `None` unless it is printable
/// ASCII (a leaf outside the hypervisor's range returns other data).
fn signature(r: Regs) -> Option<String> {
    let mut bytes = Vec::with_capacity(12);
    for reg in [r.ebx, r.ecx, r.edx] {
        bytes.extend_from_slice(&reg.to_le_bytes());
    }
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    let printable = bytes.iter().all(|b| (0x20..0x7f).contains(b));
    (!bytes.is_empty() && printable).then(|| String::from_utf8_lossy(&bytes).into_owned())
}

/// Register values from a `cpuid -r` dump: lines `LEAF SUBLEAF: eax=0x..
/// ebx=0x.. ecx=0x.. edx=0x..`, the first sub-leaf of each leaf; other
/// lines are ignored.
pub fn parse_dump(text: &str) -> Vec<(u32, Regs)> {
    let hex = |s: &str| u32::from_str_radix(s.trim_start_matches("0x"), 16).ok();
    let mut out: Vec<(u32, Regs)> = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(leaf) = words.next().and_then(hex) else {
            continue;
        };
        let mut regs = [None; 4];
        for w in words {
            for (i, name) in ["eax=", "ebx=", "ecx=", "edx="].iter().enumerate() {
                if let Some(v) = w.strip_prefix(name) {
                    regs[i] = hex(v);
                }
            }
        }
        if let [Some(eax), Some(ebx), Some(ecx), Some(edx)] = regs
            && !out.iter().any(|(l, _)| *l == leaf)
        {
            out.push((leaf, Regs { eax, ebx, ecx, edx }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(s: &[u8; 12]) -> Regs {
        let w = |i: usize| u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
        Regs {
            eax: 0x4000_0006,
            ebx: w(0),
            ecx: w(4),
            edx: w(8),
        }
    }

    fn cpu(leaves: Vec<(u32, Regs)>) -> Option<CpuidHypervisor> {
        read(&move |leaf| leaves.iter().find(|(l, _)| *l == leaf).map(|(_, r)| *r))
    }

    const HV_BIT: Regs = Regs {
        eax: 0,
        ebx: 0,
        ecx: 1 << 31,
        edx: 0,
    };

    #[test]
    fn microsoft_hv_reads_the_next_leaf_for_kvm() {
        let c = cpu(vec![
            (1, HV_BIT),
            (LEAF_HYPERVISOR, sig(b"Microsoft Hv")),
            (LEAF_HYPERVISOR_NEXT, sig(b"KVMKVMKVM\0\0\0")),
        ])
        .unwrap();
        assert!(c.present);
        assert_eq!(c.vendor.as_deref(), Some("Microsoft Hv"));
        assert_eq!(c.vendor_next.as_deref(), Some("KVMKVMKVM"));
    }

    #[test]
    fn real_hyperv_has_nothing_at_the_next_leaf() {
        let c = cpu(vec![
            (1, HV_BIT),
            (LEAF_HYPERVISOR, sig(b"Microsoft Hv")),
            (LEAF_HYPERVISOR_NEXT, Regs::default()),
        ])
        .unwrap();
        assert_eq!(c.vendor.as_deref(), Some("Microsoft Hv"));
        assert_eq!(c.vendor_next, None);
        // Garbage (not a signature) is not taken for one either.
        let c = cpu(vec![
            (1, HV_BIT),
            (LEAF_HYPERVISOR, sig(b"Microsoft Hv")),
            (
                LEAF_HYPERVISOR_NEXT,
                Regs {
                    eax: 1,
                    ebx: 0xdead_beef,
                    ecx: 2,
                    edx: 3,
                },
            ),
        ])
        .unwrap();
        assert_eq!(c.vendor_next, None);
    }

    #[test]
    fn the_next_leaf_is_only_read_after_microsoft_hv() {
        let asked = std::cell::RefCell::new(Vec::new());
        let leaves = [(1, HV_BIT), (LEAF_HYPERVISOR, sig(b"KVMKVMKVM\0\0\0"))];
        let c = read(&|leaf| {
            asked.borrow_mut().push(leaf);
            leaves.iter().find(|(l, _)| *l == leaf).map(|(_, r)| *r)
        })
        .unwrap();
        assert_eq!(c.vendor.as_deref(), Some("KVMKVMKVM"));
        assert_eq!(c.vendor_next, None);
        assert!(!asked.borrow().contains(&LEAF_HYPERVISOR_NEXT));
    }

    #[test]
    fn no_hypervisor_bit_means_no_vendor() {
        let c = cpu(vec![
            (1, Regs::default()),
            (LEAF_HYPERVISOR, sig(b"Microsoft Hv")),
        ])
        .unwrap();
        assert!(!c.present);
        assert_eq!(c.vendor, None);
        assert_eq!(cpu(vec![]), None);
    }

    #[test]
    fn dump_lines_give_registers() {
        let text = "CPU:\n   0x00000001 0x00: eax=0x000306f2 ebx=0x00000800 ecx=0xfeda3203 edx=0x178bfbff\n   0x40000000 0x00: eax=0x40000006 ebx=0x7263694d ecx=0x666f736f edx=0x76482074\n   0x40000000 0x01: eax=0x1 ebx=0x2 ecx=0x3 edx=0x4\nnot a line\n";
        let leaves = parse_dump(text);
        assert_eq!(leaves.len(), 2);
        let c = read(&|leaf| leaves.iter().find(|(l, _)| *l == leaf).map(|(_, r)| *r)).unwrap();
        assert!(c.present);
        assert_eq!(c.vendor.as_deref(), Some("Microsoft Hv"));
    }
}
