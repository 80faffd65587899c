//! One module per subcommand.

pub mod alerts;
pub mod audit;
pub mod config;
pub mod demo;
pub mod export;
pub mod ingest;
pub mod inject;
pub mod institution;
pub mod monitor;
pub mod report;
pub mod serve;
pub mod status;
pub mod testkit;
pub mod victims;
pub mod worker;
