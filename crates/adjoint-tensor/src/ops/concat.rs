//! TODO: kernels (concat).
