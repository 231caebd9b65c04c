//! `rate`: invocations per function per time bucket against a learned rate.
//!
//! Every START (text or `platform.start`) of a function counts once in the
//! bucket (default one minute) of its event time. A bucket is judged only when
//! it is complete: when the function's own latest event time has passed its
//! end by one more bucket, so STARTs of several log streams arriving a little
//! out of order still count where they belong. STARTs that arrive later than
//! that are not counted. The sweep judges quiet functions ([`Rate::sweep`]).
//!
//! The typical count per bucket and its spread are exponentially weighted
//! (alpha = 1/n during warm-up, then 0.05) and learned only from buckets that
//! were not flagged, so a spike does not teach the baseline to accept it.
//! Buckets without invocations are learned as zeros — an idle night lowers the
//! typical rate — but at most [`MAX_GAP_BUCKETS`] of them per gap: after that
//! the baseline has decayed to ~5 % and more zeros teach nothing. A bucket is a
//! spike when it holds at least `min_rate` invocations, at least `factor` ×
//! the typical count *and* more than `sigmas` spreads above it (the spread is
//! at least √typical, the noise of independent arrivals, and at least 1).
//!
//! REPORTs feed the cost estimate: their memory size (`Memory Size`,
//! `memorySizeMB`) and an average of billed duration. The architecture is not
//! in any log line, so it comes from the rule (a default plus per-function
//! overrides) and the prices from the rule's pricing table.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::config::{Cx, KindConfig};
use super::key::Space;
use super::kind::DAY_MS;
use super::{
    At, Detect, Detector, Finding, Key, Line, Listed, Matching, Scope, StateKey, Summary,
    function_name, stable_hash,
};
use crate::platform::Record;

/// Zero-invocation buckets learned per gap at most (see the module docs).
pub const MAX_GAP_BUCKETS: i64 = 60;
/// Request ids remembered over the open buckets, so a redelivered START is
/// not counted twice; beyond this, STARTs are counted without the check
/// (the state stays small enough to rewrite every batch).
const SEEN_KEPT: usize = 1_024;
/// Buckets held open at most: a function whose clock is pushed far ahead by
/// one bad timestamp must not make the state grow without bound.
const OPEN_KEPT: usize = 16;
const ALPHA: f64 = 0.05;

/// Prices used for the projected cost. Configuration, not truth: they are
/// the rule's, and the rule says where they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Pricing {
    /// USD per request.
    pub request_usd: f64,
    /// USD per GB-second of billed duration, per architecture.
    pub gb_second_usd: BTreeMap<String, f64>,
}

/// Configuration of a rate rule.
#[derive(Debug, Clone)]
pub struct Rate {
    /// Bucket width in ms (default one minute).
    pub bucket_ms: i64,
    /// Buckets learned before a bucket can be judged.
    pub warmup: u64,
    /// Minimum ratio to the typical count.
    pub factor: f64,
    /// Minimum distance above typical, in spreads.
    pub sigmas: f64,
    /// A bucket with fewer invocations is never a spike.
    pub min_rate: u64,
    /// Architecture of functions not listed in `function_architectures`.
    pub architecture: String,
    /// Architecture per function name.
    pub function_architectures: BTreeMap<String, String>,
    /// Prices.
    pub pricing: Pricing,
}

/// What has been learned about one function's invocation rate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RateState {
    /// Bucket start → invocations counted, for buckets not yet complete.
    #[serde(with = "pairs")]
    pub open: BTreeMap<i64, u64>,
    /// Buckets before this start are complete (judged or learned).
    pub closed_until: Option<i64>,
    /// The function's latest event time.
    pub clock: i64,
    /// Buckets learned from.
    pub n: u64,
    /// Typical invocations per bucket (EWMA).
    pub mean: f64,
    /// Spread (EWMA of absolute deviation).
    pub dev: f64,
    /// Average billed duration in ms (EWMA over REPORTs).
    pub billed_ms: f64,
    /// REPORTs that fed `billed_ms`.
    pub billed_n: u64,
    /// Latest memory size in MB.
    pub memory_mb: Option<u32>,
    /// Per open bucket, hashes of the request ids counted in it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", with = "pairs")]
    pub seen: BTreeMap<i64, Vec<u64>>,
    /// Per open bucket, its first START line and log stream, for evidence.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", with = "pairs")]
    pub samples: BTreeMap<i64, Sample>,
}

