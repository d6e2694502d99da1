//! Sizes with `K/M/G` suffixes (`512M`) and durations with `ms/s/m/h` suffixes (`30m`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UnitError {
    #[error("Size {0:?} is not a number with an optional K, M, G or T suffix (e.g. 512M)")]
    BadSize(String),
    #[error("Duration {0:?} is not a number with a ms, s, m or h suffix (e.g. 30m)")]
    BadDuration(String),
}

/// A number of bytes, written and read as `512M`, `2G`, `1024`, `64K`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "SizeRepr", into = "String")]
pub struct ByteSize(pub u64);

#[derive(Deserialize)]
#[serde(untagged)]
enum SizeRepr {
    Number(u64),
    Text(String),
}

impl TryFrom<SizeRepr> for ByteSize {
    type Error = UnitError;
    fn try_from(r: SizeRepr) -> Result<Self, UnitError> {
        match r {
            SizeRepr::Number(n) => Ok(ByteSize(n)),
            SizeRepr::Text(s) => s.parse(),
        }
    }
}

impl ByteSize {
    pub const fn mib(n: u64) -> Self {
        ByteSize(n << 20)
    }
    pub const fn gib(n: u64) -> Self {
        ByteSize(n << 30)
    }
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        parse_size(s).map(ByteSize)
    }
}

impl From<ByteSize> for String {
    fn from(b: ByteSize) -> String {
        b.to_string()
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 4] = [
            (1 << 40, "T"),
            (1 << 30, "G"),
            (1 << 20, "M"),
            (1 << 10, "K"),
        ];
        for (scale, suffix) in UNITS {
            if self.0 >= scale && self.0.is_multiple_of(scale) {
                return write!(f, "{}{suffix}", self.0 / scale);
            }
        }
        write!(f, "{}", self.0)
    }
}

/// Parses `512M`, `2G`, `64k`, `1024`, `1.5G` (binary multiples) into bytes.
pub fn parse_size(s: &str) -> Result<u64, UnitError> {
    let bad = || UnitError::BadSize(s.chars().take(64).collect());
    let t = s.trim();
    let t = t
        .strip_suffix(['b', 'B'])
        .filter(|r| r.ends_with(|c: char| c.is_ascii_alphabetic()))
        .unwrap_or(t);
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    if num.is_empty() || num.len() > 24 {
        return Err(bad());
    }
    let shift = match suffix.trim() {
        "" => 0,
        "k" | "K" | "Ki" => 10,
        "m" | "M" | "Mi" => 20,
        "g" | "G" | "Gi" => 30,
        "t" | "T" | "Ti" => 40,
        _ => return Err(bad()),
    };
    if let Ok(n) = num.parse::<u64>() {
        return n.checked_mul(1u64 << shift).ok_or_else(bad);
    }
    let f: f64 = num.parse().map_err(|_| bad())?;
    let v = f * (1u64 << shift) as f64;
    if !v.is_finite() || v < 0.0 || v >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(v as u64)
}

/// Parses `500ms`, `10s`, `30m`, `2h`, or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    let bad = || UnitError::BadDuration(s.chars().take(64).collect());
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    if num.is_empty() || num.len() > 12 {
        return Err(bad());
    }
    let n: u64 = num.parse().map_err(|_| bad())?;
    let ms = match suffix {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => return Err(bad()),
    };
    ms.map(Duration::from_millis).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("10MB"), Ok(10 << 20));
        for bad in [
            "",
            "12Q",
            "M",
            "-1M",
            "1.2.3G",
            "99999999999999999999G",
            "1 G G",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            parse_size("12Q").unwrap_err().to_string(),
            "Size \"12Q\" is not a number with an optional K, M, G or T suffix (e.g. 512M)"
        );
    }

    #[test]
    fn size_display_round_trips() {
        for s in ["512M", "2G", "64K", "1000", "3T"] {
            assert_eq!(s.parse::<ByteSize>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        for bad in ["", "s", "10d", "-1s", "1.5s", "99999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC{0,40}") {
            let _ = parse_size(&s);
            let _ = parse_duration(&s);
        }

        #[test]
        fn size_round_trip(n in 0u64..(1u64 << 50)) {
            let b = ByteSize(n);
            prop_assert_eq!(b.to_string().parse::<ByteSize>().unwrap(), b);
        }
    }
}

/// `ms` milliseconds since 1970 as RFC 3339 UTC with milliseconds
/// (`2024-05-01T12:00:00.000Z`), without a date crate.
pub fn rfc3339_millis(ms: i64) -> String {
    let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm), days since 1970-01-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod rfc3339_tests {
    #[test]
    fn dates() {
        assert_eq!(super::rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::rfc3339_millis(1_709_251_199_999),
            "2024-02-29T23:59:59.999Z"
        );
    }
}
