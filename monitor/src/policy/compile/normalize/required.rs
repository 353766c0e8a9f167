//! The Required? column and the conditions hidden in Notes
//! ("Required if rate limiting is used").

use crate::policy::model::Required;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub required: Required,
    pub condition: Option<String>,
    pub note: Option<String>,
    /// Set when the cells disagree and a reading was chosen.
    pub warning: Option<String>,
}

/// Reads a Required? cell (if the table has one) and a Notes cell (if any).
pub fn parse(required: Option<&str>, notes: Option<&str>) -> Result<Requirement, String> {
    let stated = match required.map(str::trim) {
        None => None,
        Some(cell) => Some(parse_cell(cell)?),
    };
    let in_required_cell = required.and_then(condition_of);
    let in_notes = notes.and_then(condition_of);
    let condition = in_required_cell.or(in_notes);
    Ok(match (stated, condition) {
        (Some(Required::No), Some(cond)) => Requirement {
            required: Required::Conditional,
            warning: Some(format!(
                "Required? says No but the notes make it required if {cond}: read as conditional"
            )),
            note: Some("Required? No with a condition: conditional".into()),
            condition: Some(cond),
        },
        (_, Some(cond)) => Requirement {
            required: Required::Conditional,
            note: Some(format!(
                "required only if {cond} (enable with --enable-condition)"
            )),
            condition: Some(cond),
            warning: None,
        },
        (Some(r), None) => Requirement {
            required: r,
            condition: None,
            note: None,
            warning: None,
        },
        (None, None) => Requirement {
            required: Required::Yes,
            condition: None,
            note: None,
            warning: None,
        },
    })
}

fn parse_cell(cell: &str) -> Result<Required, String> {
    let lower = cell.to_ascii_lowercase();
    let first = lower
        .split(|c: char| !c.is_alphanumeric())
        .find(|w| !w.is_empty())
        .unwrap_or("");
    match first {
        "yes" | "y" | "true" | "required" | "mandatory" | "must" | "enabled" | "on" => {
            Ok(Required::Yes)
        }
        // "Disabled" (by default): the port is off until someone turns it on.
        "no" | "n" | "false" | "optional" | "recommended" | "disabled" | "off" => Ok(Required::No),
        "conditional" | "conditionally" | "depends" | "if" | "when" => Ok(Required::Conditional),
        "" => Err("the Required? cell is empty".into()),
        _ => Err(format!("cannot read Required? {:?} as yes or no", cell)),
    }
}

/// Whether text about a row says it is off unless someone turns it on:
/// "(optional)", "Disabled by default", "recommended but optional".
pub fn says_optional(text: &str) -> bool {
    // Emphasis marks ("*(can be enabled optionally)*") say nothing.
    let lower = text.to_ascii_lowercase().replace(['*', '_'], "");
    lower.contains("(optional)")
        || lower.contains("enabled optionally")
        || lower.contains("optionally enabled")
        || lower.contains("can optionally be enabled")
        || lower.contains("disabled by default")
        || lower.contains("but optional")
        || lower.trim_end_matches(['.', ')']).ends_with(" optional")
}

/// The condition of a "required if ..." / "only if ..." phrase, without the
/// leading "if" and the trailing period. Purpose phrases ("required for
/// logging") are not conditions.
pub fn condition_of(text: &str) -> Option<String> {
    // ASCII lowering keeps byte offsets valid for slicing `text`.
    let lower = text.to_ascii_lowercase();
    const MARKERS: &[&str] = &[
        "required if ",
        "required when ",
        "required only if ",
        "needed if ",
        "needed when ",
        "only if ",
        "only when ",
        "necessary if ",
        "required only for ",
        "needed only for ",
        "only needed if ",
        "only needed when ",
        "only needed once ",
        "only needed for ",
        "only for ",
        "only in ",
        "only on ",
        "only while ",
        // "Ports 135 and 445 only have to be open while Setup runs".
        "only have to be open while ",
        "only has to be open while ",
        "only need to be open while ",
        "only needs to be open while ",
        "only during ",
        "only once ",
        "only with ",
        "if you enable ",
        "if you use ",
        ", if ",
    ];
    // "Not needed for an offline installation": needed everywhere else.
    const UNLESS: &[&str] = &[
        "not needed for ",
        "not needed in ",
        "not needed when ",
        "not required for ",
        "not required when ",
    ];
    if let Some(start) = UNLESS
        .iter()
        .filter_map(|m| lower.find(m).map(|i| i + m.len()))
        .min()
    {
        let rest = &text[start..];
        let end = rest.find(['.', ';']).unwrap_or(rest.len());
        let cond = rest[..end].trim();
        if !cond.is_empty() {
            return Some(format!("not {cond}"));
        }
    }
    // "Remote access while installing": the installer's traffic, needed
    // while the product is installed and not after.
    const INSTALLING: &[&str] = &[
        "while installing",
        "during installation",
        "during the installation",
        "at install time",
        "while the installer runs",
    ];
    if INSTALLING.iter().any(|m| lower.contains(m)) && !lower.contains("only if ") {
        return Some("during installation".into());
    }
    // "... has to be open to install it; you can close it once the
    // installation is done": needed until then.
    if let Some(i) = lower.find("close it once ") {
        let rest = &text[i + "close it once ".len()..];
        let end = rest.find(['.', ';']).unwrap_or(rest.len());
        let cond = rest[..end].trim();
        if !cond.is_empty() {
            return Some(format!("until {cond}"));
        }
    }
    let start = MARKERS
        .iter()
        .filter_map(|m| lower.find(m).map(|i| i + m.len()))
        .min()
        .or_else(|| lower.strip_prefix("if ").map(|_| 3))
        // "SSL. Once Tableau Server is configured for SSL, ...".
        .or_else(|| once_configured(&lower, lower.strip_prefix("once ").map(|_| 5)))
        .or_else(|| once_configured(&lower, lower.find(". once ").map(|i| i + 7)))?;
    let rest = text.get(start..)?;
    let end = rest.find(['.', ';', '(', ')']).unwrap_or(rest.len());
    let cond = rest[..end].trim().trim_end_matches(',').trim();
    (!cond.is_empty()).then(|| cond.to_string())
}

