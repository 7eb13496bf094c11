//! TODO: kernels (unary).
