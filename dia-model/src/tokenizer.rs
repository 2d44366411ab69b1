//! Byte tokenizer: UTF-8 bytes with `[S1]` → 1 and `[S2]` → 2, truncated to the text length.

/// Text pad id (also what the unconditional CFG rows are filled with).
pub const TEXT_PAD_ID: u32 = 0;

/// A tokenized text and how many tokens truncation dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedText {
    pub tokens: Vec<u32>,
    /// Tokens dropped because the text was longer than the model's text length.
    pub truncated: usize,
}

/// Encodes `text` as Dia's byte tokens, keeping at most `max_len`.
pub fn encode_text(text: &str, max_len: usize) -> EncodedText {
    let mut tokens = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if let Some(after) = rest.strip_prefix(b"[S1]") {
            tokens.push(1);
            rest = after;
        } else if let Some(after) = rest.strip_prefix(b"[S2]") {
            tokens.push(2);
            rest = after;
        } else {
            tokens.push(u32::from(byte));
            rest = tail;
        }
    }
    let truncated = tokens.len().saturating_sub(max_len);
    tokens.truncate(max_len);
    EncodedText { tokens, truncated }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speaker_tags_become_single_ids() {
        let e = encode_text("[S1] Hi [S2]é", 100);
        assert_eq!(e.tokens, vec![1, 32, 72, 105, 32, 2, 0xc3, 0xa9]);
        assert_eq!(e.truncated, 0);
    }

    #[test]
    fn lowercase_tags_are_plain_bytes() {
        assert_eq!(encode_text("[s1]", 10).tokens, vec![91, 115, 49, 93]);
    }

    #[test]
    fn truncation_reports_dropped_count() {
        let e = encode_text("abcdef", 4);
        assert_eq!(e.tokens, vec![97, 98, 99, 100]);
        assert_eq!(e.truncated, 2);
    }
}
