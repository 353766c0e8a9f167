//! Which unexpected flows have been reported, and with what explanation:
//! the daemon's refreshes and replay's updates mention only the flows whose
//! counts changed, and repeat the first sighting's explanation.

use std::{collections::HashMap, sync::Arc};

use monitor_common::flow::{FlowEvent, FlowKey, FlowState};

use super::{Enricher, Explanation, Hasher};
use crate::events::EventRecord;

/// What was last reported of each flow, so refreshes only mention flows that
/// changed and repeat the explanation of the first sighting (a reload may
/// renumber rules). Bounded by the kernel's LRU: flows it evicted are
/// forgotten.
#[derive(Default)]
pub struct Reported {
    flows: HashMap<FlowKey, Seen, Hasher>,
}

#[derive(Default)]
struct Seen {
    packets: u64,
    reply_packets: u64,
    initiator_port: u16,
    /// Shared with other flows explained alike (see [`Explanations`]).
    explanation: Option<Arc<Explanation>>,
}

impl Reported {
    /// Room for `flows` without growing. The daemon sizes it for the
    /// kernel's flow table: growing rehashes every entry, and it would
    /// happen in a flood of new flows, when the drain is busiest.
    pub fn with_capacity(flows: usize) -> Self {
        Self {
            flows: HashMap::with_capacity_and_hasher(flows, Hasher::default()),
        }
    }

    pub fn first(&mut self, ev: &FlowEvent, record: &EventRecord) {
        self.insert(
            ev,
            record.sport,
            Arc::new(Explanation {
                rule: record.rule.clone(),
                source: record.source.clone(),
                note: record.note.clone(),
                peer_roles: record.peer_roles.clone(),
            }),
        );
    }

    /// [`first`](Self::first) for a record written from `why`
    /// ([`Enricher::first_sighting_ref`]): the explanation is shared, not
    /// copied, which spares the daemon's drain allocations per new flow.
    pub fn first_explained(&mut self, ev: &FlowEvent, initiator_port: u16, why: Arc<Explanation>) {
        self.insert(ev, initiator_port, why);
    }

    fn insert(&mut self, ev: &FlowEvent, initiator_port: u16, explanation: Arc<Explanation>) {
        let fwd = u64::from(ev.forward != 0);
        self.flows.insert(
            ev.key,
            Seen {
                packets: fwd,
                reply_packets: 1 - fwd,
                initiator_port,
                explanation: Some(explanation),
            },
        );
    }

    /// The update record for `key` if its counts changed since last reported.
    pub fn update(
        &mut self,
        enricher: &Enricher,
        key: &FlowKey,
        state: &FlowState,
    ) -> Option<EventRecord> {
        let seen = self.flows.entry(*key).or_default();
        if (seen.packets, seen.reply_packets) == (state.packets, state.reply_packets) {
            return None;
        }
        seen.packets = state.packets;
        seen.reply_packets = state.reply_packets;
        let mut r = enricher.update(key, state, seen.initiator_port);
        if let Some(e) = &seen.explanation {
            r.rule = e.rule.clone();
            r.source = e.source.clone();
            r.note = e.note.clone();
            r.peer_roles = e.peer_roles.clone();
        }
        Some(r)
    }

    /// A flow a pinned run before this one reported: its counts so far are
    /// the baseline, so the next refresh mentions it only if it moved. Its
    /// initiator's port is not in the kernel's key and stays unknown (0).
    pub fn adopt(&mut self, key: &FlowKey, state: &FlowState) {
        self.flows.insert(
            *key,
            Seen {
                packets: state.packets,
                reply_packets: state.reply_packets,
                initiator_port: 0,
                explanation: None,
            },
        );
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Past `limit` flows, keeps only those `live` (the kernel's table)
    /// still holds; `live` is read only then.
    pub fn prune_over(
        &mut self,
        limit: usize,
        live: impl FnOnce() -> anyhow::Result<std::collections::HashSet<FlowKey>>,
    ) -> anyhow::Result<()> {
        if self.flows.len() > limit {
            self.retain(&live()?);
        }
        Ok(())
    }

    /// Drops flows no longer in the kernel's table.
    pub fn retain(&mut self, live: &std::collections::HashSet<FlowKey>) {
        self.flows.retain(|k, _| live.contains(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(i: u32) -> FlowEvent {
        // SAFETY: FlowEvent is plain integers and byte arrays.
        let mut ev: FlowEvent = unsafe { std::mem::zeroed() };
        ev.key.initiator[..4].copy_from_slice(&i.to_be_bytes());
        ev.forward = 1;
        ev
    }

    /// A flood of new flows is trimmed to what the kernel still holds as
    /// soon as the table passes its limit, not at the next refresh; below
    /// the limit the kernel is not even asked.
    #[test]
    fn reported_flows_are_pruned_past_the_limit() {
        let mut reported = Reported::default();
        for i in 0..10 {
            reported.insert(&event(i), 40000, Arc::default());
        }
        reported
            .prune_over(10, || panic!("asked the kernel below the limit"))
            .unwrap();
        assert_eq!(reported.len(), 10);
        reported.insert(&event(10), 40000, Arc::default());
        let live: std::collections::HashSet<FlowKey> =
            [event(3).key, event(10).key].into_iter().collect();
        reported.prune_over(10, || Ok(live)).unwrap();
        assert_eq!(reported.len(), 2);
    }
}
