//! The library behind the `mmkit` command: the strace parser, maps snapshots and the replay
//! engine, kept in a library so that integration tests can drive them directly.

pub mod demo;
pub mod exec;
pub mod host;
pub mod json;
pub mod maps;
pub mod replay;
pub mod strace;
pub mod svg;
