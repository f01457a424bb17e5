//! `joulebench plot`: paper-style figures from a results.csv or a run
//! directory, drawn with plotters and the DejaVu Sans font embedded in the
//! binary (no fontconfig or freetype, so it works on a headless board).
//!
//! Per experiment and model: throughput against threads (one line per batch
//! size, engine and convolution; one panel per other varying knob) with 95%
//! confidence intervals, median and p99 latency, joules per image, images per
//! joule against images/s with the Pareto points marked, a GFLOP/s heatmap
//! over the cache blocking when two of mc, nc, kc vary, and the per-layer time
//! of profiled points. When threads do not vary, throughput, latency and
//! energy are horizontal bars per configuration instead. Per run: the power
//! trace of power.csv with the measured windows shaded.

use crate::harness::analyze::stats::median;
use crate::harness::record::dataset::{self, ProfileRow, RunData};
use crate::harness::record::params::Param;
use crate::harness::record::rows::{finite, ResultRow};
use crate::harness::HarnessError;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// DejaVu Sans 2.37 (Bitstream Vera license, see assets/fonts/LICENSE-DejaVu.txt).
static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
const SANS: &str = "sans-serif";

/// Registers the embedded font with plotters once.
fn ensure_font() -> Result<(), HarnessError> {
    static OK: OnceLock<bool> = OnceLock::new();
    let ok = *OK.get_or_init(|| {
        plotters::style::register_font(SANS, FontStyle::Normal, FONT).is_ok()
            && plotters::style::register_font(SANS, FontStyle::Bold, FONT).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(HarnessError::Io {
            path: PathBuf::from("assets/fonts/DejaVuSans.ttf"),
            reason: "the embedded font could not be loaded".into(),
        })
    }
}

/// Output image formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Svg,
}

impl ImageFormat {
    pub fn ext(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Svg => "svg",
        }
    }
}

/// Parses `png`, `svg` or `png,svg`.
pub fn parse_formats(s: &str) -> Result<Vec<ImageFormat>, HarnessError> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let f = match part.to_ascii_lowercase().as_str() {
            "png" => ImageFormat::Png,
            "svg" => ImageFormat::Svg,
            _ => {
                return Err(HarnessError::Usage {
                    name: "format",
                    reason: format!("`{part}` is not an image format; use png, svg or png,svg"),
                })
            }
        };
        if !out.contains(&f) {
            out.push(f);
        }
    }
    if out.is_empty() {
        return Err(HarnessError::Usage {
            name: "format",
            reason: "give at least one of png, svg".into(),
        });
    }
    Ok(out)
}

/// What `joulebench plot` was asked.
#[derive(Clone, Debug)]
pub struct PlotOptions {
    /// Where the figures go; default `figures/` in the run directory (or
    /// beside the CSV file).
    pub out: Option<PathBuf>,
    pub formats: Vec<ImageFormat>,
}

impl Default for PlotOptions {
    fn default() -> Self {
        PlotOptions {
            out: None,
            formats: vec![ImageFormat::Png],
        }
    }
}

/// One figure written.
#[derive(Clone, Debug)]
pub struct FigureInfo {
    /// `throughput`, `latency`, `energy`, `tradeoff`, `gemm-heatmap`,
    /// `layers` or `power-trace`.
    pub kind: &'static str,
    pub experiment: Option<String>,
    pub model: Option<String>,
    pub title: String,
    pub files: Vec<PathBuf>,
}

/// What `plot` did.
#[derive(Clone, Debug)]
pub struct PlotSummary {
    pub out_dir: PathBuf,
    pub figures: Vec<FigureInfo>,
    /// Figures not drawn, and why (no power data, no profile, ...).
    pub skipped: Vec<String>,
    /// Problems reading the inputs that did not stop the plotting.
    pub notes: Vec<String>,
}

impl PlotSummary {
    pub fn files(&self) -> usize {
        self.figures.iter().map(|f| f.files.len()).sum()
    }
}

impl std::fmt::Display for PlotSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "wrote {} figure(s), {} file(s), to {}",
            self.figures.len(),
            self.files(),
            self.out_dir.display()
        )?;
        for fig in &self.figures {
            for p in &fig.files {
                writeln!(f, "  {}", p.display())?;
            }
        }
        for s in &self.skipped {
            writeln!(f, "skipped: {s}")?;
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}

/// The run directory of an input, or the directory of its CSV file.
pub fn base_dir(data: &RunData) -> PathBuf {
    data.dir.clone().unwrap_or_else(|| {
        data.results_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    })
}

/// The default figure directory for an input: `figures/` in [`base_dir`].
pub fn default_out_dir(data: &RunData) -> PathBuf {
    base_dir(data).join("figures")
}

/// `joulebench plot INPUT`: reads a results.csv or run directory and draws
/// every figure its data allows.
pub fn plot(input: &Path, opts: &PlotOptions) -> Result<PlotSummary, HarnessError> {
    let data = dataset::load(input, false)?;
    let out = opts.out.clone().unwrap_or_else(|| default_out_dir(&data));
    plot_data(&data, &out, &opts.formats)
}

// ---------------------------------------------------------------------------
// Styling

const PALETTE: [RGBColor; 10] = [
    RGBColor(78, 121, 167),
    RGBColor(242, 142, 43),
    RGBColor(225, 87, 89),
    RGBColor(89, 161, 79),
    RGBColor(176, 122, 161),
    RGBColor(118, 183, 178),
    RGBColor(237, 201, 72),
    RGBColor(156, 117, 95),
    RGBColor(255, 157, 167),
    RGBColor(100, 100, 100),
];
const INK: RGBColor = RGBColor(30, 30, 30);
const THROTTLED: RGBColor = RGBColor(200, 30, 30);
const MUTED: RGBColor = RGBColor(95, 95, 95);
const HEADER_H: u32 = 78;
const LEGEND_W: u32 = 250;

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Series `i`'s marker: it moves on by one each time the palette starts
/// over, so series `i` and `i + 10` (same colour) never share a marker
/// either, up to 50 series.
fn marker(i: usize) -> Marker {
    MARKERS[(i + i / PALETTE.len()) % MARKERS.len()]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Marker {
    Circle,
    Square,
    Triangle,
    Diamond,
    Cross,
    Ring,
    None,
}

const MARKERS: [Marker; 5] = [
    Marker::Circle,
    Marker::Square,
    Marker::Triangle,
    Marker::Diamond,
    Marker::Cross,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stroke {
    Solid,
    Dashed,
    Box,
    None,
}

#[derive(Clone, Debug)]
struct LegendEntry {
    label: String,
    color: RGBColor,
    marker: Marker,
    stroke: Stroke,
}

type DrawResult = Result<(), String>;

fn de<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> String {
    e.to_string()
}

fn font(px: u32) -> TextStyle<'static> {
    (SANS, px).into_font().color(&INK)
}

/// Draws a marker centred on `at` (any coordinate system).
fn draw_marker<DB: DrawingBackend, CT: CoordTranslate>(
    area: &DrawingArea<DB, CT>,
    at: CT::From,
    m: Marker,
    c: RGBColor,
    s: i32,
) -> DrawResult
where
    CT::From: Clone,
{
    let fill = c.filled();
    let r = match m {
        Marker::Circle => area.draw(&(EmptyElement::at(at) + Circle::new((0, 0), s, fill))),
        Marker::Square => area.draw(
            &(EmptyElement::at(at) + Rectangle::new([(-s + 1, -s + 1), (s - 1, s - 1)], fill)),
        ),
        Marker::Triangle => {
            area.draw(&(EmptyElement::at(at) + TriangleMarker::new((0, 0), s + 1, fill)))
        }
        Marker::Diamond => area.draw(
            &(EmptyElement::at(at)
                + Polygon::new(vec![(0, -s - 1), (s + 1, 0), (0, s + 1), (-s - 1, 0)], fill)),
        ),
        Marker::Cross => {
            area.draw(&(EmptyElement::at(at) + Cross::new((0, 0), s, c.stroke_width(2))))
        }
        Marker::Ring => {
            area.draw(&(EmptyElement::at(at) + Circle::new((0, 0), s + 4, c.stroke_width(2))))
        }
        Marker::None => Ok(()),
    };
    r.map_err(de)
}

/// A polyline in data coordinates, two pixels wide. plotters draws wide
/// strokes as polygons whose miter joins spike far out of the chart at sharp
/// turns (plotters issue 549), so this draws 1-pixel paths side by side.
fn thick_path<DB, X, Y>(
    chart: &ChartContext<DB, Cartesian2d<X, Y>>,
    pts: &[(f64, f64)],
    c: RGBColor,
    dashed: bool,
    passes: usize,
) -> DrawResult
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let area = chart.plotting_area();
    let (bx, by) = area.get_base_pixel();
    let px: Vec<(i32, i32)> = pts
        .iter()
        .map(|p| {
            let (x, y) = chart.backend_coord(p);
            (x - bx, y - by)
        })
        .collect();
    let plain = area.strip_coord_spec();
    for (dx, dy) in [(0, 0), (1, 0), (0, 1)].into_iter().take(passes.max(1)) {
        let shifted: Vec<(i32, i32)> = px.iter().map(|&(x, y)| (x + dx, y + dy)).collect();
        if dashed {
            plain
                .draw(&DashedPathElement::new(shifted, 8, 5, c.stroke_width(1)))
                .map_err(de)?;
        } else {
            plain
                .draw(&PathElement::new(shifted, c.stroke_width(1)))
                .map_err(de)?;
        }
    }
    Ok(())
}

