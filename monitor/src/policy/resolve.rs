//! A policy says what the documents say; resolving it says what applies on
//! this host: which release is installed, which conditions hold, and what the
//! dynamic port range is. The kernel-map builder, `show` and `explain` all
//! work from the resolved rules, so that they agree.

use std::{collections::BTreeSet, fmt};

use super::{
    error::PolicyError,
    model::{Direction, Peer, Policy, PortRange, Ports, Proto, Release, Required, Rule},
};

/// Linux's default `net.ipv4.ip_local_port_range`, used when the host's
/// cannot be read.
pub const LINUX_DEFAULT_DYNAMIC: PortRange = PortRange {
    lo: 32768,
    hi: 60999,
};

const IP_LOCAL_PORT_RANGE: &str = "/proc/sys/net/ipv4/ip_local_port_range";

#[derive(Debug, Clone)]
pub struct ResolveOptions {
    /// The installed release; `None` keeps release-dependent rules of every
    /// release active (the union), which is what an unknown host needs.
    pub release: Option<Release>,
    pub conditions: Conditions,
    pub dynamic_ports: DynamicPorts,
}

impl ResolveOptions {
    /// What a host of unknown release that declared no condition resolves
    /// to: the rules of every release, no condition enabled, `dynamic` as
    /// the dynamic range (pinned, so that results do not depend on the
    /// machine's ip_local_port_range).
    pub fn all_releases(dynamic: PortRange) -> ResolveOptions {
        ResolveOptions {
            release: None,
            conditions: Conditions::default(),
            dynamic_ports: DynamicPorts::configured(dynamic),
        }
    }
}

/// Conditions the operator declared true (`--enable-condition`).
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    pub all: bool,
    /// Matched case-insensitively against a rule's condition text (any part
    /// of it) or its id.
    pub enabled: Vec<String>,
}

impl Conditions {
    fn matches(&self, rule: &Rule) -> bool {
        let Some(condition) = &rule.condition else {
            return false;
        };
        self.all
            || self
                .enabled
                .iter()
                .any(|e| e == &rule.id || condition.to_lowercase().contains(&e.to_lowercase()))
    }
}

/// Where the range of `ports = "dynamic"` rules comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DynamicPorts {
    pub range: PortRange,
    pub origin: DynamicOrigin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynamicOrigin {
    /// Given with `--dynamic-ports`.
    Configured,
    /// Read from the host's `ip_local_port_range`.
    Host,
    /// The host's could not be read; Linux's default is used.
    LinuxDefault,
}

impl fmt::Display for DynamicOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DynamicOrigin::Configured => "--dynamic-ports",
            DynamicOrigin::Host => "this host's ip_local_port_range",
            DynamicOrigin::LinuxDefault => "Linux's default (ip_local_port_range unreadable)",
        })
    }
}

impl DynamicPorts {
    /// The host's ephemeral range, or Linux's default if it cannot be read.
    pub fn from_host() -> DynamicPorts {
        std::fs::read_to_string(IP_LOCAL_PORT_RANGE)
            .ok()
            .and_then(|s| parse_range(&s))
            .map(|range| DynamicPorts {
                range,
                origin: DynamicOrigin::Host,
            })
            .unwrap_or(DynamicPorts {
                range: LINUX_DEFAULT_DYNAMIC,
                origin: DynamicOrigin::LinuxDefault,
            })
    }

    pub fn configured(range: PortRange) -> DynamicPorts {
        DynamicPorts {
            range,
            origin: DynamicOrigin::Configured,
        }
    }
}

/// "32768\t60999" (procfs) or "32768-60999" (command line).
pub fn parse_range(s: &str) -> Option<PortRange> {
    let mut parts = s
        .split(|c: char| c.is_whitespace() || c == '-')
        .filter(|p| !p.is_empty());
    let lo: u16 = parts.next()?.parse().ok()?;
    let hi: u16 = parts.next()?.parse().ok()?;
    (parts.next().is_none() && lo > 0 && lo <= hi).then_some(PortRange { lo, hi })
}

/// Whether a rule applies under the options, and why not if it does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Active,
    /// Replaced from `from` on (the installed release is at or past it).
    Superseded {
        from: Release,
        by: Option<String>,
    },
    /// Introduced in a later release than the installed one.
    NotYet {
        since: Release,
    },
    /// Its condition was not enabled: it allows its traffic, but does not
    /// require it.
    ConditionOff,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            State::Active => f.write_str("active"),
            State::Superseded { from, by: Some(by) } => {
                write!(f, "superseded by {by} from release {from}")
            }
            State::Superseded { from, by: None } => write!(f, "dropped from release {from}"),
            State::NotYet { since } => write!(f, "applies from release {since}"),
            State::ConditionOff => f.write_str("condition not enabled"),
        }
    }
}

