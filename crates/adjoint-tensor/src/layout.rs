//! Layout as plain data: `{shape, strides in elements, offset}`.
//!
//! Every view (reshape, permute, broadcast, slice, flip, …) is a pure function from one layout to
//! another; no element is touched. Strides are signed so that `flip` is a view too. A stride of 0
//! is how broadcasting repeats an element without copying it.

use smallvec::SmallVec;

/// Dimensions of an array; inline for up to 6 dims so small ops do not allocate.
pub type Shape = SmallVec<[usize; 6]>;
/// Strides in elements (signed: flips are negative strides).
pub type Strides = SmallVec<[isize; 6]>;

/// Number of elements of a shape (1 for a scalar).
#[inline]
pub fn numel(shape: &[usize]) -> usize {
    // A zero anywhere makes the product 0 even when the other dimensions would overflow (a
    // shape read from a file may be absurd but still describe no data).
    if shape.contains(&0) {
        return 0;
    }
    shape.iter().product()
}

/// The dims of `v` as a `SmallVec`, built in place for up to 6 (the inline capacity): six
/// conditional copies instead of `SmallVec`'s element-by-element `Clone` or a `memcpy` call.
/// Layouts are copied on every op (each clone of an array copies its layout; each output gets
/// a new one), and on the 1000-op chain of the transforms suite this was ~5% of the eager
/// instructions (`chain_probe count-eager` under callgrind).
///
/// ```
/// let s = adjoint_tensor::layout::copy_dims(&[2usize, 3]);
/// assert_eq!(s.as_slice(), &[2, 3]);
/// assert!(!s.spilled());
/// ```
#[inline]
pub fn copy_dims<T: Copy + Default>(v: &[T]) -> SmallVec<[T; 6]> {
    if v.len() > 6 {
        return SmallVec::from_slice(v);
    }
    let mut buf = [T::default(); 6];
    for (i, d) in buf.iter_mut().enumerate() {
        if i < v.len() {
            *d = v[i];
        }
    }
    SmallVec::from_buf_and_len(buf, v.len())
}

/// Row-major (C order) strides of a shape.
pub fn contiguous_strides(shape: &[usize]) -> Strides {
    // Up to 6 dims the vector starts inline from a buffer (see `copy_dims`).
    let mut s: Strides = if shape.len() <= 6 {
        SmallVec::from_buf_and_len([0; 6], shape.len())
    } else {
        SmallVec::from_elem(0, shape.len())
    };
    let (dst, mut acc) = (s.as_mut_slice(), 1isize);
    for i in (0..shape.len()).rev() {
        dst[i] = acc;
        // Saturating: only an empty array's shape can overflow here (its strides are never
        // used to address data), and a reader must not panic on one.
        acc = acc.saturating_mul(shape[i].max(1).min(isize::MAX as usize) as isize);
    }
    s
}

/// NumPy broadcasting of two shapes, or `None` when they are incompatible.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Shape> {
    // Most pairs are equal or one is a scalar constant.
    if a == b || b.is_empty() {
        return Some(copy_dims(a));
    }
    if a.is_empty() {
        return Some(copy_dims(b));
    }
    let n = a.len().max(b.len());
    let mut out: Shape = SmallVec::from_elem(0, n);
    for i in 0..n {
        let da = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
        let db = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
        out[i] = if da == db {
            da
        } else if da == 1 {
            db
        } else if db == 1 {
            da
        } else {
            return None;
        };
    }
    Some(out)
}

/// How an array's elements sit in its storage.
#[derive(Debug, PartialEq, Eq)]
pub struct Layout {
    /// Size of each dimension.
    pub shape: Shape,
    /// Step in elements between neighbours along each dimension.
    pub strides: Strides,
    /// Position of element `[0, 0, …]` in the storage.
    pub offset: usize,
}

impl Clone for Layout {
    #[inline]
    fn clone(&self) -> Layout {
        Layout { shape: copy_dims(&self.shape), strides: copy_dims(&self.strides), offset: self.offset }
    }
}

impl Layout {
    /// Row-major layout of `shape` at offset 0.
    #[inline]
    pub fn contiguous(shape: &[usize]) -> Layout {
        Layout { shape: copy_dims(shape), strides: contiguous_strides(shape), offset: 0 }
    }

