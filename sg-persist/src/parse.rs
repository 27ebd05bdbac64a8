//! Pure parsers for PERSISTENT RESERVE IN and INQUIRY data (SPC-4 6.16, 6.4, 7.8.6, 7.8.18).
//! Every read is bounds-checked; a response shorter than its header says is reported as
//! truncated rather than read past its end.

use std::fmt;

use crate::cdb::PrType;

/// Why a response could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Fewer bytes than the fixed header of this response.
    TooShort {
        /// The response's name.
        what: &'static str,
        /// Bytes received.
        len: usize,
    },
    /// A field holds a value this crate cannot interpret.
    Invalid(&'static str),
    /// The device has more to say than one answer can carry (the allocation length of PR IN
    /// is 16 bits), or the answer kept growing while it was read again with its length.
    TooLong {
        /// The response's name.
        what: &'static str,
        /// Bytes the device reported (header included).
        len: usize,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::TooShort { what, len } => {
                write!(f, "{what} response too short ({len} bytes)")
            }
            ParseError::Invalid(what) => write!(f, "invalid {what} in response"),
            ParseError::TooLong { what, len } => write!(
                f,
                "{what} response of {len} bytes does not fit in one answer (at most 65535): too many registrations to judge"
            ),
        }
    }
}

impl std::error::Error for ParseError {}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// READ KEYS data: the generation and one key per registered I_T nexus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// PRgeneration: bumped by the device on every successful PR OUT that changes state.
    pub generation: u32,
    /// Registered keys, one per I_T nexus (the same key appears once per registered path).
    pub keys: Vec<u64>,
    /// The device had more keys than fitted in the allocation length.
    pub truncated: bool,
}

/// Parses READ KEYS data.
pub fn read_keys(b: &[u8]) -> Result<Keys, ParseError> {
    let too_short = ParseError::TooShort {
        what: "READ KEYS",
        len: b.len(),
    };
    let generation = be32(b, 0).ok_or(too_short.clone())?;
    let add = be32(b, 4).ok_or(too_short)? as usize;
    let avail = b.len() - 8;
    let n = add.min(avail) / 8;
    let keys = (0..n).filter_map(|i| be64(b, 8 + i * 8)).collect();
    Ok(Keys {
        generation,
        keys,
        truncated: add > avail,
    })
}

/// The length a PR IN answer with a 4-byte ADDITIONAL LENGTH at byte 4 needs in full (8 for a
/// header too short to say).
pub fn needed(b: &[u8]) -> usize {
    be32(b, 4).map_or(8, |a| 8usize.saturating_add(a as usize))
}

/// The current reservation, as READ RESERVATION reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// Reservation key of the holder (0 for all-registrants types on some devices).
    pub key: u64,
    /// Scope (0 = LU_SCOPE).
    pub scope: u8,
    /// Raw type code; [`PrType::from_code`] maps the defined ones.
    pub type_code: u8,
}

impl Reservation {
    /// The reservation type, if it is one of the six defined ones.
    pub fn pr_type(&self) -> Option<PrType> {
        PrType::from_code(self.type_code)
    }
}

/// READ RESERVATION data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReservationStatus {
    /// PRgeneration.
    pub generation: u32,
    /// `None` when no reservation is held.
    pub reservation: Option<Reservation>,
}

/// Parses READ RESERVATION data.
pub fn read_reservation(b: &[u8]) -> Result<ReservationStatus, ParseError> {
    let too_short = ParseError::TooShort {
        what: "READ RESERVATION",
        len: b.len(),
    };
    let generation = be32(b, 0).ok_or(too_short.clone())?;
    let add = be32(b, 4).ok_or(too_short.clone())?;
    if add == 0 {
        return Ok(ReservationStatus {
            generation,
            reservation: None,
        });
    }
    if add < 16 {
        return Err(ParseError::Invalid("READ RESERVATION additional length"));
    }
    let key = be64(b, 8).ok_or(too_short.clone())?;
    let st = *b.get(21).ok_or(too_short)?;
    Ok(ReservationStatus {
        generation,
        reservation: Some(Reservation {
            key,
            scope: st >> 4,
            type_code: st & 0x0f,
        }),
    })
}

