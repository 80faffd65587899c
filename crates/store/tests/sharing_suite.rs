//! The store's sharing half: TAXII collections and STIX object versions. Every test runs on
//! SQLite and on PostgreSQL, as in `suite.rs` (PostgreSQL skipped with a message when
//! unreachable, required under `CI=true`).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use dropwatch_store::{
    parse_timestamp, ManifestEntry, NewCollection, ObjectFilter, PageCursor, SharingError, Store,
    VersionMatch, DEFAULT_COLLECTION_ALIAS, DEFAULT_COLLECTION_ID,
};
use dropwatch_testkit::on_every_backend;
use dropwatch_testkit::stix_objects::{stix_id, stix_object, stix_objects};
use serde_json::{json, Value};

/// Runs one test body on every backend.
const C: &str = DEFAULT_COLLECTION_ID;

/// Every row the filter matches, page by page, checking the paging contract on the way.
async fn walk(s: &Store, filter: &ObjectFilter, limit: u32) -> Vec<ManifestEntry> {
    let mut out: Vec<ManifestEntry> = Vec::new();
    let mut next = None;
    loop {
        let page = s.manifest_page(C, filter, limit, next).await.unwrap();
        assert!(page.objects.len() <= limit as usize);
        assert_eq!(page.more, page.next.is_some());
        if page.more {
            assert_eq!(page.objects.len(), limit as usize, "a short page says more");
        }
        assert_eq!(page.first_added, page.objects.first().map(|e| e.date_added));
        assert_eq!(page.last_added, page.objects.last().map(|e| e.date_added));
        out.extend(page.objects);
        match page.next {
            // The cursor survives its text form.
            Some(c) => next = Some(PageCursor::parse(&c.token()).unwrap()),
            None => break,
        }
    }
    out
}

fn all_versions() -> ObjectFilter {
    ObjectFilter {
        versions: vec![VersionMatch::All],
        ..ObjectFilter::default()
    }
}

fn version_of(v: &Value) -> i64 {
    parse_timestamp(v["modified"].as_str().unwrap()).unwrap()
}

on_every_backend!(
    publish_is_idempotent_and_versions_are_immutable,
    |s: Store| async move {
        // The default collection appears on first publish, by alias or by id.
        assert!(s
            .collection(DEFAULT_COLLECTION_ALIAS)
            .await
            .unwrap()
            .is_none());
        let objects = stix_objects(3, 2);
        let out = s
            .publish_stix(DEFAULT_COLLECTION_ALIAS, &objects)
            .await
            .unwrap();
        assert_eq!((out.added, out.unchanged), (6, 0));
        let c = s
            .collection(DEFAULT_COLLECTION_ALIAS)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.id, C);
        assert!(c.can_read && !c.can_write);
        assert_eq!(s.collection(C).await.unwrap().unwrap(), c);

        let out = s.publish_stix(C, &objects).await.unwrap();
        assert_eq!((out.added, out.unchanged), (0, 6));
        // Same id and version, different content: the stored version is kept as it was.
        let mut changed = stix_object(0, 2);
        changed["name"] = json!("rewritten");
        let out = s.publish_stix(C, &[changed]).await.unwrap();
        assert_eq!((out.added, out.unchanged), (0, 1));
        let f = ObjectFilter {
            ids: vec![stix_id(0)],
            ..ObjectFilter::default()
        };
        let page = s.objects_page(C, &f, 10, None).await.unwrap();
        assert_eq!(page.objects.len(), 1);
        let stored: Value = serde_json::from_str(&page.objects[0].json).unwrap();
        assert_eq!(stored, stix_object(0, 2));
        // The same version twice in one batch is stored once.
        let out = s
            .publish_stix(C, &[stix_object(0, 3), stix_object(0, 3)])
            .await
            .unwrap();
        assert_eq!((out.added, out.unchanged), (1, 1));
        assert_eq!(s.count_object_versions(C).await.unwrap(), 7);

        // An SCO (no created/modified) has one version: republishing it changes nothing.
        let sco = json!({"type": "url", "spec_version": "2.1",
        "id": "url--6f1d2a3b-4c5d-5e6f-8a9b-0c1d2e3f4a5b", "value": "https://drop.invalid/gate.php"});
        assert_eq!(
            s.publish_stix(C, std::slice::from_ref(&sco))
                .await
                .unwrap()
                .added,
            1
        );
        let mut sco2 = sco.clone();
        sco2["value"] = json!("https://other.invalid/");
        let out = s.publish_stix(C, &[sco, sco2]).await.unwrap();
        assert_eq!((out.added, out.unchanged), (0, 2));
        let url_versions = s
            .object_versions(
                C,
                "url--6f1d2a3b-4c5d-5e6f-8a9b-0c1d2e3f4a5b",
                &ObjectFilter::default(),
                10,
                None,
            )
            .await
            .unwrap();
        assert_eq!(url_versions.objects.len(), 1);
        // Its version is its date_added.
        assert_eq!(
            url_versions.objects[0].version,
            url_versions.objects[0].date_added
        );
    }
);

