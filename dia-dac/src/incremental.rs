//! The decoder's convolutions run on a stream, piece by piece: each keeps the input columns its
//! next outputs still read and returns every output column whose inputs have all arrived, with
//! zero padding added where a whole decode pads (the stream's start and, once it ends, its end).
//! Each column goes through each layer once and the held columns are read in place (see
//! [`ConvInput`]), so a streamed decode costs about what a whole one does and equals it up to
//! float rounding.

use burn::prelude::*;

use crate::backend::{ConvInput, DacBackend};
use crate::layers::{Conv1d, ConvTranspose1d, Snake};

/// Columns `[batch, channels, len]` held between pieces (none while `len` is 0).
pub(crate) struct Columns<B: Backend>(Option<Tensor<B, 3>>);

impl<B: Backend> Default for Columns<B> {
    fn default() -> Self {
        Self(None)
    }
}

impl<B: Backend> Columns<B> {
    /// How many columns are held.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |x| x.dims()[2])
    }

    /// Appends `x`'s columns.
    pub fn push(&mut self, x: Tensor<B, 3>) {
        self.0 = Some(match self.0.take() {
            Some(held) => Tensor::cat(vec![held, x], 2),
            None => x,
        });
    }

    /// What a piece works on, taken out: the held columns and the new ones, `x`. Without new
    /// columns, the held ones alone when the stream ends; `None` when there is nothing to do.
    pub fn take_with(
        &mut self,
        x: Option<Tensor<B, 3>>,
        last: bool,
    ) -> Option<(Option<Tensor<B, 3>>, Tensor<B, 3>)> {
        match x {
            Some(x) => Some((self.0.take(), x)),
            None if last => Some((None, self.0.take()?)),
            None => None,
        }
    }

    /// Removes and returns the first `n` columns (all of them if fewer are held).
    pub fn take_front(&mut self, n: usize) -> Option<Tensor<B, 3>> {
        let held = self.0.take()?;
        let len = held.dims()[2];
        if n < len {
            self.0 = Some(owned(held.clone().narrow(2, n, len - n)));
        }
        (n > 0).then(|| held.narrow(2, 0, n.min(len)))
    }

    /// Holds the last `n` columns of `zeros` zero columns followed by `pieces` (absent ones
    /// skipped), replacing what was held.
    pub fn hold_tail(&mut self, zeros: usize, pieces: [Option<&Tensor<B, 3>>; 2], n: usize) {
        let mut parts = Vec::new();
        let mut left = n;
        for piece in pieces.into_iter().rev().flatten() {
            let len = piece.dims()[2];
            let take = left.min(len);
            if take > 0 {
                parts.push(piece.clone().narrow(2, len - take, take));
            }
            left -= take;
        }
        if let (Some(like), true) = (parts.first(), left > 0 && zeros > 0) {
            let [batch, channels, _] = like.dims();
            parts.push(Tensor::zeros(
                [batch, channels, left.min(zeros)],
                &like.device(),
            ));
        }
        parts.reverse();
        self.0 = match parts.len() {
            0 => None,
            1 => parts.pop().map(owned),
            _ => Some(Tensor::cat(parts, 2)),
        };
    }
}

/// `x` in a buffer of its own. A narrowed tensor is a view that keeps its whole source alive
/// (and `cat` of one tensor returns it as it is): the few columns held between pieces would
/// keep whole pieces' activations, about 500 MB per stream on the 44.1 kHz codec.
fn owned<B: Backend>(x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [batch, channels, len] = x.dims();
    Tensor::zeros([batch, channels, len], &x.device())
        .slice_assign([0..batch, 0..channels, 0..len], x)
}

/// A stride-1 conv's stream: the input columns its next output reads.
#[derive(Default)]
pub(crate) struct ConvStream<B: Backend> {
    held: Columns<B>,
    /// Whether the left padding went in.
    started: bool,
}

