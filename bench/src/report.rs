//! Statistics, the printed table and its JSON twin.

use std::time::Duration;

use serde_json::{json, Map, Value};

/// Column order of the table; ratios are husk over each peer.
pub const NAMES: [&str; 3] = ["husk", "runc", "crun"];

pub enum Cell {
    /// Timings in ms; `samples` in round order.
    Time {
        median: f64,
        p90: f64,
        p99: f64,
        samples: Vec<f64>,
    },
    /// A size or RSS: the raw number for JSON, its display form for the table.
    Amount { raw: u64, shown: String },
    /// The 512 KiB test: Ok or the error line.
    Verdict(Result<(), String>),
    /// No value: "not installed", or why the metric failed.
    Missing(String),
    /// Shown as is, no ratio (mount counts); also the JSON value as a string.
    Text(String),
}

/// The spread a time row shows next to its median, and whether its ratios compare p99.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// median / p90; ratios of medians.
    P90,
    /// p50 / p99; ratios of p99.
    P99,
}

impl Cell {
    pub fn time(samples: &[Duration]) -> Cell {
        if samples.is_empty() {
            return Cell::Missing("no samples".into());
        }
        let samples: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        let mut ms = samples.clone();
        ms.sort_by(f64::total_cmp);
        let n = ms.len();
        let median = if n % 2 == 1 {
            ms[n / 2]
        } else {
            (ms[n / 2 - 1] + ms[n / 2]) / 2.0
        };
        // Nearest-rank p90.
        let p90 = ms[(n * 9).div_ceil(10) - 1];
        let p99 = ms[(n * 99).div_ceil(100) - 1];
        Cell::Time {
            median,
            p90,
            p99,
            samples,
        }
    }

    pub fn mib(raw: u64, per_mib: u64) -> Cell {
        let shown = format!("{:.2}", raw as f64 / per_mib as f64);
        Cell::Amount { raw, shown }
    }

    /// What ratios compare: the median, or p99 for a [`Tail::P99`] row.
    fn primary(&self, tail: Tail) -> Option<f64> {
        match self {
            Cell::Time { p99, .. } if tail == Tail::P99 => Some(*p99),
            Cell::Time { median, .. } => Some(*median),
            Cell::Amount { raw, .. } => Some(*raw as f64),
            _ => None,
        }
    }

    fn shown(&self, tail: Tail) -> String {
        match self {
            Cell::Time { median, p99, .. } if tail == Tail::P99 => {
                format!("{median:.2} / {p99:.2}")
            }
            Cell::Time { median, p90, .. } => format!("{median:.2} / {p90:.2}"),
            Cell::Text(t) => t.clone(),
            Cell::Amount { shown, .. } => shown.clone(),
            Cell::Verdict(Ok(())) => "ok".into(),
            Cell::Verdict(Err(_)) => "FAILED".into(),
            Cell::Missing(why) if why == "not installed" => "-".into(),
            Cell::Missing(_) => "failed".into(),
        }
    }

    fn json(&self) -> Value {
        match self {
            Cell::Time {
                median,
                p90,
                p99,
                samples,
            } => json!({
                "median_ms": round3(*median),
                "p90_ms": round3(*p90),
                "p99_ms": round3(*p99),
                "n": samples.len(),
                "samples_ms": samples.iter().copied().map(round3).collect::<Vec<_>>(),
            }),
            Cell::Amount { raw, .. } => json!(raw),
            Cell::Verdict(Ok(())) => json!({"ok": true}),
            Cell::Verdict(Err(e)) => json!({"ok": false, "error": e}),
            Cell::Missing(why) => json!({"missing": why}),
            Cell::Text(t) => json!(t),
        }
    }
}

pub struct Row {
    pub key: String,
    pub label: String,
    /// Whether husk/peer ratios mean anything for this row.
    pub ratios: bool,
    pub tail: Tail,
    /// One cell per entry of [`NAMES`].
    pub cells: [Cell; 3],
}

impl Row {
    fn ratio(&self, peer: usize) -> Option<f64> {
        if !self.ratios {
            return None;
        }
        let (h, p) = (
            self.cells[0].primary(self.tail)?,
            self.cells[peer].primary(self.tail)?,
        );
        (p > 0.0).then(|| h / p)
    }
}

fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

fn ratio_text(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{r:.2}x"))
}

pub fn print_table(rows: &[Row]) {
    let w = 18;
    println!(
        "{:<38}{:>w$}{:>w$}{:>w$}{:>11}{:>11}",
        "metric", NAMES[0], NAMES[1], NAMES[2], "husk/crun", "husk/runc"
    );
    for row in rows {
        let [a, b, c] = &row.cells;
        println!(
            "{:<38}{:>w$}{:>w$}{:>w$}{:>11}{:>11}",
            row.label,
            a.shown(row.tail),
            b.shown(row.tail),
            c.shown(row.tail),
            ratio_text(row.ratio(2)),
            ratio_text(row.ratio(1)),
        );
    }
    // Each failure once, under the rows it emptied (one failed batch empties four rows).
    let mut failures: Vec<(&str, &str, Vec<&str>)> = Vec::new();
    for row in rows {
        for (name, cell) in NAMES.iter().zip(&row.cells) {
            let why = match cell {
                Cell::Verdict(Err(e)) => e,
                Cell::Missing(why) if why != "not installed" => why,
                _ => continue,
            };
            let label = row.label.trim();
            match failures.iter_mut().find(|(n, w, _)| n == name && w == why) {
                Some((_, _, labels)) => labels.push(label),
                None => failures.push((name, why, vec![label])),
            }
        }
    }
    for (name, why, labels) in failures {
        println!("{name} ({}): {why}", labels.join(", "));
    }
}

/// The rows, in table order, with their ratios, as `header["metrics"]`.
pub fn to_json(mut header: Map<String, Value>, rows: &[Row]) -> Value {
    let mut metrics = Vec::new();
    for row in rows {
        let mut m = Map::new();
        m.insert("key".into(), json!(row.key));
        m.insert("label".into(), json!(row.label.trim()));
        for (name, cell) in NAMES.iter().zip(&row.cells) {
            m.insert((*name).into(), cell.json());
        }
        m.insert("husk/crun".into(), json!(row.ratio(2).map(round3)));
        m.insert("husk/runc".into(), json!(row.ratio(1).map(round3)));
        metrics.push(Value::Object(m));
    }
    header.insert("metrics".into(), Value::Array(metrics));
    Value::Object(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_nearest_rank_p90() {
        let samples: Vec<Duration> = (1..=10).map(Duration::from_millis).collect();
        match Cell::time(&samples) {
            Cell::Time {
                median,
                p90,
                samples,
                ..
            } => {
                assert_eq!(samples.len(), 10);
                assert!((median - 5.5).abs() < 1e-9, "median {median}");
                assert!((p90 - 9.0).abs() < 1e-9, "p90 {p90}");
            }
            _ => panic!("expected timings"),
        }
    }

    #[test]
    fn ratio_needs_both_values() {
        let row = Row {
            key: "k".into(),
            label: "k".into(),
            ratios: true,
            tail: Tail::P90,
            cells: [
                Cell::mib(2048, 1024),
                Cell::Missing("not installed".into()),
                Cell::mib(4096, 1024),
            ],
        };
        assert_eq!(row.ratio(2), Some(0.5));
        assert_eq!(row.ratio(1), None);
    }
}