/// The title block: a title and a grey subtitle; returns the area below.
fn header<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    subtitle: &str,
) -> Result<DrawingArea<DB, Shift>, String> {
    root.fill(&WHITE).map_err(de)?;
    let (top, rest) = root.split_vertically(HEADER_H);
    let w = top.dim_in_pixel().0.saturating_sub(40);
    // A long title (a long CPU name) is set smaller before it is cut.
    let px = [23, 21, 19]
        .into_iter()
        .find(|&px| {
            top.estimate_text_size(title, &font(px))
                .is_ok_and(|(tw, _)| tw <= w)
        })
        .unwrap_or(19);
    let t = fit(&top, title, &font(px), w);
    top.draw(&Text::new(t, (20, 14), font(px))).map_err(de)?;
    let st = (SANS, 15).into_font().color(&MUTED);
    let s = fit(&top, subtitle, &st, w);
    top.draw(&Text::new(s, (20, 48), st)).map_err(de)?;
    Ok(rest)
}

/// `text` cut with an ellipsis to fit `width` pixels.
fn fit<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    style: &TextStyle,
    width: u32,
) -> String {
    let fits = |s: &str| {
        area.estimate_text_size(s, style)
            .map_or(true, |(w, _)| w <= width)
    };
    if fits(text) {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut n = chars.len();
    while n > 1 {
        n -= 1;
        let s: String = chars[..n].iter().collect::<String>() + "…";
        if fits(&s) {
            return s;
        }
    }
    "…".into()
}

/// A legend in its own strip.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    entries: &[LegendEntry],
) -> DrawResult {
    let w = area.dim_in_pixel().0;
    let mut y = 34;
    if !title.is_empty() {
        area.draw(&Text::new(
            fit(area, title, &font(15), w - 16),
            (8, 16),
            font(15),
        ))
        .map_err(de)?;
        y += 10;
    }
    let style = font(14).pos(Pos::new(HPos::Left, VPos::Center));
    for e in entries {
        let (x0, x1) = (10, 46);
        match e.stroke {
            Stroke::Solid => area
                .draw(&PathElement::new(
                    vec![(x0, y), (x1, y)],
                    e.color.stroke_width(2),
                ))
                .map_err(de)?,
            Stroke::Dashed => area
                .draw(&DashedPathElement::new(
                    vec![(x0, y), (x1, y)],
                    7,
                    4,
                    e.color.stroke_width(2),
                ))
                .map_err(de)?,
            Stroke::Box => area
                .draw(&Rectangle::new(
                    [(x0, y - 7), (x1, y + 7)],
                    e.color.filled(),
                ))
                .map_err(de)?,
            Stroke::None => {}
        }
        draw_marker(area, ((x0 + x1) / 2, y), e.marker, e.color, 4)?;
        area.draw(&Text::new(
            fit(area, &e.label, &style, w - 60),
            (54, y),
            style.clone(),
        ))
        .map_err(de)?;
        y += 24;
    }
    Ok(())
}

