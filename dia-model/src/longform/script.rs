//! Reading a dialogue script: speaker turns, the places a turn may be split, and how long its
//! speech is estimated to last.

/// Latin-script letters and digits spoken per second.
pub const LETTERS_PER_SECOND: f32 = 14.0;
/// CJK characters spoken per second.
pub const CJK_CHARS_PER_SECOND: f32 = 5.0;
/// Seconds counted for each non-verbal tag such as `(laughs)`.
pub const NON_VERBAL_SECONDS: f32 = 1.0;

/// The speaker tags the model knows (the tokenizer gives each one id).
pub const SPEAKER_TAGS: [&str; 2] = ["[S1]", "[S2]"];

/// A speaker turn, or a piece of one when a turn alone is too long for a pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// The turn's speaker tag (`[S1]` or `[S2]`); `None` for text before the first tag.
    pub speaker: Option<&'static str>,
    /// The spoken text, without the tag, trimmed.
    pub text: String,
    /// Whether this piece continues the turn of the segment before it.
    pub continues: bool,
    /// Estimated speech duration.
    pub seconds: f32,
}

impl Segment {
    fn new(speaker: Option<&'static str>, text: &str, continues: bool) -> Self {
        Self {
            speaker,
            text: text.trim().to_string(),
            continues,
            seconds: estimate_seconds(text),
        }
    }

    /// The segment as the model reads it at the start of a text: its tag, then its words.
    pub fn tagged(&self) -> String {
        match self.speaker {
            Some(tag) => format!("{tag} {}", self.text),
            None => self.text.clone(),
        }
    }
}

/// Estimated seconds of speech in `text`. It counts what is spoken: letters and digits at
/// [`LETTERS_PER_SECOND`], CJK characters (Han, kana, Hangul) at [`CJK_CHARS_PER_SECOND`], and
/// [`NON_VERBAL_SECONDS`] for each parenthesised non-verbal tag such as `(laughs)`; spaces,
/// punctuation and speaker tags count nothing. The rates are those of conversational English
/// and Chinese (about 150 words a minute); Dia's pace varies with the voice, so a pass's real
/// length lands within roughly ±30 % of the estimate.
pub fn estimate_seconds(text: &str) -> f32 {
    let (mut letters, mut cjk, mut tags, mut depth) = (0usize, 0usize, 0usize, 0usize);
    for c in text.chars() {
        match c {
            '(' => {
                if depth == 0 {
                    tags += 1;
                }
                depth += 1;
            }
            ')' => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            c if is_cjk(c) => cjk += 1,
            c if c.is_alphanumeric() => letters += 1,
            _ => {}
        }
    }
    // Speaker tags are letters and digits too: two each.
    let tag_chars = SPEAKER_TAGS
        .iter()
        .map(|t| text.matches(t).count() * 2)
        .sum::<usize>();
    letters.saturating_sub(tag_chars) as f32 / LETTERS_PER_SECOND
        + cjk as f32 / CJK_CHARS_PER_SECOND
        + tags as f32 * NON_VERBAL_SECONDS
}

fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30ff}' // hiragana, katakana
        | '\u{3400}'..='\u{4dbf}' | '\u{4e00}'..='\u{9fff}' | '\u{f900}'..='\u{faff}' // Han
        | '\u{ac00}'..='\u{d7af}' // Hangul syllables
    )
}

/// The script's speaker turns in order, each with its tag; empty turns are dropped.
pub fn turns(script: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    let (mut speaker, mut start) = (None, 0);
    let mut at = 0;
    while at < script.len() {
        match SPEAKER_TAGS.iter().find(|t| script[at..].starts_with(**t)) {
            Some(tag) => {
                push_turn(&mut out, speaker, &script[start..at]);
                speaker = Some(*tag);
                at += tag.len();
                start = at;
            }
            None => at += script[at..].chars().next().map_or(1, char::len_utf8),
        }
    }
    push_turn(&mut out, speaker, &script[start..]);
    out
}

fn push_turn(out: &mut Vec<Segment>, speaker: Option<&'static str>, text: &str) {
    if !text.trim().is_empty() {
        out.push(Segment::new(speaker, text, false));
    }
}

/// How finely a turn is split, coarsest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SplitAt {
    /// After `.`, `!`, `?`, `…` (followed by a space) and the CJK full stops `。！？`.
    Sentence,
    /// After `,`, `;`, `:` (followed by a space) and `，、；：`.
    Clause,
    /// At spaces.
    Word,
    /// Between any two characters (text without spaces, such as CJK without punctuation).
    Char,
}

impl SplitAt {
    fn finer(self) -> Option<Self> {
        match self {
            Self::Sentence => Some(Self::Clause),
            Self::Clause => Some(Self::Word),
            Self::Word => Some(Self::Char),
            Self::Char => None,
        }
    }
}

/// Byte offsets inside `text` where it may be split at `level`: never inside parentheses
/// (non-verbal tags), never at the very start or end.
pub fn split_points(text: &str, level: SplitAt) -> Vec<usize> {
    let mut points = Vec::new();
    let mut depth = 0usize;
    let mut chars = text.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        let Some(&(j, next)) = chars.peek() else {
            break;
        };
        if depth > 0 {
            continue;
        }
        let split = match level {
            SplitAt::Sentence => {
                matches!(c, '。' | '！' | '？')
                    || (matches!(c, '.' | '!' | '?' | '…') && next.is_whitespace())
            }
            SplitAt::Clause => {
                matches!(c, '，' | '、' | '；' | '：')
                    || (matches!(c, ',' | ';' | ':') && next.is_whitespace())
            }
            SplitAt::Word => c.is_whitespace() && !next.is_whitespace(),
            SplitAt::Char => next != '(',
        };
        if split {
            points.push(j);
        }
    }
    points
}

