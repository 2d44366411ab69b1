//! Reductions across a cube through shared memory: every thread gets the result.

use cubecl::prelude::*;

/// The maximum of `value` over the cube's threads (`red` holds one slot per thread; the cube's
/// width is a power of two).
#[cube]
pub fn cube_max(red: &mut SharedMemory<f32>, value: f32) -> f32 {
    cube_reduce(red, value, true)
}

/// The sum of `value` over the cube's threads (as [`cube_max`]).
#[cube]
pub fn cube_sum(red: &mut SharedMemory<f32>, value: f32) -> f32 {
    cube_reduce(red, value, false)
}

/// A tree reduction of `value` over the cube: the maximum with `max`, else the sum.
#[cube]
fn cube_reduce(red: &mut SharedMemory<f32>, value: f32, #[comptime] max: bool) -> f32 {
    let t = UNIT_POS_X as usize;
    red[t] = value;
    sync_cube();
    let mut stride = CUBE_DIM_X as usize / 2;
    while stride > 0 {
        if t < stride {
            let (mine, other) = (red[t], red[t + stride]);
            red[t] = if max {
                select(other > mine, other, mine)
            } else {
                mine + other
            };
        }
        sync_cube();
        stride /= 2;
    }
    let result = red[0];
    sync_cube();
    result
}
