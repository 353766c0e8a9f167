//! The pin directory of `run --pin`: where a pinned run leaves its links,
//! its state maps and the layout record (see [`record`]) on a BPF file
//! system, so the programs outlive the daemon and the next run adopts them.
//!
//! One directory belongs to one daemon at a time: it is held with an
//! exclusive `flock` on the directory itself for as long as the run lasts,
//! which the kernel drops when the process dies, kill -9 included.

pub mod record;

use std::{
    fs::File,
    io,
    os::{fd::AsRawFd as _, unix::fs::MetadataExt as _},
    path::{Path, PathBuf},
};

pub use record::{LAYOUT_VERSION, Layout, MapShape, PinnedIface, Shape};

/// Where `run --pin` and `detach` keep their pins unless told otherwise.
pub const DEFAULT_DIR: &str = "/sys/fs/bpf/portconform/default";

/// statfs(2)'s f_type of a BPF file system.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error(
        "{0} is not on a BPF file system: pins need one (mount it with `mount -t bpf bpf /sys/fs/bpf`, or give --pin a directory on one)"
    )]
    NotBpffs(PathBuf),
    #[error("{0} holds no pins")]
    Missing(PathBuf),
    #[error("{iface} is not among the interfaces pinned in {dir} ({pinned})")]
    NotPinned {
        iface: String,
        dir: PathBuf,
        pinned: String,
    },
    #[error(
        "another portconform is running with the pins in {0}: stop it first, or give it another --pin directory"
    )]
    Busy(PathBuf),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// An open, locked pin directory.
#[derive(Debug)]
pub struct PinDir {
    path: PathBuf,
    /// Holds the lock; closing it releases it.
    _lock: File,
}

impl PinDir {
    /// Opens `path`, creating it (and its parents on the same BPF file
    /// system) when `create` is set, and takes its lock.
    pub fn open(path: &Path, create: bool) -> Result<Self, PinError> {
        let io_err = |what: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| PinError::Io { what, path, source }
        };
        // The nearest existing ancestor says which file system it is on.
        let existing = path
            .ancestors()
            .find(|p| p.exists())
            .unwrap_or(Path::new("/"));
        if !is_bpffs(existing) {
            return Err(PinError::NotBpffs(path.to_path_buf()));
        }
        if !path.exists() {
            if !create {
                return Err(PinError::Missing(path.to_path_buf()));
            }
            std::fs::create_dir_all(path).map_err(io_err("creating", path))?;
        }
        if create {
            for sub in ["maps", "links"] {
                let d = path.join(sub);
                if !d.exists() {
                    std::fs::create_dir(&d).map_err(io_err("creating", &d))?;
                }
            }
        }
        let lock = File::open(path).map_err(io_err("opening", path))?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(PinError::Busy(path.to_path_buf()));
            }
            return Err(io_err("locking", path)(e));
        }
        Ok(Self {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The layout record.
    pub fn layout(&self) -> PathBuf {
        self.path.join("layout")
    }

    /// A state map, by its name in the object.
    pub fn map(&self, name: &str) -> PathBuf {
        self.path.join("maps").join(name)
    }

    /// The XDP link of interface `index`.
    pub fn xdp_link(&self, index: u32) -> PathBuf {
        self.path.join("links").join(format!("xdp-{index}"))
    }

    /// The tcx link of interface `index` (a clsact filter is no BPF object
    /// and is found through the record instead).
    pub fn tc_link(&self, index: u32) -> PathBuf {
        self.path.join("links").join(format!("tcx-{index}"))
    }

    /// The drop program's tracepoint link.
    pub fn drops_link(&self) -> PathBuf {
        self.path.join("links").join("drops")
    }

    /// Reads the layout record; `Ok(None)` when there is none.
    pub fn read_layout(&self) -> Result<Option<Layout>, record::RecordError> {
        record::read(&self.layout())
    }

    pub fn write_layout(&self, layout: &Layout) -> Result<(), record::RecordError> {
        record::write(&self.layout(), layout)
    }

    /// Removes a pin (a map, a link, the record); one already gone is fine.
    pub fn unpin(path: &Path) -> Result<(), PinError> {
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(PinError::Io {
                what: "removing",
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Removes every pin and the directory itself. The lock goes with it.
    pub fn remove_all(self) -> Result<(), PinError> {
        std::fs::remove_dir_all(&self.path).map_err(|source| PinError::Io {
            what: "removing",
            path: self.path.clone(),
            source,
        })
    }
}

fn is_bpffs(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs fills a zeroed struct through a valid pointer.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0) && st.f_type as i64 == BPF_FS_MAGIC
}

/// This process's network namespace (the inode of /proc/self/ns/net).
pub fn netns() -> u64 {
    std::fs::metadata("/proc/self/ns/net").map_or(0, |m| m.ino())
}
