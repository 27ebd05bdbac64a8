//! Sense data and the classification of one command's completion into a [`Reply`].
//!
//! Sense comes in two formats (SPC-4 4.5): fixed (response codes 0x70/0x71) and descriptor
//! (0x72/0x73). Both are normalised into one [`Sense`] with every byte read bounds-checked,
//! then the completion is classified in a fixed order: transport (host byte), driver byte,
//! sense, other status, GOOD. RESERVATION CONFLICT is its own reply, whether the device
//! reports it as status 0x18 or the initiator as host byte `DID_NEXUS_FAILURE`.

use std::fmt;

use crate::sys::Completion;

/// Sense key (SPC-4 table 52). A newtype: every wire value is representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SenseKey(pub u8);

impl SenseKey {
    /// NO SENSE (0x0).
    pub const NO_SENSE: SenseKey = SenseKey(0x0);
    /// RECOVERED ERROR (0x1).
    pub const RECOVERED_ERROR: SenseKey = SenseKey(0x1);
    /// NOT READY (0x2).
    pub const NOT_READY: SenseKey = SenseKey(0x2);
    /// MEDIUM ERROR (0x3).
    pub const MEDIUM_ERROR: SenseKey = SenseKey(0x3);
    /// HARDWARE ERROR (0x4).
    pub const HARDWARE_ERROR: SenseKey = SenseKey(0x4);
    /// ILLEGAL REQUEST (0x5).
    pub const ILLEGAL_REQUEST: SenseKey = SenseKey(0x5);
    /// UNIT ATTENTION (0x6).
    pub const UNIT_ATTENTION: SenseKey = SenseKey(0x6);
    /// DATA PROTECT (0x7).
    pub const DATA_PROTECT: SenseKey = SenseKey(0x7);
    /// ABORTED COMMAND (0xb).
    pub const ABORTED_COMMAND: SenseKey = SenseKey(0xb);

    /// Name of the key, covering every value.
    pub fn name(self) -> &'static str {
        const NAMES: [&str; 16] = [
            "NO SENSE",
            "RECOVERED ERROR",
            "NOT READY",
            "MEDIUM ERROR",
            "HARDWARE ERROR",
            "ILLEGAL REQUEST",
            "UNIT ATTENTION",
            "DATA PROTECT",
            "BLANK CHECK",
            "VENDOR SPECIFIC",
            "COPY ABORTED",
            "ABORTED COMMAND",
            "reserved 0xc",
            "VOLUME OVERFLOW",
            "MISCOMPARE",
            "COMPLETED",
        ];
        NAMES[usize::from(self.0 & 0xf)]
    }
}

/// SCSI status values (SAM-5 table 33) this crate looks at.
pub mod status {
    /// GOOD (0x00).
    pub const GOOD: u8 = 0x00;
    /// CHECK CONDITION (0x02).
    pub const CHECK_CONDITION: u8 = 0x02;
    /// CONDITION MET (0x04).
    pub const CONDITION_MET: u8 = 0x04;
    /// BUSY (0x08).
    pub const BUSY: u8 = 0x08;
    /// RESERVATION CONFLICT (0x18).
    pub const RESERVATION_CONFLICT: u8 = 0x18;
    /// COMMAND TERMINATED (0x22).
    pub const COMMAND_TERMINATED: u8 = 0x22;
    /// TASK SET FULL (0x28).
    pub const TASK_SET_FULL: u8 = 0x28;
    /// ACA ACTIVE (0x30).
    pub const ACA_ACTIVE: u8 = 0x30;
    /// TASK ABORTED (0x40).
    pub const TASK_ABORTED: u8 = 0x40;
}

/// Linux host byte values (`DID_*`, `include/scsi/scsi_status.h`).
pub mod host {
    /// DID OK (0x00).
    pub const DID_OK: u16 = 0x00;
    /// DID NO CONNECT (0x01).
    pub const DID_NO_CONNECT: u16 = 0x01;
    /// DID TIME OUT (0x03).
    pub const DID_TIME_OUT: u16 = 0x03;
    /// DID TRANSPORT FAILFAST (0x0f).
    pub const DID_TRANSPORT_FAILFAST: u16 = 0x0f;
    /// DID NEXUS FAILURE (0x11).
    pub const DID_NEXUS_FAILURE: u16 = 0x11;
}

