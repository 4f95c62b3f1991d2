//! Collected figures, the markdown table, the raw JSON and the gnuplot plot.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::engines::REFERENCE;
use crate::stats::{summarize, Better, Summary};

/// The statistic a table row shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) enum Stat {
    /// Median.
    P50,
    /// 90th percentile.
    P90,
    /// 99th percentile.
    P99,
}

impl Stat {
    fn pick(self, s: &Summary) -> f64 {
        match self {
            Stat::P50 => s.p50,
            Stat::P90 => s.p90,
            Stat::P99 => s.p99,
        }
    }
}

/// One row of the report: a figure measured per engine.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Metric {
    /// Stable key, also used by targets and the plot.
    pub(crate) key: String,
    /// Human title.
    pub(crate) title: String,
    /// Unit of the samples.
    pub(crate) unit: &'static str,
    /// Which way is better.
    pub(crate) better: Better,
    /// The statistic the table shows.
    pub(crate) stat: Stat,
    /// Raw samples per engine.
    pub(crate) samples: BTreeMap<String, Vec<f64>>,
}

/// A target from issue 7, on the ratio Corral ÷ dockerd of one metric.
struct Target {
    key: &'static str,
    text: &'static str,
    /// `true`: ratio must be ≤ limit; `false`: ≥ limit.
    at_most: bool,
    limit: f64,
}

const TARGETS: &[Target] = &[
    Target {
        key: "run_rm_p50",
        text: "run latency median ≤ 0.4",
        at_most: true,
        limit: 0.4,
    },
    Target {
        key: "start_c4",
        text: "start throughput at concurrency 4 ≥ 2.0",
        at_most: false,
        limit: 2.0,
    },
    Target {
        key: "idle_rss",
        text: "idle RSS ≤ 0.25",
        at_most: true,
        limit: 0.25,
    },
    Target {
        key: "per_container_rss",
        text: "per-container RSS ≤ 0.5",
        at_most: true,
        limit: 0.5,
    },
    // `ps -a` p99: evaluated on the Rust API client's `GET /containers/json?all=1` (the
    // engine's answer plus a small fixed client cost). The docker CLI figure adds the same
    // CLI start-up and table rendering (~20-30 ms) to both engines, which pulls any ratio
    // towards 1; it is shown as the reference, as for the run-latency floor target.
    Target {
        key: "ps_api_p99",
        text: "`ps -a` p99 with many containers ≤ 0.5, Rust API client (**the target**)",
        at_most: true,
        limit: 0.5,
    },
    Target {
        key: "ps_p99",
        text: "`ps -a` p99 with many containers ≤ 0.5, docker CLI (reference only)",
        at_most: true,
        limit: 0.5,
    },
    Target {
        key: "pull_cold",
        text: "cold pull time ≤ 1.0",
        at_most: true,
        limit: 1.0,
    },
    Target {
        key: "logs_mibs",
        text: "log throughput ≥ 1.0",
        at_most: false,
        limit: 1.0,
    },
];

/// Everything one run measured.
#[derive(Debug, Serialize)]
pub(crate) struct Results {
    /// `full` or `smoke`.
    pub(crate) mode: String,
    /// Engines in column order.
    pub(crate) engines: Vec<String>,
    /// Free-form facts about the run (sizes, versions).
    pub(crate) notes: Vec<String>,
    /// The figures, in report order.
    pub(crate) metrics: Vec<Metric>,
}

