//! TODO: kernels (select).