/// A line kept as evidence, with the log stream it came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Log stream.
    pub log_stream: String,
    /// The line.
    pub line: String,
}

/// A complete bucket far above the learned rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Spike {
    /// Start of the bucket.
    pub bucket: i64,
    /// Invocations in it.
    pub count: u64,
    /// Its first START line.
    pub sample: Option<Sample>,
    /// The numbers for the alert.
    pub metrics: BTreeMap<String, f64>,
}

impl Rate {
    /// Count one START at `ts`; `sample` gives its log stream and line when
    /// the bucket has none yet. Returns false when it was not counted (seen
    /// before, or its bucket is already complete).
    pub fn start(
        &self,
        st: &mut RateState,
        ts: i64,
        request_hash: u64,
        sample: impl FnOnce() -> Sample,
    ) -> bool {
        let bucket = ts.div_euclid(self.bucket_ms) * self.bucket_ms;
        if st.closed_until.is_some_and(|c| bucket < c) {
            return false;
        }
        let kept: usize = st.seen.values().map(Vec::len).sum();
        let seen = st.seen.entry(bucket).or_default();
        if seen.contains(&request_hash) {
            return false;
        }
        if kept < SEEN_KEPT {
            seen.push(request_hash);
        }
        *st.open.entry(bucket).or_insert(0) += 1;
        st.samples.entry(bucket).or_insert_with(sample);
        while st.open.len() > OPEN_KEPT {
            // Keep the newest buckets: a clock pushed far ahead must not
            // make the state grow; what was dropped is not counted.
            if let Some((b, _)) = st.open.pop_first() {
                st.samples.remove(&b);
                st.seen.remove(&b);
            }
        }
        st.clock = st.clock.max(ts);
        true
    }

    /// Learn memory size and billed duration from a REPORT.
    pub fn report(
        &self,
        st: &mut RateState,
        ts: i64,
        billed_ms: Option<u64>,
        memory_mb: Option<u32>,
    ) {
        if let Some(b) = billed_ms {
            st.billed_n += 1;
            let alpha = (1.0 / st.billed_n as f64).max(ALPHA);
            st.billed_ms += alpha * (b as f64 - st.billed_ms);
        }
        if memory_mb.is_some() {
            st.memory_mb = memory_mb;
        }
        st.clock = st.clock.max(ts);
    }

    /// Judge every bucket complete at `clock` (the function's own latest
    /// event time) and learn from the quiet ones.
    pub fn close(&self, st: &mut RateState, function: Option<&str>, clock: i64) -> Vec<Spike> {
        // A bucket is complete one bucket after its end.
        let complete_before = clock
            .saturating_sub(self.bucket_ms)
            .div_euclid(self.bucket_ms)
            * self.bucket_ms;
        self.close_before(st, function, complete_before)
    }

    /// The sweep's view at `watermark`: a function quiet for two buckets has
    /// its buckets up to its last event judged, so a spike followed by
    /// silence is still reported. The state changes only when that finds a
    /// spike; otherwise the next batch closes the same buckets the same way.
    /// A sweep thus rarely writes, and never closes minutes after the
    /// function's last event, whose data may still be on its way.
    pub fn sweep(&self, st: &mut RateState, function: Option<&str>, watermark: i64) -> Vec<Spike> {
        if watermark.saturating_sub(st.clock) < 2 * self.bucket_ms {
            return Vec::new();
        }
        let mut probe = st.clone();
        let last_end = (st.clock.div_euclid(self.bucket_ms) + 1) * self.bucket_ms;
        let spikes = self.close_before(&mut probe, function, last_end);
        if !spikes.is_empty() {
            *st = probe;
        }
        spikes
    }

