//! Slack: alerts as Block Kit messages posted to an incoming webhook.
