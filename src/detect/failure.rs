//! `failure`: invocations that timed out, ran out of memory, crashed, or
//! environments that failed to initialise, from both log formats.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::config::{Cx, KindConfig};
use super::{At, Detect, Detector, Line, Matching, Scope, Summary, stable_hash};
use crate::platform::{ExitReason, Record, Status};

/// The classes of failure a rule can listen to (`on:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// `Task timed out`, `Status: timeout`, JSON status `timeout`.
    Timeout,
    /// `Runtime.OutOfMemory`, `signal: killed`, runtime OOM strings.
    OutOfMemory,
    /// Other crashes: `Status: error`, `Runtime.ExitError`, `Process exited …`.
    RuntimeExit,
    /// INIT_REPORT / RESTORE_REPORT (or JSON initReport) that did not succeed.
    InitFailure,
}

/// Configuration of a failure rule.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The classes that make this rule fire.
    pub on: Vec<FailureClass>,
}

/// One failed invocation or init phase.
#[derive(Debug, Clone, PartialEq)]
pub struct Failed<'a> {
    /// Which class.
    pub class: FailureClass,
    /// Request id, when the line names one.
    pub request_id: Option<Cow<'a, str>>,
    /// What Lambda called it (`Runtime.OutOfMemory`, `timeout`, …).
    pub detail: String,
    /// Duration, when the record carries one.
    pub duration_ms: Option<f64>,
    /// Max memory used and memory size, when the record carries them.
    pub memory_mb: Option<(u32, u32)>,
}

fn is_oom(error_type: Option<&str>) -> bool {
    error_type.is_some_and(|e| e.contains("OutOfMemory"))
}

/// What failure, if any, a platform record reports.
pub fn classify<'a>(rec: &'a Record<'a>) -> Option<Failed<'a>> {
    let failed = |class, request_id: Option<&'a Cow<'a, str>>, detail: String| Failed {
        class,
        request_id: request_id.map(|r| Cow::Borrowed(r.as_ref())),
        detail,
        duration_ms: None,
        memory_mb: None,
    };
    let by_status = |status: Status, error_type: Option<&str>| -> Option<(FailureClass, String)> {
        match status {
            Status::Success => None,
            Status::Timeout => Some((FailureClass::Timeout, "Status: timeout".into())),
            _ if is_oom(error_type) => Some((
                FailureClass::OutOfMemory,
                error_type.unwrap_or("Runtime.OutOfMemory").to_string(),
            )),
            Status::Error | Status::Failure | Status::Other => Some((
                FailureClass::RuntimeExit,
                error_type.unwrap_or("Status: error").to_string(),
            )),
        }
    };
    match rec {
        Record::Report(r) => {
            let (class, detail) = by_status(r.status, r.error_type.as_deref())?;
            let mut f = failed(class, Some(&r.request_id), detail);
            f.duration_ms = Some(r.duration_ms);
            f.memory_mb = r.max_memory_used_mb.zip(r.memory_size_mb);
            Some(f)
        }
        Record::RuntimeDone {
            request_id,
            status,
            error_type,
            duration_ms,
        } => {
            let (class, detail) = by_status(*status, error_type.as_deref())?;
            let mut f = failed(class, Some(request_id), detail);
            f.duration_ms = *duration_ms;
            Some(f)
        }
        Record::Timeout {
            request_id,
            seconds,
        } => {
            let mut f = failed(
                FailureClass::Timeout,
                request_id.as_ref(),
                format!("Task timed out after {seconds:.2} seconds"),
            );
            f.duration_ms = Some(seconds * 1_000.0);
            Some(f)
        }
        Record::RuntimeExit {
            request_id,
            reason,
            error_type,
        } => {
            let (class, detail) = match reason {
                ExitReason::SignalKilled => (
                    FailureClass::OutOfMemory,
                    "Runtime exited with error: signal: killed".to_string(),
                ),
                ExitReason::ProcessExited => (
                    FailureClass::RuntimeExit,
                    "Process exited before completing request".to_string(),
                ),
                ExitReason::ExitError => (
                    FailureClass::RuntimeExit,
                    error_type
                        .as_deref()
                        .unwrap_or("Runtime.ExitError")
                        .to_string(),
                ),
            };
            Some(failed(class, request_id.as_ref(), detail))
        }
        Record::OutOfMemory { request_id, marker } => Some(failed(
            FailureClass::OutOfMemory,
            request_id.as_ref(),
            (*marker).to_string(),
        )),
        Record::InitReport {
            status, error_type, ..
        }
        | Record::RestoreReport {
            status, error_type, ..
        } => {
            let detail = match (status, error_type) {
                (Status::Success, _) => return None,
                (_, Some(e)) => e.to_string(),
                (Status::Timeout, None) => "Status: timeout".to_string(),
                (_, None) => "Status: error".to_string(),
            };
            let what = if matches!(rec, Record::InitReport { .. }) {
                "INIT_REPORT"
            } else {
                "RESTORE_REPORT"
            };
            Some(failed(
                FailureClass::InitFailure,
                None,
                format!("{what} {detail}"),
            ))
        }
        _ => None,
    }
}

