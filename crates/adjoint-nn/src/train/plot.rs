//! Line charts of loss and metric curves, as PNG and SVG, with `plotters`.
//!
//! Text is rendered with DejaVu Sans, bundled in the crate (`assets/DejaVuSans.ttf`, licence in
//! `assets/LICENSE-DejaVu.txt`) and registered with plotters' `ab_glyph` backend as
//! `"sans-serif"`, so charts draw identically on machines without any system fonts (CI
//! containers, servers). The font is compiled into the library with `include_bytes!` (~760 KB).
//!
//! Log-scale axes are drawn by plotting `log10(y)` with labels `10^k`, which keeps one code path
//! for both scales; non-finite points (and non-positive ones on a log axis) are left out.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::log::History;
use crate::error::{NnError, Result};

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Register the bundled font with plotters under `"sans-serif"` (idempotent; the plotting
/// functions here call it). Call it before drawing your own plotters charts with text.
pub fn register_fonts() -> Result<()> {
    static DONE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .map_err(|_| "the bundled DejaVu Sans font could not be loaded".to_string())
    })
    .clone()
    .map_err(NnError::Other)
}

/// One named curve.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// `(x, y)` points, drawn in order.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A named curve.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series { name: name.into(), points }
    }
}

/// A line chart (see [`Chart::save`]).
///
/// ```
/// use adjoint_nn::train::{Chart, Series};
/// let dir = std::env::temp_dir().join("adjoint-nn-doc-chart");
/// let chart = Chart::new("loss")
///     .x_label("step")
///     .series(Series::new("train", vec![(1.0, 1.0), (2.0, 0.5), (3.0, 0.3)]))
///     .log_y(true);
/// let (png, svg) = chart.save(dir.join("loss"))?;
/// assert!(png.exists() && svg.exists());
/// # Ok::<(), adjoint_nn::NnError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Chart {
    /// Title.
    pub title: String,
    /// X-axis label.
    pub x_label: String,
    /// Y-axis label.
    pub y_label: String,
    /// Logarithmic y axis (points with `y <= 0` are left out).
    pub log_y: bool,
    /// Size in pixels (PNG) or user units (SVG).
    pub size: (u32, u32),
    /// Curves.
    pub series: Vec<Series>,
}

impl Chart {
    /// An empty 800×500 chart.
    pub fn new(title: impl Into<String>) -> Chart {
        Chart {
            title: title.into(),
            x_label: String::new(),
            y_label: String::new(),
            log_y: false,
            size: (800, 500),
            series: Vec::new(),
        }
    }
    /// Set the x-axis label.
    pub fn x_label(mut self, s: impl Into<String>) -> Chart {
        self.x_label = s.into();
        self
    }
    /// Set the y-axis label.
    pub fn y_label(mut self, s: impl Into<String>) -> Chart {
        self.y_label = s.into();
        self
    }
    /// Logarithmic y axis.
    pub fn log_y(mut self, yes: bool) -> Chart {
        self.log_y = yes;
        self
    }
    /// Add a curve.
    pub fn series(mut self, s: Series) -> Chart {
        self.series.push(s);
        self
    }

    /// Write `<stem>.png` and `<stem>.svg` (creating the directory); returns both paths.
    pub fn save(&self, stem: impl AsRef<Path>) -> Result<(PathBuf, PathBuf)> {
        register_fonts()?;
        let stem = stem.as_ref();
        if let Some(dir) = stem.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| NnError::Io { path: dir.to_path_buf(), source })?;
        }
        let png = with_ext(stem, "png");
        let svg = with_ext(stem, "svg");
        let fail =
            |p: &Path, e: String| NnError::Other(format!("{}: drawing the chart failed: {e}", p.display()));
        draw(BitMapBackend::new(&png, self.size).into_drawing_area(), self).map_err(|e| fail(&png, e))?;
        draw(SVGBackend::new(&svg, self.size).into_drawing_area(), self).map_err(|e| fail(&svg, e))?;
        Ok((png, svg))
    }
}

