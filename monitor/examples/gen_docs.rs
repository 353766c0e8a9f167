//! Writes `portconform`'s man pages (one per subcommand, nested ones such as
//! `portconform-policy-compile.1` included) into OUT/man and its bash, zsh
//! and fish completions into OUT/completions, for `cargo xtask package`.
//!
//! An example target rather than a subcommand or part of xtask: the
//! generators stay dev-dependencies, out of the installed binary, and xtask
//! does not have to build the library (with its embedded eBPF object) to
//! get at the command line; `monitor::cli::command()` is the one definition
//! both the binary and these pages read.

use std::path::PathBuf;

use anyhow::Context as _;
use clap_complete::Shell;

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(
        std::env::args_os()
            .nth(1)
            .context("usage: gen_docs OUT_DIR")?,
    );
    let man = out.join("man");
    let completions = out.join("completions");
    for dir in [&man, &completions] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    clap_mangen::generate_to(monitor::cli::command(), &man)
        .with_context(|| format!("writing man pages to {}", man.display()))?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(
            shell,
            &mut monitor::cli::command(),
            "portconform",
            &completions,
        )
        .with_context(|| format!("writing the {shell} completions"))?;
    }
    Ok(())
}
