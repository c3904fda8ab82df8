//! Free text as people type it, refused when it carries what no name or
//! reason needs: control characters (NUL among them), and the invisible
//! formatting characters that make text read differently from what it is
//! (bidirectional overrides and isolates, zero-width characters).

/// Why a text is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {0} characters")]
    TooLong(usize),
    #[error("must not contain control or invisible formatting characters")]
    Forbidden,
}

/// Whether `c` is a control character or an invisible formatting one.
pub fn is_forbidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            // Bidirectional marks, embeddings, overrides and isolates.
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
            // Zero-width space, joiners, word joiner, byte order mark.
            | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}'
            // Line and paragraph separators.
            | '\u{2028}' | '\u{2029}')
}

/// Whether `s` has no forbidden character.
pub fn is_plain(s: &str) -> bool {
    !s.chars().any(is_forbidden)
}

/// `s` trimmed of spaces, if it has at most `max_chars` characters (as
/// sent), none forbidden, and is not blank.
pub fn plain_text(s: &str, max_chars: usize) -> Result<String, TextError> {
    if !is_plain(s) {
        return Err(TextError::Forbidden);
    }
    if s.chars().count() > max_chars {
        return Err(TextError::TooLong(max_chars));
    }
    match s.trim() {
        "" => Err(TextError::Empty),
        trimmed => Ok(trimmed.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_should_keep_ordinary_text_in_any_script() {
        assert_eq!(
            plain_text("  Zoë O'Brien-Łukasz ", 50).unwrap(),
            "Zoë O'Brien-Łukasz"
        );
        assert_eq!(plain_text("محمد", 50).unwrap(), "محمد");
        assert_eq!(plain_text("山田 太郎", 50).unwrap(), "山田 太郎");
    }

    #[test]
    fn it_should_refuse_control_and_invisible_characters() {
        for bad in [
            "a\u{0}b",
            "line\nbreak",
            "tab\there",
            "evil\u{202E}txt.exe",
            "isolate\u{2066}x",
            "zero\u{200B}width",
            "bom\u{FEFF}",
            "\u{7F}",
        ] {
            assert_eq!(plain_text(bad, 50), Err(TextError::Forbidden), "{bad:?}");
        }
    }

    #[test]
    fn it_should_refuse_empty_or_long_text() {
        assert_eq!(plain_text("   ", 5), Err(TextError::Empty));
        assert_eq!(plain_text("abcdef", 5), Err(TextError::TooLong(5)));
        // Counted as sent: the limit is the documented maxLength.
        assert_eq!(plain_text(" abcde", 5), Err(TextError::TooLong(5)));
        assert_eq!(plain_text("ééééé", 5).unwrap(), "ééééé");
    }
}
