//! Sharing what dropwatch learns about the criminals' infrastructure with CERTs, police and
//! other vendors, in the formats their tools read: STIX 2.1 bundles ([`stix`]), MISP events and
//! a MISP feed directory ([`misp`]), and abuse.ch-style blocklists ([`blocklist`]).
//!
//! Every export is written from one [`Intel`] value, built from the store's aggregate read
//! ([`dropwatch_store::Store::intel_snapshot`]) with the [`AllowList`] applied once: allowed
//! hosts never reach an exporter. The exports are deterministic: the same store gives the same
//! bytes, and new data gives new versions (a newer `modified`, a newer MISP `timestamp`) of the
//! same ids, never new identities.
//!
//! **Architecture Invariant:** no victim data enters this crate. The store read is aggregate
//! only (counts, first and last seen); accounts, secrets, bot ids and victims' addresses do not
//! exist here, so no export can carry them. `docs/sharing.md` lists what each export contains.

pub mod allow;
pub mod blocklist;
pub mod intel;
pub mod misp;
pub mod stix;
pub mod time;

pub use allow::{AllowFileError, AllowList, AllowReason};
pub use intel::{family_display, Intel};

use dropwatch_model::Micros;
use uuid::Uuid;

/// The Traffic Light Protocol level an export is marked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tlp {
    /// TLP:CLEAR (TLP 2.0), written as TLP:WHITE in STIX (the spec's fixed TLP 1.0 markings).
    Clear,
    Green,
    Amber,
    Red,
}

impl Tlp {
    /// Parses `clear`, `white`, `green`, `amber`, `red` (any case, optional `tlp:` prefix).
    pub fn parse(text: &str) -> Option<Tlp> {
        let t = text.trim().to_ascii_lowercase();
        match t.strip_prefix("tlp:").unwrap_or(&t) {
            "clear" | "white" => Some(Tlp::Clear),
            "green" => Some(Tlp::Green),
            "amber" => Some(Tlp::Amber),
            "red" => Some(Tlp::Red),
            _ => None,
        }
    }

    /// The MISP taxonomy tag (`tlp:amber`); TLP:CLEAR is `tlp:clear`.
    pub fn misp_tag(self) -> &'static str {
        match self {
            Tlp::Clear => "tlp:clear",
            Tlp::Green => "tlp:green",
            Tlp::Amber => "tlp:amber",
            Tlp::Red => "tlp:red",
        }
    }

    /// The colour MISP's TLP taxonomy gives the tag.
    pub fn misp_colour(self) -> &'static str {
        match self {
            Tlp::Clear => "#ffffff",
            Tlp::Green => "#33ff00",
            Tlp::Amber => "#ffc000",
            Tlp::Red => "#cc0033",
        }
    }
}

/// What every export takes besides the data.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The producer's name: the STIX identity and the MISP `Orgc`.
    pub producer: String,
    pub tlp: Tlp,
    /// Only objects modified at or after this instant (STIX, MISP); blocklists ignore it.
    pub since: Option<Micros>,
    /// MISP event distribution level (0 organisation only … 3 all communities).
    pub misp_distribution: u8,
}

impl Default for ExportOptions {
    fn default() -> ExportOptions {
        ExportOptions {
            producer: "dropwatch".to_string(),
            tlp: Tlp::Amber,
            since: None,
            misp_distribution: 1,
        }
    }
}

/// The namespace of dropwatch's own deterministic ids (STIX SDOs and SROs, MISP uuids). The
/// SCOs use the namespace the STIX spec fixes ([`stix::SCO_NAMESPACE`]).
pub const DROPWATCH_NAMESPACE: Uuid = Uuid::from_u128(0x5d0f_7a3e_2c4b_4f8e_9a61_d7c2_4e1b_0a93);

/// A UUIDv5 under [`DROPWATCH_NAMESPACE`] of a natural key. The key parts are joined as a JSON
/// array, so no choice of parts can collide with another.
pub fn stable_uuid(parts: &[&str]) -> Uuid {
    let name = serde_json::to_string(parts).unwrap_or_default();
    Uuid::new_v5(&DROPWATCH_NAMESPACE, name.as_bytes())
}

/// [`stable_uuid`] in the layout of a version 4 UUID. STIX 2.1 says the ids of SDOs, SROs and
/// bundles SHOULD be UUIDv4 (the validator's check 103); a name-based hash with the version
/// and variant bits of v4 is deterministic, as re-exports need, and unpredictable from outside
/// like a random one.
pub fn stable_uuid_v4_layout(parts: &[&str]) -> Uuid {
    uuid::Builder::from_random_bytes(stable_uuid(parts).into_bytes()).into_uuid()
}
