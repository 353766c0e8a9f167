//! Adopting what a pinned run left (`run --pin`): which of its state maps
//! this binary may reuse, and taking over its links so that the programs
//! are replaced in place, with no moment when nothing is attached.
//!
//! A map is reused only when three things agree: the layout record's
//! version is this binary's, the record lists the map with the shape this
//! binary's object defines, and the kernel's own description of the pinned
//! map is that shape too. Anything else is unpinned and made afresh, and
//! the daemon says which state went with it.

use std::{collections::HashMap, path::Path};

use aya::{
    EbpfLoader,
    maps::MapInfo,
    programs::{
        SchedClassifier, TcAttachType, Xdp,
        links::{FdLink, PinnedLink},
        tc::{SchedClassifierLink, TcHandle},
        xdp::XdpLink,
    },
};
use monitor_common::maps::{
    COUNTERS_MAP, DROPS_MAP, EVENTS_MAP, FLOODS_MAP, FLOWS_MAP, HANDSHAKES_MAP, KSTATS_MAP,
    RULEWORK_MAP, SEEN_MAP, WATCH_MAP,
};

use super::LoadError;
use crate::{
    object::EBPF_OBJECT,
    pin::{self, LAYOUT_VERSION, Layout, MapShape, PinDir, Shape},
};

/// The maps a pinned run keeps, and what a person loses with each.
pub const STATE_MAPS: &[(&str, &str)] = &[
    (FLOWS_MAP, "which unexpected flows were already reported"),
    (
        SEEN_MAP,
        "the latest packets of recently seen unexpected flows",
    ),
    (EVENTS_MAP, "events queued while no daemon ran"),
    (COUNTERS_MAP, "traffic and per-rule counters"),
    (RULEWORK_MAP, "answered attempts per rule"),
    (KSTATS_MAP, "classifier and loss counters"),
    (HANDSHAKES_MAP, "pending attempts of required flows"),
    (WATCH_MAP, "blocked flows watched for recovery"),
    (DROPS_MAP, "uncollected drops by the host's own stack"),
    (FLOODS_MAP, "flood aggregates"),
];

/// What the loader found in the pin directory before loading.
#[derive(Debug, Default)]
pub struct Plan {
    /// The record, when it could be read and is this binary's version.
    pub old: Option<Layout>,
    /// State maps reused as they are.
    pub reused: Vec<&'static str>,
    /// One line per state lost, for the daemon to print.
    pub lost: Vec<String>,
}

impl Plan {
    pub fn reuses(&self, map: &str) -> bool {
        self.reused.contains(&map)
    }
}

/// Each state map's shape as this binary's object defines it.
fn expected_shapes() -> Result<HashMap<String, Shape>, LoadError> {
    let obj = aya_obj::Object::parse(EBPF_OBJECT)
        .map_err(|e| LoadError::Object(aya::EbpfError::ParseError(e)))?;
    Ok(obj
        .maps
        .iter()
        .map(|(name, m)| {
            (
                name.clone(),
                Shape {
                    map_type: m.map_type(),
                    key_size: m.key_size(),
                    value_size: m.value_size(),
                    max_entries: m.max_entries(),
                    flags: m.map_flags(),
                },
            )
        })
        .collect())
}

/// The kernel's description of the map pinned at `path`.
fn pinned_shape(path: &Path) -> Option<Shape> {
    let info = MapInfo::from_pin(path).ok()?;
    Some(Shape {
        map_type: info.map_type().ok()? as u32,
        key_size: info.key_size(),
        value_size: info.value_size(),
        max_entries: info.max_entries(),
        flags: info.map_flags(),
    })
}

