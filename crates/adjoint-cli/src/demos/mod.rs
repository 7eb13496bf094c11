//! The three end-to-end demos and what they share.

pub mod robot_sim;
