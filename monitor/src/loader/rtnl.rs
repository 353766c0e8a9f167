//! The few rtnetlink requests the clsact fallback needs that aya does not
//! make: create a clsact qdisc knowing whether it already existed, count the
//! filters hanging off it, and delete it. Kernels before 6.6 have no tcx, so
//! egress programs attach as filters of a clsact qdisc, which outlives the
//! process unless someone removes it.

use std::io;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::{
    RouteNetlinkMessage,
    tc::{TcAttribute, TcHandle, TcMessage},
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// The clsact qdisc's handle (ffff:0) and its two filter parents.
const CLSACT: TcHandle = TcHandle {
    major: 0xffff,
    minor: 0,
};
const CLSACT_INGRESS: TcHandle = TcHandle {
    major: 0xffff,
    minor: TcHandle::MIN_INGRESS,
};
const CLSACT_EGRESS: TcHandle = TcHandle {
    major: 0xffff,
    minor: TcHandle::MIN_EGRESS,
};

/// Adds a clsact qdisc to `ifindex`: `true` when this call created it,
/// `false` when one was there already.
pub fn add_clsact(ifindex: u32) -> io::Result<bool> {
    match request(
        RouteNetlinkMessage::NewQueueDiscipline(clsact_message(ifindex)),
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE,
    ) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Deletes `ifindex`'s clsact qdisc, and with it every filter it holds.
pub fn delete_clsact(ifindex: u32) -> io::Result<()> {
    request(
        RouteNetlinkMessage::DelQueueDiscipline(clsact_message(ifindex)),
        NLM_F_REQUEST | NLM_F_ACK,
    )
    .map(drop)
}

/// Filters attached to `ifindex`'s clsact qdisc, ingress and egress.
pub fn clsact_filters(ifindex: u32) -> io::Result<usize> {
    let mut n = 0;
    for parent in [CLSACT_INGRESS, CLSACT_EGRESS] {
        let mut msg = TcMessage::with_index(ifindex as i32);
        msg.header.parent = parent;
        let replies = request(
            RouteNetlinkMessage::GetTrafficFilter(msg),
            NLM_F_REQUEST | NLM_F_DUMP,
        )?;
        // A dump lists each priority's head (handle 0) besides its filters.
        n += replies
            .iter()
            .filter(|m| {
                matches!(m, RouteNetlinkMessage::NewTrafficFilter(f) if f.header.handle != TcHandle::UNSPEC)
            })
            .count();
    }
    Ok(n)
}

fn clsact_message(ifindex: u32) -> TcMessage {
    let mut msg = TcMessage::with_index(ifindex as i32);
    msg.header.handle = CLSACT;
    msg.header.parent = TcHandle::CLSACT;
    msg.attributes.push(TcAttribute::Kind("clsact".into()));
    msg
}

/// Sends one request and collects the replies up to its ack or the end of
/// its dump; a negative ack becomes its errno.
fn request(message: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<RouteNetlinkMessage>> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = 1;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    socket.send(&buf, 0)?;

    let mut replies = Vec::new();
    loop {
        let (datagram, _) = socket.recv_from_full()?;
        let mut offset = 0;
        while offset < datagram.len() {
            let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&datagram[offset..])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let len = reply.header.length as usize;
            match reply.payload {
                NetlinkPayload::Done(_) => return Ok(replies),
                NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
                NetlinkPayload::Error(_) => return Ok(replies),
                NetlinkPayload::InnerMessage(m) => replies.push(m),
                _ => {}
            }
            if len == 0 {
                break;
            }
            offset += (len + 3) & !3;
        }
    }
}
