//! The OpenAPI 3.1 document of the JSON API, served at `GET /api/v1/openapi.json` without
//! authentication (it describes the interface and holds no patient data).
//!
//! The document is generated, not written: every route is mounted through `utoipa_axum`'s
//! `routes!` from a handler annotated with `#[utoipa::path]` ([`super::documented_routes`]),
//! so the router and the document come from one declaration. Every type an answer serialises
//! derives `ToSchema` itself — the web face's DTOs here, and the appliance's own records (runs,
//! result versions, the count report, fits, QC flags and verdicts, calibrations, the engine's
//! status and events) behind the `openapi` features of `appliance` and `nmr-core` — so a field
//! added to a served type is described by the same change, and nothing is described twice.
//!
//! The served document is then [`closed`]: a `#[serde(flatten)]` field's `allOf` is merged into
//! the one object the answer is, and every object whose fields are all named says
//! `additionalProperties: false`, so an undocumented field in an answer is a disagreement that a
//! client, and the API tests (`tests/api/openapi_conformance.rs`, a real JSON Schema validator
//! over every documented operation), can see.
//!
//! On top of what each handler declares, [`with_problem_answers`] adds the problem+json answers
//! every operation of its kind can give (401/403 for authenticated routes; 400, 413, 415 and 422
//! for JSON bodies; 404 for ids in the path; 500 always), so the error contract is stated once.
//!
//! Not for: serving an interactive viewer (swagger-ui would fetch assets at build time, and the
//! appliance has no internet); any client can load the JSON.

use std::sync::LazyLock;

use serde_json::{Map, Value};

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::auth::{CSRF_HEADER, SESSION_COOKIE};
use crate::problem::PROBLEM_JSON;

/// Name of the session-cookie security scheme.
pub const SESSION_SCHEME: &str = "session_cookie";
/// Name of the CSRF-header security scheme (required with the cookie on unsafe methods).
pub const CSRF_SCHEME: &str = "csrf_header";
/// Name of the bearer-token security scheme.
pub const BEARER_SCHEME: &str = "bearer";

/// The parts of the document no handler declares: information, security schemes, tags and
/// the problem schema.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ferrocount API",
        description = "The JSON API of the Ferrocount micro-NMR CTC counter. Errors are RFC 9457 \
                       problem documents (`application/problem+json`). Browsers authenticate with \
                       the session cookie set by `POST /api/v1/session` and send the session's CSRF \
                       token in `X-CSRF-Token` on every unsafe request; scripts send \
                       `Authorization: Bearer <token>` (tokens from `POST /api/v1/tokens`).",
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0"),
    ),
    modifiers(&SecuritySchemes),
    // `RunEvent` is no route's body (the event stream is text): listed here so that the data of
    // each server-sent event stays described.
    components(schemas(ProblemDocument, appliance::engine::RunEvent)),
    tags(
        (name = "meta", description = "Health and this document (no authentication)"),
        (name = "session", description = "Signing in and out; API tokens"),
        (name = "patients", description = "Patients and their CTC trends (views are audited)"),
        (name = "runs", description = "Runs: start, follow, confirm tubes, cancel, release"),
        (name = "instrument", description = "Instrument status, QC and calibrations"),
        (name = "fhir", description = "Released results as FHIR R4 (read-only, `application/fhir+json`; views are audited)"),
        (name = "outbox", description = "Messages to the hospital's systems: list, resend a parked one (lab admins)"),
    )
)]
struct ApiDoc;

/// The document's skeleton, before the routes are added.
pub fn base() -> Document {
    ApiDoc::openapi()
}

/// The complete document as served: the routes' own descriptions plus the problem answers
/// common to their kind, [`closed`].
pub fn document() -> Result<Value, serde_json::Error> {
    let generated = with_path_ids(with_problem_answers(
        super::documented_routes().split_for_parts().1,
    ));
    Ok(with_link_field_names(closed(serde_json::to_value(
        generated,
    )?)))
}

