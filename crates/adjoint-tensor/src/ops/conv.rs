//! TODO: kernels (conv).
