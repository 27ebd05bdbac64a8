//! Local evidence: what the firmware tables, the kernel's bus list and the
//! CPU say about the machine, read from files under an injectable root.
//!
//! Everything here is a plain file read under `<root>`, so a captured tree
//! (`tests/fixtures/<case>`) stands in for `/` in tests. A missing file is
//! not an error, it is an absent fact; other read errors are kept as notes
//! so the verdict can say what it could not see. Bytes that are not UTF-8
//! (firmware strings are not always clean) are kept, shown as `\xNN`.
//!
//! Besides the machine itself this reads what says "inside a container"
//! (the container runs on the machine, so the machine is still classified),
//! the kernel release (WSL2's kernel names itself) and Hyper-V's guest
//! parameters ([`crate::kvp`], read with lkh-common's `trusted` rules).

use std::fs;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

/// The DMI (SMBIOS) strings the kernel exports in `/sys/class/dmi/id`.
/// All of these are world-readable (mode 0444 in the kernel).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dmi {
    pub sys_vendor: Option<String>,
    pub product_name: Option<String>,
    pub product_version: Option<String>,
    pub chassis_asset_tag: Option<String>,
    pub chassis_vendor: Option<String>,
    pub bios_vendor: Option<String>,
    pub bios_version: Option<String>,
    pub board_vendor: Option<String>,
    pub board_name: Option<String>,
}

impl Dmi {
    /// `(file name, value)` pairs in a stable order, for printing.
    pub fn fields(&self) -> [(&'static str, Option<&str>); 9] {
        [
            ("sys_vendor", self.sys_vendor.as_deref()),
            ("product_name", self.product_name.as_deref()),
            ("product_version", self.product_version.as_deref()),
            ("chassis_asset_tag", self.chassis_asset_tag.as_deref()),
            ("chassis_vendor", self.chassis_vendor.as_deref()),
            ("bios_vendor", self.bios_vendor.as_deref()),
            ("bios_version", self.bios_version.as_deref()),
            ("board_vendor", self.board_vendor.as_deref()),
            ("board_name", self.board_name.as_deref()),
        ]
    }

    /// No DMI file at all (no `/sys/class/dmi/id`: non-x86 boards, WSL2,
    /// a capture without firmware tables).
    pub fn is_absent(&self) -> bool {
        self.fields().iter().all(|(_, v)| v.is_none())
    }
}

/// What `/proc/cpuinfo` says about the CPU kind; only x86 has the
/// `hypervisor` flag, so on other CPUs its absence means nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CpuKind {
    /// No `/proc/cpuinfo`, or an empty one.
    #[default]
    Unknown,
    /// Has a `flags` line (x86).
    X86,
    /// IBM Z (`vendor_id : IBM/S390`).
    S390,
    /// IBM POWER; `architected` when the CPU runs in a compatibility mode
    /// (`cpu : POWER8 (architected)`), which only a PAPR hypervisor sets.
    Power { architected: bool },
    /// Arm, Itanium or anything else without a `flags` line.
    Other,
}

impl CpuKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CpuKind::Unknown => "unknown",
            CpuKind::X86 => "x86",
            CpuKind::S390 => "s390",
            CpuKind::Power { architected: true } => "power-architected",
            CpuKind::Power { architected: false } => "power",
            CpuKind::Other => "other",
        }
    }
}

/// Signs that this process runs in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// `docker`, `podman`, `lxc`, `cri-o`, `kubernetes`, or what
    /// `container=` / `/run/systemd/container` names.
    pub kind: String,
    /// The file that said so.
    pub seen_in: String,
}

/// Facts gathered from files (no network, no CPUID).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalEvidence {
    pub dmi: Dmi,
    /// Number of entries in `/sys/bus/vmbus/devices`; `None` when the
    /// directory does not exist (no Hyper-V VMBus driver bound).
    pub vmbus_devices: Option<usize>,
    /// Whether the `flags` line of `/proc/cpuinfo` lists the `hypervisor`
    /// CPU flag; `None` when the file could not be read or has no `flags`
    /// line (not x86).
    pub cpuinfo_hypervisor_flag: Option<bool>,
    /// The CPU kind `/proc/cpuinfo` shows.
    pub cpu_kind: CpuKind,
    /// `/sys/firmware/efi` exists: booted through UEFI (Hyper-V gen 2).
    pub uefi: bool,
    /// Contents of `/sys/hypervisor/type` (e.g. `xen`), if present.
    pub sys_hypervisor_type: Option<String>,
    /// `/proc/sys/kernel/osrelease`, if present.
    pub kernel_release: Option<String>,
    /// The node's name, `/proc/sys/kernel/hostname`, if present.
    pub node_name: Option<String>,
    /// Set when this process runs in a container.
    pub container: Option<Container>,
    /// Hyper-V's guest parameters (pool 3 of the KVP daemon): the host this VM runs on.
    pub kvp: crate::kvp::Kvp,
    /// Read problems other than "file absent", one line each.
    pub notes: Vec<String>,
}

