//! `joulebench plot` and `joulebench report` on synthetic runs: every figure
//! the data allows is written, as valid PNG and SVG files of the expected
//! size that are not blank; figures without their data are skipped with a
//! note; malformed inputs exit 2.

use crate::common::cli::{run, tmpdir};
use crate::synthetic;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::synthetic::Point;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Decodes a PNG; returns its size, the number of distinct colours and the
/// fraction of pixels that are not white.
fn png_stats(path: &Path) -> (u32, u32, usize, f64) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert!(
        channels >= 3,
        "{}: colour type {:?}",
        path.display(),
        info.color_type
    );
    let px = &buf[..info.buffer_size()];
    let mut colours = HashSet::new();
    let mut ink = 0usize;
    for p in px.chunks(channels) {
        colours.insert((p[0], p[1], p[2]));
        if p[..3] != [255, 255, 255] {
            ink += 1;
        }
    }
    let n = (info.width * info.height) as f64;
    (info.width, info.height, colours.len(), ink as f64 / n)
}

fn assert_figure(dir: &Path, stem: &str, size: Option<(u32, u32)>, svg_text: &str) {
    let png = dir.join(format!("{stem}.png"));
    let (w, h, colours, ink) = png_stats(&png);
    if let Some((ew, eh)) = size {
        assert_eq!((w, h), (ew, eh), "{}", png.display());
    }
    assert!(
        colours >= 40,
        "{}: only {colours} colours: blank?",
        png.display()
    );
    assert!(
        ink > 0.02 && ink < 0.9,
        "{}: {ink:.3} of the pixels drawn",
        png.display()
    );
    let svg = std::fs::read_to_string(dir.join(format!("{stem}.svg"))).unwrap();
    assert!(
        svg.starts_with("<svg"),
        "{stem}.svg: {}",
        &svg[..svg.len().min(80)]
    );
    assert!(
        svg.contains(&format!("width=\"{w}\"")) && svg.contains(&format!("height=\"{h}\"")),
        "{stem}.svg is not {w}x{h}"
    );
    assert!(
        svg.trim_end().ends_with("</svg>"),
        "{stem}.svg is cut short"
    );
    assert!(
        svg.contains("<text") && svg.contains(svg_text),
        "{stem}.svg lacks `{svg_text}`"
    );
}

