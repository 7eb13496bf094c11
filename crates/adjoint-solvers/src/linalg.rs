//! Dense linear algebra with derivative rules (in progress).