/// Linux driver byte values (`DRIVER_*`); only the low nibble carries them.
pub mod driver {
    /// DRIVER TIMEOUT (0x06).
    pub const DRIVER_TIMEOUT: u16 = 0x06;
    /// DRIVER SENSE (0x08).
    pub const DRIVER_SENSE: u16 = 0x08;
}

/// Sense data reduced to what classification needs, whatever its wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sense {
    /// Response code with the VALID bit cleared: 0x70..=0x73.
    pub response_code: u8,
    /// Sense key.
    pub key: SenseKey,
    /// Additional sense code (0 when the device sent too few bytes).
    pub asc: u8,
    /// Additional sense code qualifier.
    pub ascq: u8,
}

impl Sense {
    /// Parses fixed or descriptor format sense data; `None` when the bytes are not sense data
    /// this crate understands (vendor-specific format, too short).
    pub fn parse(b: &[u8]) -> Option<Sense> {
        let rc = *b.first()? & 0x7f;
        let at = |i: usize| b.get(i).copied().unwrap_or(0);
        match rc {
            0x70 | 0x71 => {
                let key = *b.get(2)? & 0x0f;
                // Fixed format: additional sense length in byte 7 bounds ASC/ASCQ at 12/13.
                let end = 8 + usize::from(at(7));
                let in_range = |i: usize| if i < end { at(i) } else { 0 };
                Some(Sense {
                    response_code: rc,
                    key: SenseKey(key),
                    asc: in_range(12),
                    ascq: in_range(13),
                })
            }
            0x72 | 0x73 => Some(Sense {
                response_code: rc,
                key: SenseKey(*b.get(1)? & 0x0f),
                asc: at(2),
                ascq: at(3),
            }),
            _ => None,
        }
    }

    /// Whether the sense reports a deferred error (response codes 0x71 and 0x73).
    pub fn is_deferred(&self) -> bool {
        self.response_code & 1 == 1
    }

    /// A short description of the ASC/ASCQ pairs that matter for persistent reservations.
    pub fn asc_text(&self) -> Option<&'static str> {
        Some(match (self.asc, self.ascq) {
            (0x04, 0x01) => "logical unit is in process of becoming ready",
            (0x04, _) => "logical unit not ready",
            (0x20, 0x00) => "invalid command operation code",
            (0x24, 0x00) => "invalid field in CDB",
            (0x25, 0x00) => "logical unit not supported",
            (0x26, 0x00) => "invalid field in parameter list",
            (0x28, 0x00) => "not ready to ready change, medium may have changed",
            (0x29, _) => "power on, reset, or bus device reset occurred",
            (0x2a, 0x03) => "reservations preempted",
            (0x2a, 0x04) => "reservations released",
            (0x2a, 0x05) => "registrations preempted",
            (0x2a, _) => "parameters changed",
            (0x3a, _) => "medium not present",
            (0x3f, 0x0e) => "reported luns data has changed",
            (0x3f, _) => "target operating conditions have changed",
            (0x55, 0x02) => "insufficient registration resources",
            _ => return None,
        })
    }
}

impl fmt::Display for Sense {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, asc/ascq 0x{:02x}/0x{:02x}",
            self.key.name(),
            self.asc,
            self.ascq
        )?;
        if let Some(t) = self.asc_text() {
            write!(f, " ({t})")?;
        }
        Ok(())
    }
}

/// The device's reply to one command, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// GOOD, CONDITION MET, or CHECK CONDITION with NO SENSE / RECOVERED ERROR.
    Good,
    /// Status RESERVATION CONFLICT, or host byte `DID_NEXUS_FAILURE`: another registrant's
    /// reservation (or the lack of our registration) forbids this command on this path.
    ReservationConflict,
    /// UNIT ATTENTION: the device reports an event (reset, registrations preempted, ...) and
    /// did not run the command; retrying is the normal answer.
    UnitAttention(Sense),
    /// NOT READY: the LU exists but cannot serve commands now.
    NotReady(Sense),
    /// ILLEGAL REQUEST: the device refuses the command or a field of it (for PR commands: the
    /// device does not implement persistent reservations, or not this service action or type).
    IllegalRequest(Sense),
    /// Any other sense key (MEDIUM ERROR, HARDWARE ERROR, ABORTED COMMAND, ...).
    Sense(Sense),
    /// BUSY, TASK SET FULL or ACA ACTIVE: the device is congested.
    Busy(u8),
    /// A non-GOOD status without usable sense.
    Status(u8),
    /// The command timed out (host byte `DID_TIME_OUT` or driver byte `DRIVER_TIMEOUT`).
    TimedOut,
    /// The transport failed to deliver the command (other host byte or driver error).
    Transport {
        /// Host byte.
        host: u16,
        /// Driver byte.
        driver: u16,
    },
}

