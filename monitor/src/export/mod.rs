//! Exporting the events to the engines a fleet already runs, each through
//! a bounded on-disk [`spool`], so that nothing is lost on the way without
//! being counted.

pub mod spool;
