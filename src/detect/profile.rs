//! What each rule costs: the figures `logwarden replay --profile` prints.
//!
//! The engine fills them while it observes events, only when asked
//! ([`crate::engine::Engine::with_profile`]): reading the clock around every
//! rule for every event is not free.

use std::time::Duration;

/// Figures of one rule.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RuleCost {
    /// Events the rule looked at (application lines for rules that match
    /// lines, every event for the others).
    pub lines_tested: u64,
    /// Of those, events the prefilter let through (a required literal of
    /// one of its matchers or secret kinds was there); rules that read
    /// platform records have no prefilter, so every event tested counts.
    pub prefilter_hits: u64,
    /// Events that meant something to the rule (an observation).
    pub matches: u64,
    /// Alerts the rule raised (counted by whoever publishes them).
    pub alerts: u64,
    /// Time spent deciding what events mean for this rule.
    pub time: Duration,
}

impl RuleCost {
    /// Count one event.
    pub fn add(&mut self, tested: bool, hit: bool, matched: bool, time: Duration) {
        self.lines_tested += u64::from(tested);
        self.prefilter_hits += u64::from(hit);
        self.matches += u64::from(matched);
        self.time += time;
    }
}

/// Figures of a whole replay, per rule in rule-set order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    /// Per rule, in the rule set's order.
    pub rules: Vec<RuleCost>,
    /// Time spent parsing messages into platform records and app lines.
    pub platform: Duration,
    /// Time spent in the matching plane's prefilter pass.
    pub prefilter: Duration,
}

impl Profile {
    /// The figures of rule `i`.
    pub fn rule(&mut self, i: usize) -> &mut RuleCost {
        if self.rules.len() <= i {
            self.rules.resize(i + 1, RuleCost::default());
        }
        &mut self.rules[i]
    }

    /// All detection time: parsing, prefilter and every rule.
    pub fn total(&self) -> Duration {
        self.platform + self.prefilter + self.rules.iter().map(|r| r.time).sum::<Duration>()
    }
}

impl Profile {
    /// The table `replay --profile` prints: one row per rule (`ids` in rule
    /// order), then the shared costs, each with its share of detection time.
    pub fn render(&self, ids: &[&str]) -> String {
        let total = self.total().as_secs_f64();
        let share = |d: Duration| {
            if total > 0.0 {
                100.0 * d.as_secs_f64() / total
            } else {
                0.0
            }
        };
        let width = ids.iter().map(|i| i.len()).max().unwrap_or(0).max(16);
        let mut out = format!(
            "{:<width$}  {:>12}  {:>14}  {:>10}  {:>7}  {:>10}\n",
            "rule", "lines tested", "prefilter hits", "matches", "alerts", "time share"
        );
        for (i, id) in ids.iter().enumerate() {
            let r = self.rules.get(i).copied().unwrap_or_default();
            out += &format!(
                "{id:<width$}  {:>12}  {:>14}  {:>10}  {:>7}  {:>9.1}%\n",
                r.lines_tested,
                r.prefilter_hits,
                r.matches,
                r.alerts,
                share(r.time)
            );
        }
        for (name, d) in [
            ("(platform parse)", self.platform),
            ("(prefilter)", self.prefilter),
        ] {
            out += &format!(
                "{name:<width$}  {:>12}  {:>14}  {:>10}  {:>7}  {:>9.1}%\n",
                "-",
                "-",
                "-",
                "-",
                share(d)
            );
        }
        out += &format!("detection time: {:.1} ms\n", total * 1_000.0);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_and_rows_follow_the_ids() {
        let mut p = Profile::default();
        p.rule(1).add(true, true, true, Duration::from_millis(30));
        p.rule(0).add(true, false, false, Duration::from_millis(10));
        p.platform = Duration::from_millis(40);
        p.prefilter = Duration::from_millis(20);
        let t = p.render(&["a-rule", "b-rule"]);
        let rows: Vec<&str> = t.lines().collect();
        assert!(
            rows[1].starts_with("a-rule ") && rows[1].ends_with("10.0%"),
            "{t}"
        );
        assert!(
            rows[2].starts_with("b-rule ") && rows[2].ends_with("30.0%"),
            "{t}"
        );
        assert!(
            rows[3].ends_with("40.0%") && rows[4].ends_with("20.0%"),
            "{t}"
        );
        assert_eq!(rows[5], "detection time: 100.0 ms");
    }
}
