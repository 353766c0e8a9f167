//! Reaching a service over the network and saying what happened: shared by
//! `validate` (inside its lab) and `probe` (on a staging host).

pub mod connect;
pub mod dns;
pub mod outcome;

pub use connect::{L4, queued_icmp, socket, tcp, udp};
pub use outcome::{IcmpError, Observed, Outcome};

/// The request a UDP attempt sends to `port`, and how to recognise its
/// answer: a DNS query for 53, a line that an echo service sends back for
/// anything else.
/// Recognises the answer to a UDP request.
pub type IsAnswer = Box<dyn Fn(&[u8]) -> bool + Send + Sync>;

pub fn udp_request(port: u16, id: u16) -> (Vec<u8>, IsAnswer) {
    if port == 53 {
        (
            dns::root_ns_query(id),
            Box::new(move |m: &[u8]| dns::is_response_to(id, m)),
        )
    } else {
        (
            format!("portconform {id}\n").into_bytes(),
            Box::new(|m: &[u8]| !m.is_empty()),
        )
    }
}
