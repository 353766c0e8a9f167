//! `cargo xtask demo`: builds the release binary, then runs the lab demo (a
//! program of the tests crate, which owns the namespace lab).

use anyhow::bail;

use crate::{cmd, setup};

pub fn run() -> anyhow::Result<()> {
    setup::ensure()?;
    if !cmd::is_root() {
        bail!("the demo builds network namespaces and loads BPF programs: run it as root");
    }
    cmd::run(cmd::cargo().args(["build", "--release", "-p", "monitor"]))?;
    let bin = cmd::root().join("target/release/portconform");
    cmd::run(cmd::cargo().env("PORTCONFORM_BIN", &bin).args([
        "run",
        "--release",
        "-q",
        "-p",
        "portconform-tests",
        "--bin",
        "demo",
    ]))
}