on_every_backend!(
    bad_objects_and_unknown_collections_store_nothing,
    |s: Store| async move {
        let mut batch = stix_objects(4, 1);
        batch.push(json!({"type": "indicator", "id": "indicator--not-a-uuid"}));
        match s.publish_stix(C, &batch).await {
            Err(SharingError::InvalidObject { index: 4, .. }) => {}
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            s.publish_stix("no-such-collection", &stix_objects(1, 1))
                .await,
            Err(SharingError::UnknownCollection(_))
        ));
        // The failed batch created nothing, not even the default collection's rows.
        assert_eq!(s.publish_stix(C, &[]).await.unwrap().added, 0);
        assert_eq!(s.count_object_versions(C).await.unwrap(), 0);

        // Collections: idempotent, refreshed, validated.
        let mut other = NewCollection {
            id: "0f4a1d9e-3b2c-4d5e-8f60-718293a4b5c6".into(),
            alias: Some("partners-only".into()),
            title: "Partners".into(),
            description: String::new(),
            can_read: true,
            can_write: false,
            media_types: vec!["application/stix+json;version=2.1".into()],
        };
        let first = s.ensure_collection(&other).await.unwrap();
        assert_eq!(s.ensure_collection(&other).await.unwrap(), first);
        other.title = "Partners (renamed)".into();
        assert_eq!(
            s.ensure_collection(&other).await.unwrap().title,
            "Partners (renamed)"
        );
        assert_eq!(s.collections().await.unwrap().len(), 2);
        other.id = "not-a-uuid".into();
        assert!(matches!(
            s.ensure_collection(&other).await,
            Err(SharingError::InvalidCollection(_))
        ));
        // Objects live in their own collection.
        s.publish_stix("partners-only", &stix_objects(2, 1))
            .await
            .unwrap();
        assert_eq!(s.count_object_versions(C).await.unwrap(), 0);
    }
);

on_every_backend!(
    date_added_strictly_increases_even_within_a_microsecond,
    |s: Store| async move {
        // One big batch (several insert chunks), then many small ones in quick succession, then
        // concurrent publishers.
        s.publish_stix(C, &stix_objects(1200, 1)).await.unwrap();
        for v in 2..=6 {
            s.publish_stix(C, &[stix_object(0, v), stix_object(1, v)])
                .await
                .unwrap();
        }
        let mut tasks = Vec::new();
        for t in 0..4usize {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let batch: Vec<Value> = (0..50)
                    .map(|i| stix_object(2000 + t * 100 + i, 1))
                    .collect();
                s.publish_stix(C, &batch).await.unwrap()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().added, 50);
        }
        let rows = walk(&s, &all_versions(), 1000).await;
        assert_eq!(rows.len(), 1200 + 10 + 200);
        for pair in rows.windows(2) {
            assert!(pair[0].date_added < pair[1].date_added, "{pair:?}");
        }
        // Within a batch, date_added follows input order.
        let first_batch: Vec<&str> = rows[..1200].iter().map(|e| e.id.as_str()).collect();
        let expected: Vec<String> = (0..1200).map(stix_id).collect();
        assert_eq!(
            first_batch,
            expected.iter().map(String::as_str).collect::<Vec<_>>()
        );
        // A concurrent publisher's batch is contiguous: publishes are serialised per collection.
        for t in 0..4usize {
            let pos: Vec<usize> = rows
                .iter()
                .enumerate()
                .filter(|(_, e)| (0..50).any(|i| e.id == stix_id(2000 + t * 100 + i)))
                .map(|(p, _)| p)
                .collect();
            assert_eq!(pos.len(), 50);
            assert_eq!(pos[49] - pos[0], 49, "publisher {t} interleaved");
        }
    }
);