/// REPORT CAPABILITIES data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Replace Lost Reservation capable.
    pub rlr_c: bool,
    /// Compatible Reservation Handling (SPC-2 RESERVE/RELEASE interplay).
    pub crh: bool,
    /// Specify Initiator Ports capable.
    pub sip_c: bool,
    /// All Target Ports capable.
    pub atp_c: bool,
    /// Persist Through Power Loss capable.
    pub ptpl_c: bool,
    /// Persist Through Power Loss activated.
    pub ptpl_a: bool,
    /// The type mask below is valid.
    pub tmv: bool,
    /// ALLOW COMMANDS field.
    pub allow_commands: u8,
    /// Types the device supports (only meaningful when `tmv`).
    pub types: Vec<PrType>,
}

/// Parses REPORT CAPABILITIES data.
pub fn report_capabilities(b: &[u8]) -> Result<Capabilities, ParseError> {
    if b.len() < 6 {
        return Err(ParseError::TooShort {
            what: "REPORT CAPABILITIES",
            len: b.len(),
        });
    }
    let (b2, b3, b4, b5) = (b[2], b[3], b[4], b[5]);
    let mut types = Vec::new();
    let mask = [
        (b4 & 0x02 != 0, PrType::WriteExclusive),
        (b4 & 0x08 != 0, PrType::ExclusiveAccess),
        (b4 & 0x20 != 0, PrType::WriteExclusiveRegistrantsOnly),
        (b4 & 0x40 != 0, PrType::ExclusiveAccessRegistrantsOnly),
        (b4 & 0x80 != 0, PrType::WriteExclusiveAllRegistrants),
        (b5 & 0x01 != 0, PrType::ExclusiveAccessAllRegistrants),
    ];
    for (set, t) in mask {
        if set {
            types.push(t);
        }
    }
    Ok(Capabilities {
        rlr_c: b2 & 0x80 != 0,
        crh: b2 & 0x10 != 0,
        sip_c: b2 & 0x08 != 0,
        atp_c: b2 & 0x04 != 0,
        ptpl_c: b2 & 0x01 != 0,
        ptpl_a: b3 & 0x01 != 0,
        tmv: b3 & 0x80 != 0,
        allow_commands: (b3 >> 4) & 0x07,
        types,
    })
}

/// A SCSI TransportID (SPC-4 7.6.4), reduced to a printable initiator identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportId {
    /// Fibre Channel: the initiator port's WWPN.
    FibreChannel(u64),
    /// iSCSI: initiator name, and the ISID when the format carries it.
    Iscsi(String),
    /// SAS: the initiator port's SAS address.
    Sas(u64),
    /// Any other protocol: its identifier and the raw bytes.
    Other {
        /// Protocol identifier (SPC-4 table 362).
        protocol: u8,
        /// The whole TransportID.
        bytes: Vec<u8>,
    },
}

impl TransportId {
    /// Parses one TransportID.
    pub fn parse(b: &[u8]) -> TransportId {
        let proto = b.first().map_or(0xf, |x| x & 0x0f);
        match proto {
            0x0 => match be64(b, 8) {
                Some(wwpn) => TransportId::FibreChannel(wwpn),
                None => TransportId::Other {
                    protocol: proto,
                    bytes: b.to_vec(),
                },
            },
            0x5 => {
                let len = be16(b, 2).map_or(0, usize::from);
                let raw = b.get(4..(4 + len).min(b.len())).unwrap_or(&[]);
                let text: String = raw
                    .iter()
                    .take_while(|c| **c != 0)
                    .map(|c| {
                        if c.is_ascii_graphic() {
                            char::from(*c)
                        } else {
                            '?'
                        }
                    })
                    .collect();
                TransportId::Iscsi(text)
            }
            0x6 => match be64(b, 4) {
                Some(a) => TransportId::Sas(a),
                None => TransportId::Other {
                    protocol: proto,
                    bytes: b.to_vec(),
                },
            },
            p => TransportId::Other {
                protocol: p,
                bytes: b.to_vec(),
            },
        }
    }
}

