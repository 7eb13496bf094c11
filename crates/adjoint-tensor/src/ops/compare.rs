//! TODO: kernels (compare).
