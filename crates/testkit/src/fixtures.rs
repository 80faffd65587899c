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

/// "A Bank" (`jp-a`) at `a-bank.example`, whose account field is `kouza_no`: the institution of
/// the monitor tests' hand-written form grabs.
pub fn a_bank() -> Institution {
    Institution {
        id: "jp-a".into(),
        name: "A Bank".into(),
        country: "JP".into(),
        domains: vec!["a-bank.example".into()],
        url_masks: vec![],
        account_fields: vec!["kouza_no".into()],
    }
}

/// A SQLite store in `dir` that knows [`a_bank`].
pub async fn store_with_a_bank(dir: &std::path::Path) -> dropwatch_store::Store {
    let store = dropwatch_store::Store::open_data_dir(dir)
        .await
        .expect("SQLite store");
    store
        .upsert_institution(&a_bank())
        .await
        .expect("upsert A Bank");
    store
}

/// The store's victims as [`crate::VictimKey`]s, sorted: what
/// [`crate::GroundTruth::victim_keys`] is compared with.
pub async fn stored_victim_keys(store: &dropwatch_store::Store) -> Vec<crate::VictimKey> {
    let mut v: Vec<crate::VictimKey> = store
        .list_victims("test", None)
        .await
        .expect("victims")
        .into_iter()
        .map(|v| (v.institution_id, v.account, v.exposed, v.urgency))
        .collect();
    v.sort();
    v
}
