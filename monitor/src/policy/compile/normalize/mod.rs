//! Normalisation of the wording of one table cell into policy terms. Each
//! reader returns its reading plus the notes (decisions) and warnings
//! (guesses) that the compiler records with `doc:line`.

pub mod agents;
pub mod allowed;
pub mod definitions;
pub mod direction;
pub mod endpoints;
pub mod initiators;
pub mod mentions;
pub mod ports;
pub mod protocol;
pub mod required;
pub mod restricted;
pub mod sides;
