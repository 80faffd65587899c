//! Diagnostics: what a decode noticed that is not fatal, with a stable code and a position.

use serde::{Deserialize, Serialize};

/// At most this many diagnostics are kept; a hostile config cannot make the report unbounded.
pub const MAX_DIAGNOSTICS: usize = 1_000;

/// A non-fatal finding. `code` is stable (snake_case), `message` is for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub code: String,
    pub message: String,
    /// Byte offset in the decrypted storage (or in the item data, when `item_id` is set and
    /// the message says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_id: Option<u32>,
    /// The item's stored size, for items kept only as a diagnostic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
}

impl Diagnostic {
    pub fn new(code: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code: code.to_string(),
            message: message.into(),
            offset: None,
            item_id: None,
            size: None,
        }
    }

    pub fn at(code: &str, offset: usize, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            offset: Some(offset),
            ..Diagnostic::new(code, message)
        }
    }

    pub fn item(mut self, id: u32) -> Diagnostic {
        self.item_id = Some(id);
        self
    }

    pub fn size(mut self, size: u32) -> Diagnostic {
        self.size = Some(size);
        self
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(id) = self.item_id {
            write!(f, " (item {id})")?;
        }
        if let Some(off) = self.offset {
            write!(f, " at offset {off}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A capped list of diagnostics; past [`MAX_DIAGNOSTICS`] one final `diagnostics_truncated` is kept.
#[derive(Debug, Default)]
pub(crate) struct Diagnostics {
    list: Vec<Diagnostic>,
    dropped: usize,
}

impl Diagnostics {
    pub(crate) fn push(&mut self, d: Diagnostic) {
        if self.list.len() < MAX_DIAGNOSTICS {
            self.list.push(d);
        } else {
            self.dropped += 1;
        }
    }

    pub(crate) fn extend(&mut self, ds: impl IntoIterator<Item = Diagnostic>) {
        for d in ds {
            self.push(d);
        }
    }

    pub(crate) fn into_vec(mut self) -> Vec<Diagnostic> {
        if self.dropped > 0 {
            self.list.push(Diagnostic::new(
                "diagnostics_truncated",
                format!("{} more diagnostics dropped", self.dropped),
            ));
        }
        self.list
    }
}