/// A number for axis ticks.
fn tick(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A value with three significant digits for labels on bars and cells.
fn short_num(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// A linear f64 axis with ticks exactly at given values (thread counts,
/// category centres).
#[derive(Clone)]
struct KeyedAxis {
    lo: f64,
    hi: f64,
    keys: Vec<f64>,
}

fn keyed(lo: f64, hi: f64, keys: Vec<f64>) -> KeyedAxis {
    KeyedAxis { lo, hi, keys }
}

impl Ranged for KeyedAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let f = (v - self.lo) / (self.hi - self.lo);
        limit.0 + (f * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.keys.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

// ---------------------------------------------------------------------------
// Figures

trait Figure {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult;
}

fn render<F: Figure>(
    fig: &F,
    dir: &Path,
    stem: &str,
    formats: &[ImageFormat],
) -> Result<Vec<PathBuf>, HarnessError> {
    let mut files = Vec::new();
    for f in formats {
        let path = dir.join(format!("{stem}.{}", f.ext()));
        let err = |reason: String| HarnessError::Io {
            path: path.clone(),
            reason,
        };
        match f {
            ImageFormat::Png => {
                let root = BitMapBackend::new(&path, fig.size()).into_drawing_area();
                fig.draw(&root).map_err(err)?;
                root.present().map_err(|e| err(de(e)))?;
            }
            ImageFormat::Svg => {
                let root = SVGBackend::new(&path, fig.size()).into_drawing_area();
                fig.draw(&root).map_err(err)?;
                root.present().map_err(|e| err(de(e)))?;
            }
        }
        files.push(path);
    }
    Ok(files)
}

/// One point of a line: x, y and an optional interval.
#[derive(Clone, Copy, Debug)]
struct Xy {
    x: f64,
    y: f64,
    err: Option<(f64, f64)>,
    /// Ringed in red (a throttled measurement).
    flag: bool,
}

#[derive(Clone, Debug)]
struct Series {
    color: RGBColor,
    marker: Marker,
    dashed: bool,
    pts: Vec<Xy>,
}

#[derive(Clone, Debug)]
struct Panel {
    title: String,
    series: Vec<Series>,
}

/// Lines against a numeric x (threads), one panel per combination of the
/// other varying knobs, one shared legend and y scale.
struct LineFigure {
    title: String,
    subtitle: String,
    x_desc: String,
    y_desc: String,
    x_ticks: Vec<f64>,
    /// Names for the ticks (categories); numbers when empty.
    x_labels: Vec<String>,
    panels: Vec<Panel>,
    legend_title: String,
    legend: Vec<LegendEntry>,
}

impl LineFigure {
    fn grid(&self) -> (usize, usize) {
        let n = self.panels.len().max(1);
        let cols = if n == 1 {
            1
        } else if n <= 4 {
            2
        } else {
            3
        };
        (n.div_ceil(cols), cols)
    }
}

impl Figure for LineFigure {
    fn size(&self) -> (u32, u32) {
        let (rows, cols) = self.grid();
        if rows * cols == 1 {
            (1000, 620)
        } else {
            (LEGEND_W + 520 * cols as u32, HEADER_H + 440 * rows as u32)
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let rest = header(root, &self.title, &self.subtitle)?;
        let w = rest.dim_in_pixel().0;
        let (plots, legend) = rest.split_horizontally(w - LEGEND_W);
        draw_legend(&legend, &self.legend_title, &self.legend)?;
        let (xmin, xmax) = min_max(self.x_ticks.iter().copied()).unwrap_or((0.0, 1.0));
        let span = (xmax - xmin).max(1.0);
        let ymax = self
            .panels
            .iter()
            .flat_map(|p| &p.series)
            .flat_map(|s| &s.pts)
            .map(|p| p.err.map_or(p.y, |(_, hi)| hi.max(p.y)))
            .fold(0.0f64, f64::max);
        let ymax = if ymax > 0.0 { ymax * 1.1 } else { 1.0 };
        let areas = plots.split_evenly(self.grid());
        for (panel, area) in self.panels.iter().zip(areas) {
            let mut b = ChartBuilder::on(&area);
            b.margin(12)
                .margin_right(24)
                .x_label_area_size(52)
                .y_label_area_size(78);
            if !panel.title.is_empty() {
                b.caption(&panel.title, font(16));
            }
            let mut chart = b
                .build_cartesian_2d(
                    keyed(xmin - 0.06 * span, xmax + 0.06 * span, self.x_ticks.clone()),
                    0f64..ymax,
                )
                .map_err(de)?;
            chart
                .configure_mesh()
                .x_desc(self.x_desc.as_str())
                .y_desc(self.y_desc.as_str())
                .x_label_formatter(&|v| {
                    self.x_ticks
                        .iter()
                        .position(|t| (t - v).abs() < 1e-9)
                        .and_then(|i| self.x_labels.get(i).cloned())
                        .unwrap_or_else(|| format!("{v:.0}"))
                })
                .y_label_formatter(&|v| tick(*v))
                .label_style(font(14))
                .axis_desc_style(font(16))
                .bold_line_style(BLACK.mix(0.10))
                .light_line_style(BLACK.mix(0.04))
                .max_light_lines(1)
                .max_light_lines(1)
                .draw()
                .map_err(de)?;
            let nser = panel.series.len().max(1) as f64;
            for (i, s) in panel.series.iter().enumerate() {
                // Series side by side by a hair, so error bars do not hide each other.
                let dodge = (i as f64 - (nser - 1.0) / 2.0) * span * 0.006;
                let pts: Vec<(f64, f64)> = s.pts.iter().map(|p| (p.x + dodge, p.y)).collect();
                thick_path(&chart, &pts, s.color, s.dashed, 3)?;
                chart
                    .draw_series(s.pts.iter().filter_map(|p| {
                        p.err.map(|(lo, hi)| {
                            ErrorBar::new_vertical(
                                p.x + dodge,
                                lo,
                                p.y,
                                hi,
                                s.color.stroke_width(1),
                                9,
                            )
                        })
                    }))
                    .map_err(de)?;
                for (&p, xy) in pts.iter().zip(&s.pts) {
                    draw_marker(chart.plotting_area(), p, s.marker, s.color, 4)?;
                    if xy.flag {
                        draw_marker(chart.plotting_area(), p, Marker::Ring, THROTTLED, 4)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A value and its interval.
type Bar = (f64, Option<(f64, f64)>);
/// Points of one colour and marker.
type Group = (RGBColor, Marker, Vec<(f64, f64)>);

/// Horizontal bars, one group per row label, one bar per series.
struct BarFigure {
    title: String,
    subtitle: String,
    x_desc: String,
    rows: Vec<String>,
    series: Vec<BarSeries>,
    footnote: String,
}

#[derive(Clone, Debug)]
struct BarSeries {
    label: String,
    color: RGBColor,
    /// Per row: value and interval.
    values: Vec<Option<Bar>>,
}

impl BarFigure {
    fn row_h(&self) -> u32 {
        (12 * self.series.len() as u32 + 14).max(30)
    }
}

impl Figure for BarFigure {
    fn size(&self) -> (u32, u32) {
        (
            1000,
            HEADER_H + 110 + self.row_h() * self.rows.len().max(1) as u32,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let rest = header(root, &self.title, &self.subtitle)?;
        let w = rest.dim_in_pixel().0;
        let (plot, legend) = if self.series.len() > 1 {
            let (p, l) = rest.split_horizontally(w - LEGEND_W + 60);
            (p, Some(l))
        } else {
            (rest, None)
        };
        if let Some(l) = &legend {
            let entries: Vec<LegendEntry> = self
                .series
                .iter()
                .map(|s| LegendEntry {
                    label: s.label.clone(),
                    color: s.color,
                    marker: Marker::None,
                    stroke: Stroke::Box,
                })
                .collect();
            draw_legend(l, "", &entries)?;
        }
        let n = self.rows.len().max(1);
        let xmax = self
            .series
            .iter()
            .flat_map(|s| s.values.iter().flatten())
            .map(|(v, e)| e.map_or(*v, |(_, hi)| hi.max(*v)))
            .fold(0.0f64, f64::max);
        let xmax = if xmax > 0.0 { xmax * 1.16 } else { 1.0 };
        let label_style = font(14);
        let pw = plot.dim_in_pixel().0;
        let label_w = self
            .rows
            .iter()
            .filter_map(|r| plot.estimate_text_size(r, &label_style).ok())
            .map(|(w, _)| w + 18)
            .max()
            .unwrap_or(60)
            .min(pw * 45 / 100);
        let centres: Vec<f64> = (0..n).map(|i| i as f64 + 0.5).collect();
        let rows = self.rows.clone();
        let label_of = move |y: &f64| -> String {
            let i = n as f64 - y - 0.5;
            rows.get(i.round().max(0.0) as usize)
                .cloned()
                .unwrap_or_default()
        };
        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .margin_right(30)
            .x_label_area_size(56)
            .y_label_area_size(label_w)
            .build_cartesian_2d(0f64..xmax, keyed(0.0, n as f64, centres))
            .map_err(de)?;
        let footnote_label = if self.footnote.is_empty() {
            self.x_desc.clone()
        } else {
            format!("{}    ({})", self.x_desc, self.footnote)
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc(footnote_label)
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&label_of)
            .label_style(label_style.clone())
            .axis_desc_style(font(16))
            .bold_line_style(BLACK.mix(0.10))
            .light_line_style(BLACK.mix(0.04))
            .max_light_lines(1)
            .draw()
            .map_err(de)?;
        let m = self.series.len().max(1) as f64;
        let band = 0.76 / m;
        let value_style = (SANS, 12)
            .into_font()
            .color(&MUTED)
            .pos(Pos::new(HPos::Left, VPos::Center));
        for (j, s) in self.series.iter().enumerate() {
            for (i, v) in s.values.iter().enumerate() {
                let Some((v, err)) = *v else { continue };
                let top = (n - i) as f64 - 0.12 - j as f64 * band;
                let (y0, y1) = (top - band, top);
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(0.0, y0), (v, y1)],
                        s.color.filled(),
                    )))
                    .map_err(de)?;
                let mut end = v;
                if let Some((lo, hi)) = err {
                    chart
                        .draw_series(std::iter::once(ErrorBar::new_horizontal(
                            (y0 + y1) / 2.0,
                            lo,
                            v,
                            hi,
                            INK.stroke_width(1),
                            ((band * 0.5 * 20.0) as u32).clamp(4, 10),
                        )))
                        .map_err(de)?;
                    end = hi.max(v);
                }
                let (px, py) = chart.backend_coord(&(end, (y0 + y1) / 2.0));
                let (ox, oy) = plot.get_base_pixel();
                plot.draw(&Text::new(
                    short_num(v),
                    (px - ox + 5, py - oy),
                    value_style.clone(),
                ))
                .map_err(de)?;
            }
        }
        Ok(())
    }
}

/// Images per joule against images per second, Pareto points ringed.
struct ScatterFigure {
    title: String,
    subtitle: String,
    x_desc: String,
    y_desc: String,
    groups: Vec<Group>,
    pareto: Vec<(f64, f64)>,
    legend_title: String,
    legend: Vec<LegendEntry>,
}

impl Figure for ScatterFigure {
    fn size(&self) -> (u32, u32) {
        (1000, 620)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let rest = header(root, &self.title, &self.subtitle)?;
        let w = rest.dim_in_pixel().0;
        let (plot, legend) = rest.split_horizontally(w - LEGEND_W);
        draw_legend(&legend, &self.legend_title, &self.legend)?;
        let all = self.groups.iter().flat_map(|g| &g.2);
        let xr = zoom(min_max(all.clone().map(|p| p.0)));
        let yr = zoom(min_max(all.map(|p| p.1)));
        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .margin_right(24)
            .x_label_area_size(52)
            .y_label_area_size(78)
            .build_cartesian_2d(xr, yr)
            .map_err(de)?;
        chart
            .configure_mesh()
            .x_desc(self.x_desc.as_str())
            .y_desc(self.y_desc.as_str())
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
            .label_style(font(14))
            .axis_desc_style(font(16))
            .bold_line_style(BLACK.mix(0.10))
            .light_line_style(BLACK.mix(0.04))
            .max_light_lines(1)
            .draw()
            .map_err(de)?;
        let mut front = self.pareto.clone();
        front.sort_by(|a, b| a.0.total_cmp(&b.0));
        if front.len() > 1 {
            thick_path(&chart, &front, MUTED, true, 1)?;
        }
        for (c, m, pts) in &self.groups {
            for &p in pts {
                draw_marker(chart.plotting_area(), p, *m, *c, 5)?;
            }
        }
        for &p in &front {
            draw_marker(chart.plotting_area(), p, Marker::Ring, INK, 5)?;
        }
        Ok(())
    }
}

/// Watts against time per rail, measured windows shaded.
struct PowerFigure {
    title: String,
    subtitle: String,
    rails: Vec<(String, Vec<(f64, f64)>)>,
    windows: Vec<(f64, f64)>,
}

impl Figure for PowerFigure {
    fn size(&self) -> (u32, u32) {
        (1000, 560)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let rest = header(root, &self.title, &self.subtitle)?;
        let w = rest.dim_in_pixel().0;
        let (plot, legend) = rest.split_horizontally(w - LEGEND_W);
        let shade = RGBColor(160, 190, 220);
        let mut entries: Vec<LegendEntry> = self
            .rails
            .iter()
            .enumerate()
            .map(|(i, (name, _))| LegendEntry {
                label: name.clone(),
                color: color(i),
                marker: Marker::None,
                stroke: Stroke::Solid,
            })
            .collect();
        if !self.windows.is_empty() {
            entries.push(LegendEntry {
                label: "measured window".into(),
                color: shade,
                marker: Marker::None,
                stroke: Stroke::Box,
            });
        }
        draw_legend(&legend, "rail", &entries)?;
        let ts = self.rails.iter().flat_map(|r| r.1.iter().map(|p| p.0));
        let (tmin, tmax) =
            min_max(ts.chain(self.windows.iter().flat_map(|w| [w.0, w.1]))).unwrap_or((0.0, 1.0));
        let tmax = if tmax > tmin { tmax } else { tmin + 1.0 };
        let ymax = self
            .rails
            .iter()
            .flat_map(|r| r.1.iter().map(|p| p.1))
            .fold(0.0f64, f64::max);
        let ymax = if ymax > 0.0 { ymax * 1.12 } else { 1.0 };
        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .margin_right(24)
            .x_label_area_size(52)
            .y_label_area_size(70)
            .build_cartesian_2d(tmin..tmax, 0f64..ymax)
            .map_err(de)?;
        chart
            .configure_mesh()
            .x_desc("time since the run started (s)")
            .y_desc("power (W)")
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
            .label_style(font(14))
            .axis_desc_style(font(16))
            .bold_line_style(BLACK.mix(0.10))
            .light_line_style(BLACK.mix(0.04))
            .max_light_lines(1)
            .draw()
            .map_err(de)?;
        chart
            .draw_series(
                self.windows
                    .iter()
                    .map(|&(a, b)| Rectangle::new([(a, 0.0), (b, ymax)], shade.mix(0.45).filled())),
            )
            .map_err(de)?;
        for (i, (_, pts)) in self.rails.iter().enumerate() {
            thick_path(&chart, pts, color(i), false, 1)?;
        }
        Ok(())
    }
}

/// A value per (x, y) cache parameter pair, viridis-coloured, with a scale.
struct HeatmapFigure {
    title: String,
    subtitle: String,
    x_name: String,
    y_name: String,
    xs: Vec<String>,
    ys: Vec<String>,
    /// `cells[yi][xi]`.
    cells: Vec<Vec<Option<f64>>>,
    unit: String,
}

fn viridis(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    } * 4.0;
    let i = (t.floor() as usize).min(3);
    let f = t - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |x: f64, y: f64| (x + (y - x) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

impl Figure for HeatmapFigure {
    fn size(&self) -> (u32, u32) {
        (1000, 660)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let rest = header(root, &self.title, &self.subtitle)?;
        let w = rest.dim_in_pixel().0;
        let (plot, bar) = rest.split_horizontally(w - 150);
        let vals = self.cells.iter().flatten().flatten().copied();
        let (vmin, vmax) = min_max(vals).unwrap_or((0.0, 1.0));
        let (vmin, vmax) = if vmax > vmin {
            (vmin, vmax)
        } else {
            (vmin - 0.5, vmax + 0.5)
        };
        let (nx, ny) = (self.xs.len(), self.ys.len());
        let xs = self.xs.clone();
        let ys = self.ys.clone();
        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .x_label_area_size(56)
            .y_label_area_size(80)
            .build_cartesian_2d(
                keyed(0.0, nx as f64, (0..nx).map(|i| i as f64 + 0.5).collect()),
                keyed(0.0, ny as f64, (0..ny).map(|i| i as f64 + 0.5).collect()),
            )
            .map_err(de)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(self.x_name.as_str())
            .y_desc(self.y_name.as_str())
            .x_label_formatter(&|v| {
                xs.get(v.floor().max(0.0) as usize)
                    .cloned()
                    .unwrap_or_default()
            })
            .y_label_formatter(&|v| {
                ys.get(v.floor().max(0.0) as usize)
                    .cloned()
                    .unwrap_or_default()
            })
            .label_style(font(14))
            .axis_desc_style(font(16))
            .draw()
            .map_err(de)?;
        let centre = Pos::new(HPos::Center, VPos::Center);
        for (yi, row) in self.cells.iter().enumerate() {
            for (xi, cell) in row.iter().enumerate() {
                let (x, y) = (xi as f64, yi as f64);
                let (fill, text, ink) = match cell {
                    Some(v) => {
                        let c = viridis((v - vmin) / (vmax - vmin));
                        let lum = 0.299 * c.0 as f64 + 0.587 * c.1 as f64 + 0.114 * c.2 as f64;
                        (c, short_num(*v), if lum < 140.0 { WHITE } else { INK })
                    }
                    None => (RGBColor(225, 225, 225), "n/a".to_string(), MUTED),
                };
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x + 0.02, y + 0.02), (x + 0.98, y + 0.98)],
                        fill.filled(),
                    )))
                    .map_err(de)?;
                chart
                    .draw_series(std::iter::once(Text::new(
                        text,
                        (x + 0.5, y + 0.5),
                        (SANS, 14).into_font().color(&ink).pos(centre),
                    )))
                    .map_err(de)?;
            }
        }
        // The colour scale.
        let mut cb = ChartBuilder::on(&bar)
            .margin_top(20)
            .margin_bottom(68)
            .margin_right(62)
            .y_label_area_size(0)
            .right_y_label_area_size(0)
            .build_cartesian_2d(0f64..1.0, vmin..vmax)
            .map_err(de)?;
        let steps = 64;
        cb.draw_series((0..steps).map(|i| {
            let a = vmin + (vmax - vmin) * i as f64 / steps as f64;
            let b = vmin + (vmax - vmin) * (i + 1) as f64 / steps as f64;
            Rectangle::new(
                [(0.0, a), (1.0, b)],
                viridis(i as f64 / (steps - 1) as f64).filled(),
            )
        }))
        .map_err(de)?;
        let st = (SANS, 13)
            .into_font()
            .color(&INK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        let (ox, oy) = bar.get_base_pixel();
        for k in 0..=4 {
            let v = vmin + (vmax - vmin) * k as f64 / 4.0;
            let (px, py) = cb.backend_coord(&(1.0, v));
            bar.draw(&Text::new(short_num(v), (px - ox + 6, py - oy), st.clone()))
                .map_err(de)?;
        }
        let (px, py) = cb.backend_coord(&(0.0, vmin));
        bar.draw(&Text::new(
            self.unit.clone(),
            (px - ox, py - oy + 16),
            font(14),
        ))
        .map_err(de)?;
        Ok(())
    }
}

/// An axis range for a scatter: from zero when the data reaches down near
/// it, else around the data, so clustered points stay apart.
fn zoom(range: Option<(f64, f64)>) -> std::ops::Range<f64> {
    let (lo, hi) = range.unwrap_or((0.0, 1.0));
    let hi = if hi > 0.0 { hi } else { 1.0 };
    let pad = ((hi - lo) * 0.12).max(hi * 0.02);
    let lo = if lo < 0.3 * hi { 0.0 } else { lo - pad };
    lo..hi + pad
}

fn min_max(it: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    it.filter(|v| v.is_finite()).fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((a, b)) => Some((a.min(v), b.max(v))),
    })
}

// ---------------------------------------------------------------------------
// From rows to figures

/// Knobs that get one line each when they vary (colours); batch first.
const LINE_PARAMS: &[Param] = &[Param::Batch, Param::Engine, Param::Conv];
/// Knobs that get one panel each when they vary.
const PANEL_PARAMS: &[Param] = &[
    Param::Fusion,
    Param::Cache,
    Param::Loop,
    Param::Cpus,
    Param::PowerMode,
];
const MAX_PANELS: usize = 12;

/// A knob's value for people.
fn param_label(r: &ResultRow, p: Param) -> String {
    match p {
        Param::Batch => format!("batch {}", r.batch),
        Param::Threads => match r.threads {
            1 => "1 thread".into(),
            t => format!("{t} threads"),
        },
        Param::Fusion => match r.fusion {
            true => "fused".into(),
            false => "unfused".into(),
        },
        Param::Cache => format!("mc={} nc={} kc={}", r.mc, r.nc, r.kc),
        Param::Loop => format!("loop {}", r.parallel),
        Param::Cpus => format!("cpus {}", r.cpus),
        Param::PowerMode => format!("mode {}", r.power_mode),
        _ => p.value(r),
    }
}

/// Whether knob `p` means anything for row `r`: joulebench's own knobs do
/// not for a peer engine's rows (which record them empty or zero).
fn applies(r: &ResultRow, p: Param) -> bool {
    !matches!(p, Param::Fusion | Param::Cache | Param::Loop)
        || matches!(r.engine.as_str(), "" | "joulebench")
}

fn varying(rows: &[&ResultRow], params: &[Param]) -> Vec<Param> {
    params
        .iter()
        .copied()
        .filter(|p| {
            let mut vals = rows.iter().filter(|r| applies(r, *p)).map(|r| p.value(r));
            let first = vals.next();
            vals.any(|v| Some(v) != first)
        })
        .collect()
}

/// The names of knobs, for notes.
fn names(params: &[Param]) -> String {
    params
        .iter()
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Compares texts as numbers when both are.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y),
        _ => a.cmp(b),
    }
}

