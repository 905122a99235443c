//! Date parts of RFC 5260 section 4: a point in time plus a zone offset, printed the way the
//! date and currentdate tests compare them.

/// "+0100" / "-0530" to seconds east of UTC.
pub(crate) fn parse_zone(zone: &str) -> Option<i32> {
    let bytes = zone.as_bytes();
    if bytes.len() != 5 || !bytes[1..].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sign = match bytes[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digit = |i: usize| i32::from(bytes[i] - b'0');
    let hours = digit(1) * 10 + digit(2);
    let minutes = digit(3) * 10 + digit(4);
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60))
}

fn format_zone(offset: i32) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let offset = offset.unsigned_abs();
    format!("{sign}{:02}{:02}", offset / 3600, (offset / 60) % 60)
}

/// Howard Hinnant's civil_from_days: days since 1970-01-01 to (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The value of `part` for the instant `timestamp` seen in zone `offset`; None for an unknown
/// part name.
pub(crate) fn date_part(timestamp: i64, offset: i32, part: &str) -> Option<String> {
    let local = timestamp + i64::from(offset);
    let days = local.div_euclid(86_400);
    let seconds = local.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (seconds / 3600, (seconds / 60) % 60, seconds % 60);
    // 1970-01-01 was a Thursday.
    let weekday = (days + 4).rem_euclid(7);
    Some(match part.to_ascii_lowercase().as_str() {
        "year" => format!("{year:04}"),
        "month" => format!("{month:02}"),
        "day" => format!("{day:02}"),
        "date" => format!("{year:04}-{month:02}-{day:02}"),
        // Modified Julian Day: days since 1858-11-17.
        "julian" => format!("{}", days + 40_587),
        "hour" => format!("{hour:02}"),
        "minute" => format!("{minute:02}"),
        "second" => format!("{second:02}"),
        "time" => format!("{hour:02}:{minute:02}:{second:02}"),
        "iso8601" => {
            let zone = format_zone(offset);
            format!(
                "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{}:{}",
                &zone[..3],
                &zone[3..]
            )
        }
        "std11" => format!(
            "{}, {day} {} {year:04} {hour:02}:{minute:02}:{second:02} {}",
            WEEKDAYS[weekday as usize],
            MONTHS[(month - 1) as usize],
            format_zone(offset)
        ),
        "zone" => format_zone(offset),
        "weekday" => format!("{weekday}"),
        _ => return None,
    })
}

/// A date from a header value (RFC 5322 syntax); for Received, the part after the last ';'.
/// Returns the instant and the zone it was written in.
pub(crate) fn parse_header_date(value: &str) -> Option<(i64, i32)> {
    let value = value.rsplit_once(';').map_or(value, |(_, date)| date);
    let parsed = mail_parser::DateTime::parse_rfc822(value.trim())?;
    if !(1..=12).contains(&parsed.month) || !(1..=31).contains(&parsed.day) || parsed.hour > 23 {
        return None;
    }
    let zone = (i32::from(parsed.tz_hour) * 3600 + i32::from(parsed.tz_minute) * 60)
        * if parsed.tz_before_gmt { -1 } else { 1 };
    Some((parsed.to_timestamp(), zone))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parts() {
        // 2009-02-13T23:31:30Z, a Friday.
        let t = 1_234_567_890;
        assert_eq!(date_part(t, 0, "date").unwrap(), "2009-02-13");
        assert_eq!(date_part(t, 3600, "date").unwrap(), "2009-02-14");
        assert_eq!(date_part(t, 0, "weekday").unwrap(), "5");
        assert_eq!(
            date_part(t, -19800, "iso8601").unwrap(),
            "2009-02-13T18:01:30-05:30"
        );
        assert_eq!(date_part(t, 0, "julian").unwrap(), "54875");
        assert_eq!(
            date_part(t, 0, "std11").unwrap(),
            "Fri, 13 Feb 2009 23:31:30 +0000"
        );
        assert_eq!(parse_zone("-0530"), Some(-19800));
        assert_eq!(parse_zone("0530"), None);
    }

    #[test]
    fn header_dates() {
        let (t, zone) = parse_header_date("Fri, 13 Feb 2009 18:31:30 -0500").unwrap();
        assert_eq!((t, zone), (1_234_567_890, -18000));
        let (t, _) = parse_header_date("from x by y; Fri, 13 Feb 2009 23:31:30 +0000").unwrap();
        assert_eq!(t, 1_234_567_890);
        assert!(parse_header_date("yesterday").is_none());
    }
}