/// `start` if the "once ..." clause there is about how the product is set
/// up ("once it is configured for SSL"): that is a condition on the
/// deployment. "Once the first handshake is done" tells the order of one
/// connection's steps, which every deployment goes through.
fn once_configured(lower: &str, start: Option<usize>) -> Option<usize> {
    let start = start?;
    let rest = lower.get(start..)?;
    let clause = &rest[..rest.find([',', '.', ';']).unwrap_or(rest.len())];
    const SET_UP: &[&str] = &[
        "configured",
        "enabled",
        "installed",
        "deployed",
        "activated",
        "turned on",
        "set up",
        "switched",
    ];
    SET_UP.iter().any(|w| clause.contains(w)).then_some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installation_only_traffic() {
        assert_eq!(
            condition_of("Remote access while installing").as_deref(),
            Some("during installation")
        );
        assert_eq!(
            condition_of(
                "Port 5724 has to be open; you can close it once the installation is done."
            )
            .as_deref(),
            Some("until the installation is done")
        );
    }

    #[test]
    fn conditions() {
        let r = parse(Some("Yes"), Some("Required if rate limiting is used")).unwrap();
        assert_eq!(r.required, Required::Conditional);
        assert_eq!(r.condition.as_deref(), Some("rate limiting is used"));
        assert!(r.warning.is_none());

        let r = parse(
            Some("No"),
            Some("Required if you are using Grafana instrumentation"),
        )
        .unwrap();
        assert_eq!(r.required, Required::Conditional);
        assert_eq!(
            r.condition.as_deref(),
            Some("you are using Grafana instrumentation")
        );
        assert!(r.warning.is_some());

        let r = parse(Some("Yes"), Some("Required for logging and debugging")).unwrap();
        assert_eq!(r.required, Required::Yes);
        assert_eq!(parse(Some("No"), Some("")).unwrap().required, Required::No);
        assert_eq!(parse(None, None).unwrap().required, Required::Yes);
        assert!(parse(Some("perhaps"), None).is_err());
        assert_eq!(
            parse(Some("Enabled"), None).unwrap().required,
            Required::Yes
        );
        assert_eq!(
            parse(Some("Disabled"), None).unwrap().required,
            Required::No
        );
        assert_eq!(parse(Some("No*"), None).unwrap().required, Required::No);
        assert_eq!(
            condition_of("Metadata Service (MDS). Required only for RBAC.").as_deref(),
            Some("RBAC")
        );
        assert_eq!(
            condition_of("Docker Machine (only needed when using Node Driver/Templates)")
                .as_deref(),
            Some("using Node Driver/Templates")
        );
        assert_eq!(
            condition_of("SSL. Once Tableau Server is configured for SSL, it redirects").as_deref(),
            Some("Tableau Server is configured for SSL, it redirects")
        );
        assert_eq!(
            condition_of("JMX. Once the first handshake is done, it reconnects"),
            None
        );
        assert_eq!(
            condition_of("Licensing. Not needed for an offline (air-gapped) installation.")
                .as_deref(),
            Some("not an offline (air-gapped) installation")
        );
        assert!(says_optional("1514/UDP (optional)"));
        assert!(says_optional("HTTP Event Collector (disabled by default)"));
        assert!(!says_optional("Optionally tuned"));
        assert!(says_optional(
            "Receiving traps *(can be enabled optionally)*"
        ));
        assert!(says_optional("(seldom used, *can be enabled optionally*)"));
    }
}
