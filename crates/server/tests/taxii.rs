//! The TAXII 2.1 server through the router (tower's `oneshot`, no socket): every route,
//! paging, `added_after`, every `match[...]`, versions, manifest, the date-added headers,
//! authentication (Bearer and Basic), roles, media types, error bodies and the audit.
//! Every test runs on SQLite and on PostgreSQL (skipped with a message when unreachable,
//! required under `CI=true`).

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use base64::Engine as _;
use dropwatch_model::Institution;
use dropwatch_server::taxii::{API_ROOT, MAX_PAGE, ROUTES, TAXII_MEDIA_TYPE};
use dropwatch_server::{app, AppState};
use dropwatch_store::{
    parse_timestamp, AuditQuery, NewCollection, Store, TokenScope, TokenSecret,
    DEFAULT_COLLECTION_ALIAS, DEFAULT_COLLECTION_ID,
};
use dropwatch_testkit::backends::Backends;
use dropwatch_testkit::stix_objects::{stix_id, stix_object, stix_objects};
use serde_json::Value;
use tower::ServiceExt;

macro_rules! on_every_backend {
    ($name:ident, $body:ident) => {
        #[tokio::test]
        async fn $name() {
            let b = Backends::new("taxii test").await;
            for store in &b.stores {
                eprintln!("{}: {:?}", stringify!($name), store.backend());
                $body(world(store.clone()).await).await;
            }
            b.finish().await;
        }
    };
}

const COLL: &str = "/taxii2/api1/collections/5b6f3c1e-8d0a-4f2e-9c47-6a1d2e3f4b5c/";

struct World {
    store: Store,
    app: Router,
    analyst: String,
    partner: String,
    institution: String,
    revoked: String,
}

async fn world(store: Store) -> World {
    store
        .upsert_institution(&Institution {
            id: "bank-alpha".into(),
            name: "Alpha".into(),
            country: "JP".into(),
            domains: vec!["alpha.example".into()],
            url_masks: vec![],
            account_fields: vec![],
        })
        .await
        .unwrap();
    let mut texts = Vec::new();
    for (n, scope) in [
        TokenScope::Analyst,
        TokenScope::Partner,
        TokenScope::Institution("bank-alpha".into()),
        TokenScope::Partner,
    ]
    .into_iter()
    .enumerate()
    {
        let secret = TokenSecret::from_bytes([n as u8 + 1; 32]);
        let t = store
            .create_api_token(&secret, &scope, &format!("t{n}"))
            .await
            .unwrap();
        if n == 3 {
            store.revoke_api_token(t.id).await.unwrap();
        }
        texts.push(secret.expose().to_string());
    }
    World {
        app: app(AppState::new(store.clone())),
        store,
        analyst: texts[0].clone(),
        partner: texts[1].clone(),
        institution: texts[2].clone(),
        revoked: texts[3].clone(),
    }
}

#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Bearer(&'a str),
    Basic(&'a str),
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// A 200 with the TAXII media type; its JSON.
    fn ok(&self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        assert_eq!(self.header("content-type"), Some(TAXII_MEDIA_TYPE));
        self.json()
    }

    /// A TAXII error message with this status and nothing else.
    fn error(&self, status: u16) {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(self.header("content-type"), Some(TAXII_MEDIA_TYPE));
        let v = self.json();
        let keys: BTreeSet<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from(["title", "description", "http_status"]),
            "{v}"
        );
        assert_eq!(v["http_status"], status.to_string());
    }
}

async fn send(
    w: &World,
    method: Method,
    uri: &str,
    auth: Auth<'_>,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    match auth {
        Auth::None => {}
        Auth::Bearer(t) => req = req.header("authorization", format!("Bearer {t}")),
        Auth::Basic(t) => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(format!("partner:{t}"));
            req = req.header("authorization", format!("Basic {b64}"));
        }
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let res = w.app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 64 << 20)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