/// A rule with its ports made concrete and its state under the options.
#[derive(Debug, Clone)]
pub struct Resolved<'p> {
    pub rule: &'p Rule,
    pub ports: Vec<PortRange>,
    pub state: State,
}

impl Resolved<'_> {
    /// In force: the rule allows its traffic. A conditional rule whose
    /// condition is off is in force too, because the vendor lists the
    /// traffic; it is only not required. Rules of another release are not.
    pub fn is_active(&self) -> bool {
        matches!(self.state, State::Active | State::ConditionOff)
    }

    /// In force and required (a conditional rule only when its condition is
    /// enabled): a flow on it that gets no answer is "blocked".
    pub fn is_required(&self) -> bool {
        self.state == State::Active
            && matches!(self.rule.required, Required::Yes | Required::Conditional)
    }

    pub fn matches_port(&self, port: u16) -> bool {
        self.ports.iter().any(|r| r.contains(port))
    }
}

/// Resolves every rule of `policy`, in policy order. Fails if an enabled
/// condition matches no rule, since that is almost always a typo.
pub fn resolve<'p>(
    policy: &'p Policy,
    options: &ResolveOptions,
) -> Result<Vec<Resolved<'p>>, PolicyError> {
    for wanted in &options.conditions.enabled {
        let probe = Conditions {
            all: false,
            enabled: vec![wanted.clone()],
        };
        if !policy.rules.iter().any(|r| probe.matches(r)) {
            let mut known: Vec<&str> = policy
                .rules
                .iter()
                .filter_map(|r| r.condition.as_deref())
                .collect();
            known.sort_unstable();
            known.dedup();
            return Err(PolicyError::UnknownCondition {
                given: wanted.clone(),
                known: if known.is_empty() {
                    "(the policy has no conditional rule)".into()
                } else {
                    known
                        .iter()
                        .map(|k| format!("{k:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            });
        }
    }
    Ok(policy
        .rules
        .iter()
        .map(|rule| {
            let ports = match &rule.ports {
                Ports::List(list) => list.clone(),
                Ports::Dynamic => vec![options.dynamic_ports.range],
            };
            Resolved {
                rule,
                ports,
                state: state_of(rule, options),
            }
        })
        .collect())
}

fn state_of(rule: &Rule, options: &ResolveOptions) -> State {
    if let Some(release) = &options.release {
        if let Some(until) = &rule.until
            && release >= until
        {
            return State::Superseded {
                from: until.clone(),
                by: rule.superseded_by.clone(),
            };
        }
        if let Some(since) = &rule.since
            && release < since
        {
            return State::NotYet {
                since: since.clone(),
            };
        }
    }
    if rule.required == Required::Conditional && !options.conditions.matches(rule) {
        return State::ConditionOff;
    }
    State::Active
}

/// The peer of an [`Entry`]: a role to look up in the inventory, or the
/// literal networks and names the document gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRef<'p> {
    Role(&'p str),
    Literals(&'p [Peer]),
}

/// One line of the kernel's allow tables: connections opened in `direction`
/// (inbound or outbound, never bidirectional) to `ports` over `proto`,
/// between the local role and the peer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entry<'p> {
    pub rule: &'p Rule,
    pub proto: Proto,
    /// Destination ports of the connection; `None` for ICMP.
    pub ports: Option<PortRange>,
    pub direction: Direction,
    pub local_role: &'p str,
    pub peer: PeerRef<'p>,
    /// A flow on it that gets no answer is reported as blocked.
    pub required: bool,
}

/// The rules in force on a host playing `roles`, flattened for the map
/// builder: its own rules and its peers' turned round (see
/// [`roles::seen_by`](super::roles::seen_by)); bidirectional rules become an
/// inbound and an outbound entry, port lists one entry per range. Rules of
/// another release yield nothing; conditional rules whose condition is off
/// yield entries that allow but are not required.
pub fn entries<'p>(resolved: &[Resolved<'p>], roles: &[String]) -> Vec<Entry<'p>> {
    let product: BTreeSet<&str> = resolved
        .iter()
        .map(|r| r.rule.local_role.as_str())
        .collect();
    let mut out = Vec::new();
    for r in resolved.iter().filter(|r| r.is_active()) {
        let rule = r.rule;
        let Some(seen) = super::roles::seen_by(rule, roles, &product) else {
            continue;
        };
        let (local_role, peer) = match (&rule.peer_role, seen.turned) {
            (Some(peer), true) => (peer.as_str(), PeerRef::Role(&rule.local_role)),
            (Some(role), false) => (rule.local_role.as_str(), PeerRef::Role(role)),
            (None, _) => (rule.local_role.as_str(), PeerRef::Literals(&rule.peer)),
        };
        let directions: &[Direction] = match seen.direction {
            Direction::Bidirectional => &[Direction::Inbound, Direction::Outbound],
            Direction::Inbound => &[Direction::Inbound],
            Direction::Outbound => &[Direction::Outbound],
        };
        let ports: Vec<Option<PortRange>> = if rule.proto.has_ports() {
            r.ports.iter().copied().map(Some).collect()
        } else {
            vec![None]
        };
        for &direction in directions {
            for &range in &ports {
                out.push(Entry {
                    rule,
                    proto: rule.proto,
                    ports: range,
                    direction,
                    local_role,
                    peer,
                    required: r.is_required(),
                });
            }
        }
    }
    out
}

/// The options unit tests across the crate resolve profiles with: release
/// 4.6, no conditions, dynamic ports 40000-40100.
#[cfg(test)]
pub(crate) fn test_options() -> ResolveOptions {
    ResolveOptions {
        release: Some("4.6".parse().unwrap()),
        conditions: Conditions::default(),
        dynamic_ports: DynamicPorts::configured(PortRange {
            lo: 40000,
            hi: 40100,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::model::NODES;

    #[test]
    fn ranges() {
        assert_eq!(
            parse_range("32768\t60999\n"),
            Some(PortRange {
                lo: 32768,
                hi: 60999
            })
        );
        assert_eq!(
            parse_range("20000-65535"),
            Some(PortRange {
                lo: 20000,
                hi: 65535
            })
        );
        assert_eq!(parse_range("2-1"), None);
        assert_eq!(parse_range("1"), None);
        assert_eq!(parse_range("1-2-3"), None);
    }

    #[test]
    fn entries_expand_directions_and_ranges_of_active_rules() {
        let policy = crate::policy::profiles::load("thoughtspot").unwrap();
        let options = test_options();
        let resolved = resolve(&policy, &options).unwrap();
        let all = entries(&resolved, &[NODES.into()]);
        let of = |id: &str| all.iter().filter(|e| e.rule.id == id).collect::<Vec<_>>();
        // Bidirectional: one inbound, one outbound.
        let dynamic = of("000-6");
        assert_eq!(dynamic.len(), 2);
        assert_eq!(
            dynamic[0].ports,
            Some(PortRange {
                lo: 40000,
                hi: 40100
            })
        );
        assert_eq!(dynamic[0].peer, PeerRef::Role("nodes"));
        // Alternatives: one entry per port.
        assert_eq!(of("000-67").len(), 2);
        // Superseded at 4.6: no entry.
        assert!(of("000-69").is_empty());
        assert_eq!(of("000-76").len(), 1);
        assert!(matches!(of("000-76")[0].peer, PeerRef::Literals(p) if p.len() == 1));
    }

    #[test]
    fn conditional_rules_are_allowed_always_and_required_only_when_enabled() {
        let policy = crate::policy::profiles::load("auth0-psaas").unwrap();
        let mut options = ResolveOptions {
            release: None,
            conditions: Conditions::default(),
            dynamic_ports: DynamicPorts::configured(LINUX_DEFAULT_DYNAMIC),
        };
        let ids = |options: &ResolveOptions| {
            let resolved = resolve(&policy, options).unwrap();
            entries(&resolved, &[NODES.into()])
                .iter()
                .filter(|e| e.rule.id == "004-47")
                .map(|e| (e.direction, e.required))
                .collect::<Vec<_>>()
        };
        // The vendor lists the traffic: allowed with its condition off, only
        // not required.
        assert_eq!(
            ids(&options),
            [(Direction::Inbound, false), (Direction::Outbound, false)]
        );
        options.conditions.enabled.push("Rate Limiting".into());
        assert_eq!(
            ids(&options),
            [(Direction::Inbound, true), (Direction::Outbound, true)]
        );
        // Optional rules are allowed but never required.
        let resolved = resolve(&policy, &options).unwrap();
        let all = entries(&resolved, &[NODES.into()]);
        let github: Vec<_> = all.iter().filter(|e| e.rule.id == "004-156").collect();
        assert_eq!(github.len(), 1);
        assert!(!github[0].required);
    }

    #[test]
    fn host_range_is_sane() {
        let d = DynamicPorts::from_host();
        assert!(d.range.lo <= d.range.hi && d.range.lo > 0);
    }
}
