//! Seeded mutations of a file's bytes (bit flips, truncations, splices, forged length fields,
//! inserted bytes) for the fuzz tests of the readers: dia-burn's checkpoint loaders and
//! dia-infer's inputs.

/// SplitMix64: a seeded stream of mutation choices.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A choice in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// `bytes` with one mutation, and what it was.
pub fn mutate(bytes: &[u8], rng: &mut Rng) -> (Vec<u8>, String) {
    let mut out = bytes.to_vec();
    let len = out.len();
    match rng.below(5) {
        0 => {
            let flips = 1 + rng.below(8);
            for _ in 0..flips {
                let at = rng.below(len);
                out[at] ^= 1 << rng.below(8);
            }
            (out, format!("{flips} bit flips"))
        }
        1 => {
            let at = rng.below(len);
            out.truncate(at);
            (out, format!("truncated to {at}"))
        }
        2 => {
            let (from, to, n) = (rng.below(len), rng.below(len), 1 + rng.below(64));
            let chunk: Vec<u8> = out[from..len.min(from + n)].to_vec();
            let end = len.min(to + chunk.len());
            out[to..end].copy_from_slice(&chunk[..end - to]);
            (out, format!("{n} bytes from {from} copied to {to}"))
        }
        3 => {
            // A forged little-endian length at the front (safetensors' header size) or anywhere.
            let at = if rng.below(2) == 0 {
                0
            } else {
                rng.below(len.saturating_sub(8))
            };
            let value = match rng.below(3) {
                0 => u64::MAX,
                1 => rng.next_u64() >> rng.below(64),
                _ => len as u64 + rng.below(1 << 20) as u64,
            };
            let end = len.min(at + 8);
            out[at..end].copy_from_slice(&value.to_le_bytes()[..end - at]);
            (out, format!("length {value} forged at {at}"))
        }
        _ => {
            let at = rng.below(len);
            let n = 1 + rng.below(256);
            out.splice(at..at, std::iter::repeat_n(0xff, n));
            (out, format!("{n} bytes of 0xff inserted at {at}"))
        }
    }
}

/// A long run's seconds per reader (`DIA_FUZZ_SECONDS`, default 60) and a fresh seed.
pub fn long_run() -> (u64, u64) {
    let seconds = std::env::var("DIA_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (seconds, seed)
}