on_every_backend!(
    pages_return_every_object_once_in_date_added_order,
    |s: Store| async move {
        s.publish_stix(C, &stix_objects(2500, 1)).await.unwrap();
        let rows = walk(&s, &ObjectFilter::default(), 100).await;
        let ids: Vec<String> = rows.iter().map(|e| e.id.clone()).collect();
        let expected: Vec<String> = (0..2500).map(stix_id).collect();
        assert_eq!(ids, expected);
        // Odd limits, and the cap.
        assert_eq!(walk(&s, &ObjectFilter::default(), 7).await.len(), 2500);
        let capped = s
            .objects_page(C, &ObjectFilter::default(), u32::MAX, None)
            .await
            .unwrap();
        assert_eq!(capped.objects.len(), 2500);
        assert!(!capped.more && capped.next.is_none());

        // added_after the page's last date_added continues exactly where the page stopped.
        let first = s
            .objects_page(C, &ObjectFilter::default(), 300, None)
            .await
            .unwrap();
        let rest = walk(
            &s,
            &ObjectFilter {
                added_after: first.last_added,
                ..ObjectFilter::default()
            },
            1000,
        )
        .await;
        assert_eq!(rest.len(), 2200);
        assert_eq!(rest[0].id, stix_id(300));

        // Versions published while a client pages appear once, at the end; no version twice.
        let mut seen: Vec<(String, i64)> = Vec::new();
        let mut next = None;
        let mut published = false;
        loop {
            let page = s
                .objects_page(C, &ObjectFilter::default(), 250, next)
                .await
                .unwrap();
            seen.extend(
                page.objects
                    .iter()
                    .map(|o| (o.entry.id.clone(), o.entry.version)),
            );
            if !published {
                // Object 0 was seen (v1), object 2400 not yet: both get a version 2.
                s.publish_stix(C, &[stix_object(0, 2), stix_object(2400, 2)])
                    .await
                    .unwrap();
                published = true;
            }
            match page.next {
                Some(c) => next = Some(c),
                None => break,
            }
        }
        let unique: HashSet<&(String, i64)> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "a version came twice");
        assert_eq!(
            seen.len(),
            2500 + 1,
            "v1 of 2400 is superseded before it is reached"
        );
        let tail: Vec<&String> = seen[seen.len() - 2..].iter().map(|(id, _)| id).collect();
        assert_eq!(tail, [&stix_id(0), &stix_id(2400)]);
        assert!(seen.contains(&(stix_id(0), version_of(&stix_object(0, 1)))));
    }
);

