//! `joulebench report RESULTS_DIR`: report.md and report.html beside the
//! results: the machine, the suite, a summary table per experiment and the
//! figures (drawn into `figures/` first).

use crate::harness::analyze::compare::fmt_num;
use crate::harness::present::plot::{self, ImageFormat, PlotSummary};
use crate::harness::record::dataset::{self, RunData};
use crate::harness::record::rows::{finite, ResultRow};
use crate::harness::HarnessError;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A report in a neutral form, written out as Markdown and as HTML.
#[derive(Clone, Debug)]
enum Block {
    H1(String),
    H2(String),
    H3(String),
    P(String),
    List(Vec<String>),
    Code(String),
    /// Header, rows, and which columns are numbers (right-aligned).
    Table(Vec<String>, Vec<Vec<String>>, Vec<bool>),
    /// Relative path and caption.
    Image(String, String),
}

/// What `report` wrote.
#[derive(Clone, Debug)]
pub struct ReportOutcome {
    pub markdown: PathBuf,
    pub html: PathBuf,
    pub plot: PlotSummary,
}

fn io(path: &Path, e: impl std::fmt::Display) -> HarnessError {
    HarnessError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Writes report.md and report.html into the run directory `input` (or the
/// directory of a results.csv), drawing the figures into its `figures/`.
pub fn report(input: &Path) -> Result<ReportOutcome, HarnessError> {
    let data = dataset::load(input, false)?;
    let dir = plot::base_dir(&data);
    let fig_dir = dir.join("figures");
    let summary = plot::plot_data(&data, &fig_dir, &[ImageFormat::Png])?;
    let blocks = build(&data, &dir, &summary);
    let md = dir.join("report.md");
    let html = dir.join("report.html");
    std::fs::write(&md, markdown(&blocks)).map_err(|e| io(&md, e))?;
    std::fs::write(
        &html,
        to_html(&blocks, &format!("joulebench report: {}", data.suite())),
    )
    .map_err(|e| io(&html, e))?;
    Ok(ReportOutcome {
        markdown: md,
        html,
        plot: summary,
    })
}

/// A text that says something.
fn some(v: &Option<String>) -> Option<String> {
    v.clone().filter(|s| !s.is_empty())
}

fn text(s: &str) -> Option<String> {
    Some(s.to_string()).filter(|s| !s.is_empty())
}

fn machine_table(data: &RunData) -> Block {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut add = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            rows.push(vec![k.to_string(), v]);
        }
    };
    let hosts: Vec<String> = data
        .distinct(|r| &r.host)
        .into_iter()
        .filter(|h| !h.is_empty())
        .collect();
    add("host", (!hosts.is_empty()).then(|| hosts.join(", ")));
    let manifest = data.manifest.as_ref();
    if let Some(m) = manifest.and_then(|m| m.machine.as_ref()) {
        add("CPU", some(&m.cpu_model));
        let cores = match m.physical_cores {
            Some(p) => format!("{} logical, {p} physical", m.logical_cores),
            None => format!("{} logical", m.logical_cores),
        };
        add("cores", (m.logical_cores > 0).then_some(cores));
        add("architecture", text(&m.arch));
        add("OS", some(&m.os_version).or_else(|| some(&m.os)));
        add("Linux kernel", some(&m.kernel));
        add("governor", some(&m.governor));
        add(
            "scaling frequencies",
            m.scaling_max_mhz.map(|mx| {
                let mn = m
                    .scaling_min_mhz
                    .map_or_else(|| "?".into(), |v| v.to_string());
                format!("{mn} - {mx} MHz")
            }),
        );
        add(
            "memory",
            m.memory_bytes
                .map(|b| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)),
        );
        add("Jetson power mode", some(&m.nvpmodel));
        add("Raspberry Pi throttling", some(&m.throttled));
    }
    add(
        "micro-kernel",
        Some(data.kernel()).filter(|k| !k.is_empty()),
    );
    if let Some(m) = manifest {
        add("joulebench", text(&m.joulebench_version));
        add("git revision", some(&m.git_revision));
        add("started (UTC)", some(&m.started_utc));
        add("finished (UTC)", some(&m.finished_utc));
    }
    let sources: Vec<String> = data.power_sources();
    if !sources.is_empty() {
        let est = data.estimated();
        add(
            "power source",
            Some(format!(
                "{}{}",
                sources.join(", "),
                if est { " (ESTIMATED)" } else { "" }
            )),
        );
    }
    Block::Table(vec!["".into(), "".into()], rows, vec![false, false])
}