fn with_ext(stem: &Path, ext: &str) -> PathBuf {
    let mut s = stem.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, chart: &Chart) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    let log = chart.log_y;
    let curves: Vec<(String, Vec<(f64, f64)>)> = chart
        .series
        .iter()
        .map(|s| {
            let pts = s
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite() && (!log || *y > 0.0))
                .map(|&(x, y)| (x, if log { y.log10() } else { y }))
                .collect();
            (s.name.clone(), pts)
        })
        .collect();
    let all = curves.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y0, mut y1) =
        (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in all {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 - x0 < 1e-12 {
        (x0, x1) = (x0 - 0.5, x1 + 0.5);
    }
    let pad = if y1 - y0 < 1e-12 { 0.5 } else { 0.05 * (y1 - y0) };
    (y0, y1) = (y0 - pad, y1 + pad);

    root.fill(&WHITE).map_err(e)?;
    let mut c = ChartBuilder::on(&root)
        .caption(&chart.title, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(78)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(e)?;
    let fmt_y = |v: &f64| if log { format!("{:.1e}", 10f64.powf(*v)) } else { format!("{v:.3}") };
    let fmt_x = |v: &f64| if v.fract().abs() < 1e-9 { format!("{v:.0}") } else { format!("{v:.2}") };
    c.configure_mesh()
        .x_desc(chart.x_label.as_str())
        .y_desc(if log { format!("{} (log scale)", chart.y_label) } else { chart.y_label.clone() })
        .y_label_formatter(&fmt_y)
        .x_label_formatter(&fmt_x)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(e)?;
    let mut any = false;
    for (i, (name, pts)) in curves.into_iter().enumerate() {
        if pts.is_empty() {
            continue;
        }
        any = true;
        let color = COLORS[i % COLORS.len()];
        c.draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(e)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    if any {
        c.configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(e)?;
    }
    root.present().map_err(e)?;
    Ok(())
}

/// Bookkeeping metrics left out of the metric chart.
const NOT_PLOTTED: [&str; 2] = ["examples_per_sec", "epoch_seconds"];

impl History {
    /// Draw `loss.{png,svg}` (per-step training loss, plus every epoch metric whose name
    /// contains "loss", at the step where the epoch ended; log scale when all values are
    /// positive) and, when there are other epoch metrics, `metrics.{png,svg}` (by epoch) into
    /// `dir`. Returns the files written.
    pub fn plot(&self, dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
        let dir = dir.as_ref();
        let mut files = Vec::new();
        let mut loss = Chart::new("Loss").x_label("step").y_label("loss");
        loss = loss.series(Series::new(
            "train (step)",
            self.steps.iter().map(|s| (s.step as f64, s.loss)).collect(),
        ));
        let names = self.metric_names();
        for n in names.iter().filter(|n| n.contains("loss")) {
            let pts =
                self.epochs.iter().filter_map(|e| e.metrics.get(n).map(|&v| (e.step as f64, v))).collect();
            loss = loss.series(Series::new(format!("{n} (epoch)"), pts));
        }
        let positive = loss.series.iter().flat_map(|s| &s.points).all(|&(_, y)| !y.is_finite() || y > 0.0);
        loss = loss.log_y(positive);
        let (a, b) = loss.save(dir.join("loss"))?;
        files.extend([a, b]);
        let others: Vec<&String> =
            names.iter().filter(|n| !n.contains("loss") && !NOT_PLOTTED.contains(&n.as_str())).collect();
        if !others.is_empty() {
            let mut m = Chart::new("Metrics").x_label("epoch").y_label("value");
            for n in others {
                m = m.series(Series::new(n.clone(), self.metric(n)));
            }
            let (a, b) = m.save(dir.join("metrics"))?;
            files.extend([a, b]);
        }
        Ok(files)
    }
}
