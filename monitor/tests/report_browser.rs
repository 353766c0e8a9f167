//! The HTML report as a browser shows it: two hosts' captures replayed into
//! events files, `portconform report --html` over them, and the page opened
//! in headless chromium (Debian's, driven through chromedriver). The
//! timeline must be laid out at the top with a non-zero size, draw marks in
//! both hosts' lanes in the colours of their kinds, and every link in it
//! must lead to an element of the page: the row of a flow of the lane's
//! host and the mark's kind, which following the link scrolls to.
//!
//! One host's capture holds a port scan of more flows than the page lists,
//! so that the timeline's bound and its links for flows past the list are
//! exercised as a real scan would.

mod common;

use std::path::{Path, PathBuf};

use common::{
    frames::{ADMIN, INVENTORY, NODE1, NODE2, STRANGER, T0, tcp},
    pcap::write_pcap,
    webdriver::Browser,
};
use monitor::report::{
    html::MAX_FLOWS,
    svg::{BLOCKED_COLOUR, UNEXPECTED_COLOUR},
    timeline::COLUMNS,
};
use monitor_common::packet::{TCP_ACK, TCP_RST, TCP_SYN};
use pcap_file::DataLink;
use serde_json::{Value, json};

const S: u64 = 1_000_000_000;

/// The hosts as their events name them (replay writes the `--host`).
const HOST1: &str = "192.0.2.1";
const HOST2: &str = "192.0.2.2";

/// A refused connection attempt: SYN, then RST from the responder.
fn refused(
    at: u64,
    client: [u8; 4],
    server: [u8; 4],
    sport: u16,
    dport: u16,
) -> [(u64, Vec<u8>); 2] {
    [
        (at, tcp(client, server, sport, dport, TCP_SYN)),
        (
            at + 1_000_000,
            tcp(server, client, dport, sport, TCP_RST | TCP_ACK),
        ),
    ]
}

/// `n` SYNs of one flow, a second apart: a client that retries.
fn retries(at: u64, n: u64, client: [u8; 4], server: [u8; 4], dport: u16) -> Vec<(u64, Vec<u8>)> {
    (0..n)
        .map(|i| (at + i * S, tcp(client, server, 40000, dport, TCP_SYN)))
        .collect()
}

/// The first node's capture: two unexpected flows, nginx refused to
/// another node (blocked), then a stranger's scan of more ports than the
/// page lists.
fn node1_capture() -> Vec<(u64, Vec<u8>)> {
    let mut frames = retries(T0, 2, ADMIN, NODE1, 7777);
    frames.extend(retries(T0 + 90 * S, 2, STRANGER, NODE1, 2181));
    frames.extend(refused(T0 + 200 * S, NODE2, NODE1, 41000, 80));
    let scan = MAX_FLOWS as u64 + 500;
    for i in 0..scan {
        // 60 ms apart: the scan spans a few columns of the timeline.
        let port = 10_000 + i as u16;
        frames.push((
            T0 + 300 * S + i * 60_000_000,
            tcp(STRANGER, NODE1, 50000, port, TCP_SYN),
        ));
    }
    frames
}

/// The second node's capture: busier unexpected flows (listed first in
/// the page) and PostgreSQL refused to another node (blocked).
fn node2_capture() -> Vec<(u64, Vec<u8>)> {
    let mut frames = retries(T0 + 60 * S, 3, ADMIN, NODE2, 7777);
    frames.extend(refused(T0 + 400 * S, NODE1, NODE2, 42000, 5432));
    frames.extend(retries(T0 + 500 * S, 3, ADMIN, NODE2, 9999));
    frames.sort_by_key(|(t, _)| *t);
    frames
}

/// `portconform replay` of a capture of `host` into `events`.
fn replay(capture: &Path, host: &str, inventory: &Path, events: &Path) {
    common::succeeds(&mut common::command(&[
        "replay",
        capture.to_str().unwrap(),
        "--host",
        host,
        "--profile",
        "thoughtspot",
        "--inventory",
        inventory.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
        "--no-resolve",
    ]));
}

