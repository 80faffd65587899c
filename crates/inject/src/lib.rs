//! WebInject parsing and analysis.
//!
//! Parsers, all into the one [`dropwatch_model::Inject`] model:
//! - [`zeus`]: the ZeuS 2.x / Citadel text format (`webinjects.txt`), strict (the kit's builder,
//!   exactly) and tolerant;
//! - [`tinynuke`]: TinyNuke / NukeBot `injects.json`;
//! - [`trickbot`]: TrickBot `dinj` / `sinj` / `dpost` XML;
//! - [`dridex`]: Dridex `<settings>` XML;
//! - [`parse_any`]: sniffs which of these a file is.
//!
//! [`analyze`] reads the parsed injects for what matters downstream: which institutions are
//! targeted, which fields the fake screen asks for, and where the stolen data goes (drop servers,
//! ATS panels, script hosts).
//!
//! **Architecture Invariant:** nothing here does I/O or executes or renders inject content; blocks
//! are attacker-written bytes and stay bytes. Parsers never panic and use memory linear in the
//! input.

pub mod analyze;
mod common;
pub mod detect;
pub mod dridex;
pub mod tinynuke;
pub mod trickbot;
mod xml;
pub mod zeus;
mod zeus_builder;

pub use analyze::{analyze, analyze_with, EndpointClass, FieldKind, InjectAnalysis};
pub use common::{detect_charset, SourceFormat};
pub use detect::{parse_any, sniff};
pub use dridex::parse_dridex;
pub use tinynuke::parse_tinynuke;
pub use trickbot::parse_trickbot;
pub use zeus::{parse_zeus, Diagnostic, Mode, ParseOutput, Severity};
