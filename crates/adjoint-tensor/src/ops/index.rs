//! TODO: kernels (index).
