//! `joulebench merge`: results files of one suite joined into one.

use crate::harness::record::io::{read_rows, rewrite};
use crate::harness::record::rows::ResultRow;
use crate::harness::HarnessError;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// `joulebench merge`: concatenates results files of one suite. Refuses
/// files of different suites (hash) and points recorded twice.
pub fn merge(inputs: &[PathBuf], out: &Path) -> Result<usize, HarnessError> {
    if inputs.is_empty() {
        return Err(HarnessError::Usage {
            name: "inputs",
            reason: "give at least one results.csv to merge".into(),
        });
    }
    let mut all: Vec<ResultRow> = Vec::new();
    let mut hash: Option<(String, PathBuf)> = None;
    let mut seen = HashSet::new();
    for p in inputs {
        let rows: Vec<ResultRow> = read_rows(p)?;
        for r in rows {
            match &hash {
                None => hash = Some((r.suite_hash.clone(), p.clone())),
                Some((h, first)) if *h != r.suite_hash => {
                    return Err(HarnessError::Records {
                        path: p.clone(),
                        reason: format!(
                            "point `{}` comes from suite hash {}, but {} has {}; merge only shards of the same suite file",
                            r.point,
                            short(&r.suite_hash),
                            first.display(),
                            short(h)
                        ),
                    });
                }
                _ => {}
            }
            // The same point from two boards is a comparison; twice from one
            // host is an overlap.
            if !seen.insert((r.point.clone(), r.repetition, r.host.clone())) {
                return Err(HarnessError::Records {
                    path: p.clone(),
                    reason: format!(
                        "point `{}` is recorded twice for host {} (overlapping shards?); merge each shard once",
                        r.point, r.host
                    ),
                });
            }
            all.push(r);
        }
    }
    if out.exists() {
        return Err(HarnessError::Usage {
            name: "out",
            reason: format!(
                "{} exists; choose a new file (merge never overwrites)",
                out.display()
            ),
        });
    }
    rewrite(out, &all)?;
    Ok(all.len())
}

/// The first 12 characters of a hash (any text, as read from a file).
pub fn short(h: &str) -> String {
    h.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::record::rows::{sample_row as row, test_dir as tmpdir};

    #[test]
    fn merge_refuses_mixed_hashes_and_duplicates() {
        let d = tmpdir("merge");
        let (a, b, c) = (d.join("a.csv"), d.join("b.csv"), d.join("c.csv"));
        rewrite(&a, &[row("p1", "h1")]).unwrap();
        rewrite(&b, &[row("p2", "h1")]).unwrap();
        rewrite(&c, &[row("p3", "h2")]).unwrap();
        assert_eq!(merge(&[a.clone(), b.clone()], &d.join("m.csv")).unwrap(), 2);
        let e = merge(&[a.clone(), c], &d.join("m2.csv")).unwrap_err();
        assert!(
            e.is_bad_input() && e.to_string().contains("suite hash"),
            "{e}"
        );
        let e = merge(&[a.clone(), a.clone()], &d.join("m3.csv")).unwrap_err();
        assert!(e.to_string().contains("recorded twice"), "{e}");
        // The same suite run on another board merges: its rows name another host.
        let other = d.join("other-host.csv");
        let mut r = row("p1", "h1");
        r.host = "another-board".into();
        rewrite(&other, &[r]).unwrap();
        assert_eq!(merge(&[a, other], &d.join("m4.csv")).unwrap(), 2);
        assert!(!d.join("m2.csv").exists() && !d.join("m3.csv").exists());
    }
}