impl fmt::Display for TransportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportId::FibreChannel(w) => write!(f, "fc wwpn 0x{w:016x}"),
            TransportId::Iscsi(n) => write!(f, "iscsi {n}"),
            TransportId::Sas(a) => write!(f, "sas 0x{a:016x}"),
            TransportId::Other { protocol, bytes } => {
                write!(
                    f,
                    "protocol 0x{protocol:x} {}",
                    crate::cdb::hex(&bytes[..bytes.len().min(24)])
                )
            }
        }
    }
}

/// One registration as READ FULL STATUS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The registered key.
    pub key: u64,
    /// Registered for all target ports.
    pub all_tg_pt: bool,
    /// This registration's I_T nexus holds the reservation.
    pub holder: bool,
    /// Reservation scope, when `holder`.
    pub scope: u8,
    /// Reservation type code, when `holder`.
    pub type_code: u8,
    /// Relative identifier of the target port the registration is through.
    pub relative_target_port: u16,
    /// The initiator port of the registration.
    pub transport_id: TransportId,
}

/// READ FULL STATUS data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullStatus {
    /// PRgeneration.
    pub generation: u32,
    /// Every registration.
    pub registrations: Vec<Registration>,
    /// The device had more than fitted in the allocation length.
    pub truncated: bool,
}

/// Parses READ FULL STATUS data.
pub fn read_full_status(b: &[u8]) -> Result<FullStatus, ParseError> {
    let too_short = ParseError::TooShort {
        what: "READ FULL STATUS",
        len: b.len(),
    };
    let generation = be32(b, 0).ok_or(too_short.clone())?;
    let add = be32(b, 4).ok_or(too_short)? as usize;
    let end = 8usize.saturating_add(add).min(b.len());
    let mut at = 8;
    let mut registrations = Vec::new();
    let mut truncated = 8usize.saturating_add(add) > b.len();
    while at + 24 <= end {
        let d = &b[at..end];
        let tid_len = be32(d, 20).map_or(0, |v| v as usize);
        let Some(tid) = d.get(24..24usize.saturating_add(tid_len)) else {
            truncated = true;
            break;
        };
        registrations.push(Registration {
            key: be64(d, 0).unwrap_or(0),
            all_tg_pt: d[12] & 0x02 != 0,
            holder: d[12] & 0x01 != 0,
            scope: d[13] >> 4,
            type_code: d[13] & 0x0f,
            relative_target_port: be16(d, 18).unwrap_or(0),
            transport_id: TransportId::parse(tid),
        });
        at += 24 + tid_len;
    }
    Ok(FullStatus {
        generation,
        registrations,
        truncated,
    })
}

/// Standard INQUIRY data (the fields an admin recognises).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inquiry {
    /// Peripheral qualifier (0 = LU connected).
    pub qualifier: u8,
    /// Peripheral device type (0 = direct-access block device).
    pub device_type: u8,
    /// T10 vendor identification.
    pub vendor: String,
    /// Product identification.
    pub product: String,
    /// Product revision level.
    pub revision: String,
    /// SPC version claimed.
    pub version: u8,
}

fn ascii(b: &[u8]) -> String {
    b.iter()
        .map(|c| {
            if (0x20..0x7f).contains(c) {
                char::from(*c)
            } else {
                ' '
            }
        })
        .collect::<String>()
        .trim()
        .to_string()
}

/// Parses standard INQUIRY data.
pub fn inquiry(b: &[u8]) -> Result<Inquiry, ParseError> {
    if b.len() < 36 {
        return Err(ParseError::TooShort {
            what: "INQUIRY",
            len: b.len(),
        });
    }
    Ok(Inquiry {
        qualifier: b[0] >> 5,
        device_type: b[0] & 0x1f,
        version: b[2],
        vendor: ascii(&b[8..16]),
        product: ascii(&b[16..32]),
        revision: ascii(&b[32..36]),
    })
}