/// The largest sysfs/procfs file we read; DMI strings are tiny and
/// `/proc/cpuinfo` of a 512-CPU box is well under this.
const MAX_READ: u64 = 4 << 20;

/// Reads a small text file under `root`, escaped as [`escape_bytes`]
/// does. `Ok(None)` when it does not exist.
pub fn read_text(root: &Path, rel: &str) -> Result<Option<String>, String> {
    Ok(read_bytes(root, rel)?.map(|b| escape_bytes(&b)))
}

/// Reads a small file under `root`. `Ok(None)` when it does not exist.
fn read_bytes(root: &Path, rel: &str) -> Result<Option<Vec<u8>>, String> {
    let path = under(root, rel);
    let file = match fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: cannot open: {e}", path.display())),
    };
    let mut bytes = Vec::new();
    match file.take(MAX_READ).read_to_end(&mut bytes) {
        Ok(_) => Ok(Some(bytes)),
        Err(e) => Err(format!("{}: cannot read: {e}", path.display())),
    }
}

/// The bytes as text: UTF-8 kept, other bytes and control characters
/// (except tab and newline) written `\xNN`, so nothing is lost or hidden.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_ascii_control() && c != '\t' && c != '\n' {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// `root` joined with an absolute-looking relative path.
pub fn under(root: &Path, rel: &str) -> PathBuf {
    root.join(rel.trim_start_matches('/'))
}

fn dmi_field(root: &Path, name: &str, notes: &mut Vec<String>) -> Option<String> {
    match read_text(root, &format!("sys/class/dmi/id/{name}")) {
        Ok(v) => v.map(|s| s.trim().to_string()),
        Err(e) => {
            notes.push(e);
            None
        }
    }
}

/// Gathers the local evidence under `root` (`/` on a live system).
pub fn gather(root: &Path) -> LocalEvidence {
    let mut notes = Vec::new();
    let mut d = |n: &str| dmi_field(root, n, &mut notes);
    let dmi = Dmi {
        sys_vendor: d("sys_vendor"),
        product_name: d("product_name"),
        product_version: d("product_version"),
        chassis_asset_tag: d("chassis_asset_tag"),
        chassis_vendor: d("chassis_vendor"),
        bios_vendor: d("bios_vendor"),
        bios_version: d("bios_version"),
        board_vendor: d("board_vendor"),
        board_name: d("board_name"),
    };

    let vmbus_dir = under(root, "sys/bus/vmbus/devices");
    let vmbus_devices = match fs::read_dir(&vmbus_dir) {
        Ok(rd) => Some(rd.filter(|e| e.is_ok()).count()),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => {
            notes.push(format!("{}: cannot list: {e}", vmbus_dir.display()));
            None
        }
    };

    let (cpuinfo_hypervisor_flag, cpu_kind) = match read_text(root, "proc/cpuinfo") {
        Ok(Some(text)) => (cpuinfo_hypervisor_flag(&text), cpu_kind(&text)),
        Ok(None) => (None, CpuKind::Unknown),
        Err(e) => {
            notes.push(e);
            (None, CpuKind::Unknown)
        }
    };

    let uefi = under(root, "sys/firmware/efi").is_dir();
    let sys_hypervisor_type = match read_text(root, "sys/hypervisor/type") {
        Ok(v) => v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()),
        Err(e) => {
            notes.push(e);
            None
        }
    };

    let kernel_release = read_text(root, "proc/sys/kernel/osrelease")
        .ok()
        .flatten()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());

    let node_name = read_text(root, "proc/sys/kernel/hostname")
        .ok()
        .flatten()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());

    LocalEvidence {
        dmi,
        vmbus_devices,
        cpuinfo_hypervisor_flag,
        cpu_kind,
        uefi,
        sys_hypervisor_type,
        kernel_release,
        node_name,
        container: container(root),
        kvp: crate::kvp::read(root),
        notes,
    }
}

/// `key : value` lines of `/proc/cpuinfo`, keys trimmed.
fn cpuinfo_fields(cpuinfo: &str) -> impl Iterator<Item = (&str, &str)> {
    cpuinfo.lines().filter_map(|line| {
        let (k, v) = line.split_once(':')?;
        Some((k.trim(), v.trim()))
    })
}

