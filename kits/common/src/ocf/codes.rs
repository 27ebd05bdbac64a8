//! The one mapping of lkhelpers outcomes onto OCF return codes, as a table ([`MAPPING`]).
//!
//! Pacemaker acts on the code, so each one is a decision about the whole cluster:
//! 7 (`OCF_NOT_RUNNING`) says "not active here", 5 (`OCF_ERR_INSTALLED`) bans the resource
//! from this node only, 6 (`OCF_ERR_CONFIGURED`) stops it on every node. Hence the rules:
//!
//! - a probe (`monitor` with `OCF_RESKEY_CRM_meta_interval` 0 or unset, as resource-agents'
//!   `ocf_is_probe` reads it) answers 7 whenever the resource is not active on this node,
//!   whatever this node lacks: a node without the interface or the device cannot be running
//!   it, and a 5 or 6 there would stop a resource that runs elsewhere;
//! - 6 only for values that are wrong on every node (malformed, unknown or missing
//!   parameters: the shape checks of the configuration);
//! - 5 for what this node lacks or contradicts (a device, an interface, a default gateway, a
//!   mount point in use): another node may do better.
//!
//! [`exit_code`] classifies a [`Failure`] into a [`Case`] and looks its code up in the table;
//! the README and `--help` show the same table ([`rows`]), and a unit test checks that the
//! README's copy is this one.

use crate::cli::Action;
use crate::exit::{Exit, Failure, Hint};

use super::OcfAction;

/// OCF return codes we use.
pub const OCF_SUCCESS: u8 = 0;
pub const OCF_ERR_GENERIC: u8 = 1;
pub const OCF_ERR_UNIMPLEMENTED: u8 = 3;
pub const OCF_ERR_INSTALLED: u8 = 5;
pub const OCF_ERR_CONFIGURED: u8 = 6;
pub const OCF_NOT_RUNNING: u8 = 7;

/// An OCF call as the mapping sees it: the action, and for `monitor` whether it is a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// `monitor` with `OCF_RESKEY_CRM_meta_interval` 0 or unset: Pacemaker asks whether the
    /// resource is active on this node (at start-up, after a cleanup, on a new node).
    Probe,
    /// A recurring `monitor` (interval above 0): the resource is meant to run here.
    Monitor,
    Start,
    Stop,
    Recover,
    ValidateAll,
    /// An action this agent does not have.
    Unimplemented,
}

impl Call {
    /// The call for `action`; `interval` is `OCF_RESKEY_CRM_meta_interval` (milliseconds).
    /// `meta-data` is no call of the mapping: it always succeeds.
    pub fn of(action: &OcfAction, interval: Option<&str>) -> Option<Call> {
        Some(match action {
            OcfAction::Hook(Action::QuickCheck) => {
                // resource-agents' ocf_is_probe: unset counts as 0
                let recurring = interval.is_some_and(|i| i.trim().parse::<u64>() != Ok(0));
                if recurring {
                    Call::Monitor
                } else {
                    Call::Probe
                }
            }
            OcfAction::Hook(Action::Restore) => Call::Start,
            OcfAction::Hook(Action::Remove) => Call::Stop,
            OcfAction::Hook(Action::Recover) => Call::Recover,
            OcfAction::ValidateAll => Call::ValidateAll,
            OcfAction::Unimplemented(_) => Call::Unimplemented,
            OcfAction::MetaData => return None,
        })
    }
}

/// The outcomes the mapping tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// Exit 0.
    Done,
    /// Exit 1: the resource is not healthy, or the action did not succeed.
    Failed,
    /// A monitor found the resource not active on this node ([`Hint::NotRunning`]): no
    /// address, nothing mounted, no key of this node's. Other calls with that hint are
    /// classified by their exit code.
    NotActive,
    /// Exit 2 for something this node lacks or contradicts ([`Hint::MissingHere`]).
    MissingHere,
    /// Exit 2 for a value that is wrong on every node.
    Malformed,
    /// Exit 3: another node holds the resource.
    Fenced,
    /// An action this agent does not have.
    Unimplemented,
}

/// Which calls a rule covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Calls {
    Probe,
    /// Every monitor, probe or recurring.
    Monitor,
    /// Every call the rules before did not cover.
    Others,
}

