//! Decoder caches: the self-attention KV cache written in place, and the cross-attention K/V
//! computed once from the encoder output.

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, DType, Tensor};

use crate::backend::DiaBackend;
use crate::layers::RopeAngles;

/// Self-attention keys and values `[rows, kv_heads, capacity, head_dim]`; step `t` writes slot
/// `t` in place. The capacity starts small and doubles up to `max_len` as generation goes on, so
/// a short utterance never holds (or touches) the memory of the longest one.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    max_len: usize,
}

/// Positions a new cache holds before it first grows.
const INITIAL_CAPACITY: usize = 256;

impl<B: Backend> KvCache<B> {
    /// Positions the cache holds now (it grows in place up to its `max_len`).
    pub fn capacity(&self) -> usize {
        self.k.dims()[2]
    }

    /// Bytes the keys and values take now.
    pub fn bytes(&self) -> usize {
        2 * self.k.shape().num_elements() * self.k.dtype().size()
    }

    /// Rows (batch rows) the cache holds.
    pub fn rows(&self) -> usize {
        self.k.dims()[0]
    }

    /// The cache taken over by a new sequence of up to `max_len` positions: its buffers are
    /// kept (what they hold is overwritten before it is read), so a continuous batch reuses a
    /// finished item's memory instead of allocating anew.
    pub fn reset(mut self, max_len: usize) -> Self {
        self.max_len = max_len.max(self.capacity());
        self
    }
}

impl<B: DiaBackend> KvCache<B> {
    /// Empty cache for up to `max_len` positions of `[rows, kv_heads, _, head_dim]`.
    pub fn new(shape: [usize; 4], dtype: DType, device: &B::Device) -> Self {
        let [rows, heads, max_len, dim] = shape;
        let capacity = max_len.min(INITIAL_CAPACITY);
        // Two buffers: a shared one would be copied on the first write.
        let zeros = || Tensor::<B, 4>::zeros([rows, heads, capacity, dim], (device, dtype));
        Self {
            k: zeros(),
            v: zeros(),
            max_len,
        }
    }

    /// Writes `k`, `v` `[rows, kv_heads, len, head_dim]` at positions `start..start + len` and
    /// returns the filled prefix `0..start + len` of both.
    pub fn append(
        &mut self,
        start: usize,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let end = start + k.dims()[2];
        self.make_room(end);
        self.k.inplace(|c| B::cache_write(c, start, k));
        self.v.inplace(|c| B::cache_write(c, start, v));
        self.filled(end)
    }

    /// [`KvCache::append`] with the keys rotated by `rope` on the way in (one kernel on the GPU
    /// backends: [`DiaBackend::rope_cache_write`]).
    pub fn append_rotated(
        &mut self,
        start: usize,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
        rope: &RopeAngles<B>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let end = start + k.dims()[2];
        self.make_room(end);
        let empty = || Tensor::empty([0; 4], &k.device());
        let caches = (
            std::mem::replace(&mut self.k, empty()),
            std::mem::replace(&mut self.v, empty()),
        );
        (self.k, self.v) = B::rope_cache_write(caches, start, k, v, rope.tables());
        self.filled(end)
    }

    /// Grows the cache (doubling, up to `max_len`) until it holds `end` positions.
    fn make_room(&mut self, end: usize) {
        let capacity = self.k.dims()[2];
        if end > capacity {
            let grown = end.max(2 * capacity).min(self.max_len);
            self.k.inplace(|c| grow(c, grown));
            self.v.inplace(|c| grow(c, grown));
            release_freed_memory();
        }
    }

    /// The filled prefix `0..end` of the keys and of the values.
    fn filled(&self, end: usize) -> (Tensor<B, 4>, Tensor<B, 4>) {
        (
            self.k.clone().narrow(2, 0, end),
            self.v.clone().narrow(2, 0, end),
        )
    }
}

/// `cache` `[rows, heads, capacity, d]` copied into the front of a zeroed
/// `[rows, heads, positions, d]`.
fn grow<B: DiaBackend>(cache: Tensor<B, 4>, positions: usize) -> Tensor<B, 4> {
    let [rows, heads, _, dim] = cache.dims();
    let larger = Tensor::zeros(
        [rows, heads, positions, dim],
        (&cache.device(), cache.dtype()),
    );
    B::cache_write(larger, 0, cache)
}

/// Hands the pages of freed blocks back to the system. glibc keeps freed blocks below its
/// (self-raising) mmap threshold for later allocations, and nothing reuses a grown cache's old
/// buffers, so without this a long generation's resident memory would grow by more than its
/// cache at every growth.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only returns unused memory; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Cross-attention keys and values `[rows, kv_heads, text_len, head_dim]` for one layer.
#[derive(Debug, Clone)]
pub struct CrossKv<B: Backend> {
    pub k: Tensor<B, 4>,
    pub v: Tensor<B, 4>,
}

/// Everything a decoder pass needs besides its input: per-layer caches and the text mask.
#[derive(Debug, Clone)]
pub struct DecoderState<B: Backend> {
    pub self_attn: Vec<KvCache<B>>,
    pub cross_attn: Vec<CrossKv<B>>,
    /// `[rows, 1, 1, text_len]`, true where a text position is padding; `None` when no row
    /// has padding.
    pub cross_mask: Option<Tensor<B, 4, Bool>>,
}

impl<B: Backend> DecoderState<B> {
    /// Batch rows the state serves.
    pub fn rows(&self) -> usize {
        match (self.self_attn.first(), self.cross_attn.first()) {
            (Some(cache), _) => cache.rows(),
            (None, Some(cross)) => cross.k.dims()[0],
            (None, None) => 0,
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::tensor::{DType, Distribution, Tensor};
    use burn_flex::Flex;

    use super::KvCache;

    /// Appends across the growth points return exactly what was written, in order.
    #[test]
    fn growing_keeps_every_written_position() {
        let device = Default::default();
        let mut cache = KvCache::<Flex>::new([2, 3, 600, 4], DType::F32, &device);
        let mut written = Vec::new();
        let mut start = 0;
        for len in [200, 100, 1, 250, 49] {
            let k = Tensor::<Flex, 4>::random([2, 3, len, 4], Distribution::Default, &device);
            let (keys, values) = cache.append(start, k.clone(), k.clone() * 2.0);
            written.push(k);
            start += len;
            assert_eq!(keys.dims(), [2, 3, start, 4]);
            let want = Tensor::cat(written.clone(), 2);
            want.clone().into_data().assert_eq(&keys.into_data(), true);
            (want * 2.0)
                .into_data()
                .assert_eq(&values.into_data(), true);
        }
        assert_eq!(cache.k.dims()[2], 600, "grew to max_len, no further");
    }
}
