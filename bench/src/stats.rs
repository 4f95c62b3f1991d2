//! Samples and their summaries.

use serde::Serialize;

/// Which way a figure improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) enum Better {
    /// Times, bytes.
    Lower,
    /// Rates.
    Higher,
}

/// Summary statistics of one series.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Summary {
    pub(crate) n: usize,
    pub(crate) min: f64,
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

/// The `q` quantile (0..=1) of sorted samples, nearest rank.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0);
    // `rank` is in 1..=len: the float-to-int conversion is exact for any realistic count.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let idx = (rank as usize).min(sorted.len()) - 1;
    sorted[idx]
}

/// Summarises `samples` (NaNs are dropped).
pub(crate) fn summarize(samples: &[f64]) -> Summary {
    let mut s: Vec<f64> = samples.iter().copied().filter(|v| !v.is_nan()).collect();
    s.sort_by(f64::total_cmp);
    Summary {
        n: s.len(),
        min: s.first().copied().unwrap_or(f64::NAN),
        p50: quantile(&s, 0.5),
        p90: quantile(&s, 0.9),
        p99: quantile(&s, 0.99),
        max: s.last().copied().unwrap_or(f64::NAN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        let s = summarize(&v);
        assert_eq!(
            (s.n, s.min, s.p50, s.p90, s.p99, s.max),
            (10, 1.0, 5.0, 9.0, 10.0, 10.0)
        );
        let one = summarize(&[3.0]);
        assert_eq!((one.p50, one.p99), (3.0, 3.0));
        assert!(summarize(&[]).p50.is_nan());
    }
}
