//! The layout record: what a pinned run left in its pin directory, kept in
//! the directory itself as a one-element BPF array (bpffs holds only BPF
//! objects, no plain files), so the record lives and dies with the pins.
//!
//! The next run reads it to decide what it may reuse: a map is adopted only
//! when the record's version is this binary's, the record lists the map
//! with the shape this binary expects, and the kernel's own view of the
//! pinned map agrees (see `loader::adopt`).

use std::{io, os::fd::AsRawFd as _, path::Path};

use serde::{Deserialize, Serialize};

/// Bumped whenever a pinned map's key or value changes meaning, even at
/// the same size: its state is then never read by a binary that would
/// misread it.
pub const LAYOUT_VERSION: u32 = 1;

/// Room for the record's JSON: a thousand rule ids and every blocked flow
/// the daemon remembers (`required::MAX_BLOCKED`, about 250 bytes each).
const RECORD_BYTES: u32 = 2 * 1024 * 1024;

/// What a pinned run left behind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub version: u32,
    /// The network namespace (inode of /proc/self/ns/net) whose interfaces
    /// the links are on: interface indexes mean nothing elsewhere.
    pub netns: u64,
    pub maps: Vec<MapShape>,
    pub interfaces: Vec<PinnedIface>,
    /// The policy set (0 or 1) the programs classify with.
    pub live_set: u8,
    /// That set's rule ids in index order, so counters and pending attempts
    /// can be matched to the next run's policy (empty: no policy).
    pub rules: Vec<String>,
    /// Whether the drop program is attached (its link pinned).
    pub drops: bool,
    /// Required flows reported blocked and not recovered when the daemon
    /// stopped: the next one updates them instead of reporting them anew.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked: Vec<SavedBlocked>,
    /// The events' numbering (see `events::stream`), so the next run goes
    /// on with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<SavedStream>,
}

/// An events stream's instance and where its numbering stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedStream {
    pub instance: String,
    /// The `seq` of the next line: exact when `clean`, else a lower bound
    /// (saved every summary while the daemon runs).
    pub next_seq: u64,
    /// Whether the daemon that saved it stopped cleanly.
    pub clean: bool,
}

/// A blocked flow as a stopping daemon left it (see `required::Blocked`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedBlocked {
    /// The kernel's flow key, its bytes in hex.
    pub flow: String,
    pub rule: String,
    /// `BlockReason::code`.
    pub reason: u16,
    pub attempts: u64,
    pub reported_attempts: u64,
    pub first_ns: u64,
    pub last_ns: u64,
    pub ifindex: u32,
    pub initiator_port: u16,
}

/// A map as the kernel describes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapShape {
    pub name: String,
    #[serde(flatten)]
    pub shape: Shape,
}

/// One monitored interface of a pinned run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedIface {
    pub name: String,
    pub index: u32,
    /// The counter slot its traffic is counted in.
    pub slot: u32,
    /// "native" or "generic".
    pub xdp: String,
    /// "tcx" (a pinned link) or "clsact" (a filter, found by these).
    pub egress: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tc_priority: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tc_handle: Option<u32>,
    /// Whether the clsact qdisc was added by portconform (removed on detach).
    #[serde(default)]
    pub owned_qdisc: bool,
}

impl Layout {
    pub fn map(&self, name: &str) -> Option<Shape> {
        self.maps.iter().find(|m| m.name == name).map(|m| m.shape)
    }

    pub fn iface(&self, index: u32) -> Option<&PinnedIface> {
        self.interfaces.iter().find(|i| i.index == index)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("the layout record is not one this portconform reads ({0})")]
    Unreadable(String),
}

fn io(what: &'static str) -> impl FnOnce(io::Error) -> RecordError {
    move |source| RecordError::Io { what, source }
}

/// Reads the record pinned at `path`; `None` when there is none.
pub fn read(path: &Path) -> Result<Option<Layout>, RecordError> {
    if !path.exists() {
        return Ok(None);
    }
    // The kernel copies the map's whole value: check its size before
    // handing it a buffer.
    let info = aya::maps::MapInfo::from_pin(path)
        .map_err(|e| RecordError::Unreadable(format!("not a map ({e})")))?;
    if info.value_size() != RECORD_BYTES || info.max_entries() != 1 {
        return Err(RecordError::Unreadable(format!(
            "a record map of {} bytes",
            info.value_size()
        )));
    }
    let fd = sys::obj_get(path).map_err(io("opening the layout record"))?;
    let mut buf = vec![0u8; RECORD_BYTES as usize];
    sys::lookup(fd.as_raw_fd(), &mut buf).map_err(io("reading the layout record"))?;
    let len = u32::from_le_bytes(buf[..4].try_into().expect("4 bytes")) as usize;
    let body = buf
        .get(4..4 + len)
        .ok_or_else(|| RecordError::Unreadable(format!("length {len} past the record")))?;
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| RecordError::Unreadable(e.to_string()))
}

