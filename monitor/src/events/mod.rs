//! Userspace sinks for classified traffic: the JSON-lines event log and the
//! pcapng capture of offending packets. They are plain synchronous writers so
//! that the daemon can drive them from whichever task drains its event queue.

pub mod borrowed;
pub mod console;
pub mod flood;
pub mod jsonl;
pub mod pcapng;
pub mod record;
pub mod text;

pub use borrowed::RecordRef;
pub use console::{required_line, unexpected_line};
pub use jsonl::{JsonlError, JsonlWriter, Rotation};
pub use pcapng::{CapturedPacket, PcapngError, PcapngWriter};
pub use record::{
    ConnDir, EventKind, EventRecord, IpProto, RequiredState, RequiredStatus, rfc3339,
};