impl<B: DacBackend> ConvStream<B> {
    /// Feeds `x` `[batch, in, n]` (none: nothing new) through `snake` and `conv`, and returns
    /// the output columns that became final; `last` ends the stream (its right padding).
    pub fn step(
        &mut self,
        conv: &Conv1d<B>,
        snake: Option<&Snake<B>>,
        x: Option<Tensor<B, 3>>,
        last: bool,
    ) -> Option<Tensor<B, 3>> {
        let (held, x) = self.held.take_with(x, last)?;
        let padding = conv.padding();
        let pad = [
            if self.started { 0 } else { padding },
            if last { padding } else { 0 },
        ];
        let input = ConvInput {
            x,
            held,
            alpha: snake.map(Snake::alpha),
            pad,
        };
        let reach = conv.reach();
        if input.len() <= reach {
            // Not one output yet: hold everything (and the left padding still to come).
            if let Some(held) = input.held {
                self.held.push(held);
            }
            self.held.push(input.x);
            return None;
        }
        self.held
            .hold_tail(pad[0], [input.held.as_ref(), Some(&input.x)], reach);
        self.started = true;
        Some(conv.conv(input, None))
    }
}

/// The upsampling (transposed) conv's stream: the input columns whose outputs still await the
/// next columns' contributions, and how many of the first outputs the padding has cropped.
#[derive(Default)]
pub(crate) struct TransposeStream<B: Backend> {
    held: Columns<B>,
    cropped: usize,
}

impl<B: DacBackend> TransposeStream<B> {
    /// Feeds `x` `[batch, in, n]` through `snake` and `up`, and returns the output columns
    /// that became final; `last` ends the stream.
    ///
    /// Output `o` (before the padding crop) sums inputs `i` with `i·stride ≤ o < i·stride +
    /// kernel`, so once `len` columns arrived every output below `len·stride` is final. The
    /// held columns' outputs up to there were returned by the previous piece.
    pub fn step(
        &mut self,
        up: &ConvTranspose1d<B>,
        snake: &Snake<B>,
        x: Option<Tensor<B, 3>>,
        last: bool,
    ) -> Option<Tensor<B, 3>> {
        let (stride, kernel, padding) = up.geometry();
        let held_len = self.held.len();
        let len = held_len + x.as_ref().map_or(0, |x| x.dims()[2]);
        let (held, x) = self.held.take_with(x, last)?;
        // Outputs from..end of the columns' uncropped transposed conv are new and final.
        let from = held_len * stride;
        let end = match last {
            true => (len * stride + kernel).saturating_sub(stride + padding),
            false => len * stride,
        };
        let keep = kernel.div_ceil(stride) - 1;
        self.held.hold_tail(0, [held.as_ref(), Some(&x)], keep);
        if end <= from {
            return None;
        }
        let input = ConvInput {
            x,
            held,
            alpha: Some(snake.alpha()),
            pad: [0, 0],
        };
        let y = up.conv(input, 0).narrow(2, from, end - from);
        // The whole decode's padding crops its first `padding` outputs.
        let drop = (padding - self.cropped).min(end - from);
        self.cropped += drop;
        (drop < end - from).then(|| y.narrow(2, drop, end - from - drop))
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn_flex::Flex;

    use super::*;

    /// Floats in the buffer behind `x` (more than `x` holds when it is a view).
    fn buffer_floats(x: &Tensor<Flex, 3>) -> usize {
        x.clone().into_primitive().tensor().bytes().len() / 4
    }

    /// The columns held between pieces own their few columns, not the pieces they came from
    /// (a view kept whole activations alive: about 500 MB per 44.1 kHz stream).
    #[test]
    fn held_columns_do_not_keep_their_pieces() {
        let device = Default::default();
        let piece = Tensor::<Flex, 1, Int>::arange(0..4000, &device)
            .float()
            .reshape([1, 4, 1000]);
        let mut held = Columns::default();
        held.hold_tail(0, [None, Some(&piece)], 3);
        let tail = held.0.clone().expect("a tail");
        assert_eq!(buffer_floats(&tail), 4 * 3);
        let expected = piece.clone().narrow(2, 997, 3);
        tail.into_data().assert_eq(&expected.into_data(), true);

        held = Columns::default();
        held.push(piece.clone());
        let front = held.take_front(998).expect("a front");
        assert_eq!(front.dims(), [1, 4, 998]);
        let rest = held.0.clone().expect("the rest");
        assert_eq!(buffer_floats(&rest), 4 * 2);
        rest.into_data()
            .assert_eq(&piece.narrow(2, 998, 2).into_data(), true);
    }
}
