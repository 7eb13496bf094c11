//! TODO: kernels (sort).
