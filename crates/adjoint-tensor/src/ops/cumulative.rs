//! TODO: kernels (cumulative).