fn key_cmp(a: &[String], b: &[String]) -> std::cmp::Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            // cache keys "mc/nc/kc" compare part by part
            x.split('/')
                .zip(y.split('/'))
                .map(|(p, q)| natural_cmp(p, q))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

/// Rows grouped by their values of `params`, in natural order.
fn group_by<'a>(
    rows: &[&'a ResultRow],
    params: &[Param],
) -> Vec<(Vec<String>, Vec<&'a ResultRow>)> {
    let mut m: Vec<(Vec<String>, Vec<&ResultRow>)> = Vec::new();
    for r in rows {
        let k: Vec<String> = params.iter().map(|p| p.value(r)).collect();
        match m.iter_mut().find(|(kk, _)| *kk == k) {
            Some((_, v)) => v.push(r),
            None => m.push((k, vec![r])),
        }
    }
    m.sort_by(|a, b| key_cmp(&a.0, &b.0));
    m
}

/// Panels: rows grouped by `params`; a peer engine's rows join every panel
/// whose values they match on the knobs that apply to them, so engines are
/// drawn side by side with each of joulebench's configurations.
fn panel_groups<'a>(
    rows: &[&'a ResultRow],
    params: &[Param],
) -> Vec<(Vec<String>, Vec<&'a ResultRow>)> {
    let full = |r: &ResultRow| params.iter().all(|p| applies(r, *p));
    let own: Vec<&ResultRow> = rows.iter().copied().filter(|r| full(r)).collect();
    let mut groups = group_by(&own, params);
    let mut rest = Vec::new();
    for r in rows.iter().copied().filter(|r| !full(r)) {
        let mut placed = false;
        for (key, members) in groups.iter_mut() {
            let fits = params
                .iter()
                .zip(key.iter())
                .all(|(p, v)| !applies(r, *p) || p.value(r) == *v);
            if fits {
                members.push(r);
                placed = true;
            }
        }
        if !placed {
            rest.push(r);
        }
    }
    groups.extend(group_by(&rest, params));
    groups
}

