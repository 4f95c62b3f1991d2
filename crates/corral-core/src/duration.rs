//! Go's duration syntax (`time.ParseDuration`), which Docker uses for every duration it takes
//! as text: health-check flags and `HEALTHCHECK` options, compose durations, `since`/`until`
//! filters, `--stop-timeout`-like CLI flags.

/// Parses a Go duration into nanoseconds: an optional sign, then one or more decimal numbers
/// each followed by a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), e.g. `1h30m`, `1.5s`,
/// `-2s`; a bare `0` is zero. `None` for anything else (a number without a unit, an unknown
/// unit, an empty string) or a value beyond ±292 years, as Go refuses it.
pub fn parse_go_duration(s: &str) -> Option<i64> {
    let (negative, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&n| n > 0)?;
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "h" => 3_600e9,
            "m" => 60e9,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" | "μs" => 1e3,
            "ns" => 1.0,
            _ => return None,
        };
        rest = &rest[u..];
        total += value * unit;
    }
    if total > 9.2e18 {
        return None;
    }
    // Bounded above, so the conversion is exact to the nanosecond Go keeps.
    #[allow(clippy::cast_possible_truncation)]
    let ns = total.round() as i64;
    Some(if negative { -ns } else { ns })
}

#[cfg(test)]
mod tests {
    use super::parse_go_duration as p;

    #[test]
    fn parses_like_go() {
        assert_eq!(p("1s"), Some(1_000_000_000));
        assert_eq!(p("1m30s"), Some(90_000_000_000));
        assert_eq!(p("1h30m"), Some(5_400_000_000_000));
        assert_eq!(p("500ms"), Some(500_000_000));
        assert_eq!(p("1.5s"), Some(1_500_000_000));
        assert_eq!(p("10us"), Some(10_000));
        assert_eq!(p("10µs"), Some(10_000));
        assert_eq!(p("7ns"), Some(7));
        assert_eq!(p("0"), Some(0));
        assert_eq!(p("-2s"), Some(-2_000_000_000));
        assert_eq!(p("+2s"), Some(2_000_000_000));
        for bad in ["", "10", "x", "5x", "1s2", "s", "-", "99999999999h"] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
    }
}
