//! Durations as wrk and h2load take them: a bare number is seconds (`-d 3`, `--warmup 1.5`),
//! and a number with a unit (`500ms`, `10s`, `2m`, `1h 30m`) is read by humantime. One parser
//! for every duration flag of every subcommand and for the scenario file, so `3` means the same
//! thing everywhere and nothing falls back silently to a default.

use std::time::Duration;

/// A duration that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration '{text}': {why} (a number of seconds, or e.g. 500ms, 10s, 2m)")]
pub struct DurationError {
    /// What was given.
    pub text: String,
    /// Why it was refused.
    pub why: String,
}

/// Reads `3` (seconds), `1.5` (seconds), `500ms`, `10s`, `2m`, `1h 30m`.
///
/// Refuses an empty string, a negative, NaN or infinite number, and anything humantime cannot
/// read, naming the text.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let t = text.trim();
    let err = |why: &str| DurationError {
        text: text.to_owned(),
        why: why.to_owned(),
    };
    if t.is_empty() {
        return Err(err("empty"));
    }
    if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = t.parse().map_err(|_| err("not a number"))?;
        return Duration::try_from_secs_f64(secs).map_err(|e| err(&e.to_string()));
    }
    humantime::parse_duration(t).map_err(|e| err(&e.to_string()))
}

/// For serde: a duration field of a TOML or JSON file, written as a string in [`parse`]'s
/// forms or as a bare number of seconds (`duration = 3`, `duration = "500ms"`).
pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = Duration;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a duration: a number of seconds or a string such as \"500ms\"")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
            parse(v).map_err(E::custom)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Duration, E> {
            Ok(Duration::from_secs(v))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Duration, E> {
            u64::try_from(v)
                .map(Duration::from_secs)
                .map_err(|_| E::custom(format!("invalid duration {v}: negative")))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Duration, E> {
            Duration::try_from_secs_f64(v)
                .map_err(|e| E::custom(format!("invalid duration {v}: {e}")))
        }
    }
    d.deserialize_any(Visitor)
}

/// Writes a duration in a form [`parse`] reads back exactly (`2s`, `500ms`, `1m 30s`).
pub fn format(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_number_is_seconds_as_in_wrk_and_h2load() {
        assert_eq!(parse("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert_eq!(parse(" 2 ").unwrap(), Duration::from_secs(2));
    }

    #[test]
    fn units_keep_working() {
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse("1h 30m").unwrap(), Duration::from_secs(5400));
    }

    #[test]
    fn nonsense_is_refused_with_its_text() {
        for bad in ["", "abc", "-1", "1.2.3", "10 parsecs", "inf", "NaN", "."] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.text, bad);
            assert!(e.to_string().contains("invalid duration"), "{e}");
        }
    }

    #[test]
    fn format_round_trips() {
        for d in [
            Duration::ZERO,
            Duration::from_millis(500),
            Duration::from_secs(2),
            Duration::from_secs(90),
            Duration::from_millis(1_250),
        ] {
            assert_eq!(parse(&format(d)).unwrap(), d);
        }
    }

    #[derive(serde::Deserialize)]
    struct File {
        #[serde(deserialize_with = "deserialize")]
        d: Duration,
    }

    #[test]
    fn files_take_numbers_and_strings() {
        let of = |s: &str| serde_json::from_str::<File>(s).map(|f| f.d);
        assert_eq!(of(r#"{"d": 3}"#).unwrap(), Duration::from_secs(3));
        assert_eq!(of(r#"{"d": 0.25}"#).unwrap(), Duration::from_millis(250));
        assert_eq!(of(r#"{"d": "500ms"}"#).unwrap(), Duration::from_millis(500));
        assert_eq!(of(r#"{"d": "3"}"#).unwrap(), Duration::from_secs(3));
        let e = of(r#"{"d": "soon"}"#).unwrap_err().to_string();
        assert!(e.contains("soon"), "{e}");
        assert!(of(r#"{"d": -1}"#).is_err());
    }
}
