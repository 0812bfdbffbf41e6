//! Redis' textual forms of doubles.
//!
//! Replies carry doubles as C's `%.17g` (Redis 7.0 `addReplyDouble`); `INCRBYFLOAT` stores the
//! shortest form that reads back to the same value, never in exponent notation. Parsing accepts
//! what `strtod` accepts in Redis' `string2d`, minus NaN.

/// Formats `d` like C's `printf("%.17g", d)`.
pub fn fmt_g17(d: f64) -> String {
    const P: i32 = 17;
    if d.is_nan() {
        return "nan".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d == 0.0 {
        return if d.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{:.*e}", (P - 1) as usize, d);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let x: i32 = exp.parse().unwrap_or(0);
    if (-4..P).contains(&x) {
        let fixed = format!("{:.*}", (P - 1 - x) as usize, d);
        trim_zeros(&fixed).to_string()
    } else {
        let m = trim_zeros(mantissa);
        let sign = if x < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", x.abs())
    }
}

/// Formats `d` the way `INCRBYFLOAT` stores it: the shortest decimal that reads back as `d`,
/// without an exponent.
pub fn fmt_human(d: f64) -> String {
    if d == 0.0 {
        return "0".into();
    }
    format!("{d}")
}

/// Parses a double as Redis does for scores and float arguments: no surrounding spaces, no NaN;
/// `inf`, `+inf`, `-inf` and exponents are accepted.
pub fn parse(s: &str) -> Option<f64> {
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    if s.ends_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    if v.is_nan() { None } else { Some(v) }
}

fn trim_zeros(s: &str) -> &str {
    if !s.contains('.') {
        return s;
    }
    let t = s.trim_end_matches('0');
    t.strip_suffix('.').unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g17_matches_printf() {
        for (d, want) in [
            (1.5, "1.5"),
            (1.1, "1.1000000000000001"),
            (0.1, "0.10000000000000001"),
            (100.0, "100"),
            (-3.0, "-3"),
            (1e17, "1e+17"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (1.23456, "1.2345600000000001"),
        ] {
            assert_eq!(fmt_g17(d), want, "{d}");
        }
    }

    #[test]
    fn human_form_is_shortest_and_fixed() {
        assert_eq!(fmt_human(10.6), "10.6");
        assert_eq!(fmt_human(3.0), "3");
        assert_eq!(fmt_human(5e20), "500000000000000000000");
    }

    #[test]
    fn parse_accepts_what_strtod_accepts_without_nan() {
        assert_eq!(parse("1.5"), Some(1.5));
        assert_eq!(parse("-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse("+inf"), Some(f64::INFINITY));
        assert_eq!(parse("1e3"), Some(1000.0));
        assert_eq!(parse("nan"), None);
        assert_eq!(parse(" 1"), None);
        assert_eq!(parse("1 "), None);
        assert_eq!(parse("abc"), None);
        assert_eq!(parse(""), None);
    }
}