    /// Number of dimensions.
    #[inline]
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    #[inline]
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    /// True when the elements are in row-major order with no gaps (size-1 dims may have any
    /// stride). Such an array is the storage slice `offset..offset+numel`.
    pub fn is_contiguous(&self) -> bool {
        let mut acc = 1isize;
        for i in (0..self.shape.len()).rev() {
            let d = self.shape[i];
            if d == 0 {
                return true;
            }
            if d != 1 {
                if self.strides[i] != acc {
                    return false;
                }
                acc *= d as isize;
            }
        }
        true
    }

    /// The storage range of a contiguous layout.
    #[inline]
    pub fn contiguous_range(&self) -> Option<std::ops::Range<usize>> {
        if self.is_contiguous() {
            Some(self.offset..self.offset + self.numel())
        } else {
            None
        }
    }

    /// Reshape without copying, if the layout allows it (`None` means a copy is needed).
    /// `shape` must have the same number of elements.
    pub fn reshape(&self, shape: &[usize]) -> Option<Layout> {
        debug_assert_eq!(numel(shape), self.numel());
        if self.is_contiguous() {
            let mut l = Layout::contiguous(shape);
            l.offset = self.offset;
            return Some(l);
        }
        // General case (as NumPy's `_attempt_nocopy_reshape`): match groups of old dims whose
        // element counts agree; each old group must itself be contiguous-in-place.
        let old: Vec<(usize, isize)> =
            self.shape.iter().zip(&self.strides).filter(|&(&d, _)| d != 1).map(|(&d, &s)| (d, s)).collect();
        let mut new_strides: Strides = SmallVec::from_elem(0, shape.len());
        let (mut oi, mut ni) = (0usize, 0usize);
        let new_nz: Vec<usize> = (0..shape.len()).collect();
        let _ = new_nz;
        while ni < shape.len() || oi < old.len() {
            // Skip size-1 new dims (any stride works).
            if ni < shape.len() && shape[ni] == 1 {
                new_strides[ni] = 0;
                ni += 1;
                continue;
            }
            if oi >= old.len() || ni >= shape.len() {
                return None;
            }
            let (oj0, nj0) = (oi, ni);
            let mut op = old[oi].0;
            let mut np = shape[ni];
            oi += 1;
            ni += 1;
            while op != np {
                if op < np {
                    if oi >= old.len() {
                        return None;
                    }
                    op *= old[oi].0;
                    oi += 1;
                } else {
                    while ni < shape.len() && shape[ni] == 1 {
                        ni += 1;
                    }
                    if ni >= shape.len() {
                        return None;
                    }
                    np *= shape[ni];
                    ni += 1;
                }
            }
            // old dims oj0..oi must be mutually contiguous.
            for k in oj0..oi - 1 {
                if old[k].1 != old[k + 1].1 * old[k + 1].0 as isize {
                    return None;
                }
            }
            // Assign strides for new dims nj0..ni from the innermost old stride.
            let mut acc = old[oi - 1].1;
            for k in (nj0..ni).rev() {
                if shape[k] == 1 {
                    new_strides[k] = 0;
                } else {
                    new_strides[k] = acc;
                    acc *= shape[k] as isize;
                }
            }
        }
        Some(Layout { shape: SmallVec::from_slice(shape), strides: new_strides, offset: self.offset })
    }

    /// Reorder dimensions: output dim `i` is input dim `perm[i]`.
    pub fn permute(&self, perm: &[usize]) -> Layout {
        Layout {
            shape: perm.iter().map(|&p| self.shape[p]).collect(),
            strides: perm.iter().map(|&p| self.strides[p]).collect(),
            offset: self.offset,
        }
    }

    /// Broadcast to `shape` (NumPy rules, new dims on the left) using stride 0.
    /// Returns `None` when the shapes are incompatible.
    pub fn broadcast_to(&self, shape: &[usize]) -> Option<Layout> {
        if shape.len() < self.rank() {
            return None;
        }
        let lead = shape.len() - self.rank();
        let mut strides: Strides = SmallVec::from_elem(0, shape.len());
        for i in 0..self.rank() {
            let (d, t) = (self.shape[i], shape[lead + i]);
            if d == t {
                strides[lead + i] = self.strides[i];
            } else if d == 1 {
                strides[lead + i] = 0;
            } else {
                return None;
            }
        }
        Some(Layout { shape: SmallVec::from_slice(shape), strides, offset: self.offset })
    }

