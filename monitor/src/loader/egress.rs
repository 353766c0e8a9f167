//! Attaching the egress program: a tcx link where the kernel has one (6.6
//! on), otherwise a filter on a clsact qdisc (every supported kernel).
//!
//! A tcx link, like the XDP link, goes away with the process. A clsact
//! filter does not: it stays in the kernel, holding the program and its
//! maps, until someone deletes it. So the daemon owns what it adds. The
//! filter is removed when the program is dropped (aya keeps the netlink
//! link), the qdisc on drop of [`Clsact`] when this daemon created it and
//! nothing else hangs off it. After a kill -9 the next start on the same
//! interface removes what the dead instance left: its filter (found by the
//! program's name) and, through a marker under `/run`, its qdisc.

use std::{io, os::unix::fs::MetadataExt as _, path::PathBuf};

use aya::programs::{
    LinkOrder, ProgramError, SchedClassifier, TcAttachType,
    tc::{self, NlOptions, SchedClassifierLinkId, TcAttachOptions, TcError},
};
use monitor_common::maps::PROG_EGRESS;

use super::{Interface, LoadError, attach_error, rtnl};

/// How the egress program ended up attached to an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EgressMode {
    /// A tcx link (6.6 on): owned by the process, gone when it dies.
    Tcx,
    /// A filter on a clsact qdisc: kernels without tcx.
    Clsact,
}

impl EgressMode {
    pub fn name(self) -> &'static str {
        match self {
            EgressMode::Tcx => "tcx",
            EgressMode::Clsact => "clsact",
        }
    }
}

/// The clsact qdisc of one interface, deleted on drop if this daemon owns it.
/// Declared after the loaded object in [`super::Monitor`], so the filter is
/// gone before the qdisc is looked at.
#[derive(Debug)]
pub struct Clsact {
    ifindex: u32,
    owned: bool,
}

impl Clsact {
    /// Whether portconform added this qdisc (and so may delete it).
    pub fn owned(&self) -> bool {
        self.owned
    }
}

impl Drop for Clsact {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        // A filter someone else added since keeps the qdisc: deleting it
        // would take their filter with it.
        if rtnl::clsact_filters(self.ifindex).is_ok_and(|n| n == 0) {
            let _ = rtnl::delete_clsact(self.ifindex);
        }
        if let Some(marker) = marker(self.ifindex) {
            let _ = std::fs::remove_file(marker);
        }
    }
}

/// Attaches `tc` to `iface`'s egress: tcx first, the clsact filter where
/// the kernel has no tcx. The caller has attached XDP to `iface` already,
/// which no other live monitor can hold, so a filter of ours found there
/// belongs to a dead one.
pub fn attach(
    tc: &mut SchedClassifier,
    iface: &Interface,
) -> Result<(EgressMode, Option<Clsact>, SchedClassifierLinkId), LoadError> {
    let tcx = tc.attach_with_options(
        &iface.name,
        TcAttachType::Egress,
        TcAttachOptions::TcxOrder(LinkOrder::default()),
    );
    match tcx {
        Ok(id) => return Ok((EgressMode::Tcx, None, id)),
        // No tcx attach type before 6.6: the kernel says EINVAL.
        Err(ProgramError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::EINVAL) => {}
        Err(err) => return Err(attach_error(PROG_EGRESS, &iface.name, err)),
    }
    let clsact = take_clsact(iface)?;
    remove_stale_filters(iface)?;
    let id = tc
        .attach_with_options(
            &iface.name,
            TcAttachType::Egress,
            TcAttachOptions::Netlink(NlOptions::default()),
        )
        .map_err(|err| attach_error(PROG_EGRESS, &iface.name, err))?;
    Ok((EgressMode::Clsact, Some(clsact), id))
}

/// Adds the clsact qdisc, or adopts the one a dead instance added (its
/// marker says so); one another tool added stays theirs.
fn take_clsact(iface: &Interface) -> Result<Clsact, LoadError> {
    let created = rtnl::add_clsact(iface.index).map_err(|e| netlink_error(iface, e))?;
    let marker = marker(iface.index);
    let adopted = !created && marker.as_ref().is_some_and(|m| m.exists());
    let owned = created || adopted;
    if owned && let Some(marker) = marker {
        // Without the marker a crash would leave the qdisc to nobody; the
        // start goes on, the qdisc is then only removed on a clean exit.
        if let Some(dir) = marker.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(&marker, format!("{}\n", std::process::id()));
    }
    Ok(Clsact {
        ifindex: iface.index,
        owned,
    })
}

/// Deletes egress filters running a program named like ours.
fn remove_stale_filters(iface: &Interface) -> Result<(), LoadError> {
    match tc::qdisc_detach_program(&iface.name, TcAttachType::Egress, PROG_EGRESS) {
        Ok(()) => {
            eprintln!(
                "portconform: removed the egress filter a stopped portconform left on {}",
                iface.name
            );
            Ok(())
        }
        Err(TcError::IoError(e)) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(attach_error(PROG_EGRESS, &iface.name, err.into())),
    }
}

fn netlink_error(iface: &Interface, e: io::Error) -> LoadError {
    if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) {
        return LoadError::Permission {
            what: format!("adding a clsact qdisc to {}", iface.name),
        };
    }
    LoadError::Attach {
        program: PROG_EGRESS,
        iface: iface.name.clone(),
        source: TcError::IoError(e).into(),
    }
}

/// Where a daemon notes that it created `ifindex`'s clsact qdisc. Interface
/// indexes are per network namespace, so the namespace is part of the path;
/// /run is emptied at boot, as the qdiscs are.
fn marker(ifindex: u32) -> Option<PathBuf> {
    let netns = std::fs::metadata("/proc/self/ns/net").ok()?.ino();
    Some(PathBuf::from(format!(
        "/run/portconform/clsact/{netns}/{ifindex}"
    )))
}
