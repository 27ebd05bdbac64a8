//! What the agent says of itself, from the one parameter table ([`PARAMS`]): the metadata
//! Pacemaker's fencer reads (it validates against fence-agents' `metadata.rng`) and
//! `--help`.

use lkh_common::ocf::xml_escape as esc;

use super::params::{AGENT, Kind, PARAMS, Param};

/// The agent's metadata (validates against fence-agents' `metadata.rng`).
pub fn metadata() -> String {
    let mut s = String::from("<?xml version=\"1.0\" ?>\n");
    s += &format!(
        "<resource-agent name=\"{AGENT}\" shortdesc=\"Fence agent for SCSI-3 persistent reservations (lkhelpers, raw SG_IO)\" >\n"
    );
    s += "<longdesc>";
    s += &esc(
        "fence_lkhscsipr fences a node off shared disks with SCSI-3 persistent reservations issued directly with SG_IO (no sg_persist). \
Each node has its own random key (/etc/lkhelpers/node.key; `lkh-scsipr node-key` prints it), and keys maps node names to keys. \
on (unfencing, run on the node itself; needs meta provides=unfencing) registers the node's key on every path of every device and reserves (Write Exclusive, Registrants Only) when nobody holds. \
off registers this node's key first, then preempts and aborts the victim's key, and verifies that the key is gone and a reservation exists. \
A typo cannot fence the wrong node: an unknown plug, a map with a name or a key twice, or this node's own key as the victim are refused, and nothing is changed while any key registered on a device is in no entry of keys. \
status is 0 (on) when the key is registered, 2 (off) only when it is not and every registration belongs to another node of keys under a reservation; errors are 1. \
The fenced node is cut off the disks, not rebooted: run lkh-scsipr watch with ON_FENCED=halt on every node to make it reboot.",
    );
    s += "</longdesc>\n<vendor-url></vendor-url>\n<parameters>\n";
    for p in PARAMS.iter().filter(|p| p.listed) {
        let extra = match p.deprecated {
            Some((old, _)) => format!(" obsoletes=\"{old}\""),
            None => String::new(),
        };
        s += &parameter(p, p.name, &extra, p.description);
        if let Some((old, description)) = p.deprecated {
            s += &parameter(p, old, " deprecated=\"1\"", description);
        }
    }
    s += "</parameters>\n<actions>\n";
    s += "\t<action name=\"on\" on_target=\"1\" automatic=\"1\"/>\n";
    for a in [
        "off",
        "status",
        "monitor",
        "list",
        "metadata",
        "validate-all",
    ] {
        s += &format!("\t<action name=\"{a}\" />\n");
    }
    s += "</actions>\n</resource-agent>\n";
    s
}

/// One `<parameter>` of the metadata: `p` under `name`, with `extra` attributes.
fn parameter(p: &Param, name: &str, extra: &str, description: &str) -> String {
    let required = if p.required { "1" } else { "0" };
    let mut getopt = p.short.map(|c| format!("-{c}, ")).unwrap_or_default();
    if let Some(long) = p.long.first() {
        getopt += &format!("--{long}");
    }
    if let Some(v) = p.value {
        getopt += &format!("=[{v}]");
    }
    let kind = match p.kind {
        Kind::Text => "string",
        Kind::Seconds { .. } => "second",
        Kind::Verbosity | Kind::Help | Kind::Version => "boolean",
    };
    let mut s = format!(
        "\t<parameter name=\"{name}\" unique=\"0\" required=\"{required}\"{extra}>\n\t\t<getopt mixed=\"{}\" />\n",
        esc(&getopt)
    );
    match p.default {
        Some(d) => {
            s += &format!("\t\t<content type=\"{kind}\" default=\"{}\"  />\n", esc(d));
        }
        None => s += &format!("\t\t<content type=\"{kind}\"  />\n"),
    }
    s += &format!(
        "\t\t<shortdesc lang=\"en\">{}</shortdesc>\n\t</parameter>\n",
        esc(description)
    );
    s
}

pub fn help() -> String {
    let usage: Vec<&str> = PARAMS.iter().filter_map(|p| p.usage).collect();
    let usage = usage.join(" ");
    let stdin: Vec<String> = PARAMS
        .iter()
        .filter(|p| p.listed && p.on_stdin())
        .map(|p| format!("{}=", p.name))
        .collect();
    let stdin = stdin.join(", ");
    format!(
        "{AGENT}: fence agent (Pacemaker) on SCSI-3 persistent reservations, part of lkhelpers' lkh-scsipr

USAGE
  {AGENT} {usage}
  {AGENT} < key=value lines ({stdin})

ACTIONS
  on            unfence NODE (run on NODE itself): register its key on every path, reserve if nobody holds
  off           fence NODE (run on a survivor): register this node's key, PREEMPT AND ABORT NODE's key, verify
  status        0 if NODE's key is registered, 2 if it is provably fenced, 1 on error
  monitor       read keys and reservation of every device (0 ok, 1 failed)
  list          the nodes of --keys
  metadata      the agent's XML metadata
  validate-all  check the parameters (and that the devices exist) without sending anything

Each node's key: `lkh-scsipr node-key` on that node (created once in /etc/lkhelpers/node.key).
Refused, changing nothing: an unknown NODE, a name or a key twice in --keys, this node's own key
as the victim, and any key registered on a device that is in no entry of --keys (a typo).
Errors exit 1 (never 2, which only status uses, for off). One line per event on stderr and syslog.
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_well_formed_and_complete() {
        let m = metadata();
        assert!(
            m.starts_with("<?xml version=\"1.0\" ?>\n<resource-agent name=\"fence_lkhscsipr\"")
        );
        for p in [
            "action",
            "plug",
            "port",
            "devices",
            "keys",
            "delay",
            "power_timeout",
        ] {
            assert!(m.contains(&format!("<parameter name=\"{p}\"")), "{p}");
        }
        assert!(m.contains("<action name=\"on\" on_target=\"1\" automatic=\"1\"/>"));
        for a in [
            "off",
            "status",
            "monitor",
            "list",
            "metadata",
            "validate-all",
        ] {
            assert!(m.contains(&format!("<action name=\"{a}\" />")), "{a}");
        }
        assert!(!m.contains("\"reboot\""));
        // every tag opened is closed (a cheap well-formedness check; xmllint runs in tests/)
        assert_eq!(
            m.matches("<parameter ").count(),
            m.matches("</parameter>").count()
        );
        assert!(
            !m.replace("&amp;", "")
                .replace("&lt;", "")
                .replace("&gt;", "")
                .replace("&quot;", "")
                .replace("&apos;", "")
                .contains('&')
        );
    }
}
