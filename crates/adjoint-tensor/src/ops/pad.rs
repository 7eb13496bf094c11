//! TODO: kernels (pad).
