//! The resource's settings, checked in two stages: [`Settings::from_config`] checks shapes
//! (no system calls); [`Live::resolve`] checks them against the system (the interface
//! exists, the targets are reachable by the chosen method, the address is not the
//! interface's own). Every problem is a usage failure (exit 2) and nothing is changed; one
//! that depends on this node (an interface, a gateway, addresses it has) is marked
//! [`Failure::missing_here`], so Pacemaker bans the resource from this node only.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ip_monitor::Cidr;
use ip_monitor::netlink::{Address, Link, Netlink};
use ip_monitor::probe::Target;
use lkh_common::runstate::RunDir;
use lkh_common::{Config, Failure, Tag};

/// How targets are asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeMode {
    Arp,
    Icmp,
    Both,
}

impl ProbeMode {
    pub fn parse(s: &str) -> Option<ProbeMode> {
        match s {
            "arp" => Some(ProbeMode::Arp),
            "icmp" => Some(ProbeMode::Icmp),
            "both" => Some(ProbeMode::Both),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub address: Cidr,
    pub interface: String,
    pub targets: Vec<IpAddr>,
    pub probe: ProbeMode,
    pub garp_count: u32,
    pub grace: Duration,
    pub ping_tries: u32,
    pub ping_time: Duration,
    pub quickcheck_timeout: Duration,
    pub no_link_check: bool,
    pub no_ip_unique: bool,
}

impl Settings {
    /// The resource's settings from its configuration (every kit's `Settings::from_ctx`).
    pub fn from_ctx(ctx: &lkh_common::HookCtx) -> Result<Settings, Failure> {
        Settings::from_config(&ctx.config, &ctx.conf_file(), true)
    }

    /// Shape checks only. `require_address` is false for `probe`, which needs only an interface.
    pub fn from_config(
        cfg: &Config,
        conf: &std::path::Path,
        require_address: bool,
    ) -> Result<Settings, Failure> {
        let address = match cfg.get("ADDRESS") {
            Some(a) => a
                .parse::<Cidr>()
                .map_err(|e| cfg.invalid("ADDRESS", &format!("{e}")))?,
            None if require_address => {
                return Err(Failure::usage(format!(
                    "ADDRESS is not set: add ADDRESS=<address>/<prefix> to {}",
                    conf.display()
                )));
            }
            // probe without ADDRESS: a placeholder that matches nothing on-link.
            None => Cidr {
                addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                prefix: 32,
            },
        };
        let interface = cfg.require("INTERFACE", conf)?.to_owned();
        if interface.len() >= 16 || interface.contains('/') {
            return Err(cfg.invalid(
                "INTERFACE",
                "is not a valid interface name (at most 15 characters, no '/')",
            ));
        }
        let mut targets = Vec::new();
        for t in cfg.list("TARGETS") {
            let ip: IpAddr = t.parse().map_err(|_| {
                cfg.invalid(
                    "TARGETS",
                    &format!("'{t}' is not an IPv4 or IPv6 address (host names are not resolved)"),
                )
            })?;
            if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
                return Err(cfg.invalid(
                    "TARGETS",
                    &format!("{ip} cannot answer for the network: give a unicast off-host address"),
                ));
            }
            if ip == address.addr {
                return Err(cfg.invalid(
                    "TARGETS",
                    &format!("{ip} is ADDRESS itself: give off-host addresses such as the gateway"),
                ));
            }
            targets.push(ip);
        }
        // every key below has its default in the key table (`crate::SPEC`), which the
        // configuration starts from: no default is restated here
        let probe = cfg
            .get("PROBE")
            .and_then(ProbeMode::parse)
            .ok_or_else(|| cfg.invalid("PROBE", "is not one of arp, icmp, both"))?;
        let secs = |key| Duration::from_secs(cfg.uint(key).unwrap_or_default());
        // validated against the table's bounds (at most 100)
        let count = |key| cfg.uint(key).unwrap_or_default() as u32;
        Ok(Settings {
            address,
            interface,
            targets,
            probe,
            garp_count: count("GARP_COUNT"),
            grace: secs("GRACE"),
            ping_tries: count("IP_PINGTRIES"),
            ping_time: secs("IP_PINGTIME"),
            quickcheck_timeout: secs("IP_QUICKCHECK_TIMEOUT"),
            no_link_check: cfg.flag("IP_NOLINKCHECK").unwrap_or_default(),
            no_ip_unique: cfg.flag("NOIPUNIQUE").unwrap_or_default(),
        })
    }

    pub fn is_v6(&self) -> bool {
        self.address.addr.is_ipv6()
    }
}

/// The settings checked against the live system: the interface, its addresses, the targets.
#[derive(Debug)]
pub struct Live {
    pub nl: Netlink,
    pub link: Link,
    /// Addresses on INTERFACE, in kernel order.
    pub addrs: Vec<Address>,
    /// Addresses on other interfaces (to catch ADDRESS assigned elsewhere).
    pub elsewhere: Vec<(String, Address)>,
}

pub fn nl_err(what: &str, e: ip_monitor::Error) -> Failure {
    Failure::failed(format!(
        "{what}: {e}: the kernel's netlink interface did not answer as expected; retry, and check dmesg"
    ))
}

impl Live {
    pub fn resolve(s: &Settings, deadline: Instant) -> Result<Live, Failure> {
        let mut nl = Netlink::open().map_err(|e| nl_err("netlink", e))?;
        let links = nl
            .links(deadline)
            .map_err(|e| nl_err("list interfaces", e))?;
        let Some(link) = links.iter().find(|l| l.name == s.interface).cloned() else {
            let names: Vec<&str> = links
                .iter()
                .map(|l| l.name.as_str())
                .filter(|n| *n != "lo")
                .collect();
            return Err(Failure::usage(format!(
                "INTERFACE {} does not exist on this node (interfaces: {}): fix INTERFACE in the resource's configuration",
                s.interface,
                names.join(", ")
            ))
            .missing_here());
        };
        let all = nl
            .addresses(deadline)
            .map_err(|e| nl_err("list addresses", e))?;
        let mut addrs = Vec::new();
        let mut elsewhere = Vec::new();
        for a in all {
            if a.ifindex == link.index {
                addrs.push(a);
            } else {
                let name = links
                    .iter()
                    .find(|l| l.index == a.ifindex)
                    .map(|l| l.name.clone())
                    .unwrap_or_default();
                elsewhere.push((name, a));
            }
        }
        Ok(Live {
            nl,
            link,
            addrs,
            elsewhere,
        })
    }

