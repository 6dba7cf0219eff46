//! Samples, medians, and the three ways results leave the benchmark: the
//! table on stdout (also saved as Markdown), the CSV, and the SVG chart.

use std::fmt::Write as _;
use std::path::Path;

/// One repetition of one side of a workload.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Seconds per operation (round trip, message, task).
    pub secs: f64,
    /// Heap allocations per operation in the measuring process.
    pub allocs: f64,
}

/// How a row's operations read best.
#[derive(Clone, Copy, Debug)]
pub enum Unit {
    /// Time per operation.
    Latency,
    /// Bytes moved per operation, shown as MB/s.
    Throughput(f64),
    /// Operations per second.
    Rate,
    /// A plain count (bytes, allocations): `secs` holds the value itself.
    Count(&'static str),
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Latency => "us/op",
            Unit::Throughput(_) => "MB/s",
            Unit::Rate => "ops/s",
            Unit::Count(name) => name,
        }
    }

    /// The value shown for `secs` seconds per operation.
    fn value(self, secs: f64) -> f64 {
        match self {
            Unit::Latency => secs * 1e6,
            Unit::Throughput(bytes) => bytes / secs / 1e6,
            Unit::Rate => 1.0 / secs,
            Unit::Count(_) => secs,
        }
    }

    fn show(self, secs: f64) -> String {
        let v = self.value(secs);
        match self {
            Unit::Latency if v < 10.0 => format!("{v:.2} us"),
            Unit::Latency if v < 10_000.0 => format!("{v:.1} us"),
            Unit::Latency => format!("{:.1} ms", v / 1e3),
            Unit::Throughput(_) => format!("{v:.0} MB/s"),
            Unit::Rate if v >= 1e6 => format!("{:.2} M/s", v / 1e6),
            Unit::Rate => format!("{:.1} k/s", v / 1e3),
            Unit::Count("bytes") => human_bytes(v),
            Unit::Count(_) => format!("{v:.2}"),
        }
    }

    /// A value range, low to high in the shown unit.
    fn show_range(self, a: f64, b: f64) -> String {
        let (lo, hi) = if self.value(a) <= self.value(b) {
            (a, b)
        } else {
            (b, a)
        };
        format!("{}–{}", self.show(lo), self.show(hi))
    }
}

/// A target on the time ratio pprocess / baseline (lower is better), or on
/// how many times faster than a peer pprocess must be.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// pprocess time / baseline time at most this.
    AtMost(f64),
    /// Peer time / pprocess time at least this.
    AtLeast(f64),
    /// pprocess value at most this (a count).
    CountAtMost(f64),
}

impl Target {
    fn show(self) -> String {
        match self {
            Target::AtMost(r) => format!("≤ {r:.2}×"),
            Target::AtLeast(r) => format!("≥ {r:.0}× faster"),
            Target::CountAtMost(v) => format!("≤ {v}"),
        }
    }
}