    /// Insert a size-1 dimension at `axis`.
    pub fn unsqueeze(&self, axis: usize) -> Layout {
        let mut l = self.clone();
        l.shape.insert(axis, 1);
        l.strides.insert(axis, 0);
        l
    }

    /// Remove the size-1 dimension at `axis`.
    pub fn squeeze(&self, axis: usize) -> Layout {
        let mut l = self.clone();
        debug_assert_eq!(l.shape[axis], 1);
        l.shape.remove(axis);
        l.strides.remove(axis);
        l
    }

    /// Elements `start, start+step, …` (fewer than `end`) along `axis`; `step >= 1`.
    pub fn slice(&self, axis: usize, start: usize, end: usize, step: usize) -> Layout {
        let mut l = self.clone();
        let len = if end > start { (end - start).div_ceil(step) } else { 0 };
        if len > 0 {
            l.offset = (self.offset as isize + start as isize * self.strides[axis]) as usize;
        }
        l.shape[axis] = len;
        l.strides[axis] = self.strides[axis] * step as isize;
        l
    }

    /// Reverse the order along `axis`.
    pub fn flip(&self, axis: usize) -> Layout {
        let mut l = self.clone();
        let d = self.shape[axis];
        if d > 0 {
            l.offset = (self.offset as isize + (d as isize - 1) * self.strides[axis]) as usize;
        }
        l.strides[axis] = -self.strides[axis];
        l
    }

    /// Call `f` with the storage offset of every element, in row-major logical order.
    /// The innermost dimension runs as a plain strided loop.
    #[inline]
    pub fn for_each_offset(&self, mut f: impl FnMut(usize)) {
        let n = self.numel();
        if n == 0 {
            return;
        }
        let nd = self.rank();
        if nd == 0 {
            f(self.offset);
            return;
        }
        let inner = self.shape[nd - 1];
        let istride = self.strides[nd - 1];
        let mut idx: SmallVec<[usize; 6]> = SmallVec::from_elem(0, nd);
        let mut base = self.offset as isize;
        loop {
            let mut o = base;
            for _ in 0..inner {
                f(o as usize);
                o += istride;
            }
            let mut d = nd - 1;
            loop {
                if d == 0 {
                    return;
                }
                d -= 1;
                idx[d] += 1;
                base += self.strides[d];
                if idx[d] < self.shape[d] {
                    break;
                }
                base -= self.strides[d] * self.shape[d] as isize;
                idx[d] = 0;
            }
        }
    }

    /// Like [`for_each_offset`](Self::for_each_offset) over two layouts of the same shape,
    /// passing both offsets.
    #[inline]
    pub fn for_each_offset2(a: &Layout, b: &Layout, mut f: impl FnMut(usize, usize)) {
        debug_assert_eq!(a.shape, b.shape);
        let n = a.numel();
        if n == 0 {
            return;
        }
        let nd = a.rank();
        if nd == 0 {
            f(a.offset, b.offset);
            return;
        }
        let inner = a.shape[nd - 1];
        let (sa, sb) = (a.strides[nd - 1], b.strides[nd - 1]);
        let mut idx: SmallVec<[usize; 6]> = SmallVec::from_elem(0, nd);
        let (mut ba, mut bb) = (a.offset as isize, b.offset as isize);
        loop {
            let (mut oa, mut ob) = (ba, bb);
            for _ in 0..inner {
                f(oa as usize, ob as usize);
                oa += sa;
                ob += sb;
            }
            let mut d = nd - 1;
            loop {
                if d == 0 {
                    return;
                }
                d -= 1;
                idx[d] += 1;
                ba += a.strides[d];
                bb += b.strides[d];
                if idx[d] < a.shape[d] {
                    break;
                }
                ba -= a.strides[d] * a.shape[d] as isize;
                bb -= b.strides[d] * b.shape[d] as isize;
                idx[d] = 0;
            }
        }
    }

