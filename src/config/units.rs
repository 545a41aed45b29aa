//! Parsers for the units promotion.yml speaks: Kubernetes quantities (`50m`, `64Mi`), durations
//! (`10m`, `500ms`, a bare number of minutes as in Azure/k8s-deploy's `timeout`), percentages and
//! int-or-percent values (`25%`, `1`) for rollout surge settings.

use std::fmt;
use std::time::Duration;

/// A Kubernetes resource quantity, kept as written (that is what gets applied) with its value in
/// base units (cores or bytes) for comparisons such as "limits are not below requests".
#[derive(Debug, Clone, PartialEq)]
pub struct Quantity {
    pub text: String,
    pub value: f64,
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Parses the quantity grammar of k8s.io/apimachinery `resource.ParseQuantity`: a signed decimal
/// number followed by a binary suffix (Ki … Ei), a decimal suffix (n u m k M G T P E) or an
/// exponent (`e3`). Negative quantities are refused: no resource request can be negative.
pub fn parse_quantity(text: &str) -> Result<Quantity, String> {
    let expected = "a Kubernetes quantity such as `50m`, `0.5`, `64Mi` or `1Gi`";
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && !number.is_empty())
        .ok_or_else(|| format!("expected {expected}, found {text:?}"))?;
    let multiplier = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        s if s.starts_with(['e', 'E']) => {
            let exp: i32 = s[1..]
                .parse()
                .map_err(|_| format!("expected {expected}, found {text:?}"))?;
            10f64.powi(exp)
        }
        other => {
            let hint = match other.to_ascii_lowercase().as_str() {
                "mb" | "mib" => " (write `Mi` for mebibytes or `M` for megabytes)",
                "gb" | "gib" => " (write `Gi` for gibibytes or `G` for gigabytes)",
                "kb" | "kib" => " (write `Ki` for kibibytes or `k` for kilobytes)",
                _ => "",
            };
            return Err(format!(
                "expected {expected}, found {text:?}: unknown suffix `{other}`{hint}"
            ));
        }
    };
    if number < 0.0 {
        return Err(format!(
            "expected {expected}, found a negative quantity {text:?}"
        ));
    }
    Ok(Quantity {
        text: text.to_string(),
        value: number * multiplier,
    })
}

/// Parses `500ms`, `30s`, `10m`, `1h`, `1h30m` or a bare number of minutes (k8s-deploy's rule for
/// `timeout`, which our users already write).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let expected = "a duration such as `30s`, `10m`, `1h30m` or a number of minutes";
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("expected {expected}, found an empty string"));
    }
    if let Ok(minutes) = text.parse::<f64>() {
        if !(minutes.is_finite() && minutes >= 0.0) {
            return Err(format!("expected {expected}, found {text:?}"));
        }
        return Duration::try_from_secs_f64(minutes * 60.0)
            .map_err(|_| format!("expected {expected}, found {text:?}: too long"));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("expected {expected}, found {text:?}: missing unit"))?;
        let (number, tail) = rest.split_at(digits);
        let number: f64 = number
            .parse()
            .map_err(|_| format!("expected {expected}, found {text:?}"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, after) = tail.split_at(unit_len);
        let seconds = match unit {
            "ms" => number / 1000.0,
            "s" => number,
            "m" => number * 60.0,
            "h" => number * 3600.0,
            "d" => number * 86400.0,
            other => {
                return Err(format!(
                    "expected {expected}, found {text:?}: unknown unit `{other}` (use ms, s, m, h or d)"
                ));
            }
        };
        total = Duration::try_from_secs_f64(seconds)
            .ok()
            .and_then(|d| total.checked_add(d))
            .ok_or_else(|| format!("expected {expected}, found {text:?}: too long"))?;
        rest = after;
    }
    Ok(total)
}

