//! Defences against hostile input shared by the engine, the harness and the
//! power sources: opening a file a user or the system names ([`file`]),
//! checking a size against the machine's memory before allocating it
//! ([`memory`]), and running an external command with a time limit and a
//! bounded output ([`command`]).
//!
//! Every check here fails with an error that names the file or the size, the
//! limit and the fix; callers map these errors to exit code 2 (bad input).

pub mod command;
pub mod file;
pub mod memory;

pub use command::{program_exists, run_bounded, CommandError};
pub use file::{open_regular, read_capped, read_capped_string, resolve_inside, FileError};
pub use memory::{check_fits, memory_limit, SizeError};
