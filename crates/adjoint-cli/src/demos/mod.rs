//! The four end-to-end demos and what they share.

pub mod common;
pub mod evaluate;
pub mod forecast;
pub mod forecast_online;
pub mod forecast_report;
pub mod forecast_risk;
pub mod imaging;
pub mod maml;
pub mod meta;
pub mod parallel;
pub mod robot;
pub mod robot_control;
pub mod robot_sim;
pub mod robot_sysid;
