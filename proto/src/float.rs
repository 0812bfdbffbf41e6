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

/// Adds two numbers as `INCRBYFLOAT` shows the result, exactly, when both are plain decimals
/// (no exponent) with at most 17 fractional digits and magnitude below 1e20.
///
/// Redis adds in 80-bit `long double` and prints `%.17Lf` with trailing zeros trimmed; for such
/// inputs that shows the exact decimal sum (`0.1 + 0.2` is `0.3`), which `f64` cannot. Returns
/// `None` for anything else; the caller then falls back to `f64`.
pub fn add_decimal(a: &[u8], b: &[u8]) -> Option<String> {
    const SCALE: i128 = 100_000_000_000_000_000; // 10^17
    let sum = parse_scaled(a)?.checked_add(parse_scaled(b)?)?;
    if sum.unsigned_abs() >= 10u128.pow(37) {
        return None;
    }
    if sum == 0 {
        return Some("0".into());
    }
    let mag = sum.unsigned_abs();
    let int = mag / SCALE as u128;
    let frac = mag % SCALE as u128;
    let sign = if sum < 0 { "-" } else { "" };
    let text = format!("{sign}{int}.{frac:017}");
    Some(trim_zeros(&text).to_string())
}

/// A plain decimal scaled by 10^17, or `None` if it is not one (or too long).
fn parse_scaled(s: &[u8]) -> Option<i128> {
    let (neg, body) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = match body.iter().position(|&c| c == b'.') {
        Some(dot) => (&body[..dot], &body[dot + 1..]),
        None => (body, &b""[..]),
    };
    if int.len() + frac.len() == 0 || int.len() > 20 || frac.len() > 17 {
        return None;
    }
    if !int.iter().chain(frac).all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: i128 = 0;
    for &c in int {
        v = v * 10 + i128::from(c - b'0');
    }
    for i in 0..17 {
        v = v * 10 + frac.get(i).map_or(0, |&c| i128::from(c - b'0'));
    }
    Some(if neg { -v } else { v })
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
    let v: f64 = match s.parse() {
        Ok(v) => v,
        Err(_) => parse_hex(s)?,
    };
    if v.is_nan() { None } else { Some(v) }
}

/// A C99 hexadecimal float (`0x1.8p3`, `-0x10`), which `strtod` accepts.
fn parse_hex(s: &str) -> Option<f64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let body = body
        .strip_prefix("0x")
        .or_else(|| body.strip_prefix("0X"))?;
    let (mant, exp) = match body.find(['p', 'P']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i32>().ok()?),
        None => (body, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    let v = v * 2f64.powi(exp);
    Some(if neg { -v } else { v })
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
    fn decimal_sums_match_long_double_output() {
        for (a, b, want) in [
            ("0.1", "0.2", Some("0.3")),
            ("10.5", "0.1", Some("10.6")),
            ("5", "-5", Some("0")),
            ("-1.5", "0.25", Some("-1.25")),
            ("9223372036854775807", "1", Some("9223372036854775808")),
            ("1.23456789012345678", "0", Some("1.23456789012345678")),
            ("1e3", "1", None),
            ("inf", "1", None),
            (".5", "1.", Some("1.5")),
        ] {
            assert_eq!(
                add_decimal(a.as_bytes(), b.as_bytes()).as_deref(),
                want,
                "{a} + {b}"
            );
        }
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
        assert_eq!(parse("0x10"), Some(16.0));
        assert_eq!(parse("-0x1.8p1"), Some(-3.0));
        assert_eq!(parse("0x"), None);
        assert_eq!(parse(""), None);
    }
}