    /// When INTERFACE does not exist on this node: `Some` with the interface ADDRESS is on
    /// instead (`None`: on no interface). `None` when INTERFACE exists. For remove, which must
    /// not fail for an interface that went away (the address cannot be on it), and must not
    /// succeed while the address lives on elsewhere on this node.
    pub fn interface_gone(
        s: &Settings,
        deadline: Instant,
    ) -> Result<Option<Option<String>>, Failure> {
        let mut nl = Netlink::open().map_err(|e| nl_err("netlink", e))?;
        let links = nl
            .links(deadline)
            .map_err(|e| nl_err("list interfaces", e))?;
        if links.iter().any(|l| l.name == s.interface) {
            return Ok(None);
        }
        let addrs = nl
            .addresses(deadline)
            .map_err(|e| nl_err("list addresses", e))?;
        Ok(Some(
            addrs
                .iter()
                .find(|a| a.cidr.addr == s.address.addr)
                .map(|a| {
                    links
                        .iter()
                        .find(|l| l.index == a.ifindex)
                        .map_or_else(|| format!("interface {}", a.ifindex), |l| l.name.clone())
                }),
        ))
    }

    /// Refresh the interface's state and addresses. An interface that is gone (a NIC removed
    /// from the VM) is an error (`ENODEV`), not its last known state.
    pub fn refresh(&mut self, s: &Settings, deadline: Instant) -> Result<(), ip_monitor::Error> {
        self.link = self
            .nl
            .link_by_name(&s.interface, deadline)?
            .ok_or_else(|| ip_monitor::Error::Io {
                op: "find the interface",
                source: std::io::Error::from_raw_os_error(libc::ENODEV),
            })?;
        let idx = self.link.index;
        self.addrs = self
            .nl
            .addresses(deadline)?
            .into_iter()
            .filter(|a| a.ifindex == idx)
            .collect();
        Ok(())
    }

    /// ADDRESS as currently assigned to INTERFACE (any prefix length).
    pub fn ours(&self, s: &Settings) -> Option<&Address> {
        self.addrs.iter().find(|a| a.cidr.addr == s.address.addr)
    }

