//! Snake in one pass with a sine the compiler vectorizes: Flex's `sin` is libm per element, and
//! Burn's Snake is five passes over tensors up to `[96, 44 100]` per second of audio.

/// `|αx|` up to which the sine's range reduction is accurate; beyond it (and for NaN) libm's.
const REDUCED_RANGE: f32 = 8192.0;

/// Adding and subtracting 1.5 · 2²³ rounds to the nearest integer without a branch.
const ROUND: f32 = 12_582_912.0;

/// `a · b + c`, fused where the instructions exist (a call into libm where they do not).
#[inline(always)]
fn mul_add<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// `sin²(a)` for `|a| ≤ REDUCED_RANGE`: `a = j·π/2 + r` with `|r| ≤ π/4` (Cody–Waite, π/2 in
/// three parts so that `j·π/2` loses nothing) and Cephes' single-precision polynomials; the
/// cosine in odd quadrants, whose sign the square drops.
#[inline(always)]
fn sin_squared<const FMA: bool>(a: f32) -> f32 {
    let t = mul_add::<FMA>(a, std::f32::consts::FRAC_2_PI, ROUND);
    let j = t - ROUND;
    let r = mul_add::<FMA>(-j, 1.570_312_5, a);
    let r = mul_add::<FMA>(-j, 4.837_513e-4, r);
    let r = mul_add::<FMA>(-j, 7.549_79e-8, r);
    let z = r * r;
    let sin = mul_add::<FMA>(-1.951_529_6e-4, z, 8.332_161e-3);
    let sin = mul_add::<FMA>(sin, z, -1.666_665_5e-1);
    let sin = mul_add::<FMA>(sin * z, r, r);
    let cos = mul_add::<FMA>(2.443_315_7e-5, z, -1.388_731_6e-3);
    let cos = mul_add::<FMA>(cos, z, 4.166_664_6e-2);
    let cos = mul_add::<FMA>(cos * z, z, mul_add::<FMA>(-0.5, z, 1.0));
    // `t`'s last mantissa bit is `j`'s parity: its ulp is 1 while |j| < 2²².
    let s = if t.to_bits() & 1 == 1 { cos } else { sin };
    s * s
}

/// One channel's Snake: `out[i] = x[i] + sin²(α·x[i]) / (α + 1e-9)`.
pub fn snake_row(x: &[f32], alpha: f32, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    match super::simd_level() {
        // SAFETY: the CPU features were detected at run time.
        super::SimdLevel::Avx512 => return unsafe { snake_row_avx512(x, alpha, out) },
        super::SimdLevel::Avx2 => return unsafe { snake_row_avx2(x, alpha, out) },
        super::SimdLevel::Baseline => {}
    }
    snake_row_lanes::<false>(x, alpha, out);
}

#[inline(always)]
fn snake_row_lanes<const FMA: bool>(x: &[f32], alpha: f32, out: &mut [f32]) {
    let scale = 1.0 / (alpha + 1e-9);
    let mut outside = false;
    for (o, &v) in out.iter_mut().zip(x) {
        let a = v * alpha;
        // Clamped so that NaN and far arguments stay numbers here; they are redone below.
        #[allow(clippy::manual_clamp)]
        let reduced = a.max(-REDUCED_RANGE).min(REDUCED_RANGE);
        outside |= a.abs() > REDUCED_RANGE || a.is_nan();
        *o = mul_add::<FMA>(sin_squared::<FMA>(reduced), scale, v);
    }
    if outside {
        for (o, &v) in out.iter_mut().zip(x) {
            let a = v * alpha;
            if a.abs() > REDUCED_RANGE || a.is_nan() {
                *o = v + a.sin() * a.sin() * scale;
            }
        }
    }
}

/// [`snake_row`] eight lanes wide, with fused multiply-adds.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn snake_row_avx2(x: &[f32], alpha: f32, out: &mut [f32]) {
    snake_row_lanes::<true>(x, alpha, out);
}

/// [`snake_row`] sixteen lanes wide.
///
/// # Safety
/// The CPU must have AVX-512 F, VL, DQ and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
unsafe fn snake_row_avx512(x: &[f32], alpha: f32, out: &mut [f32]) {
    snake_row_lanes::<true>(x, alpha, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Within 2·10⁻⁷ of f64's sin² over the whole reduced range, densest near zero.
    #[test]
    fn sin_squared_matches_f64() {
        let mut worst = 0.0f64;
        for i in -200_000..=200_000 {
            let a = i as f32 * 0.04096;
            for a in [a, a * 1e-3] {
                let want = f64::from(a).sin().powi(2);
                worst = worst.max((f64::from(sin_squared::<false>(a)) - want).abs());
                worst = worst.max((f64::from(sin_squared::<true>(a)) - want).abs());
            }
        }
        assert!(worst < 2e-7, "worst error {worst}");
    }

    /// Far arguments, infinities and NaN take libm's path and keep its answer.
    #[test]
    fn snake_row_covers_every_input() {
        let alpha = 2.5f32;
        let x = [
            0.0,
            1e-6,
            -0.3,
            1.0,
            3000.0,
            -3276.0,
            4000.0,
            1e9,
            f32::INFINITY,
            f32::NAN,
        ];
        let mut out = [0.0f32; 10];
        snake_row(&x, alpha, &mut out);
        for (&o, &v) in out.iter().zip(&x) {
            let want = f64::from(v) + (f64::from(v) * f64::from(alpha)).sin().powi(2) / 2.5;
            if want.is_nan() || v.is_nan() {
                assert!(o.is_nan(), "{v}: {o}");
                continue;
            }
            let tol = 1e-6 * (1.0 + want.abs());
            assert!((f64::from(o) - want).abs() <= tol, "{v}: {o} vs {want}");
        }
    }
}
