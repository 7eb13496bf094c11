//! TODO: kernels (pool).