/// Whether the `flags` lines of `/proc/cpuinfo` contain the word
/// `hypervisor` (the kernel's name for CPUID.1:ECX[31]); `None` when there
/// is no `flags` line at all (not x86, so the flag cannot be shown).
pub fn cpuinfo_hypervisor_flag(cpuinfo: &str) -> Option<bool> {
    let mut seen = None;
    for (_, value) in cpuinfo_fields(cpuinfo).filter(|(k, _)| *k == "flags") {
        let has = value.split_whitespace().any(|f| f == "hypervisor");
        seen = Some(seen.unwrap_or(false) || has);
    }
    seen
}

/// The CPU kind from `/proc/cpuinfo`'s keys.
pub fn cpu_kind(cpuinfo: &str) -> CpuKind {
    let mut kind = CpuKind::Unknown;
    for (k, v) in cpuinfo_fields(cpuinfo) {
        match k {
            "flags" => return CpuKind::X86,
            "vendor_id" if v.eq_ignore_ascii_case("IBM/S390") => return CpuKind::S390,
            "cpu" if v.starts_with("POWER") => {
                return CpuKind::Power {
                    architected: v.contains("(architected)"),
                };
            }
            _ => kind = CpuKind::Other,
        }
    }
    kind
}

/// Looks for the marks container runtimes leave: systemd's
/// `/run/systemd/container`, Docker's `/.dockerenv`, Podman's
/// `/run/.containerenv`, `container=` in PID 1's environment (LXC, CRI-O,
/// systemd-nspawn), and runtime names in PID 1's cgroup path.
pub fn container(root: &Path) -> Option<Container> {
    let found = |kind: &str, seen_in: &str| {
        Some(Container {
            kind: kind.to_string(),
            seen_in: seen_in.to_string(),
        })
    };
    if let Ok(Some(kind)) = read_text(root, "run/systemd/container") {
        let kind = kind.trim();
        if !kind.is_empty() {
            return found(kind, "/run/systemd/container");
        }
    }
    if under(root, ".dockerenv").exists() {
        return found("docker", "/.dockerenv");
    }
    if under(root, "run/.containerenv").exists() {
        return found("podman", "/run/.containerenv");
    }
    // PID 1's environment is root-only; unreadable simply means unknown.
    if let Ok(Some(env)) = read_bytes(root, "proc/1/environ") {
        let value = env
            .split(|b| *b == 0)
            .find_map(|kv| kv.strip_prefix(b"container="))
            .filter(|v| !v.is_empty());
        if let Some(v) = value {
            return found(&escape_bytes(v), "/proc/1/environ");
        }
    }
    if let Ok(Some(cgroup)) = read_text(root, "proc/1/cgroup") {
        for (needle, kind) in [
            ("kubepods", "kubernetes"),
            ("crio-", "cri-o"),
            ("libpod", "podman"),
            ("docker", "docker"),
            ("/lxc", "lxc"),
        ] {
            if cgroup.contains(needle) {
                return found(kind, "/proc/1/cgroup");
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypervisor_flag_is_a_whole_word_on_a_flags_line() {
        assert_eq!(
            cpuinfo_hypervisor_flag("processor\t: 0\nflags\t\t: fpu vme hypervisor lahf_lm\n"),
            Some(true)
        );
        assert_eq!(
            cpuinfo_hypervisor_flag("flags\t\t: fpu vme lahf_lm\nmodel name\t: hypervisor-ready\n"),
            Some(false)
        );
        assert_eq!(
            cpuinfo_hypervisor_flag("flags: fpu hypervisorx\n"),
            Some(false)
        );
    }

    #[test]
    fn no_flags_line_means_the_flag_is_unknown() {
        let arm = "processor\t: 0\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\n";
        assert_eq!(cpuinfo_hypervisor_flag(arm), None);
        assert_eq!(cpu_kind(arm), CpuKind::Other);
        assert_eq!(cpu_kind(""), CpuKind::Unknown);
        assert_eq!(cpu_kind("flags\t: fpu\n"), CpuKind::X86);
        assert_eq!(cpu_kind("vendor_id       : IBM/S390\n"), CpuKind::S390);
        assert_eq!(
            cpu_kind("cpu\t\t: POWER8 (architected), altivec supported\n"),
            CpuKind::Power { architected: true }
        );
        assert_eq!(
            cpu_kind("cpu\t\t: POWER8E (raw), altivec supported\n"),
            CpuKind::Power { architected: false }
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_shown_escaped() {
        assert_eq!(escape_bytes(b"QEMU\xff x"), "QEMU\\xff x");
        assert_eq!(escape_bytes("Gr\u{fc}n\x01".as_bytes()), "Gr\u{fc}n\\x01");
        assert_eq!(escape_bytes(b"a\tb\n"), "a\tb\n");
    }
}
