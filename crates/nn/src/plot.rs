//! Minimal SVG line and scatter charts (no system libraries, no dependencies): training
//! curves from [`crate::train::fit`] and the fitted line of `examples/linear_regression.rs`.

use std::fmt::Write as _;
use std::path::Path;

use crate::error::Result;
use crate::train::History;

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// connected points
    Line,
    /// unconnected dots
    Points,
}

struct Series {
    name: String,
    points: Vec<(f64, f64)>,
    style: Style,
}

/// A chart with axes, ticks, a legend and any number of series.
///
/// ```
/// use wengert_nn::plot::{Chart, Style};
/// let svg = Chart::new("loss", "epoch", "loss")
///     .series("train", (0..10).map(|i| (i as f64, 1.0 / (1.0 + i as f64))), Style::Line)
///     .to_svg();
/// assert!(svg.starts_with("<svg") && svg.contains("polyline"));
/// ```
pub struct Chart {
    title: String,
    x_label: String,
    y_label: String,
    series: Vec<Series>,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 400.0;
const MARGIN: (f64, f64, f64, f64) = (60.0, 20.0, 40.0, 50.0); // left, right, top, bottom
const COLORS: [&str; 6] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];

fn nice_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(1e-12);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| span / s <= 6.0).unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

impl Chart {
    /// An empty chart.
    ///
    /// ```
    /// let svg = wengert_nn::plot::Chart::new("title", "x", "y").to_svg();
    /// assert!(svg.contains(">title<") && svg.ends_with("</svg>\n"));
    /// ```
    pub fn new(title: &str, x_label: &str, y_label: &str) -> Self {
        Chart { title: title.into(), x_label: x_label.into(), y_label: y_label.into(), series: Vec::new() }
    }

    /// Adds a named series (non-finite points are skipped).
    ///
    /// ```
    /// use wengert_nn::plot::{Chart, Style};
    /// let svg = Chart::new("fit", "x", "y").series("data", [(0.0, 1.0), (1.0, f64::NAN), (2.0, 3.0)], Style::Points).to_svg();
    /// assert_eq!(svg.matches("<circle").count(), 2); // the NaN point is skipped
    /// ```
    pub fn series(mut self, name: &str, points: impl IntoIterator<Item = (f64, f64)>, style: Style) -> Self {
        let points = points.into_iter().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
        self.series.push(Series { name: name.into(), points, style });
        self
    }

