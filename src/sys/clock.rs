//! The little clock and calendar arithmetic codex-as needs (UTC only: quota reset times, ages),
//! so that no date crate is pulled in for it.

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Unix seconds of an RFC 3339 timestamp as Codex writes them (`2026-01-10T12:00:00.123Z`,
/// or with a `+hh:mm` offset). Fractions are dropped. A date or time that cannot exist
/// (2026-02-29, hour 24) is refused rather than rolled over into the next day.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    // Digits only: `str::parse` would also take a sign.
    let num = |r: std::ops::Range<usize>| {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse::<i64>().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // 60 is a leap second, which RFC 3339 allows.
    if !(1..=12).contains(&mo)
        || !(1..=days_in_month(y, mo)).contains(&d)
        || h > 23
        || mi > 59
        || se > 60
    {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            let o = rest.as_bytes();
            if o.len() != 6 || o[3] != b':' {
                return None;
            }
            let digits = |r: std::ops::Range<usize>| {
                let t = rest.get(r)?;
                t.bytes()
                    .all(|c| c.is_ascii_digit())
                    .then(|| t.parse::<i64>().ok())?
            };
            let (oh, om) = (digits(1..3)?, digits(4..6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    Some(days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + se - offset)
}

/// `2026-01-10T12:00:00Z`.
pub fn format_utc(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// `3h05m`, `2d4h`, `45s`: how long until (or since) something, for people.
pub fn human_duration(secs: i64) -> String {
    let s = secs.unsigned_abs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m", s / 60)
    } else if s < 86_400 {
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    } else {
        format!("{}d{}h", s / 86_400, s / 3600 % 24)
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_known_instants() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2026-01-10T12:00:00.123Z"),
            Some(1_768_046_400)
        );
        assert_eq!(
            parse_rfc3339("2026-01-10T13:00:00+01:00"),
            Some(1_768_046_400)
        );
        assert_eq!(format_utc(1_768_046_400), "2026-01-10T12:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        for t in [0, 951_782_400, 1_768_046_400, 4_102_444_800] {
            assert_eq!(parse_rfc3339(&format_utc(t)), Some(t));
        }
    }

    #[test]
    fn rejects_what_is_not_a_timestamp() {
        for s in [
            "",
            "2026-01-10",
            "2026-13-10T00:00:00Z",
            "2026-01-10T00:00:00",
            "x",
        ] {
            assert_eq!(parse_rfc3339(s), None, "{s}");
        }
    }

    #[test]
    fn rejects_dates_and_times_that_cannot_exist() {
        for s in [
            "2026-02-31T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-01-00T00:00:00Z",
            "2026-00-10T00:00:00Z",
            "2026-01-10T24:00:00Z",
            "2026-01-10T23:60:00Z",
            "2026-01-10T23:59:61Z",
            "2026-01-10T12:00:00+24:00",
            "2026-01-10T12:00:00+01:60",
            "2026-01-10T12:00:00+0100",
            "2026-01-10T12:00:00+01:00:00",
            "2026-+1-10T12:00:00Z",
            "2026-01-10T12-00-00Z",
        ] {
            assert_eq!(parse_rfc3339(s), None, "{s}");
        }
        // The real ones next to them still parse.
        for s in [
            "2024-02-29T00:00:00Z",
            "2000-02-29T00:00:00Z",
            "2026-02-28T23:59:59Z",
            "2026-04-30T00:00:00Z",
            "2026-12-31T23:59:60Z",
            "2026-01-10T12:00:00-23:59",
        ] {
            assert!(parse_rfc3339(s).is_some(), "{s}");
        }
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00Z"),
            Some(days_from_civil(2024, 2, 29) * 86_400)
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(3 * 3600 + 5 * 60), "3h05m");
        assert_eq!(human_duration(-(2 * 86_400 + 4 * 3600)), "2d4h");
    }
}
