//! Human-readable sizes and durations, byte-for-byte compatible with the
//! `github.com/docker/go-units` helpers the docker CLI prints with.

use std::time::Duration;

/// Decimal unit suffixes (`HumanSize`).
const DECIMAL_ABBRS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
/// Binary unit suffixes (`BytesSize`).
const BINARY_ABBRS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// Formats `v` like Go's `%.{prec}g` verb.
pub(crate) fn format_g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let prec = prec.max(1);
    // Round to `prec` significant digits first; the exponent decides the notation.
    let sci = format!("{:.*e}", prec - 1, v);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let prec_i = i32::try_from(prec).unwrap_or(i32::MAX);
    if exp < -4 || exp >= prec_i {
        let mantissa = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        let decimals = usize::try_from((prec_i - 1 - exp).max(0)).unwrap_or(0);
        trim_zeros(&format!("{v:.decimals$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

fn custom_size(size: f64, prec: usize, base: f64, abbrs: &[&str]) -> String {
    let mut size = size;
    let mut i = 0;
    while size >= base && i < abbrs.len() - 1 {
        size /= base;
        i += 1;
    }
    format!("{}{}", format_g(size, prec), abbrs[i])
}

/// go-units `HumanSizeWithPrecision`: decimal units (`1.98MB`).
pub(crate) fn human_size_prec(size: f64, prec: usize) -> String {
    custom_size(size, prec, 1000.0, &DECIMAL_ABBRS)
}

/// go-units `HumanSize`: decimal units with 4 significant digits.
pub(crate) fn human_size(size: f64) -> String {
    human_size_prec(size, 4)
}

/// go-units `BytesSize`: binary units with 4 significant digits (`1.5MiB`).
pub(crate) fn bytes_size(size: f64) -> String {
    custom_size(size, 4, 1024.0, &BINARY_ABBRS)
}

/// go-units `HumanDuration` (`Less than a second`, `About a minute`, `3 hours`).
pub(crate) fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    let minutes = seconds / 60;
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // Go: int(d.Hours() + 0.5), i.e. hours rounded half up.
    let hours =
        u64::try_from((d.as_nanos() + 1_800_000_000_000) / 3_600_000_000_000).unwrap_or(u64::MAX);
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", seconds / 3600 / 24 / 365)
}

/// Error from a size parser: the text that could not be parsed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SizeError(pub(crate) String);

fn parse_size(s: &str, binary: bool) -> Result<i64, SizeError> {
    let err = || SizeError(s.to_string());
    let t = s.trim();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, rest) = t.split_at(num_end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return Err(err());
    }
    let value: f64 = num.parse().map_err(|_| err())?;
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let mut chars = rest.chars().peekable();
    let mut mult: f64 = 1.0;
    let base: f64 = if binary { 1024.0 } else { 1000.0 };
    if let Some(c) = chars.peek().copied() {
        let power = match c.to_ascii_lowercase() {
            'k' => Some(1),
            'm' => Some(2),
            'g' => Some(3),
            't' => Some(4),
            'p' => Some(5),
            _ => None,
        };
        if let Some(p) = power {
            mult = base.powi(p);
            chars.next();
        }
    }
    // Optional `i` then optional `b` (go-units accepts `Mi`, `MiB`, `MB`, `m`).
    if matches!(chars.peek(), Some('i' | 'I')) {
        chars.next();
    }
    if matches!(chars.peek(), Some('b' | 'B')) {
        chars.next();
    }
    if chars.next().is_some() {
        return Err(err());
    }
    let bytes = value * mult;
    if !bytes.is_finite() || bytes > i64::MAX as f64 {
        return Err(err());
    }
    // In range (checked above); the fraction of a byte is dropped like go-units does.
    #[allow(clippy::cast_possible_truncation)]
    let whole = bytes as i64;
    Ok(whole)
}

/// go-units `RAMInBytes`: `32m`, `1g`, `512k`, `1.5GiB` with binary multipliers.
pub(crate) fn ram_in_bytes(s: &str) -> Result<i64, SizeError> {
    parse_size(s, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_size_matches_go_units() {
        assert_eq!(human_size_prec(1_983_000.0, 3), "1.98MB");
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(999.0), "999B");
        assert_eq!(human_size(1000.0), "1kB");
        assert_eq!(human_size(1_000_000.0), "1MB");
        assert_eq!(human_size(1_234_567.0), "1.235MB");
        assert_eq!(human_size_prec(4_100_000_000.0, 3), "4.1GB");
        assert_eq!(human_size_prec(123.0, 3), "123B");
    }

    #[test]
    fn bytes_size_uses_binary_units() {
        assert_eq!(bytes_size(1024.0), "1KiB");
        assert_eq!(bytes_size(1536.0 * 1024.0), "1.5MiB");
        assert_eq!(bytes_size(0.0), "0B");
    }

    #[test]
    fn format_g_switches_to_exponent_like_go() {
        assert_eq!(format_g(999.96, 4), "1000");
        assert_eq!(format_g(999.96, 3), "1e+03");
        assert_eq!(format_g(0.5, 3), "0.5");
        assert_eq!(format_g(12.0, 3), "12");
    }

    #[test]
    fn human_duration_matches_go_units() {
        let s = Duration::from_secs;
        assert_eq!(
            human_duration(Duration::from_millis(200)),
            "Less than a second"
        );
        assert_eq!(human_duration(s(1)), "1 second");
        assert_eq!(human_duration(s(47)), "47 seconds");
        assert_eq!(human_duration(s(60)), "About a minute");
        assert_eq!(human_duration(s(59 * 60)), "59 minutes");
        assert_eq!(human_duration(s(3600)), "About an hour");
        assert_eq!(human_duration(s(3 * 3600)), "3 hours");
        assert_eq!(human_duration(s(3 * 86400)), "3 days");
        assert_eq!(human_duration(s(20 * 86400)), "2 weeks");
        assert_eq!(human_duration(s(90 * 86400)), "3 months");
        assert_eq!(human_duration(s(800 * 86400)), "2 years");
    }

    #[test]
    fn ram_in_bytes_parses_docker_memory_flags() {
        assert_eq!(ram_in_bytes("32m"), Ok(32 * 1024 * 1024));
        assert_eq!(ram_in_bytes("1g"), Ok(1024 * 1024 * 1024));
        assert_eq!(ram_in_bytes("512"), Ok(512));
        assert_eq!(ram_in_bytes("1.5GiB"), Ok(1_610_612_736));
        assert_eq!(ram_in_bytes("10 MB"), Ok(10 * 1024 * 1024));
        assert_eq!(ram_in_bytes("abc"), Err(SizeError("abc".into())));
        assert_eq!(ram_in_bytes("12x"), Err(SizeError("12x".into())));
        assert!(ram_in_bytes("").is_err());
    }
}

/// Parses a Go duration (`1h30m`, `10s`, `250ms`).
pub(crate) fn parse_go_duration(s: &str) -> Option<Duration> {
    corral_core::duration::parse_go_duration(s)
        .and_then(|ns| u64::try_from(ns).ok())
        .map(Duration::from_nanos)
}

/// docker's `GetTimestamp`: a Go duration before `now`, unix seconds, or an RFC 3339
/// time (date-only forms allowed); returns unix seconds.
pub(crate) fn parse_timestamp(value: &str, now_unix: i64) -> Option<i64> {
    if let Some(d) = parse_go_duration(value) {
        return Some(now_unix - i64::try_from(d.as_secs()).ok()?);
    }
    if let Ok(secs) = value.split('.').next().unwrap_or(value).parse::<i64>() {
        if value.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return Some(secs);
        }
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Some(t.timestamp());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(value, fmt) {
            return Some(t.and_utc().timestamp());
        }
    }
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
}

#[cfg(test)]
mod time_tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_go_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("x"), None);
    }

    #[test]
    fn parses_docker_timestamps() {
        assert_eq!(parse_timestamp("10m", 1000), Some(400));
        assert_eq!(parse_timestamp("1700000000", 0), Some(1_700_000_000));
        assert_eq!(
            parse_timestamp("2024-01-02T03:04:05Z", 0),
            Some(1_704_164_645)
        );
        assert_eq!(parse_timestamp("2024-01-02", 0), Some(1_704_153_600));
        assert_eq!(parse_timestamp("yesterday", 0), None);
    }
}
