//! Empty on purpose: the programs are the `monitor` binary target. This library
//! target exists so `monitor` can name this crate as a build dependency, which
//! makes cargo rebuild the embedded object when the kernel code changes.
#![no_std]