    /// Three-layout version of [`for_each_offset2`](Self::for_each_offset2).
    #[inline]
    pub fn for_each_offset3(a: &Layout, b: &Layout, c: &Layout, mut f: impl FnMut(usize, usize, usize)) {
        let n = a.numel();
        if n == 0 {
            return;
        }
        let nd = a.rank();
        if nd == 0 {
            f(a.offset, b.offset, c.offset);
            return;
        }
        let mut idx: SmallVec<[usize; 6]> = SmallVec::from_elem(0, nd);
        let (mut oa, mut ob, mut oc) = (a.offset as isize, b.offset as isize, c.offset as isize);
        loop {
            f(oa as usize, ob as usize, oc as usize);
            let mut d = nd;
            loop {
                if d == 0 {
                    return;
                }
                d -= 1;
                idx[d] += 1;
                oa += a.strides[d];
                ob += b.strides[d];
                oc += c.strides[d];
                if idx[d] < a.shape[d] {
                    break;
                }
                oa -= a.strides[d] * a.shape[d] as isize;
                ob -= b.strides[d] * b.shape[d] as isize;
                oc -= c.strides[d] * c.shape[d] as isize;
                idx[d] = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_and_strides_match_the_general_path_at_every_rank() {
        // Ranks 0–9 cross the inline capacity (6) that `copy_dims` and `contiguous_strides`
        // build in place; the reference is the element-by-element construction.
        for rank in 0..10usize {
            for zero in [None, Some(0usize)] {
                let mut shape: Vec<usize> = (0..rank).map(|i| i % 3 + 1 + i).collect();
                if let (Some(z), true) = (zero, rank > 0) {
                    shape[z] = 0;
                }
                let dims = copy_dims(&shape);
                assert_eq!(dims.as_slice(), shape.as_slice());
                assert_eq!(dims.spilled(), rank > 6);
                let mut want = vec![0isize; rank];
                let mut acc = 1isize;
                for i in (0..rank).rev() {
                    want[i] = acc;
                    acc *= shape[i].max(1) as isize;
                }
                let l = Layout::contiguous(&shape);
                assert_eq!(l.strides.as_slice(), want.as_slice(), "shape {shape:?}");
                let mut v = l.permute(&(0..rank).rev().collect::<Vec<_>>());
                v.offset = 7;
                let c = v.clone();
                assert_eq!(c, v);
                assert_eq!((c.shape.spilled(), c.strides.spilled()), (rank > 6, rank > 6));
            }
        }
    }

    fn offsets(l: &Layout) -> Vec<usize> {
        let mut v = vec![];
        l.for_each_offset(|o| v.push(o));
        v
    }

    #[test]
    fn transpose_then_reshape_needs_copy() {
        let l = Layout::contiguous(&[2, 3]).permute(&[1, 0]);
        assert_eq!(offsets(&l), vec![0, 3, 1, 4, 2, 5]);
        assert!(l.reshape(&[6]).is_none());
        assert!(l.reshape(&[3, 2, 1]).is_some());
    }

    #[test]
    fn reshape_splits_and_merges_in_place() {
        // Every other column of [4, 6] is a uniform stride-2 run: even the flat reshape is a view.
        let even = Layout::contiguous(&[4, 6]).slice(1, 0, 6, 2); // [4,3] strides [6,2]
        let flat = even.reshape(&[12]).unwrap();
        assert_eq!(flat.strides.as_slice(), &[2]);
        assert_eq!(offsets(&flat), offsets(&even));
        // Every other column of [4, 7]: rows are 7 apart, not 8, so only splits are views.
        let base = Layout::contiguous(&[4, 7]).slice(1, 0, 7, 2); // [4,4] strides [7,2]
        let r = base.reshape(&[2, 2, 4]).unwrap();
        assert_eq!(offsets(&r), offsets(&base));
        let r = base.reshape(&[4, 2, 2]).unwrap();
        assert_eq!(offsets(&r), offsets(&base));
        assert!(base.reshape(&[16]).is_none());
        assert!(base.reshape(&[8, 2]).is_none());
    }

    #[test]
    fn flip_and_slice_offsets() {
        let l = Layout::contiguous(&[5]).flip(0).slice(0, 1, 5, 2);
        assert_eq!(offsets(&l), vec![3, 1]);
    }

    #[test]
    fn broadcast_uses_zero_strides() {
        let l = Layout::contiguous(&[3, 1]).broadcast_to(&[2, 3, 4]).unwrap();
        assert_eq!(l.strides.as_slice(), &[0, 1, 0]);
        assert!(Layout::contiguous(&[3]).broadcast_to(&[4]).is_none());
        assert_eq!(broadcast_shapes(&[3, 1], &[4]).unwrap().as_slice(), &[3, 4]);
        assert!(broadcast_shapes(&[3], &[4]).is_none());
    }
}