    fn close_before(
        &self,
        st: &mut RateState,
        function: Option<&str>,
        complete_before: i64,
    ) -> Vec<Spike> {
        let mut spikes = Vec::new();
        let mut next = match (st.closed_until, st.open.keys().next()) {
            (Some(c), _) => c,
            (None, Some(first)) => *first,
            (None, None) => return spikes,
        };
        let from = next;
        while next < complete_before {
            let count = st.open.remove(&next).unwrap_or(0);
            let sample = st.samples.remove(&next);
            st.seen.remove(&next);
            if let Some(mut s) = self.judge(st, function, next, count) {
                s.sample = sample;
                spikes.push(s);
            }
            next += self.bucket_ms;
            // Skip a long gap: at most MAX_GAP_BUCKETS zeros are learned.
            if !st.open.contains_key(&next) {
                let gap_end = st
                    .open
                    .keys()
                    .next()
                    .copied()
                    .unwrap_or(complete_before)
                    .min(complete_before);
                let limit = next.saturating_add(MAX_GAP_BUCKETS * self.bucket_ms);
                while next < gap_end && next < limit {
                    self.learn(st, 0.0);
                    next += self.bucket_ms;
                }
                next = next.max(gap_end);
            }
        }
        // Only buckets actually judged are closed: a first batch from a
        // later minute must not turn away earlier minutes still to come.
        if next > from {
            st.closed_until = Some(next);
        }
        // Nothing is kept for a bucket that is no longer open.
        st.seen.retain(|b, _| st.open.contains_key(b));
        st.samples.retain(|b, _| st.open.contains_key(b));
        spikes
    }

    fn judge(
        &self,
        st: &mut RateState,
        function: Option<&str>,
        bucket: i64,
        count: u64,
    ) -> Option<Spike> {
        let x = count as f64;
        let warm = st.n >= self.warmup;
        let spread = st.dev.max(st.mean.sqrt()).max(1.0);
        if warm
            && count >= self.min_rate
            && x >= self.factor * st.mean
            && x >= st.mean + self.sigmas * spread
        {
            return Some(Spike {
                bucket,
                count,
                sample: None,
                metrics: self.metrics(st, function, x),
            });
        }
        self.learn(st, x);
        None
    }

    fn learn(&self, st: &mut RateState, x: f64) {
        st.n += 1;
        let alpha = (1.0 / st.n as f64).max(ALPHA);
        let delta = x - st.mean;
        st.mean += alpha * delta;
        st.dev += alpha * (delta.abs() - st.dev);
    }

    fn metrics(&self, st: &RateState, function: Option<&str>, x: f64) -> BTreeMap<String, f64> {
        let per_min = 60_000.0 / self.bucket_ms as f64;
        let rate = x * per_min;
        let baseline = st.mean * per_min;
        let extra_per_hour = (rate - baseline).max(0.0) * 60.0;
        let arch = function
            .and_then(|f| self.function_architectures.get(f))
            .unwrap_or(&self.architecture);
        let mut m = BTreeMap::from([
            ("rate_per_min".to_string(), round2(rate)),
            ("baseline_per_min".to_string(), round2(baseline)),
        ]);
        let mut per_invocation = self.pricing.request_usd;
        if let (Some(mem), true) = (st.memory_mb, st.billed_n > 0) {
            let gb_s = f64::from(mem) / 1024.0 * st.billed_ms / 1000.0;
            per_invocation += gb_s * self.pricing.gb_second_usd.get(arch).copied().unwrap_or(0.0);
            m.insert("memory_size_mb".into(), f64::from(mem));
            m.insert("avg_billed_ms".into(), round2(st.billed_ms));
        }
        m.insert(
            "projected_extra_cost_per_hour_usd".into(),
            (extra_per_hour * per_invocation * 10_000.0).round() / 10_000.0,
        );
        m
    }

    /// Architecture used for pricing this function.
    pub fn architecture_of<'a>(&'a self, function: Option<&str>) -> &'a str {
        function
            .and_then(|f| self.function_architectures.get(f))
            .unwrap_or(&self.architecture)
    }
}

/// Maps keyed by bucket start as `[[start, value], …]`: JSON object keys are
/// strings, which the tagged [`super::KindState`] cannot read back
/// as integers.
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, T: Serialize>(
        m: &BTreeMap<i64, T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<BTreeMap<i64, T>, D::Error> {
        Ok(Vec::<(i64, T)>::deserialize(d)?.into_iter().collect())
    }
}