/// The document with each response link's fields named as OpenAPI names them (`operationRef`,
/// `operationId`, `requestBody`): utoipa 5 writes them in snake case, which clients (the
/// stateful phase of schemathesis among them) read as a link naming no operation.
pub fn with_link_field_names(mut document: Value) -> Value {
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return document;
    };
    let links = paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("responses"))
        .filter_map(Value::as_object_mut)
        .flat_map(|responses| responses.values_mut())
        .filter_map(|response| response.get_mut("links"))
        .filter_map(Value::as_object_mut)
        .flat_map(|links| links.values_mut())
        .filter_map(Value::as_object_mut);
    for link in links {
        for (snake, camel) in [
            ("operation_ref", "operationRef"),
            ("operation_id", "operationId"),
            ("request_body", "requestBody"),
        ] {
            if let Some(value) = link.remove(snake) {
                link.insert(camel.to_owned(), value);
            }
        }
    }
    document
}

/// The document as served (built once).
static DOCUMENT_JSON: LazyLock<String> = LazyLock::new(|| {
    document()
        .and_then(|document| serde_json::to_string_pretty(&document))
        .unwrap_or_else(|error| {
            format!("{{\"error\": \"the document did not serialise: {error}\"}}")
        })
});

/// `GET /api/v1/openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    operation_id = "openapi_document",
    security(()),
    responses((status = 200, description = "This OpenAPI 3.1 document", body = serde_json::Value, content_type = "application/json"))
)]
pub async fn serve_document() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        DOCUMENT_JSON.as_str(),
    )
        .into_response()
}

/// An RFC 9457 problem document, as every error is answered.
#[derive(Debug, ToSchema)]
#[schema(as = Problem)]
#[allow(dead_code)] // a description of `crate::problem`'s answer, never built
pub struct ProblemDocument {
    /// `urn:ferrocount:problem:<slug>`, e.g. `urn:ferrocount:problem:invalid-field`.
    #[schema(rename = "type", example = "urn:ferrocount:problem:invalid-field")]
    problem_type: String,
    /// A short title, the same for every problem of the type.
    title: String,
    /// The HTTP status.
    status: u16,
    /// What was wrong, naming the field, id or permission.
    detail: String,
    /// The field (or path or query parameter) that was invalid (422 only).
    #[schema(nullable = false)]
    field: Option<String>,
    /// Seconds until another sign-in is accepted (429 only; also in `Retry-After`).
    #[schema(nullable = false)]
    retry_after_s: Option<u64>,
}

/// Adds the security schemes.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SESSION_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The browser session set by `POST /api/v1/session` (HttpOnly, SameSite=Strict, \
                 Secure under TLS); it ends after the configured idle time.",
            ))),
        );
        components.add_security_scheme(
            CSRF_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                CSRF_HEADER,
                "The session's CSRF token (`csrf_token` of `GET /api/v1/session`), required with \
                 the session cookie on POST and DELETE.",
            ))),
        );
        components.add_security_scheme(
            BEARER_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token from `POST /api/v1/tokens`, as `Authorization: Bearer <token>`.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Adds to each operation the problem answers its kind can give, where the handler did not
/// describe them itself.
pub fn with_problem_answers(mut openapi: Document) -> Document {
    for (path, item) in openapi.paths.paths.iter_mut() {
        let has_id = path.contains("{id}");
        for operation in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            add_problem_answers(operation, has_id);
        }
    }
    openapi
}

/// Declares every `{id}` path parameter as [`crate::extract::PathId`] reads it, and every
/// `{username}` as [`crate::extract::PathUsername`] does (the handlers' annotations name the
/// parameter; its rule is stated once, from the parser).
pub fn with_path_ids(mut openapi: Document) -> Document {
    for item in openapi.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            for parameter in operation.parameters.iter_mut().flatten() {
                if parameter.parameter_in != ParameterIn::Path {
                    continue;
                }
                let schema = match parameter.name.as_str() {
                    "id" => super::input_schemas::path_id(),
                    "username" => super::input_schemas::username(),
                    _ => continue,
                };
                parameter.schema = Some(RefOr::T(Schema::Object(schema)));
            }
        }
    }
    openapi
}

