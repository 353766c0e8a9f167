//! Undoing `run --pin`: removing the pinned links (which detaches the
//! programs), the clsact filters and qdiscs a pinned run left on kernels
//! without tcx, the state maps and the layout record. `portconform detach`
//! and a pinned start that no longer watches an interface both use it.

use aya::programs::{TcAttachType, tc};
use monitor_common::maps::PROG_EGRESS;

use super::{if_index, rtnl};
use crate::pin::{PinDir, PinError, PinnedIface};

/// What a detach removed, for its one line of output.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Removed {
    pub interfaces: Vec<String>,
    /// Whether the whole directory (maps, record, every link) went.
    pub everything: bool,
}

/// Detaches the programs from one interface a pinned run recorded.
pub fn interface(dir: &PinDir, iface: &PinnedIface) -> Result<(), PinError> {
    PinDir::unpin(&dir.xdp_link(iface.index))?;
    PinDir::unpin(&dir.tc_link(iface.index))?;
    if iface.egress == "clsact" && if_index(&iface.name) == Some(iface.index) {
        // Found by the program's name, as a start after a kill -9 does.
        let _ = tc::qdisc_detach_program(&iface.name, TcAttachType::Egress, PROG_EGRESS);
        if iface.owned_qdisc && rtnl::clsact_filters(iface.index).is_ok_and(|n| n == 0) {
            let _ = rtnl::delete_clsact(iface.index);
        }
    }
    Ok(())
}

/// Removes everything under `dir`: each recorded interface's attachment,
/// every pinned link (recorded or not), the maps and the record.
pub fn all(dir: PinDir) -> Result<Removed, PinError> {
    let mut removed = Removed::default();
    if let Ok(Some(layout)) = dir.read_layout() {
        for iface in &layout.interfaces {
            interface(&dir, iface)?;
            removed.interfaces.push(iface.name.clone());
        }
    }
    dir.remove_all()?;
    removed.everything = true;
    Ok(removed)
}

/// Detaches from the interfaces named in `names`; when none is left, from
/// everything. An interface the record does not list is an error.
pub fn interfaces(dir: PinDir, names: &[String]) -> Result<Removed, PinError> {
    let Ok(Some(mut layout)) = dir.read_layout() else {
        return Err(PinError::Missing(dir.path().to_path_buf()));
    };
    for name in names {
        if !layout.interfaces.iter().any(|i| &i.name == name) {
            return Err(PinError::NotPinned {
                iface: name.clone(),
                dir: dir.path().to_path_buf(),
                pinned: layout
                    .interfaces
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    let (gone, kept): (Vec<_>, Vec<_>) = layout
        .interfaces
        .into_iter()
        .partition(|i| names.contains(&i.name));
    for iface in &gone {
        interface(&dir, iface)?;
    }
    if kept.is_empty() {
        let mut removed = all(dir)?;
        removed.interfaces = gone.into_iter().map(|i| i.name).collect();
        return Ok(removed);
    }
    layout.interfaces = kept;
    dir.write_layout(&layout).map_err(|e| PinError::Io {
        what: "rewriting the layout record in",
        path: dir.path().to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(Removed {
        interfaces: gone.into_iter().map(|i| i.name).collect(),
        everything: false,
    })
}
