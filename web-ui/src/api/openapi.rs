//! The OpenAPI 3.1 document of the JSON API, served at `GET /api/v1/openapi.json` without
//! authentication (it describes the interface and holds no patient data).
//!
//! The document is generated, not written: every route is mounted through `utoipa_axum`'s
//! `routes!` from a handler annotated with `#[utoipa::path]` ([`super::documented_routes`]),
//! so the router and the document come from one declaration. The request and response types
//! derive `ToSchema`. The appliance's own types (runs, results, QC, calibrations, the engine's
//! status and events) are described by the mirrors in [`schemas`], named as they are in the
//! appliance; the API tests check live answers against them, so a mirror that drifts from what
//! is served fails a test.
//!
//! On top of what each handler declares, [`with_problem_answers`] adds the problem+json answers
//! every operation of its kind can give (401/403 for authenticated routes; 400, 413, 415 and 422
//! for JSON bodies; 404 for ids in the path; 500 always), so the error contract is stated once.
//!
//! Not for: serving an interactive viewer (swagger-ui would fetch assets at build time, and the
//! appliance has no internet); any client can load the JSON.

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::Operation;
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
    components(schemas(ProblemDocument)),
    tags(
        (name = "meta", description = "Health and this document (no authentication)"),
        (name = "session", description = "Signing in and out; API tokens"),
        (name = "patients", description = "Patients and their CTC trends (views are audited)"),
        (name = "runs", description = "Runs: start, follow, confirm tubes, cancel, release"),
        (name = "instrument", description = "Instrument status, QC and calibrations"),
    )
)]
struct ApiDoc;

/// The document's skeleton, before the routes are added.
pub fn base() -> Document {
    ApiDoc::openapi()
}

/// The complete document: the routes' own descriptions plus the problem answers common to their
/// kind.
pub fn document() -> Document {
    with_problem_answers(super::documented_routes().split_for_parts().1)
}