/// Joules per image in mJ when the largest is below half a joule.
fn energy_unit(rows: &[&ResultRow]) -> (f64, &'static str) {
    let jmax = rows
        .iter()
        .filter_map(|r| r.energy_per_image())
        .fold(0.0f64, f64::max);
    if jmax < 0.5 {
        (1e3, "mJ")
    } else {
        (1.0, "J")
    }
}

fn labels(r: &ResultRow, params: &[Param]) -> String {
    // A peer engine's row has no `conv`: no empty item in its label.
    params
        .iter()
        .map(|p| param_label(r, *p))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value over repetitions: the median, and the envelope of the intervals.
fn aggregate(vals: &[(f64, Option<(f64, f64)>)]) -> Option<(f64, Option<(f64, f64)>)> {
    let ys: Vec<f64> = vals.iter().map(|v| v.0).collect();
    let y = median(&ys)?;
    let errs: Option<Vec<(f64, f64)>> = vals.iter().map(|v| v.1).collect();
    let err = errs.map(|e| {
        e.iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &(l, h)| {
                (a.min(l), b.max(h))
            })
    });
    Some((y, err))
}

/// A metric drawn by the threads/bars figures.
#[derive(Clone, Copy)]
struct Metric {
    name: &'static str,
    value: fn(&ResultRow) -> Option<f64>,
    ci: fn(&ResultRow) -> Option<(f64, f64)>,
    dashed: bool,
}

fn no_ci(_: &ResultRow) -> Option<(f64, f64)> {
    None
}

/// Title context: model, machine and date.
struct Context<'a> {
    data: &'a RunData,
    experiment: &'a str,
    model: &'a str,
}

impl Context<'_> {
    fn title(&self, what: &str) -> String {
        format!(
            "{what}: {} on {}, {}",
            self.model,
            self.data.machine(),
            self.data.date()
        )
    }
    fn subtitle(&self, extra: &str) -> String {
        let mut s = format!(
            "suite {}, experiment {}",
            self.data.suite(),
            self.experiment
        );
        let k = self.data.kernel();
        if !k.is_empty() {
            s.push_str(&format!(", {k} kernel"));
        }
        if !extra.is_empty() {
            s.push_str("; ");
            s.push_str(extra);
        }
        s
    }
}

/// Lines against threads (when threads vary) or bars per configuration.
#[allow(clippy::too_many_arguments)]
fn metric_figure(
    ctx: &Context,
    rows: &[&ResultRow],
    metrics: &[Metric],
    what: &str,
    axis: &str,
    scale: f64,
    note: &str,
    out: &Path,
    stem: &str,
    formats: &[ImageFormat],
) -> Result<Option<Vec<PathBuf>>, HarnessError> {
    let rows: Vec<&ResultRow> = rows
        .iter()
        .copied()
        .filter(|r| metrics.iter().any(|m| (m.value)(r).is_some()))
        .collect();
    if rows.is_empty() {
        return Ok(None);
    }
    let threads: Vec<f64> = {
        let mut t: Vec<f64> = rows.iter().map(|r| r.threads as f64).collect();
        t.sort_by(f64::total_cmp);
        t.dedup();
        t
    };
    let line_params = varying(&rows, LINE_PARAMS);
    let panel_params = varying(&rows, PANEL_PARAMS);
    let value_of = |m: &Metric, rs: &[&ResultRow]| -> Option<(f64, Option<(f64, f64)>)> {
        let vals: Vec<(f64, Option<(f64, f64)>)> = rs
            .iter()
            .filter_map(|r| {
                (m.value)(r).map(|v| (v * scale, (m.ci)(r).map(|(a, b)| (a * scale, b * scale))))
            })
            .collect();
        aggregate(&vals)
    };
    if threads.len() >= 2 {
        let lines = group_by(&rows, &line_params);
        let mut legend: Vec<LegendEntry> = lines
            .iter()
            .enumerate()
            .map(|(i, (_, rs))| LegendEntry {
                label: if line_params.is_empty() {
                    param_label(rs[0], Param::Batch)
                } else {
                    labels(rs[0], &line_params)
                },
                color: color(i),
                marker: marker(i),
                stroke: Stroke::Solid,
            })
            .collect();
        if metrics.len() > 1 {
            for m in metrics {
                legend.push(LegendEntry {
                    label: m.name.into(),
                    color: MUTED,
                    marker: Marker::None,
                    stroke: if m.dashed {
                        Stroke::Dashed
                    } else {
                        Stroke::Solid
                    },
                });
            }
        }
        let mut panels = Vec::new();
        let groups = panel_groups(&rows, &panel_params);
        let dropped = groups.len().saturating_sub(MAX_PANELS);
        for (_, prows) in groups.into_iter().take(MAX_PANELS) {
            let mut series = Vec::new();
            for (li, (lkey, _)) in lines.iter().enumerate() {
                let lrows: Vec<&ResultRow> = prows
                    .iter()
                    .copied()
                    .filter(|r| line_params.iter().map(|p| p.value(r)).collect::<Vec<_>>() == *lkey)
                    .collect();
                for m in metrics {
                    let pts: Vec<Xy> = group_by(&lrows, &[Param::Threads])
                        .into_iter()
                        .filter_map(|(t, rs)| {
                            let x = t[0].parse::<f64>().ok()?;
                            let (y, err) = value_of(m, &rs)?;
                            Some(Xy {
                                x,
                                y,
                                err,
                                flag: false,
                            })
                        })
                        .collect();
                    if !pts.is_empty() {
                        series.push(Series {
                            color: color(li),
                            marker: marker(li),
                            dashed: m.dashed,
                            pts,
                        });
                    }
                }
            }
            panels.push(Panel {
                title: labels(prows[0], &panel_params),
                series,
            });
        }
        let mut extra = note.to_string();
        if dropped > 0 {
            extra.push_str(&format!("; {dropped} more panel(s) not drawn"));
        }
        let fig = LineFigure {
            title: ctx.title(what),
            subtitle: ctx.subtitle(&extra),
            x_desc: "threads".into(),
            y_desc: axis.into(),
            x_ticks: threads,
            x_labels: Vec::new(),
            panels,
            legend_title: if line_params.is_empty() {
                String::new()
            } else {
                names(&line_params)
            },
            legend,
        };
        return render(&fig, out, stem, formats).map(Some);
    }
    // One thread count: bars per configuration.
    let mut params: Vec<Param> = LINE_PARAMS.to_vec();
    params.extend_from_slice(PANEL_PARAMS);
    let vary = varying(&rows, &params);
    let configs = group_by(&rows, &vary);
    let row_labels: Vec<String> = configs
        .iter()
        .map(|(_, rs)| {
            if vary.is_empty() {
                labels(rs[0], &[Param::Batch])
            } else {
                labels(rs[0], &vary)
            }
        })
        .collect();
    let series: Vec<BarSeries> = metrics
        .iter()
        .enumerate()
        .map(|(j, m)| BarSeries {
            label: m.name.into(),
            color: color(j),
            values: configs.iter().map(|(_, rs)| value_of(m, rs)).collect(),
        })
        .collect();
    let t = match threads.first() {
        Some(t) if *t == 1.0 => "1 thread".to_string(),
        Some(t) => format!("{t:.0} threads"),
        None => String::new(),
    };
    let fig = BarFigure {
        title: ctx.title(what),
        subtitle: ctx.subtitle(
            &[t.as_str(), note]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(", "),
        ),
        x_desc: axis.into(),
        rows: row_labels,
        series,
        footnote: String::new(),
    };
    render(&fig, out, stem, formats).map(Some)
}

