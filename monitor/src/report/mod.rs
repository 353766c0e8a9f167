//! `portconform report`: the conformance report over the JSON-lines events
//! that `run` and `replay` write, for one host or many.
//!
//! - [`load`] streams the files line by line and dispatches on `kind`;
//!   damaged lines are reported as `file:line: what` and skipped.
//! - [`aggregate`] folds records into flows and verdicts independently of
//!   file and line order (rotated files come in any order).
//! - [`model`] is the aggregated report, serialized as is for `--format json`.
//! - [`terminal`] and [`html`] render it; [`context`] and [`documents`] add
//!   what the policy and the vendor documents say about the cited rules.
//! - [`timeline`] bins each host's flows over time, once for both: the
//!   terminal's sparklines and the page's SVG timeline ([`svg`]).
//! - [`sightings`] folds a flow's cumulative counts, for `learn` too.
//! - [`sequence`] checks each host's line numbers for gaps.
//! - [`command`] is the command line's edge.

pub mod aggregate;
pub mod command;
pub mod context;
pub mod documents;
pub mod html;
pub mod load;
pub mod model;
pub mod sequence;
pub mod sightings;
pub mod stream;
pub mod svg;
pub mod terminal;
pub mod timeline;

pub use aggregate::Aggregator;
pub use command::{ReportArgs, ReportFormat};
pub use context::PolicyContext;
pub use documents::Documents;
pub use model::Report;

#[cfg(test)]
mod tests;