/// Rates: `r|<rule>|<group>`.
const RATES: Space = Space::per_group("r");

/// What one event means for a rate rule.
pub enum Tick<'a> {
    /// A START counts an invocation.
    Start(Cow<'a, str>),
    /// A REPORT carries its billed time and memory.
    Report {
        /// Billed duration.
        billed_ms: Option<u64>,
        /// Memory size.
        memory_mb: Option<u32>,
    },
}

impl Rate {
    /// Judge the complete buckets of one function's rate: by the function's
    /// own latest event time during a batch (so minutes are judged as the
    /// data passes them, whatever other log groups' clocks say); in a sweep,
    /// those of a function quiet by the watermark (see [`Rate::sweep`]).
    fn close_rate<S: Scope>(&self, scope: &mut S, group: &str, key: &str, sweep: Option<i64>) {
        let (spikes, changed) = {
            let Some(st) = scope.existing::<RateState>(key) else {
                return;
            };
            let before = st.closed_until;
            let spikes = match sweep {
                None => self.close(st, function_name(group), st.clock),
                Some(watermark) => self.sweep(st, function_name(group), watermark),
            };
            (spikes, st.closed_until != before)
        };
        if changed {
            scope.touch(key);
        }
        for s in spikes {
            let (log_stream, evidence) = match s.sample {
                Some(x) => (x.log_stream, vec![x.line]),
                None => (String::new(), Vec::new()),
            };
            let f = Finding {
                key: Key::new(),
                first_seen: s.bucket,
                last_seen: s.bucket + self.bucket_ms - 1,
                count: s.count,
                log_stream,
                request_ids: Vec::new(),
                evidence,
                metrics: s.metrics,
            };
            let mut buf = itoa::Buffer::new();
            let dedupe = stable_hash(&["bucket", buf.format(s.bucket)]);
            scope.record(group, f, dedupe);
        }
    }
}

impl Detect for Rate {
    type Obs<'a> = Tick<'a>;

    /// START counts an invocation; REPORT carries its billed time and memory.
    fn observe<'p>(
        &self,
        line: &Line<'p, '_>,
        _: &mut Matching<'_>,
        out: &mut impl FnMut(Tick<'p>),
    ) {
        match line.rec {
            Record::Start { request_id, .. } => out(Tick::Start(request_id.clone())),
            Record::Report(r) => out(Tick::Report {
                billed_ms: r.billed_duration_ms,
                memory_mb: r.memory_size_mb,
            }),
            _ => {}
        }
    }

    fn batch_key(&self, rule: &str, group: &str, _stream: &str) -> Option<StateKey> {
        Some(RATES.key(rule, group))
    }

    /// Clear after two buckets without a spike: a spiking bucket folds into
    /// the open incident and moves its last event to the bucket's end.
    fn resolve_after(&self, _realert_ms: i64) -> i64 {
        self.bucket_ms.saturating_mul(2)
    }

    /// A START counted in the function's rate, a REPORT's billed time and
    /// memory added to it; complete buckets are judged.
    fn apply<S: Scope>(&self, tick: &Tick<'_>, at: &At<'_>, scope: &mut S) {
        let Some(key) = at.batch_key else { return };
        let st: &mut RateState = scope.state(key, at.ts + 30 * DAY_MS);
        match tick {
            Tick::Start(request_id) => {
                self.start(st, at.ts, stable_hash(&["req", request_id]), || Sample {
                    log_stream: at.stream.to_string(),
                    line: at.message.to_string(),
                });
            }
            Tick::Report {
                billed_ms,
                memory_mb,
            } => self.report(st, at.ts, *billed_ms, *memory_mb),
        }
        self.close_rate(scope, at.group, key.as_str(), None);
    }

    /// Invocations a minute against the typical, and what they cost.
    fn what(&self, s: &Summary<'_>) -> String {
        format!(
            "{} was invoked {:.0} times a minute against a typical {:.1} ({} invocation(s) {}); at this rate it costs about ${:.2} more per hour.",
            s.place,
            s.metric("rate_per_min"),
            s.metric("baseline_per_min"),
            s.count,
            s.span,
            s.metric("projected_extra_cost_per_hour_usd"),
        )
    }