on_every_backend!(
    match_filters_select_ids_types_versions_and_spec_versions,
    |s: Store| async move {
        // 10 objects × 3 versions, and a STIX 2.0 version of object 0 that is newer than all.
        s.publish_stix(C, &stix_objects(10, 3)).await.unwrap();
        let mut old_spec = stix_object(0, 4);
        old_spec.as_object_mut().unwrap().remove("spec_version");
        s.publish_stix(C, &[old_spec.clone()]).await.unwrap();

        let ids = |rows: &[ManifestEntry]| -> BTreeSet<String> {
            rows.iter().map(|e| e.id.clone()).collect()
        };
        let by_id = |rows: &[ManifestEntry]| -> BTreeMap<String, Vec<i64>> {
            let mut m: BTreeMap<String, Vec<i64>> = BTreeMap::new();
            for e in rows {
                m.entry(e.id.clone()).or_default().push(e.version);
            }
            m
        };
        let v = |i: usize, n: usize| version_of(&stix_object(i, n));

        // Default: last version, newest spec version (2.1 beats the newer 2.0 object).
        let rows = walk(&s, &ObjectFilter::default(), 4).await;
        assert_eq!(rows.len(), 10);
        for (id, versions) in by_id(&rows) {
            let i = (0..10).find(|&i| stix_id(i) == id).unwrap();
            assert_eq!(versions, vec![v(i, 3)]);
        }
        assert!(rows.iter().all(|e| e.spec_version == "2.1"));

        let f = |versions: Vec<VersionMatch>| ObjectFilter {
            versions,
            ..ObjectFilter::default()
        };
        let first = walk(&s, &f(vec![VersionMatch::First]), 100).await;
        assert_eq!(first.len(), 10);
        assert!(first
            .iter()
            .all(|e| e.version == v((0..10).find(|&i| stix_id(i) == e.id).unwrap(), 1)));
        assert_eq!(walk(&s, &f(vec![VersionMatch::All]), 100).await.len(), 30);
        let both = walk(&s, &f(vec![VersionMatch::First, VersionMatch::Last]), 100).await;
        assert_eq!(both.len(), 20);
        let at = walk(
            &s,
            &f(vec![VersionMatch::At(v(3, 2)), VersionMatch::At(v(4, 2))]),
            100,
        )
        .await;
        assert_eq!(ids(&at), BTreeSet::from([stix_id(3), stix_id(4)]));

        // Spec versions: asking for 2.0 finds the 2.0 object; for both, its newest version wins.
        let spec = |list: &[&str], versions: Vec<VersionMatch>| ObjectFilter {
            spec_versions: list.iter().map(|s| s.to_string()).collect(),
            versions,
            ..ObjectFilter::default()
        };
        let old = walk(&s, &spec(&["2.0"], vec![]), 100).await;
        assert_eq!(old.len(), 1);
        assert_eq!(
            (old[0].id.as_str(), old[0].version),
            (stix_id(0).as_str(), version_of(&old_spec))
        );
        let mixed = walk(&s, &spec(&["2.0", "2.1"], vec![]), 100).await;
        assert_eq!(mixed.len(), 10);
        assert!(mixed.iter().any(|e| e.spec_version == "2.0"));
        assert_eq!(
            walk(&s, &spec(&["2.1"], vec![VersionMatch::All]), 100)
                .await
                .len(),
            30
        );

        // Ids and types (indicators are the even objects).
        let some = ObjectFilter {
            ids: vec![
                stix_id(1),
                stix_id(2),
                "indicator--00000000-0000-4000-8000-000000000000".into(),
            ],
            ..ObjectFilter::default()
        };
        assert_eq!(
            ids(&walk(&s, &some, 100).await),
            BTreeSet::from([stix_id(1), stix_id(2)])
        );
        let types = ObjectFilter {
            types: vec!["infrastructure".into()],
            versions: vec![VersionMatch::All],
            ..ObjectFilter::default()
        };
        let infra = walk(&s, &types, 7).await;
        assert_eq!(infra.len(), 15);
        assert!(infra.iter().all(|e| e.object_type == "infrastructure"));

        // added_after with the default filter: only objects whose last version came later.
        let all = walk(&s, &all_versions(), 100).await;
        let cut = all[14].date_added; // after every v1 and the v2 of objects 0..=4
        let later = walk(
            &s,
            &ObjectFilter {
                added_after: Some(cut),
                ..ObjectFilter::default()
            },
            3,
        )
        .await;
        assert!(later.iter().all(|e| e.date_added > cut));
        assert_eq!(later.len(), 10);

        // One object's versions, and existence.
        let versions = s
            .object_versions(C, &stix_id(5), &ObjectFilter::default(), 2, None)
            .await
            .unwrap();
        assert!(versions.more);
        assert_eq!(
            versions
                .objects
                .iter()
                .map(|e| e.version)
                .collect::<Vec<_>>(),
            vec![v(5, 1), v(5, 2)]
        );
        assert!(s.has_object(C, &stix_id(5)).await.unwrap());
        assert!(!s.has_object(C, &stix_id(50)).await.unwrap());
    }
);
