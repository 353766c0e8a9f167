//! The eBPF object built by `build.rs`, embedded so the binary is self-contained.

/// ELF bytes of the kernel programs, 8-byte aligned as the ELF parser expects.
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/monitor"));