/// Parses the one-command answer of REPORT SUPPORTED OPERATION CODES: `Some(true)` when the
/// device claims the command as standard-conformant or vendor specific (SUPPORT 3 or 5),
/// `Some(false)` when it says not supported (1), `None` when it cannot tell (0 or reserved).
/// A claim only: tgt claims commands it then rejects.
pub fn supported_opcode(b: &[u8]) -> Result<Option<bool>, ParseError> {
    let Some(x) = b.get(1) else {
        return Err(ParseError::Invalid(
            "REPORT SUPPORTED OPERATION CODES answer",
        ));
    };
    Ok(match x & 0x07 {
        3 | 5 => Some(true),
        1 => Some(false),
        _ => None,
    })
}

/// Parses VPD page 0x80 (unit serial number).
pub fn vpd_serial(b: &[u8]) -> Result<String, ParseError> {
    if b.len() < 4 || b[1] != 0x80 {
        return Err(ParseError::Invalid("unit serial number page"));
    }
    let len = usize::from(be16(b, 2).unwrap_or(0));
    Ok(ascii(&b[4..(4 + len).min(b.len())]))
}

/// A logical-unit designator from VPD page 0x83, the identity shared by all paths to one LU.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LuId {
    /// Designator type: 3 = NAA, 2 = EUI-64, 8 = SCSI name string, 1 = T10 vendor id.
    pub kind: u8,
    /// The designator's bytes.
    pub bytes: Vec<u8>,
}

impl fmt::Display for LuId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex: String = self.bytes.iter().map(|x| format!("{x:02x}")).collect();
        match self.kind {
            3 => write!(f, "naa.{hex}"),
            2 => write!(f, "eui.{hex}"),
            8 | 1 | 0 => write!(
                f,
                "{}{}",
                match self.kind {
                    1 => "t10.",
                    0 => "vendor.",
                    _ => "",
                },
                ascii(&self.bytes).replace(' ', "_")
            ),
            0xff => write!(f, "unidentified LU on {}", ascii(&self.bytes)),
            k => write!(f, "type{k}.{hex}"),
        }
    }
}

impl LuId {
    /// Whether this is an NAA designator with the "locally assigned" format (NAA 3): a value
    /// the target made up (tgt builds it from target id and LUN), not unique beyond it.
    pub fn locally_assigned(&self) -> bool {
        self.kind == 3 && self.bytes.first().is_some_and(|b| b >> 4 == 3)
    }

    /// Whether this is an NAA designator in an IEEE format (2, 5, 6) whose company id is 0:
    /// no registered company vouches for it (tgt's NAA 6 is zeros, target id and LUN).
    pub fn unregistered_naa(&self) -> bool {
        let b = &self.bytes;
        self.kind == 3
            && b.len() >= 4
            && match b[0] >> 4 {
                5 | 6 => (b[0] & 0x0f) == 0 && b[1] == 0 && b[2] == 0 && (b[3] >> 4) == 0,
                2 => b.len() >= 5 && b[2] == 0 && b[3] == 0 && b[4] == 0,
                _ => false,
            }
    }

    /// Whether the designator says nothing unique on its own: a locally assigned NAA, an NAA
    /// without a company id, a T10 vendor id (tgt: `IET` + target id and LUN) or a
    /// vendor-specific value.
    pub fn weak(&self) -> bool {
        self.locally_assigned() || self.unregistered_naa() || self.kind == 1 || self.kind == 0
    }
}