/// The configuration part of a point id (after experiment/model/).
fn config_of(r: &ResultRow) -> String {
    let p = &r.point;
    p.rsplit('/').next().unwrap_or(p).to_string()
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), fmt_num)
}

fn build(data: &RunData, dir: &Path, summary: &PlotSummary) -> Vec<Block> {
    let mut b = Vec::new();
    b.push(Block::H1(format!(
        "joulebench report: suite {}",
        data.suite()
    )));
    b.push(Block::P(format!(
        "{} point(s) on {}, {}; results from `{}`.",
        data.rows.len(),
        data.machine(),
        data.date(),
        data.results_path.display()
    )));
    b.push(Block::H2("Machine".into()));
    b.push(machine_table(data));
    b.push(Block::H2("Suite".into()));
    let mut facts = vec![format!("name: {}", data.suite())];
    if let Some(m) = &data.manifest {
        if let Some(f) = text(&m.suite_file) {
            facts.push(format!("file: `{f}`"));
        }
        if let Some(h) = text(&m.suite_hash) {
            facts.push(format!("sha256: `{h}`"));
        }
        if let Some(s) = some(&m.shard) {
            facts.push(format!("shard: {s}"));
        }
    }
    b.push(Block::List(facts));
    if let Some(t) = data.manifest.as_ref().and_then(|m| text(&m.suite_text)) {
        b.push(Block::Code(t));
    }
    b.push(Block::H2("Results".into()));
    b.push(Block::P(
        "Configuration: t<threads>-b<batch>-<cache>-<loop>-<conv>-<fused|unfused>-r<repetition>. \
         images/s over every timed batch; its 95% interval is that of the median batch latency \
         (bootstrap), carried over; latencies are per batch."
            .into(),
    ));
    let energy = data.rows.iter().any(|r| r.energy_per_image().is_some());
    for exp in &data.distinct(|r| &r.experiment) {
        let rows: Vec<&ResultRow> = data.rows.iter().filter(|r| r.experiment == *exp).collect();
        if !exp.is_empty() {
            b.push(Block::H3(format!("Experiment {exp}")));
        }
        let mut header: Vec<String> = [
            "model",
            "configuration",
            "images/s",
            "95% CI",
            "p50 ms",
            "p99 ms",
            "GFLOP/s",
            "cv",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if energy {
            header.extend(
                ["J/image", "dyn. J/image", "images/J", "W"]
                    .iter()
                    .map(|s| s.to_string()),
            );
        }
        header.push("warnings".into());
        let mut numeric = vec![false, false, true, true, true, true, true, true];
        if energy {
            numeric.extend([true; 4]);
        }
        numeric.push(false);
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let mut c = vec![
                    r.model.clone(),
                    config_of(r),
                    opt(finite(r.images_per_s)),
                    r.images_per_s_ci().map_or_else(
                        || "-".into(),
                        |(lo, hi)| format!("{} - {}", fmt_num(lo), fmt_num(hi)),
                    ),
                    opt(finite(r.latency_ms_p50)),
                    opt(finite(r.latency_ms_p99)),
                    opt(finite(r.gflops)),
                    opt(finite(r.cv)),
                ];
                if energy {
                    c.push(opt(r.energy_per_image()));
                    c.push(opt(r.dyn_joules_per_image.and_then(finite)));
                    c.push(opt(r.efficiency()));
                    c.push(opt(r.avg_power_w.and_then(finite)));
                }
                let w = &r.warnings;
                c.push(if w.is_empty() {
                    String::new()
                } else {
                    format!("{} warning(s)", w.split("; ").count())
                });
                c
            })
            .collect();
        b.push(Block::Table(header, table, numeric));
        let mut models: Vec<&str> = rows.iter().map(|r| r.model.as_str()).collect();
        models.sort();
        models.dedup();
        let mut best = Vec::new();
        for m in models {
            let ips = |r: &ResultRow| finite(r.images_per_s).unwrap_or(0.0);
            if let Some(r) = rows
                .iter()
                .filter(|r| r.model == m)
                .max_by(|a, c| ips(a).total_cmp(&ips(c)))
            {
                let mut s = format!(
                    "{m}: fastest {} at {} images/s",
                    config_of(r),
                    opt(finite(r.images_per_s))
                );
                if energy {
                    if let Some(e) = rows
                        .iter()
                        .filter(|r| r.model == m)
                        .filter(|r| r.efficiency().is_some())
                        .max_by(|a, c| {
                            a.efficiency()
                                .unwrap_or(0.0)
                                .total_cmp(&c.efficiency().unwrap_or(0.0))
                        })
                    {
                        s.push_str(&format!(
                            "; most efficient {} at {} images/J",
                            config_of(e),
                            opt(e.efficiency())
                        ));
                    }
                }
                best.push(s);
            }
        }
        b.push(Block::List(best));
    }
    b.push(Block::H2("Figures".into()));
    for f in &summary.figures {
        if let Some(png) = f
            .files
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == "png"))
        {
            let rel = png
                .strip_prefix(dir)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| png.clone());
            let mut cap = f.title.clone();
            if let Some(e) = &f.experiment {
                cap.push_str(&format!(" (experiment {e})"));
            }
            b.push(Block::Image(rel.display().to_string(), cap));
        }
    }
    if !summary.skipped.is_empty() {
        b.push(Block::P("Not drawn:".into()));
        b.push(Block::List(summary.skipped.clone()));
    }
    let warnings: Vec<String> = data
        .rows
        .iter()
        .filter(|r| !r.warnings.is_empty())
        .map(|r| format!("{}: {}", r.point, r.warnings))
        .collect();
    if !warnings.is_empty() || !data.notes.is_empty() {
        b.push(Block::H2("Warnings".into()));
        b.push(Block::List(
            warnings
                .into_iter()
                .chain(data.notes.iter().cloned())
                .collect(),
        ));
    }
    b
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn markdown(blocks: &[Block]) -> String {
    let mut s = String::new();
    for b in blocks {
        match b {
            Block::H1(t) => {
                let _ = writeln!(s, "# {t}\n");
            }
            Block::H2(t) => {
                let _ = writeln!(s, "## {t}\n");
            }
            Block::H3(t) => {
                let _ = writeln!(s, "### {t}\n");
            }
            Block::P(t) => {
                let _ = writeln!(s, "{t}\n");
            }
            Block::List(items) => {
                for i in items {
                    let _ = writeln!(s, "- {i}");
                }
                s.push('\n');
            }
            Block::Code(t) => {
                let _ = writeln!(s, "```toml\n{}\n```\n", t.trim_end());
            }
            Block::Table(h, rows, num) => {
                let _ = writeln!(
                    s,
                    "| {} |",
                    h.iter().map(|c| md_cell(c)).collect::<Vec<_>>().join(" | ")
                );
                let _ = writeln!(
                    s,
                    "|{}|",
                    num.iter()
                        .map(|n| if *n { " ---: " } else { " --- " })
                        .collect::<Vec<_>>()
                        .join("|")
                );
                for r in rows {
                    let _ = writeln!(
                        s,
                        "| {} |",
                        r.iter().map(|c| md_cell(c)).collect::<Vec<_>>().join(" | ")
                    );
                }
                s.push('\n');
            }
            Block::Image(path, cap) => {
                let _ = writeln!(
                    s,
                    "![{}]({})\n\n*{}*\n",
                    md_cell(cap),
                    path.replace(' ', "%20"),
                    cap
                );
            }
        }
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Inline `code` spans of the Markdown text as <code>.
fn inline(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in esc(s).split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{part}</code>");
        } else {
            out.push_str(part);
        }
    }
    out
}

