//! TODO display
