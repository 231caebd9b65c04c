//! State keys: typed, formatted and parsed here and nowhere else.
//!
//! A state key is text because stores hold text: `<space>|<rule>|<group>`,
//! `<space>|<rule>|<group>|<tail>` (the tail is an incident [`Key`]'s
//! canonical text or a log stream) or `f|<group>` for what is known about a
//! function. Each kind's file names the [`Space`] its state lives in; the
//! engine knows only incidents and function facts. The text is stored in
//! shared state (DynamoDB items), so it never changes.
//!
//! The `<group>` of a key is a log group in its account and region
//! ([`Located`]): the bare name for the detector's home account and region
//! (so a single-account deployment keeps the keys it always had), else
//! `:<account>:<region>:<name>`. A log group name never holds `:`, so the
//! two cannot be confused, and two accounts' (or regions') groups of the
//! same name are two places: two baselines, two rate series, two incidents.

use std::borrow::Cow;
use std::fmt;

use super::{Key, push_key_text};

/// A family of state keys: its tag and whether its keys carry a tail after
/// the log group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    tag: &'static str,
    tail: bool,
}

/// Incidents: `i|<rule>|<group>|<key text>`.
pub const INCIDENT: Space = Space::with_tail("i");

/// Per-key sliding windows of the windowed kinds: `w|<rule>|<group>|<key
/// text>` (rule ids are unique, so kinds can share the space).
pub const WINDOWS: Space = Space::with_tail("w");

/// Where a parsed key points: its log group and, in a space with tails, the tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place<'k> {
    /// Log group.
    pub group: &'k str,
    /// What follows the group (`""` in a space without tails).
    pub tail: &'k str,
}

impl Space {
    /// Keys `<tag>|<rule>|<group>|<tail>`.
    pub const fn with_tail(tag: &'static str) -> Space {
        Space { tag, tail: true }
    }

    /// Keys `<tag>|<rule>|<group>`.
    pub const fn per_group(tag: &'static str) -> Space {
        Space { tag, tail: false }
    }

    /// The prefix of every key of `rule` in this space, for listings.
    pub fn prefix(self, rule: &str) -> String {
        format!("{}|{rule}|", self.tag)
    }

    /// The key of `rule` and `group` (a space without tails).
    pub fn key(self, rule: &str, group: &str) -> StateKey {
        debug_assert!(!self.tail, "{} keys have a tail", self.tag);
        StateKey(format!("{}|{rule}|{group}", self.tag))
    }

    /// The key of `rule`, `group` and a log stream (a space with tails).
    pub fn stream_key(self, rule: &str, group: &str, stream: &str) -> StateKey {
        debug_assert!(self.tail, "{} keys have no tail", self.tag);
        StateKey(format!("{}|{rule}|{group}|{stream}", self.tag))
    }

    /// The key of `rule`, `group` and an incident key (a space with tails).
    pub fn keyed(self, rule: &str, group: &str, key: &Key) -> StateKey {
        debug_assert!(self.tail, "{} keys have no tail", self.tag);
        // Written into one buffer: `format!` of a formatted key allocated twice.
        let mut s = String::with_capacity(self.tag.len() + rule.len() + group.len() + 40);
        for part in [self.tag, "|", rule, "|", group, "|"] {
            s.push_str(part);
        }
        push_key_text(&mut s, key);
        StateKey(s)
    }

    /// The place of `key` when it is a key of `rule` in this space.
    pub fn parse<'k>(self, rule: &str, key: &'k str) -> Option<Place<'k>> {
        let rest = key
            .strip_prefix(self.tag)?
            .strip_prefix('|')?
            .strip_prefix(rule)?
            .strip_prefix('|')?;
        if !self.tail {
            return Some(Place {
                group: rest,
                tail: "",
            });
        }
        let (group, tail) = rest.split_once('|')?;
        Some(Place { group, tail })
    }
}

/// A log group in its account and region, as state keys and alert ids name
/// it (see the module docs): `account` and `region` are `None` for the home
/// place, whose text is the bare group name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<'a> {
    /// Account id of a place outside home (`None`: home, or unknown).
    pub account: Option<Cow<'a, str>>,
    /// Region of a place outside home (`None`: home).
    pub region: Option<&'a str>,
    /// The log group's name.
    pub group: &'a str,
}

impl<'a> Located<'a> {
    /// The text of `group` in `account` and `region`, outside home. The
    /// account is escaped (`%`, `:`, `|`): it comes from the payload.
    pub fn text(account: &str, region: &str, group: &str) -> String {
        let account = account
            .replace('%', "%25")
            .replace(':', "%3A")
            .replace('|', "%7C");
        format!(":{account}:{}:{group}", region.replace(':', ""))
    }