/// Throughput or energy against the power mode's CPU frequency (mean
/// measured, else the maximum set, else the modes as categories), one line
/// per thread count, throttled measurements ringed in red.
#[allow(clippy::too_many_arguments)]
fn modes_figure(
    ctx: &Context,
    rows: &[&ResultRow],
    metric: Metric,
    what: &str,
    axis: &str,
    scale: f64,
    out: &Path,
    stem: &str,
    formats: &[ImageFormat],
) -> Result<Option<Vec<PathBuf>>, HarnessError> {
    let rows: Vec<&ResultRow> = rows
        .iter()
        .copied()
        .filter(|r| (metric.value)(r).is_some())
        .collect();
    if varying(&rows, &[Param::PowerMode]).is_empty() {
        return Ok(None);
    }
    let modes: Vec<String> = {
        let mut seen = std::collections::BTreeSet::new();
        rows.iter()
            .map(|r| r.power_mode.clone())
            .filter(|m| seen.insert(m.clone()))
            .collect()
    };
    let freq = |col: fn(&ResultRow) -> Option<f64>, div: f64| -> Option<Vec<f64>> {
        modes
            .iter()
            .map(|m| {
                let v: Vec<f64> = rows
                    .iter()
                    .filter(|r| r.power_mode == *m)
                    .map(|r| col(r).and_then(finite).map(|f| f / div))
                    .collect::<Option<Vec<f64>>>()?;
                median(&v)
            })
            .collect()
    };
    let (x_desc, xs, mode_labels) = match (
        freq(|r| r.freq_mean_mhz, 1.0),
        freq(|r| r.freq_max_khz.map(|k| k as f64), 1e3),
    ) {
        (Some(x), _) => ("mean CPU frequency (MHz)", x, Vec::new()),
        (None, Some(x)) => ("maximum CPU frequency (MHz)", x, Vec::new()),
        _ => (
            "power mode",
            (0..modes.len()).map(|i| i as f64).collect(),
            modes.clone(),
        ),
    };
    let x_of = |r: &ResultRow| -> Option<f64> {
        modes.iter().position(|m| *m == r.power_mode).map(|i| xs[i])
    };
    let mut ticks = xs.clone();
    let mut tick_labels = Vec::new();
    if mode_labels.is_empty() {
        ticks.sort_by(f64::total_cmp);
        ticks.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
    } else {
        tick_labels = mode_labels;
    }
    let panel_params = varying(
        &rows,
        &[
            Param::Batch,
            Param::Engine,
            Param::Conv,
            Param::Fusion,
            Param::Cache,
            Param::Loop,
            Param::Cpus,
        ],
    );
    let lines = group_by(&rows, &[Param::Threads]);
    let mut legend: Vec<LegendEntry> = lines
        .iter()
        .enumerate()
        .map(|(i, (_, rs))| LegendEntry {
            label: param_label(rs[0], Param::Threads),
            color: color(i),
            marker: marker(i),
            stroke: Stroke::Solid,
        })
        .collect();
    let any_throttled = rows.iter().any(|r| r.throttled == Some(true));
    if any_throttled {
        legend.push(LegendEntry {
            label: "throttled".into(),
            color: THROTTLED,
            marker: Marker::Ring,
            stroke: Stroke::None,
        });
    }
    let mut panels = Vec::new();
    for (_, prows) in panel_groups(&rows, &panel_params)
        .into_iter()
        .take(MAX_PANELS)
    {
        let mut series = Vec::new();
        for (li, (lkey, _)) in lines.iter().enumerate() {
            let mut pts: Vec<Xy> = group_by(&prows, &[Param::Threads, Param::PowerMode])
                .into_iter()
                .filter(|(k, _)| k[0] == lkey[0])
                .filter_map(|(_, rs)| {
                    let vals: Vec<(f64, Option<(f64, f64)>)> = rs
                        .iter()
                        .filter_map(|r| {
                            let v = (metric.value)(r)? * scale;
                            Some((v, (metric.ci)(r).map(|(a, b)| (a * scale, b * scale))))
                        })
                        .collect();
                    let (y, err) = aggregate(&vals)?;
                    Some(Xy {
                        x: x_of(rs[0])?,
                        y,
                        err,
                        flag: rs.iter().any(|r| r.throttled == Some(true)),
                    })
                })
                .collect();
            pts.sort_by(|a, b| a.x.total_cmp(&b.x));
            if !pts.is_empty() {
                series.push(Series {
                    color: color(li),
                    marker: marker(li),
                    dashed: false,
                    pts,
                });
            }
        }
        panels.push(Panel {
            title: labels(prows[0], &panel_params),
            series,
        });
    }
    let fig = LineFigure {
        title: ctx.title(what),
        subtitle: ctx.subtitle(&format!("power modes {}", modes.join(", "))),
        x_desc: x_desc.into(),
        y_desc: axis.into(),
        x_ticks: ticks,
        x_labels: tick_labels,
        panels,
        legend_title: "threads".into(),
        legend,
    };
    render(&fig, out, stem, formats).map(Some)
}

/// Points not dominated in (x, y), both higher-is-better.
fn pareto(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    points
        .iter()
        .copied()
        .filter(|&(x, y)| {
            !points
                .iter()
                .any(|&(a, b)| a >= x && b >= y && (a > x || b > y))
        })
        .collect()
}

fn tradeoff_figure(
    ctx: &Context,
    rows: &[&ResultRow],
    out: &Path,
    stem: &str,
    formats: &[ImageFormat],
) -> Result<Option<Vec<PathBuf>>, HarnessError> {
    let rows: Vec<&ResultRow> = rows
        .iter()
        .copied()
        .filter(|r| r.efficiency().is_some() && finite(r.images_per_s).is_some())
        .collect();
    if rows.is_empty() {
        return Ok(None);
    }
    let mut colour_params = varying(&rows, LINE_PARAMS);
    let marker_params = varying(&rows, &[Param::Threads]);
    let mut other = varying(&rows, PANEL_PARAMS);
    if colour_params.is_empty() {
        colour_params = std::mem::take(&mut other);
    }
    let cgroups = group_by(&rows, &colour_params);
    let mgroups = group_by(&rows, &marker_params);
    let mut groups = Vec::new();
    let mut all = Vec::new();
    let mut legend = Vec::new();
    for (ci, (_, crows)) in cgroups.iter().enumerate() {
        legend.push(LegendEntry {
            label: if colour_params.is_empty() {
                "configuration".into()
            } else {
                labels(crows[0], &colour_params)
            },
            color: color(ci),
            marker: Marker::None,
            stroke: Stroke::Box,
        });
        for (mi, (mkey, _)) in mgroups.iter().enumerate() {
            let pts: Vec<(f64, f64)> = crows
                .iter()
                .filter(|r| marker_params.iter().map(|p| p.value(r)).collect::<Vec<_>>() == *mkey)
                .filter_map(|r| Some((finite(r.images_per_s)?, r.efficiency()?)))
                .collect();
            all.extend_from_slice(&pts);
            groups.push((color(ci), marker(mi), pts));
        }
    }
    if !marker_params.is_empty() {
        for (mi, (_, mrows)) in mgroups.iter().enumerate() {
            legend.push(LegendEntry {
                label: labels(mrows[0], &marker_params),
                color: MUTED,
                marker: marker(mi),
                stroke: Stroke::None,
            });
        }
    }
    legend.push(LegendEntry {
        label: "Pareto-optimal".into(),
        color: INK,
        marker: Marker::Ring,
        stroke: Stroke::None,
    });
    let estimated = rows.iter().any(|r| r.power_estimated == Some(true));
    let mut note = "up and right is better".to_string();
    if !other.is_empty() {
        note.push_str(&format!("; {} vary within a colour", names(&other)));
    }
    if estimated {
        note.push_str("; ESTIMATED power");
    }
    let fig = ScatterFigure {
        title: ctx.title("Energy efficiency against throughput"),
        subtitle: ctx.subtitle(&note),
        x_desc: "throughput (images/s)".into(),
        y_desc: "energy efficiency (images/J)".into(),
        pareto: pareto(&all),
        groups,
        legend_title: names(&colour_params),
        legend,
    };
    render(&fig, out, stem, formats).map(Some)
}

