//! `portconform detach`: removes what `run --pin` leaves attached.

use std::path::PathBuf;

use anyhow::Context as _;

use super::detach;
use crate::pin::{DEFAULT_DIR, PinDir};

/// The options of `detach`.
#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["ifaces", "all"]))]
pub struct DetachArgs {
    /// The pin directory `run --pin` used.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DIR)]
    pub pin: PathBuf,
    /// Detach from this interface only; repeat or comma-separate. The pins
    /// go with the last one.
    #[arg(long = "iface", value_delimiter = ',')]
    pub ifaces: Vec<String>,
    /// Detach from every interface and remove every pin: links, state
    /// maps and the layout record.
    #[arg(long)]
    pub all: bool,
}

/// `portconform detach`.
pub fn run(args: DetachArgs) -> anyhow::Result<()> {
    let dir = PinDir::open(&args.pin, false)?;
    let removed = if args.all {
        detach::all(dir)
    } else {
        detach::interfaces(dir, &args.ifaces)
    }
    .with_context(|| format!("detaching the pins in {}", args.pin.display()))?;
    let from = if removed.interfaces.is_empty() {
        String::new()
    } else {
        format!(" from {}", removed.interfaces.join(", "))
    };
    if removed.everything {
        eprintln!(
            "portconform: detached{from}; removed every pin in {}",
            args.pin.display()
        );
    } else {
        eprintln!("portconform: detached{from}");
    }
    Ok(())
}
