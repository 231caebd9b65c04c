//! Event-time helpers: durations written in rule files and RFC 3339 formatting.
//!
//! Time in logwarden is event time (milliseconds since the Unix epoch, the log
//! event `timestamp`), never the wall clock; the one place that needs the clock
//! (the sweep) gets it through [`Clock`], so tests control it.

use chrono::{DateTime, SecondsFormat, Utc};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// A source of "now", injected where the wall clock is needed.
pub trait Clock: Send + Sync {
    /// Current time in milliseconds since the epoch.
    fn now_ms(&self) -> Millis;
}

impl Clock for Box<dyn Clock> {
    fn now_ms(&self) -> Millis {
        (**self).now_ms()
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        Utc::now().timestamp_millis()
    }
}

/// A clock that says what it is told (tests, `--now`).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub Millis);

impl Clock for FixedClock {
    fn now_ms(&self) -> Millis {
        self.0
    }
}

/// A clock running `lag` behind another: the sweep's watermark, since
/// CloudWatch Logs may still be delivering events that happened before it.
#[derive(Debug, Clone, Copy)]
pub struct LaggedClock<C> {
    inner: C,
    lag_ms: Millis,
}

impl<C: Clock> LaggedClock<C> {
    /// `inner` minus `lag_ms`.
    pub fn new(inner: C, lag_ms: Millis) -> Self {
        LaggedClock { inner, lag_ms }
    }
}

impl<C: Clock> Clock for LaggedClock<C> {
    fn now_ms(&self) -> Millis {
        self.inner.now_ms() - self.lag_ms
    }
}

/// Parse a duration such as `60s`, `10m`, `1h`, `500ms`, `2d` into milliseconds.
pub fn parse_duration(text: &str) -> Result<Millis, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (expected e.g. 60s, 10m, 1h)"))?;
    let scale = match unit.trim() {
        "ms" => 1.0,
        "s" | "sec" => 1_000.0,
        "m" | "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        "" => return Err(format!("`{text}` needs a unit (ms, s, m, h or d)")),
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}` (use ms, s, m, h or d)"
            ));
        }
    };
    if !(value.is_finite() && value >= 0.0) {
        return Err(format!("`{text}` is not a duration"));
    }
    Ok((value * scale).round() as Millis)
}

/// Format event time as RFC 3339 with milliseconds, e.g. `2026-11-22T10:00:00.000Z`.
pub fn rfc3339(ms: Millis) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parse an RFC 3339 time (as given to `--now`) into milliseconds.
pub fn parse_rfc3339(text: &str) -> Result<Millis, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("`{text}` is not an RFC 3339 time ({e}); e.g. 2026-11-22T10:00:00Z"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("60s").unwrap(), 60_000);
        assert_eq!(parse_duration("10m").unwrap(), 600_000);
        assert_eq!(parse_duration("1.5h").unwrap(), 5_400_000);
        assert_eq!(parse_duration("250ms").unwrap(), 250);
        assert!(parse_duration("60").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5w").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn lagged_clock_runs_behind() {
        assert_eq!(
            LaggedClock::new(FixedClock(100_000), 60_000).now_ms(),
            40_000
        );
    }

    #[test]
    fn rfc3339_round_trips() {
        let t = parse_rfc3339("2026-11-22T10:00:41Z").unwrap();
        assert_eq!(rfc3339(t), "2026-11-22T10:00:41.000Z");
        assert!(parse_rfc3339("yesterday").is_err());
    }
}