#[test]
fn plot_draws_every_figure_of_a_study_with_power_and_profile() {
    let d = tmpdir("study");
    let run_dir = d.join("synthetic").join("20260314T120000Z");
    synthetic::write_paper_like(&run_dir);
    let figs = d.join("figs");
    let out = run(&[
        "plot",
        run_dir.to_str().unwrap(),
        "--out",
        figs.to_str().unwrap(),
        "--format",
        "png,svg",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("wrote 21 figure(s), 42 file(s)"),
        "{stdout}"
    );
    assert!(!stdout.contains("skipped"), "{stdout}");
    for (stem, size, svg_text) in [
        (
            "scaling-resnet50-throughput",
            Some((1000, 620)),
            "throughput (images/s)",
        ),
        (
            "scaling-resnet50-latency",
            Some((1000, 620)),
            "batch latency (ms)",
        ),
        (
            "scaling-resnet50-energy",
            Some((1000, 620)),
            "energy per image (J)",
        ),
        (
            "scaling-resnet50-tradeoff",
            Some((1000, 620)),
            "Pareto-optimal",
        ),
        ("scaling-resnet50-layers", None, "layer4.0.conv2 [convgemm]"),
        ("lowering-resnet50-throughput", Some((1290, 518)), "unfused"),
        ("lowering-resnet50-latency", Some((1290, 518)), "im2col"),
        ("lowering-resnet50-energy", Some((1290, 518)), "fused"),
        ("lowering-resnet50-tradeoff", Some((1000, 620)), "convgemm"),
        (
            "modes-resnet50-modes-throughput",
            Some((1000, 620)),
            "mean CPU frequency (MHz)",
        ),
        (
            "modes-resnet50-modes-energy",
            Some((1000, 620)),
            "throttled",
        ),
        ("modes-resnet50-throughput", Some((1290, 958)), "mode f1200"),
        (
            "blocking-resnet50-throughput",
            None,
            "mc=192 nc=4080 kc=512",
        ),
        ("blocking-resnet50-latency", None, "p99"),
        ("blocking-resnet50-energy", None, "total"),
        ("blocking-resnet50-tradeoff", Some((1000, 620)), "images/J"),
        (
            "blocking-resnet50-gemm-heatmap",
            Some((1000, 660)),
            "GFLOP/s",
        ),
        ("power-trace", Some((1000, 560)), "measured window"),
    ] {
        assert_figure(&figs, stem, size, svg_text);
    }
    // Titles name the model, the machine and the date.
    let svg = std::fs::read_to_string(figs.join("scaling-resnet50-throughput.svg")).unwrap();
    assert!(
        svg.contains("Throughput: resnet50 on xavier (ARMv8 Processor rev 0 (v8l)), 2026-03-14"),
        "title missing"
    );
    // Without --out the figures go to figures/ in the run directory, PNG only.
    let out = run(&["plot", run_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(run_dir.join("figures/power-trace.png").is_file());
    assert!(!run_dir.join("figures/power-trace.svg").exists());
}

#[test]
fn plot_without_power_columns_skips_the_energy_figures_with_a_note() {
    let d = tmpdir("nopower");
    let pts: Vec<Point> = [(1, 1, 10.0), (2, 1, 18.0), (1, 8, 12.0), (2, 8, 22.0)]
        .iter()
        .map(|&(t, b, ips)| Point::new("threads", t, b, ips))
        .collect();
    let csv = synthetic::write_results(&d, "plain", &pts, false);
    let out = run(&[
        "plot",
        csv.to_str().unwrap(),
        "--out",
        d.join("f").to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("wrote 2 figure(s)"), "{stdout}");
    assert!(stdout.contains("skipped: energy per image"), "{stdout}");
    assert!(stdout.contains("skipped: power trace"), "{stdout}");
    let (w, h, colours, _) = png_stats(&d.join("f/threads-resnet50-throughput.png"));
    assert_eq!((w, h), (1000, 620));
    assert!(colours >= 40);
    assert!(!d.join("f/threads-resnet50-energy.png").exists());
}

#[test]
fn plot_of_malformed_or_missing_input_exits_2() {
    let d = tmpdir("bad");
    let bad = d.join("results.csv");
    std::fs::write(&bad, "a,b\n1,2\n").unwrap();
    let out = run(&["plot", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("missing column(s) suite, point"),
        "{}",
        text(&out.stderr)
    );
    let pts = vec![Point::new("e", 1, 1, 10.0)];
    synthetic::write_results(&d, "s", &pts, false);
    let out = run(&["plot", d.to_str().unwrap(), "--format", "pdf"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("`pdf` is not an image format"));
    let out = run(&["plot", d.join("nothing-here").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["plot", d.join("f").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "a missing directory");
    // A number where a number belongs, or exit 2 naming the line and column.
    let text_csv = std::fs::read_to_string(d.join("results.csv")).unwrap();
    let mut lines: Vec<String> = text_csv.lines().map(str::to_string).collect();
    let col = lines[0]
        .split(',')
        .position(|c| c == "images_per_s")
        .unwrap();
    let mut cells: Vec<String> = lines[1].split(',').map(str::to_string).collect();
    cells[col] = "fast".into();
    lines[1] = cells.join(",");
    std::fs::write(d.join("results.csv"), lines.join("\n") + "\n").unwrap();
    let out = run(&["compare", d.to_str().unwrap(), d.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("line 2: column `images_per_s` holds `fast`, not a number"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn report_writes_markdown_and_html_with_machine_suite_tables_and_figures() {
    let d = tmpdir("report");
    synthetic::write_paper_like(&d);
    let out = run(&["report", d.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let md = std::fs::read_to_string(d.join("report.md")).unwrap();
    for needle in [
        "# joulebench report: suite synthetic",
        "## Machine",
        "| CPU | ARMv8 Processor rev 0 (v8l) |",
        "| Jetson power mode | MAXN |",
        "## Suite",
        "```toml\nname = \"synthetic\"",
        "### Experiment scaling",
        "| model | configuration | images/s | 95% CI |",
        "t8-b32-mc96_nc4080_kc256-auto-convgemm-fused-r0",
        "images/J",
        "resnet50: fastest t8-b32",
        "![Throughput: resnet50 on xavier",
        "(figures/scaling-resnet50-throughput.png)",
        "## Warnings",
        "cv 0.130 above 0.100",
    ] {
        assert!(md.contains(needle), "report.md lacks `{needle}`:\n{md}");
    }
    // Every figure the report shows exists.
    for line in md.lines().filter(|l| l.starts_with("![")) {
        let path = line.rsplit_once("](").unwrap().1.trim_end_matches(')');
        assert!(d.join(path).is_file(), "{path}");
    }
    let html = std::fs::read_to_string(d.join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    assert!(
        html.contains("<img src=\"figures/power-trace.png\""),
        "{html}"
    );
    assert!(html.contains("<td class=\"num\">"), "{html}");
    // A file that is not a run is refused with exit 2.
    let out = run(&["report", d.join("nope").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn run_draws_the_figures_into_the_run_directory_unless_no_plot() {
    let d = tmpdir("run");
    let suite = d.join("suite.toml");
    std::fs::write(
        &suite,
        "name = \"fig\"\n[defaults]\nwarmup_iterations = 0\nwarmup_seconds = 0\nmin_seconds = 0\nmin_batches = 3\nallow_oversubscribe = true\nprofile = true\n[[experiment]]\nname = \"e\"\nmodels = [\"tiny\"]\nthreads = [1, 2]\nbatch = [1, 2]\n",
    )
    .unwrap();
    for (root, extra) in [("plotted", None), ("plain", Some("--no-plot"))] {
        let out_root = d.join(root);
        let mut args = vec![
            "run",
            suite.to_str().unwrap(),
            "--out",
            out_root.to_str().unwrap(),
            "--quiet",
        ];
        args.extend(extra);
        let out = run(&args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let dirs: Vec<PathBuf> = std::fs::read_dir(out_root.join("fig"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(dirs.len(), 1);
        let figs = dirs[0].join("figures");
        assert!(dirs[0].join("results.csv").is_file());
        if extra.is_none() {
            assert!(
                text(&out.stdout).contains("figure(s) in"),
                "{}",
                text(&out.stdout)
            );
            let (w, h, colours, _) = png_stats(&figs.join("e-tiny-throughput.png"));
            assert_eq!((w, h), (1000, 620));
            assert!(colours >= 40);
            assert!(figs.join("e-tiny-latency.png").is_file());
            // profile = true: every point's layers in profile.csv, and their figure.
            let profile = std::fs::read_to_string(dirs[0].join("profile.csv")).unwrap();
            assert!(profile.starts_with(
                "point,layer_index,name,op,algorithm,output,ms_per_batch,share,gflops,blocking\n"
            ));
            for t in 1..=2 {
                for b in 1..=2 {
                    let id = format!("e/tiny/t{t}-b{b}-");
                    assert!(
                        profile.lines().filter(|l| l.starts_with(&id)).count() >= 5,
                        "{id}: {profile}"
                    );
                }
            }
            let (w, _, colours, _) = png_stats(&figs.join("e-tiny-layers.png"));
            assert_eq!(w, 1000);
            assert!(colours >= 40);
        } else {
            assert!(!figs.exists(), "--no-plot drew figures");
        }
    }
}