/// The page over both hosts' replayed events.
fn report_page(dir: &Path) -> PathBuf {
    let inventory = dir.join("inventory.toml");
    std::fs::write(&inventory, INVENTORY).unwrap();
    let mut events = Vec::new();
    for (name, host, frames) in [
        ("node-1", HOST1, node1_capture()),
        ("node-2", HOST2, node2_capture()),
    ] {
        let capture = dir.join(format!("{name}.pcap"));
        write_pcap(&capture, DataLink::ETHERNET, &frames);
        let out = dir.join(format!("{name}.jsonl"));
        replay(&capture, host, &inventory, &out);
        events.push(out);
    }
    let page = dir.join("report.html");
    let mut args = vec!["report".to_string()];
    args.extend(events.iter().map(|p| p.display().to_string()));
    args.extend(["--profile", "thoughtspot", "--html"].map(String::from));
    args.push(page.display().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (stdout, _) = common::succeeds(&mut common::command(&args));
    assert!(stdout.contains("2 hosts"), "{stdout}");
    page
}

/// What the page's layout says about the timeline and its links.
const INSPECT: &str = r#"
const svg = document.querySelector('section#timeline svg');
if (!svg) return null;
const box = svg.getBoundingClientRect();
const table = document.querySelector('table');
const marks = Array.from(svg.querySelectorAll('a.mark')).map(a => {
  const href = a.getAttribute('href');
  const t = href && href.startsWith('#') ? document.getElementById(href.slice(1)) : null;
  const r = a.getBoundingClientRect();
  return {
    href,
    kind: a.classList.contains('blocked') ? 'blocked' : 'unexpected',
    host: a.closest('g.lane').getAttribute('data-host'),
    width: r.width, height: r.height,
    x: r.left + r.width / 2 - box.left, y: r.top + r.height / 2 - box.top,
    target: t && {
      tag: t.tagName.toLowerCase(),
      id: t.id,
      section: t.closest('section') ? t.closest('section').id : null,
      host: t.tagName === 'TR' ? t.cells[0].textContent : null,
    },
  };
});
return {
  width: box.width, height: box.height, top: box.top,
  table_top: table.getBoundingClientRect().top,
  before_tables: !!(svg.compareDocumentPosition(table) & Node.DOCUMENT_POSITION_FOLLOWING),
  lanes: Array.from(svg.querySelectorAll('g.lane')).map(g => g.getAttribute('data-host')),
  links: Array.from(svg.querySelectorAll('a')).map(a => a.getAttribute('href')),
  title: svg.querySelector('title') ? svg.querySelector('title').textContent : '',
  desc: svg.querySelector('desc') ? svg.querySelector('desc').textContent : '',
  label: svg.getAttribute('aria-label'),
  marks,
};
"#;

/// Decodes a PNG (base64) with the browser's own decoder, so the test needs
/// no image crate, and returns the RGBA of the pixels at `points` ([x, y]
/// in the image's pixels). The PNG is a screenshot of what the compositor
/// drew, taken by WebDriver, not a re-rendering of the SVG.
const PIXELS: &str = r#"
const [png, points, done] = arguments;
const img = new Image();
img.onload = () => {
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, c.width, c.height).data;
  done({
    width: c.width, height: c.height,
    pixels: points.map(([x, y]) => {
      const i = (Math.round(y) * c.width + Math.round(x)) * 4;
      return [data[i], data[i + 1], data[i + 2], data[i + 3]];
    }),
  });
};
img.onerror = () => done(null);
img.src = 'data:image/png;base64,' + png;
"#;

fn rgb(hex: &str) -> [i32; 3] {
    let v = |i: usize| i32::from_str_radix(&hex[i..i + 2], 16).unwrap();
    [v(1), v(3), v(5)]
}

