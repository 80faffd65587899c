//! Walks every route with every kind of token against two institutions' data and proves that
//! nothing crosses institutions, partners get no personal data, missing, unknown and revoked
//! tokens learn nothing, and every request lands in the audit log.
//!
//! Requests go through the router with tower's `oneshot`: no socket. Both tests run on SQLite
//! and on PostgreSQL (skipped with a message when unreachable, required under `CI=true`).

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use dropwatch_model::{AnalyzedRecord, Institution, MaskedSecret, SecretKind, Urgency};
use dropwatch_server::{app, openapi, AppState, ROUTES};
use dropwatch_store::{account_hash, AuditQuery, IngestBatch, Store, TokenScope, TokenSecret};
use dropwatch_testkit::backends::Backends;
use serde_json::Value;
use tower::ServiceExt;

/// Runs one test body on a fresh world on every backend.
macro_rules! on_every_backend {
    ($name:ident, $body:ident) => {
        #[tokio::test]
        async fn $name() {
            let b = Backends::new("isolation test").await;
            for store in &b.stores {
                eprintln!("{}: {:?}", stringify!($name), store.backend());
                $body(world(store.clone()).await).await;
            }
            b.finish().await;
        }
    };
}

const A: &str = "bank-alpha";
const B: &str = "bank-bravo";
const A_ACCOUNTS: [&str; 2] = ["alpha-0001-77", "alpha-0002-77"];
const B_ACCOUNTS: [&str; 2] = ["bravo-0001-99", "bravo-0002-99"];

fn institution(id: &str) -> Institution {
    Institution {
        id: id.into(),
        name: format!("{id} name"),
        country: "JP".into(),
        domains: vec![format!("{id}.example")],
        url_masks: vec![],
        account_fields: vec![],
    }
}

fn norm(account: &str) -> String {
    account.replace('-', "")
}

fn record(fp: &str, inst: &str, account: &str, kinds: &[SecretKind]) -> AnalyzedRecord {
    AnalyzedRecord {
        fingerprint: fp.into(),
        external_id: None,
        bot_id: format!("BOT_{inst}"),
        botnet: format!("net-{inst}"),
        url: format!("https://ib.{inst}.example/login"),
        institution_id: Some(inst.into()),
        account: Some(account.into()),
        account_norm: Some(norm(account)),
        urgency: Urgency::from_exposed(kinds),
        secrets: kinds
            .iter()
            .map(|&kind| MaskedSecret {
                kind,
                field: kind.as_str().into(),
                length: 6,
                hmac: format!("hmac-{fp}"),
            })
            .collect(),
        other_fields: vec![],
        mule_accounts: vec![],
    }
}

/// Every string that identifies one of an institution's victims.
fn markers(inst: &str, accounts: &[&str]) -> Vec<String> {
    let mut m = vec![
        inst.to_string(),
        format!("BOT_{inst}"),
        format!("net-{inst}"),
    ];
    for a in accounts {
        m.push(a.to_string());
        m.push(norm(a));
        m.push(account_hash(&norm(a))[5..].to_string());
    }
    m
}

struct Tokens {
    analyst: String,
    a: String,
    b: String,
    partner: String,
    revoked: String,
    all_texts: Vec<String>,
}

struct World {
    store: Store,
    tokens: Tokens,
    a_victim: i64,
    b_victim: i64,
    a_alert: i64,
    b_alert: i64,
}

async fn world(store: Store) -> World {
    store.upsert_institution(&institution(A)).await.unwrap();
    store.upsert_institution(&institution(B)).await.unwrap();
    let mut records = Vec::new();
    for (i, (inst, accounts)) in [(A, A_ACCOUNTS), (B, B_ACCOUNTS)].into_iter().enumerate() {
        for (j, account) in accounts.iter().enumerate() {
            records.push(record(
                &format!("fp{i}{j}"),
                inst,
                account,
                &[SecretKind::Password, SecretKind::OneTimeCode],
            ));
        }
    }
    store
        .ingest(&IngestBatch {
            fetched_at: 1_000,
            source_server: Some("http://drop.example/gate.php".into()),
            records,
            ..IngestBatch::default()
        })
        .await
        .unwrap();
    let victims = store.list_victims("test-setup", None).await.unwrap();
    let alerts = store
        .alerts_since("test-setup", None, 0, 100)
        .await
        .unwrap();
    let victim_of = |inst: &str| {
        victims
            .iter()
            .find(|v| v.institution_id == inst)
            .unwrap()
            .id
    };
    let alert_of = |inst: &str| alerts.iter().find(|a| a.institution_id == inst).unwrap().id;

    let mut n = 0u8;
    let mut all_texts = Vec::new();
    let mut token = |scope: TokenScope, label: &str| {
        n += 1;
        let secret = TokenSecret::from_bytes([n; 32]);
        all_texts.push(secret.expose().to_string());
        let store = store.clone();
        let label = label.to_string();
        async move {
            let t = store
                .create_api_token(&secret, &scope, &label)
                .await
                .unwrap();
            (t.id, secret.expose().to_string())
        }
    };
    let analyst = token(TokenScope::Analyst, "soc").await.1;
    let a = token(TokenScope::Institution(A.into()), "alpha ops")
        .await
        .1;
    let b = token(TokenScope::Institution(B.into()), "bravo ops")
        .await
        .1;
    let partner = token(TokenScope::Partner, "cert").await.1;
    let (revoked_id, revoked) = token(TokenScope::Institution(A.into()), "old alpha").await;
    assert!(store.revoke_api_token(revoked_id).await.unwrap());
    World {
        a_victim: victim_of(A),
        b_victim: victim_of(B),
        a_alert: alert_of(A),
        b_alert: alert_of(B),
        store,
        tokens: Tokens {
            analyst,
            a,
            b,
            partner,
            revoked,
            all_texts,
        },
    }
}

