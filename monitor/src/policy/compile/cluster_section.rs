//! A section about a cluster of the product's hosts ("The Checkmk
//! appliance cluster", "Database cluster") whose paragraph asks to open
//! its table's ports "for inbound and outbound traffic on both nodes" or
//! "in both directions between the nodes": every row is traffic among the
//! cluster's members, and either member opens it.

use super::roles;

/// The members' role a heading "<X> cluster" names: X without the words
/// it shares with the document's title (the product's name).
pub fn members(heading: &str, title: Option<&str>) -> Option<String> {
    let lower = roles::strip_numbering(heading).to_ascii_lowercase();
    let mut words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    if words.pop() != Some("cluster") {
        return None;
    }
    let title = title.unwrap_or("").to_ascii_lowercase();
    let title_words: Vec<&str> = title
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    while words.len() > 1
        && (matches!(words[0], "the" | "a" | "an") || title_words.contains(&words[0]))
    {
        words.remove(0);
    }
    if words.is_empty() {
        return None;
    }
    roles::slug(&words.join(" "))
}

/// Whether a paragraph says the ports below are open both ways among the
/// section's hosts.
pub fn among_members(paragraph: &str) -> bool {
    let lower = paragraph.to_ascii_lowercase();
    let both_ways = [
        "inbound and outbound",
        "incoming and outgoing",
        "both directions",
    ]
    .iter()
    .any(|w| lower.contains(w));
    let members = [
        "on both nodes",
        "between both nodes",
        "between the nodes",
        "between the two nodes",
        "between all nodes",
        "on all nodes",
        "on every node",
        "on each node",
    ]
    .iter()
    .any(|w| lower.contains(w));
    both_ways && members
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_sections() {
        assert_eq!(
            members(
                "6. The Checkmk appliance cluster",
                Some("Ports used by Checkmk")
            )
            .as_deref(),
            Some("appliance")
        );
        assert_eq!(
            members("Database cluster", None).as_deref(),
            Some("database")
        );
        assert_eq!(members("Cluster", None), None);
        assert_eq!(members("Agent ports", None), None);
        assert!(among_members(
            "Open the following ports for inbound and outbound traffic on both nodes."
        ));
        assert!(!among_members("Open the following ports on both nodes."));
    }
}
