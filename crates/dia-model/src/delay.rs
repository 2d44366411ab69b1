//! The delay pattern: channel `c` of frame `t` is written at decoder step `t + delay[c]`.

/// Marks a token-buffer slot not yet filled (the reference's −1).
pub const EMPTY: i64 = -1;

/// The decoder's token buffer `[items, len, channels]` after the reference's prompt
/// preparation: frame 0 BOS, prompt `i` in frames `1..=T_i`, delayed per channel, −1 elsewhere.
/// Returns the buffer and each item's prefill length `T_i + 1`.
///
/// Like the reference, the delayed prompt area is only `T_max + max_delay` frames long, so the
/// last prompt frame of the largest-delay channel is never written: it stays empty and is
/// sampled instead of teacher-forced. We keep this quirk for bit-parity with its codes.
pub fn delayed_prompt_buffer(
    prompts: &[Option<&[Vec<u32>]>],
    delays: &[usize],
    bos: u32,
    len: usize,
) -> (Vec<i64>, Vec<usize>) {
    let channels = delays.len();
    let max_delay = delays.iter().copied().max().unwrap_or(0);
    let longest = prompts
        .iter()
        .map(|p| p.map_or(0, <[_]>::len))
        .max()
        .unwrap_or(0);
    let area = (longest + max_delay).min(len);
    let mut buffer = vec![EMPTY; prompts.len() * len * channels];
    let mut prefill_steps = Vec::with_capacity(prompts.len());
    for (i, prompt) in prompts.iter().enumerate() {
        let prompt = prompt.unwrap_or(&[]);
        prefill_steps.push(prompt.len() + 1);
        // Undelayed frame `f` of this item: BOS at 0, prompt after it, empty beyond.
        let raw = |f: usize, c: usize| match f {
            0 => i64::from(bos),
            f => prompt.get(f - 1).map_or(EMPTY, |frame| i64::from(frame[c])),
        };
        for t in 0..area {
            for (c, &d) in delays.iter().enumerate() {
                let value = if t < d { i64::from(bos) } else { raw(t - d, c) };
                buffer[(i * len + t) * channels + c] = value;
            }
        }
    }
    (buffer, prefill_steps)
}

/// Undoes the delay for one item: output frame `t`, channel `c` is buffer frame
/// `start + t + delay[c]`. Codes outside `0..=max_code` become 0, as in the reference.
pub fn revert_delay(
    buffer: &[i64],
    channels: usize,
    delays: &[usize],
    start: usize,
    frames: usize,
    max_code: i64,
) -> Vec<Vec<u32>> {
    (0..frames)
        .map(|t| {
            delays
                .iter()
                .enumerate()
                .map(|(c, &d)| {
                    let code = buffer
                        .get((start + t + d) * channels + c)
                        .copied()
                        .unwrap_or(EMPTY);
                    if (0..=max_code).contains(&code) {
                        code as u32
                    } else {
                        0
                    }
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delayed_prompt_matches_reference_layout() {
        let delays = [0, 2];
        let prompt = vec![vec![5, 6], vec![7, 8]];
        let (buf, steps) = delayed_prompt_buffer(&[Some(&prompt), None], &delays, 9, 6);
        assert_eq!(steps, vec![3, 1]);
        // Item 0: area = 2 + 2 = 4 frames; channel 1 shifted by 2, its last frame (8) dropped.
        let item0: Vec<i64> = buf[..12].to_vec();
        assert_eq!(item0, vec![9, 9, 5, 9, 7, 9, -1, 6, -1, -1, -1, -1]);
        // Item 1: only BOS, delayed.
        assert_eq!(buf[12..20].to_vec(), vec![9, 9, -1, 9, -1, 9, -1, -1]);
    }

    #[test]
    fn revert_reads_each_channel_at_its_delay_and_zeroes_specials() {
        let delays = [0, 1];
        let buffer = vec![1, 1024, 2, 3, 4, 5];
        assert_eq!(
            revert_delay(&buffer, 2, &delays, 0, 2, 1023),
            vec![vec![1, 3], vec![2, 5]]
        );
        assert_eq!(revert_delay(&buffer, 2, &delays, 1, 1, 1023)[0], vec![2, 5]);
        assert_eq!(
            revert_delay(&[1024, 7], 2, &delays, 0, 1, 1023)[0],
            vec![0, 0]
        );
    }
}
