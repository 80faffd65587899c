//! Test data and test peers for dropwatch: everything synthetic, everything deterministic.
//!
//! - [`generate`]: from a seed, an institution registry, ZeuS-format webinjects whose injected
//!   code sends stolen data to a drop, the drop's stored form-grab records (synthetic
//!   identities), and the ground truth of which victims exist.
//! - [`fixtures`]: small shared fixtures (a fictional bank).
//! - [`formats`]: the same drop data as JSON arrays, CSV and ZeuS `reports.txt` blocks.
//! - [`drop_server`]: serves those records over HTTP the way a live drop fills up.
//! - [`receiver`]: a bank's webhook endpoint that verifies every signature.
//! - [`python`]: the pinned Python tools (OASIS STIX/TAXII, pymisp), or a skip outside CI.
//! - [`stix_objects`]: deterministic STIX 2.1 objects with several versions, for sharing tests.

pub mod backends;
pub mod drop_server;
pub mod fixtures;
pub mod formats;
pub mod generate;
pub mod panel_schema;
pub mod python;
pub mod receiver;
pub mod stix_objects;

pub use generate::{generate, GenerateOptions, Generated, GroundTruth, TruthVictim, VictimKey};
