//! Scalar tier (being built).