    /// The interface's primary address of ADDRESS's family: its oldest one. The kernel lists
    /// IPv4 addresses oldest first (primaries before secondaries) and IPv6 addresses newest
    /// first, so that is the first IPv4 address or the last global IPv6 one.
    pub fn primary(&self, s: &Settings) -> Option<&Address> {
        if s.is_v6() {
            self.addrs
                .iter()
                .rev()
                .find(|a| a.cidr.addr.is_ipv6() && a.scope == 0)
        } else {
            self.addrs
                .iter()
                .find(|a| a.cidr.addr.is_ipv4() && !a.secondary())
        }
    }

    /// Refuse (exit 2) when ADDRESS is this node's own address on INTERFACE — its primary
    /// address, not one we added — or is assigned to another interface.
    pub fn check_not_own_address(&self, s: &Settings, marker: &Marker) -> Result<(), Failure> {
        if let Some((name, _)) = self
            .elsewhere
            .iter()
            .find(|(_, a)| a.cidr.addr == s.address.addr)
        {
            return Err(Failure::usage(format!(
                "ADDRESS {} is already assigned to interface {name}, not INTERFACE {}: remove it there or fix INTERFACE; nothing changed",
                s.address.addr, s.interface
            ))
            .missing_here());
        }
        if let Some(p) = self.primary(s)
            && p.cidr.addr == s.address.addr
            && !marker.records(s)
        {
            return Err(Failure::usage(format!(
                "ADDRESS {} is the primary address of {} (this node's own address), not a virtual one: choose an unused address; nothing changed",
                s.address.addr, s.interface
            ))
            .missing_here());
        }
        Ok(())
    }

    /// The interface that carries `ip`, when it is one of this node's addresses.
    fn owner<'a>(&'a self, s: &'a Settings, ip: IpAddr) -> Option<&'a str> {
        if self.addrs.iter().any(|a| a.cidr.addr == ip) {
            return Some(&s.interface);
        }
        self.elsewhere
            .iter()
            .find(|(_, a)| a.cidr.addr == ip)
            .map(|(name, _)| name.as_str())
    }

    /// An address of ours on `target`'s subnet to send ARP requests from: another address
    /// first (it stays when the virtual one moves), else ADDRESS if assigned, else 0.0.0.0.
    /// `None` when `target` is not on any subnet of the interface (or ADDRESS's subnet).
    pub fn arp_sender(&self, s: &Settings, target: IpAddr) -> Option<Ipv4Addr> {
        let IpAddr::V4(_) = target else { return None };
        let on_link = self.addrs.iter().any(|a| a.cidr.contains(target))
            || (s.address.addr.is_ipv4() && s.address.contains(target));
        if !on_link {
            return None;
        }
        let pick = |vip: bool| {
            self.addrs.iter().find_map(|a| match a.cidr.addr {
                IpAddr::V4(v4)
                    if a.cidr.contains(target) && (a.cidr.addr == s.address.addr) == vip =>
                {
                    Some(v4)
                }
                _ => None,
            })
        };
        Some(
            pick(false)
                .or_else(|| pick(true))
                .unwrap_or(Ipv4Addr::UNSPECIFIED),
        )
    }

    /// The configured targets, or the default gateway on INTERFACE; each with the methods
    /// PROBE allows. With PROBE=arp an off-link target is a usage error.
    pub fn targets(
        &mut self,
        s: &Settings,
        configured: &[IpAddr],
        mode: ProbeMode,
        deadline: Instant,
    ) -> Result<Vec<Target>, Failure> {
        let list: Vec<IpAddr> = if configured.is_empty() {
            vec![self.default_gateway(s, deadline)?]
        } else {
            configured.to_vec()
        };
        let mut out = Vec::new();
        for t in list {
            // The kernel answers an echo to its own address through loopback, even from a
            // socket bound to INTERFACE: such a target would pass with the network down.
            if let Some(on) = self.owner(s, t) {
                return Err(Failure::usage(format!(
                    "TARGETS {t} is this node's own address (on {on}): it answers locally and proves nothing about the network; give off-host addresses such as the gateway; nothing changed"
                ))
                .missing_here());
            }
            let arp_from = self.arp_sender(s, t);
            if mode == ProbeMode::Arp && t.is_ipv6() {
                return Err(Failure::usage(format!(
                    "TARGETS {t} is an IPv6 address and PROBE=arp asks only IPv4 neighbours: set PROBE=icmp or both; nothing changed"
                )));
            }
            if mode == ProbeMode::Arp && arp_from.is_none() {
                return Err(Failure::usage(format!(
                    "TARGETS {t} is not on any subnet of {} and PROBE=arp can only reach on-link hosts: set PROBE=icmp or both, or choose an on-link target; nothing changed",
                    s.interface
                ))
                .missing_here());
            }
            out.push(Target {
                addr: t,
                arp_from: if mode == ProbeMode::Icmp {
                    None
                } else {
                    arp_from
                },
                icmp: mode != ProbeMode::Arp,
            });
        }
        Ok(out)
    }

