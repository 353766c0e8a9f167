//! Reading the daemon's Prometheus endpoint as a scraper would: over HTTP
//! from inside the monitored namespace (the endpoint binds its loopback),
//! and picking samples out of the text exposition format by name and
//! labels. Shared by the tests that check what the metrics say against the
//! closing summary.

use std::time::Duration;

use anyhow::Context as _;

use crate::lab::Netns;

/// One `GET /metrics` to `127.0.0.1:port` in `ns` (nc, bounded): the whole
/// HTTP response, headers and body.
pub fn scrape(ns: &Netns, port: u16) -> anyhow::Result<String> {
    let request = format!(
        "printf 'GET /metrics HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n' | nc -w 2 127.0.0.1 {port}"
    );
    let out = ns
        .run(Duration::from_secs(10), "sh", &["-c", &request])
        .context("scraping the metrics")?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The value of the sample `name{labels}` in `text` (the text exposition
/// format), the labels matched as a set; `None` when no sample has
/// exactly those labels.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (found, value) = match rest.strip_prefix('{') {
            Some(rest) => {
                let (inside, value) = rest.split_once('}')?;
                (parse_labels(inside)?, value)
            }
            None if rest.starts_with(' ') => (Vec::new(), rest),
            None => return None,
        };
        let same = found.len() == labels.len()
            && labels
                .iter()
                .all(|(k, v)| found.iter().any(|(fk, fv)| fk == k && fv == v));
        if !same {
            return None;
        }
        value.split_whitespace().next()?.parse().ok()
    })
}

/// `k="v",k2="v2"` as pairs; label values here hold no quote or escape.
fn parse_labels(inside: &str) -> Option<Vec<(String, String)>> {
    let mut labels = Vec::new();
    let mut rest = inside;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let (value, after) = after.split_once('"')?;
        labels.push((key.trim().to_string(), value.to_string()));
        rest = after.strip_prefix(',').unwrap_or(after);
    }
    Some(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_found_by_name_and_label_set() {
        let text = "# HELP x\n\
            portconform_events_lost_total 0\n\
            portconform_export_lines_total{sink=\"syslog+tcp://192.0.2.2:10514\",outcome=\"sent\"} 15\n\
            portconform_export_lines_total{sink=\"syslog+tcp://192.0.2.2:10514\",outcome=\"dropped\"} 18\n";
        let sink = ("sink", "syslog+tcp://192.0.2.2:10514");
        assert_eq!(
            sample(
                text,
                "portconform_export_lines_total",
                &[sink, ("outcome", "dropped")]
            ),
            Some(18.0)
        );
        assert_eq!(
            sample(
                text,
                "portconform_export_lines_total",
                &[("outcome", "sent"), sink]
            ),
            Some(15.0)
        );
        assert_eq!(
            sample(text, "portconform_events_lost_total", &[]),
            Some(0.0)
        );
        assert_eq!(sample(text, "portconform_events_lost", &[]), None);
        assert_eq!(
            sample(text, "portconform_export_lines_total", &[sink]),
            None,
            "a label set must match whole"
        );
    }
}
