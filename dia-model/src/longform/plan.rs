//! The planner: a script cut into passes the model can speak well, at speaker turns where it
//! can, inside a turn only when the turn alone is too long (then at sentences, clauses, words).

use super::script::{Segment, estimate_seconds, split_turn, turns};
use crate::tokenizer::encode_text;

/// Limits on one pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanOptions {
    /// Estimated seconds of speech a pass holds at most.
    pub chunk_seconds: f32,
    /// The model's text length in tokens. A script that fits it (and `chunk_seconds`) is one
    /// pass; a script that is cut gives each pass under half of it, leaving the rest for the
    /// transcript of the audio carried in front.
    pub text_len: usize,
}

/// One generation pass: the segments it speaks and the text the model reads for them.
#[derive(Debug, Clone, PartialEq)]
pub struct Pass {
    pub segments: Vec<Segment>,
    /// The segments as text, starting with the first one's speaker tag (a script that fits in
    /// one pass is kept verbatim).
    pub text: String,
}

impl Pass {
    fn new(segments: Vec<Segment>) -> Self {
        let text = render(&segments);
        Self { segments, text }
    }

    /// Estimated seconds of speech.
    pub fn seconds(&self) -> f32 {
        self.segments.iter().map(|s| s.seconds).sum()
    }
}

/// Segments as the model reads them: every turn with its tag, a continued turn without.
pub fn render(segments: &[Segment]) -> String {
    let parts: Vec<String> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if i > 0 && s.continues {
                s.text.clone()
            } else {
                s.tagged()
            }
        })
        .collect();
    parts.join(" ")
}

/// Text tokens of `text` (speaker tags are one token each).
pub fn text_tokens(text: &str) -> usize {
    encode_text(text, usize::MAX).tokens.len()
}

/// Cuts `script` into passes within `options`' limits. A script that fits is one pass holding
/// it verbatim; otherwise turns are packed in order while they fit, and a turn that does not fit
/// alone starts its own passes, cut at the coarsest boundary that fits.
pub fn plan(script: &str, options: &PlanOptions) -> Vec<Pass> {
    let short = |text: &str| estimate_seconds(text) <= options.chunk_seconds;
    let fits = |text: &str| short(text) && text_tokens(text) < options.text_len / 2;
    let all = turns(script);
    if short(script) && text_tokens(script) <= options.text_len {
        return vec![Pass {
            segments: all,
            text: script.to_string(),
        }];
    }
    let mut passes = Vec::new();
    let mut current: Vec<Segment> = Vec::new();
    for turn in &all {
        let tag = turn.speaker.map_or(String::new(), |t| format!("{t} "));
        let pieces = split_turn(turn, &|text: &str| fits(&format!("{tag}{text}")));
        if pieces.len() > 1 && !current.is_empty() {
            passes.push(Pass::new(std::mem::take(&mut current)));
        }
        for piece in pieces {
            current.push(piece);
            if current.len() > 1 && !fits(&render(&current)) {
                let piece = current.pop().into_iter().collect();
                passes.push(Pass::new(std::mem::replace(&mut current, piece)));
            }
        }
    }
    if !current.is_empty() {
        passes.push(Pass::new(current));
    }
    passes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(chunk_seconds: f32) -> PlanOptions {
        PlanOptions {
            chunk_seconds,
            text_len: 1024,
        }
    }

    fn words(text: &str) -> Vec<String> {
        text.replace("[S1]", " ")
            .replace("[S2]", " ")
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn a_script_that_fits_is_one_verbatim_pass() {
        let script = "  [S1] Hello there.  [S2] Hi! ";
        let passes = plan(script, &options(15.0));
        assert_eq!(passes.len(), 1);
        assert_eq!(passes[0].text, script);
        assert_eq!(passes[0].segments.len(), 2);
    }

    #[test]
    fn passes_break_at_turns_and_keep_every_word_in_order() {
        let script: String = (0..12)
            .map(|i| {
                let tag = ["[S1]", "[S2]"][i % 2];
                format!("{tag} This is turn number {i}, spoken by someone. (laughs) ")
            })
            .collect();
        let passes = plan(&script, &options(10.0));
        assert!(passes.len() >= 3, "{} passes", passes.len());
        let mut all = Vec::new();
        for pass in &passes {
            assert!(pass.text.starts_with("[S1] ") || pass.text.starts_with("[S2] "));
            assert!(pass.seconds() <= 10.0, "{}", pass.seconds());
            assert!(
                pass.segments.iter().all(|s| !s.continues),
                "no turn was cut"
            );
            all.extend(words(&pass.text));
        }
        assert_eq!(all, words(&script));
    }

    #[test]
    fn a_long_turn_is_cut_at_sentences_and_each_pass_is_tagged() {
        let sentence = "Here is one sentence of a long monologue.";
        let script = format!("[S2] Short one. [S1] {}", [sentence; 8].join(" "));
        let passes = plan(&script, &options(6.0));
        assert_eq!(passes[0].text, "[S2] Short one.");
        for pass in &passes[1..] {
            assert!(pass.text.starts_with("[S1] Here is"), "{}", pass.text);
            assert!(pass.text.ends_with("monologue."), "{}", pass.text);
            assert!(pass.seconds() <= 6.0);
        }
        assert_eq!(
            passes
                .iter()
                .flat_map(|p| words(&p.text))
                .collect::<Vec<_>>(),
            words(&script)
        );
    }

    #[test]
    fn unicode_scripts_split_at_cjk_full_stops() {
        let script = "[S1] 你好，今天天气很好。我们去公园吧！[S2] 好的，走吧。".repeat(3);
        let passes = plan(&script, &options(4.0));
        assert!(passes.len() > 1);
        for pass in &passes {
            assert!(pass.seconds() <= 4.0, "{} {}", pass.text, pass.seconds());
            let last = pass.text.chars().last().unwrap();
            assert!("。！，".contains(last), "{}", pass.text);
        }
    }

    #[test]
    fn the_token_limit_also_cuts() {
        let script = "[S1] a b c d e f g h i j k l m n o p q r s t u v w x y z";
        let passes = plan(
            script,
            &PlanOptions {
                chunk_seconds: 100.0,
                text_len: 40,
            },
        );
        assert!(passes.len() > 1);
        assert!(passes.iter().all(|p| text_tokens(&p.text) < 20));
    }
}
