//! TODO: kernels (binary).