/// A GET as taxii2-client sends it: Basic auth with a partner token, the TAXII `Accept`.
async fn get(w: &World, uri: &str) -> Reply {
    send(
        w,
        Method::GET,
        uri,
        Auth::Basic(&w.partner),
        &[("accept", TAXII_MEDIA_TYPE)],
        None,
    )
    .await
}

fn ids_of(envelope: &Value) -> Vec<String> {
    envelope["objects"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| o["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

on_every_backend!(discovery_api_root_and_collections, discovery);

async fn discovery(w: World) {
    w.store
        .publish_stix(DEFAULT_COLLECTION_ALIAS, &stix_objects(3, 1))
        .await
        .unwrap();
    let mut other = NewCollection::default_indicators();
    other.id = "0f4a1d9e-3b2c-4d5e-8f60-718293a4b5c6".into();
    other.alias = None;
    other.title = "zz other".into();
    w.store.ensure_collection(&other).await.unwrap();

    let d = get(&w, "/taxii2/").await.ok();
    assert_eq!(d["api_roots"], serde_json::json!([API_ROOT]));
    assert_eq!(d["default"], API_ROOT);
    assert!(d["title"].is_string());
    let root = get(&w, API_ROOT).await.ok();
    assert_eq!(root["versions"], serde_json::json!([TAXII_MEDIA_TYPE]));
    assert!(root["title"].is_string() && root["max_content_length"].is_number());

    let list = get(&w, "/taxii2/api1/collections/").await.ok();
    let cs = list["collections"].as_array().unwrap();
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[0]["id"], DEFAULT_COLLECTION_ID);
    assert_eq!(cs[0]["alias"], DEFAULT_COLLECTION_ALIAS);
    assert_eq!(cs[0]["can_read"], true);
    assert_eq!(cs[0]["can_write"], false);
    assert_eq!(
        cs[0]["media_types"],
        serde_json::json!(["application/stix+json;version=2.1"])
    );
    assert!(cs[1].get("alias").is_none());
    let one = get(&w, COLL).await.ok();
    assert_eq!(&one, &cs[0]);
    // The alias names the same collection.
    let by_alias = get(&w, "/taxii2/api1/collections/dropwatch-indicators/")
        .await
        .ok();
    assert_eq!(by_alias, one);
    // The other collection is empty: an envelope without objects, without headers.
    let empty = get(
        &w,
        "/taxii2/api1/collections/0f4a1d9e-3b2c-4d5e-8f60-718293a4b5c6/objects/",
    )
    .await;
    assert_eq!(empty.ok(), serde_json::json!({ "more": false }));
    assert_eq!(empty.header("x-taxii-date-added-first"), None);

    get(
        &w,
        "/taxii2/api1/collections/00000000-0000-4000-8000-000000000000/",
    )
    .await
    .error(404);
    get(
        &w,
        "/taxii2/api1/collections/00000000-0000-4000-8000-000000000000/objects/",
    )
    .await
    .error(404);
    get(
        &w,
        "/taxii2/api1/collections/00000000-0000-4000-8000-000000000000/manifest/",
    )
    .await
    .error(404);
    get(&w, "/taxii2/api2/").await.error(404);
    get(&w, "/taxii2/api1/collections").await.error(404);
    get(&w, "/taxii2/api1/status/abc/").await.error(404);
}

on_every_backend!(objects_are_paged_completely_and_in_order, paging);

async fn paging(w: World) {
    // 2,500 objects, then a second version of every 25th: the default (last) reads 2,500
    // objects, the 100 updated ones at the end in their new version.
    w.store
        .publish_stix(DEFAULT_COLLECTION_ALIAS, &stix_objects(2500, 1))
        .await
        .unwrap();
    let updates: Vec<Value> = (0..2500).step_by(25).map(|i| stix_object(i, 2)).collect();
    w.store
        .publish_stix(DEFAULT_COLLECTION_ALIAS, &updates)
        .await
        .unwrap();

    // The manifest (all versions) gives each version's date_added.
    let mut added: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut uri = format!("{COLL}manifest/?limit=1000&match[version]=all");
    loop {
        let r = get(&w, &uri).await;
        let m = r.ok();
        for e in m["objects"].as_array().unwrap() {
            assert_eq!(e["media_type"], "application/stix+json;version=2.1");
            added.insert(
                (
                    e["id"].as_str().unwrap().into(),
                    e["version"].as_str().unwrap().into(),
                ),
                e["date_added"].as_str().unwrap().into(),
            );
        }
        match m["next"].as_str() {
            Some(n) => uri = format!("{COLL}manifest/?limit=1000&match[version]=all&next={n}"),
            None => break,
        }
    }
    assert_eq!(added.len(), 2600);

    let mut seen: Vec<(String, String)> = Vec::new();
    let mut pages = 0;
    let mut uri = format!("{COLL}objects/?limit=100");
    loop {
        let r = get(&w, &uri).await;
        let env = r.ok();
        pages += 1;
        let objects = env["objects"].as_array().unwrap();
        let page: Vec<(String, String)> = objects
            .iter()
            .map(|o| {
                let version = parse_timestamp(o["modified"].as_str().unwrap()).unwrap();
                (
                    o["id"].as_str().unwrap().to_string(),
                    dropwatch_store::format_timestamp(version),
                )
            })
            .collect();
        // The headers are the date_added of the page's first and last object.
        assert_eq!(
            r.header("x-taxii-date-added-first"),
            Some(added[&page[0]].as_str())
        );
        assert_eq!(
            r.header("x-taxii-date-added-last"),
            Some(added[page.last().unwrap()].as_str())
        );
        seen.extend(page);
        let more = env["more"].as_bool().unwrap();
        assert_eq!(more, env.get("next").is_some(), "{}", r.body);
        if !more {
            break;
        }
        assert_eq!(objects.len(), 100);
        uri = format!(
            "{COLL}objects/?limit=100&next={}",
            env["next"].as_str().unwrap()
        );
    }
    assert_eq!(pages, 25);
    assert_eq!(seen.len(), 2500);
    let unique: BTreeSet<&String> = seen.iter().map(|(id, _)| id).collect();
    assert_eq!(unique.len(), 2500, "an object came twice");
    // In date_added order; the updated objects last, in their second version.
    let dates: Vec<&String> = seen.iter().map(|k| &added[k]).collect();
    assert!(dates.windows(2).all(|p| p[0] < p[1]));
    for (id, version) in &seen[2400..] {
        let i = (0..2500).step_by(25).find(|&i| &stix_id(i) == id).unwrap();
        let v2 = parse_timestamp(stix_object(i, 2)["modified"].as_str().unwrap()).unwrap();
        assert_eq!(version, &dropwatch_store::format_timestamp(v2));
    }

    // Without limit: 100. Above the cap: the cap, with more.
    assert_eq!(
        ids_of(&get(&w, &format!("{COLL}objects/")).await.ok()).len(),
        100
    );
    let big = get(&w, &format!("{COLL}objects/?limit=5000")).await.ok();
    assert_eq!(ids_of(&big).len(), MAX_PAGE as usize);
    assert_eq!(big["more"], true);

    // added_after = the last date_added seen continues exactly after it.
    let r = get(&w, &format!("{COLL}objects/?limit=1000")).await;
    let last = r.header("x-taxii-date-added-last").unwrap().to_string();
    let mut rest = Vec::new();
    let mut uri = format!("{COLL}objects/?added_after={last}&limit=700");
    loop {
        let env = get(&w, &uri).await.ok();
        rest.extend(ids_of(&env));
        match env["next"].as_str() {
            Some(n) => uri = format!("{COLL}objects/?added_after={last}&limit=700&next={n}"),
            None => break,
        }
    }
    let first_ids: Vec<String> = seen[..1000].iter().map(|(id, _)| id.clone()).collect();
    let rest_expected: Vec<String> = seen[1000..].iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(rest, rest_expected);
    assert_eq!(ids_of(&r.ok()), first_ids);
}

on_every_backend!(match_filters_versions_and_manifest, filters);

async fn filters(w: World) {
    // 20 objects × 3 versions.
    w.store
        .publish_stix(DEFAULT_COLLECTION_ALIAS, &stix_objects(20, 3))
        .await
        .unwrap();
    let modified = |i: usize, v: usize| stix_object(i, v)["modified"].as_str().unwrap().to_string();
    let versions_of = |env: &Value| -> Vec<(String, String)> {
        env["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["id"].as_str().unwrap().into(),
                    o["modified"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let objects = |q: &str| format!("{COLL}objects/?{q}");

    let last = get(&w, &objects("")).await.ok();
    assert_eq!(
        versions_of(&last),
        (0..20)
            .map(|i| (stix_id(i), modified(i, 3)))
            .collect::<Vec<_>>()
    );
    let first = get(&w, &objects("match[version]=first")).await.ok();
    assert_eq!(
        versions_of(&first),
        (0..20)
            .map(|i| (stix_id(i), modified(i, 1)))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        ids_of(&get(&w, &objects("match[version]=all")).await.ok()).len(),
        60
    );
    assert_eq!(
        ids_of(&get(&w, &objects("match[version]=first,last")).await.ok()).len(),
        40
    );
    let at = get(&w, &objects(&format!("match[version]={}", modified(7, 2))))
        .await
        .ok();
    assert_eq!(versions_of(&at), vec![(stix_id(7), modified(7, 2))]);

    let two = get(
        &w,
        &objects(&format!("match[id]={},{}", stix_id(3), stix_id(12))),
    )
    .await
    .ok();
    assert_eq!(ids_of(&two), vec![stix_id(3), stix_id(12)]);
    let infra = get(
        &w,
        &objects("match[type]=infrastructure&match[version]=all"),
    )
    .await
    .ok();
    let infra = infra["objects"].as_array().unwrap();
    assert_eq!(infra.len(), 30);
    assert!(infra.iter().all(|o| o["type"] == "infrastructure"));
    let both_types = get(&w, &objects("match[type]=infrastructure,indicator"))
        .await
        .ok();
    assert_eq!(ids_of(&both_types).len(), 20);
    assert_eq!(
        ids_of(&get(&w, &objects("match[spec_version]=2.1")).await.ok()).len(),
        20
    );
    assert_eq!(
        get(&w, &objects("match[spec_version]=2.0")).await.ok(),
        serde_json::json!({"more": false})
    );
    assert_eq!(
        get(&w, &objects("match[type]=malware")).await.ok(),
        serde_json::json!({"more": false})
    );

    // added_after: everything after the first 45 versions (all v1, v2 and the v3 of 0..=4).
    let manifest = get(&w, &format!("{COLL}manifest/?match[version]=all"))
        .await
        .ok();
    let entries = manifest["objects"].as_array().unwrap();
    assert_eq!(entries.len(), 60);
    for e in entries {
        let i = (0..20).find(|&i| stix_id(i) == e["id"]).unwrap();
        assert!((1..=3)
            .any(|v| parse_timestamp(&modified(i, v))
                == parse_timestamp(e["version"].as_str().unwrap())));
    }
    let cut = entries[44]["date_added"].as_str().unwrap();
    let after = get(&w, &objects(&format!("added_after={cut}"))).await.ok();
    assert_eq!(ids_of(&after), (5..20).map(stix_id).collect::<Vec<_>>());
    let manifest_after = get(
        &w,
        &format!("{COLL}manifest/?added_after={cut}&match[type]=indicator"),
    )
    .await
    .ok();
    assert_eq!(
        ids_of(&manifest_after),
        (5..20)
            .filter(|i| i % 2 == 0)
            .map(stix_id)
            .collect::<Vec<_>>()
    );

    // One object: default last; all; a version; ids and types in the query are ignored.
    let one = |q: &str| format!("{COLL}objects/{}/?{q}", stix_id(4));
    let r = get(&w, &one("")).await;
    assert!(r.header("x-taxii-date-added-first").is_some());
    assert_eq!(versions_of(&r.ok()), vec![(stix_id(4), modified(4, 3))]);
    assert_eq!(
        ids_of(&get(&w, &one("match[version]=all&match[id]=x")).await.ok()).len(),
        3
    );
    let paged = get(&w, &one("match[version]=all&limit=2")).await.ok();
    assert_eq!(
        (ids_of(&paged).len(), paged["more"].as_bool()),
        (2, Some(true))
    );
    get(&w, &format!("{COLL}objects/{}/", stix_id(99)))
        .await
        .error(404);

    // Versions.
    let v = get(&w, &format!("{COLL}objects/{}/versions/", stix_id(4))).await;
    assert!(v.header("x-taxii-date-added-last").is_some());
    let v = v.ok();
    let listed: Vec<i64> = v["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| parse_timestamp(t.as_str().unwrap()).unwrap())
        .collect();
    let expected: Vec<i64> = (1..=3)
        .map(|n| parse_timestamp(&modified(4, n)).unwrap())
        .collect();
    assert_eq!(listed, expected);
    assert_eq!(v["more"], false);
    get(&w, &format!("{COLL}objects/{}/versions/", stix_id(99)))
        .await
        .error(404);
}

on_every_backend!(authentication_media_types_errors_and_audit, errors);

async fn errors(w: World) {
    w.store
        .publish_stix(DEFAULT_COLLECTION_ALIAS, &stix_objects(2, 1))
        .await
        .unwrap();
    let objects = format!("{COLL}objects/");
    let taxii = [("accept", TAXII_MEDIA_TYPE)];

    // Who may call.
    for auth in [
        Auth::None,
        Auth::Bearer("dw_0000"),
        Auth::Basic("dw_0000"),
        Auth::Bearer(&w.revoked),
        Auth::Basic(""),
    ] {
        for uri in ["/taxii2/", objects.as_str(), "/taxii2/nothing/"] {
            let r = send(&w, Method::GET, uri, auth, &taxii, None).await;
            r.error(401);
            let challenges: Vec<&str> = r
                .headers
                .get_all("www-authenticate")
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect();
            assert!(
                challenges.iter().any(|c| c.starts_with("Basic ")),
                "{challenges:?}"
            );
            assert!(
                challenges.iter().any(|c| c.starts_with("Bearer ")),
                "{challenges:?}"
            );
        }
    }
    for auth in [Auth::Bearer(&w.institution), Auth::Basic(&w.institution)] {
        send(&w, Method::GET, &objects, auth, &taxii, None)
            .await
            .error(403);
    }
    for auth in [
        Auth::Bearer(&w.analyst),
        Auth::Basic(&w.analyst),
        Auth::Bearer(&w.partner),
        Auth::Basic(&w.partner),
    ] {
        let env = send(&w, Method::GET, &objects, auth, &taxii, None)
            .await
            .ok();
        assert_eq!(ids_of(&env), vec![stix_id(0), stix_id(1)]);
    }

    // Media types.
    let p = Auth::Bearer(&w.partner);
    for accept in [
        "application/json",
        "application/taxii+json;version=2.0",
        "text/html",
        "application/taxii+json;version=2.1;q=0",
    ] {
        send(&w, Method::GET, &objects, p, &[("accept", accept)], None)
            .await
            .error(406);
    }
    for accept in [
        None,
        Some("*/*"),
        Some("application/taxii+json"),
        Some("text/html, application/taxii+json;version=2.1"),
    ] {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
        send(&w, Method::GET, &objects, p, &headers, None)
            .await
            .ok();
    }
    let envelope = r#"{"objects":[]}"#;
    send(
        &w,
        Method::POST,
        &objects,
        p,
        &[
            ("accept", TAXII_MEDIA_TYPE),
            ("content-type", "application/json"),
        ],
        Some(envelope),
    )
    .await
    .error(415);
    send(&w, Method::POST, &objects, p, &taxii, Some(envelope))
        .await
        .error(415);
    send(
        &w,
        Method::POST,
        &objects,
        p,
        &[
            ("accept", TAXII_MEDIA_TYPE),
            ("content-type", TAXII_MEDIA_TYPE),
        ],
        Some(envelope),
    )
    .await
    .error(405);
    send(
        &w,
        Method::DELETE,
        &format!("{objects}{}/", stix_id(0)),
        p,
        &taxii,
        None,
    )
    .await
    .error(405);
    send(&w, Method::PUT, "/taxii2/", p, &taxii, None)
        .await
        .error(405);
    // Nothing was added or deleted.
    assert_eq!(
        w.store
            .count_object_versions(DEFAULT_COLLECTION_ID)
            .await
            .unwrap(),
        2
    );

    // Bad parameters.
    for q in [
        "limit=0",
        "limit=-5",
        "limit=ten",
        "next=zzz",
        "added_after=yesterday",
        "added_after=2026-01-01",
        "match[version]=newest",
    ] {
        send(&w, Method::GET, &format!("{objects}?{q}"), p, &taxii, None)
            .await
            .error(400);
    }
    // Unknown filters are ignored.
    send(
        &w,
        Method::GET,
        &format!("{objects}?match[foo]=bar&sort=x"),
        p,
        &taxii,
        None,
    )
    .await
    .ok();

    // Every TAXII route answers and is audited with its template, the path and the status.
    let before = w.store.audit_count().await.unwrap();
    let mut hit = BTreeSet::new();
    let calls: Vec<(Method, String, u16)> = vec![
        (Method::GET, "/taxii2/".into(), 200),
        (Method::GET, API_ROOT.into(), 200),
        (Method::GET, "/taxii2/api1/collections/".into(), 200),
        (Method::GET, COLL.into(), 200),
        (Method::GET, objects.clone(), 200),
        (Method::POST, objects.clone(), 415),
        (Method::GET, format!("{objects}{}/", stix_id(1)), 200),
        (
            Method::GET,
            format!("{objects}{}/versions/", stix_id(1)),
            200,
        ),
        (Method::GET, format!("{COLL}manifest/"), 200),
        (
            Method::GET,
            "/taxii2/api1/status/0f4a1d9e-3b2c-4d5e-8f60-718293a4b5c6/".into(),
            404,
        ),
        (Method::GET, "/taxii2/elsewhere/".into(), 404),
    ];
    for (method, uri, status) in &calls {
        let r = send(&w, method.clone(), uri, p, &taxii, None).await;
        assert_eq!(r.status.as_u16(), *status, "{method} {uri}: {}", r.body);
        let last = &w
            .store
            .query_audit(&AuditQuery {
                limit: 1,
                ..AuditQuery::default()
            })
            .await
            .unwrap()[0];
        assert_eq!(last.subject, format!("{uri} status={status}"));
        assert!(last.actor.starts_with("token:"), "{last:?}");
        assert!(!last.actor.contains(&w.partner[3..]));
        hit.insert(last.action.clone());
    }
    assert_eq!(
        w.store.audit_count().await.unwrap(),
        before + calls.len() as i64
    );
    for (m, p) in ROUTES {
        assert!(
            hit.contains(&format!("{m} {p}")),
            "{m} {p} not walked: {hit:?}"
        );
    }
    // Unauthenticated requests are audited too.
    let before = w.store.audit_count().await.unwrap();
    send(&w, Method::GET, &objects, Auth::None, &taxii, None)
        .await
        .error(401);
    assert_eq!(w.store.audit_count().await.unwrap(), before + 1);
    let last = &w
        .store
        .query_audit(&AuditQuery {
            limit: 1,
            ..AuditQuery::default()
        })
        .await
        .unwrap()[0];
    assert_eq!(last.actor, "unauthenticated");

    // The institution API is unchanged beside it.
    let r = send(
        &w,
        Method::GET,
        "/api/v1/alerts",
        Auth::Bearer(&w.institution),
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = send(&w, Method::GET, "/api/v1/nothing", Auth::None, &[], None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body, r#"{"error":"unauthorized"}"#);
}
