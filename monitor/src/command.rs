//! What every subcommand's command line shares: the value parsers behind
//! its options. Each subcommand's own arguments and entry point live in its
//! module's `command.rs` (`daemon::command` for `run`).

use std::{net::SocketAddr, time::Duration};

/// How `policy show`, `policy explain`, `validate` and `probe` write their
/// result on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// A timeout: seconds (`2`, `0.5`) or a humantime duration (`1500ms`),
/// bounded so that a typo cannot make a run hang or spin.
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Duration::from_secs_f64(secs),
        _ => humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e} (e.g. 5s, 1500ms)"))?,
    };
    if !(Duration::from_millis(100)..=Duration::from_secs(600)).contains(&d) {
        return Err(format!("{s:?} is outside 100ms to 10min"));
    }
    Ok(d)
}

/// Seconds between periodic outputs, from 0.1 s to a day.
pub fn parse_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.1..=86_400.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "{s:?} is not a number of seconds between 0.1 and 86400"
        )),
    }
}

/// Attempts per second, from 0.1 to 100: `probe` must stay gentle on a
/// production network.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.1..=100.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "{s:?} is not a rate between 0.1 and 100 per second"
        )),
    }
}

/// An interface name as the kernel accepts it (IFNAMSIZ, no separators),
/// so a lab never creates an interface the ruleset cannot name.
pub fn parse_ifname(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 15
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not an interface name (at most 15 letters, digits, - _ .)"
        ))
    }
}

/// `ADDR:PORT`, or a bare `PORT` on 127.0.0.1.
pub fn parse_metrics(s: &str) -> Result<SocketAddr, String> {
    crate::metrics::parse_metrics_addr(s).map_err(|e| e.to_string())
}