struct Reply {
    status: StatusCode,
    body: String,
    www_authenticate: Option<String>,
}

async fn call(
    store: &Store,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let res = app(AppState::new(store.clone()))
        .oneshot(req)
        .await
        .unwrap();
    let status = res.status();
    let www_authenticate = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    Reply {
        status,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
        www_authenticate,
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    None,
    Garbage,
    Revoked,
    Analyst,
    InstA,
    InstB,
    Partner,
}

/// One request of the walk and the status each caller must get.
struct Case {
    method: Method,
    uri: String,
    body: Option<String>,
    /// Statuses for analyst, institution A, institution B, partner.
    want: [u16; 4],
}

fn cases(w: &World) -> Vec<Case> {
    let ack = |s: &str| {
        Some(format!(
            r#"{{"status":"{s}","note":"called the customer"}}"#
        ))
    };
    let prefix = |acc: &str| account_hash(&norm(acc))[..5].to_string();
    let get = |uri: String, want| Case {
        method: Method::GET,
        uri,
        body: None,
        want,
    };
    let post = |uri: String, body, want| Case {
        method: Method::POST,
        uri,
        body,
        want,
    };
    vec![
        get("/api/v1/alerts".into(), [200, 200, 200, 403]),
        get(
            "/api/v1/alerts?since=0&limit=1000".into(),
            [200, 200, 200, 403],
        ),
        get("/api/v1/alerts?limit=0".into(), [400, 400, 400, 403]),
        get("/api/v1/alerts?since=abc".into(), [400, 400, 400, 403]),
        get("/api/v1/victims".into(), [200, 200, 200, 403]),
        get(
            format!("/api/v1/victims/{}/timeline", w.a_victim),
            [200, 200, 404, 403],
        ),
        get(
            format!("/api/v1/victims/{}/timeline", w.b_victim),
            [200, 404, 200, 403],
        ),
        get(
            "/api/v1/victims/999999/timeline".into(),
            [404, 404, 404, 403],
        ),
        get("/api/v1/victims/abc/timeline".into(), [404, 404, 404, 403]),
        post(
            format!("/api/v1/alerts/{}/ack", w.a_alert),
            ack("acknowledged"),
            [403, 201, 404, 403],
        ),
        post(
            format!("/api/v1/alerts/{}/ack", w.b_alert),
            ack("frozen"),
            [403, 404, 201, 403],
        ),
        post(
            "/api/v1/alerts/999999/ack".into(),
            ack("frozen"),
            [403, 404, 404, 403],
        ),
        post(
            format!("/api/v1/alerts/{}/ack", w.a_alert),
            ack("stolen"),
            [403, 400, 400, 403],
        ),
        get(
            format!("/api/v1/lookup/{}", prefix(A_ACCOUNTS[0])),
            [200, 200, 200, 403],
        ),
        get(
            format!("/api/v1/lookup/{}", prefix(B_ACCOUNTS[0])),
            [200, 200, 200, 403],
        ),
        get("/api/v1/lookup/zzzzz".into(), [400, 400, 400, 403]),
        get("/api/v1/audit".into(), [200, 403, 403, 403]),
        get("/api/v1/metrics".into(), [200, 403, 403, 403]),
        get("/api/v1/openapi.json".into(), [200, 200, 200, 200]),
        get("/api/v1/nothing-here".into(), [404, 404, 404, 404]),
    ]
}

on_every_backend!(every_route_with_every_token, walk);

async fn walk(w: World) {
    let a_markers = markers(A, &A_ACCOUNTS);
    let b_markers = markers(B, &B_ACCOUNTS);
    let callers = [
        (Who::None, None),
        (
            Who::Garbage,
            Some("dw_0000000000000000000000000000000000000000000000000000000000000000"),
        ),
        (Who::Revoked, Some(w.tokens.revoked.as_str())),
        (Who::Analyst, Some(w.tokens.analyst.as_str())),
        (Who::InstA, Some(w.tokens.a.as_str())),
        (Who::InstB, Some(w.tokens.b.as_str())),
        (Who::Partner, Some(w.tokens.partner.as_str())),
    ];
    let mut analyst_saw_b = false;
    let mut a_saw_own = false;
    let mut routes_hit = BTreeSet::new();
    for case in cases(&w) {
        for (who, token) in callers {
            let before = w.store.audit_count().await.unwrap();
            let r = call(
                &w.store,
                case.method.clone(),
                &case.uri,
                token,
                case.body.as_deref(),
            )
            .await;
            let ctx = format!(
                "{who:?} {} {}: {} {}",
                case.method, case.uri, r.status, r.body
            );

            // The audit log grew, with this request as its newest entry.
            assert!(
                w.store.audit_count().await.unwrap() > before,
                "{ctx}: not audited"
            );
            let last = &w
                .store
                .query_audit(&AuditQuery {
                    limit: 1,
                    ..AuditQuery::default()
                })
                .await
                .unwrap()[0];
            assert!(
                last.action.starts_with(&format!("{} ", case.method)),
                "{ctx}: {last:?}"
            );
            let path = case.uri.split('?').next().unwrap();
            assert_eq!(
                last.subject,
                format!("{path} status={}", r.status.as_u16()),
                "{ctx}"
            );
            routes_hit.insert(last.action.clone());

            match who {
                Who::None | Who::Garbage | Who::Revoked => {
                    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{ctx}");
                    assert_eq!(r.body, r#"{"error":"unauthorized"}"#, "{ctx}");
                    assert_eq!(r.www_authenticate.as_deref(), Some("Bearer"), "{ctx}");
                    assert_eq!(last.actor, "unauthenticated", "{ctx}");
                }
                _ => {
                    let i = match who {
                        Who::Analyst => 0,
                        Who::InstA => 1,
                        Who::InstB => 2,
                        _ => 3,
                    };
                    assert_eq!(r.status.as_u16(), case.want[i], "{ctx}");
                    assert!(last.actor.starts_with("token:"), "{ctx}: {last:?}");
                }
            }
            let leaks = |ms: &[String]| ms.iter().find(|m| r.body.contains(m.as_str())).cloned();
            match who {
                Who::InstA => {
                    assert_eq!(leaks(&b_markers), None, "{ctx}: B's data reached A");
                    a_saw_own |= leaks(&a_markers).is_some();
                }
                Who::InstB => assert_eq!(leaks(&a_markers), None, "{ctx}: A's data reached B"),
                Who::Analyst => analyst_saw_b |= leaks(&b_markers).is_some(),
                Who::Partner | Who::None | Who::Garbage | Who::Revoked => {
                    assert_eq!(leaks(&a_markers), None, "{ctx}: personal data");
                    assert_eq!(leaks(&b_markers), None, "{ctx}: personal data");
                }
            }
            // Error bodies are one of ours and carry no internals.
            if !r.status.is_success() {
                let v: Value = serde_json::from_str(&r.body).unwrap_or_else(|_| panic!("{ctx}"));
                assert!(v["error"].is_string(), "{ctx}");
                assert!(v.as_object().unwrap().len() <= 2, "{ctx}");
            }
        }
    }
    // The walk reached every route (and the fallback), and the positive controls held.
    for (m, p) in ROUTES {
        assert!(
            routes_hit.contains(&format!("{m} {p}")),
            "{m} {p} not walked: {routes_hit:?}"
        );
    }
    assert!(routes_hit.contains("GET (no route)"));
    assert!(
        analyst_saw_b && a_saw_own,
        "the walk must show data to whom it belongs"
    );

    // No token text is ever written to the audit log.
    let audit = w
        .store
        .query_audit(&AuditQuery {
            limit: 10_000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    for e in &audit {
        for t in &w.tokens.all_texts {
            let hex = &t[3..];
            assert!(!e.actor.contains(hex) && !e.subject.contains(hex) && !e.action.contains(hex));
        }
    }
}

on_every_backend!(
    institutions_get_their_own_data_and_acks_land_on_the_timeline,
    own_data_and_acks
);

async fn own_data_and_acks(w: World) {
    let json = |r: Reply| -> Value {
        assert!(r.status.is_success(), "{} {}", r.status, r.body);
        serde_json::from_str(&r.body).unwrap()
    };
    let get = |uri: String, token: String| {
        let store = w.store.clone();
        async move { call(&store, Method::GET, &uri, Some(&token), None).await }
    };

    let alerts = json(get("/api/v1/alerts".into(), w.tokens.a.clone()).await);
    let list = alerts["alerts"].as_array().unwrap();
    assert_eq!(list.len(), A_ACCOUNTS.len());
    assert!(list
        .iter()
        .all(|a| a["institution_id"] == A && a["payload"]["institution_id"] == A));
    // Paging with the cursor: one at a time, then nothing.
    let first = json(get("/api/v1/alerts?limit=1".into(), w.tokens.a.clone()).await);
    let next = first["next_since"].as_i64().unwrap();
    let second = json(
        get(
            format!("/api/v1/alerts?since={next}&limit=1"),
            w.tokens.a.clone(),
        )
        .await,
    );
    assert_eq!(second["alerts"][0]["id"], list[1]["id"]);
    let done = json(
        get(
            format!("/api/v1/alerts?since={}", second["next_since"]),
            w.tokens.a.clone(),
        )
        .await,
    );
    assert_eq!(done["alerts"].as_array().unwrap().len(), 0);

    let all = json(get("/api/v1/alerts".into(), w.tokens.analyst.clone()).await);
    assert_eq!(all["alerts"].as_array().unwrap().len(), 4);

    // Lookup: A finds its own customer by prefix; B's customer is not among A's answers.
    let h = account_hash(&norm(A_ACCOUNTS[1]));
    let found = json(
        get(
            format!("/api/v1/lookup/{}", h[..5].to_uppercase()),
            w.tokens.a.clone(),
        )
        .await,
    );
    assert_eq!(found["prefix"], &h[..5]);
    assert!(found["suffixes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == &h[5..]));
    let hb = account_hash(&norm(B_ACCOUNTS[1]));
    let not_found = json(get(format!("/api/v1/lookup/{}", &hb[..5]), w.tokens.a.clone()).await);
    assert!(!not_found["suffixes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == &hb[5..]));

    // Acknowledge, then see it on the timeline; B's timeline has nothing of it.
    let uri = format!("/api/v1/alerts/{}/ack", w.a_alert);
    let r = call(
        &w.store,
        Method::POST,
        &uri,
        Some(&w.tokens.a),
        Some(r#"{"status":"frozen","note":"frozen at 10:02"}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let ack: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        (ack["status"].as_str(), ack["alert_id"].as_i64()),
        (Some("frozen"), Some(w.a_alert))
    );
    let tl = json(
        get(
            format!("/api/v1/victims/{}/timeline", w.a_victim),
            w.tokens.a.clone(),
        )
        .await,
    );
    assert_eq!(tl["acks"][0]["note"], "frozen at 10:02");
    assert_eq!(tl["alerts"][0]["id"].as_i64(), Some(w.a_alert));
    assert_eq!(
        tl["records"][0]["exposed"],
        serde_json::json!(["password", "one_time_code"])
    );
    let tb = json(
        get(
            format!("/api/v1/victims/{}/timeline", w.b_victim),
            w.tokens.analyst.clone(),
        )
        .await,
    );
    assert_eq!(tb["acks"].as_array().unwrap().len(), 0);

    // Metrics see the acknowledgement.
    let m = get("/api/v1/metrics".into(), w.tokens.analyst.clone()).await;
    assert_eq!(m.status, StatusCode::OK);
    assert!(
        m.body.contains("dropwatch_alerts{status=\"pending\"} 4"),
        "{}",
        m.body
    );
    assert!(
        m.body
            .contains("dropwatch_detected_to_ack_seconds_count{status=\"frozen\"} 1"),
        "{}",
        m.body
    );

    // The OpenAPI document describes what the routes really return.
    let doc = openapi();
    let schema_keys = |name: &str| -> BTreeSet<String> {
        doc["components"]["schemas"][name]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let keys = |v: &Value| -> BTreeSet<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(keys(&list[0]), schema_keys("Alert"));
    assert_eq!(keys(&list[0]["payload"]), schema_keys("AlertPayload"));
    assert_eq!(keys(&tl), schema_keys("Timeline"));
    assert_eq!(keys(&tl["victim"]), schema_keys("Victim"));
    assert_eq!(keys(&tl["acks"][0]), schema_keys("Ack"));
    let audit = json(get("/api/v1/audit?limit=5".into(), w.tokens.analyst.clone()).await);
    assert_eq!(keys(&audit["entries"][0]), schema_keys("AuditEntry"));
    let victims = json(get("/api/v1/victims".into(), w.tokens.b.clone()).await);
    assert_eq!(
        victims["victims"].as_array().unwrap().len(),
        B_ACCOUNTS.len()
    );
    assert_eq!(keys(&victims["victims"][0]), schema_keys("Victim"));
}
