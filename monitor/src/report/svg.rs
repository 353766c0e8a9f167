//! The HTML page's timeline: [`Timeline`] drawn as inline SVG, with no
//! script, at the top of the page. Each host is a lane of two rows,
//! unexpected flows (blue circles) above blocked ones (orange squares);
//! each non-empty column is one mark whose size and opacity grow with its
//! count, whose `<title>` tooltip gives the count and the column's time
//! span, and which links to the table row of the column's earliest flow.
//!
//! The picture is bounded whatever the traffic: at most [`MAX_LANES`]
//! lanes of [`super::timeline::COLUMNS`] columns, so a scan of a million
//! flows draws no more marks than a quiet day. Shapes differ as well as
//! colours (Okabe-Ito blue and vermillion, told apart with any colour
//! vision), and the `<desc>` says in words what the picture shows.
//!
//! Host names come from the events files: they are spliced with maud, which
//! escapes them like every other value of the page.

use std::cmp::Reverse;

use maud::{Markup, html};

use super::timeline::{Bin, Kind, Lane, Timeline};

/// Lanes drawn; past this the busiest hosts are (the Hosts table has all).
pub const MAX_LANES: usize = 40;

/// Unexpected flows' colour (Okabe-Ito blue, 5:1 on white).
pub const UNEXPECTED_COLOUR: &str = "#0072b2";
/// Blocked flows' colour (Okabe-Ito vermillion, 4:1 on white).
pub const BLOCKED_COLOUR: &str = "#d55e00";

/// Host labels' column.
const LABEL_W: f64 = 150.0;
/// The columns' area; each column is `PLOT_W / columns` wide.
const PLOT_W: f64 = 672.0;
/// Room for the last time label, centred on the plot's right edge.
const RIGHT_W: f64 = 90.0;
const LEGEND_H: f64 = 34.0;
const ROW_H: f64 = 16.0;
const LANE_GAP: f64 = 10.0;
const AXIS_H: f64 = 48.0;
/// Least distance between two time labels (an RFC 3339 label with
/// milliseconds is about 160 px in the page's 11 px monospace).
const TICK_SPACING: f64 = 180.0;
/// Host names longer than this are cut in the label (the tooltip and the
/// tables have them whole).
const HOST_CHARS: usize = 20;

/// The id of a flow's row in the page's blocked or unexpected-flow table:
/// its position in the report's list, which the aggregation makes the same
/// for the same events whatever order they were read in.
pub fn row_id(kind: Kind, index: usize) -> String {
    match kind {
        Kind::Unexpected => format!("flow-u{}", index + 1),
        Kind::Blocked => format!("flow-b{}", index + 1),
    }
}

/// Where a column's mark leads, and what the tooltip says of it: the
/// earliest flow's row; when the page does not list that one (it lists the
/// first `listed_unexpected` unexpected flows) the column's first listed
/// flow; when it lists none of them, the section.
fn target(kind: Kind, bin: &Bin, listed_unexpected: usize) -> (String, &'static str) {
    let listed = |i: usize| kind == Kind::Blocked || i < listed_unexpected;
    match (bin.earliest, bin.first_listed) {
        (Some((_, i)), _) if listed(i) => (format!("#{}", row_id(kind, i)), "the earliest"),
        (_, Some(i)) if listed(i) => (
            format!("#{}", row_id(kind, i)),
            "the busiest listed (the earliest is past the page's list; --format json has all)",
        ),
        _ => (
            match kind {
                Kind::Unexpected => "#unexpected".into(),
                Kind::Blocked => "#blocked".into(),
            },
            "the section (none of these is in the page's list; --format json has all)",
        ),
    }
}