/// Parses VPD page 0x83: every designator associated with the logical unit (association 0,
/// types NAA, EUI-64, SCSI name string, T10 vendor id, vendor specific), in page order.
pub fn vpd_designators(b: &[u8]) -> Result<Vec<LuId>, ParseError> {
    if b.len() < 4 || b[1] != 0x83 {
        return Err(ParseError::Invalid("device identification page"));
    }
    let end = (4 + usize::from(be16(b, 2).unwrap_or(0))).min(b.len());
    let mut at = 4;
    let mut out = Vec::new();
    while at + 4 <= end {
        let assoc = (b[at + 1] >> 4) & 0x3;
        let kind = b[at + 1] & 0x0f;
        let len = usize::from(b[at + 3]);
        let Some(body) = b.get(at + 4..at + 4 + len).filter(|_| at + 4 + len <= end) else {
            break;
        };
        if assoc == 0 && [3u8, 2, 8, 1, 0].contains(&kind) {
            out.push(LuId {
                kind,
                bytes: body.to_vec(),
            });
        }
        at += 4 + len;
    }
    if out.is_empty() {
        return Err(ParseError::Invalid(
            "device identification page without LU designator",
        ));
    }
    Ok(out)
}

/// The relative target port identifier in VPD page 0x83 (a designator of association 1, the
/// target port the page was read through, type 4): which target port a path's I_T nexus goes
/// to, as READ FULL STATUS reports it per registration. `None` when the page has none.
pub fn vpd_relative_port(b: &[u8]) -> Option<u16> {
    if b.len() < 4 || b[1] != 0x83 {
        return None;
    }
    let end = (4 + usize::from(be16(b, 2).unwrap_or(0))).min(b.len());
    let mut at = 4;
    while at + 4 <= end {
        let assoc = (b[at + 1] >> 4) & 0x3;
        let kind = b[at + 1] & 0x0f;
        let len = usize::from(b[at + 3]);
        if at + 4 + len > end {
            return None;
        }
        if assoc == 1 && kind == 4 && len == 4 {
            return be16(b, at + 6);
        }
        at += 4 + len;
    }
    None
}

/// The LU's best designator among `ids`: preference order NAA (not locally assigned), EUI-64,
/// SCSI name string, locally assigned NAA, T10 vendor id, vendor specific.
pub fn best_designator(ids: &[LuId]) -> Option<&LuId> {
    let rank = |d: &LuId| match d.kind {
        3 if !d.weak() => 0,
        2 => 1,
        8 => 2,
        3 => 3,
        1 => 4,
        _ => 5,
    };
    ids.iter().min_by_key(|d| rank(d))
}

/// Parses VPD page 0x83 and picks the LU's best designator (see [`best_designator`]).
pub fn vpd_lu_id(b: &[u8]) -> Result<LuId, ParseError> {
    let all = vpd_designators(b)?;
    Ok(best_designator(&all).cloned().expect("not empty"))
}

/// What identifies a logical unit seen through one path: every LU designator of VPD page
/// 0x83 and the unit serial number of VPD page 0x80 (when the device has one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The LU designators, in page order.
    pub designators: Vec<LuId>,
    /// The unit serial number.
    pub serial: Option<String>,
}

