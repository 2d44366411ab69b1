//! The CPU features the Flex kernels use, detected once, and the vector helpers they share:
//! widening weight and cache elements to f32, dot products.

use half::{bf16, f16};

/// Whether the AVX2 kernels run: the CPU has AVX2, FMA and F16C, and the custom kernels are on
/// ([`crate::backend::set_custom_kernels`]). Without them every Flex hook takes Burn's own op
/// (its gemm has NEON and SSE paths), never a scalar loop.
pub fn available() -> bool {
    crate::backend::custom_kernels() && detected()
}

/// Whether this CPU has AVX2, FMA and F16C (detected once).
#[cfg(target_arch = "x86_64")]
pub fn detected() -> bool {
    use std::sync::OnceLock;
    static DETECTED: OnceLock<bool> = OnceLock::new();
    *DETECTED.get_or_init(|| {
        is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
    })
}

/// Not an x86-64 CPU: no AVX2 kernels.
#[cfg(not(target_arch = "x86_64"))]
pub fn detected() -> bool {
    false
}

/// Whether this CPU also has AVX-512F (detected once): the few-row products then use 512-bit
/// vectors, with the same sums in the same order (the same bits) as the AVX2 kernel.
#[cfg(target_arch = "x86_64")]
pub fn detected_avx512() -> bool {
    use std::sync::OnceLock;
    static DETECTED: OnceLock<bool> = OnceLock::new();
    *DETECTED.get_or_init(|| detected() && is_x86_feature_detected!("avx512f"))
}

/// Element types the kernels read and widen to f32: weights (f32, f16, bf16, int8) and KV-cache
/// rows (f32, f16, bf16).
pub trait Widen: Copy + Send + Sync + 'static {
    fn to_f32(self) -> f32;
    /// `src` widened into `dst` (same length), element by element unless the type has a faster
    /// bulk conversion.
    #[inline(always)]
    fn widen(src: &[Self], dst: &mut [f32]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = s.to_f32();
        }
    }
    /// `src` itself when the elements are already f32 (read in place, not widened).
    fn as_f32(_src: &[Self]) -> Option<&[f32]> {
        None
    }
    /// Whether [`Widen::load16`] returns the even and the odd columns rather than two
    /// runs of eight (the kernel then puts its sums back in order once per call).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    const INTERLEAVED: bool = false;
    /// Sixteen consecutive elements widened to f32, as two vectors.
    ///
    /// # Safety
    /// `p` must point to sixteen readable elements; the CPU must have AVX2, FMA and F16C.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load16(p: *const Self) -> [std::arch::x86_64::__m256; 2];
    /// Thirty-two consecutive elements widened to f32, in order, as two 512-bit vectors.
    ///
    /// # Safety
    /// `p` must point to thirty-two readable elements; the CPU must have AVX-512F.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load32(p: *const Self) -> [std::arch::x86_64::__m512; 2];
}

impl Widen for f32 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    fn as_f32(src: &[Self]) -> Option<&[f32]> {
        Some(src)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16(p: *const Self) -> [std::arch::x86_64::__m256; 2] {
        use std::arch::x86_64::*;
        unsafe { [_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))] }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load32(p: *const Self) -> [std::arch::x86_64::__m512; 2] {
        use std::arch::x86_64::*;
        unsafe { [_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16))] }
    }
}

impl Widen for f16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    /// `half`'s slice conversion uses F16C when the CPU has it (the scalar one never does).
    fn widen(src: &[Self], dst: &mut [f32]) {
        use half::slice::HalfFloatSliceExt;
        src.convert_to_f32_slice(dst);
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16(p: *const Self) -> [std::arch::x86_64::__m256; 2] {
        use std::arch::x86_64::*;
        let eight = |q: *const Self| unsafe { _mm256_cvtph_ps(_mm_loadu_si128(q.cast())) };
        unsafe { [eight(p), eight(p.add(8))] }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load32(p: *const Self) -> [std::arch::x86_64::__m512; 2] {
        use std::arch::x86_64::*;
        let sixteen = |q: *const Self| unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(q.cast())) };
        unsafe { [sixteen(p), sixteen(p.add(16))] }
    }
}

impl Widen for i8 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f32::from(self)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16(p: *const Self) -> [std::arch::x86_64::__m256; 2] {
        use std::arch::x86_64::*;
        unsafe {
            let sixteen = _mm_loadu_si128(p.cast());
            let widen = |v: __m128i| _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
            [widen(sixteen), widen(_mm_srli_si128::<8>(sixteen))]
        }
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load32(p: *const Self) -> [std::arch::x86_64::__m512; 2] {
        use std::arch::x86_64::*;
        let sixteen = |q: *const Self| unsafe {
            _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(q.cast())))
        };
        unsafe { [sixteen(p), sixteen(p.add(16))] }
    }
}

impl Widen for bf16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
    /// bf16 is the top half of an f32. One 32-byte load and two one-µop operations: each 32-bit
    /// lane holds an even column in its low half (shifted up) and an odd one in its high half
    /// (masked), half the work of widening two runs of eight to 32 bits and shifting them.
    const INTERLEAVED: bool = true;
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load16(p: *const Self) -> [std::arch::x86_64::__m256; 2] {
        use std::arch::x86_64::*;
        unsafe {
            let pairs = _mm256_loadu_si256(p.cast());
            let even = _mm256_slli_epi32::<16>(pairs);
            let odd = _mm256_and_si256(pairs, _mm256_set1_epi32(0xFFFF_0000_u32 as i32));
            [_mm256_castsi256_ps(even), _mm256_castsi256_ps(odd)]
        }
    }
    /// In order (not interleaved): each sixteen widened to 32-bit lanes and shifted up.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load32(p: *const Self) -> [std::arch::x86_64::__m512; 2] {
        use std::arch::x86_64::*;
        let sixteen = |q: *const Self| unsafe {
            let wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(q.cast()));
            _mm512_castsi512_ps(_mm512_slli_epi32::<16>(wide))
        };
        unsafe { [sixteen(p), sixteen(p.add(16))] }
    }
}

/// `Σ a[i]·b[i]` in four independent FMA chains: a plain loop's single chain of additions
/// made the scores wait on the adder's latency (measured: the attention 13 % faster).
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
pub unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut sums = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY: every load reads eight elements below n.
    unsafe {
        let fma = |at: usize, sum: __m256| {
            _mm256_fmadd_ps(
                _mm256_loadu_ps(pa.add(at)),
                _mm256_loadu_ps(pb.add(at)),
                sum,
            )
        };
        while i + 32 <= n {
            for (j, sum) in sums.iter_mut().enumerate() {
                *sum = fma(i + 8 * j, *sum);
            }
            i += 32;
        }
        while i + 8 <= n {
            sums[0] = fma(i, sums[0]);
            i += 8;
        }
        let s = _mm256_add_ps(
            _mm256_add_ps(sums[0], sums[1]),
            _mm256_add_ps(sums[2], sums[3]),
        );
        let s = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s) + dot(&a[i..n], &b[i..n])
    }
}

/// `Σ a[i]·b[i]` with eight running sums, so the compiler vectorizes it.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut sums = [0.0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a8.zip(b8) {
        for i in 0..8 {
            sums[i] += x[i] * y[i];
        }
    }
    sums.iter().sum::<f32>() + tail
}
