//! Pure builders for the CDBs and parameter lists this crate sends (SPC-4 6.4, 6.15, 6.16,
//! 6.37 and SBC-3's TEST UNIT READY). No I/O: every function returns bytes.

use std::fmt;
use std::str::FromStr;

/// INQUIRY operation code.
pub const INQUIRY: u8 = 0x12;
/// TEST UNIT READY operation code.
pub const TEST_UNIT_READY: u8 = 0x00;
/// PERSISTENT RESERVE IN operation code.
pub const PERSISTENT_RESERVE_IN: u8 = 0x5e;
/// PERSISTENT RESERVE OUT operation code.
pub const PERSISTENT_RESERVE_OUT: u8 = 0x5f;
/// Length of the basic PR OUT parameter list.
pub const PROUT_PARAM_LEN: usize = 24;

/// A persistent reservation type (SPC-4 table 170). Values are the SCSI wire codes, which
/// differ from the Linux block layer's `enum pr_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrType {
    /// 1h: only the holder may write; everyone may read.
    WriteExclusive = 1,
    /// 3h: only the holder may read or write.
    ExclusiveAccess = 3,
    /// 5h: every registrant may write; the holder is one of them.
    WriteExclusiveRegistrantsOnly = 5,
    /// 6h: every registrant may read and write.
    ExclusiveAccessRegistrantsOnly = 6,
    /// 7h: every registrant is a holder and may write.
    WriteExclusiveAllRegistrants = 7,
    /// 8h: every registrant is a holder and may read and write.
    ExclusiveAccessAllRegistrants = 8,
}

impl PrType {
    /// All six types, in wire-code order.
    pub const ALL: [PrType; 6] = [
        PrType::WriteExclusive,
        PrType::ExclusiveAccess,
        PrType::WriteExclusiveRegistrantsOnly,
        PrType::ExclusiveAccessRegistrantsOnly,
        PrType::WriteExclusiveAllRegistrants,
        PrType::ExclusiveAccessAllRegistrants,
    ];

    /// The type for a wire code, if it is one of the six defined types.
    pub fn from_code(code: u8) -> Option<PrType> {
        PrType::ALL.into_iter().find(|t| *t as u8 == code)
    }

    /// Wire code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Short configuration name, also accepted by [`FromStr`].
    pub fn short_name(self) -> &'static str {
        match self {
            PrType::WriteExclusive => "write-exclusive",
            PrType::ExclusiveAccess => "exclusive-access",
            PrType::WriteExclusiveRegistrantsOnly => "write-exclusive-registrants-only",
            PrType::ExclusiveAccessRegistrantsOnly => "exclusive-access-registrants-only",
            PrType::WriteExclusiveAllRegistrants => "write-exclusive-all-registrants",
            PrType::ExclusiveAccessAllRegistrants => "exclusive-access-all-registrants",
        }
    }

    /// Whether every registrant holds the reservation (types 7h and 8h).
    pub fn all_registrants(self) -> bool {
        matches!(
            self,
            PrType::WriteExclusiveAllRegistrants | PrType::ExclusiveAccessAllRegistrants
        )
    }

    /// Name of any wire code, including undefined ones.
    pub fn code_name(code: u8) -> String {
        match PrType::from_code(code) {
            Some(t) => t.short_name().to_string(),
            None => format!("obsolete or reserved type 0x{code:x}"),
        }
    }
}

impl fmt::Display for PrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short_name())
    }
}

/// Error for an unknown PR type name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPrType(pub String);

impl fmt::Display for UnknownPrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown reservation type {:?}; use one of: {}",
            self.0,
            PrType::ALL.map(|t| t.short_name()).join(", ")
        )
    }
}

impl std::error::Error for UnknownPrType {}

impl FromStr for PrType {
    type Err = UnknownPrType;

    /// Accepts the short names, common abbreviations (`we`, `ea`, `wero`, `earo`, `wear`,
    /// `eaar`) and the wire codes (`1`, `3`, `5`, `6`, `7`, `8`, optionally `0x`-prefixed).
    fn from_str(s: &str) -> Result<PrType, UnknownPrType> {
        let l = s.trim().to_ascii_lowercase();
        let by_name = match l.as_str() {
            "we" | "wr_ex" => Some(PrType::WriteExclusive),
            "ea" | "ex_ac" => Some(PrType::ExclusiveAccess),
            "wero" | "wr_ex_ro" => Some(PrType::WriteExclusiveRegistrantsOnly),
            "earo" | "ex_ac_ro" => Some(PrType::ExclusiveAccessRegistrantsOnly),
            "wear" | "wr_ex_ar" => Some(PrType::WriteExclusiveAllRegistrants),
            "eaar" | "ex_ac_ar" => Some(PrType::ExclusiveAccessAllRegistrants),
            _ => PrType::ALL.into_iter().find(|t| t.short_name() == l),
        };
        let by_code = || {
            let digits = l.strip_prefix("0x").unwrap_or(&l);
            u8::from_str_radix(digits, 16)
                .ok()
                .and_then(PrType::from_code)
        };
        by_name
            .or_else(by_code)
            .ok_or_else(|| UnknownPrType(s.to_string()))
    }
}