/// Splits `text` into pieces that each satisfy `fits`, at the coarsest level that allows it:
/// consecutive parts are packed while they fit, and a part that alone does not fit is split
/// at the next finer level. A piece that fits at no level (one character) stands alone.
pub fn split_to_fit(text: &str, level: SplitAt, fits: &impl Fn(&str) -> bool) -> Vec<String> {
    if fits(text) {
        return vec![text.trim().to_string()];
    }
    let mut bounds = split_points(text, level);
    bounds.push(text.len());
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut last_fit = None;
    let mut i = 0;
    while i < bounds.len() {
        let end = bounds[i];
        if fits(&text[start..end]) {
            last_fit = Some(end);
            i += 1;
            continue;
        }
        match last_fit.take() {
            Some(cut) => {
                pieces.push(text[start..cut].trim().to_string());
                start = cut;
            }
            None => {
                let part = &text[start..end];
                match level.finer() {
                    Some(finer) => pieces.extend(split_to_fit(part, finer, fits)),
                    None => pieces.push(part.trim().to_string()),
                }
                start = end;
                i += 1;
            }
        }
    }
    if let Some(cut) = last_fit {
        pieces.push(text[start..cut].trim().to_string());
    }
    pieces.retain(|p| !p.is_empty());
    pieces
}

/// A turn too long for `fits`, as pieces (the first keeps the turn's place, the rest continue
/// it); a turn that fits comes back whole.
pub fn split_turn(turn: &Segment, fits: &impl Fn(&str) -> bool) -> Vec<Segment> {
    split_to_fit(&turn.text, SplitAt::Sentence, fits)
        .iter()
        .enumerate()
        .map(|(i, piece)| Segment::new(turn.speaker, piece, turn.continues || i > 0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_keep_their_tags_and_text_before_the_first_tag() {
        let t = turns("Intro. [S1] Hi there. [S2]  [S2] Hello (laughs)! [S1]Bye");
        let got: Vec<_> = t.iter().map(|s| (s.speaker, s.text.as_str())).collect();
        assert_eq!(
            got,
            [
                (None, "Intro."),
                (Some("[S1]"), "Hi there."),
                (Some("[S2]"), "Hello (laughs)!"),
                (Some("[S1]"), "Bye"),
            ]
        );
    }

    #[test]
    fn estimate_counts_spoken_characters_and_non_verbal_tags() {
        let latin = estimate_seconds("[S1] Fourteen chars, yes! abc");
        assert!((latin - 19.0 / 14.0).abs() < 1e-6, "{latin}");
        assert!((estimate_seconds("你好世界。") - 0.8).abs() < 1e-6);
        assert!((estimate_seconds("(laughs) (coughs)") - 2.0).abs() < 1e-6);
        assert_eq!(estimate_seconds(" .,!? "), 0.0);
    }

    #[test]
    fn sentence_points_skip_decimals_tags_and_the_ends() {
        let text = "Pi is 3.14. Really (wow. yes) sure! Done…";
        let points = split_points(text, SplitAt::Sentence);
        let pieces: Vec<_> = points.iter().map(|&p| &text[..p]).collect();
        assert_eq!(
            pieces,
            ["Pi is 3.14.", "Pi is 3.14. Really (wow. yes) sure!"]
        );
        let cjk = "你好。我很好！谢谢";
        let cut = split_points(cjk, SplitAt::Sentence);
        assert_eq!(
            cut.iter().map(|&p| &cjk[p..]).collect::<Vec<_>>(),
            ["我很好！谢谢", "谢谢"]
        );
    }

    #[test]
    fn splitting_packs_sentences_then_falls_back_to_clauses_and_words() {
        let fits = |s: &str| s.trim().chars().count() <= 20;
        let got = split_to_fit(
            "One two. Three four. A long sentence, with a clause, here.",
            SplitAt::Sentence,
            &fits,
        );
        assert_eq!(
            got,
            [
                "One two. Three four.",
                "A long sentence,",
                "with a clause, here."
            ]
        );
        for piece in &got {
            assert!(fits(piece), "{piece}");
        }
        let words = split_to_fit("aaaa bbbb cccc dddd eeee ffff", SplitAt::Sentence, &fits);
        assert_eq!(words, ["aaaa bbbb cccc dddd", "eeee ffff"]);
    }

    #[test]
    fn splitting_never_cuts_a_non_verbal_tag() {
        let fits = |s: &str| s.trim().chars().count() <= 12;
        let got = split_to_fit("ha (laughs loudly) ok", SplitAt::Sentence, &fits);
        assert!(got.iter().any(|p| p.contains("(laughs loudly)")), "{got:?}");
        let cjk = split_to_fit("你好你好你好你好你好你好你好你好", SplitAt::Sentence, &fits);
        assert_eq!(cjk, ["你好你好你好你好你好你好", "你好你好"]);
    }
}