impl Results {
    /// Adds `samples` for `engine` to metric `key`, creating the metric on first use.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add(
        &mut self,
        key: &str,
        title: &str,
        unit: &'static str,
        better: Better,
        stat: Stat,
        engine: &str,
        samples: Vec<f64>,
    ) {
        let idx = match self.metrics.iter().position(|m| m.key == key) {
            Some(i) => i,
            None => {
                self.metrics.push(Metric {
                    key: key.to_owned(),
                    title: title.to_owned(),
                    unit,
                    better,
                    stat,
                    samples: BTreeMap::new(),
                });
                self.metrics.len() - 1
            }
        };
        self.metrics[idx]
            .samples
            .entry(engine.to_owned())
            .or_default()
            .extend(samples);
    }

    fn headline(&self, key: &str, engine: &str) -> Option<f64> {
        let m = self.metrics.iter().find(|m| m.key == key)?;
        let s = m.samples.get(engine)?;
        let v = m.stat.pick(&summarize(s));
        (!v.is_nan()).then_some(v)
    }

    /// `engine ÷ dockerd` of the headline statistic of `key`.
    fn ratio(&self, key: &str, engine: &str) -> Option<f64> {
        let a = self.headline(key, engine)?;
        let b = self.headline(key, REFERENCE)?;
        (b != 0.0).then_some(a / b)
    }

    /// The markdown report.
    pub(crate) fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# Corral benchmark ({})\n", self.mode);
        for n in &self.notes {
            let _ = writeln!(out, "- {n}");
        }
        let others: Vec<&String> = self.engines.iter().filter(|e| *e != REFERENCE).collect();
        let _ = writeln!(
            out,
            "\nEach cell: headline statistic (min–max) over the samples. Ratios are engine ÷ {REFERENCE} of the headline.\n"
        );
        let mut head = String::from("| figure | stat | kernel |");
        let mut rule = String::from("|---|---|---|");
        for e in &self.engines {
            let _ = write!(head, " {e} |");
            rule.push_str("---|");
        }
        for e in &others {
            let _ = write!(head, " {e} ÷ {REFERENCE} |");
            rule.push_str("---|");
        }
        let _ = writeln!(out, "{head}\n{rule}");
        for m in &self.metrics {
            let stat = match m.stat {
                Stat::P50 => "p50",
                Stat::P90 => "p90",
                Stat::P99 => "p99",
            };
            let better = match m.better {
                Better::Lower => "↓",
                Better::Higher => "↑",
            };
            let _ = write!(out, "| {} ({}{better}) | {stat} |", m.title, m.unit);
            let cell = |e: &str| match m.samples.get(e) {
                Some(s) if !s.is_empty() => {
                    let sm = summarize(s);
                    format!(
                        " {} ({}–{}) n={} |",
                        fmt(m.stat.pick(&sm)),
                        fmt(sm.min),
                        fmt(sm.max),
                        sm.n
                    )
                }
                _ => " – |".to_owned(),
            };
            out.push_str(&cell("kernel"));
            for e in &self.engines {
                out.push_str(&cell(e));
            }
            for e in &others {
                match self.ratio(&m.key, e) {
                    Some(r) => {
                        let _ = write!(out, " {r:.2} |");
                    }
                    None => out.push_str(" – |"),
                }
            }
            out.push('\n');
        }
        let _ = writeln!(out, "\n## Targets (issue 7, Corral ÷ {REFERENCE})\n");
        let _ = writeln!(
            out,
            "| target | corral | met | corral-runc | met |\n|---|---|---|---|---|"
        );
        for t in TARGETS {
            let _ = write!(out, "| {} |", t.text);
            for e in ["corral", "corral-runc"] {
                match self.ratio(t.key, e) {
                    Some(r) => {
                        let met = if t.at_most {
                            r <= t.limit
                        } else {
                            r >= t.limit
                        };
                        let _ = write!(out, " {r:.2} | {} |", if met { "yes" } else { "**no**" });
                    }
                    None if t.key == "logs_mibs" => {
                        // No ratio when a follow lost output: say how much each delivered.
                        let d = |x: &str| {
                            self.headline("logs_delivered", x)
                                .map_or("–".to_owned(), |v| format!("{v:.1} %"))
                        };
                        let _ = write!(
                            out,
                            " no ratio: `logs -f` delivered {REFERENCE} {}, {e} {} | – |",
                            d(REFERENCE),
                            d(e)
                        );
                    }
                    None => out.push_str(" – | – |"),
                }
            }
            out.push('\n');
        }
        // Run latency against the kernel floor sum: evaluated on the API-level figure (no CLI),
        // the CLI figure beside it for reference.
        let floor = self.headline("floor_sum", "kernel");
        for (key, text) in [
            (
                "run_api_p50",
                "run latency median, Rust API client ≤ 3 × kernel floor sum (**the target**)",
            ),
            (
                "run_rm_p50",
                "run latency median, docker CLI ≤ 3 × kernel floor sum (reference only)",
            ),
        ] {
            let _ = write!(out, "| {text} |");
            for e in ["corral", "corral-runc"] {
                match (self.headline(key, e), floor) {
                    (Some(run), Some(f)) if f > 0.0 => {
                        let x = run / f;
                        let _ = write!(
                            out,
                            " {x:.1}× | {} |",
                            if x <= 3.0 { "yes" } else { "**no**" }
                        );
                    }
                    _ => out.push_str(" – | – |"),
                }
            }
            out.push('\n');
        }
        out
    }

    /// Writes `<stem>.md`, `<stem>.json` and, when gnuplot is installed, `<stem>.png`.
    pub(crate) fn write(&self, dir: &Path, stem: &str) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        std::fs::write(dir.join(format!("{stem}.md")), self.markdown())?;
        std::fs::write(
            dir.join(format!("{stem}.json")),
            serde_json::to_vec_pretty(self)?,
        )?;
        self.plot(dir, stem)
    }

    /// Draws run latency distributions (box plots) and start throughput per concurrency.
    fn plot(&self, dir: &Path, stem: &str) -> Result<()> {
        if Command::new("gnuplot").arg("--version").output().is_err() {
            eprintln!("bench: gnuplot not found (Debian gnuplot-nox): no plot drawn");
            return Ok(());
        }
        let data = tempfile::Builder::new()
            .prefix("corral-bench-plot-")
            .tempdir()?;
        let mut lat = String::new();
        let mut labels = Vec::new();
        if let Some(m) = self.metrics.iter().find(|m| m.key == "run_rm_p50") {
            for (i, e) in self.engines.iter().enumerate() {
                for v in m.samples.get(e).into_iter().flatten() {
                    let _ = writeln!(lat, "{} {v}", i + 1);
                }
                labels.push(format!("\"{e}\" {}", i + 1));
            }
        }
        std::fs::write(data.path().join("lat.dat"), lat)?;
        let mut thr = String::from("conc");
        for e in &self.engines {
            let _ = write!(thr, " {e}");
        }
        thr.push('\n');
        for c in [1, 4, 16] {
            let key = format!("start_c{c}");
            let _ = write!(thr, "{c}");
            for e in &self.engines {
                let v = self.headline(&key, e).unwrap_or(0.0);
                let _ = write!(thr, " {v}");
            }
            thr.push('\n');
        }
        std::fs::write(data.path().join("thr.dat"), thr)?;
        let png = dir.join(format!("{stem}.png"));
        let mut cols = String::new();
        for i in 0..self.engines.len() {
            if i > 0 {
                cols.push_str(", ");
            }
            let _ = write!(
                cols,
                "'{}' using {}:xtic(1) title columnheader",
                data.path().join("thr.dat").display(),
                i + 2
            );
        }
        let script = format!(
            "set terminal png size 1200,500\nset output '{png}'\nset multiplot layout 1,2\n\
             set title 'docker run --rm true: latency (ms)'\nset style boxplot outliers pointtype 7\n\
             set style fill solid 0.3\nunset key\nset xtics ({labels})\nset xrange [0.5:{xmax}.5]\nset yrange [0:*]\n\
             plot for [i=1:{xmax}] '{lat}' using (i):($1==i?$2:1/0):(0.5) with boxplot\n\
             set title 'run -d sleep: containers/s by concurrency'\nset style data histogram\nset style histogram cluster gap 1\n\
             set key top left\nset autoscale x\nset xtics auto\nset yrange [0:*]\nplot {cols}\nunset multiplot\n",
            xmax = self.engines.len(),
            png = png.display(),
            labels = labels.join(", "),
            lat = data.path().join("lat.dat").display(),
        );
        let script_path = data.path().join("plot.gp");
        std::fs::write(&script_path, script)?;
        let out = Command::new("gnuplot")
            .arg(&script_path)
            .output()
            .context("run gnuplot")?;
        if !out.status.success() {
            // The table and JSON are the results; a plot problem must not lose them.
            eprintln!(
                "bench: gnuplot failed, no plot: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }
}

/// Three significant-ish digits.
fn fmt(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_ratios_and_target_verdicts() {
        let mut r = Results {
            mode: "test".into(),
            engines: vec!["dockerd".into(), "corral".into()],
            notes: vec![],
            metrics: vec![],
        };
        r.add(
            "run_rm_p50",
            "run",
            "ms",
            Better::Lower,
            Stat::P50,
            "dockerd",
            vec![100.0, 200.0, 300.0],
        );
        r.add(
            "run_rm_p50",
            "run",
            "ms",
            Better::Lower,
            Stat::P50,
            "corral",
            vec![30.0, 40.0, 50.0],
        );
        r.add(
            "floor_sum",
            "floor",
            "ms",
            Better::Lower,
            Stat::P50,
            "kernel",
            vec![10.0],
        );
        r.add(
            "logs_mibs",
            "logs",
            "MiB/s",
            Better::Higher,
            Stat::P50,
            "dockerd",
            vec![100.0],
        );
        r.add(
            "logs_mibs",
            "logs",
            "MiB/s",
            Better::Higher,
            Stat::P50,
            "corral",
            vec![50.0],
        );
        r.add(
            "run_api_p50",
            "api",
            "ms",
            Better::Lower,
            Stat::P50,
            "corral",
            vec![25.0],
        );
        r.add(
            "logs_delivered",
            "delivered",
            "%",
            Better::Higher,
            Stat::P50,
            "dockerd",
            vec![88.1],
        );
        for (key, d, c) in [("ps_api_p99", 40.0, 10.0), ("ps_p99", 80.0, 45.0)] {
            r.add(key, key, "ms", Better::Lower, Stat::P99, "dockerd", vec![d]);
            r.add(key, key, "ms", Better::Lower, Stat::P99, "corral", vec![c]);
        }
        let md = r.markdown();
        assert!(
            md.contains(
                "| `ps -a` p99 with many containers ≤ 0.5, Rust API client (**the target**) | 0.25 | yes |"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "| `ps -a` p99 with many containers ≤ 0.5, docker CLI (reference only) | 0.56 | **no** |"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "| run latency median, Rust API client ≤ 3 × kernel floor sum (**the target**) | 2.5× | yes |"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "| run (ms↓) | p50 | – | 200 (100–300) n=3 | 40.0 (30.0–50.0) n=3 | 0.20 |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| run latency median ≤ 0.4 | 0.20 | yes |"),
            "{md}"
        );
        assert!(
            md.contains("| log throughput ≥ 1.0 | 0.50 | **no** |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| run latency median, docker CLI ≤ 3 × kernel floor sum (reference only) | 4.0× | **no** |"
            ),
            "{md}"
        );
    }
}
