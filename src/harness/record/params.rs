//! The parameters that identify a configuration across runs (not the point
//! id, timestamp or host): what `compare` matches on and what figures group
//! by, each read from its field of [`ResultRow`].

use crate::harness::record::rows::ResultRow;

/// A knob of a configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    Experiment,
    Model,
    Engine,
    Conv,
    Fusion,
    Threads,
    Batch,
    Mc,
    Nc,
    Kc,
    /// mc, nc and kc together (figures only).
    Cache,
    Loop,
    Cpus,
    PowerMode,
}

/// The parameters `compare` matches on, each a column of results.csv.
pub const PARAMS: &[Param] = &[
    Param::Experiment,
    Param::Model,
    Param::Engine,
    Param::Conv,
    Param::Fusion,
    Param::Threads,
    Param::Batch,
    Param::Mc,
    Param::Nc,
    Param::Kc,
    Param::Loop,
    Param::Cpus,
    Param::PowerMode,
];

impl Param {
    /// Its name: the results.csv column (`cache` is three columns).
    pub fn name(self) -> &'static str {
        match self {
            Param::Experiment => "experiment",
            Param::Model => "model",
            Param::Engine => "engine",
            Param::Conv => "conv",
            Param::Fusion => "fusion",
            Param::Threads => "threads",
            Param::Batch => "batch",
            Param::Mc => "mc",
            Param::Nc => "nc",
            Param::Kc => "kc",
            Param::Cache => "cache",
            Param::Loop => "loop",
            Param::Cpus => "cpus",
            Param::PowerMode => "power_mode",
        }
    }

    /// Its value in a row, as the file writes it; `cache` is `mc/nc/kc`.
    pub fn value(self, r: &ResultRow) -> String {
        match self {
            Param::Experiment => r.experiment.clone(),
            Param::Model => r.model.clone(),
            Param::Engine => r.engine.clone(),
            Param::Conv => r.conv.clone(),
            Param::Fusion => r.fusion.to_string(),
            Param::Threads => r.threads.to_string(),
            Param::Batch => r.batch.to_string(),
            Param::Mc => r.mc.to_string(),
            Param::Nc => r.nc.to_string(),
            Param::Kc => r.kc.to_string(),
            Param::Cache => format!("{}/{}/{}", r.mc, r.nc, r.kc),
            Param::Loop => r.parallel.clone(),
            Param::Cpus => r.cpus.clone(),
            Param::PowerMode => r.power_mode.clone(),
        }
    }
}

/// A knob equals its name (`Param::Batch == "batch"`).
impl PartialEq<&str> for Param {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_param_names_a_column_of_results_csv_holding_its_value() {
        let mut w = csv::Writer::from_writer(Vec::new());
        let r = crate::harness::record::rows::sample_row("p", "h");
        w.serialize(&r).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        let mut rdr = csv::Reader::from_reader(text.as_bytes());
        let header = rdr.headers().unwrap().clone();
        let rec = rdr.records().next().unwrap().unwrap();
        for p in PARAMS {
            let i = header.iter().position(|h| h == p.name());
            let i = i.unwrap_or_else(|| panic!("{} is not a column", p.name()));
            assert_eq!(rec.get(i).unwrap(), p.value(&r), "{}", p.name());
        }
        assert_eq!(Param::Cache.value(&r), "48/256/64");
    }
}
