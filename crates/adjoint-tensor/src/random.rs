//! TODO random
