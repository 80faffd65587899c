//! The hand-written OpenAPI 3.1 document served at `/api/v1/openapi.json`. Tests check it
//! against [`crate::ROUTES`] and the shapes of real responses.

use serde_json::{json, Value};

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

fn json_response(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn id_param(description: &str) -> Value {
    json!({
        "name": "id", "in": "path", "required": true, "description": description,
        "schema": { "type": "integer", "format": "int64" }
    })
}

fn micros(description: &str) -> Value {
    json!({ "type": "integer", "format": "int64", "description": format!("{description}, microseconds since the Unix epoch") })
}

fn object(properties: Value) -> Value {
    let required: Vec<String> = properties
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    json!({ "type": "object", "required": required, "properties": properties })
}

/// The OpenAPI 3.1 document of the API.
pub fn openapi() -> Value {
    let secret_kind = json!({ "type": "string", "enum": ["password", "pin", "one_time_code", "card_number", "cvv", "secret_answer"] });
    let urgency = json!({ "type": "string", "enum": ["low", "high", "critical"] });
    let ack_status = json!({ "type": "string", "enum": ["acknowledged", "frozen", "false_positive", "not_our_customer"] });
    let alert_status =
        json!({ "type": "string", "enum": ["pending", "delivered", "dead", "undeliverable"] });
    let unauthorized =
        error_response("No token, or an unknown or revoked one. The body says nothing else.");
    let forbidden = error_response("The token's role may not use this route.");
    let not_found = error_response("No such resource within the token's scope.");
    let bad_request = error_response("Malformed request.");
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "dropwatch institution API",
            "version": "1",
            "description": "Alerts about a bank's customers whose credentials were stolen by banking trojans, and their acknowledgement. Institution tokens see only their own institution's data; another institution's alert or victim answers 404. Partner tokens get no personal data. Every request is audited. Instants are microseconds since the Unix epoch."
        },
        "servers": [{ "url": "/api/v1" }],
        "security": [{ "bearer": [] }],
        "paths": {
            "/alerts": { "get": {
                "operationId": "listAlerts",
                "summary": "Alerts with an id above `since`, oldest first (analyst: all; institution: its own).",
                "parameters": [
                    { "name": "since", "in": "query", "required": false, "description": "Cursor: the last alert id already seen (`next_since` of the previous page). Default 0.", "schema": { "type": "integer", "format": "int64", "minimum": 0 } },
                    { "name": "limit", "in": "query", "required": false, "description": "Page size, default 100.", "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } }
                ],
                "responses": {
                    "200": json_response("A page of alerts.", object(json!({
                        "alerts": { "type": "array", "items": { "$ref": "#/components/schemas/Alert" } },
                        "next_since": { "type": "integer", "format": "int64", "description": "Pass as `since` for the next page." }
                    }))),
                    "400": bad_request, "401": unauthorized, "403": forbidden
                }
            }},
            "/alerts/{id}/ack": { "post": {
                "operationId": "ackAlert",
                "summary": "Acknowledge one of the institution's own alerts (institution tokens only). The acknowledgement appears on the victim's timeline.",
                "parameters": [id_param("Alert id.")],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/AckRequest" } } } },
                "responses": {
                    "201": json_response("Recorded.", json!({ "$ref": "#/components/schemas/Ack" })),
                    "400": bad_request, "401": unauthorized, "403": forbidden, "404": not_found
                }
            }},
            "/victims": { "get": {
                "operationId": "listVictims",
                "summary": "Victims (analyst: all; institution: its own customers).",
                "responses": {
                    "200": json_response("Victims.", object(json!({
                        "victims": { "type": "array", "items": { "$ref": "#/components/schemas/Victim" } }
                    }))),
                    "401": unauthorized, "403": forbidden
                }
            }},
            "/victims/{id}/timeline": { "get": {
                "operationId": "victimTimeline",
                "summary": "One victim's records (times and exposed kinds), alerts and acknowledgements.",
                "parameters": [id_param("Victim id.")],
                "responses": {
                    "200": json_response("The timeline.", json!({ "$ref": "#/components/schemas/Timeline" })),
                    "401": unauthorized, "403": forbidden, "404": not_found
                }
            }},
            "/lookup/{prefix}": { "get": {
                "operationId": "lookupAccounts",
                "summary": "Privacy-preserving lookup: send the first 5 hex digits of SHA-256 of a normalised account identifier (lowercase; blanks, '-', '.', '_' and '/' removed; UTF-8); receive the remaining 59 hex digits of every matching victim's hash, from the institution's own victims only. A customer is a victim if prefix + suffix equals the hash.",
                "parameters": [{ "name": "prefix", "in": "path", "required": true, "schema": { "type": "string", "pattern": "^[0-9a-fA-F]{5}$" } }],
                "responses": {
                    "200": json_response("Matching suffixes, sorted.", object(json!({
                        "prefix": { "type": "string", "pattern": "^[0-9a-f]{5}$" },
                        "suffixes": { "type": "array", "items": { "type": "string", "pattern": "^[0-9a-f]{59}$" } }
                    }))),
                    "400": bad_request, "401": unauthorized, "403": forbidden
                }
            }},
            "/audit": { "get": {
                "operationId": "listAudit",
                "summary": "The audit log, newest first (analysts only).",
                "parameters": [
                    { "name": "limit", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } },
                    { "name": "before", "in": "query", "required": false, "description": "Only entries with a smaller id (paging).", "schema": { "type": "integer", "format": "int64" } },
                    { "name": "actor", "in": "query", "required": false, "schema": { "type": "string" } }
                ],
                "responses": {
                    "200": json_response("Entries.", object(json!({
                        "entries": { "type": "array", "items": { "$ref": "#/components/schemas/AuditEntry" } }
                    }))),
                    "400": bad_request, "401": unauthorized, "403": forbidden
                }
            }},
            "/metrics": { "get": {
                "operationId": "metrics",
                "summary": "Prometheus text format (analysts only): dropwatch_alerts{status}, dropwatch_delivery_attempts_total{outcome}, histograms dropwatch_detected_to_delivered_seconds and dropwatch_detected_to_ack_seconds{status}.",
                "responses": {
                    "200": { "description": "Metrics.", "content": { "text/plain": { "schema": { "type": "string" } } } },
                    "401": unauthorized, "403": forbidden
                }
            }},
            "/openapi.json": { "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "responses": {
                    "200": json_response("OpenAPI 3.1.", json!({ "type": "object" })),
                    "401": unauthorized
                }
            }}
        },
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "A token from `dropwatch institution token create` (`dw_` + 64 hex digits)." }
            },
            "schemas": {
                "Error": {
                    "type": "object", "required": ["error"],
                    "properties": {
                        "error": { "type": "string", "enum": ["unauthorized", "forbidden", "not_found", "bad_request", "internal"] },
                        "message": { "type": "string", "description": "Only for bad_request." }
                    }
                },
                "AlertPayload": object(json!({
                    "schema": { "const": "dropwatch.alert/v1" },
                    "alert_id": { "type": "integer", "format": "int64" },
                    "idempotency_key": { "type": "string" },
                    "reason": { "type": "string", "enum": ["new_victim", "new_exposure"] },
                    "institution_id": { "type": "string" },
                    "institution_name": { "type": "string" },
                    "account": { "type": "string", "description": "The account identifier as the victim typed it." },
                    "exposed": { "type": "array", "items": secret_kind.clone(), "description": "Kinds of secret exposed so far; never a value." },
                    "urgency": urgency.clone(),
                    "first_seen": micros("First seen"),
                    "last_seen": micros("Last seen"),
                    "source_server": { "type": ["string", "null"] },
                    "bot_id": { "type": "string" },
                    "botnet": { "type": ["string", "null"] }
                })),
                "Alert": object(json!({
                    "id": { "type": "integer", "format": "int64" },
                    "victim_id": { "type": "integer", "format": "int64" },
                    "institution_id": { "type": "string" },
                    "status": alert_status.clone(),
                    "attempts": { "type": "integer" },
                    "created_at": micros("Created"),
                    "delivered_at": { "type": ["integer", "null"], "format": "int64" },
                    "payload": { "$ref": "#/components/schemas/AlertPayload" }
                })),
                "Victim": object(json!({
                    "id": { "type": "integer", "format": "int64" },
                    "institution_id": { "type": "string" },
                    "account": { "type": "string" },
                    "account_norm": { "type": "string" },
                    "exposed": { "type": "array", "items": secret_kind.clone() },
                    "urgency": urgency,
                    "first_seen": micros("First seen"),
                    "last_seen": micros("Last seen"),
                    "n_records": { "type": "integer" }
                })),
                "Timeline": object(json!({
                    "victim": { "$ref": "#/components/schemas/Victim" },
                    "records": { "type": "array", "items": object(json!({
                        "record_id": { "type": "integer", "format": "int64" },
                        "fetched_at": micros("Fetched from the drop"),
                        "stored_at": micros("Stored"),
                        "exposed": { "type": "array", "items": secret_kind }
                    })) },
                    "alerts": { "type": "array", "items": object(json!({
                        "id": { "type": "integer", "format": "int64" },
                        "reason": { "type": "string", "enum": ["new_victim", "new_exposure"] },
                        "status": alert_status,
                        "attempts": { "type": "integer" },
                        "created_at": micros("Created"),
                        "delivered_at": { "type": ["integer", "null"], "format": "int64" }
                    })) },
                    "acks": { "type": "array", "items": { "$ref": "#/components/schemas/Ack" } }
                })),
                "AckRequest": {
                    "type": "object", "required": ["status"], "additionalProperties": false,
                    "properties": {
                        "status": ack_status.clone(),
                        "note": { "type": "string", "maxLength": 2000 }
                    }
                },
                "Ack": object(json!({
                    "id": { "type": "integer", "format": "int64" },
                    "alert_id": { "type": "integer", "format": "int64" },
                    "institution_id": { "type": "string" },
                    "status": ack_status,
                    "note": { "type": "string" },
                    "actor": { "type": "string", "description": "The token that acknowledged: `token:<id>:<label>`." },
                    "at": micros("Acknowledged")
                })),
                "AuditEntry": object(json!({
                    "id": { "type": "integer", "format": "int64" },
                    "at": micros("When"),
                    "actor": { "type": "string" },
                    "action": { "type": "string" },
                    "subject": { "type": "string" }
                }))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_exactly_the_routes() {
        let doc = openapi();
        let paths = doc["paths"].as_object().unwrap();
        let mut documented: Vec<(String, String)> = paths
            .iter()
            .flat_map(|(p, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .map(move |m| (m.to_uppercase(), format!("/api/v1{p}")))
            })
            .collect();
        documented.sort();
        let mut routes: Vec<(String, String)> = crate::ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        routes.sort();
        assert_eq!(documented, routes);
        // Every $ref resolves.
        let text = doc.to_string();
        for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = &part[..part.find('"').unwrap()];
            assert!(doc["components"]["schemas"][name].is_object(), "{name}");
        }
    }
}
