//! The node → key map (`keys=node-a:0x4c4b…,node-b:0x4c4b…`), and why a typo fences nobody.
//!
//! Keys are random per node (`<conf dir>/node.key`, `lkh-scsipr node-key` prints it), so the
//! agent is told which key is whose. Its rules:
//! - the map itself: every entry `NAME:KEY`, a valid non-zero key, no name twice, **no key
//!   twice** (two nodes with one key cannot be told apart, fencing one would fence both);
//! - the plug must be a name in the map: an unknown plug is refused, listing the names;
//! - `off` runs on a survivor: this node's own key must be in the map under a name that is not
//!   the plug (our own key is never preempted; the map is proven right for us, [`survivor`]);
//! - **every key registered on a device must be in the map** before anything is changed on
//!   any device ([`KeyMap::audit`]): a mistyped victim key leaves the victim's real key
//!   unaccounted for, so the agent refuses (exit 1) and changes nothing;
//! - "off" without preempting anything (the victim's key is not registered) is reported only
//!   with that proof: every registration belongs to another node of the map and a reservation
//!   exists, so the victim cannot write; `status` says 2 (off) only on the same proof;
//! - `on` runs on the node it unfences: the plug's key in the map must be this node's key
//!   ([`unfence_target`]).

use crate::settings::{fmt_key, parse_key};

/// Node name → reservation key, checked: names and keys unique, keys valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyMap(Vec<(String, u64)>);

pub fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

impl KeyMap {
    /// Parses `NAME:KEY` entries separated by commas or white space.
    pub fn parse(raw: &str) -> Result<KeyMap, String> {
        let mut out: Vec<(String, u64)> = Vec::new();
        for entry in raw
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|e| !e.is_empty())
        {
            let Some((name, key)) = entry.split_once(':') else {
                return Err(format!(
                    "keys: entry {entry:?} is not NAME:KEY: write keys=node-a:0x4c4b…,node-b:0x4c4b… (each node's key: `lkh-scsipr node-key` on that node)"
                ));
            };
            if !valid_name(name) {
                return Err(format!(
                    "keys: {name:?} in {entry:?} is not a node name (letters, digits, '.', '_', '-'): write NAME:KEY"
                ));
            }
            let key = parse_key(key).map_err(|e| format!("keys: node {name}: {e}"))?;
            if let Some((n, _)) = out.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
                return Err(format!(
                    "keys: node {name} appears twice (also as {n}): give each node exactly one entry"
                ));
            }
            if let Some((n, _)) = out.iter().find(|(_, k)| *k == key) {
                return Err(format!(
                    "keys: {n} and {name} have the same key {}: two nodes with one key cannot be fenced apart; correct the mistyped entry (each node's key: `lkh-scsipr node-key` on that node)",
                    fmt_key(key)
                ));
            }
            out.push((name.to_owned(), key));
        }
        if out.is_empty() {
            return Err("keys is empty: write keys=node-a:0x4c4b…,node-b:0x4c4b… (each node's key: `lkh-scsipr node-key` on that node)".into());
        }
        Ok(KeyMap(out))
    }

    pub fn key_of(&self, node: &str) -> Option<u64> {
        self.0.iter().find(|(n, _)| n == node).map(|(_, k)| *k)
    }

    pub fn node_of(&self, key: u64) -> Option<&str> {
        self.0
            .iter()
            .find(|(_, k)| *k == key)
            .map(|(n, _)| n.as_str())
    }

    /// The entries, in the order given.
    pub fn entries(&self) -> &[(String, u64)] {
        &self.0
    }

    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// A key as "node (0x…)" when known, else the bare key.
    pub fn show(&self, key: u64) -> String {
        match self.node_of(key) {
            Some(n) => format!("{n} ({})", fmt_key(key)),
            None => fmt_key(key),
        }
    }

    /// The plug's key; an unknown plug is refused.
    pub fn victim(&self, plug: &str) -> Result<u64, String> {
        self.key_of(plug).ok_or_else(|| {
            format!(
                "plug {plug:?} is not in keys= (nodes: {}): check the node name, or add {plug}:KEY to keys=; nothing was done",
                self.names().join(", ")
            )
        })
    }

    /// Refuses registrations whose key is in no entry: the proof that a key in the map is not
    /// mistyped is that every key on the disk is accounted for.
    pub fn audit(&self, dev: &str, registered: &[u64]) -> Result<(), String> {
        let mut unknown: Vec<u64> = registered
            .iter()
            .copied()
            .filter(|k| self.node_of(*k).is_none())
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        if unknown.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{dev}: key(s) {} registered but in no entry of keys= ({}): a key in keys= is mistyped or a node is missing from it (each node's key: `lkh-scsipr node-key` on that node); nothing was changed",
            unknown
                .iter()
                .map(|k| fmt_key(*k))
                .collect::<Vec<_>>()
                .join(", "),
            self.0
                .iter()
                .map(|(n, k)| format!("{n}:{}", fmt_key(*k)))
                .collect::<Vec<_>>()
                .join(",")
        ))
    }
}