/// The lanes drawn: all, or the [`MAX_LANES`] with the most flows, in the
/// report's host order.
fn shown(t: &Timeline) -> Vec<&Lane> {
    if t.lanes.len() <= MAX_LANES {
        return t.lanes.iter().collect();
    }
    let mut busiest: Vec<usize> = (0..t.lanes.len()).collect();
    busiest.sort_by_key(|&i| {
        let l = &t.lanes[i];
        (
            Reverse(l.flows(Kind::Unexpected) + l.flows(Kind::Blocked)),
            i,
        )
    });
    busiest.truncate(MAX_LANES);
    busiest.sort_unstable();
    busiest.into_iter().map(|i| &t.lanes[i]).collect()
}

fn short(host: &str) -> String {
    if host.chars().count() <= HOST_CHARS {
        host.to_string()
    } else {
        let mut s: String = host.chars().take(HOST_CHARS - 1).collect();
        s.push('…');
        s
    }
}

/// What every mark of one picture is measured against.
struct Scale {
    /// A column's width in px.
    column_w: f64,
    /// The most flows of one kind in one column: the largest mark.
    max: u64,
    /// Unexpected flows the page lists (the first of the report's list).
    listed_unexpected: usize,
}

/// A coordinate, to a tenth of a pixel.
fn px(v: f64) -> String {
    format!("{v:.1}")
}

fn plural(n: u64, kind: Kind) -> String {
    format!("{n} {}", kind.noun(n))
}

/// The column edges labelled on the axis: every `k`-th, `k` the fewest
/// columns at least [`TICK_SPACING`] wide, and the end.
fn ticks(columns: usize, column_w: f64) -> Vec<usize> {
    let k = ((TICK_SPACING / column_w).ceil() as usize).max(1);
    let mut out: Vec<usize> = (0..=columns).step_by(k).collect();
    if out.last() != Some(&columns) {
        if out.len() > 1 && ((columns - out[out.len() - 1]) as f64) * column_w < TICK_SPACING {
            out.pop();
        }
        out.push(columns);
    }
    out
}

/// The "Timeline" section: the picture, or a sentence when there is
/// nothing to draw.
pub fn section(timeline: Option<&Timeline>, listed_unexpected: usize) -> Markup {
    html! {
        section id="timeline" {
            h2 { "Timeline" }
            @match timeline {
                None => {
                    p { "No unexpected or blocked flow was reported: there is nothing to draw over time." }
                }
                Some(t) => { (picture(t, listed_unexpected)) }
            }
        }
    }
}

fn picture(t: &Timeline, listed_unexpected: usize) -> Markup {
    let lanes = shown(t);
    let (from, to) = (t.label(t.start), t.label(t.end()));
    let width = t.width_text();
    let column_w = PLOT_W / t.columns as f64;
    let lane_h = 2.0 * ROW_H + LANE_GAP;
    let axis_y = LEGEND_H + lanes.len() as f64 * lane_h;
    let (svg_w, svg_h) = (LABEL_W + PLOT_W + RIGHT_W, axis_y + AXIS_H);
    let scale = Scale {
        column_w,
        max: t.max_bin().max(1),
        listed_unexpected,
    };
    let undated: u64 = t.lanes.iter().map(|l| l.undated).sum();
    let summary = format!(
        "Timeline of unexpected and blocked flows for {} {}, {from} to {to} UTC",
        lanes.len(),
        if lanes.len() == 1 { "host" } else { "hosts" }
    );
    html! {
        p {
            "Unexpected and blocked flows per host, each placed at its first sighting, from "
            span.time { (from) } " to " span.time { (to) } " (UTC), one column per " (width)
            ". Each mark links to the earliest flow of its column in the tables below; "
            "its tooltip gives the count."
            @if lanes.len() < t.lanes.len() {
                " The " (lanes.len()) " hosts with the most flows of " (t.lanes.len())
                " are drawn; the Hosts table lists all."
            }
            @if undated > 0 { " " (undated) " blocked flows without a failure time are not drawn." }
        }
        svg.timeline xmlns="http://www.w3.org/2000/svg" role="group" aria-label=(summary)
            width=(px(svg_w)) height=(px(svg_h)) viewBox={ "0 0 " (px(svg_w)) " " (px(svg_h)) } {
            title { (summary) }
            desc { (description(t, &lanes)) }
            (legend(scale.max))
            @for (i, lane) in lanes.iter().enumerate() {
                (lane_marks(t, lane, LEGEND_H + i as f64 * lane_h, &scale))
            }
            (axis(t, axis_y, column_w))
        }
    }
}

