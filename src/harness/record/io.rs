//! The CSV files of a run on disk: appended and flushed row by row while
//! it runs, read back strictly or up to a torn last row, rewritten whole.

use crate::harness::HarnessError;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A CSV file opened for appending; the header is written when the file is new.
pub struct Appender {
    path: PathBuf,
    file: File,
    header_needed: bool,
}

impl Appender {
    pub fn open(path: &Path) -> Result<Appender, HarnessError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| io_err(path, e))?;
        let header_needed = file.metadata().map_err(|e| io_err(path, e))?.len() == 0;
        Ok(Appender {
            path: path.to_path_buf(),
            file,
            header_needed,
        })
    }

    /// Appends `rows` in one write and flushes it to the file (and the disk
    /// when `sync`), so a crash leaves whole rows behind.
    pub fn append<T: Serialize>(&mut self, rows: &[T], sync: bool) -> Result<(), HarnessError> {
        let mut w = csv::WriterBuilder::new()
            .has_headers(self.header_needed)
            .from_writer(Vec::new());
        for r in rows {
            w.serialize(r).map_err(|e| rec_err(&self.path, e))?;
        }
        let buf = w.into_inner().map_err(|e| rec_err(&self.path, e))?;
        self.file
            .write_all(&buf)
            .and_then(|_| self.file.flush())
            .map_err(|e| io_err(&self.path, e))?;
        if sync {
            self.file.sync_data().map_err(|e| io_err(&self.path, e))?;
        }
        if !rows.is_empty() {
            self.header_needed = false;
        }
        Ok(())
    }
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> HarnessError {
    HarnessError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn rec_err(path: &Path, e: impl std::fmt::Display) -> HarnessError {
    HarnessError::Records {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Reads every row of a CSV file strictly: any malformed row is an error
/// naming its line.
pub fn read_rows<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>, HarnessError> {
    let (rows, bad) = read_rows_lenient(path)?;
    match bad {
        Some(e) => Err(e),
        None => Ok(rows),
    }
}

/// Reads rows up to the first malformed one; returns the good rows and the
/// error of the first bad one (a row torn by a crash, at the end).
pub fn read_rows_lenient<T: for<'de> Deserialize<'de>>(
    path: &Path,
) -> Result<(Vec<T>, Option<HarnessError>), HarnessError> {
    let mut rdr = csv::ReaderBuilder::new()
        .from_path(path)
        .map_err(|e| rec_err(path, format!("cannot read: {e}")))?;
    let mut rows = Vec::new();
    for (i, r) in rdr.deserialize::<T>().enumerate() {
        match r {
            Ok(row) => rows.push(row),
            Err(e) => {
                let line = e.position().map_or(i as u64 + 2, |p| p.line());
                let err = HarnessError::Records {
                    path: path.to_path_buf(),
                    reason: format!("line {line}: {e}; the file is not a joulebench results/samples CSV or is damaged"),
                };
                return Ok((rows, Some(err)));
            }
        }
    }
    Ok((rows, None))
}

/// Rewrites `path` with exactly `rows` (via a temporary file and rename).
pub fn rewrite<T: Serialize>(path: &Path, rows: &[T]) -> Result<(), HarnessError> {
    let tmp = path.with_extension("csv.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut a = Appender::open(&tmp)?;
    a.append(rows, true)?;
    drop(a);
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::record::merge::merge;
    use crate::harness::record::rows::{
        has_current_header, sample_row as row, test_dir as tmpdir, ResultRow,
    };

    #[test]
    fn files_without_the_power_columns_read_back_with_them_empty() {
        let d = tmpdir("old");
        let p = d.join("results.csv");
        rewrite(&p, &[row("a", "h")]).unwrap();
        // Cut the header and row after timestamp_utc: the format before power.
        let text = std::fs::read_to_string(&p).unwrap();
        let cut: Vec<String> = text
            .lines()
            .map(|l| {
                let mut r = csv::ReaderBuilder::new()
                    .has_headers(false)
                    .from_reader(l.as_bytes());
                let rec = r.records().next().unwrap().unwrap();
                let n = rec.len() - 31;
                let mut w = csv::Writer::from_writer(Vec::new());
                w.write_record(rec.iter().take(n)).unwrap();
                String::from_utf8(w.into_inner().unwrap()).unwrap()
            })
            .collect();
        std::fs::write(&p, cut.concat()).unwrap();
        assert!(!has_current_header(&p));
        let back: Vec<ResultRow> = read_rows(&p).unwrap();
        assert_eq!(back[0].power_source, "");
        assert_eq!(back[0].energy_j, None);
        assert_eq!(back[0].window_end_s, None);
        assert_eq!(back[0].status, "ok");
        assert_eq!(back[0].timestamp_utc, "2026-01-01T00:00:00Z");
        // merging an old and a new file writes the new header
        let new = d.join("new.csv");
        rewrite(&new, &[row("b", "h")]).unwrap();
        assert!(has_current_header(&new));
        assert_eq!(merge(&[p, new], &d.join("m.csv")).unwrap(), 2);
        let merged: Vec<ResultRow> = read_rows(&d.join("m.csv")).unwrap();
        assert_eq!(merged[1], row("b", "h"));
        assert!(has_current_header(&d.join("m.csv")));
    }

    #[test]
    fn files_without_the_condition_columns_read_back_with_them_empty() {
        let d = tmpdir("old-cond");
        let p = d.join("results.csv");
        let mut r = row("a", "h");
        r.power_mode = "f1200".into();
        r.throttled = Some(true);
        rewrite(&p, &[r]).unwrap();
        // Cut the 8 condition columns, status and peer_settings: the format of the power version.
        let cut = drop_last_columns(&p, 10);
        assert!(cut.lines().next().unwrap().ends_with(",window_end_s"));
        std::fs::write(&p, cut).unwrap();
        assert!(!has_current_header(&p));
        let back: Vec<ResultRow> = read_rows(&p).unwrap();
        assert_eq!(back[0].power_mode, "");
        assert_eq!(back[0].throttled, None);
        assert_eq!(back[0].freq_mean_mhz, None);
        assert_eq!(back[0].status, "ok");
    }

    #[test]
    fn files_without_the_status_column_read_back_as_ok() {
        let d = tmpdir("old-status");
        let p = d.join("results.csv");
        let mut r = row("a", "h");
        r.status = "failed".into();
        r.throttled = Some(true);
        rewrite(&p, &[r]).unwrap();
        // Cut the status and peer_settings columns: the format of the power-modes version.
        let cut = drop_last_columns(&p, 2);
        assert!(cut.lines().next().unwrap().ends_with(",throttled"));
        std::fs::write(&p, cut).unwrap();
        assert!(!has_current_header(&p));
        let back: Vec<ResultRow> = read_rows(&p).unwrap();
        assert_eq!(back[0].status, "ok");
        assert_eq!(back[0].throttled, Some(true));
    }

    #[test]
    fn files_without_the_peer_settings_column_read_back_with_it_empty() {
        let d = tmpdir("old-peer-settings");
        let p = d.join("results.csv");
        let mut r = row("a", "h");
        r.status = "skipped".into();
        r.peer_settings = "num_threads=2".into();
        rewrite(&p, &[r]).unwrap();
        assert!(has_current_header(&p));
        let cut = drop_last_columns(&p, 1);
        assert!(cut.lines().next().unwrap().ends_with(",status"));
        std::fs::write(&p, cut).unwrap();
        assert!(!has_current_header(&p));
        let back: Vec<ResultRow> = read_rows(&p).unwrap();
        assert_eq!(back[0].status, "skipped");
        assert_eq!(back[0].peer_settings, "");
    }

    /// `path`'s text without its last `n` columns (no quoted commas in these rows).
    fn drop_last_columns(path: &Path, n: usize) -> String {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| {
                let mut f: Vec<&str> = l.split(',').collect();
                f.truncate(f.len() - n);
                f.join(",") + "\n"
            })
            .collect()
    }

    #[test]
    fn csv_round_trip_keeps_every_value() {
        let d = tmpdir("rt");
        let p = d.join("results.csv");
        let rows = vec![row("a", "h1"), row("b", "h1")];
        let mut a = Appender::open(&p).unwrap();
        a.append(&rows[..1], false).unwrap();
        drop(a);
        // reopening appends without a second header
        Appender::open(&p)
            .unwrap()
            .append(&rows[1..], true)
            .unwrap();
        let back: Vec<ResultRow> = read_rows(&p).unwrap();
        assert_eq!(back, rows);
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.starts_with("suite,suite_hash,experiment,point,"));
        assert!(text.lines().next().unwrap().contains(",loop,"));
        let header = text.lines().next().unwrap();
        assert!(header.ends_with(",timestamp_utc,power_source,power_estimated,samples,avg_power_w,idle_power_w,energy_j,joules_per_image,dyn_joules_per_image,images_per_joule,cycles,instructions,ipc,cache_references,cache_misses,l1d_read_misses,llc_misses,branch_misses,task_clock_ms,context_switches,window_start_s,window_end_s,power_mode,governor,freq_min_khz,freq_max_khz,freq_mean_mhz,temp_start_c,temp_end_c,throttled,status,peer_settings"), "{header}");
        // empty cells where not available
        assert!(
            text.lines().nth(1).unwrap().contains(",0.0125,,80.0,,,,,"),
            "{text}"
        );
    }

    #[test]
    fn a_torn_last_row_is_reported_and_the_rest_kept() {
        let d = tmpdir("torn");
        let p = d.join("results.csv");
        Appender::open(&p)
            .unwrap()
            .append(&[row("a", "h")], false)
            .unwrap();
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"s,h,e,b,0,tiny,joule").unwrap();
        let (rows, bad) = read_rows_lenient::<ResultRow>(&p).unwrap();
        assert_eq!(rows.len(), 1);
        assert!(bad.unwrap().to_string().contains("line 3"));
    }
}