/// Whether a pixel has the hue of `colour` (its strongest and weakest
/// channels the same), whatever opacity the mark was drawn with over the
/// lane's light grey.
fn has_hue(pixel: &Value, colour: &str) -> bool {
    let p: Vec<i32> = (0..3).map(|i| pixel[i].as_i64().unwrap() as i32).collect();
    let c = rgb(colour);
    let order = |v: &[i32]| {
        let max = (0..3).max_by_key(|&i| v[i]).unwrap();
        let min = (0..3).min_by_key(|&i| v[i]).unwrap();
        (max, min)
    };
    let spread = p.iter().max().unwrap() - p.iter().min().unwrap();
    order(&p) == order(&c) && spread >= 60
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

#[test]
fn the_timeline_renders_at_the_top_and_its_links_lead_to_the_flows() {
    let work = tempfile::tempdir().unwrap();
    let page = report_page(work.path());
    let browser = Browser::start();
    browser.open(&page);

    let seen = browser.execute(INSPECT, json!([]));
    assert!(!seen.is_null(), "no timeline SVG in the page");
    // Laid out, with a size, above the first table.
    let (w, h) = (
        seen["width"].as_f64().unwrap(),
        seen["height"].as_f64().unwrap(),
    );
    assert!(w > 100.0 && h > 50.0, "the SVG is {w} x {h}");
    assert!(seen["before_tables"] == true, "{seen}");
    assert!(
        seen["top"].as_f64().unwrap() < seen["table_top"].as_f64().unwrap(),
        "{seen}"
    );
    assert_eq!(seen["lanes"], json!([HOST1, HOST2]));
    // The text alternative names the hosts and their counts.
    let desc = str_of(&seen, "desc");
    assert!(
        desc.contains(&format!("{HOST1}: ")) && desc.contains(&format!("{HOST2}: ")),
        "{desc}"
    );
    assert!(str_of(&seen, "label").contains("2 hosts"), "{seen}");
    assert!(str_of(&seen, "title").contains("UTC"), "{seen}");

    let marks = seen["marks"].as_array().unwrap();
    // Bounded by the columns, not by the thousands of flows of the scan.
    assert!(
        !marks.is_empty() && marks.len() <= 2 * 2 * COLUMNS,
        "{} marks",
        marks.len()
    );
    for host in [HOST1, HOST2] {
        for kind in ["unexpected", "blocked"] {
            assert!(
                marks.iter().any(|m| m["host"] == host && m["kind"] == kind),
                "no {kind} mark for {host}"
            );
        }
    }
    // Every link of the SVG leads to an element of the page.
    let links = seen["links"].as_array().unwrap();
    assert_eq!(links.len(), marks.len(), "every link is a mark");
    let mut to_rows = 0;
    let mut to_section = 0;
    for m in marks {
        assert!(
            m["width"].as_f64().unwrap() > 0.0 && m["height"].as_f64().unwrap() > 0.0,
            "a mark without a size: {m}"
        );
        let target = &m["target"];
        assert!(!target.is_null(), "link {} leads nowhere", m["href"]);
        let kind = str_of(m, "kind");
        match str_of(target, "tag") {
            // A row of the mark's host in its kind's table.
            "tr" => {
                to_rows += 1;
                assert_eq!(str_of(target, "section"), kind, "{m}");
                assert_eq!(target["host"], m["host"], "{m}");
            }
            // Flows past the page's list: their section.
            "section" => {
                to_section += 1;
                assert_eq!(
                    (kind, str_of(target, "id")),
                    ("unexpected", "unexpected"),
                    "{m}"
                );
                assert_eq!(m["host"], HOST1, "only the scan is past the list: {m}");
            }
            other => panic!("link {} leads to a <{other}>", m["href"]),
        }
    }
    assert!(
        to_rows > 4 && to_section > 0,
        "{to_rows} to rows, {to_section} to the section"
    );

    // Drawn: the screenshot has each kind's colour where its marks are.
    let svg = browser.find("section#timeline svg");
    let png = browser.screenshot(&svg);
    let points: Vec<Value> = marks.iter().map(|m| json!([m["x"], m["y"]])).collect();
    let shot = browser.execute_async(PIXELS, json!([png, points]));
    assert!(
        !shot.is_null(),
        "the screenshot is not a PNG chromium reads"
    );
    assert_eq!(shot["width"].as_f64().unwrap().round(), w.round(), "{shot}");
    for (m, pixel) in marks.iter().zip(shot["pixels"].as_array().unwrap()) {
        let colour = match str_of(m, "kind") {
            "blocked" => BLOCKED_COLOUR,
            _ => UNEXPECTED_COLOUR,
        };
        assert!(
            has_hue(pixel, colour),
            "mark {m} is drawn as {pixel}, not {colour}"
        );
    }

    // Following the second node's blocked mark scrolls to the PostgreSQL row.
    let mark = marks
        .iter()
        .find(|m| m["host"] == HOST2 && m["kind"] == "blocked")
        .unwrap();
    browser.click(&browser.find(&format!(r#"g.lane[data-host="{HOST2}"] a.mark.blocked"#)));
    let after = browser.execute(
        r#"const t = document.querySelector(':target');
           return {hash: location.hash, id: t && t.id,
                   text: t && t.textContent,
                   top: t && t.getBoundingClientRect().top,
                   bottom: t && t.getBoundingClientRect().bottom,
                   height: window.innerHeight};"#,
        json!([]),
    );
    assert_eq!(after["hash"], mark["href"], "{after}");
    assert_eq!(after["id"], mark["target"]["id"], "{after}");
    let text = str_of(&after, "text");
    assert!(
        text.starts_with(HOST2) && text.contains("192.0.2.2:5432") && text.contains("reset"),
        "{text}"
    );
    // Scrolled to the row's top, give or take the fraction of a pixel.
    let (top, bottom) = (
        after["top"].as_f64().unwrap(),
        after["bottom"].as_f64().unwrap(),
    );
    assert!(
        top > -1.0 && bottom < after["height"].as_f64().unwrap() + 1.0,
        "the row is not in view after the click: {after}"
    );
}