/// A failed invocation of a class the rule is on, with the figures it carries.
pub struct Failing<'a> {
    /// Request id, when the line names one.
    pub request_id: Option<Cow<'a, str>>,
    /// Duration and memory, when the record carries them.
    pub metrics: BTreeMap<String, f64>,
}

impl Detect for Failure {
    type Obs<'a> = Failing<'a>;

    fn observe<'p>(
        &self,
        line: &Line<'p, '_>,
        _: &mut Matching<'_>,
        out: &mut impl FnMut(Failing<'p>),
    ) {
        let Some(fail) = line.failed.as_ref().filter(|x| self.on.contains(&x.class)) else {
            return;
        };
        let mut metrics = BTreeMap::new();
        if let Some(d) = fail.duration_ms {
            metrics.insert("duration_ms".to_string(), d);
        }
        if let Some((used, size)) = fail.memory_mb {
            metrics.insert("max_memory_used_mb".to_string(), f64::from(used));
            metrics.insert("memory_size_mb".to_string(), f64::from(size));
        }
        out(Failing {
            request_id: fail
                .request_id
                .as_deref()
                .map(|r| Cow::Owned(r.to_string())),
            metrics,
        });
    }

    /// Every failure is a finding; one invocation counts once.
    fn apply<S: Scope>(&self, o: &Failing<'_>, at: &At<'_>, scope: &mut S) {
        let ids = o.request_id.iter().map(|r| r.to_string()).collect();
        let f = at.finding(1, ids, o.metrics.clone());
        let dedupe = o
            .request_id
            .as_deref()
            .map_or_else(|| at.hash(), |r| stable_hash(&["req", r]));
        scope.record(at.group, f, dedupe);
    }

    fn what(&self, s: &Summary<'_>) -> String {
        format!(
            "{} failed invocation(s) of {} {}.",
            s.count, s.place, s.span
        )
    }
}

/// The fields of a `failure` rule, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    on: Option<Vec<FailureClass>>,
}

impl KindConfig for Config {
    fn compile(self, cx: &mut Cx<'_>) -> Option<Detector> {
        let on = self.on.unwrap_or_default();
        if on.is_empty() {
            cx.needs(
                "on",
                "kind:",
                "a failure rule needs `on:` (timeout, out_of_memory, runtime_exit, init_failure)",
            );
        }
        Some(Detector::Failure(Failure { on }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::platform::Report;

    fn report(status: Status, error_type: Option<&'static str>) -> Record<'static> {
        Record::Report(Report {
            request_id: "r1".into(),
            duration_ms: 10.0,
            billed_duration_ms: Some(10),
            memory_size_mb: Some(128),
            max_memory_used_mb: Some(128),
            init_duration_ms: None,
            restore_duration_ms: None,
            billed_restore_duration_ms: None,
            status,
            error_type: error_type.map(Cow::Borrowed),
            xray_trace_id: None,
        })
    }

    #[test]
    fn report_statuses_map_to_classes() {
        assert!(classify(&report(Status::Success, None)).is_none());
        let r = report(Status::Timeout, None);
        assert_eq!(classify(&r).unwrap().class, FailureClass::Timeout);
        let r = report(Status::Error, Some("Runtime.OutOfMemory"));
        let f = classify(&r).unwrap();
        assert_eq!(f.class, FailureClass::OutOfMemory);
        assert_eq!(f.memory_mb, Some((128, 128)));
        let r = report(Status::Error, Some("Runtime.ExitError"));
        assert_eq!(classify(&r).unwrap().class, FailureClass::RuntimeExit);
    }

    #[test]
    fn signal_killed_is_out_of_memory_and_process_exit_is_a_crash() {
        let r = Record::RuntimeExit {
            request_id: Some("r".into()),
            reason: ExitReason::SignalKilled,
            error_type: Some("Runtime.ExitError".into()),
        };
        assert_eq!(classify(&r).unwrap().class, FailureClass::OutOfMemory);
        let r = Record::RuntimeExit {
            request_id: None,
            reason: ExitReason::ProcessExited,
            error_type: None,
        };
        assert_eq!(classify(&r).unwrap().class, FailureClass::RuntimeExit);
    }

    #[test]
    fn init_and_restore_failures() {
        let r = Record::InitReport {
            duration_ms: Some(1.0),
            phase: Some("init".into()),
            status: Status::Error,
            error_type: Some("Runtime.UserCodeSyntaxError".into()),
        };
        let f = classify(&r).unwrap();
        assert_eq!(f.class, FailureClass::InitFailure);
        assert_eq!(f.detail, "INIT_REPORT Runtime.UserCodeSyntaxError");
        let ok = Record::RestoreReport {
            duration_ms: Some(1.0),
            status: Status::Success,
            error_type: None,
        };
        assert!(classify(&ok).is_none());
    }
}
