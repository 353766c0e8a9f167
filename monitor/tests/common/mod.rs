//! What the monitor's integration tests share, included by each with
//! `mod common;`: the `portconform` binary run as a user runs it (here), the
//! hosts and frames of the replay tests ([`frames`]), the link-layer
//! headers of every link type replay reads ([`links`]), the pcap and pcapng
//! files they are written to ([`pcap`]), tshark as the oracle replay's
//! parser is held to ([`oracle`]) and a headless chromium for looking at
//! the HTML report as a browser lays it out ([`webdriver`]).

// Each test file is its own crate and uses only a part of this module; the
// rest would warn as dead code there.
#![allow(dead_code)]

pub mod frames;
pub mod links;
pub mod oracle;
pub mod pcap;
pub mod webdriver;

use std::process::Command;

/// `portconform args...`, not started yet: for a test that adds to its
/// environment or arguments.
pub fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portconform"));
    cmd.args(args);
    cmd
}

/// Runs `cmd` to completion: whether it succeeded, then its stdout and its
/// stderr, which must be UTF-8 (the binary prints text).
pub fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("run portconform");
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("portconform prints UTF-8");
    (out.status.success(), text(out.stdout), text(out.stderr))
}

/// `portconform args...` run to completion, as [`run`] says.
pub fn portconform(args: &[&str]) -> (bool, String, String) {
    run(&mut command(args))
}

/// Runs `cmd`, which must succeed: its stdout and stderr.
pub fn succeeds(cmd: &mut Command) -> (String, String) {
    let (ok, stdout, stderr) = run(cmd);
    assert!(ok, "{cmd:?} failed:\n{stderr}");
    (stdout, stderr)
}

/// Runs `cmd`, which must fail: its stderr.
pub fn fails(cmd: &mut Command) -> String {
    let (ok, _, stderr) = run(cmd);
    assert!(!ok, "{cmd:?} should fail");
    stderr
}