impl Calls {
    fn cover(self, call: Call) -> bool {
        match self {
            Calls::Probe => call == Call::Probe,
            Calls::Monitor => matches!(call, Call::Probe | Call::Monitor),
            Calls::Others => true,
        }
    }

    fn words(self) -> &'static str {
        match self {
            Calls::Probe => "probe (monitor, interval 0)",
            Calls::Monitor => "monitor",
            Calls::Others => "otherwise",
        }
    }
}

/// One row of the mapping: an outcome, as the README's table names it, and its codes, the
/// first rule covering the call deciding.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    pub case: Case,
    pub outcome: &'static str,
    pub rules: &'static [(Calls, u8)],
}

/// The mapping, one row per [`Case`].
pub const MAPPING: &[Row] = &[
    Row {
        case: Case::Done,
        outcome: "0 done / healthy",
        rules: &[(Calls::Others, OCF_SUCCESS)],
    },
    Row {
        case: Case::Failed,
        outcome: "1 failed",
        rules: &[(Calls::Others, OCF_ERR_GENERIC)],
    },
    Row {
        case: Case::NotActive,
        outcome: "1 or 2 from a monitor that finds the resource not active on this node (no address, not mounted, no key of this node's)",
        rules: &[(Calls::Others, OCF_NOT_RUNNING)],
    },
    Row {
        case: Case::MissingHere,
        outcome: "2 this node lacks or contradicts a value (a device, an interface, a default gateway; a mount point in use)",
        rules: &[
            (Calls::Probe, OCF_NOT_RUNNING),
            (Calls::Others, OCF_ERR_INSTALLED),
        ],
    },
    Row {
        case: Case::Malformed,
        outcome: "2 malformed, unknown or missing parameter (wrong on every node)",
        rules: &[(Calls::Others, OCF_ERR_CONFIGURED)],
    },
    Row {
        case: Case::Fenced,
        outcome: "3 fenced: another node holds the resource",
        rules: &[
            (Calls::Monitor, OCF_NOT_RUNNING),
            (Calls::Others, OCF_ERR_GENERIC),
        ],
    },
    Row {
        case: Case::Unimplemented,
        outcome: "an action this agent does not have",
        rules: &[(Calls::Others, OCF_ERR_UNIMPLEMENTED)],
    },
];

/// An OCF code with its name and, where Pacemaker's reaction is drastic, that reaction.
pub fn code_words(code: u8) -> &'static str {
    match code {
        OCF_SUCCESS => "0 OCF_SUCCESS",
        OCF_ERR_GENERIC => "1 OCF_ERR_GENERIC",
        OCF_ERR_UNIMPLEMENTED => "3 OCF_ERR_UNIMPLEMENTED",
        OCF_ERR_INSTALLED => "5 OCF_ERR_INSTALLED (Pacemaker bans it from this node)",
        OCF_ERR_CONFIGURED => "6 OCF_ERR_CONFIGURED (Pacemaker stops it everywhere)",
        OCF_NOT_RUNNING => "7 OCF_NOT_RUNNING",
        _ => "an OCF code this agent does not use",
    }
}

/// The mapping as (outcome, OCF codes) lines, for `--help` and the README.
pub fn rows() -> Vec<(&'static str, String)> {
    MAPPING
        .iter()
        .map(|r| {
            let codes = match r.rules {
                [(Calls::Others, code)] => code_words(*code).to_owned(),
                rules => rules
                    .iter()
                    .map(|(calls, code)| format!("{}: {}", calls.words(), code_words(*code)))
                    .collect::<Vec<_>>()
                    .join("; "),
            };
            (r.outcome, codes)
        })
        .collect()
}

/// The case of an outcome of `call`.
pub fn case(call: Call, outcome: &Result<String, Failure>) -> Case {
    let monitor = matches!(call, Call::Probe | Call::Monitor);
    let Err(f) = outcome else {
        return if call == Call::Unimplemented {
            Case::Unimplemented
        } else {
            Case::Done
        };
    };
    match (f.exit, f.hint) {
        (Exit::Ok, _) => Case::Done,
        (_, Hint::NotRunning) if monitor => Case::NotActive,
        (Exit::Fenced, _) => Case::Fenced,
        // "not active" outside a monitor keeps what its exit code says, and a usage error
        // that is only known to leave the resource inactive is this node's, never everyone's
        (Exit::Usage, Hint::MissingHere | Hint::NotRunning) => Case::MissingHere,
        (Exit::Usage, Hint::None) => Case::Malformed,
        (Exit::Failed, _) => Case::Failed,
    }
}

