//! Sample values as Prometheus writes them.

/// Prometheus' float format: `NaN`, `+Inf`, `-Inf` or a number.
pub fn parse_value(s: &str) -> f64 {
    match s {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().unwrap_or(f64::NAN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_values() {
        assert!(parse_value("NaN").is_nan());
        assert_eq!(parse_value("+Inf"), f64::INFINITY);
        assert_eq!(parse_value("-Inf"), f64::NEG_INFINITY);
        assert_eq!(parse_value("1e+00"), 1.0);
    }
}
