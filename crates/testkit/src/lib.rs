//! Test data and test peers for dropwatch: everything synthetic, everything deterministic.
//!
//! - [`generate`]: from a seed, an institution registry, ZeuS-format webinjects whose injected
//!   code sends stolen data to a drop, the drop's stored form-grab records (synthetic
//!   identities), and the ground truth of which victims exist.
//! - [`formats`]: the same drop data as JSON arrays, CSV and ZeuS `reports.txt` blocks.
//! - [`drop_server`]: serves those records over HTTP the way a live drop fills up.
//! - [`receiver`]: a bank's webhook endpoint that verifies every signature.

pub mod backends;
pub mod drop_server;
pub mod formats;
pub mod generate;
pub mod panel_schema;
pub mod receiver;

pub use generate::{generate, GenerateOptions, Generated, GroundTruth, TruthVictim};
