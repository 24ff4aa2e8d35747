//! Timestamps on the wire are RFC 3339 strings; inside Valle they are Unix milliseconds (i64),
//! the unit of `Date.now()` at the edge and of the D1 columns.

/// Parses an RFC 3339 timestamp (`2026-11-23T10:15:00Z`, `2026-11-23T10:15:00.250-05:00`)
/// into Unix milliseconds. Fractions beyond milliseconds are truncated.
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || bytes.len() > 35 {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = bytes.get(range)?;
        if part.iter().all(u8::is_ascii_digit) {
            Some(part.iter().fold(0, |n, b| n * 10 + i64::from(b - b'0')))
        } else {
            None
        }
    };
    let separators_ok = bytes[4] == b'-'
        && bytes[7] == b'-'
        && matches!(bytes[10], b'T' | b't')
        && bytes[13] == b':'
        && bytes[16] == b':';
    if !separators_ok {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut rest = &bytes[19..];
    let mut millis = 0;
    if let Some((b'.', fraction)) = rest.split_first() {
        let count = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if count == 0 || count > 9 {
            return None;
        }
        millis = fraction[..count.min(3)]
            .iter()
            .fold(0, |n, b| n * 10 + i64::from(b - b'0'))
            * 10_i64.pow(3 - count.min(3) as u32);
        rest = &fraction[count..];
    }
    let offset_minutes = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let pair = |a: &u8, b: &u8| -> Option<i64> {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
            };
            let (hours, minutes) = (pair(h1, h2)?, pair(m1, m2)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let total = hours * 60 + minutes;
            if *sign == b'+' {
                total
            } else {
                -total
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

/// Formats Unix milliseconds as RFC 3339 in UTC with milliseconds: `2026-11-23T10:15:00.250Z`.
pub fn format_rfc3339_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1_000 % 60,
        in_day % 1_000
    )
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Option<i64>) {
        assert_eq!(parse_rfc3339_ms(text), expected, "{text}");
    }

    #[test]
    fn parses_rfc3339() {
        check("1970-01-01T00:00:00Z", Some(0));
        check("2026-11-23T10:15:00Z", Some(1_795_428_900_000));
        check("2026-11-23T10:15:00.25Z", Some(1_795_428_900_250));
        check("2026-11-23T10:15:00.123456789Z", Some(1_795_428_900_123));
        check("2026-11-23T05:15:00-05:00", Some(1_795_428_900_000));
        check("2026-11-23T11:15:00+01:00", Some(1_795_428_900_000));
        check("2024-02-29T00:00:00Z", Some(1_709_164_800_000));
        check("2023-02-29T00:00:00Z", None);
        check("2026-13-01T00:00:00Z", None);
        check("2026-11-23 10:15:00Z", None);
        check("2026-11-23T10:15:00", None);
        check("2026-11-23T10:15:00.Z", None);
        check("2026-11-23T24:00:00Z", None);
        check("2026-11-23T10:15:00+24:00", None);
        check("", None);
        check("ñññññññññññññññññññññ", None);
    }

    #[test]
    fn formats_what_it_parses() {
        for ms in [
            0,
            1_795_428_900_250,
            951_782_400_000,
            -86_400_001,
            4_102_444_799_999,
        ] {
            let text = format_rfc3339_ms(ms);
            assert_eq!(parse_rfc3339_ms(&text), Some(ms), "{text}");
        }
        assert_eq!(
            format_rfc3339_ms(1_795_428_900_250),
            "2026-11-23T10:15:00.250Z"
        );
    }
}