    /// The chart as an SVG document.
    ///
    /// ```
    /// use wengert_nn::plot::{Chart, Style};
    /// let svg = Chart::new("a < b", "x", "y").series("s", [(0.0, 0.0), (1.0, 1.0)], Style::Line).to_svg();
    /// assert!(svg.starts_with("<svg") && svg.contains("a &lt; b") && svg.contains("<polyline"));
    /// ```
    pub fn to_svg(&self) -> String {
        let all = self.series.iter().flat_map(|s| s.points.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
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
            x1 = x0 + 1.0;
        }
        if y1 - y0 < 1e-12 {
            y1 = y0 + 1.0;
        }
        let pad = (y1 - y0) * 0.05;
        let (y0, y1) = (y0 - pad, y1 + pad);
        let (l, r, t, b) = MARGIN;
        let (pw, ph) = (WIDTH - l - r, HEIGHT - t - b);
        let sx = |x: f64| l + (x - x0) / (x1 - x0) * pw;
        let sy = |y: f64| t + (1.0 - (y - y0) / (y1 - y0)) * ph;
        let mut s = String::new();
        let _ = writeln!(s, r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#);
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(s, r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#, WIDTH / 2.0, escape(&self.title));
        for tx in nice_ticks(x0, x1) {
            let _ = writeln!(s, r##"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{2}" stroke="#ddd"/><text x="{0:.1}" y="{3}" text-anchor="middle">{4}</text>"##, sx(tx), t, t + ph, t + ph + 16.0, tx);
        }
        for ty in nice_ticks(y0, y1) {
            let _ = writeln!(s, r##"<line x1="{0}" y1="{1:.1}" x2="{2}" y2="{1:.1}" stroke="#ddd"/><text x="{3}" y="{4:.1}" text-anchor="end">{5}</text>"##, l, sy(ty), l + pw, l - 6.0, sy(ty) + 4.0, ty);
        }
        let _ = writeln!(s, r#"<rect x="{l}" y="{t}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#);
        let _ = writeln!(s, r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#, l + pw / 2.0, HEIGHT - 10.0, escape(&self.x_label));
        let _ = writeln!(s, r#"<text x="16" y="{0}" text-anchor="middle" transform="rotate(-90 16 {0})">{1}</text>"#, t + ph / 2.0, escape(&self.y_label));
        if !self.series.is_empty() {
            let _ = writeln!(
                s,
                r##"<rect x="{}" y="{}" width="190" height="{}" fill="white" fill-opacity="0.85" stroke="#ccc"/>"##,
                l + pw - 196.0,
                t + 4.0,
                16.0 * self.series.len() as f64 + 6.0
            );
        }
        for (i, ser) in self.series.iter().enumerate() {
            let c = COLORS[i % COLORS.len()];
            match ser.style {
                Style::Line => {
                    let pts: Vec<String> = ser.points.iter().map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y))).collect();
                    let _ = writeln!(s, r#"<polyline fill="none" stroke="{c}" stroke-width="2" points="{}"/>"#, pts.join(" "));
                }
                Style::Points => {
                    for &(x, y) in &ser.points {
                        let _ = writeln!(s, r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{c}" fill-opacity="0.6"/>"#, sx(x), sy(y));
                    }
                }
            }
            let ly = t + 14.0 + 16.0 * i as f64;
            let _ = writeln!(s, r#"<rect x="{}" y="{}" width="12" height="3" fill="{c}"/><text x="{}" y="{}">{}</text>"#, l + pw - 190.0, ly - 4.0, l + pw - 174.0, ly, escape(&ser.name));
        }
        s.push_str("</svg>\n");
        s
    }

    /// Writes the SVG to `path` (creating parent directories), via a temporary file and a
    /// rename so a reader never sees half a chart.
    ///
    /// ```
    /// use wengert_nn::plot::{Chart, Style};
    /// let path = std::env::temp_dir().join("wengert-doc-chart/curve.svg");
    /// Chart::new("c", "x", "y").series("s", [(0.0, 1.0), (1.0, 0.5)], Style::Line).save(&path)?;
    /// assert!(std::fs::read_to_string(&path)?.contains("<polyline"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::serialize::write_atomically(path.as_ref(), self.to_svg().as_bytes())
    }
}

/// The directory examples write their outputs to: `$WENGERT_OUT` if set, else
/// `target/wengert/` under the current directory.
///
/// ```
/// let dir = wengert_nn::plot::output_dir();
/// assert!(std::env::var_os("WENGERT_OUT").is_some() || dir.ends_with("target/wengert"));
/// ```
pub fn output_dir() -> std::path::PathBuf {
    std::env::var_os("WENGERT_OUT").map(Into::into).unwrap_or_else(|| std::path::PathBuf::from("target/wengert"))
}

/// The loss curves (and the validation metric, if any) of a [`History`] as a chart: what
/// [`FitConfig::plot`](crate::train::FitConfig::plot) writes after [`crate::train::fit`].
///
/// ```
/// use wengert_nn::train::History;
/// let h = History { train_loss: vec![1.0, 0.5], val_loss: vec![1.1, 0.7], ..History::default() };
/// let svg = wengert_nn::plot::plot_history(&h, None).to_svg();
/// assert!(svg.contains("train loss") && svg.contains("val loss"));
/// ```
pub fn plot_history(h: &History, metric_name: Option<&str>) -> Chart {
    let pts = |v: &[f64]| v.iter().enumerate().map(|(i, &y)| ((i + 1) as f64, y)).collect::<Vec<_>>();
    let mut c = Chart::new("training", "epoch", "loss / metric").series("train loss", pts(&h.train_loss), Style::Line);
    if !h.val_loss.is_empty() {
        c = c.series("val loss", pts(&h.val_loss), Style::Line);
    }
    if let (Some(name), false) = (metric_name, h.train_metric.is_empty()) {
        c = c.series(&format!("train {name}"), pts(&h.train_metric), Style::Line);
    }
    if let (Some(name), false) = (metric_name, h.val_metric.is_empty()) {
        c = c.series(&format!("val {name}"), pts(&h.val_metric), Style::Line);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_numbers_inside_the_range() {
        assert_eq!(nice_ticks(0.0, 1.0), vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
        assert_eq!(nice_ticks(3.0, 29.0), vec![5.0, 10.0, 15.0, 20.0, 25.0]);
    }

    #[test]
    fn saves_an_svg_with_each_series() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/c.svg");
        Chart::new("t <1>", "x", "y")
            .series("a", [(0.0, 1.0), (1.0, 0.5)], Style::Line)
            .series("b", [(0.5, 0.7), (f64::NAN, 1.0)], Style::Points)
            .save(&p)
            .unwrap();
        let svg = std::fs::read_to_string(&p).unwrap();
        assert!(svg.contains("t &lt;1&gt;") && svg.contains("<polyline") && svg.matches("<circle").count() == 1);
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }
}