/// One line of a table: a workload measured on two sides.
pub struct Row {
    pub section: &'static str,
    pub workload: String,
    pub unit: Unit,
    /// The left column's samples: pprocess.
    pub ours: Vec<Sample>,
    /// The right column's samples: the baseline or the peer.
    pub theirs: Vec<Sample>,
    pub target: Option<Target>,
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn secs(samples: &[Sample]) -> Vec<f64> {
    samples.iter().map(|s| s.secs).collect()
}

fn min_max(values: &[f64]) -> (f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

impl Row {
    pub fn ours_median(&self) -> f64 {
        median(&mut secs(&self.ours))
    }

    pub fn theirs_median(&self) -> f64 {
        median(&mut secs(&self.theirs))
    }

    /// pprocess time / other time (for counts: pprocess value / other value).
    /// With paired repetitions (run back to back, as [`compare`] does) it is
    /// the median of the pairs' ratios, which a machine whose load drifts
    /// during the run disturbs less than a ratio of medians.
    ///
    /// [`compare`]: crate::compare
    pub fn ratio(&self) -> f64 {
        if self.section == "baseline" && self.ours.len() == self.theirs.len() {
            let mut pairs: Vec<f64> = self
                .ours
                .iter()
                .zip(&self.theirs)
                .map(|(a, b)| a.secs / b.secs)
                .collect();
            median(&mut pairs)
        } else {
            self.ours_median() / self.theirs_median()
        }
    }

    fn allocs(&self) -> f64 {
        median(&mut self.ours.iter().map(|s| s.allocs).collect::<Vec<_>>())
    }

    pub fn holds(&self) -> Option<bool> {
        Some(match self.target? {
            Target::AtMost(max) => self.ratio() <= max,
            Target::AtLeast(min) => 1.0 / self.ratio() >= min,
            Target::CountAtMost(max) => self.ours_median() <= max,
        })
    }

    fn spread(&self, samples: &[Sample]) -> String {
        if samples.len() < 2 {
            return String::new();
        }
        let (lo, hi) = min_max(&secs(samples));
        self.unit.show_range(lo, hi)
    }

    fn cells(&self) -> [String; CELLS] {
        let ratio = match self.ratio() {
            r if !r.is_finite() || r == 0.0 => String::new(),
            r if self.section == "python" && r <= 1.0 => format!("{:.1}× faster", 1.0 / r),
            r if self.section == "python" => format!("{r:.1}× slower"),
            r => format!("{r:.2}×"),
        };
        let verdict = match self.holds() {
            Some(true) => format!(
                "yes ({})",
                self.target.map(Target::show).unwrap_or_default()
            ),
            Some(false) => format!(
                "**NO** ({})",
                self.target.map(Target::show).unwrap_or_default()
            ),
            None => String::new(),
        };
        let allocs = match self.unit {
            Unit::Count(_) => String::new(),
            _ => format!("{:.2}", self.allocs()),
        };
        let theirs = if self.theirs.is_empty() {
            String::new()
        } else {
            self.unit.show(self.theirs_median())
        };
        [
            self.workload.clone(),
            self.unit.show(self.ours_median()),
            theirs,
            ratio,
            self.spread(&self.ours),
            self.spread(&self.theirs),
            allocs,
            verdict,
        ]
    }
}

/// The cells a row can show, in order.
pub const CELLS: usize = 8;

/// A titled group of rows with its columns: a name and which of the row's
/// cells (workload, pprocess, other, ratio, pprocess spread, other spread,
/// allocs/op, target) it shows.
pub struct Table {
    pub title: &'static str,
    pub columns: Vec<(&'static str, usize)>,
    pub rows: Vec<Row>,
    /// Printed under the table.
    pub note: &'static str,
}

/// Renders tables as Markdown (readable as plain text too).
pub fn markdown(tables: &[Table]) -> String {
    let mut out = String::new();
    for table in tables.iter().filter(|t| !t.rows.is_empty()) {
        let _ = writeln!(out, "\n### {}\n", table.title);
        let cells: Vec<Vec<String>> = table
            .rows
            .iter()
            .map(|row| {
                let all = row.cells();
                table.columns.iter().map(|&(_, i)| all[i].clone()).collect()
            })
            .collect();
        let mut widths: Vec<usize> = table.columns.iter().map(|c| c.0.chars().count()).collect();
        for row in &cells {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::from("|");
            for (cell, w) in cells.iter().zip(&widths) {
                let pad = w - cell.chars().count();
                let _ = write!(s, " {cell}{} |", " ".repeat(pad));
            }
            s
        };
        let names: Vec<String> = table.columns.iter().map(|c| c.0.to_string()).collect();
        let _ = writeln!(out, "{}", line(&names));
        let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
        let _ = writeln!(out, "{}", line(&rule).replace(' ', "-"));
        for row in &cells {
            let _ = writeln!(out, "{}", line(row));
        }
        if !table.note.is_empty() {
            let _ = writeln!(out, "\n{}", table.note);
        }
    }
    out
}

/// Writes every row as CSV (values in the row's unit).
pub fn write_csv(path: &Path, tables: &[Table]) -> std::io::Result<()> {
    let mut out = String::from(
        "section,workload,unit,pprocess_median,other_median,ratio_time,\
         pprocess_min,pprocess_max,other_min,other_max,pprocess_allocs_per_op,target,holds\n",
    );
    for row in tables.iter().flat_map(|t| &t.rows) {
        let (omin, omax) = min_max(&secs(&row.ours));
        let (tmin, tmax) = min_max(&secs(&row.theirs));
        let u = row.unit;
        let opt = |v: f64| {
            if v.is_finite() {
                format!("{}", u.value(v))
            } else {
                String::new()
            }
        };
        let _ = writeln!(
            out,
            "{},\"{}\",{},{},{},{},{},{},{},{},{},\"{}\",{}",
            row.section,
            row.workload,
            u.name(),
            opt(row.ours_median()),
            opt(row.theirs_median()),
            if row.theirs.is_empty() {
                String::new()
            } else {
                format!("{:.4}", row.ratio())
            },
            opt(omin),
            opt(omax),
            opt(tmin),
            opt(tmax),
            row.allocs(),
            row.target.map(Target::show).unwrap_or_default(),
            row.holds().map(|h| h.to_string()).unwrap_or_default(),
        );
    }
    std::fs::write(path, out)
}

/// Draws throughput (MB/s) by message size for pprocess and the baseline.
pub fn throughput_chart(path: &Path, rows: &[(usize, &Row)]) -> Result<(), String> {
    use plotters::prelude::*;

    let points = |pick: fn(&Row) -> f64| -> Vec<(f64, f64)> {
        rows.iter()
            .map(|&(size, row)| ((size as f64).log2(), row.unit.value(pick(row))))
            .collect()
    };
    let ours = points(Row::ours_median);
    let theirs = points(Row::theirs_median);
    let top = ours.iter().chain(&theirs).map(|p| p.1).fold(0.0, f64::max) * 1.15;
    let (lo, hi) = min_max(&ours.iter().map(|p| p.0).collect::<Vec<_>>());

    let root = SVGBackend::new(path, (760, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption("One-way throughput by message size", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(76)
        .build_cartesian_2d(lo - 1.0..hi + 1.0, 0.0..top)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("message size (log scale)")
        .y_desc("MB/s")
        .x_labels(((hi - lo) as usize + 3).min(16))
        .x_label_formatter(&|x| human_bytes(2f64.powf(*x)))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .light_line_style(WHITE)
        .draw()
        .map_err(|e| e.to_string())?;
    for (name, series, color) in [("pprocess", &ours, BLUE), ("libc baseline", &theirs, RED)] {
        chart
            .draw_series(LineSeries::new(
                series.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(series.iter().map(|&p| Circle::new(p, 4, color.filled())))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// 4096 → "4 KiB".
pub fn human_bytes(v: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB"];
    let mut v = v;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if (v - v.round()).abs() < 0.05 {
        format!("{:.0} {}", v, units[i])
    } else {
        format!("{:.1} {}", v, units[i])
    }
}
