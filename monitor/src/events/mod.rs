//! Userspace sinks for classified traffic: the JSON-lines event log and the
//! pcapng capture of offending packets. They are plain synchronous writers so
//! that the daemon can drive them from whichever task drains its event queue.

pub mod borrowed;
pub mod console;
pub mod flood;
pub mod flow;
pub mod jsonl;
pub mod pcapng;
pub mod record;
pub mod stream;
pub mod text;

pub use borrowed::RecordRef;
pub use console::{required_line, unexpected_line};
pub use jsonl::{JsonlError, JsonlWriter, Rotation};
pub use pcapng::{CapturedPacket, LINKTYPE_ETHERNET, PcapngError, PcapngWriter};
pub use record::{
    ConnDir, EventKind, EventRecord, IpProto, RequiredState, RequiredStatus, rfc3339,
};
pub use stream::Stream;

/// Permissions of the events and pcapng files the sinks create (before the
/// umask; a file that exists keeps its own): they name this host's peers,
/// ports and roles, so its owner writes them and its group (say, the log
/// readers of /var/log) reads them, nobody else.
pub const FILE_MODE: u32 = 0o640;
