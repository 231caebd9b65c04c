//! `logwarden-notifier`: SNS alerts → Slack.
fn main() {}