fn add_problem_answers(operation: &mut Operation, has_id: bool) {
    let authenticated = operation.security.as_ref().is_none_or(|requirements| {
        requirements.iter().any(|requirement| {
            serde_json::to_value(requirement)
                .ok()
                .and_then(|value| value.as_object().map(|object| !object.is_empty()))
                .unwrap_or(true)
        })
    });
    let has_body = operation.request_body.is_some();
    let has_parameters = operation
        .parameters
        .as_ref()
        .is_some_and(|parameters| !parameters.is_empty());
    let mut answers: Vec<(&str, &str)> = Vec::new();
    if authenticated {
        answers.push((
            "401",
            "No valid credentials (no or expired session, unknown token)",
        ));
        answers.push((
            "403",
            "The caller's role may not do this, or the CSRF token is missing or wrong",
        ));
    }
    if has_body {
        answers.push(("400", "The body is not valid JSON"));
        answers.push(("413", "The body is larger than the configured limit"));
        answers.push(("415", "The body is not sent as application/json"));
    }
    if has_body || has_parameters {
        answers.push((
            "422",
            "A value is missing, of the wrong type, unknown or refused; `field` names it",
        ));
    }
    if has_id {
        answers.push(("404", "Nothing has this id"));
    }
    answers.push(("500", "A fault of the appliance (logged; no detail given)"));
    for (status, description) in answers {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| problem_answer(description));
    }
}

/// A response carrying a problem document.
pub fn problem_answer(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build(),
    )
}

/// The document with every `allOf` of objects merged into one object (what a
/// `#[serde(flatten)]` field serialises as; a part that is a `oneOf`, such as a flattened tagged
/// enum, makes the merge a `oneOf` of one object per choice), and every object schema with named
/// properties and no `additionalProperties` closed (`additionalProperties: false`): the served
/// types are closed records, so a field the document does not name is a disagreement.
pub fn closed(mut document: Value) -> Value {
    let components = document
        .pointer("/components/schemas")
        .cloned()
        .unwrap_or(Value::Null);
    merge_all_of(&mut document, &components);
    close_objects(&mut document);
    document
}

/// A component schema a `$ref` names, or the schema itself.
fn resolved(schema: &Value, components: &Value) -> Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference
            .strip_prefix("#/components/schemas/")
            .and_then(|name| components.get(name))
            .map_or_else(|| schema.clone(), |target| resolved(target, components)),
        None => schema.clone(),
    }
}

/// Replaces every `allOf` node (recursively) by the object(s) it describes.
fn merge_all_of(node: &mut Value, components: &Value) {
    match node {
        Value::Object(object) => {
            for value in object.values_mut() {
                merge_all_of(value, components);
            }
            let Some(Value::Array(parts)) = object.remove("allOf") else {
                return;
            };
            // One alternative per choice of the `oneOf` parts; every plain part joins each.
            let mut alternatives = vec![Map::new()];
            for part in &parts {
                let mut part = resolved(part, components);
                merge_all_of(&mut part, components);
                let choices: Vec<Value> = match part.get("oneOf").and_then(Value::as_array) {
                    Some(choices) => choices.iter().map(|c| resolved(c, components)).collect(),
                    None => vec![part],
                };
                alternatives = alternatives
                    .iter()
                    .flat_map(|alternative| {
                        choices
                            .iter()
                            .map(move |choice| joined(alternative, choice))
                    })
                    .collect();
            }
            let mut merged: Map<String, Value> = if alternatives.len() == 1 {
                alternatives.remove(0)
            } else {
                let mut one_of = Map::new();
                one_of.insert(
                    "oneOf".into(),
                    Value::Array(alternatives.into_iter().map(Value::Object).collect()),
                );
                one_of
            };
            // The node's own keywords (its description) stay.
            for (key, value) in std::mem::take(object) {
                merged.insert(key, value);
            }
            *object = merged;
        }
        Value::Array(items) => {
            for item in items {
                merge_all_of(item, components);
            }
        }
        _ => {}
    }
}

/// An object schema holding the properties and required names of both.
fn joined(base: &Map<String, Value>, part: &Value) -> Map<String, Value> {
    let mut joined = base.clone();
    joined.insert("type".into(), Value::String("object".into()));
    let mut properties = joined
        .remove("properties")
        .and_then(|p| p.as_object().cloned())
        .unwrap_or_default();
    if let Some(more) = part.get("properties").and_then(Value::as_object) {
        properties.extend(more.clone());
    }
    let mut required: Vec<Value> = joined
        .remove("required")
        .and_then(|r| r.as_array().cloned())
        .unwrap_or_default();
    for name in part
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if !required.contains(name) {
            required.push(name.clone());
        }
    }
    joined.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        joined.insert("required".into(), Value::Array(required));
    }
    if let (None, Some(description)) = (joined.get("description"), part.get("description")) {
        joined.insert("description".into(), description.clone());
    }
    joined
}