fn to_html(blocks: &[Block], title: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n\
         body {{ font-family: 'DejaVu Sans', Helvetica, Arial, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #1e1e1e; }}\n\
         table {{ border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }}\n\
         th, td {{ border-bottom: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; }}\n\
         th {{ border-bottom: 2px solid #888; }}\n\
         td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}\n\
         pre {{ background: #f5f5f5; padding: 0.8em; overflow-x: auto; }}\n\
         figure {{ margin: 1.5em 0; }} figure img {{ max-width: 100%; border: 1px solid #eee; }}\n\
         figcaption {{ color: #555; font-style: italic; }}\n\
         </style>\n</head>\n<body>\n",
        esc(title)
    );
    for b in blocks {
        match b {
            Block::H1(t) => {
                let _ = writeln!(s, "<h1>{}</h1>", inline(t));
            }
            Block::H2(t) => {
                let _ = writeln!(s, "<h2>{}</h2>", inline(t));
            }
            Block::H3(t) => {
                let _ = writeln!(s, "<h3>{}</h3>", inline(t));
            }
            Block::P(t) => {
                let _ = writeln!(s, "<p>{}</p>", inline(t));
            }
            Block::List(items) => {
                s.push_str("<ul>\n");
                for i in items {
                    let _ = writeln!(s, "<li>{}</li>", inline(i));
                }
                s.push_str("</ul>\n");
            }
            Block::Code(t) => {
                let _ = writeln!(s, "<pre><code>{}</code></pre>", esc(t.trim_end()));
            }
            Block::Table(h, rows, num) => {
                s.push_str("<table>\n");
                if h.iter().any(|c| !c.is_empty()) {
                    s.push_str("<tr>");
                    for c in h {
                        let _ = write!(s, "<th>{}</th>", esc(c));
                    }
                    s.push_str("</tr>\n");
                }
                for r in rows {
                    s.push_str("<tr>");
                    for (i, c) in r.iter().enumerate() {
                        let class = if num.get(i).copied().unwrap_or(false) {
                            " class=\"num\""
                        } else {
                            ""
                        };
                        let _ = write!(s, "<td{class}>{}</td>", inline(c));
                    }
                    s.push_str("</tr>\n");
                }
                s.push_str("</table>\n");
            }
            Block::Image(path, cap) => {
                let _ = writeln!(
                    s,
                    "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
                    esc(path),
                    esc(cap),
                    esc(cap)
                );
            }
        }
    }
    s.push_str("</body>\n</html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_and_html_escape_what_they_must() {
        let blocks = vec![
            Block::H1("a <b> & `c`".into()),
            Block::Table(
                vec!["k".into(), "v".into()],
                vec![vec!["x|y".into(), "1.5".into()]],
                vec![false, true],
            ),
            Block::Image("figures/a b.png".into(), "cap".into()),
        ];
        let md = markdown(&blocks);
        assert!(md.contains("| x\\|y | 1.5 |"), "{md}");
        assert!(md.contains("| --- | ---: |"), "{md}");
        assert!(md.contains("(figures/a%20b.png)"), "{md}");
        let html = to_html(&blocks, "t");
        assert!(
            html.contains("<h1>a &lt;b&gt; &amp; <code>c</code></h1>"),
            "{html}"
        );
        assert!(html.contains("<td class=\"num\">1.5</td>"), "{html}");
    }
}