/// The `<desc>`: what the picture shows, in words.
fn description(t: &Timeline, lanes: &[&Lane]) -> String {
    let mut s = format!(
        "Each host has two rows: unexpected flows as blue circles above, blocked flows as \
         orange squares below, each in the column of its first sighting; {} columns of {} \
         from {} to {} UTC.",
        t.columns,
        t.width_text(),
        t.label(t.start),
        t.label(t.end())
    );
    for lane in lanes {
        s.push_str(&format!(
            " {}: {}, {}.",
            lane.host,
            plural(lane.flows(Kind::Unexpected), Kind::Unexpected),
            plural(lane.flows(Kind::Blocked), Kind::Blocked)
        ));
    }
    s
}

fn legend(max: u64) -> Markup {
    let y = LEGEND_H / 2.0;
    html! {
        g.legend {
            circle cx=(px(LABEL_W + 6.0)) cy=(px(y)) r="5" fill=(UNEXPECTED_COLOUR) stroke=(UNEXPECTED_COLOUR) {}
            text x=(px(LABEL_W + 16.0)) y=(px(y + 4.0)) { "unexpected flow" }
            rect x=(px(LABEL_W + 140.0)) y=(px(y - 5.0)) width="10" height="10"
                fill=(BLOCKED_COLOUR) stroke=(BLOCKED_COLOUR) {}
            text x=(px(LABEL_W + 156.0)) y=(px(y + 4.0)) { "blocked flow" }
            text x=(px(LABEL_W + 270.0)) y=(px(y + 4.0)) {
                "larger and darker: more in the column (at most " (max) ")"
            }
        }
    }
}

/// A mark's half size: from 2.5 px for one flow to filling the row for the
/// busiest column, its area growing with the count.
fn radius(n: u64, max: u64, column_w: f64) -> f64 {
    let big = (column_w.min(ROW_H) / 2.0 - 1.0).clamp(2.5, 7.0);
    let small = 2.5f64.min(big);
    small + (big - small) * (n as f64 / max as f64).sqrt()
}

fn lane_marks(t: &Timeline, lane: &Lane, top: f64, scale: &Scale) -> Markup {
    html! {
        g.lane data-host=(lane.host) {
            rect x=(px(LABEL_W)) y=(px(top)) width=(px(PLOT_W)) height=(px(2.0 * ROW_H)) fill="#f4f4f4" {}
            line x1=(px(LABEL_W)) x2=(px(LABEL_W + PLOT_W)) y1=(px(top + ROW_H)) y2=(px(top + ROW_H))
                stroke="#e2e2e2" {}
            text.host x=(px(LABEL_W - 8.0)) y=(px(top + ROW_H + 4.0)) text-anchor="end" {
                title { (lane.host) }
                (short(&lane.host))
            }
            @for kind in [Kind::Unexpected, Kind::Blocked] {
                @let cy = top + ROW_H / 2.0 + if kind == Kind::Blocked { ROW_H } else { 0.0 };
                @for (i, bin) in lane.bins(kind).iter().enumerate().filter(|(_, b)| b.flows > 0) {
                    (mark(t, lane, kind, i, bin, cy, scale))
                }
            }
        }
    }
}

