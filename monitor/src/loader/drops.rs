//! The drop program (`pc_drops`, a raw tracepoint on `skb:kfree_skb`):
//! the kernel's drop reason values and the sk_buff offsets it reads by,
//! resolved from the running kernel's BTF, written to its tables, and the
//! attachment. Never fatal: a kernel without drop reasons (before 5.17),
//! without BTF, or that refuses the program leaves the feature off with a
//! one-line notice, and everything else runs as before.

use std::{collections::HashMap, os::unix::fs::MetadataExt as _};

use aya::{
    Ebpf,
    programs::{RawTracePoint, links::FdLink, raw_trace_point::RawTracePointLinkId},
};
use monitor_common::{
    drop::{DROP_REASON_SLOTS, DropCause, SkbLayout},
    maps::{DROP_TRACEPOINT, PROG_DROPS},
};

use super::btf::Btf;

/// Whether drops by the host's own stack are watched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DropWatch {
    /// Attached; the causes this kernel names (some are newer than others).
    On(Vec<DropCause>),
    /// Off, and why, in words for the notice.
    Off(String),
}

impl DropWatch {
    /// The one line the daemon prints at start.
    pub fn notice(&self) -> String {
        match self {
            DropWatch::On(causes) => format!(
                "portconform: watching drops by this host's own stack (kfree_skb: {})",
                causes
                    .iter()
                    .map(|c| c.kernel_name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            DropWatch::Off(why) => format!(
                "portconform: drops by this host's own firewall are not seen: {why}; blocked flows are judged by their answers alone"
            ),
        }
    }
}

/// What the drop program needs from a kernel's BTF.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub layout: SkbLayout,
    /// Kernel reason value → [`DropCause`] number (0: not watched).
    pub reasons: Vec<u8>,
    pub causes: Vec<DropCause>,
}

/// Reads the reason values and struct offsets from `btf`, for the network
/// namespace `netns`. `Err` says, in words, what this kernel lacks.
pub fn resolve(btf: &Btf, netns: u32) -> Result<Resolved, String> {
    let values = btf
        .enum_values("skb_drop_reason")
        .ok_or("this kernel has no drop reasons (Linux 5.17 or newer has them)")?;
    let (reasons, causes) = reason_table(&values);
    if causes.is_empty() {
        return Err("this kernel names none of the drop reasons watched".into());
    }
    let off = |s: &str, path: &[&str]| {
        btf.member_offset(s, path)
            .ok_or_else(|| format!("its BTF has no {s}.{}", path.join(".")))
    };
    let layout = SkbLayout {
        enabled: 1,
        netns,
        skb_head: off("sk_buff", &["head"])?,
        skb_network_header: off("sk_buff", &["network_header"])?,
        skb_tail: off("sk_buff", &["tail"])?,
        skb_iif: off("sk_buff", &["skb_iif"])?,
        skb_dev: off("sk_buff", &["dev"])?,
        skb_refdst: off("sk_buff", &["_skb_refdst"])?,
        dst_dev: off("dst_entry", &["dev"])?,
        dev_ifindex: off("net_device", &["ifindex"])?,
        dev_net: off("net_device", &["nd_net", "net"])?,
        net_inum: off("net", &["ns", "inum"])?,
    };
    Ok(Resolved {
        layout,
        reasons,
        causes,
    })
}

/// The kernel's values of the watched reasons, as the program's table.
fn reason_table(values: &HashMap<String, i64>) -> (Vec<u8>, Vec<DropCause>) {
    let mut table = vec![0u8; DROP_REASON_SLOTS as usize];
    let mut causes = Vec::new();
    for cause in DropCause::ALL {
        let name = format!("SKB_DROP_REASON_{}", cause.kernel_name());
        let Some(&v) = values.get(&name) else {
            continue;
        };
        if let Some(slot) = usize::try_from(v).ok().and_then(|v| table.get_mut(v)) {
            *slot = cause as u8;
            causes.push(cause);
        }
    }
    (table, causes)
}

/// The kernel's name of reason `value`, for a note (`None` if unknown).
pub fn reason_name(btf: &Btf, value: u16) -> Option<String> {
    btf.enum_values("skb_drop_reason")?
        .into_iter()
        .find(|(_, v)| *v == i64::from(value))
        .map(|(n, _)| n.trim_start_matches("SKB_DROP_REASON_").to_string())
}

/// This process's network namespace, as `ns_common.inum` holds it.
pub fn own_netns() -> Result<u32, String> {
    std::fs::metadata("/proc/self/ns/net")
        .map(|m| m.ino() as u32)
        .map_err(|e| format!("/proc/self/ns/net: {e}"))
}

/// Resolves, fills the tables, loads and attaches; off with the reason on
/// any failure.
/// With the watch on, the link's id: a pinned run takes the link to pin it.
pub(super) fn attach(ebpf: &mut Ebpf) -> (DropWatch, Option<RawTracePointLinkId>) {
    match try_attach(ebpf) {
        Ok((causes, id)) => (DropWatch::On(causes), Some(id)),
        Err(why) => (DropWatch::Off(why), None),
    }
}

/// Takes the drop program's link out of aya's hands (to be pinned).
pub(super) fn take_link(ebpf: &mut Ebpf, id: RawTracePointLinkId) -> Option<FdLink> {
    let prog: &mut RawTracePoint = ebpf.program_mut(PROG_DROPS)?.try_into().ok()?;
    prog.take_link(id).ok().map(FdLink::from)
}

fn try_attach(ebpf: &mut Ebpf) -> Result<(Vec<DropCause>, RawTracePointLinkId), String> {
    let btf = Btf::from_sys_fs().map_err(|e| format!("no kernel BTF ({e})"))?;
    let resolved = resolve(&btf, own_netns()?)?;
    crate::kernel_tables::write_drop_tables(ebpf, &resolved.layout, &resolved.reasons)
        .map_err(|e| e.to_string())?;
    let prog: &mut RawTracePoint = ebpf
        .program_mut(PROG_DROPS)
        .ok_or("the eBPF object has no drop program")?
        .try_into()
        .map_err(|e| format!("{e}"))?;
    // The verifier's log follows the error on further lines: the notice
    // keeps the first.
    prog.load().map_err(|e| {
        let e = e.to_string();
        let first = e.lines().next().unwrap_or_default();
        format!("the kernel refused the drop program ({first})")
    })?;
    let id = prog
        .attach(DROP_TRACEPOINT)
        .map_err(|e| format!("attaching to {DROP_TRACEPOINT} failed ({e})"))?;
    Ok((resolved.causes, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watched_reasons_take_the_kernel_s_values_whatever_they_are() {
        let values: HashMap<String, i64> = [
            ("SKB_DROP_REASON_NOT_SPECIFIED", 2),
            ("SKB_DROP_REASON_NO_SOCKET", 3),
            ("SKB_DROP_REASON_NETFILTER_DROP", 9),
            ("SKB_DROP_REASON_SUBSYS_MASK", 0xffff0000),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect();
        let (table, causes) = reason_table(&values);
        assert_eq!(table[9], DropCause::NetfilterDrop as u8);
        assert_eq!(table[3], DropCause::NoSocket as u8);
        assert_eq!(table.iter().filter(|&&c| c != 0).count(), 2);
        assert_eq!(causes, [DropCause::NetfilterDrop, DropCause::NoSocket]);
    }

    #[test]
    fn the_running_kernel_resolves_or_says_why_not() {
        let Ok(btf) = Btf::from_sys_fs() else { return };
        match resolve(&btf, 1) {
            Ok(r) => {
                assert!(r.causes.contains(&DropCause::NetfilterDrop));
                let nf = r.reasons.iter().position(|&c| c == 1).unwrap();
                assert_eq!(
                    reason_name(&btf, nf as u16).as_deref(),
                    Some("NETFILTER_DROP")
                );
            }
            Err(why) => assert!(why.contains("drop reasons"), "{why}"),
        }
    }
}
