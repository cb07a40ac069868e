//! Unified diffs of config files, secrets masked in every line.

use similar::TextDiff;

use super::mask::Masker;

/// Lines of context around each change.
const CONTEXT: usize = 3;

/// Unified diff of two texts (labels a/b), secrets masked in every line.
///
/// Empty when the texts are equal. When a text parses as JSON, the secret
/// values in it ([`Masker::secrets_in`]) are masked wherever they appear,
/// on top of the rules of [`Masker::mask_text`] that apply to every line.
#[must_use]
pub fn unified_diff(
    old: &str,
    new: &str,
    old_label: &str,
    new_label: &str,
    mask: &Masker,
) -> String {
    if old == new {
        return String::new();
    }
    let mut known: Vec<String> = Vec::new();
    for text in [old, new] {
        if let Ok(doc) = serde_json::from_str::<serde_json::Value>(text) {
            known.extend(mask.secrets_in(&doc));
        }
    }
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    let diff = TextDiff::from_lines(old, new);
    let text = diff
        .unified_diff()
        .context_radius(CONTEXT)
        .header(old_label, new_label)
        .to_string();
    mask.mask_text(&text, &known)
}
