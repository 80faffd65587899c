//! Small fixtures the test suites share.

use dropwatch_model::Institution;

/// A fictional Japanese bank `id` at `id.example`, whose account field is `kouza`.
pub fn bank(id: &str) -> Institution {
    Institution {
        id: id.into(),
        name: format!("{id} Bank"),
        country: "JP".into(),
        domains: vec![format!("{id}.example")],
        url_masks: vec![],
        account_fields: vec!["kouza".into()],
    }
}