fn heatmap_figure(
    ctx: &Context,
    rows: &[&ResultRow],
    out: &Path,
    stem: &str,
    formats: &[ImageFormat],
) -> Result<Option<Vec<PathBuf>>, HarnessError> {
    let rows: Vec<&ResultRow> = rows
        .iter()
        .copied()
        .filter(|r| finite(r.gflops).is_some())
        .collect();
    let distinct = |p: Param| {
        let mut v: Vec<String> = rows.iter().map(|r| p.value(r)).collect();
        v.sort_by(|a, b| natural_cmp(a, b));
        v.dedup();
        v
    };
    let mut axes: Vec<(Param, Vec<String>)> = [Param::Mc, Param::Nc, Param::Kc]
        .iter()
        .map(|p| (*p, distinct(*p)))
        .filter(|(_, v)| v.len() > 1)
        .collect();
    if axes.len() < 2 {
        return Ok(None);
    }
    // With all three varying: the two with the most values, best over the third.
    axes.sort_by_key(|a| std::cmp::Reverse(a.1.len()));
    let (xp, xs) = axes[0].clone();
    let (yp, ys) = axes[1].clone();
    let mut cells = vec![vec![None; xs.len()]; ys.len()];
    for r in &rows {
        let (Some(xi), Some(yi)) = (
            xs.iter().position(|v| *v == xp.value(r)),
            ys.iter().position(|v| *v == yp.value(r)),
        ) else {
            continue;
        };
        let g = finite(r.gflops).unwrap_or(0.0);
        let c: &mut Option<f64> = &mut cells[yi][xi];
        *c = Some(c.map_or(g, |old: f64| old.max(g)));
    }
    // A list of configurations along a diagonal is no grid: bars show it.
    let filled = cells.iter().flatten().filter(|c| c.is_some()).count();
    if filled <= xs.len().max(ys.len()) {
        return Ok(None);
    }
    let mut others: Vec<Param> = varying(
        &rows,
        &[
            Param::Threads,
            Param::Batch,
            Param::Conv,
            Param::Fusion,
            Param::Loop,
            Param::Engine,
            Param::Cpus,
        ],
    );
    if axes.len() > 2 {
        others.push(axes[2].0);
    }
    let note = if others.is_empty() {
        "whole-model GFLOP/s per cache blocking".to_string()
    } else {
        format!("best GFLOP/s over {} per cell", names(&others))
    };
    let fig = HeatmapFigure {
        title: ctx.title("GFLOP/s over cache blocking"),
        subtitle: ctx.subtitle(&note),
        x_name: xp.name().into(),
        y_name: yp.name().into(),
        xs,
        ys,
        cells,
        unit: "GFLOP/s".into(),
    };
    render(&fig, out, stem, formats).map(Some)
}

const MAX_PROFILED: usize = 4;

fn layers_figure(
    ctx: &Context,
    rows: &[&ResultRow],
    profile: &[ProfileRow],
    out: &Path,
    stem: &str,
    formats: &[ImageFormat],
) -> Result<Option<Vec<PathBuf>>, HarnessError> {
    let mut by_point: BTreeMap<&str, Vec<&ProfileRow>> = BTreeMap::new();
    for p in profile {
        by_point.entry(p.point.as_str()).or_default().push(p);
    }
    let profiled: Vec<&ResultRow> = rows
        .iter()
        .copied()
        .filter(|r| by_point.contains_key(r.point.as_str()))
        .collect();
    if profiled.is_empty() {
        return Ok(None);
    }
    let mut params: Vec<Param> = vec![Param::Threads];
    params.extend_from_slice(LINE_PARAMS);
    params.extend_from_slice(PANEL_PARAMS);
    let vary = varying(&profiled, &params);
    let shown: Vec<&ResultRow> = profiled.iter().copied().take(MAX_PROFILED).collect();
    // Layers in the order of the first profiled point.
    let mut first: Vec<&ProfileRow> = by_point[shown[0].point.as_str()].clone();
    first.sort_by_key(|p| p.layer_index);
    let names: Vec<String> = first
        .iter()
        .map(|p| format!("{} [{}]", p.name, p.algorithm))
        .collect();
    let series: Vec<BarSeries> = shown
        .iter()
        .enumerate()
        .map(|(j, r)| {
            let layers = &by_point[r.point.as_str()];
            BarSeries {
                label: if vary.is_empty() {
                    labels(r, &[Param::Threads, Param::Batch])
                } else {
                    labels(r, &vary)
                },
                color: color(j),
                values: first
                    .iter()
                    .map(|l| {
                        layers
                            .iter()
                            .find(|x| x.name == l.name)
                            .map(|x| (x.ms_per_batch, None))
                    })
                    .collect(),
            }
        })
        .collect();
    let mut note = "from a profiled pass after the timed one".to_string();
    if profiled.len() > shown.len() {
        note.push_str(&format!(
            "; first {} of {} profiled points",
            shown.len(),
            profiled.len()
        ));
    }
    let fig = BarFigure {
        title: ctx.title("Per-layer time"),
        subtitle: ctx.subtitle(&note),
        x_desc: "time per batch (ms)".into(),
        rows: names,
        series,
        footnote: String::new(),
    };
    render(&fig, out, stem, formats).map(Some)
}

