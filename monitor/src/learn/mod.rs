//! `portconform learn`: from the unexpected flows of the events files back
//! to a document: the site's addendum to the vendor's, one reviewed row per
//! service the site really runs, with the evidence beside it.
//!
//! - [`collect`] folds the files' lines (read by the report's loader) into
//!   flows and floods.
//! - [`noise`] finds what is not a service: scans, floods, ephemeral ports.
//! - [`group`] names each flow's row: host role, direction, protocol,
//!   port, peer role or network.
//! - [`propose`] groups, holds groups to the thresholds and sets the rest
//!   aside with the reason.
//! - [`render`] writes the Markdown table the policy compiler reads.
//! - [`command`] is the command line's edge.

pub mod collect;
pub mod command;
pub mod group;
pub mod noise;
pub mod propose;
pub mod render;

pub use command::LearnArgs;

#[cfg(test)]
mod tests;
