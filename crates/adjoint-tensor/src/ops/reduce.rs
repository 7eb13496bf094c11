//! TODO: kernels (reduce).