/// Writes `layout` as the record pinned at `path`, creating it if needed.
pub fn write(path: &Path, layout: &Layout) -> Result<(), RecordError> {
    let body = serde_json::to_vec(layout).expect("the record serializes");
    if body.len() + 4 > RECORD_BYTES as usize {
        return Err(RecordError::Unreadable(format!(
            "{} bytes of record, more than {RECORD_BYTES}",
            body.len()
        )));
    }
    let fd = match sys::obj_get(path) {
        Ok(fd) => fd,
        Err(_) => {
            let fd = sys::create_array(RECORD_BYTES, b"pc_layout")
                .map_err(io("creating the layout record"))?;
            sys::pin(fd.as_raw_fd(), path).map_err(io("pinning the layout record"))?;
            fd
        }
    };
    let mut buf = vec![0u8; RECORD_BYTES as usize];
    buf[..4].copy_from_slice(&(body.len() as u32).to_le_bytes());
    buf[4..4 + body.len()].copy_from_slice(&body);
    sys::update(fd.as_raw_fd(), &buf).map_err(io("writing the layout record"))
}

/// The few bpf(2) commands the record needs. aya creates maps only from an
/// object's definitions, and the record must exist apart from any object.
mod sys {
    use std::{
        ffi::CString,
        io,
        os::{
            fd::{FromRawFd as _, OwnedFd, RawFd},
            unix::ffi::OsStrExt as _,
        },
        path::Path,
    };

    const BPF_MAP_CREATE: libc::c_long = 0;
    const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
    const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
    const BPF_OBJ_PIN: libc::c_long = 6;
    const BPF_OBJ_GET: libc::c_long = 7;
    const BPF_MAP_TYPE_ARRAY: u32 = 2;

    /// `union bpf_attr`, as wide as any command here uses (the kernel
    /// checks that the bytes past what it knows are zero).
    #[repr(C, align(8))]
    struct Attr([u8; 128]);

    impl Attr {
        fn new() -> Self {
            Self([0; 128])
        }
        fn u32(mut self, at: usize, v: u32) -> Self {
            self.0[at..at + 4].copy_from_slice(&v.to_ne_bytes());
            self
        }
        fn u64(mut self, at: usize, v: u64) -> Self {
            self.0[at..at + 8].copy_from_slice(&v.to_ne_bytes());
            self
        }
    }

    fn bpf(cmd: libc::c_long, attr: &Attr) -> io::Result<libc::c_long> {
        // SAFETY: `attr` is a valid, fully initialized bpf_attr of the size passed.
        let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *const Attr, 128usize) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }

    fn owned(fd: libc::c_long) -> OwnedFd {
        // SAFETY: the kernel just returned this descriptor to us alone.
        unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
    }

    fn cpath(path: &Path) -> io::Result<CString> {
        CString::new(path.as_os_str().as_bytes())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    }

    pub fn create_array(value_size: u32, name: &[u8]) -> io::Result<OwnedFd> {
        let mut attr = Attr::new()
            .u32(0, BPF_MAP_TYPE_ARRAY)
            .u32(4, 4)
            .u32(8, value_size)
            .u32(12, 1);
        // map_name[16] follows map_type, key_size, value_size, max_entries,
        // map_flags, inner_map_fd and numa_node.
        let n = name.len().min(15);
        attr.0[28..28 + n].copy_from_slice(&name[..n]);
        bpf(BPF_MAP_CREATE, &attr).map(owned)
    }

    pub fn pin(fd: RawFd, path: &Path) -> io::Result<()> {
        let p = cpath(path)?;
        let attr = Attr::new().u64(0, p.as_ptr() as u64).u32(8, fd as u32);
        bpf(BPF_OBJ_PIN, &attr).map(drop)
    }

    pub fn obj_get(path: &Path) -> io::Result<OwnedFd> {
        let p = cpath(path)?;
        let attr = Attr::new().u64(0, p.as_ptr() as u64);
        bpf(BPF_OBJ_GET, &attr).map(owned)
    }

    /// Element 0, into `value` (which must be the map's value size).
    pub fn lookup(fd: RawFd, value: &mut [u8]) -> io::Result<()> {
        let key = 0u32;
        let attr = Attr::new()
            .u32(0, fd as u32)
            .u64(8, &key as *const u32 as u64)
            .u64(16, value.as_mut_ptr() as u64);
        bpf(BPF_MAP_LOOKUP_ELEM, &attr).map(drop)
    }

    pub fn update(fd: RawFd, value: &[u8]) -> io::Result<()> {
        let key = 0u32;
        let attr = Attr::new()
            .u32(0, fd as u32)
            .u64(8, &key as *const u32 as u64)
            .u64(16, value.as_ptr() as u64);
        bpf(BPF_MAP_UPDATE_ELEM, &attr).map(drop)
    }
}
