//! Everything the kernel programs and userspace must agree on, in one `no_std`
//! crate: map layouts, counter slots and the packet parser. Keeping the parser
//! here means the XDP/TC programs and offline replay classify a packet the same
//! way, because they run the same code.
#![no_std]

pub mod classify;
pub mod drop;
pub mod flood;
pub mod flow;
pub mod handshake;
pub mod maps;
pub mod packet;
pub mod policy;
pub mod stats;

pub use packet::{Packet, ParseError, Parsed};
