//! Slack text objects and blocks: escaping within Slack's limits and the
//! block builders the renderers share.

use serde_json::{Value, json};

use super::{
    MAX_BLOCKS, MAX_BUTTON_URL_CHARS, MAX_FIELD_CHARS, MAX_HEADER_CHARS, MAX_SECTION_CHARS,
};

/// Escape Slack's three mrkdwn control characters (`&`, `<`, `>`).
///
/// Escaping `<` and `>` is what stops `<!channel>`, `<!here>`, `<@U…>` and
/// `<https://evil|click>` in a log line from becoming a mention or a link.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        c => out.push(c),
    }
}

/// Zero-width space: put between two backticks, it keeps them from forming
/// the ``` that would close the code block early (or open a new one).
const BACKTICK_BREAK: char = '\u{200B}';

/// `s` escaped for mrkdwn (and, when `code`, with no two backticks adjacent),
/// at most `max` characters; when cut, the last character is `…`. Cuts fall
/// between source characters, never inside an `&amp;` entity.
pub(super) fn mrkdwn_capped(s: &str, max: usize, code: bool) -> String {
    let full = mrkdwn_pieces(s, code, usize::MAX);
    if full.chars().count() <= max {
        return full;
    }
    let mut out = mrkdwn_pieces(s, code, max.saturating_sub(1));
    out.push('…');
    out
}

/// Escape `s` piece by piece (one source character each) while the output
/// stays within `budget` characters.
fn mrkdwn_pieces(s: &str, code: bool, budget: usize) -> String {
    let mut out = String::new();
    let mut used = 0usize;
    let mut prev_backtick = false;
    for c in s.chars() {
        let mut piece = String::new();
        if code && c == '`' && prev_backtick {
            piece.push(BACKTICK_BREAK);
        }
        push_escaped(&mut piece, c);
        let n = piece.chars().count();
        if used + n > budget {
            break;
        }
        used += n;
        out.push_str(&piece);
        prev_backtick = c == '`';
    }
    out
}

/// Text for a `plain_text` object (the header): Slack parses no mentions or
/// links there, but `<` and `>` are swapped for look-alikes anyway, so the
/// header is safe whatever Slack does with plain text; entities are not used
/// because plain text would show them literally.
fn plain_capped(s: &str, max: usize) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| match c {
            '<' => '‹',
            '>' => '›',
            '\n' | '\r' | '\t' => ' ',
            c => c,
        })
        .collect();
    crate::alert::truncate_chars(&cleaned, max)
}

/// Slack rejects empty text objects.
fn or_dash(s: String) -> String {
    if s.trim().is_empty() { "—".into() } else { s }
}

pub(super) fn header(text: &str) -> Value {
    json!({
        "type": "header",
        "text": {"type": "plain_text", "text": or_dash(plain_capped(text, MAX_HEADER_CHARS)), "emoji": true}
    })
}

/// A section whose text is already mrkdwn (escaped, within limits).
pub(super) fn section(mrkdwn: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": or_dash(mrkdwn)}})
}

/// A `*Label*\nvalue` field with the value escaped and the whole within
/// [`MAX_FIELD_CHARS`].
pub(super) fn field(label: &str, value: &str) -> Value {
    let head = format!("*{label}*\n");
    let room = MAX_FIELD_CHARS.saturating_sub(head.chars().count());
    let text = format!("{head}{}", or_dash(mrkdwn_capped(value, room, false)));
    json!({"type": "mrkdwn", "text": text})
}

pub(super) fn context(mrkdwn: String) -> Value {
    json!({"type": "context", "elements": [{"type": "mrkdwn", "text": or_dash(mrkdwn)}]})
}

/// A link button, or `None` when the URL is not one Slack would accept
/// (not http(s), or longer than [`MAX_BUTTON_URL_CHARS`]); a truncated URL
/// would be a broken link, so it is left out rather than cut.
pub(super) fn button(label: &str, action_id: &str, url: &str) -> Option<Value> {
    if url.chars().count() > MAX_BUTTON_URL_CHARS {
        return None;
    }
    let parsed = reqwest::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return None;
    }
    Some(json!({
        "type": "button",
        "text": {"type": "plain_text", "text": label, "emoji": true},
        "action_id": action_id,
        "url": url,
    }))
}

/// Code-block sections for `lines` under a `*label*`, packed several lines to a
/// block while each block stays within [`MAX_SECTION_CHARS`].
pub(super) fn code_sections(label: &str, lines: &[&str]) -> Vec<Value> {
    let open = format!("*{label}*\n```\n");
    let close = "\n```";
    let room = MAX_SECTION_CHARS - open.chars().count() - close.chars().count();
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut cur_len = 0usize;
    for line in lines {
        let piece = mrkdwn_capped(line, room, true);
        let n = piece.chars().count();
        if !cur.is_empty() && cur_len + 1 + n > room {
            out.push(section(format!("{open}{cur}{close}")));
            cur.clear();
            cur_len = 0;
        }
        if !cur.is_empty() {
            cur.push('\n');
            cur_len += 1;
        }
        // A blank line would leave an empty-looking block; keep one space.
        cur.push_str(if piece.is_empty() { " " } else { &piece });
        cur_len += n.max(1);
    }
    if !cur.is_empty() {
        out.push(section(format!("{open}{cur}{close}")));
    }
    out
}

pub(super) fn severity_emoji(severity: &str) -> &'static str {
    match severity.to_ascii_lowercase().as_str() {
        "critical" => ":rotating_light:",
        "high" => ":red_circle:",
        "medium" => ":large_orange_circle:",
        "low" => ":large_blue_circle:",
        _ => ":white_circle:",
    }
}

pub(super) fn body(fallback: String, mut blocks: Vec<Value>) -> Value {
    blocks.truncate(MAX_BLOCKS);
    json!({"text": or_dash(fallback), "blocks": blocks})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_and_caps_never_split_an_entity() {
        assert_eq!(escape("a<b>&c"), "a&lt;b&gt;&amp;c");
        assert_eq!(mrkdwn_capped("<<<", 9, false), "&lt;&lt;…");
        assert_eq!(mrkdwn_capped("<<<", 12, false), "&lt;&lt;&lt;");
        assert_eq!(mrkdwn_capped("abc", 2, false), "a…");
        assert_eq!(mrkdwn_capped("``", 10, true), "`\u{200B}`");
    }
}
