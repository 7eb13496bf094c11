//! Strided reads for the fused kernel: an input of any layout — transposed, sliced, broadcast
//! along any axes (stride 0) — read block by block through its strides, instead of being
//! copied out to a contiguous array before the kernel runs.
//!
//! A [`Strided`] view is the program's shape with the input's strides (0 along axes the input
//! is broadcast over), with size-1 axes dropped and neighbouring axes merged where the layout
//! allows, so a bias row is one `(rows, 0), (cols, 1)` pair and a contiguous input is a single
//! axis. [`Strided::gather`] fills a block from any flat position: it walks the innermost axis
//! in runs (a `copy_from_slice` for stride 1, a `fill` for stride 0, a strided loop otherwise)
//! and carries into the outer axes, so its cost per block is the elements copied plus one step
//! per run.

use smallvec::SmallVec;

use adjoint_tensor::Array;

/// An array read in row-major order of a program's shape (see the [module docs](self)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Strided {
    /// `(extent, stride)` per axis, outermost first; never empty (a single element is one axis
    /// of extent 1).
    dims: SmallVec<[(usize, isize); 6]>,
    /// Storage position of the first element.
    offset: usize,
}

impl Strided {
    /// The view of `a` broadcast to `shape` (numpy rules: `a`'s shape, aligned to the right,
    /// has each axis equal to `shape`'s or 1).
    #[track_caller]
    pub fn new(a: &Array, shape: &[usize]) -> Strided {
        let l = a.layout();
        assert!(
            l.rank() <= shape.len(),
            "adjoint: jit: internal error: an input of shape {:?} read as {shape:?}",
            l.shape
        );
        let lead = shape.len() - l.rank();
        let mut dims: SmallVec<[(usize, isize); 6]> = SmallVec::new();
        for (i, &n) in shape.iter().enumerate() {
            let stride = match i.checked_sub(lead) {
                Some(j) if l.shape[j] == n => l.strides[j],
                Some(j) => {
                    assert!(
                        l.shape[j] == 1,
                        "adjoint: jit: internal error: an input of shape {:?} read as {shape:?}",
                        l.shape
                    );
                    0
                }
                None => 0,
            };
            if n == 1 {
                continue;
            }
            match dims.last_mut() {
                // The outer axis steps exactly over the inner one: one axis.
                Some((e, s)) if *s == stride * n as isize => {
                    *e *= n;
                    *s = stride;
                }
                _ => dims.push((n, stride)),
            }
        }
        if dims.is_empty() {
            dims.push((1, 0));
        }
        Strided { dims, offset: l.offset }
    }

    /// True when the view is the storage run `offset..offset + numel` (a plain slice).
    pub fn is_contiguous(&self) -> bool {
        self.dims.len() == 1 && (self.dims[0].1 == 1 || self.dims[0].0 == 1)
    }

    /// Fill `dst` with the elements at flat positions `start..start + dst.len()` of the view,
    /// `src` being the whole storage.
    pub fn gather<T: Copy>(&self, src: &[T], start: usize, dst: &mut [T]) {
        let nd = self.dims.len();
        let (m, s) = self.dims[nd - 1];
        // The multi-index of `start` and its storage position.
        let mut idx: SmallVec<[usize; 6]> = SmallVec::from_elem(0, nd);
        let mut rest = start;
        let mut pos = self.offset as isize;
        for d in (0..nd).rev() {
            let (e, st) = self.dims[d];
            idx[d] = rest % e;
            rest /= e;
            pos += idx[d] as isize * st;
        }
        let mut i = 0;
        while i < dst.len() {
            let run = (m - idx[nd - 1]).min(dst.len() - i);
            let out = &mut dst[i..i + run];
            let p = pos as usize;
            match s {
                1 => out.copy_from_slice(&src[p..p + run]),
                0 => out.fill(src[p]),
                _ => {
                    let mut q = pos;
                    for o in out.iter_mut() {
                        *o = src[q as usize];
                        q += s;
                    }
                }
            }
            i += run;
            // Step to the next run: the inner index moves by `run`, carrying outwards.
            idx[nd - 1] += run;
            pos += run as isize * s;
            let mut d = nd - 1;
            while idx[d] == self.dims[d].0 && d > 0 {
                pos -= self.dims[d].0 as isize * self.dims[d].1;
                idx[d] = 0;
                d -= 1;
                idx[d] += 1;
                pos += self.dims[d].1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Strided;
    use adjoint_tensor::Array;

    /// Every block split of every view agrees with `broadcast_to(..).to_vec()`.
    fn check(a: &Array, shape: &[usize]) {
        let want: Vec<f64> = a.broadcast_to(shape).to_vec();
        let v = Strided::new(a, shape);
        let src = a.storage_slice::<f64>();
        for blk in [1, 3, 7, 64] {
            let mut got = vec![f64::NAN; want.len()];
            for (k, c) in got.chunks_mut(blk).enumerate() {
                v.gather(src, k * blk, c);
            }
            assert_eq!(got, want, "{:?} as {shape:?}, blocks of {blk}: {v:?}", a.layout());
        }
    }

    #[test]
    fn gathers_transposed_sliced_flipped_and_broadcast_views() {
        let base = Array::from_vec((0..210).map(|i| i as f64).collect::<Vec<_>>(), &[5, 6, 7]);
        check(&base, &[5, 6, 7]);
        check(&base.transpose(0, 2), &[7, 6, 5]);
        check(&base.permute(&[1, 0, 2]), &[6, 5, 7]);
        check(&base.slice(1, 1, 6, 2), &[5, 3, 7]);
        check(&base.flip(2).narrow(0, 2, 3), &[3, 6, 7]);
        check(&base.narrow(2, 3, 1), &[5, 6, 4]); // [5, 6, 1] broadcast along the last axis
        check(&base.narrow(0, 1, 1).narrow(2, 0, 1), &[2, 5, 6, 3]);
        check(&base.narrow(1, 0, 1), &[4, 5, 6, 7]);
        check(&Array::from_vec(vec![3.0f64], &[1]), &[4, 3]);
        check(&Array::scalar(2.0f64), &[]);
    }

    #[test]
    fn merges_axes_a_layout_allows() {
        let a = Array::from_vec(vec![0.0f64; 24], &[2, 3, 4]);
        assert!(Strided::new(&a, &[2, 3, 4]).is_contiguous());
        assert!(Strided::new(&a.narrow(0, 1, 1), &[1, 3, 4]).is_contiguous());
        assert!(!Strided::new(&a.transpose(1, 2), &[2, 4, 3]).is_contiguous());
        let row = Array::from_vec(vec![0.0f64; 4], &[4]);
        assert_eq!(Strided::new(&row, &[3, 2, 4]).dims.as_slice(), &[(6, 0), (4, 1)]);
    }
}