/// Checks every pinned state map, unpins the ones that cannot be reused,
/// and points `loader` at the pin paths (an absent pin is created and
/// pinned by the load). Refuses a directory from another network namespace.
pub fn prepare(dir: &PinDir, loader: &mut EbpfLoader<'_>) -> Result<Plan, LoadError> {
    let mut plan = Plan::default();
    let expected = expected_shapes()?;
    let record = match dir.read_layout() {
        Ok(r) => r,
        Err(e) => {
            plan.lost.push(format!(
                "the layout record in {} is unreadable ({e}): no pinned map is trusted",
                dir.path().display()
            ));
            None
        }
    };
    if let Some(old) = &record {
        if old.netns != pin::netns() {
            return Err(LoadError::Pin(format!(
                "{} holds the pins of a portconform in another network namespace; give --pin another directory, or run `portconform detach --pin {} --all` in that namespace",
                dir.path().display(),
                dir.path().display()
            )));
        }
        if old.version != LAYOUT_VERSION {
            plan.lost.push(format!(
                "the pins in {} are of layout version {}, this portconform reads {LAYOUT_VERSION}: no pinned map is reused",
                dir.path().display(),
                old.version
            ));
        }
    }
    let trusted = record.as_ref().filter(|r| r.version == LAYOUT_VERSION);
    for &(name, what) in STATE_MAPS {
        let path = dir.map(name);
        let want = expected.get(name).copied();
        if path.exists() {
            let recorded = trusted.and_then(|r| r.map(name));
            let kernel = pinned_shape(&path);
            match (want, recorded, kernel) {
                (Some(w), Some(r), Some(k)) if w == r && w == k => plan.reused.push(name),
                _ => {
                    pin::PinDir::unpin(&path).map_err(|e| LoadError::Pin(e.to_string()))?;
                    if trusted.is_some() {
                        plan.lost.push(format!(
                            "pinned map {name} does not match this build ({}): {what} start afresh",
                            mismatch(want, recorded, kernel)
                        ));
                    }
                }
            }
        }
        loader.map_pin_path(name, path);
    }
    plan.old = trusted.cloned();
    Ok(plan)
}

fn mismatch(want: Option<Shape>, recorded: Option<Shape>, kernel: Option<Shape>) -> String {
    match (want, recorded, kernel) {
        (_, None, _) => "the record does not list it".into(),
        (_, _, None) => "the kernel does not describe it as a map".into(),
        (Some(w), _, Some(k)) if w != k => format!(
            "type {} key {} value {} entries {}, this build expects type {} key {} value {} entries {}",
            k.map_type,
            k.key_size,
            k.value_size,
            k.max_entries,
            w.map_type,
            w.key_size,
            w.value_size,
            w.max_entries
        ),
        _ => "the record describes it otherwise".into(),
    }
}

/// The record's map list for this binary.
pub fn shapes() -> Result<Vec<MapShape>, LoadError> {
    let expected = expected_shapes()?;
    Ok(STATE_MAPS
        .iter()
        .filter_map(|&(name, _)| {
            expected.get(name).map(|s| MapShape {
                name: name.to_string(),
                shape: *s,
            })
        })
        .collect())
}

/// Replaces the program behind the XDP link pinned at `path` with `xdp`,
/// atomically; `None` when there is no such link.
pub fn xdp_link(xdp: &mut Xdp, path: &Path) -> Result<Option<FdLink>, LoadError> {
    if !path.exists() {
        return Ok(None);
    }
    let pinned = PinnedLink::from_pin(path).map_err(|e| stale(path, e))?;
    let link = XdpLink::try_from(FdLink::from(pinned)).map_err(|e| stale(path, e))?;
    let id = xdp
        .attach_to_link(link)
        .map_err(|e| replace_error(path, e))?;
    let link = xdp.take_link(id).map_err(|e| replace_error(path, e))?;
    FdLink::try_from(link).map(Some).map_err(|e| stale(path, e))
}

/// [`xdp_link`] for a tcx link.
pub fn tcx_link(tc: &mut SchedClassifier, path: &Path) -> Result<Option<FdLink>, LoadError> {
    if !path.exists() {
        return Ok(None);
    }
    let pinned = PinnedLink::from_pin(path).map_err(|e| stale(path, e))?;
    let link = SchedClassifierLink::try_from(FdLink::from(pinned)).map_err(|e| stale(path, e))?;
    let id = tc
        .attach_to_link(link)
        .map_err(|e| replace_error(path, e))?;
    let link = tc.take_link(id).map_err(|e| replace_error(path, e))?;
    FdLink::try_from(link).map(Some).map_err(|e| stale(path, e))
}

/// Replaces the program of the clsact egress filter a pinned run recorded
/// (same priority and handle, one netlink request); `None` when the filter
/// is no longer there.
pub fn clsact_filter(
    tc: &mut SchedClassifier,
    iface: &str,
    priority: u16,
    handle: u32,
) -> Option<SchedClassifierLink> {
    let link = SchedClassifierLink::attached(
        iface,
        TcAttachType::Egress,
        priority,
        TcHandle::from(handle),
        None,
    )
    .ok()?;
    let id = tc.attach_to_link(link).ok()?;
    tc.take_link(id).ok()
}

fn stale(path: &Path, e: impl std::fmt::Display) -> LoadError {
    LoadError::Pin(format!(
        "{} is not a link portconform can adopt ({e}); remove it with `portconform detach`",
        path.display()
    ))
}

fn replace_error(path: &Path, e: aya::programs::ProgramError) -> LoadError {
    LoadError::Pin(format!(
        "replacing the program behind {} failed: {e}",
        path.display()
    ))
}