/// PERSISTENT RESERVE IN service actions (SPC-4 table 163).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrInAction {
    /// 00h: the registered keys.
    ReadKeys = 0,
    /// 01h: the reservation holder, scope and type.
    ReadReservation = 1,
    /// 02h: what the device supports.
    ReportCapabilities = 2,
    /// 03h: every registration with its initiator port.
    ReadFullStatus = 3,
}

/// PERSISTENT RESERVE OUT service actions (SPC-4 table 174) this crate issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrOutAction {
    /// 00h: register, change or (new key 0) remove this nexus's key.
    Register = 0,
    /// 01h: take the reservation.
    Reserve = 1,
    /// 02h: give the reservation up.
    Release = 2,
    /// 03h: drop every registration and the reservation.
    Clear = 3,
    /// 04h: remove another key's registrations (and take its reservation).
    Preempt = 4,
    /// 05h: PREEMPT, and abort the preempted nexuses' queued commands.
    PreemptAndAbort = 5,
    /// 06h: register this nexus whatever key it had.
    RegisterAndIgnoreExistingKey = 6,
}

impl PrOutAction {
    /// Whether the service action uses the TYPE field.
    pub fn uses_type(self) -> bool {
        matches!(
            self,
            PrOutAction::Reserve
                | PrOutAction::Release
                | PrOutAction::Preempt
                | PrOutAction::PreemptAndAbort
        )
    }

    /// Command name for logs.
    pub fn name(self) -> &'static str {
        match self {
            PrOutAction::Register => "REGISTER",
            PrOutAction::Reserve => "RESERVE",
            PrOutAction::Release => "RELEASE",
            PrOutAction::Clear => "CLEAR",
            PrOutAction::Preempt => "PREEMPT",
            PrOutAction::PreemptAndAbort => "PREEMPT AND ABORT",
            PrOutAction::RegisterAndIgnoreExistingKey => "REGISTER AND IGNORE EXISTING KEY",
        }
    }
}

impl PrInAction {
    /// Command name for logs.
    pub fn name(self) -> &'static str {
        match self {
            PrInAction::ReadKeys => "READ KEYS",
            PrInAction::ReadReservation => "READ RESERVATION",
            PrInAction::ReportCapabilities => "REPORT CAPABILITIES",
            PrInAction::ReadFullStatus => "READ FULL STATUS",
        }
    }
}

/// `PERSISTENT RESERVE IN` CDB (10 bytes) with the given allocation length.
pub fn pr_in(action: PrInAction, alloc_len: u16) -> [u8; 10] {
    let mut c = [0u8; 10];
    c[0] = PERSISTENT_RESERVE_IN;
    c[1] = action as u8 & 0x1f;
    c[7..9].copy_from_slice(&alloc_len.to_be_bytes());
    c
}

/// `PERSISTENT RESERVE OUT` CDB (10 bytes); scope is always LU_SCOPE (0). `pr_type` is
/// ignored by the device for service actions that do not use it and sent as 0 then.
pub fn pr_out(action: PrOutAction, pr_type: Option<PrType>) -> [u8; 10] {
    let mut c = [0u8; 10];
    c[0] = PERSISTENT_RESERVE_OUT;
    c[1] = action as u8 & 0x1f;
    c[2] = match (action.uses_type(), pr_type) {
        (true, Some(t)) => t.code() & 0x0f,
        _ => 0,
    };
    c[5..9].copy_from_slice(&(PROUT_PARAM_LEN as u32).to_be_bytes());
    c
}

/// The basic 24-byte PR OUT parameter list: reservation key, service action reservation key,
/// and the flag byte (APTPL bit 0, ALL_TG_PT bit 2, SPEC_I_PT bit 3 — this crate sets none,
/// so registrations are per I_T nexus and not persisted across power loss by the device).
pub fn pr_out_params(key: u64, sa_key: u64) -> [u8; PROUT_PARAM_LEN] {
    let mut p = [0u8; PROUT_PARAM_LEN];
    p[0..8].copy_from_slice(&key.to_be_bytes());
    p[8..16].copy_from_slice(&sa_key.to_be_bytes());
    p
}