    /// Every function's open buckets, so a minute is judged even when the
    /// function went quiet after it.
    fn listed(&self) -> Option<Listed> {
        Some(Listed {
            space: RATES,
            function_facts: false,
        })
    }

    /// Judge the complete buckets of every function's rate with the sweep's
    /// watermark, so a function that went quiet is still judged.
    fn sweep<S: Scope>(&self, scope: &mut S, watermark: i64) {
        let rule = scope.rule_id().to_string();
        for key in scope.loaded::<RateState>(&RATES.prefix(&rule)) {
            if let Some(place) = RATES.parse(&rule, &key) {
                let group = place.group.to_string();
                self.close_rate(scope, &group, &key, Some(watermark));
            }
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `pricing:` of a rate rule, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPricing {
    request_usd: Option<f64>,
    gb_second_usd: Option<BTreeMap<String, f64>>,
}

/// The fields of a `rate` rule, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    window: Option<String>,
    warmup: Option<u64>,
    factor: Option<f64>,
    sigmas: Option<f64>,
    min_rate: Option<u64>,
    architecture: Option<String>,
    function_architectures: Option<BTreeMap<String, String>>,
    pricing: Option<RawPricing>,
}

impl KindConfig for Config {
    fn compile(self, cx: &mut Cx<'_>) -> Option<Detector> {
        let bucket_ms = cx.duration("window", self.window.as_deref(), 60_000);
        if !(1_000..=3_600_000).contains(&bucket_ms) {
            cx.err(
                "window:",
                "a rate rule's `window` (bucket) must be between 1s and 1h",
            );
        }
        let factor = self.factor.unwrap_or(5.0);
        if !(factor > 1.0 && factor.is_finite()) {
            cx.err("factor:", "`factor` must be greater than 1");
        }
        let sigmas = self.sigmas.unwrap_or(6.0);
        if !(sigmas >= 0.0 && sigmas.is_finite()) {
            cx.err("sigmas:", "`sigmas` must be ≥ 0");
        }
        let Some(p) = &self.pricing else {
            cx.needs(
                "pricing",
                "kind:",
                "a rate rule needs `pricing:` (request_usd and gb_second_usd per architecture)",
            );
            return None;
        };
        let request_usd = p.request_usd.unwrap_or(-1.0);
        if !(request_usd >= 0.0 && request_usd.is_finite()) {
            cx.err(
                "pricing:",
                "pricing.request_usd must be a price ≥ 0 in USD per request",
            );
        }
        let gb_second_usd = p.gb_second_usd.clone().unwrap_or_default();
        check_prices(cx, &gb_second_usd);
        let architecture = self.architecture.clone().unwrap_or_else(|| "x86_64".into());
        let function_architectures = self.function_architectures.clone().unwrap_or_default();
        for (at, arch) in std::iter::once(("architecture:", &architecture)).chain(
            function_architectures
                .values()
                .map(|a| ("function_architectures:", a)),
        ) {
            if !gb_second_usd.is_empty() && !gb_second_usd.contains_key(arch) {
                cx.err(
                    at,
                    format!("architecture `{arch}` has no price in pricing.gb_second_usd"),
                );
            }
        }
        Some(Detector::Rate(Rate {
            bucket_ms,
            warmup: self.warmup.unwrap_or(20),
            factor,
            sigmas,
            min_rate: self.min_rate.unwrap_or(60),
            architecture,
            function_architectures,
            pricing: Pricing {
                request_usd,
                gb_second_usd,
            },
        }))
    }
}

/// `pricing.gb_second_usd`: a price ≥ 0 for each architecture given.
fn check_prices(cx: &mut Cx<'_>, gb_second_usd: &BTreeMap<String, f64>) {
    if gb_second_usd.is_empty() {
        cx.err(
            "pricing:",
            "pricing.gb_second_usd must give a USD price per GB-second for each architecture (x86_64, arm64)",
        );
    }
    for (arch, price) in gb_second_usd {
        if !(*price >= 0.0 && price.is_finite()) {
            cx.err(
                &format!("{arch}:"),
                format!("pricing.gb_second_usd.{arch} must be ≥ 0"),
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn rule() -> Rate {
        Rate {
            bucket_ms: MIN,
            warmup: 20,
            factor: 5.0,
            sigmas: 6.0,
            min_rate: 60,
            architecture: "x86_64".into(),
            function_architectures: BTreeMap::from([("graviton".into(), "arm64".into())]),
            pricing: Pricing {
                request_usd: 0.0000002,
                gb_second_usd: BTreeMap::from([
                    ("x86_64".into(), 0.0000166667),
                    ("arm64".into(), 0.0000133334),
                ]),
            },
        }
    }

    /// Feed `counts[i]` STARTs in minute i, spread over the minute, closing
    /// with the function's clock as the engine does; returns the spikes.
    fn feed(r: &Rate, st: &mut RateState, f: Option<&str>, counts: &[u64]) -> Vec<Spike> {
        let mut out = Vec::new();
        let mut h = 0;
        for (m, c) in counts.iter().enumerate() {
            for k in 0..*c {
                h += 1;
                let ts = m as i64 * MIN + (k as i64 * MIN) / (*c as i64);
                assert!(r.start(st, ts, h, Sample::default));
                r.report(st, ts, Some(200), Some(1024));
                out.extend(r.close(st, f, st.clock));
            }
        }
        out
    }

    /// Deterministic ±20 % jitter around `base`.
    fn jitter(i: u64, base: f64) -> u64 {
        (base * (0.8 + 0.4 * ((i * 7919) % 101) as f64 / 100.0)).round() as u64
    }

    #[test]
    fn a_spike_after_half_an_hour_fires_with_its_cost() {
        let r = rule();
        let mut st = RateState::default();
        let mut counts: Vec<u64> = (0..30).map(|i| jitter(i, 10.0)).collect();
        counts.extend([400, 10, 10, 10]);
        let spikes = feed(&r, &mut st, None, &counts);
        assert_eq!(spikes.len(), 1, "{spikes:?}");
        let s = &spikes[0];
        assert_eq!(s.bucket, 30 * MIN);
        assert_eq!(s.count, 400);
        assert_eq!(s.metrics["rate_per_min"], 400.0);
        let base = s.metrics["baseline_per_min"];
        assert!((8.0..12.0).contains(&base), "{base}");
        // (400 - base) × 60 per hour × (1 GB × 0.2 s × x86 price + request price).
        let want = (400.0 - base) * 60.0 * (0.2 * 0.0000166667 + 0.0000002);
        let got = s.metrics["projected_extra_cost_per_hour_usd"];
        assert!((got - want).abs() < 0.001, "{got} vs {want}");
        assert!(st.mean < 12.0, "the spike was not learned: {}", st.mean);
    }

    #[test]
    fn arm64_is_priced_lower() {
        let r = rule();
        let mut counts: Vec<u64> = vec![10; 25];
        counts.extend([400, 10, 10]);
        let x86 = feed(&r, &mut RateState::default(), Some("other"), &counts);
        let arm = feed(&r, &mut RateState::default(), Some("graviton"), &counts);
        let cost = |s: &[Spike]| s[0].metrics["projected_extra_cost_per_hour_usd"];
        assert!(cost(&arm) < cost(&x86), "{} vs {}", cost(&arm), cost(&x86));
        assert_eq!(r.architecture_of(Some("graviton")), "arm64");
    }

    #[test]
    fn jitter_and_a_single_blip_stay_silent() {
        let r = rule();
        let mut st = RateState::default();
        let mut counts: Vec<u64> = (0..60).map(|i| jitter(i, 40.0)).collect();
        counts.extend([60, 40, 40]);
        assert!(feed(&r, &mut st, None, &counts).is_empty());
    }

    #[test]
    fn nothing_is_judged_during_warmup() {
        let r = rule();
        let mut st = RateState::default();
        assert!(feed(&r, &mut st, None, &[10, 10, 10, 400, 10, 10]).is_empty());
    }

    #[test]
    fn gaps_are_learned_as_zeros_but_bounded() {
        let r = rule();
        let mut st = RateState::default();
        feed(&r, &mut st, None, &[10; 25]);
        // Minutes 23 and 24 are still open (the clock is in minute 24).
        assert_eq!(st.open.len(), 2);
        let n = st.n;
        // Next START ten hours later: the gap teaches at most MAX_GAP_BUCKETS zeros.
        let later = (25 + 600) * MIN;
        r.start(&mut st, later, 99_999, Sample::default);
        r.close(&mut st, None, later + 2 * MIN);
        // The two open minutes, the bounded zeros, the minute of the new START.
        assert_eq!(st.n, n + 2 + MAX_GAP_BUCKETS as u64 + 1);
        assert!(st.mean < 1.0, "{}", st.mean);
        assert_eq!(st.closed_until, Some(later + MIN));
    }

    #[test]
    fn a_low_rate_never_fires_and_redelivery_counts_once() {
        let r = rule();
        let mut st = RateState::default();
        let mut counts = vec![1; 30];
        // 30× the typical, but below min_rate.
        counts.extend([30, 1, 1]);
        assert!(feed(&r, &mut st, None, &counts).is_empty());
        let mut st = RateState::default();
        assert!(r.start(&mut st, 5, 7, Sample::default));
        assert!(
            !r.start(&mut st, 6, 7, Sample::default),
            "same request again"
        );
        assert_eq!(st.open[&0], 1);
        r.close(&mut st, None, 2 * MIN);
        assert!(
            st.seen.is_empty(),
            "request ids are kept only for open buckets"
        );
    }

    #[test]
    fn a_complete_bucket_waits_one_more_bucket() {
        let r = rule();
        let mut st = RateState::default();
        r.start(&mut st, 10, 1, Sample::default);
        r.close(&mut st, None, MIN + 59_000);
        assert_eq!(st.n, 0, "minute 0 may still receive late STARTs");
        r.close(&mut st, None, 2 * MIN);
        assert_eq!(st.n, 1);
        assert!(
            !r.start(&mut st, 20, 2, Sample::default),
            "too late for a complete bucket"
        );
    }

    #[test]
    fn integer_bucket_keys_round_trip_as_stored_json() {
        // Regression: maps keyed by bucket start became JSON string keys,
        // which the tagged StateValue could not read back.
        let r = rule();
        let mut st = RateState::default();
        feed(&r, &mut st, None, &[10, 12, 9]);
        let v = crate::state::StateValue::Kind(crate::detect::KindState::Rate(st));
        let text = serde_json::to_string(&v).unwrap();
        assert!(text.starts_with(r#"{"type":"rate""#), "{text}");
        assert_eq!(
            serde_json::from_str::<crate::state::StateValue>(&text).unwrap(),
            v
        );
    }

    #[test]
    fn a_later_minute_first_does_not_turn_away_earlier_ones() {
        let r = rule();
        let mut st = RateState::default();
        assert!(r.start(&mut st, 30 * MIN, 1, Sample::default));
        let clock = st.clock;
        r.close(&mut st, None, clock);
        assert_eq!(st.closed_until, None);
        assert!(r.start(&mut st, 29 * MIN + 30_000, 2, Sample::default));
        assert_eq!(st.open.len(), 2);
    }

    #[test]
    fn the_sweep_judges_a_quiet_function_and_writes_only_a_spike() {
        let r = rule();
        let mut st = RateState::default();
        let mut counts = vec![10; 25];
        counts.push(300);
        feed(&r, &mut st, None, &counts);
        let before = st.clone();
        let clock = st.clock;
        assert!(
            r.sweep(&mut st, None, clock + MIN).is_empty(),
            "not quiet yet"
        );
        let spikes = r.sweep(&mut st, None, clock + 10 * MIN);
        assert_eq!(spikes.len(), 1);
        assert_eq!(spikes[0].count, 300);
        assert_eq!(
            st.closed_until,
            Some(26 * MIN),
            "up to the last event's minute only"
        );
        // Without a spike, the state is left to the batches.
        let mut quiet = before.clone();
        quiet.open.insert(25 * MIN, 10);
        let copy = quiet.clone();
        assert!(r.sweep(&mut quiet, None, clock + 10 * MIN).is_empty());
        assert_eq!(quiet, copy);
    }
}
