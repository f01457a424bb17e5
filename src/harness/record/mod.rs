//! What a run writes and how it is read back: the rows of results.csv,
//! samples.csv, power.csv and profile.csv (written, read for `--resume`,
//! merged), the run read back as a whole for analysis and figures, and
//! energy attached afterwards from a meter's log.

pub mod attach;
pub mod dataset;
pub mod rows;
