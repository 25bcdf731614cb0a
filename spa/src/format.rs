//! Small displays of numbers and instants, free of UI (unit-tested natively).

use time::OffsetDateTime;

/// `1.4 MB`, `812 B`: decimal units, one decimal from kB up.
pub fn bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n.abs() < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1000.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v.abs() < 1000.0 {
            break;
        }
        v /= 1000.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// `2025-03-04 09:05:07 UTC` (the same for every viewer, as in the export's manifest).
pub fn utc(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The first 12 hex digits of a sha256: enough to tell files apart on screen.
pub fn short_hash(h: &str) -> &str {
    h.get(..12).unwrap_or(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_in_decimal_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1000), "1.0 kB");
        assert_eq!(bytes(1_450_000), "1.4 MB");
        assert_eq!(bytes(3_000_000_000), "3.0 GB");
    }

    #[test]
    fn utc_pads_and_converts() {
        let t = OffsetDateTime::from_unix_timestamp(1_741_079_107).expect("valid");
        assert_eq!(utc(t), "2025-03-04 09:05:07 UTC");
        let east = t.to_offset(time::UtcOffset::from_hms(2, 0, 0).expect("valid"));
        assert_eq!(utc(east), "2025-03-04 09:05:07 UTC");
    }

    #[test]
    fn short_hash_keeps_short_ones() {
        assert_eq!(short_hash("0123456789abcdef"), "0123456789ab");
        assert_eq!(short_hash("abc"), "abc");
    }
}
