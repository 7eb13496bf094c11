//! TODO: kernels (matmul).
