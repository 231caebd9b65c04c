//! Helpers shared by the platform tests.

#![allow(clippy::panic)]

use std::borrow::Cow;

use super::{AppLine, Record, Report, parse};

pub(super) const ID: &str = "c793869b-ee49-115b-a5b6-4fd21e8dedac";

pub(super) fn report(msg: &str) -> Report<'_> {
    match parse(msg) {
        Record::Report(r) => r,
        other => panic!("expected Report for {msg:?}, got {other:?}"),
    }
}

pub(super) fn app_line(msg: &str) -> AppLine<'_> {
    match parse(msg) {
        Record::App(line) => line,
        other => panic!("expected App for {msg:?}, got {other:?}"),
    }
}

pub(super) fn plain_app(msg: &str) -> Record<'_> {
    Record::App(AppLine {
        timestamp: None,
        request_id: None,
        level: None,
        body: msg,
        body_is_json: msg.starts_with('{'),
    })
}

pub(super) fn b(s: &str) -> Cow<'_, str> {
    Cow::Borrowed(s)
}