fn power_figure(
    data: &RunData,
    out: &Path,
    formats: &[ImageFormat],
) -> Result<Option<Vec<PathBuf>>, HarnessError> {
    let Some(power) = data.power.as_ref().filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let mut rails: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for s in power {
        let name = if s.rail.is_empty() {
            "total".to_string()
        } else {
            s.rail.clone()
        };
        match rails.iter_mut().find(|r| r.0 == name) {
            Some(r) => r.1.push((s.t_s, s.watts)),
            None => rails.push((name, vec![(s.t_s, s.watts)])),
        }
    }
    for r in &mut rails {
        r.1.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let windows: Vec<(f64, f64)> = data
        .rows
        .iter()
        .filter_map(|r| Some((r.window_start_s?, r.window_end_s?)))
        .filter(|(a, b)| b > a)
        .collect();
    let sources: Vec<String> = data.power_sources();
    let mut sub = format!("suite {}", data.suite());
    if !sources.is_empty() {
        sub.push_str(&format!(", power source {}", sources.join("+")));
    }
    if data.estimated() {
        sub.push_str(" (ESTIMATED)");
    }
    sub.push_str(&format!("; {} measured window(s) shaded", windows.len()));
    let models = data.distinct(|r| &r.model).join(", ");
    let fig = PowerFigure {
        title: format!(
            "Power trace: {models} on {}, {}",
            data.machine(),
            data.date()
        ),
        subtitle: sub,
        rails,
        windows,
    };
    render(&fig, out, "power-trace", formats).map(Some)
}

fn slug(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if t.is_empty() {
        "all".into()
    } else {
        t
    }
}

/// Draws every figure `data` allows into `out`.
pub fn plot_data(
    data: &RunData,
    out: &Path,
    formats: &[ImageFormat],
) -> Result<PlotSummary, HarnessError> {
    ensure_font()?;
    std::fs::create_dir_all(out).map_err(|e| HarnessError::Io {
        path: out.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut figures = Vec::new();
    let mut skipped = Vec::new();
    // Points an engine could not measure (`skipped`, `failed`) have no figures to draw.
    let unmeasured = |r: &ResultRow| !r.measured();
    let n_unmeasured = data.rows.iter().filter(|r| unmeasured(r)).count();
    let measured_only;
    let data = if n_unmeasured > 0 {
        skipped.push(format!(
            "{n_unmeasured} point(s) not measured (skipped or failed engines: see status and warnings in results.csv)"
        ));
        measured_only = RunData {
            rows: data
                .rows
                .iter()
                .filter(|r| !unmeasured(r))
                .cloned()
                .collect(),
            ..data.clone()
        };
        &measured_only
    } else {
        data
    };
    let has_energy = data.rows.iter().any(|r| r.energy_per_image().is_some());
    let has_dyn = data
        .rows
        .iter()
        .any(|r| r.dyn_joules_per_image.and_then(finite).is_some());
    let estimated = data.estimated();
    let mut any_heatmap = false;
    let mut any_layers = false;
    for exp in &data.distinct(|r| &r.experiment) {
        let exp_rows: Vec<&ResultRow> = data.rows.iter().filter(|r| r.experiment == *exp).collect();
        let mut models: Vec<String> = exp_rows.iter().map(|r| r.model.clone()).collect();
        models.dedup();
        let models = {
            let mut seen = std::collections::BTreeSet::new();
            models
                .into_iter()
                .filter(|m| seen.insert(m.clone()))
                .collect::<Vec<_>>()
        };
        for model in &models {
            let rows: Vec<&ResultRow> = exp_rows
                .iter()
                .copied()
                .filter(|r| r.model == *model)
                .collect();
            let ctx = Context {
                data,
                experiment: if exp.is_empty() { "-" } else { exp },
                model,
            };
            let base = format!(
                "{}-{}",
                slug(if exp.is_empty() { "all" } else { exp }),
                slug(model)
            );
            let mut add = |kind: &'static str, title: String, files: Option<Vec<PathBuf>>| {
                if let Some(files) = files {
                    figures.push(FigureInfo {
                        kind,
                        experiment: (!exp.is_empty()).then(|| exp.clone()),
                        model: Some(model.clone()),
                        title,
                        files,
                    });
                }
            };
            let throughput = Metric {
                name: "images/s",
                value: |r| finite(r.images_per_s),
                ci: ResultRow::images_per_s_ci,
                dashed: false,
            };
            let files = metric_figure(
                &ctx,
                &rows,
                &[throughput],
                "Throughput",
                "throughput (images/s)",
                1.0,
                "error bars: 95% CI of the median batch latency",
                out,
                &format!("{base}-throughput"),
                formats,
            )?;
            add("throughput", ctx.title("Throughput"), files);
            let p50 = Metric {
                name: "median (p50)",
                value: |r| finite(r.latency_ms_p50),
                ci: ResultRow::latency_ci,
                dashed: false,
            };
            let p99 = Metric {
                name: "p99",
                value: |r| finite(r.latency_ms_p99),
                ci: no_ci,
                dashed: true,
            };
            let files = metric_figure(
                &ctx,
                &rows,
                &[p50, p99],
                "Batch latency",
                "batch latency (ms)",
                1.0,
                "error bars: 95% CI of the median",
                out,
                &format!("{base}-latency"),
                formats,
            )?;
            add("latency", ctx.title("Batch latency"), files);
            if has_energy {
                let (scale, unit) = energy_unit(&rows);
                let total = Metric {
                    name: "total",
                    value: ResultRow::energy_per_image,
                    ci: no_ci,
                    dashed: false,
                };
                let dynamic = Metric {
                    name: "dynamic (above idle)",
                    value: |r| r.dyn_joules_per_image.and_then(finite),
                    ci: no_ci,
                    dashed: true,
                };
                let ms: Vec<Metric> = if has_dyn {
                    vec![total, dynamic]
                } else {
                    vec![total]
                };
                let files = metric_figure(
                    &ctx,
                    &rows,
                    &ms,
                    "Energy per image",
                    &format!("energy per image ({unit})"),
                    scale,
                    if estimated { "ESTIMATED power" } else { "" },
                    out,
                    &format!("{base}-energy"),
                    formats,
                )?;
                add("energy", ctx.title("Energy per image"), files);
                let files =
                    tradeoff_figure(&ctx, &rows, out, &format!("{base}-tradeoff"), formats)?;
                add(
                    "tradeoff",
                    ctx.title("Energy efficiency against throughput"),
                    files,
                );
            }
            let files = modes_figure(
                &ctx,
                &rows,
                throughput,
                "Throughput by power mode",
                "throughput (images/s)",
                1.0,
                out,
                &format!("{base}-modes-throughput"),
                formats,
            )?;
            add(
                "modes-throughput",
                ctx.title("Throughput by power mode"),
                files,
            );
            if has_energy {
                let (scale, unit) = energy_unit(&rows);
                let energy = Metric {
                    name: "total",
                    value: ResultRow::energy_per_image,
                    ci: no_ci,
                    dashed: false,
                };
                let files = modes_figure(
                    &ctx,
                    &rows,
                    energy,
                    "Energy per image by power mode",
                    &format!("energy per image ({unit})"),
                    scale,
                    out,
                    &format!("{base}-modes-energy"),
                    formats,
                )?;
                add(
                    "modes-energy",
                    ctx.title("Energy per image by power mode"),
                    files,
                );
            }
            let files = heatmap_figure(&ctx, &rows, out, &format!("{base}-gemm-heatmap"), formats)?;
            any_heatmap |= files.is_some();
            add(
                "gemm-heatmap",
                ctx.title("GFLOP/s over cache blocking"),
                files,
            );
            if let Some(profile) = &data.profile {
                let files = layers_figure(
                    &ctx,
                    &rows,
                    profile,
                    out,
                    &format!("{base}-layers"),
                    formats,
                )?;
                any_layers |= files.is_some();
                add("layers", ctx.title("Per-layer time"), files);
            }
        }
    }
    match power_figure(data, out, formats)? {
        Some(files) => figures.push(FigureInfo {
            kind: "power-trace",
            experiment: None,
            model: None,
            title: format!("Power trace on {}", data.machine()),
            files,
        }),
        None => skipped.push("power trace: no power.csv readings in the run directory".into()),
    }
    if !has_energy {
        skipped.push(
            "energy per image and images/J against images/s: no power data (columns joules_per_image / images_per_joule absent or empty)"
                .into(),
        );
    }
    if !any_heatmap {
        skipped.push("GFLOP/s heatmap: no experiment sweeps a grid of two of mc, nc, kc".into());
    }
    if !any_layers {
        skipped.push("per-layer time: no profile.csv (run a suite with `profile = true`)".into());
    }
    Ok(PlotSummary {
        out_dir: out.to_path_buf(),
        figures,
        skipped,
        notes: data.notes.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifty_series_never_share_both_colour_and_marker() {
        // A peers suite gives 12 series (6 engines x 2 batches): series 0
        // and 10 once looked identical.
        let mut seen = std::collections::HashSet::new();
        for i in 0..50 {
            let c = color(i);
            assert!(seen.insert((c.0, c.1, c.2, marker(i) as u8)), "series {i}");
        }
    }

    #[test]
    fn pareto_keeps_only_undominated_points() {
        let pts = [
            (1.0, 5.0),
            (2.0, 4.0),
            (2.0, 3.0),
            (3.0, 1.0),
            (0.5, 0.5),
            (3.0, 1.0),
        ];
        let mut p = pareto(&pts);
        p.sort_by(|a, b| a.0.total_cmp(&b.0));
        p.dedup();
        assert_eq!(p, vec![(1.0, 5.0), (2.0, 4.0), (3.0, 1.0)]);
    }

    #[test]
    fn peer_engine_rows_join_every_panel_of_joulebench_knobs() {
        let row = |engine: &str, fusion: &str, mc: &str, mode: &str| {
            let mc: usize = mc.parse().unwrap();
            ResultRow {
                engine: engine.into(),
                fusion: fusion == "true",
                mc,
                nc: mc,
                kc: mc,
                parallel: if engine == "joulebench" { "auto" } else { "" }.into(),
                cpus: String::new(),
                power_mode: mode.into(),
                ..ResultRow::default()
            }
        };
        let rows = [
            row("joulebench", "true", "252", "none"),
            row("joulebench", "false", "252", "none"),
            row("onnxruntime", "false", "0", "none"),
            row("tract", "false", "0", "none"),
            row("tract", "false", "0", "slow"),
        ];
        let refs: Vec<&ResultRow> = rows.iter().collect();
        // The peers' zero cache sizes do not make `cache` vary.
        assert_eq!(varying(&refs, PANEL_PARAMS), ["fusion", "power_mode"]);
        let groups = panel_groups(&refs, &[Param::Fusion, Param::PowerMode]);
        let engines: Vec<Vec<&str>> = groups
            .iter()
            .map(|(_, rs)| rs.iter().map(|r| r.engine.as_str()).collect())
            .collect();
        // fused and unfused joulebench each with both peers; tract's own mode alone.
        assert_eq!(
            engines,
            [
                vec!["joulebench", "onnxruntime", "tract"],
                vec!["joulebench", "onnxruntime", "tract"],
                vec!["tract"],
            ]
        );
        assert_eq!(
            labels(&rows[2], &[Param::Engine, Param::Conv]),
            "onnxruntime"
        );
        assert_eq!(groups[0].0, ["false", "none"]);
        assert_eq!(groups[1].0, ["true", "none"]);
    }

    #[test]
    fn formats_parse_and_refuse_unknown_ones() {
        assert_eq!(
            parse_formats("png,svg").unwrap(),
            vec![ImageFormat::Png, ImageFormat::Svg]
        );
        assert_eq!(parse_formats(" SVG ").unwrap(), vec![ImageFormat::Svg]);
        assert!(parse_formats("pdf").unwrap_err().is_bad_input());
        assert!(parse_formats(",").is_err());
    }

    #[test]
    fn groups_sort_numerically_and_repetitions_aggregate() {
        let rows: Vec<ResultRow> = ["8", "1", "16", "1"]
            .iter()
            .map(|b| ResultRow {
                batch: b.parse().unwrap(),
                mc: 1,
                nc: 2,
                kc: 3,
                ..ResultRow::default()
            })
            .collect();
        let refs: Vec<&ResultRow> = rows.iter().collect();
        let g = group_by(&refs, &[Param::Batch]);
        let keys: Vec<&str> = g.iter().map(|(k, _)| k[0].as_str()).collect();
        assert_eq!(keys, ["1", "8", "16"]);
        assert_eq!(g[0].1.len(), 2);
        assert_eq!(varying(&refs, &[Param::Batch, Param::Cache]), vec!["batch"]);
        let a = aggregate(&[
            (1.0, Some((0.9, 1.1))),
            (3.0, Some((2.5, 3.2))),
            (2.0, Some((1.9, 2.1))),
        ])
        .unwrap();
        assert_eq!(a, (2.0, Some((0.9, 3.2))));
        assert_eq!(
            aggregate(&[(1.0, None), (2.0, Some((1.0, 3.0)))])
                .unwrap()
                .1,
            None
        );
    }

    #[test]
    fn scatter_ranges_zoom_on_clusters_but_keep_zero_when_near() {
        assert_eq!(zoom(Some((100.0, 200.0))), 88.0..212.0);
        assert_eq!(zoom(Some((10.0, 200.0))).start, 0.0);
        assert_eq!(zoom(Some((5.0, 5.0))), 4.9..5.1);
        assert_eq!(zoom(None).start, 0.0);
    }

    #[test]
    fn viridis_spans_dark_to_light() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(f64::NAN), RGBColor(68, 1, 84));
    }
}
