//! WebInject parsing and analysis.
//!
//! [`zeus`] parses the ZeuS 2.x / Citadel text format (`webinjects.txt`); [`analyze`] reads the
//! parsed injects for what matters downstream: which institutions are targeted, which fields the
//! fake screen asks for, and where the stolen data goes (drop servers, ATS panels, script hosts).
//!
//! **Architecture Invariant:** nothing here does I/O or executes or renders inject content; blocks
//! are attacker-written bytes and stay bytes.

pub mod analyze;
pub mod zeus;

pub use analyze::{analyze, EndpointClass, InjectAnalysis};
pub use zeus::{parse_zeus, Diagnostic, Mode, ParseOutput, Severity};
