//! Link-layer headers of every link type replay reads, written byte by byte
//! as the systems that capture them write them, around the packets the
//! replay tests build. They are written here rather than with a crate
//! because no packet crate writes most of them (NFLOG, PKTAP, PPI, Frame
//! Relay), and because the tests need the odd variants real captures hold
//! (either byte order, compressed fields, padding) that a writer of the
//! canonical form would never produce.

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
/// The pre-standard QinQ outer tag some switches still send.
pub const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
pub const ETHERTYPE_LLDP: u16 = 0x88cc;

/// The MAC addresses of every frame: nothing reads them.
const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const MAC_C: [u8; 6] = [0x02, 0, 0, 0, 0, 0x03];
const MAC_D: [u8; 6] = [0x02, 0, 0, 0, 0, 0x04];

/// The ethertype of an IP packet, from its version nibble.
pub fn ethertype_of(ip: &[u8]) -> u16 {
    if ip.first().is_some_and(|b| b >> 4 == 6) {
        ETHERTYPE_IPV6
    } else {
        ETHERTYPE_IPV4
    }
}

/// The bytes `head`, then `payload`.
pub fn cat(head: &[u8], payload: &[u8]) -> Vec<u8> {
    [head, payload].concat()
}

/// An Ethernet frame: VLAN `tags` (each a TPID and a VLAN id) before
/// `ethertype`, then `payload`.
pub fn ethernet(tags: &[(u16, u16)], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = [MAC_A, MAC_B].concat();
    for (tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An untagged Ethernet frame around an IP packet.
pub fn ethernet_ip(ip: &[u8]) -> Vec<u8> {
    ethernet(&[], ethertype_of(ip), ip)
}

/// Linux cooked capture v1 (`tcpdump -i any`): packet type, ARPHRD type, a
/// 6-byte link address padded to 8, then the protocol (an ethertype).
pub fn sll(pkttype: u16, arphrd: u16, protocol: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(16 + payload.len());
    f.extend_from_slice(&pkttype.to_be_bytes());
    f.extend_from_slice(&arphrd.to_be_bytes());
    f.extend_from_slice(&6u16.to_be_bytes());
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&protocol.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Linux cooked capture v2: protocol first, then a reserved word, the
/// interface index, ARPHRD type, packet type and a link address of 8.
pub fn sll2(pkttype: u8, arphrd: u16, ifindex: u32, protocol: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(20 + payload.len());
    f.extend_from_slice(&protocol.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&ifindex.to_be_bytes());
    f.extend_from_slice(&arphrd.to_be_bytes());
    f.push(pkttype);
    f.push(6);
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// A BSD loopback header: the address family as a 4-byte number in the
/// capturing host's byte order (NULL) or in network order (LOOP).
pub fn bsd_family(family: u32, big_endian: bool) -> [u8; 4] {
    if big_endian {
        family.to_be_bytes()
    } else {
        family.to_le_bytes()
    }
}

/// An NFLOG record: family, version 0, resource id, then each TLV (type,
/// value) with its length and type in the capturing host's byte order,
/// padded to 4 bytes.
pub fn nflog(family: u8, tlvs: &[(u16, &[u8])], big_endian: bool) -> Vec<u8> {
    let mut f = vec![family, 0, 0, 1];
    for (kind, value) in tlvs {
        let len = (4 + value.len()) as u16;
        let (len, kind) = if big_endian {
            (len.to_be_bytes(), kind.to_be_bytes())
        } else {
            (len.to_le_bytes(), kind.to_le_bytes())
        };
        f.extend_from_slice(&len);
        f.extend_from_slice(&kind);
        f.extend_from_slice(value);
        while f.len() % 4 != 0 {
            f.push(0);
        }
    }
    f
}

/// NFLOG's TLV types the tests write.
pub const NFULA_PACKET_HDR: u16 = 1;
pub const NFULA_MARK: u16 = 2;
pub const NFULA_TIMESTAMP: u16 = 3;
pub const NFULA_IFINDEX_INDEV: u16 = 4;
pub const NFULA_PAYLOAD: u16 = 9;
pub const NFULA_PREFIX: u16 = 10;
pub const NFULA_UID: u16 = 11;

/// The value of NFULA_PACKET_HDR: the hardware protocol (network order
/// whatever the host's), the netfilter hook, a pad byte.
pub fn nflog_packet_hdr(hw_protocol: u16, hook: u8) -> Vec<u8> {
    let mut v = hw_protocol.to_be_bytes().to_vec();
    v.extend_from_slice(&[hook, 0]);
    v
}

/// An NFLOG record of `family` with a packet header TLV and `ip` as its
/// payload, little-endian: the simplest record `nflog` writes.
pub fn nflog_ip(family: u8, ip: &[u8]) -> Vec<u8> {
    let hdr = nflog_packet_hdr(ethertype_of(ip), 3);
    nflog(
        family,
        &[(NFULA_PACKET_HDR, &hdr), (NFULA_PAYLOAD, ip)],
        false,
    )
}

/// What kind of 802.11 data frame [`wifi_data`] writes; the default is a
/// plain data frame with RFC 1042 SNAP.
#[derive(Debug, Clone, Copy, Default)]
pub struct WifiData {
    /// QoS data (subtype 8), with a QoS control field.
    pub qos: bool,
    /// To and from the distribution system: a fourth address.
    pub four_addresses: bool,
    /// HT control (the order bit of a QoS data frame).
    pub ht_control: bool,
    /// Bytes of padding after the header (a driver's DATAPAD).
    pub pad: usize,
    /// The SNAP OUI: 00-00-00 (RFC 1042) or 00-00-F8 (802.1H).
    pub oui: [u8; 3],
    /// Retry and power-management flags, which change nothing.
    pub retry: bool,
}

/// The header of an 802.11 frame of `fc0` (type and subtype) and `flags`.
fn wifi_header(fc0: u8, flags: u8) -> Vec<u8> {
    let mut f = vec![fc0, flags, 0x2c, 0];
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&MAC_B);
    f.extend_from_slice(&MAC_C);
    f.extend_from_slice(&[0x10, 0]);
    if flags & 0x03 == 0x03 {
        f.extend_from_slice(&MAC_D);
    }
    f
}

/// An 802.11 data frame to the access point carrying `payload` of
/// `ethertype` under LLC/SNAP.
pub fn wifi_data(kind: &WifiData, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut flags = if kind.four_addresses { 0x03 } else { 0x01 };
    if kind.retry {
        flags |= 0x18;
    }
    if kind.qos && kind.ht_control {
        flags |= 0x80;
    }
    let mut f = wifi_header(if kind.qos { 0x88 } else { 0x08 }, flags);
    if kind.qos {
        f.extend_from_slice(&[0x05, 0]);
        if kind.ht_control {
            f.extend_from_slice(&[0; 4]);
        }
    }
    f.extend(std::iter::repeat_n(0, kind.pad));
    f.extend_from_slice(&[0xaa, 0xaa, 0x03]);
    f.extend_from_slice(&kind.oui);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A plain 802.11 data frame (to the AP, RFC 1042 SNAP) around an IP packet.
pub fn wifi_ip(ip: &[u8]) -> Vec<u8> {
    wifi_data(&WifiData::default(), ethertype_of(ip), ip)
}

/// An 802.11 beacon: management, no IP.
pub fn beacon() -> Vec<u8> {
    let mut f = vec![0x80, 0, 0, 0];
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&MAC_B);
    f.extend_from_slice(&MAC_B);
    f.extend_from_slice(&[0x20, 0]);
    // Timestamp, interval, capabilities, then an SSID element.
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&[0x64, 0, 0x11, 0x04]);
    f.extend_from_slice(&[0, 4]);
    f.extend_from_slice(b"test");
    f
}

/// 802.11 frames that carry no IP: management and control frames, null
/// data, a protected data frame, and data frames of EAPOL and ARP.
pub fn wifi_not_ip(which: usize) -> Vec<u8> {
    match which % 8 {
        0 => beacon(),
        // Probe request with a wildcard SSID.
        1 => [wifi_header(0x40, 0), vec![0, 0]].concat(),
        // ACK and RTS: control frames, shorter than any data header.
        2 => [vec![0xd4, 0, 0, 0], MAC_A.to_vec()].concat(),
        3 => [vec![0xb4, 0, 0x2c, 0], MAC_A.to_vec(), MAC_B.to_vec()].concat(),
        // Null function, and QoS null.
        4 => wifi_header(0x48, 0x01),
        5 => [wifi_header(0xc8, 0x01), vec![0, 0]].concat(),
        // Protected data: the CCMP header and ciphertext hide what it is.
        6 => [wifi_header(0x08, 0x41), vec![0x11; 40]].concat(),
        _ => wifi_data(&WifiData::default(), 0x888e, &[1, 3, 0, 0x5f, 2]),
    }
}

/// Radiotap fields the tests write: present bit, alignment and size.
pub const RADIOTAP_TSFT: (u32, usize, usize) = (0, 8, 8);
pub const RADIOTAP_FLAGS: (u32, usize, usize) = (1, 1, 1);
pub const RADIOTAP_RATE: (u32, usize, usize) = (2, 1, 1);
pub const RADIOTAP_CHANNEL: (u32, usize, usize) = (3, 2, 4);
pub const RADIOTAP_DBM_SIGNAL: (u32, usize, usize) = (5, 1, 1);
pub const RADIOTAP_ANTENNA: (u32, usize, usize) = (11, 1, 1);

/// Radiotap's flags: the frame ends with its FCS; the 802.11 header was
/// padded to 32 bits.
pub const RADIOTAP_F_FCS: u8 = 0x10;
pub const RADIOTAP_F_DATAPAD: u8 = 0x20;

/// A radiotap header with `fields` (in present-bit order; each aligned to
/// its size from the header's start as the format requires), its flags
/// field set to `flags` when present, and `extra_words` more present words
/// (bit 31 chaining them) that announce nothing, then `frame`.
pub fn radiotap(
    fields: &[(u32, usize, usize)],
    flags: u8,
    extra_words: usize,
    frame: &[u8],
) -> Vec<u8> {
    let mut present = fields.iter().fold(0u32, |p, (bit, _, _)| p | 1 << bit);
    if extra_words > 0 {
        present |= 1 << 31;
    }
    let mut h = vec![0u8, 0, 0, 0];
    h.extend_from_slice(&present.to_le_bytes());
    for i in 0..extra_words {
        let word: u32 = if i + 1 < extra_words { 1 << 31 } else { 0 };
        h.extend_from_slice(&word.to_le_bytes());
    }
    for &(bit, align, size) in fields {
        while h.len() % align != 0 {
            h.push(0);
        }
        if (bit, align, size) == RADIOTAP_FLAGS {
            h.push(flags);
        } else {
            h.extend(std::iter::repeat_n(0x5a, size));
        }
    }
    let len = h.len() as u16;
    h[2..4].copy_from_slice(&len.to_le_bytes());
    [h, frame.to_vec()].concat()
}

/// PPI's 802.11-common field (type 2): TSFT, flags (bit 0: the frame ends
/// with its FCS), rate, channel, FHSS, signal and noise.
pub fn ppi_80211_common(fcs: bool) -> Vec<u8> {
    let mut f = 2u16.to_le_bytes().to_vec();
    f.extend_from_slice(&20u16.to_le_bytes());
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&u16::from(fcs).to_le_bytes());
    f.extend_from_slice(&22u16.to_le_bytes());
    f.extend_from_slice(&2437u16.to_le_bytes());
    f.extend_from_slice(&0x00a0u16.to_le_bytes());
    f.extend_from_slice(&[0, 0, 0xc4, 0xa6]);
    f
}

/// A PPI header naming `dlt` for `inner`, with `fields` (already encoded).
pub fn ppi(dlt: u32, fields: &[u8], inner: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8, 0];
    h.extend_from_slice(&((8 + fields.len()) as u16).to_le_bytes());
    h.extend_from_slice(&dlt.to_le_bytes());
    h.extend_from_slice(fields);
    [h, inner.to_vec()].concat()
}

/// A PKTAP header (108 bytes, little-endian as Apple writes it) of record
/// type `record` (1 is a packet) naming `dlt` for `inner`.
pub fn pktap(dlt: u32, record: u32, inner: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 108];
    h[..4].copy_from_slice(&108u32.to_le_bytes());
    h[4..8].copy_from_slice(&record.to_le_bytes());
    h[8..12].copy_from_slice(&dlt.to_le_bytes());
    h[12..15].copy_from_slice(b"en0");
    // pth_pid and pth_comm: the process the packet belongs to.
    h[52..56].copy_from_slice(&4242u32.to_le_bytes());
    h[56..61].copy_from_slice(b"curl\0");
    [h, inner.to_vec()].concat()
}

/// An ARP request for 192.0.2.1 (Ethernet/IPv4), as any link carries one.
pub fn arp() -> Vec<u8> {
    let mut f = vec![0, 1, 0x08, 0x00, 6, 4, 0, 1];
    f.extend_from_slice(&MAC_A);
    f.extend_from_slice(&[192, 0, 2, 9]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[192, 0, 2, 1]);
    f
}
