//! The kernel programs on crafted frames through BPF_PROG_TEST_RUN: each frame
//! must pass (fail open) and land in exactly its counter slot, ingress and
//! egress alike; and the userspace parser must agree with the kernel.

use monitor_common::{
    Packet,
    maps::{PROG_EGRESS, PROG_INGRESS},
    packet::{self, ETH_HLEN},
    stats::{PacketDir, SLOT_TRUNCATED, SLOTS, slot_name, slot_of, slot_of_error},
};
use portconform_tests::{kernel::Kernel, packets::corpus};

const XDP_PASS: u32 = 2;
/// TC_ACT_UNSPEC (-1): pass the packet on to the programs after ours.
const TC_ACT_UNSPEC: u32 = u32::MAX;

#[test]
fn every_frame_passes_and_lands_in_its_slot() {
    let kernel = Kernel::load().expect("load");
    for case in corpus() {
        if case.frame.len() < ETH_HLEN {
            continue; // test_run refuses frames shorter than an Ethernet header
        }
        let before = kernel.counters().expect("counters");
        let ingress = kernel.run(PROG_INGRESS, &case.frame, 1).expect("xdp run");
        assert_eq!(
            ingress.verdict, XDP_PASS,
            "{}: XDP must pass every frame",
            case.name
        );
        // test_run's skb path refuses to build an skb whose IP header is cut
        // short (EINVAL), so such frames are checked on ingress only.
        let dirs: &[PacketDir] = match kernel.run(PROG_EGRESS, &case.frame, 1) {
            Ok(egress) => {
                assert_eq!(
                    egress.verdict, TC_ACT_UNSPEC,
                    "{}: TC must pass every frame on to what follows",
                    case.name
                );
                &PacketDir::ALL
            }
            Err(err) if case.slot == SLOT_TRUNCATED => {
                eprintln!("{}: egress not testable: {err:#}", case.name);
                &[PacketDir::Ingress]
            }
            Err(err) => panic!("{}: tc run: {err:#}", case.name),
        };
        let after = kernel.counters().expect("counters");
        for &dir in dirs {
            for slot in 0..SLOTS {
                let delta = after.get(dir, slot).packets - before.get(dir, slot).packets;
                let bytes = after.get(dir, slot).bytes - before.get(dir, slot).bytes;
                let want = u64::from(slot == case.slot);
                assert_eq!(
                    delta,
                    want,
                    "{}: {dir:?} slot {:?} counted {delta}, want {want}",
                    case.name,
                    slot_name(slot)
                );
                assert_eq!(
                    bytes,
                    want * case.frame.len() as u64,
                    "{}: {dir:?} bytes",
                    case.name
                );
            }
        }
    }
}

#[test]
fn repeated_runs_count_every_repetition() {
    let kernel = Kernel::load().expect("load");
    let case = &corpus()[0];
    let before = kernel
        .counters()
        .expect("counters")
        .get(PacketDir::Ingress, case.slot);
    kernel
        .run(PROG_INGRESS, &case.frame, 1000)
        .expect("xdp run");
    let after = kernel
        .counters()
        .expect("counters")
        .get(PacketDir::Ingress, case.slot);
    assert_eq!(after.packets - before.packets, 1000);
    assert_eq!(after.bytes - before.bytes, 1000 * case.frame.len() as u64);
}

/// The same parser, compiled for the host, gives the same slots (and the
/// ports) for every frame, including the ones test_run cannot take.
#[test]
fn host_parser_agrees_with_the_corpus() {
    for case in corpus() {
        let frame: &[u8] = &case.frame;
        let parsed = packet::parse_ethernet(frame);
        let slot = match &parsed {
            Ok(p) => slot_of(p),
            Err(e) => slot_of_error(*e),
        };
        assert_eq!(slot, case.slot, "{}: host parser slot", case.name);
        if let (Ok(p), Some(ports)) = (&parsed, case.ports) {
            assert_eq!((p.sport, p.dport), ports, "{}: ports", case.name);
        }
        // Reading past the end is refused, never a panic.
        assert_eq!(
            frame.load::<u64>(frame.len().saturating_sub(4)),
            None::<u64>
        );
    }
}