/// This node's entry for `off`: its key must be in the map, under a name other than the plug.
pub fn survivor<'a>(map: &'a KeyMap, own: u64, plug: &str) -> Result<&'a str, String> {
    match map.node_of(own) {
        None => Err(format!(
            "this node's key {} is not in keys= ({}): `off` runs on a surviving node, whose own key must be listed too; add NAME:{} for this node",
            fmt_key(own),
            map.names().join(", "),
            fmt_key(own)
        )),
        Some(n) if n == plug => Err(format!(
            "plug {plug} is this node (its key {} is this node's key): a node never fences itself; run off on another node",
            fmt_key(own)
        )),
        Some(n) => Ok(n),
    }
}

/// `on` runs on the node it unfences: the plug's key must be this node's key.
pub fn unfence_target(map: &KeyMap, own: u64, plug: &str) -> Result<(), String> {
    let want = map.victim(plug)?;
    if want == own {
        return Ok(());
    }
    let who = match map.node_of(own) {
        Some(n) => format!("this node is {n} in keys="),
        None => format!(
            "this node's key is not in keys= at all (its entry would be NAME:{})",
            fmt_key(own)
        ),
    };
    Err(format!(
        "keys= gives {plug} the key {}, but this node's key is {} ({who}): `on` unfences the node it runs on; run it on {plug}, or correct {plug}'s key in keys=; nothing was done",
        fmt_key(want),
        fmt_key(own)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KA: u64 = 0x4c4b_0000_0000_00a1;

    const KB: u64 = 0x4c4b_0000_0000_00b2;

    fn map() -> KeyMap {
        KeyMap::parse("node-a:0x4c4b0000000000a1, node-b:4c4b0000000000b2").unwrap()
    }

    #[test]
    fn key_map_rules() {
        let m = map();
        assert_eq!(m.key_of("node-a"), Some(KA));
        assert_eq!(m.node_of(KB), Some("node-b"));
        assert_eq!(m.key_of("Node-A"), None, "plugs match exactly");
        assert_eq!(
            KeyMap::parse("a:1 b:2\tc:3").unwrap().names(),
            vec!["a", "b", "c"]
        );
        for (bad, why) in [
            (
                "node-a:0x4c4b0000000000a1,node-b:0x4c4b0000000000a1",
                "the same key",
            ),
            ("node-a:1,node-b:0x0001", "the same key"),
            ("node-a:1,NODE-A:2", "appears twice"),
            ("node-a:1,node-a:2", "appears twice"),
            ("node-a:0", "key 0"),
            ("node-a:0x4c4b00000000zz", "not hexadecimal"),
            ("node-a:0x1ffffffffffffffff", "8 bytes"),
            ("node-a=1", "not NAME:KEY"),
            ("0x4c4b0000000000a1", "not NAME:KEY"),
            ("node a:1", "not NAME:KEY"),
            ("no/de:1", "not a node name"),
            (":1", "not a node name"),
            (" , ", "empty"),
        ] {
            let e = KeyMap::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn audit_refuses_unknown_registrations() {
        let m = map();
        assert!(m.audit("/dev/sdb", &[]).is_ok());
        assert!(m.audit("/dev/sdb", &[KA, KA, KB]).is_ok());
        // node-a's real key differs from the (mistyped) map entry: it is unaccounted for
        let e = m
            .audit("/dev/sdb", &[KB, 0x4c4b_0000_0000_00a7])
            .unwrap_err();
        assert!(
            e.starts_with("/dev/sdb: key(s) 0x4c4b0000000000a7 registered"),
            "{e}"
        );
        assert!(e.contains("nothing was changed"), "{e}");
    }

    #[test]
    fn survivor_and_unfence_rules() {
        let m = map();
        assert_eq!(survivor(&m, KB, "node-a"), Ok("node-b"));
        let e = survivor(&m, KA, "node-a").unwrap_err();
        assert!(e.contains("never fences itself"), "{e}");
        let e = survivor(&m, 0x77, "node-a").unwrap_err();
        assert!(e.contains("not in keys="), "{e}");
        assert!(unfence_target(&m, KA, "node-a").is_ok());
        let e = unfence_target(&m, KB, "node-a").unwrap_err();
        assert!(
            e.contains("this node is node-b") && e.contains("run it on node-a"),
            "{e}"
        );
        let e = unfence_target(&m, 0x77, "node-a").unwrap_err();
        assert!(e.contains("NAME:0x0000000000000077"), "{e}");
        assert!(
            unfence_target(&m, KA, "node-c")
                .unwrap_err()
                .contains("not in keys=")
        );
    }
}
