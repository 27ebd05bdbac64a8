//! Local evidence: what the firmware tables, the kernel's bus list and the
//! CPU say about the machine, read from files under an injectable root.
//!
//! Everything here is a plain file read under `<root>`, so a captured tree
//! (`tests/fixtures/<case>`) stands in for `/` in tests. A missing file is
//! not an error, it is an absent fact; other read errors are kept as notes
//! so the verdict can say what it could not see.

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
}

/// Facts gathered from files (no network, no CPUID).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalEvidence {
    pub dmi: Dmi,
    /// Number of entries in `/sys/bus/vmbus/devices`; `None` when the
    /// directory does not exist (no Hyper-V VMBus driver bound).
    pub vmbus_devices: Option<usize>,
    /// Whether `/proc/cpuinfo` lists the `hypervisor` CPU flag; `None` when
    /// the file could not be read.
    pub cpuinfo_hypervisor_flag: Option<bool>,
    /// `/sys/firmware/efi` exists: booted through UEFI (Hyper-V gen 2).
    pub uefi: bool,
    /// Contents of `/sys/hypervisor/type` (e.g. `xen`), if present.
    pub sys_hypervisor_type: Option<String>,
    /// Read problems other than "file absent", one line each.
    pub notes: Vec<String>,
}

/// The largest sysfs/procfs file we read; DMI strings are tiny and
/// `/proc/cpuinfo` of a 512-CPU box is well under this.
const MAX_READ: u64 = 4 << 20;

/// Reads a small text file under `root`. `Ok(None)` when it does not exist.
fn read_text(root: &Path, rel: &str) -> Result<Option<String>, String> {
    let path = under(root, rel);
    let file = match fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: cannot open: {e}", path.display())),
    };
    let mut text = String::new();
    match file.take(MAX_READ).read_to_string(&mut text) {
        Ok(_) => Ok(Some(text)),
        Err(e) => Err(format!("{}: cannot read: {e}", path.display())),
    }
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

    let cpuinfo_hypervisor_flag = match read_text(root, "proc/cpuinfo") {
        Ok(Some(text)) => Some(cpuinfo_has_hypervisor_flag(&text)),
        Ok(None) => None,
        Err(e) => {
            notes.push(e);
            None
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

    LocalEvidence {
        dmi,
        vmbus_devices,
        cpuinfo_hypervisor_flag,
        uefi,
        sys_hypervisor_type,
        notes,
    }
}

/// Whether any `flags` line of `/proc/cpuinfo` contains the word
/// `hypervisor` (the kernel's name for CPUID.1:ECX[31]).
pub fn cpuinfo_has_hypervisor_flag(cpuinfo: &str) -> bool {
    cpuinfo.lines().any(|line| {
        let mut parts = line.splitn(2, ':');
        let key = parts.next().unwrap_or("").trim();
        let value = parts.next().unwrap_or("");
        key == "flags" && value.split_whitespace().any(|f| f == "hypervisor")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypervisor_flag_is_a_whole_word_on_a_flags_line() {
        assert!(cpuinfo_has_hypervisor_flag(
            "processor\t: 0\nflags\t\t: fpu vme hypervisor lahf_lm\n"
        ));
        assert!(!cpuinfo_has_hypervisor_flag(
            "flags\t\t: fpu vme lahf_lm\nmodel name\t: hypervisor-ready\n"
        ));
        assert!(!cpuinfo_has_hypervisor_flag("flags: fpu hypervisorx\n"));
    }
}