impl Reply {
    /// Classifies a completion. Order: host byte, driver byte, sense, status, GOOD.
    pub fn classify(c: &Completion) -> Reply {
        match c.host_status {
            host::DID_OK => {}
            host::DID_NEXUS_FAILURE => return Reply::ReservationConflict,
            host::DID_TIME_OUT => return Reply::TimedOut,
            h => {
                return Reply::Transport {
                    host: h,
                    driver: c.driver_status,
                };
            }
        }
        let drv = c.driver_status & 0x0f;
        if drv == driver::DRIVER_TIMEOUT {
            return Reply::TimedOut;
        }
        if drv != 0 && drv != driver::DRIVER_SENSE {
            return Reply::Transport {
                host: c.host_status,
                driver: c.driver_status,
            };
        }
        let st = c.status & 0xfe;
        let sense_expected = drv == driver::DRIVER_SENSE
            || st == status::CHECK_CONDITION
            || st == status::COMMAND_TERMINATED;
        if sense_expected && let Some(s) = Sense::parse(&c.sense) {
            return match s.key {
                SenseKey::NO_SENSE | SenseKey::RECOVERED_ERROR
                    if st != status::RESERVATION_CONFLICT =>
                {
                    Reply::Good
                }
                SenseKey::UNIT_ATTENTION => Reply::UnitAttention(s),
                SenseKey::NOT_READY => Reply::NotReady(s),
                SenseKey::ILLEGAL_REQUEST => Reply::IllegalRequest(s),
                _ if st == status::RESERVATION_CONFLICT => Reply::ReservationConflict,
                _ => Reply::Sense(s),
            };
        }
        match st {
            status::GOOD | status::CONDITION_MET => Reply::Good,
            status::RESERVATION_CONFLICT => Reply::ReservationConflict,
            status::BUSY | status::TASK_SET_FULL | status::ACA_ACTIVE => Reply::Busy(st),
            other => Reply::Status(other),
        }
    }

    /// Whether the command ran successfully.
    pub fn is_good(&self) -> bool {
        matches!(self, Reply::Good)
    }

