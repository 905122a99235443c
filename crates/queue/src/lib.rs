//! placeholder
pub mod outbound;