/// `INQUIRY` CDB (6 bytes): standard data when `page` is `None`, else that VPD page (EVPD=1).
pub fn inquiry(page: Option<u8>, alloc_len: u16) -> [u8; 6] {
    let mut c = [0u8; 6];
    c[0] = INQUIRY;
    if let Some(p) = page {
        c[1] = 0x01;
        c[2] = p;
    }
    c[3..5].copy_from_slice(&alloc_len.to_be_bytes());
    c
}

/// `MAINTENANCE IN / REPORT SUPPORTED OPERATION CODES` CDB (12 bytes) asking about one
/// command: reporting options 2 (operation code and service action).
pub fn report_supported_opcode(opcode: u8, service_action: u16, alloc_len: u32) -> [u8; 12] {
    let mut c = [0u8; 12];
    c[0] = 0xa3;
    c[1] = 0x0c;
    c[2] = 0x02;
    c[3] = opcode;
    c[4..6].copy_from_slice(&service_action.to_be_bytes());
    c[6..10].copy_from_slice(&alloc_len.to_be_bytes());
    c
}

/// `TEST UNIT READY` CDB (6 bytes).
pub fn test_unit_ready() -> [u8; 6] {
    [TEST_UNIT_READY, 0, 0, 0, 0, 0]
}

/// Lowercase hex with spaces, for debug logs of CDBs, parameter lists and sense.
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 3);
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{x:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pr_in_read_keys_bytes() {
        assert_eq!(
            pr_in(PrInAction::ReadKeys, 8192),
            [0x5e, 0x00, 0, 0, 0, 0, 0, 0x20, 0x00, 0]
        );
        assert_eq!(
            pr_in(PrInAction::ReadFullStatus, 0x1234),
            [0x5e, 0x03, 0, 0, 0, 0, 0, 0x12, 0x34, 0]
        );
    }

    #[test]
    fn pr_out_bytes() {
        assert_eq!(
            pr_out(
                PrOutAction::Reserve,
                Some(PrType::WriteExclusiveRegistrantsOnly)
            ),
            [0x5f, 0x01, 0x05, 0, 0, 0, 0, 0, 24, 0]
        );
        assert_eq!(
            pr_out(PrOutAction::PreemptAndAbort, Some(PrType::WriteExclusive)),
            [0x5f, 0x05, 0x01, 0, 0, 0, 0, 0, 24, 0]
        );
        // REGISTER does not use TYPE: it is sent as zero even when given.
        assert_eq!(
            pr_out(
                PrOutAction::RegisterAndIgnoreExistingKey,
                Some(PrType::ExclusiveAccess)
            ),
            [0x5f, 0x06, 0x00, 0, 0, 0, 0, 0, 24, 0]
        );
    }

    #[test]
    fn pr_out_param_bytes() {
        let p = pr_out_params(0x4c4b_0102_0304_0506, 0xaabb);
        assert_eq!(&p[0..8], &[0x4c, 0x4b, 1, 2, 3, 4, 5, 6]);
        assert_eq!(&p[8..16], &[0, 0, 0, 0, 0, 0, 0xaa, 0xbb]);
        assert_eq!(&p[16..], &[0; 8]);
    }

    #[test]
    fn inquiry_and_tur_bytes() {
        assert_eq!(inquiry(None, 96), [0x12, 0, 0, 0, 96, 0]);
        assert_eq!(inquiry(Some(0x83), 0x0200), [0x12, 1, 0x83, 0x02, 0x00, 0]);
        assert_eq!(test_unit_ready(), [0; 6]);
    }

    #[test]
    fn type_names_round_trip() {
        for t in PrType::ALL {
            assert_eq!(t.short_name().parse::<PrType>(), Ok(t));
            assert_eq!(format!("{}", t.code()).parse::<PrType>(), Ok(t));
            assert_eq!(PrType::from_code(t.code()), Some(t));
        }
        assert_eq!("WERO".parse(), Ok(PrType::WriteExclusiveRegistrantsOnly));
        assert_eq!("0x8".parse(), Ok(PrType::ExclusiveAccessAllRegistrants));
        assert!("2".parse::<PrType>().is_err());
        assert!("exclusive".parse::<PrType>().is_err());
        assert_eq!(PrType::code_name(2), "obsolete or reserved type 0x2");
    }

    #[test]
    fn hex_format() {
        assert_eq!(hex(&[0x5e, 0, 0xff]), "5e 00 ff");
        assert_eq!(hex(&[]), "");
    }
}
