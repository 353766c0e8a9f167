//! The one DNS message `probe` and `validate` need: a query for the root's
//! NS records, which every server answers (with data, or REFUSED), and the
//! answer a lab listener gives to it.
//!
//! Hand-built rather than taken from a DNS crate: a 17-byte query and a
//! header check are all that is used, and the tests pin them against the
//! wire format (RFC 1035 4.1) and a real dnsmasq in the lab tests.

/// QTYPE NS, QCLASS IN.
const QTYPE_NS: u16 = 2;
const QCLASS_IN: u16 = 1;
const HEADER: usize = 12;

/// A standard query (RD set) for `. NS` with transaction `id`.
pub fn root_ns_query(id: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(HEADER + 5);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&0x0100u16.to_be_bytes()); // RD
    q.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    q.extend_from_slice(&[0; 6]); // AN, NS, AR counts
    q.push(0); // the root name
    q.extend_from_slice(&QTYPE_NS.to_be_bytes());
    q.extend_from_slice(&QCLASS_IN.to_be_bytes());
    q
}

/// Whether `msg` is a response (QR set) to the query with `id`: any RCODE
/// counts, since the question is whether a DNS server answered at all.
pub fn is_response_to(id: u16, msg: &[u8]) -> bool {
    msg.len() >= HEADER && msg[..2] == id.to_be_bytes() && msg[2] & 0x80 != 0
}

/// The answer of the lab's DNS listener: the question echoed with QR and RA
/// set and RCODE REFUSED; `None` for anything that is not a query.
pub fn refused_answer(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < HEADER || query[2] & 0x80 != 0 {
        return None;
    }
    let mut answer = query.to_vec();
    answer[2] |= 0x80; // QR
    answer[3] = (answer[3] & 0xf0) | 0x80 | 5; // RA, RCODE 5 REFUSED
    Some(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_the_wire_format() {
        assert_eq!(
            root_ns_query(0xbeef),
            [
                0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1
            ]
        );
    }

    #[test]
    fn responses_are_recognised() {
        let q = root_ns_query(7);
        assert!(!is_response_to(7, &q), "a query is not a response");
        let a = refused_answer(&q).unwrap();
        assert!(is_response_to(7, &a));
        assert!(!is_response_to(8, &a));
        assert_eq!(a[3] & 0x0f, 5);
        assert!(refused_answer(&a).is_none(), "answers are not answered");
        assert!(refused_answer(&q[..5]).is_none());
        assert!(!is_response_to(7, &a[..11]));
    }
}