    fn default_gateway(&mut self, s: &Settings, deadline: Instant) -> Result<IpAddr, Failure> {
        let family = if s.is_v6() { 10 } else { 2 };
        let routes = self
            .nl
            .routes(family, deadline)
            .map_err(|e| nl_err("list routes", e))?;
        let mut gws: Vec<(bool, u32, IpAddr)> = routes
            .iter()
            .filter(|r| r.dst_len == 0 && r.kind == 1)
            .filter_map(|r| {
                let gw = r.gateway?;
                let via_if = r.oif == Some(self.link.index);
                let in_subnet =
                    s.address.contains(gw) || self.addrs.iter().any(|a| a.cidr.contains(gw));
                (via_if || in_subnet).then_some((!in_subnet, r.priority, gw))
            })
            .collect();
        gws.sort();
        gws.first().map(|g| g.2).ok_or_else(|| {
            Failure::usage(format!(
                "TARGETS is not set and there is no default gateway via {}: set TARGETS to off-host addresses (gateway, routers, peers on other hosts); nothing changed",
                s.interface
            ))
            .missing_here()
        })
    }
}

/// The note that restore added ADDRESS (so a later check can tell our address from the
/// node's own primary address): `ADDRESS INTERFACE` in one line, kept as
/// `<run dir>/ip/<TAG>/added` (lkh-common's run-state layer: `$LKHELPERS_RUN_DIR`, default
/// `/run/lkhelpers`), so it vanishes at reboot together with the address.
#[derive(Debug)]
pub struct Marker {
    run: RunDir,
    tag: Tag,
}

/// The marker's name in the tag's run-state directory.
pub const MARKER: &str = "added";

impl Marker {
    pub fn new(tag: &Tag) -> Marker {
        Marker::at(RunDir::new("ip"), tag)
    }

    pub fn at(run: RunDir, tag: &Tag) -> Marker {
        Marker {
            run,
            tag: tag.clone(),
        }
    }

    fn path(&self) -> PathBuf {
        self.run.path().join(self.tag.as_str()).join(MARKER)
    }

    /// Whether the note says restore added ADDRESS on INTERFACE. A note left from another
    /// ADDRESS (the configuration changed since) does not count, so it cannot make the node's
    /// own primary address pass for a virtual one; nor does one another user could have put
    /// there (a link, not root's: logged).
    pub fn records(&self, s: &Settings) -> bool {
        let bytes = match self.run.load(&self.tag, MARKER) {
            Ok(Some(b)) => b,
            Ok(None) => return false,
            Err(e) => {
                log::warn!("{e}");
                return false;
            }
        };
        let text = String::from_utf8_lossy(&bytes);
        let mut words = text.split_whitespace();
        let addr = words.next().and_then(|w| w.parse::<Cidr>().ok());
        addr.is_some_and(|c| c.addr == s.address.addr) && words.next() == Some(&s.interface)
    }

    pub fn set(&self, s: &Settings) {
        let note = format!("{} {}\n", s.address, s.interface);
        if let Err(e) = self.run.store(&self.tag, MARKER, note.as_bytes()) {
            log::warn!(
                "cannot record that we added {} in {}: {e}; remove and restore still work, but a primary-address check may refuse it later",
                s.address,
                self.path().display()
            );
        }
    }

