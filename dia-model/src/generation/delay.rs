//! The delay pattern: channel `c` of frame `t` is written at decoder step `t + delay[c]`, and
//! the buffer of delayed tokens the decoding loop reads its input from.

/// The decoder's token buffer `[items, len, channels]`: slot (item, frame, channel) holds the
/// code fed to the decoder at that frame, `None` until it is prompted or sampled.
#[derive(Debug, Clone)]
pub struct DelayedTokens {
    slots: Vec<Option<u32>>,
    len: usize,
    channels: usize,
}

impl DelayedTokens {
    /// The buffer after the reference's prompt preparation: frame 0 BOS, prompt `i` in frames
    /// `1..=T_i`, delayed per channel, empty elsewhere. Also returns each item's prefill length
    /// `T_i + 1`.
    ///
    /// Like the reference, the delayed prompt area is only `T_max + max_delay` frames long, so
    /// the last prompt frame of the largest-delay channel is never written: it stays empty and
    /// is sampled instead of teacher-forced. We keep this quirk for bit-parity with its codes.
    pub fn with_prompts(
        prompts: &[Option<&[Vec<u32>]>],
        delays: &[usize],
        bos: u32,
        len: usize,
    ) -> (Self, Vec<usize>) {
        let channels = delays.len();
        let max_delay = delays.iter().copied().max().unwrap_or(0);
        let longest = prompts.iter().map(|p| p.map_or(0, <[_]>::len)).max();
        let area = (longest.unwrap_or(0) + max_delay).min(len);
        let mut tokens = Self {
            slots: vec![None; prompts.len() * len * channels],
            len,
            channels,
        };
        let mut prefill = Vec::with_capacity(prompts.len());
        for (i, prompt) in prompts.iter().enumerate() {
            let prompt = prompt.unwrap_or(&[]);
            prefill.push(prompt.len() + 1);
            // Undelayed frame `f` of this item: BOS at 0, prompt after it, empty beyond.
            let raw = |f: usize, c: usize| match f {
                0 => Some(bos),
                f => prompt.get(f - 1).map(|frame| frame[c]),
            };
            for t in 0..area {
                for (c, &d) in delays.iter().enumerate() {
                    let slot = if t < d { Some(bos) } else { raw(t - d, c) };
                    tokens.frame_mut(i, t)[c] = slot;
                }
            }
        }
        (tokens, prefill)
    }

    /// Decoder frames per item.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no frame.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The channels of `item`'s decoder frame `frame`.
    pub fn frame(&self, item: usize, frame: usize) -> &[Option<u32>] {
        let at = (item * self.len + frame) * self.channels;
        &self.slots[at..at + self.channels]
    }

    /// The channels of `item`'s decoder frame `frame`, to write.
    pub fn frame_mut(&mut self, item: usize, frame: usize) -> &mut [Option<u32>] {
        let at = (item * self.len + frame) * self.channels;
        &mut self.slots[at..at + self.channels]
    }

    /// Undoes the delay for `frames` output frames of `item` from decoder frame `start`: output
    /// frame `t`, channel `c` is decoder frame `start + t + delay[c]`. Empty slots, slots past
    /// the buffer and codes above `max_code` become 0, as in the reference.
    pub fn reverted(
        &self,
        item: usize,
        delays: &[usize],
        start: usize,
        frames: usize,
        max_code: u32,
    ) -> Vec<Vec<u32>> {
        (0..frames)
            .map(|t| {
                delays
                    .iter()
                    .enumerate()
                    .map(|(c, &d)| {
                        let frame = start + t + d;
                        let slot = (frame < self.len).then(|| self.frame(item, frame)[c]);
                        slot.flatten().filter(|&code| code <= max_code).unwrap_or(0)
                    })
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delayed_prompt_matches_reference_layout() {
        let delays = [0, 2];
        let prompt = vec![vec![5, 6], vec![7, 8]];
        let (buf, steps) = DelayedTokens::with_prompts(&[Some(&prompt), None], &delays, 9, 6);
        assert_eq!(steps, vec![3, 1]);
        let item = |i: usize| -> Vec<Option<u32>> {
            (0..6).flat_map(|t| buf.frame(i, t).to_vec()).collect()
        };
        // Item 0: area = 2 + 2 = 4 frames; channel 1 shifted by 2, its last frame (8) dropped.
        let (n, s) = (None, Some);
        let want0 = [s(9), s(9), s(5), s(9), s(7), s(9), n, s(6), n, n, n, n];
        assert_eq!(item(0), want0);
        // Item 1: only BOS, delayed.
        let want1 = [s(9), s(9), n, s(9), n, s(9), n, n, n, n, n, n];
        assert_eq!(item(1), want1);
    }

    #[test]
    fn revert_reads_each_channel_at_its_delay_and_zeroes_specials() {
        let delays = [0, 1];
        let (mut buf, _) = DelayedTokens::with_prompts(&[None], &delays, 1024, 3);
        let written = [
            [Some(1), Some(1024)],
            [Some(2), Some(3)],
            [Some(4), Some(5)],
        ];
        for (t, frame) in written.iter().enumerate() {
            buf.frame_mut(0, t).copy_from_slice(frame);
        }
        assert_eq!(
            buf.reverted(0, &delays, 0, 2, 1023),
            vec![vec![1, 3], vec![2, 5]]
        );
        assert_eq!(buf.reverted(0, &delays, 1, 1, 1023)[0], vec![2, 5]);
        // Past the buffer's end: 0.
        assert_eq!(buf.reverted(0, &delays, 2, 1, 1023)[0], vec![4, 0]);
        buf.frame_mut(0, 0)[0] = Some(1024);
        assert_eq!(buf.reverted(0, &delays, 0, 1, 1023)[0], vec![0, 3]);
    }
}
