//! What a run writes and how it is read back: the typed rows of results.csv,
//! samples.csv, power.csv and profile.csv and the manifest (the only
//! definition of each file's contents), the CSV files on disk (written,
//! read for `--resume`, merged), the run read back as a whole for analysis
//! and figures, and energy attached afterwards from a meter's log.

pub mod attach;
pub mod dataset;
pub mod io;
pub mod manifest;
pub mod merge;
pub mod params;
pub mod rows;