    /// Reads a place's text back (the bare name is home).
    pub fn parse(text: &'a str) -> Located<'a> {
        let scoped = text.strip_prefix(':').and_then(|rest| {
            let (account, rest) = rest.split_once(':')?;
            let (region, group) = rest.split_once(':')?;
            let account = if account.contains('%') {
                Cow::Owned(
                    account
                        .replace("%3A", ":")
                        .replace("%7C", "|")
                        .replace("%25", "%"),
                )
            } else {
                Cow::Borrowed(account)
            };
            Some(Located {
                account: Some(account).filter(|a| !a.is_empty()),
                region: Some(region).filter(|r| !r.is_empty()),
                group,
            })
        });
        scoped.unwrap_or(Located {
            account: None,
            region: None,
            group: text,
        })
    }
}

/// One state key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateKey(String);

impl StateKey {
    /// The incident of `rule` for `key` in `group`.
    pub fn incident(rule: &str, group: &str, key: &Key) -> StateKey {
        INCIDENT.keyed(rule, group, key)
    }

    /// What is known about the function of `group` (its learned timeout).
    pub fn function(group: &str) -> StateKey {
        StateKey(format!("f|{group}"))
    }

    /// The text, as stores hold it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, as stores hold it.
    pub fn into_string(self) -> String {
        self.0
    }

    /// A store's two-part key for `key`: the space and rule (one rule's keys
    /// of one space share it, so they are listed together), then the rest.
    pub fn partition(key: &str) -> (&str, &str) {
        match key.match_indices('|').nth(1) {
            Some((i, _)) => (&key[..i], &key[i + 1..]),
            None => match key.split_once('|') {
                Some((a, b)) => (a, b),
                None => (key, ""),
            },
        }
    }
}

impl fmt::Display for StateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<StateKey> for String {
    fn from(k: StateKey) -> String {
        k.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const STREAMS: Space = Space::with_tail("s");
    const RATES: Space = Space::per_group("r");

    #[test]
    fn keys_parse_back_to_their_place() {
        let k = STREAMS.stream_key("missing-end", "/aws/lambda/f", "2026/11/22/[$LATEST]abc|d");
        assert_eq!(
            STREAMS.parse("missing-end", k.as_str()),
            Some(Place {
                group: "/aws/lambda/f",
                tail: "2026/11/22/[$LATEST]abc|d"
            })
        );
        assert_eq!(STREAMS.parse("missing", k.as_str()), None);
        assert_eq!(RATES.parse("missing-end", k.as_str()), None);
        let r = RATES.key("spike", "/aws/lambda/f");
        assert_eq!(r.as_str(), "r|spike|/aws/lambda/f");
        assert!(r.as_str().starts_with(&RATES.prefix("spike")));
        assert_eq!(
            RATES.parse("spike", r.as_str()).unwrap().group,
            "/aws/lambda/f"
        );
    }

    #[test]
    fn the_engine_keys_keep_their_text() {
        let k = Key::from([
            ("source_ip".into(), "1.2.3.4".into()),
            ("a".into(), "x|y=z".into()),
        ]);
        assert_eq!(
            StateKey::incident("r", "/g", &k).as_str(),
            "i|r|/g|a=x%7Cy%3Dz,source_ip=1.2.3.4"
        );
        assert_eq!(
            StateKey::function("/aws/lambda/f").as_str(),
            "f|/aws/lambda/f"
        );
    }

    #[test]
    fn places_outside_home_parse_back_and_home_is_the_bare_name() {
        let t = Located::text("1111:2|%", "eu-west-1", "/aws/lambda/f");
        assert_eq!(t, ":1111%3A2%7C%25:eu-west-1:/aws/lambda/f");
        let l = Located::parse(&t);
        assert_eq!(l.account.as_deref(), Some("1111:2|%"));
        assert_eq!(l.region, Some("eu-west-1"));
        assert_eq!(l.group, "/aws/lambda/f");
        let home = Located::parse("/aws/lambda/f");
        assert_eq!(
            (home.account, home.region, home.group),
            (None, None, "/aws/lambda/f")
        );
        // Two accounts' groups of one name are two places, so two keys.
        let a = StateKey::function(&Located::text("111111111111", "eu-west-1", "/g"));
        let b = StateKey::function(&Located::text("222222222222", "eu-west-1", "/g"));
        assert_ne!(a, b);
        assert_ne!(a, StateKey::function("/g"));
    }

    #[test]
    fn partition_splits_after_the_rule() {
        let p = StateKey::partition;
        assert_eq!(
            p("w|failed-auth-burst|/aws/lambda/f|source_ip=1.2.3.4"),
            ("w|failed-auth-burst", "/aws/lambda/f|source_ip=1.2.3.4")
        );
        assert_eq!(p("s|missing-end|"), ("s|missing-end", ""));
        assert_eq!(p("f|/aws/lambda/f"), ("f", "/aws/lambda/f"));
        assert_eq!(p("x"), ("x", ""));
    }
}