/// Formats a duration the way it is written in promotion.yml (`10m`, `1h30m`, `500ms`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let mut secs = d.as_secs();
    let mut out = String::new();
    for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// Parses `0.1%`, `99.9%` or a bare number, both read as percent, into a percentage in 0..=100.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches('%').trim();
    number
        .parse::<f64>()
        .ok()
        .filter(|p| (0.0..=100.0).contains(p))
        .ok_or_else(|| {
            format!("expected a percentage between 0% and 100% such as `0.1%`, found {text:?}")
        })
}

/// `maxSurge` / `maxUnavailable`: an absolute number of pods or a percentage, as Kubernetes takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntOrPercent {
    Int(u32),
    Percent(u32),
}

impl IntOrPercent {
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            IntOrPercent::Int(n) => serde_json::json!(n),
            IntOrPercent::Percent(p) => serde_json::json!(format!("{p}%")),
        }
    }

    pub fn is_zero(&self) -> bool {
        matches!(self, IntOrPercent::Int(0) | IntOrPercent::Percent(0))
    }
}

impl fmt::Display for IntOrPercent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrPercent::Int(n) => write!(f, "{n}"),
            IntOrPercent::Percent(p) => write!(f, "{p}%"),
        }
    }
}

pub fn parse_int_or_percent(text: &str) -> Result<IntOrPercent, String> {
    let expected = "a number of pods such as `1` or a percentage such as `25%`";
    if let Some(p) = text.strip_suffix('%') {
        return p
            .parse::<u32>()
            .ok()
            .filter(|p| *p <= 100)
            .map(IntOrPercent::Percent)
            .ok_or_else(|| format!("expected {expected}, found {text:?}"));
    }
    text.parse::<u32>()
        .map(IntOrPercent::Int)
        .map_err(|_| format!("expected {expected}, found {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_to_base_units() {
        let cases: &[(&str, f64)] = &[
            ("50m", 0.05),
            ("1", 1.0),
            ("0.5", 0.5),
            ("64Mi", 64.0 * 1024.0 * 1024.0),
            ("1Gi", 1024f64.powi(3)),
            ("128M", 128e6),
            ("1e3", 1000.0),
            ("2k", 2000.0),
        ];
        for (text, want) in cases {
            let q = parse_quantity(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(
                (q.value - want).abs() < 1e-9 * want.max(1.0),
                "{text}: {}",
                q.value
            );
            assert_eq!(q.text, *text);
        }
    }

    #[test]
    fn bad_quantities_are_explained() {
        for (text, needle) in [
            ("64MB", "write `Mi`"),
            ("abc", "expected a Kubernetes quantity"),
            ("", "expected"),
            ("-1", "negative"),
            ("1.2.3", "expected"),
            ("5x", "unknown suffix `x`"),
        ] {
            let err = parse_quantity(text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn durations_accept_units_and_bare_minutes() {
        let cases: &[(&str, u64)] = &[
            ("10m", 600_000),
            ("30s", 30_000),
            ("500ms", 500),
            ("1h30m", 5_400_000),
            ("5", 300_000),
            ("1d", 86_400_000),
        ];
        for (text, ms) in cases {
            assert_eq!(
                parse_duration(text).unwrap().as_millis() as u64,
                *ms,
                "{text}"
            );
        }
        assert!(
            parse_duration("10x")
                .unwrap_err()
                .contains("unknown unit `x`")
        );
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("1e300").unwrap_err().contains("too long"));
        assert!(
            parse_duration("99999999999999999999999h")
                .unwrap_err()
                .contains("too long")
        );
    }

    #[test]
    fn durations_format_back() {
        assert_eq!(format_duration(Duration::from_secs(600)), "10m");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn percentages() {
        assert_eq!(parse_percent("0.1%").unwrap(), 0.1);
        assert_eq!(parse_percent("99.9").unwrap(), 99.9);
        assert!(parse_percent("101%").is_err());
        assert!(parse_percent("lots").is_err());
        assert_eq!(
            parse_int_or_percent("25%").unwrap(),
            IntOrPercent::Percent(25)
        );
        assert_eq!(parse_int_or_percent("1").unwrap(), IntOrPercent::Int(1));
        assert!(parse_int_or_percent("150%").is_err());
        assert!(parse_int_or_percent("-1").is_err());
    }
}