/// The document as served (built once).
static DOCUMENT_JSON: LazyLock<String> = LazyLock::new(|| {
    document().to_pretty_json().unwrap_or_else(|error| {
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

/// Descriptions of the appliance's types as the API serialises them (ids are integers, times
/// RFC 3339 strings). They mirror `appliance::store` and `appliance::engine`, which stay free of
/// any web concern; the API tests check served answers against them.
#[allow(dead_code)] // descriptions, never built
pub mod schemas {
    use utoipa::ToSchema;

    /// Where a run stands.
    #[derive(ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum RunState {
        /// Waiting for the instrument.
        Queued,
        /// Being measured.
        Running,
        /// Waiting for the operator to insert and confirm a tube.
        AwaitingTube,
        /// Result computed, waiting for a clinician's signature.
        AwaitingRelease,
        /// Result released.
        Released,
        /// Stopped by a failure (see `failure_cause`).
        Failed,
        /// Cancelled by a user.
        Cancelled,
        /// Cut short by a shutdown or crash.
        Interrupted,
    }

    /// A stored run.
    #[derive(ToSchema)]
    pub struct Run {
        /// Run id.
        id: i64,
        /// The sample measured.
        sample_id: i64,
        /// Who started it (null: the appliance).
        operator_id: Option<i64>,
        /// Where it stands.
        state: RunState,
        /// Reagent lot.
        reagent_lot: Option<String>,
        /// Calibration used.
        calibration_id: Option<i64>,
        /// Measured on the simulated board.
        simulated: bool,
        /// Why it failed.
        failure_cause: Option<String>,
        /// Queued, RFC 3339.
        #[schema(format = DateTime)]
        queued_at: String,
        /// Started, RFC 3339.
        #[schema(format = DateTime)]
        started_at: Option<String>,
        /// Finished, RFC 3339.
        #[schema(format = DateTime)]
        finished_at: Option<String>,
        /// Last change, RFC 3339.
        #[schema(format = DateTime)]
        updated_at: String,
    }

    /// The reporting category of a count.
    #[derive(ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum ResultCategory {
        /// Below the limit of detection.
        NotDetected,
        /// Detected, below the limit of quantitation.
        BelowLoq,
        /// Quantified.
        Quantified,
    }

    /// The call against the indication's cut-off.
    #[derive(ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum ResultCall {
        /// Below the cut-off.
        Favorable,
        /// At or above the cut-off.
        Unfavorable,
    }

    /// The headline numbers of a result version.
    #[derive(ToSchema)]
    pub struct ResultSummary {
        /// CTC per 7.5 mL.
        per_7_5ml: f64,
        /// 95 % interval, per 7.5 mL.
        per_7_5ml_ci95: [f64; 2],
        /// Reporting category.
        category: ResultCategory,
        /// Call against the indication's cut-off, if the indication has one.
        call: Option<ResultCall>,
        /// The indication the call was made for.
        indication: Option<String>,
        /// Its cut-off, per 7.5 mL.
        cutoff_per_7_5ml: Option<f64>,
        /// Whether the 95 % interval spans the cut-off (the call could go either way).
        interval_spans_cutoff: Option<bool>,
        /// Whether a QC flag holds the result (it may not be released).
        qc_hold: bool,
    }

    /// What a signature means.
    #[derive(ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum SignatureMeaning {
        /// Released for clinical use.
        Release,
        /// Reviewed.
        Review,
    }

    /// An electronic signature of a result version.
    #[derive(ToSchema)]
    pub struct Signature {
        /// Signature id.
        id: i64,
        /// The result version signed.
        result_id: i64,
        /// The signer.
        user_id: i64,
        /// The signer's printed name.
        printed_name: String,
        /// What it means.
        meaning: SignatureMeaning,
        /// When, RFC 3339.
        #[schema(format = DateTime)]
        signed_at: String,
    }

    /// One version of a run's result (a correction is a new version with a reason).
    #[derive(ToSchema)]
    pub struct ResultVersion {
        /// Result id.
        id: i64,
        /// The run.
        run_id: i64,
        /// Version number, from 1.
        version: u32,
        /// Headline numbers.
        summary: ResultSummary,
        /// The full report (the keys of `ferrocount count --json`).
        report: serde_json::Value,
        /// Why this version was made (null for the first).
        reason: Option<String>,
        /// When, RFC 3339.
        #[schema(format = DateTime)]
        created_at: String,
        /// Who made it (null: the appliance).
        created_by: Option<i64>,
        /// Its signatures.
        signatures: Vec<Signature>,
    }

    /// How a calibration document is written.
    #[derive(ToSchema)]
    #[schema(rename_all = "lowercase")]
    pub enum ContentFormat {
        /// TOML, as `ferrocount calibrate` writes.
        Toml,
        /// JSON.
        Json,
    }

    /// A calibration document.
    #[derive(ToSchema)]
    pub struct CalibrationContent {
        /// Its format.
        format: ContentFormat,
        /// Its text.
        text: String,
    }

    /// A stored calibration.
    #[derive(ToSchema)]
    pub struct Calibration {
        /// Calibration id.
        id: i64,
        /// Reagent lot.
        reagent_lot: String,
        /// Echo time, µs.
        te_us: u32,
        /// The document.
        content: CalibrationContent,
        /// A note.
        note: Option<String>,
        /// Whether it is the one used for its lot and echo time.
        active: bool,
        /// When it was stored, RFC 3339.
        #[schema(format = DateTime)]
        created_at: String,
        /// Who stored it (null: the appliance).
        created_by: Option<i64>,
    }

    /// The front-end board.
    #[derive(ToSchema)]
    pub struct BoardStatus {
        /// Serial number.
        serial: u32,
        /// Firmware version.
        firmware: String,
        /// Whether it is the simulated board.
        simulated: bool,
    }

    /// The run being measured.
    #[derive(ToSchema)]
    pub struct RunProgress {
        /// The run.
        run_id: i64,
        /// Its state.
        state: RunState,
        /// The step, in words.
        step: String,
    }

    /// The engine's snapshot.
    #[derive(ToSchema)]
    pub struct EngineStatus {
        /// The board, once identified.
        board: Option<BoardStatus>,
        /// Larmor frequency of the last tune, Hz.
        f0_hz: Option<f64>,
        /// When last tuned, RFC 3339.
        last_tune_at: Option<String>,
        /// Magnet temperature, °C.
        magnet_temp_c: Option<f64>,
        /// The run being measured.
        current_run: Option<RunProgress>,
        /// Runs waiting, in order.
        queued: Vec<i64>,
        /// Whether the engine has stopped.
        stopped: bool,
    }

    /// Kind of an instrument-log entry.
    #[derive(ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum LogKind {
        /// A tune.
        Tune,
        /// A nutation (pulse-length) measurement.
        Nutation,
        /// A temperature reading.
        Temperature,
        /// An error.
        Error,
        /// An event (start, stop, ...).
        Event,
    }

    /// An instrument-log entry.
    #[derive(ToSchema)]
    pub struct LogEntry {
        /// Entry id.
        id: i64,
        /// When, RFC 3339.
        #[schema(format = DateTime)]
        logged_at: String,
        /// Its kind.
        kind: LogKind,
        /// The run it belongs to.
        run_id: Option<i64>,
        /// What happened.
        message: String,
        /// Frequency, Hz.
        freq_hz: Option<f64>,
        /// Pulse length, µs.
        pulse_us: Option<f64>,
        /// Temperature, °C.
        temp_c: Option<f64>,
        /// Further detail (any JSON).
        detail: serde_json::Value,
    }

    /// Phantom or control.
    #[derive(ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum QcMaterialKind {
        /// A relaxation phantom.
        Phantom,
        /// A control material with a known cell count.
        Control,
    }

    /// A QC material (its fields are flattened into the QC overview's material).
    #[derive(ToSchema)]
    pub struct QcMaterial {
        /// Material id.
        id: i64,
        /// Name.
        name: String,
        /// Kind.
        kind: QcMaterialKind,
        /// What is measured.
        analyte: String,
    }

    /// A lot of a QC material (flattened into the QC overview's lot).
    #[derive(ToSchema)]
    pub struct QcLot {
        /// Lot id.
        id: i64,
        /// Its material.
        material_id: i64,
        /// Lot number.
        lot: String,
        /// Expiry date.
        #[schema(format = Date)]
        expires_on: String,
    }

    /// Where a QC target comes from.
    #[derive(ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum TargetSource {
        /// Established from the lab's own measurements.
        Established,
        /// The manufacturer's.
        Manufacturer,
    }

    /// A QC target (mean and SD).
    #[derive(ToSchema)]
    pub struct QcTarget {
        /// Target id.
        id: i64,
        /// Its lot.
        lot_id: i64,
        /// Mean.
        mean: f64,
        /// Standard deviation.
        sd: f64,
        /// Where it comes from.
        source: TargetSource,
        /// Values it was established from.
        n_values: Option<u32>,
        /// When set, RFC 3339.
        #[schema(format = DateTime)]
        created_at: String,
    }

    /// A QC verdict.
    #[derive(ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum QcVerdict {
        /// In control.
        Pass,
        /// A warning rule fired.
        Warning,
        /// A rejection rule fired.
        Reject,
    }

    /// A QC result.
    #[derive(ToSchema)]
    pub struct QcResult {
        /// Result id.
        id: i64,
        /// Its lot.
        lot_id: i64,
        /// Target it was judged against.
        target_id: Option<i64>,
        /// The value measured.
        value: f64,
        /// Verdict.
        status: QcVerdict,
        /// Westgard rules violated (any JSON).
        violations: serde_json::Value,
        /// The measurement, when measured on this instrument.
        measurement_id: Option<i64>,
        /// When, RFC 3339.
        #[schema(format = DateTime)]
        measured_at: String,
        /// Who recorded it.
        operator_id: Option<i64>,
        /// A comment.
        comment: Option<String>,
    }

    /// Names of run events (the SSE event name and the `event` key).
    #[derive(ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum RunEventName {
        /// The run's state (`state`, `cause`).
        State,
        /// A pre-run check (`check`, `passed`, `message`).
        Check,
        /// Tuning started.
        Tuning,
        /// Tuned (`f0_hz`, `magnet_temp_c`).
        Tuned,
        /// Making a calibration (`lot`, `te_us`, `message`).
        Calibrating,
        /// A calibration was made (`lot`, `te_us`, `calibration_id`, `slope_per_s_per_cell`,
        /// `intercept_per_s`).
        CalibrationMade,
        /// Insert a tube (`tube`, `index`, `of`, `message`).
        AwaitingTube,
        /// A tube was confirmed (`tube`, `index`, `automatic`).
        TubeConfirmed,
        /// A replicate was measured (`tube`, `replicate`, `of`, `measurement_id`, `t2_ms`,
        /// `r2_per_s`, `snr`, `fit_error`, `qc_flags`).
        Replicate,
        /// The result (`result`: the keys of `ferrocount count --json`).
        Result,
        /// The run failed (`failure`).
        Failed,
        /// A notice (`message`).
        Notice,
    }

    /// One server-sent event of a run: the SSE event name is `event`, the data this object.
    /// Besides the keys below it carries the keys of its kind (see `RunEventName`).
    #[derive(ToSchema)]
    pub struct RunEvent {
        /// The run.
        run_id: Option<i64>,
        /// When, RFC 3339.
        at: String,
        /// What happened.
        event: RunEventName,
    }
}
