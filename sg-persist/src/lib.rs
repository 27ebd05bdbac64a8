//! SCSI-3 persistent reservations over raw `SG_IO`, for fencing shared disks.
//!
//! Mechanism only: this crate never prints, never exits and never decides policy. It builds
//! CDBs ([`cdb`]), runs them with a per-command timeout and a caller's deadline ([`sys`],
//! [`device`]), normalises sense data and classifies each completion into a [`Reply`]
//! ([`sense`]), parses PERSISTENT RESERVE IN and INQUIRY data ([`parse`]), and maps a device
//! name to the SCSI paths of one logical unit ([`path`]).
//!
//! RESERVATION CONFLICT is a reply of its own (status 0x18 or host byte
//! `DID_NEXUS_FAILURE`): for a fencing kit it is the signal, not an error to flatten.
//! All `unsafe` code is in [`sys`]. Debug detail (CDB, parameter and sense bytes in hex) goes
//! to the `log` facade.

#![cfg_attr(not(test), deny(clippy::print_stdout, clippy::print_stderr))]
#![deny(missing_docs)]

pub mod cdb;
pub mod device;
pub mod parse;
pub mod path;
pub mod sense;
pub mod sys;

pub use cdb::{PrInAction, PrOutAction, PrType};
pub use device::{Error, Lu, Options, ScsiPath};
pub use parse::{Capabilities, FullStatus, Identity, Keys, LuId, Reservation, ReservationStatus};
pub use path::{PathError, PathInfo, Resolved, SysRoot, Topology, sysfs_identity};
pub use sense::{Reply, Sense, SenseKey};

#[cfg(test)]
mod tidy {
    use std::path::{Path, PathBuf};

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() && name != "target" && !name.starts_with('.') {
                rust_files(&p, out);
            } else if name.ends_with(".rs") {
                out.push(p);
            }
        }
    }

    /// The workspace denies `unsafe_code` (Cargo.toml); only a `sys` module may lift that.
    #[test]
    fn only_sys_modules_allow_unsafe() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let mut files = Vec::new();
        rust_files(root, &mut files);
        assert!(files.len() > 50, "walked {} files only", files.len());
        for p in files {
            let text = std::fs::read_to_string(&p).unwrap();
            if text.contains(concat!("allow(", "unsafe_code)")) {
                assert!(p.ends_with("sys.rs"), "{} allows unsafe code", p.display());
            }
        }
    }
}

#[cfg(test)]
mod fuzz {
    //! Deterministic pseudo-random bytes thrown at every parser: none may panic.

    use super::*;
    use crate::sys::Completion;

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn bytes(&mut self, max: usize) -> Vec<u8> {
            let n = (self.next() as usize) % (max + 1);
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    #[test]
    fn parsers_never_panic() {
        let mut r = XorShift(0x4c4b_5343_5349_5052);
        for i in 0..20_000 {
            let mut b = r.bytes(96);
            // Bias toward plausible headers so deeper branches run.
            if let Some(x) = b.first_mut() {
                *x = [0x70, 0x71, 0x72, 0x73, 0x45, 0x00, *x][i % 7];
            }
            if b.len() > 1 && i % 3 == 0 {
                b[1] = [0x80, 0x83][i % 2];
            }
            if b.len() > 8 && i % 5 == 0 {
                let add = (b.len() as u32).wrapping_sub(8 - (i % 3) as u32);
                b[4..8].copy_from_slice(&add.to_be_bytes());
            }
            let _ = Sense::parse(&b).map(|s| s.to_string());
            let _ = parse::read_keys(&b);
            let _ = parse::read_reservation(&b);
            let _ = parse::report_capabilities(&b);
            let _ = parse::read_full_status(&b).map(|s| {
                s.registrations
                    .iter()
                    .map(|r| r.transport_id.to_string())
                    .collect::<Vec<_>>()
            });
            let _ = parse::inquiry(&b);
            let _ = parse::vpd_serial(&b);
            let _ = parse::vpd_lu_id(&b).map(|id| id.to_string());
            let _ = parse::vpd_designators(&b).map(|d| d.iter().filter(|x| x.weak()).count());
            let _ = parse::supported_opcode(&b);
            let _ = parse::TransportId::parse(&b).to_string();
            let c = Completion {
                status: r.next() as u8,
                host_status: (r.next() % 0x20) as u16,
                driver_status: (r.next() % 0x10) as u16,
                sense: b,
                resid: 0,
                duration_ms: 0,
            };
            let _ = Reply::classify(&c).to_string();
        }
    }
}
