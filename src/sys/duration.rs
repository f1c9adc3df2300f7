//! Durations as people write them in flags and config: `500ms`, `90s`, `30m`, `2h`, or plain
//! seconds.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration {input:?}: expected a number with an optional unit ms, s, m or h (e.g. 500ms, 90s, 30m, 2h)"
)]
pub struct DurationError {
    input: String,
}

/// Parses `N`, `Nms`, `Ns`, `Nm` or `Nh` (N a whole number; surrounding spaces allowed).
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let err = || DurationError {
        input: input.to_string(),
    };
    let s = input.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(err());
    }
    let n: u64 = digits.parse().map_err(|_| err())?;
    let per_unit_ms: u64 = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(err()),
    };
    n.checked_mul(per_unit_ms)
        .map(Duration::from_millis)
        .ok_or_else(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_each_unit() {
        let cases = [
            ("500ms", Duration::from_millis(500)),
            ("90s", Duration::from_secs(90)),
            ("30m", Duration::from_secs(1800)),
            ("2h", Duration::from_secs(7200)),
            ("15", Duration::from_secs(15)),
            ("0", Duration::ZERO),
            (" 20 ms ", Duration::from_millis(20)),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_nonsense() {
        for text in [
            "",
            "ms",
            "-1s",
            "1.5s",
            "10d",
            "s10",
            "1 h x",
            "99999999999999999999h",
        ] {
            assert!(parse(text).is_err(), "{text:?} should be rejected");
        }
    }

    #[test]
    fn error_names_the_input() {
        let e = parse("10d").unwrap_err().to_string();
        assert!(e.contains("\"10d\""), "{e}");
    }
}