impl Identity {
    /// Why two paths with these identities cannot be taken for one LU, or `None` when they
    /// are one. Every designator and the serial number must agree, and the agreement must
    /// rest on more than weak designators (see [`LuId::weak`]): two tgt daemons give
    /// different LUs the same locally assigned NAA and T10 id, only their serials differ.
    pub fn mismatch(&self, other: &Identity) -> Option<String> {
        if let (Some(a), Some(b)) = (&self.serial, &other.serial)
            && a != b
        {
            return Some(format!("unit serial numbers differ: {a:?} and {b:?}"));
        }
        if self.serial.is_some() != other.serial.is_some() {
            return Some("only one of them reports a unit serial number".into());
        }
        let mut x = self.designators.clone();
        let mut y = other.designators.clone();
        x.sort_by(|a, b| (a.kind, &a.bytes).cmp(&(b.kind, &b.bytes)));
        y.sort_by(|a, b| (a.kind, &a.bytes).cmp(&(b.kind, &b.bytes)));
        if x != y {
            return Some("their VPD 0x83 designators differ".into());
        }
        if self.serial.is_none() && self.designators.iter().all(LuId::weak) {
            return Some(format!(
                "they agree only on designators a target assigns locally ({}) and report no unit serial number, which does not tell LUs of different targets apart: give the LU a unique serial number or NAA on the target",
                self.designators
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        None
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<String> = self
            .designators
            .iter()
            .map(|d| {
                if d.locally_assigned() {
                    format!("{d} (locally assigned)")
                } else if d.unregistered_naa() {
                    format!("{d} (no company id)")
                } else {
                    d.to_string()
                }
            })
            .collect();
        write!(f, "{}", ids.join(", "))?;
        match &self.serial {
            Some(s) => write!(f, "; serial {s}"),
            None => write!(f, "; no serial number"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_target_port_from_page_83() {
        // NAA 6 (LU), relative target port 2 (association 1, type 4), target port group 0x10
        let mut pg83 = vec![0, 0x83, 0, 28, 0x01, 0x03, 0, 8];
        pg83.extend_from_slice(&[0x60, 0x01, 0x40, 0x5a, 0, 0, 0, 1]);
        pg83.extend_from_slice(&[0x01, 0x14, 0, 4, 0, 0, 0, 2]);
        pg83.extend_from_slice(&[0x01, 0x15, 0, 4, 0, 0, 0, 0x10]);
        assert_eq!(vpd_relative_port(&pg83), Some(2));
        assert_eq!(vpd_relative_port(&pg83[..20]), None);
        assert_eq!(vpd_relative_port(&[0, 0x80, 0, 0]), None);
    }

    #[test]
    fn read_keys_fixture() {
        let b = [
            0, 0, 0, 3, 0, 0, 0, 16, 0x4c, 0x4b, 0, 0, 0, 0, 0xaa, 0xaa, 0, 0, 0, 0, 0, 0, 0xbb,
            0xbb,
        ];
        let k = read_keys(&b).unwrap();
        assert_eq!(k.generation, 3);
        assert_eq!(k.keys, vec![0x4c4b_0000_0000_aaaa, 0xbbbb]);
        assert!(!k.truncated);
        // Device says 24 bytes of keys, only 16 fit.
        let mut t = b;
        t[7] = 24;
        assert!(read_keys(&t).unwrap().truncated);
        assert!(read_keys(&b[..7]).is_err());
        assert_eq!(read_keys(&[0, 0, 0, 1, 0, 0, 0, 0]).unwrap().keys, vec![]);
    }

    #[test]
    fn read_reservation_fixture() {
        let none = [0, 0, 0, 9, 0, 0, 0, 0];
        assert_eq!(read_reservation(&none).unwrap().reservation, None);
        let mut held = [0u8; 24];
        held[3] = 2;
        held[7] = 16;
        held[8..16].copy_from_slice(&0xaaaau64.to_be_bytes());
        held[21] = 0x05;
        let r = read_reservation(&held).unwrap();
        assert_eq!(r.generation, 2);
        let res = r.reservation.unwrap();
        assert_eq!(res.key, 0xaaaa);
        assert_eq!(res.pr_type(), Some(PrType::WriteExclusiveRegistrantsOnly));
        assert!(read_reservation(&held[..20]).is_err());
        let mut bad = held;
        bad[7] = 4;
        assert!(read_reservation(&bad).is_err());
    }

    #[test]
    fn capabilities_fixture() {
        // LIO: CRH, SIP_C, ATP_C, PTPL_C; TMV; types WE EA WERO EARO WEAR EAAR.
        let b = [0, 8, 0x1d, 0x81, 0xea, 0x01, 0, 0];
        let c = report_capabilities(&b).unwrap();
        assert!(c.crh && c.sip_c && c.atp_c && c.ptpl_c && c.tmv && c.ptpl_a);
        assert!(!c.rlr_c);
        assert_eq!(c.types, PrType::ALL.to_vec());
        assert!(report_capabilities(&b[..5]).is_err());
    }

    #[test]
    fn full_status_fixture() {
        let name = b"iqn.2026-01.test:node-a,i,0x23d000000001\0\0\0";
        let mut d = vec![0, 0, 0, 7, 0, 0, 0, 0];
        let mut desc = vec![0u8; 24];
        desc[0..8].copy_from_slice(&0x4c4b_0000_0000_0001u64.to_be_bytes());
        desc[12] = 0x01;
        desc[13] = 0x05;
        desc[19] = 1;
        let mut tid = vec![0x45, 0, 0, name.len() as u8];
        tid.extend_from_slice(name);
        desc[20..24].copy_from_slice(&(tid.len() as u32).to_be_bytes());
        desc.extend_from_slice(&tid);
        let mut fc = vec![0u8; 24];
        fc[0..8].copy_from_slice(&2u64.to_be_bytes());
        fc[23] = 24;
        let mut fctid = vec![0u8; 24];
        fctid[8..16].copy_from_slice(&0xc003_ff00_0000_0001u64.to_be_bytes());
        fc.extend_from_slice(&fctid);
        d.extend_from_slice(&desc);
        d.extend_from_slice(&fc);
        let add = (d.len() - 8) as u32;
        d[4..8].copy_from_slice(&add.to_be_bytes());
        let s = read_full_status(&d).unwrap();
        assert_eq!(s.generation, 7);
        assert_eq!(s.registrations.len(), 2);
        let a = &s.registrations[0];
        assert!(a.holder);
        assert_eq!(a.type_code, 5);
        assert_eq!(
            a.transport_id,
            TransportId::Iscsi("iqn.2026-01.test:node-a,i,0x23d000000001".into())
        );
        assert_eq!(
            s.registrations[1].transport_id,
            TransportId::FibreChannel(0xc003_ff00_0000_0001)
        );
        assert!(!s.truncated);
        let cut = read_full_status(&d[..d.len() - 3]).unwrap();
        assert!(cut.truncated);
        assert_eq!(cut.registrations.len(), 1);
    }

    #[test]
    fn inquiry_fixture() {
        let mut b = vec![0u8; 36];
        b[2] = 6;
        b[8..16].copy_from_slice(b"LIO-ORG ");
        b[16..32].copy_from_slice(b"FILEIO          ");
        b[32..36].copy_from_slice(b"4.0 ");
        let i = inquiry(&b).unwrap();
        assert_eq!(
            (i.vendor.as_str(), i.product.as_str()),
            ("LIO-ORG", "FILEIO")
        );
        assert_eq!(i.revision, "4.0");
        assert_eq!(i.device_type, 0);
        assert!(inquiry(&b[..35]).is_err());
    }

    #[test]
    fn vpd_fixtures() {
        let mut s = vec![0, 0x80, 0, 8];
        s.extend_from_slice(b"abc-1234");
        assert_eq!(vpd_serial(&s).unwrap(), "abc-1234");
        // Target-port designator first (assoc 1), then T10 id and NAA for the LU.
        let mut p = vec![0, 0x83, 0, 0];
        p.extend_from_slice(&[0x01, 0x13, 0, 4, 0, 0, 0, 1]);
        p.extend_from_slice(&[0x02, 0x01, 0, 8]);
        p.extend_from_slice(b"LIO-ORG ");
        p.extend_from_slice(&[0x01, 0x03, 0, 16]);
        p.extend_from_slice(&[
            0x60, 0x01, 0x40, 0x5a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ]);
        let len = (p.len() - 4) as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        let id = vpd_lu_id(&p).unwrap();
        assert_eq!(id.kind, 3);
        assert_eq!(id.to_string(), "naa.6001405a0102030405060708090a0b0c");
        assert!(vpd_lu_id(&p[..20]).is_err());
        assert!(vpd_lu_id(&p[..8]).is_err());
        assert!(vpd_lu_id(&[0, 0x80, 0, 0]).is_err());
    }

    /// tgt 1.0.85's page 0x83 as two daemons send it for different LUs (T10 `IET` +
    /// tid/LUN, a locally assigned NAA 3 and an NAA 6 with company id 0, both from tid/LUN).
    fn tgt_page() -> Vec<u8> {
        let mut p = vec![0, 0x83, 0, 0];
        p.extend_from_slice(&[0x02, 0x01, 0, 16]);
        p.extend_from_slice(b"IET     00010001");
        p.extend_from_slice(&[0x01, 0x03, 0, 8, 0x30, 0, 0, 0x01, 0, 0, 0, 0x01]);
        p.extend_from_slice(&[0x01, 0x03, 0, 16, 0x60, 0, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&[0x0e, 0, 0, 0, 0, 0x01, 0, 0x01]);
        let len = (p.len() - 4) as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        p
    }

    #[test]
    fn supported_opcode_claims() {
        assert_eq!(supported_opcode(&[0, 0x03, 0, 10]).unwrap(), Some(true));
        assert_eq!(supported_opcode(&[0, 0x05]).unwrap(), Some(true));
        assert_eq!(supported_opcode(&[0, 0x01]).unwrap(), Some(false));
        assert_eq!(supported_opcode(&[0, 0x00]).unwrap(), None);
        assert!(supported_opcode(&[0]).is_err());
    }

    #[test]
    fn tgt_designators_are_weak() {
        let d = vpd_designators(&tgt_page()).unwrap();
        assert_eq!(d.len(), 3);
        assert!(d.iter().all(LuId::weak), "{d:?}");
        assert!(d[1].locally_assigned() && d[2].unregistered_naa());
        // nothing strong to prefer: the NAA 3 comes before the T10 id
        assert_eq!(
            best_designator(&d).unwrap().to_string(),
            "naa.3000000100000001"
        );
    }

    #[test]
    fn identity_needs_serial_and_all_designators() {
        let tgt = |serial: Option<&str>| Identity {
            designators: vpd_designators(&tgt_page()).unwrap(),
            serial: serial.map(str::to_string),
        };
        // two tgt LUs: same designators, serials differ -> refused, naming the serials
        let why = tgt(Some("lkh-shared0"))
            .mismatch(&tgt(Some("lkh-other")))
            .unwrap();
        assert!(
            why.contains("lkh-shared0") && why.contains("lkh-other"),
            "{why}"
        );
        // same designators and serial: one LU
        assert_eq!(tgt(Some("x")).mismatch(&tgt(Some("x"))), None);
        // weak designators alone, no serial anywhere: not trusted
        let why = tgt(None).mismatch(&tgt(None)).unwrap();
        assert!(why.contains("assigns locally"), "{why}");
        assert!(tgt(Some("x")).mismatch(&tgt(None)).is_some());
        // a strong NAA without serial is enough; a different designator set is not one LU
        let strong = |b: u8| Identity {
            designators: vec![LuId {
                kind: 3,
                bytes: vec![0x60, 0x01, 0x40, 0x5a, b],
            }],
            serial: None,
        };
        assert_eq!(strong(1).mismatch(&strong(1)), None);
        assert!(
            strong(1)
                .mismatch(&strong(2))
                .unwrap()
                .contains("designators differ")
        );
        assert!(!strong(1).designators[0].weak());
    }

    /// Whatever a device (or a broken transport) returns, the parsers answer Ok or Err, never
    /// panic: random buffers, mostly short, and lengths fields that lie.
    #[test]
    fn random_payloads_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..20_000 {
            let len = (next() % if round % 4 == 0 { 600 } else { 48 }) as usize;
            let b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = read_keys(&b);
            let _ = read_reservation(&b);
            let _ = report_capabilities(&b);
            let _ = read_full_status(&b);
            let _ = inquiry(&b);
            let _ = vpd_serial(&b);
            let _ = vpd_lu_id(&b).map(|id| id.to_string());
            let _ = TransportId::parse(&b).to_string();
            let _ = crate::sense::Sense::parse(&b).map(|s| s.to_string());
        }
    }
}