    pub fn clear(&self) {
        if let Err(e) = self.run.remove(&self.tag, MARKER) {
            log::warn!("cannot remove {}: {e}", self.path().display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lkh_common::Exit;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, Failure> {
        let mut c = Config::defaults(crate::SPEC.keys);
        for (k, v) in pairs {
            c.set(crate::SPEC.keys, k, v)?;
        }
        Settings::from_config(&c, std::path::Path::new("/etc/lkhelpers/vip.conf"), true)
    }

    #[test]
    fn marker_lives_in_the_tags_run_state_directory() {
        let root = std::env::temp_dir().join(format!("lkh-ip-marker-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let s = settings(&[("ADDRESS", "192.0.2.10/24"), ("INTERFACE", "eth0")]).unwrap();
        let other = settings(&[("ADDRESS", "192.0.2.11/24"), ("INTERFACE", "eth0")]).unwrap();
        let tag = Tag::parse("vip.added").unwrap();
        let m = Marker::at(RunDir::at(&root, "ip"), &tag);
        assert!(!m.records(&s));
        m.set(&s);
        assert!(m.records(&s) && !m.records(&other));
        let file = root.join("ip/vip.added/added");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "192.0.2.10/24 eth0\n"
        );
        // a note planted as a link does not count
        std::fs::remove_file(&file).unwrap();
        let planted = root.join("planted");
        std::fs::write(&planted, "192.0.2.10/24 eth0\n").unwrap();
        std::os::unix::fs::symlink(&planted, &file).unwrap();
        assert!(!m.records(&s));
        m.clear();
        assert!(!file.exists() && planted.exists());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn defaults_follow_lifekeeper() {
        let s = settings(&[("ADDRESS", "192.0.2.10/24"), ("INTERFACE", "eth0")]).unwrap();
        assert_eq!(s.ping_tries, 3);
        assert_eq!(s.ping_time, Duration::from_secs(1));
        assert_eq!(s.quickcheck_timeout, Duration::from_secs(12));
        assert_eq!(s.grace, Duration::from_secs(3));
        assert_eq!(s.garp_count, 5);
        assert_eq!(s.probe, ProbeMode::Both);
        assert!(!s.no_link_check && !s.no_ip_unique);
        assert!(s.targets.is_empty());
    }

    /// Each refusal is a usage error that names the key and what is wrong with its value.
    #[test]
    fn bad_values_are_usage_errors() {
        let base = [("ADDRESS", "192.0.2.10/24"), ("INTERFACE", "eth0")];
        let bad: &[(&[(&str, &str)], &str)] = &[
            (&[("INTERFACE", "eth0")], "ADDRESS is not set: add ADDRESS="),
            (
                &[("ADDRESS", "192.0.2.10/24")],
                "INTERFACE is not set: add INTERFACE=",
            ),
            (
                &[("ADDRESS", "192.0.2.10"), ("INTERFACE", "eth0")],
                "ADDRESS (command line): missing /prefix (write e.g. 192.0.2.10/24)",
            ),
            (
                &[("ADDRESS", "192.0.2.300/24"), ("INTERFACE", "eth0")],
                "ADDRESS (command line): \"192.0.2.300\" is not an IPv4 or IPv6 address",
            ),
            (
                &[("ADDRESS", "2001:db8::1/129"), ("INTERFACE", "eth0")],
                "ADDRESS (command line): prefix \"129\" is not valid",
            ),
            (
                &[
                    ("ADDRESS", "192.0.2.10/24"),
                    ("INTERFACE", "averyveryverylongname"),
                ],
                "INTERFACE (command line): is not a valid interface name",
            ),
            (
                &[base[0], base[1], ("TARGETS", "gw.example")],
                "TARGETS (command line): 'gw.example' is not an IPv4 or IPv6 address (host names are not resolved)",
            ),
            (
                &[base[0], base[1], ("TARGETS", "192.0.2.10")],
                "TARGETS (command line): 192.0.2.10 is ADDRESS itself",
            ),
            (
                &[base[0], base[1], ("TARGETS", "224.0.0.1")],
                "TARGETS (command line): 224.0.0.1 cannot answer for the network",
            ),
        ];
        for (case, want) in bad {
            let e = settings(case)
                .err()
                .unwrap_or_else(|| panic!("{case:?} accepted"));
            assert_eq!(e.exit, Exit::Usage, "{case:?}: {e}");
            assert!(e.message.starts_with(want), "{case:?}: {e}");
        }
        for (k, v, want) in [
            (
                "PROBE",
                "ping",
                "PROBE='ping' is not one of: arp, icmp, both",
            ),
            (
                "GRACE",
                "x",
                "GRACE='x' is not a whole number from 0 to 600",
            ),
            (
                "IP_PINGTRIES",
                "0",
                "IP_PINGTRIES='0' is not a whole number from 1 to 100",
            ),
            (
                "NOIPUNIQUE",
                "maybe",
                "NOIPUNIQUE='maybe' is not a yes/no value",
            ),
        ] {
            let mut c = Config::defaults(crate::SPEC.keys);
            let e = c.set(crate::SPEC.keys, k, v).unwrap_err();
            assert_eq!(e.exit, Exit::Usage, "{k}={v}: {e}");
            assert!(e.message.contains(want), "{k}={v}: {e}");
        }
    }
}