/// Closes every object schema that names its properties and says nothing of others.
fn close_objects(node: &mut Value) {
    match node {
        Value::Object(object) => {
            if object.get("properties").is_some_and(Value::is_object)
                && !object.contains_key("additionalProperties")
            {
                object.insert("additionalProperties".into(), Value::Bool(false));
            }
            for value in object.values_mut() {
                close_objects(value);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The stateful phase of schemathesis follows these links: each names its operation as
    /// OpenAPI spells it, the operation exists, and its parameters come from the response body.
    #[test]
    fn every_link_names_an_operation_of_the_document_in_openapis_field_names() {
        let document = document().expect("the document");
        let text = document.to_string();
        assert!(!text.contains("\"operation_ref\"") && !text.contains("\"operation_id\""));
        let mut links = Vec::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("an item") {
                for (status, response) in operation["responses"].as_object().expect("answers") {
                    for (name, link) in response["links"].as_object().into_iter().flatten() {
                        links.push((format!("{method} {path} {status} {name}"), link.clone()));
                    }
                }
            }
        }
        let named: Vec<&str> = links.iter().map(|(at, _)| at.as_str()).collect();
        for expected in [
            "post /api/v1/runs 202 GetRun",
            "post /api/v1/patients 201 GetPatient",
            "post /api/v1/patients 201 GetPatientTrend",
        ] {
            assert!(named.contains(&expected), "{expected} in {named:?}");
        }
        for (at, link) in &links {
            let reference = link["operationRef"].as_str().expect("an operationRef");
            let pointer = reference.strip_prefix('#').expect("a local reference");
            assert!(
                document.pointer(pointer).is_some_and(Value::is_object),
                "{at}: {reference} is no operation of the document"
            );
            assert_eq!(link["parameters"]["id"], "$response.body#/id", "{at}");
        }
    }

    #[test]
    fn flattened_parts_are_merged_and_objects_closed() {
        let document = json!({
            "components": { "schemas": {
                "Report": { "type": "object", "properties": { "cells": { "type": "number" } },
                            "required": ["cells"] },
                "Kind": { "oneOf": [
                    { "type": "object", "properties": { "event": { "enum": ["a"] } },
                      "required": ["event"] },
                    { "type": "object", "properties": { "event": { "enum": ["b"] },
                                                        "n": { "type": "integer" } },
                      "required": ["event", "n"] }
                ] },
                "Any": {}
            } },
            "paths": { "/x": { "get": { "responses": { "200": { "content": {
                "application/json": { "schema": { "description": "the answer", "allOf": [
                    { "$ref": "#/components/schemas/Report" },
                    { "type": "object", "properties": { "run_id": { "type": "integer" } },
                      "required": ["run_id"] }
                ] } } } } } } },
                "/y": { "get": { "responses": { "200": { "content": {
                "application/json": { "schema": { "allOf": [
                    { "$ref": "#/components/schemas/Kind" },
                    { "type": "object", "properties": { "at": { "type": "string" } } }
                ] } } } } } } } }
        });
        let served = closed(document);
        let x = &served["paths"]["/x"]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        assert_eq!(x["description"], "the answer");
        assert_eq!(x["additionalProperties"], false);
        assert_eq!(x["required"], json!(["cells", "run_id"]));
        assert!(x["properties"]["cells"].is_object() && x["properties"]["run_id"].is_object());
        assert!(x.get("allOf").is_none());
        let y = &served["paths"]["/y"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
            ["oneOf"];
        assert_eq!(
            y.as_array().map(Vec::len),
            Some(2),
            "one object per choice: {y}"
        );
        assert_eq!(y[1]["required"], json!(["event", "n"]));
        assert!(y[1]["properties"]["at"].is_object());
        assert_eq!(y[1]["additionalProperties"], false);
        assert_eq!(
            served["components"]["schemas"]["Report"]["additionalProperties"],
            false
        );
        assert_eq!(
            served["components"]["schemas"]["Any"],
            json!({}),
            "open stays open"
        );
    }
}
