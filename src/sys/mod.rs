//! Small system helpers with no knowledge of accounts or brokers.

pub mod clock;
pub mod duration;
pub mod exec;
pub mod fsutil;
pub mod table;
pub mod term;