    /// Whether the device said it does not support the command (ILLEGAL REQUEST with invalid
    /// operation code or invalid field in CDB).
    pub fn is_unsupported(&self) -> bool {
        matches!(self, Reply::IllegalRequest(s) if s.asc == 0x20 || s.asc == 0x24)
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Good => write!(f, "GOOD"),
            Reply::ReservationConflict => write!(f, "RESERVATION CONFLICT"),
            Reply::UnitAttention(s)
            | Reply::NotReady(s)
            | Reply::IllegalRequest(s)
            | Reply::Sense(s) => write!(f, "CHECK CONDITION: {s}"),
            Reply::Busy(st) => write!(f, "device busy (status 0x{st:02x})"),
            Reply::Status(st) => write!(f, "SCSI status 0x{st:02x}"),
            Reply::TimedOut => write!(f, "command timed out"),
            Reply::Transport { host, driver } => write!(
                f,
                "transport error (host byte 0x{host:02x}, driver byte 0x{driver:02x})"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comp(status: u8, host: u16, driver: u16, sense: &[u8]) -> Completion {
        Completion {
            status,
            host_status: host,
            driver_status: driver,
            sense: sense.to_vec(),
            resid: 0,
            duration_ms: 0,
        }
    }

    const FIXED_UA_REG_PREEMPTED: [u8; 18] = [
        0x70, 0, 0x06, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x2a, 0x05, 0, 0, 0, 0,
    ];
    const DESC_NOT_READY: [u8; 8] = [0x72, 0x02, 0x04, 0x01, 0, 0, 0, 0];

    #[test]
    fn fixed_sense_parses_key_and_asc() {
        let s = Sense::parse(&FIXED_UA_REG_PREEMPTED).unwrap();
        assert_eq!(s.key, SenseKey::UNIT_ATTENTION);
        assert_eq!((s.asc, s.ascq), (0x2a, 0x05));
        assert!(!s.is_deferred());
        assert_eq!(s.asc_text(), Some("registrations preempted"));
    }

    #[test]
    fn fixed_sense_with_valid_bit_and_deferred() {
        let mut b = FIXED_UA_REG_PREEMPTED;
        b[0] = 0xf1;
        let s = Sense::parse(&b).unwrap();
        assert_eq!(s.response_code, 0x71);
        assert!(s.is_deferred());
    }

    #[test]
    fn fixed_sense_short_additional_length_hides_asc() {
        let mut b = FIXED_UA_REG_PREEMPTED;
        b[7] = 2;
        let s = Sense::parse(&b).unwrap();
        assert_eq!((s.asc, s.ascq), (0, 0));
        assert_eq!(Sense::parse(&b[..3]).unwrap().key, SenseKey::UNIT_ATTENTION);
    }

    #[test]
    fn descriptor_sense_parses() {
        let s = Sense::parse(&DESC_NOT_READY).unwrap();
        assert_eq!(s.key, SenseKey::NOT_READY);
        assert_eq!((s.asc, s.ascq), (0x04, 0x01));
        let s = Sense::parse(&[0x73, 0x06, 0x29, 0x00]).unwrap();
        assert!(s.is_deferred());
        assert_eq!(s.key, SenseKey::UNIT_ATTENTION);
    }

    #[test]
    fn unknown_and_short_sense_is_none() {
        assert_eq!(Sense::parse(&[]), None);
        assert_eq!(Sense::parse(&[0x70, 0]), None);
        assert_eq!(Sense::parse(&[0x72]), None);
        assert_eq!(Sense::parse(&[0x7f, 0, 6, 0]), None);
    }

    #[test]
    fn classify_good_and_conflict() {
        assert_eq!(Reply::classify(&comp(0, 0, 0, &[])), Reply::Good);
        assert_eq!(
            Reply::classify(&comp(0x18, 0, 0, &[])),
            Reply::ReservationConflict
        );
        assert_eq!(
            Reply::classify(&comp(0, host::DID_NEXUS_FAILURE, 0, &[])),
            Reply::ReservationConflict
        );
    }

    #[test]
    fn classify_sense_keys() {
        let ua = Reply::classify(&comp(2, 0, 8, &FIXED_UA_REG_PREEMPTED));
        assert!(matches!(ua, Reply::UnitAttention(s) if s.asc == 0x2a));
        let nr = Reply::classify(&comp(2, 0, 0, &DESC_NOT_READY));
        assert!(matches!(nr, Reply::NotReady(_)));
        let ill = Reply::classify(&comp(2, 0, 0, &[0x72, 0x05, 0x20, 0x00]));
        assert!(ill.is_unsupported());
        let rec = Reply::classify(&comp(2, 0, 0, &[0x72, 0x01, 0x17, 0x00]));
        assert_eq!(rec, Reply::Good);
        let hw = Reply::classify(&comp(2, 0, 0, &[0x72, 0x04, 0x44, 0x00]));
        assert!(matches!(hw, Reply::Sense(s) if s.key == SenseKey::HARDWARE_ERROR));
    }

    #[test]
    fn classify_transport_before_status() {
        assert_eq!(
            Reply::classify(&comp(0x18, host::DID_TIME_OUT, 0, &[])),
            Reply::TimedOut
        );
        assert_eq!(
            Reply::classify(&comp(0, host::DID_NO_CONNECT, 0, &[])),
            Reply::Transport { host: 1, driver: 0 }
        );
        assert_eq!(
            Reply::classify(&comp(0, 0, driver::DRIVER_TIMEOUT, &[])),
            Reply::TimedOut
        );
        assert!(matches!(
            Reply::classify(&comp(0, 0, 0x04, &[])),
            Reply::Transport { .. }
        ));
    }

    #[test]
    fn classify_status_without_sense() {
        assert_eq!(Reply::classify(&comp(2, 0, 0, &[])), Reply::Status(2));
        assert_eq!(Reply::classify(&comp(0x08, 0, 0, &[])), Reply::Busy(8));
        assert_eq!(Reply::classify(&comp(0x28, 0, 0, &[])), Reply::Busy(0x28));
        assert_eq!(Reply::classify(&comp(0x04, 0, 0, &[])), Reply::Good);
    }
}
