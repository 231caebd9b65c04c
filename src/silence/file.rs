//! Silences in a YAML file (`--silences FILE`): `silences: [ … ]`, each as
//! [`Silence`] serializes (times in RFC 3339). A missing file holds none.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Silence, SilenceError};

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBody {
    #[serde(default)]
    silences: Vec<Silence>,
}

/// The silences in `path` (none when it does not exist).
pub fn load(path: &Path) -> Result<Vec<Silence>, SilenceError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(SilenceError::Store(format!("{}: {e}", path.display()))),
    };
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let body: FileBody = serde_yaml_ng::from_str(&text)
        .map_err(|e| SilenceError::Store(format!("{}: {e}", path.display())))?;
    Ok(body.silences)
}

/// Write `silences` to `path`, whole: a temporary file beside it, renamed
/// over it, so a reader never sees half a file.
pub fn save(path: &Path, silences: &[Silence]) -> Result<(), SilenceError> {
    let err = |e: &dyn std::fmt::Display| SilenceError::Store(format!("{}: {e}", path.display()));
    let text = serde_yaml_ng::to_string(&FileBody {
        silences: silences.to_vec(),
    })
    .map_err(|e| err(&e))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text).map_err(|e| err(&e))?;
    std::fs::rename(&tmp, path).map_err(|e| err(&e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::detect::Key;
    use crate::silence::NewSilence;

    #[test]
    fn a_file_round_trips_and_a_missing_one_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silences.yaml");
        assert!(load(&path).unwrap().is_empty());
        let now = 1_795_341_600_000;
        let s = NewSilence {
            rule: "*".into(),
            key: Key::from([("source_ip".into(), "203.0.113.7".into())]),
            log_group: None,
            until: Some(now + 3_600_000),
            reason: "maintenance: db: migration".into(),
            by: String::new(),
        }
        .make(now, &[])
        .unwrap();
        save(&path, std::slice::from_ref(&s)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("until: 2026-11-22T11:00:00.000Z"), "{text}");
        assert_eq!(load(&path).unwrap(), vec![s]);
    }

    #[test]
    fn an_unknown_field_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.yaml");
        std::fs::write(
            &path,
            "silences:\n- id: s-1\n  rule: x\n  untill: 2026-01-01T00:00:00Z\n",
        )
        .unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("s.yaml") && e.contains("untill"), "{e}");
    }
}
