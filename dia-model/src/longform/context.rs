//! Voice continuity: what was spoken so far, segment by segment, and the audio prompt the next
//! pass is conditioned on (the end of the previous pass plus, for a speaker of the next pass
//! who is not heard there, that speaker's latest turn).
//!
//! A pass's codes are shared out among its segments in proportion to their estimated seconds
//! (the model gives no alignment), so a carried segment may start a few frames early or late.

use super::plan::render;
use super::script::Segment;

/// An audio prompt: codes `[frames][channels]` and the transcript of that audio.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VoicePrompt {
    pub transcript: String,
    pub codes: Vec<Vec<u32>>,
}

/// One segment as it was spoken.
#[derive(Debug, Clone, PartialEq)]
struct Spoken {
    segment: Segment,
    codes: Vec<Vec<u32>>,
}

/// The voices heard so far: the last pass's segments, and each speaker's latest segment.
#[derive(Debug, Clone, Default)]
pub struct VoiceMemory {
    last_pass: Vec<Spoken>,
    /// Per speaker, in the order they were last heard (most recent last).
    latest: Vec<Spoken>,
}

impl VoiceMemory {
    /// Records a pass (or a user's voice prompt): `codes` are shared out among `segments` in
    /// proportion to their estimated seconds.
    pub fn heard(&mut self, segments: &[Segment], codes: &[Vec<u32>]) {
        let spoken = share_out(segments, codes);
        for s in &spoken {
            self.latest
                .retain(|l| l.segment.speaker != s.segment.speaker);
            self.latest.push(s.clone());
        }
        self.last_pass = spoken;
    }

    /// The prompt for a pass speaking `next`: the last pass's final segments up to
    /// `context_seconds` (at least one), preceded by the latest segment of each speaker of
    /// `next` they do not include. When the whole does not satisfy `fits`, speakers' samples
    /// go first, then the oldest segments; `None` when not even the last segment fits.
    pub fn prompt(
        &self,
        next: &[Segment],
        context_seconds: f32,
        fits: impl Fn(&VoicePrompt) -> bool,
    ) -> Option<VoicePrompt> {
        let mut tail: Vec<&Spoken> = Vec::new();
        let mut seconds = 0.0;
        for s in self.last_pass.iter().rev() {
            if !tail.is_empty() && seconds + s.segment.seconds > context_seconds {
                break;
            }
            seconds += s.segment.seconds;
            tail.insert(0, s);
        }
        let samples: Vec<&Spoken> = self
            .latest
            .iter()
            .filter(|l| {
                next.iter().any(|n| n.speaker == l.segment.speaker)
                    && tail.iter().all(|t| t.segment.speaker != l.segment.speaker)
            })
            .collect();
        let mut parts: Vec<&Spoken> = samples.iter().chain(&tail).copied().collect();
        while !parts.is_empty() {
            let prompt = joined(&parts);
            if fits(&prompt) {
                return Some(prompt);
            }
            parts.remove(0);
        }
        None
    }
}

/// Spoken segments as one prompt: codes end to end, each segment tagged in the transcript.
fn joined(parts: &[&Spoken]) -> VoicePrompt {
    let segments: Vec<Segment> = parts
        .iter()
        .map(|p| Segment {
            continues: false,
            ..p.segment.clone()
        })
        .collect();
    VoicePrompt {
        transcript: render(&segments),
        codes: parts.iter().flat_map(|p| p.codes.iter().cloned()).collect(),
    }
}

/// `codes` cut among `segments` in proportion to their seconds (evenly when none has any);
/// segments that get no frame are left out.
fn share_out(segments: &[Segment], codes: &[Vec<u32>]) -> Vec<Spoken> {
    let total: f32 = segments.iter().map(|s| s.seconds).sum();
    let weight = |s: &Segment| if total > 0.0 { s.seconds } else { 1.0 };
    let sum: f32 = segments.iter().map(weight).sum();
    let mut out = Vec::new();
    let (mut acc, mut start) = (0.0f32, 0usize);
    for s in segments {
        acc += weight(s);
        let end = ((acc / sum) * codes.len() as f32).round() as usize;
        let end = end.clamp(start, codes.len());
        if end > start {
            out.push(Spoken {
                segment: s.clone(),
                codes: codes[start..end].to_vec(),
            });
        }
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::longform::script::turns;

    fn frames(from: u32, n: u32) -> Vec<Vec<u32>> {
        (from..from + n).map(|f| vec![f; 2]).collect()
    }

    #[test]
    fn codes_are_shared_in_proportion_to_seconds() {
        // 14 and 28 letters: one third and two thirds.
        let segs = turns("[S1] aaaaaaaaaaaaaa [S2] bbbbbbbbbbbbbbbbbbbbbbbbbbbb");
        let spoken = share_out(&segs, &frames(0, 30));
        assert_eq!(spoken.len(), 2);
        assert_eq!(spoken[0].codes, frames(0, 10));
        assert_eq!(spoken[1].codes, frames(10, 20));
    }

    #[test]
    fn the_prompt_is_the_end_of_the_last_pass() {
        let mut memory = VoiceMemory::default();
        let pass = turns("[S1] aaaaaaaaaaaaaa [S2] bbbbbbbbbbbbbb [S1] cccccccccccccc");
        memory.heard(&pass, &frames(0, 30));
        let next = turns("[S2] next words");
        let p = memory.prompt(&next, 2.0, |_| true).unwrap();
        assert_eq!(p.transcript, "[S2] bbbbbbbbbbbbbb [S1] cccccccccccccc");
        assert_eq!(p.codes, frames(10, 20));
        let one = memory.prompt(&turns("[S1] more"), 0.5, |_| true).unwrap();
        assert_eq!(one.codes, frames(20, 10), "at least the last segment");
        assert_eq!(one.transcript, "[S1] cccccccccccccc");
    }

    #[test]
    fn a_speaker_missing_from_the_tail_brings_a_sample_of_their_voice() {
        let mut memory = VoiceMemory::default();
        memory.heard(
            &turns("[S1] aaaaaaaaaaaaaa [S2] bbbbbbbbbbbbbb"),
            &frames(0, 20),
        );
        memory.heard(&turns("[S1] cccccccccccccc"), &frames(100, 10));
        let p = memory
            .prompt(&turns("[S2] hi [S1] ho"), 5.0, |_| true)
            .unwrap();
        assert_eq!(p.transcript, "[S2] bbbbbbbbbbbbbb [S1] cccccccccccccc");
        assert_eq!(p.codes, [frames(10, 10), frames(100, 10)].concat());
        // Too long for the budget: the sample goes first, the tail stays.
        let short = memory
            .prompt(&turns("[S2] hi"), 5.0, |p| p.codes.len() <= 10)
            .unwrap();
        assert_eq!(short.codes, frames(100, 10));
        assert!(memory.prompt(&turns("[S1] more"), 5.0, |_| false).is_none());
    }
}