/// The OCF code for an outcome of `call`, from [`MAPPING`].
pub fn exit_code(call: Call, outcome: &Result<String, Failure>) -> u8 {
    if call == Call::Unimplemented {
        return code_of(Case::Unimplemented, call);
    }
    code_of(case(call, outcome), call)
}

fn code_of(case: Case, call: Call) -> u8 {
    MAPPING
        .iter()
        .find(|r| r.case == case)
        .and_then(|r| r.rules.iter().find(|(calls, _)| calls.cover(call)))
        .map_or(OCF_ERR_GENERIC, |(_, code)| *code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(f: Failure) -> Result<String, Failure> {
        Err(f)
    }

    #[test]
    fn every_case_has_one_row_and_a_rule_for_every_call() {
        for case in [
            Case::Done,
            Case::Failed,
            Case::NotActive,
            Case::MissingHere,
            Case::Malformed,
            Case::Fenced,
            Case::Unimplemented,
        ] {
            let rows: Vec<&Row> = MAPPING.iter().filter(|r| r.case == case).collect();
            assert_eq!(rows.len(), 1, "{case:?}");
            assert_eq!(
                rows[0].rules.last().map(|r| r.0),
                Some(Calls::Others),
                "{case:?} ends with a rule for every other call"
            );
        }
    }

    #[test]
    fn probes_are_monitors_with_interval_zero_or_none() {
        let monitor = OcfAction::parse("monitor");
        assert_eq!(Call::of(&monitor, Some("0")), Some(Call::Probe));
        assert_eq!(Call::of(&monitor, None), Some(Call::Probe));
        assert_eq!(Call::of(&monitor, Some("10000")), Some(Call::Monitor));
        assert_eq!(
            Call::of(&OcfAction::parse("start"), Some("0")),
            Some(Call::Start)
        );
        assert_eq!(Call::of(&OcfAction::parse("meta-data"), None), None);
    }

    /// The table, call by call: (outcome, [probe, monitor, start, stop, recover, validate-all]).
    #[test]
    fn outcomes_translate_call_by_call() {
        let calls = [
            Call::Probe,
            Call::Monitor,
            Call::Start,
            Call::Stop,
            Call::Recover,
            Call::ValidateAll,
        ];
        let cases: Vec<(&str, Result<String, Failure>, [u8; 6])> = vec![
            ("done", Ok(String::new()), [0, 0, 0, 0, 0, 0]),
            ("failed", e(Failure::failed("x")), [1, 1, 1, 1, 1, 1]),
            (
                "failed, not active here",
                e(Failure::failed("x").not_running()),
                [7, 7, 1, 1, 1, 1],
            ),
            // issue 27: lkh-ip's probe on a node without a default gateway answered 6
            (
                "usage, not active here",
                e(Failure::usage("x").not_running()),
                [7, 7, 5, 5, 5, 5],
            ),
            (
                "usage, missing here",
                e(Failure::usage("x").missing_here()),
                [7, 5, 5, 5, 5, 5],
            ),
            (
                "usage, malformed",
                e(Failure::usage("x")),
                [6, 6, 6, 6, 6, 6],
            ),
            ("fenced", e(Failure::fenced("x")), [7, 7, 1, 1, 1, 1]),
        ];
        for (what, outcome, want) in cases {
            let got: Vec<u8> = calls.iter().map(|c| exit_code(*c, &outcome)).collect();
            assert_eq!(got, want, "{what}");
        }
        assert_eq!(exit_code(Call::Unimplemented, &Ok(String::new())), 3);
    }

    #[test]
    fn rows_name_each_code_once_per_rule() {
        let r = rows();
        assert_eq!(r[0], ("0 done / healthy", "0 OCF_SUCCESS".to_owned()));
        let missing = r.iter().find(|(o, _)| o.contains("lacks")).unwrap();
        assert_eq!(
            missing.1,
            "probe (monitor, interval 0): 7 OCF_NOT_RUNNING; otherwise: 5 OCF_ERR_INSTALLED (Pacemaker bans it from this node)"
        );
    }
}