/// One column's mark: its shape, its tooltip and its link.
fn mark(
    t: &Timeline,
    lane: &Lane,
    kind: Kind,
    column: usize,
    bin: &Bin,
    cy: f64,
    scale: &Scale,
) -> Markup {
    let (href, leads_to) = target(kind, bin, scale.listed_unexpected);
    let cx = LABEL_W + (column as f64 + 0.5) * scale.column_w;
    let r = radius(bin.flows, scale.max, scale.column_w);
    let opacity = 0.55 + 0.45 * bin.flows as f64 / scale.max as f64;
    let (colour, class) = match kind {
        Kind::Unexpected => (UNEXPECTED_COLOUR, "mark unexpected"),
        Kind::Blocked => (BLOCKED_COLOUR, "mark blocked"),
    };
    let tooltip = format!(
        "{}: {} first seen from {} to {} UTC; the link goes to {leads_to}",
        lane.host,
        plural(bin.flows, kind),
        t.label(t.edge(column)),
        t.label(t.edge(column + 1)),
    );
    html! {
        a class=(class) href=(href) {
            title { (tooltip) }
            @match kind {
                Kind::Unexpected => {
                    circle cx=(px(cx)) cy=(px(cy)) r=(px(r)) fill=(colour)
                        fill-opacity=(format!("{opacity:.2}")) stroke=(colour) {}
                }
                Kind::Blocked => {
                    rect x=(px(cx - r)) y=(px(cy - r)) width=(px(2.0 * r))
                        height=(px(2.0 * r)) fill=(colour) fill-opacity=(format!("{opacity:.2}"))
                        stroke=(colour) {}
                }
            }
        }
    }
}

fn axis(t: &Timeline, y: f64, column_w: f64) -> Markup {
    let right = LABEL_W + PLOT_W;
    html! {
        g.axis {
            @for edge in ticks(t.columns, column_w) {
                @let x = LABEL_W + edge as f64 * column_w;
                line x1=(px(x)) x2=(px(x)) y1=(px(LEGEND_H - 4.0)) y2=(px(y + 5.0)) stroke="#d0d0d0" {}
                text.tick x=(px(x)) y=(px(y + 18.0)) text-anchor="middle" { (t.label(t.edge(edge))) }
            }
            line x1=(px(LABEL_W)) x2=(px(right)) y1=(px(y)) y2=(px(y)) stroke="#888" {}
            text x=(px(LABEL_W + PLOT_W / 2.0)) y=(px(y + 38.0)) text-anchor="middle" {
                "first seen (UTC), one column per " (t.width_text())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    #[test]
    fn time_labels_are_spaced_and_the_end_is_labelled() {
        let cw = PLOT_W / 48.0;
        let t = ticks(48, cw);
        assert_eq!(t.first(), Some(&0));
        assert_eq!(t.last(), Some(&48));
        for pair in t.windows(2) {
            assert!((pair[1] - pair[0]) as f64 * cw >= TICK_SPACING, "{t:?}");
        }
        assert_eq!(ticks(1, PLOT_W), [0, 1]);
        assert_eq!(ticks(3, PLOT_W / 3.0), [0, 1, 2, 3]);
    }

    #[test]
    fn marks_grow_with_their_count_within_the_row() {
        let cw = PLOT_W / 48.0;
        let (one, half, all) = (
            radius(1, 100, cw),
            radius(50, 100, cw),
            radius(100, 100, cw),
        );
        assert!(one >= 2.5 && one < half && half < all, "{one} {half} {all}");
        assert!(2.0 * all <= ROW_H && 2.0 * all <= cw, "{all}");
    }

    #[test]
    fn a_column_links_to_a_listed_flow_or_to_its_section() {
        let at = SystemTime::UNIX_EPOCH;
        let bin = Bin {
            flows: 2,
            earliest: Some((at, 5)),
            first_listed: Some(1),
        };
        assert_eq!(target(Kind::Unexpected, &bin, 10).0, "#flow-u6");
        assert_eq!(target(Kind::Unexpected, &bin, 3).0, "#flow-u2");
        assert_eq!(target(Kind::Unexpected, &bin, 1).0, "#unexpected");
        // Every blocked flow is listed.
        assert_eq!(target(Kind::Blocked, &bin, 0).0, "#flow-b6");
    }
}
