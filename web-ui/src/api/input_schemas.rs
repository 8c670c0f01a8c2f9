//! The JSON Schemas of the API's constrained inputs, each built from the constant or pattern of
//! the one function that enforces the constraint, so that the OpenAPI document is neither looser
//! nor tighter than the server: replicates per tube (`RunOrder::parse`, [`MIN_REPLICATES`] to
//! [`MAX_REPLICATES`]), MRNs ([`Mrn::parse`], stated as [`Mrn::pattern`]), API token labels
//! (`Operations::create_token`, stated as [`token_label_pattern`]), cancel and unlock reasons
//! ([`CancelReason`], [`ChangeReason`]), the patient list's `limit` ([`MAX_LISTED`]) and search
//! ([`PatientSearch::parse`], stated as [`PatientSearch::mrn_prefix_pattern`]), the worklist's
//! `limit` ([`MAX_WORKLIST_PAGE`]), a patient's runs' `limit` ([`MAX_PATIENT_RUNS_PAGE`]), the QC results' `limit`
//! ([`MAX_QC_RESULTS_PAGE`]), the outbox's `limit` ([`MAX_OUTBOX_PAGE`]) and resend reason
//! ([`ResendReason`]), a trend marker's label ([`EventLabel::parse`]), ids in the
//! path ([`PathId::parse`], stated as [`PathId::pattern`]) and user names in the path
//! ([`Username::parse`], stated as [`Username::pattern`]). `tests/api/openapi_conformance.rs`
//! (`declared_input_constraints_are_the_enforced_ones`) sends values at and beyond each end of
//! each rule and checks that the document and the server agree on every one.
//!
//! Not for: deciding anything. The rules stay in the functions named above; this module only
//! states them in the document's terms.

use appliance::engine::{MAX_REPLICATES, MIN_REPLICATES};
use appliance::store::patient_events::EventLabel;
use appliance::store::patients::Mrn;
use appliance::store::samples::Accession;
use appliance::store::users::Username;
use operations::outbox::{DEFAULT_OUTBOX_PAGE, MAX_OUTBOX_PAGE, ResendReason};
use operations::patients::{
    DEFAULT_LISTED, DEFAULT_PATIENT_RUNS_PAGE, MAX_LISTED, MAX_PATIENT_RUNS_PAGE, PatientSearch,
};
use operations::qc::{DEFAULT_QC_RESULTS_PAGE, MAX_QC_RESULTS_PAGE};
use operations::runs::CancelReason;
use operations::text_rule::trimmed_chars_pattern;
use operations::users::{ChangeReason, token_label_pattern};
use operations::worklist::{DEFAULT_WORKLIST_PAGE, MAX_WORKLIST_PAGE};
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};

use crate::extract::PathId;

/// Replicates per tube (absent or null: the default).
pub fn replicates() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .minimum(Some(MIN_REPLICATES))
        .maximum(Some(MAX_REPLICATES))
        .description(Some(format!(
            "Replicate readings per tube, {MIN_REPLICATES} to {MAX_REPLICATES} (default 3)"
        )))
        .build()
}

/// A medical record number.
pub fn mrn() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(Mrn::pattern()))
        .description(Some(format!(
            "Medical record number: 1 to {} letters, digits, `-`, `.` or `/` with at least one \
             digit (surrounding white space is dropped, letters are uppercased)",
            Mrn::MAX_CHARS
        )))
        .build()
}

/// A specimen's accession number (`appliance::store::samples::Accession`): never blank.
pub fn accession() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(Accession::pattern()))
        .description(Some(format!(
            "The specimen's accession number: 1 to {} printable ASCII characters without spaces \
             (surrounding white space is dropped)",
            Accession::MAX_CHARS
        )))
        .build()
}

/// What an API token is for.
pub fn token_label() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(token_label_pattern()))
        .description(Some(format!(
            "What the token is for: 1 to {} characters once surrounding white space is dropped",
            operations::users::TOKEN_LABEL_MAX_CHARS
        )))
        .build()
}

/// Why a run is cancelled.
pub fn cancel_reason() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(CancelReason::pattern()))
        .description(Some(format!(
            "Why (kept in the audit trail): {} to {} characters once surrounding white space is \
             dropped",
            CancelReason::MIN_CHARS,
            CancelReason::MAX_CHARS
        )))
        .build()
}

/// Why an account's state changes (an unlock).
pub fn change_reason() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(ChangeReason::pattern()))
        .description(Some(format!(
            "Why (kept in the audit trail): 1 to {} characters once surrounding white space is \
             dropped",
            ChangeReason::MAX_CHARS
        )))
        .build()
}

/// How many patients a page of the list holds at most.
pub fn list_limit() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .minimum(Some(1))
        .maximum(Some(MAX_LISTED))
        .description(Some(format!(
            "At most this many on the page, 1 to {MAX_LISTED} (default {DEFAULT_LISTED})"
        )))
        .build()
}

/// The start of an MRN, for the patient list's search.
pub fn mrn_prefix() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(PatientSearch::mrn_prefix_pattern()))
        .description(Some(format!(
            "The start of an MRN: 0 to {} letters (either case), digits, `-`, `.` or `/` \
             (empty: any MRN)",
            Mrn::MAX_CHARS
        )))
        .build()
}

/// A date of birth to search for (empty: any).
pub fn birth_date_search() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(PatientSearch::birth_date_pattern()))
        .description(Some(
            "A date of birth, a calendar date written `YYYY-MM-DD` (empty: any; a date after \
             today or before 1900 finds nobody)"
                .to_owned(),
        ))
        .build()
}

/// What a marker on a patient's trend says.
pub fn event_label() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(trimmed_chars_pattern(1, EventLabel::MAX_CHARS)))
        .description(Some(format!(
            "What happened: 1 to {} characters once surrounding white space is dropped",
            EventLabel::MAX_CHARS
        )))
        .build()
}

/// How many results a page of the worklist holds at most.
pub fn worklist_limit() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .minimum(Some(1))
        .maximum(Some(MAX_WORKLIST_PAGE))
        .description(Some(format!(
            "At most this many on the page, 1 to {MAX_WORKLIST_PAGE} (default \
             {DEFAULT_WORKLIST_PAGE})"
        )))
        .build()
}

/// How many runs a page of a patient's runs holds at most.
pub fn patient_runs_limit() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .minimum(Some(1))
        .maximum(Some(MAX_PATIENT_RUNS_PAGE))
        .description(Some(format!(
            "At most this many on the page, 1 to {MAX_PATIENT_RUNS_PAGE} (default \
             {DEFAULT_PATIENT_RUNS_PAGE})"
        )))
        .build()
}

/// How many QC results a page of `GET /api/v1/qc` holds at most.
pub fn qc_results_limit() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .minimum(Some(1))
        .maximum(Some(MAX_QC_RESULTS_PAGE))
        .description(Some(format!(
            "At most this many on the page, 1 to {MAX_QC_RESULTS_PAGE} (default \
             {DEFAULT_QC_RESULTS_PAGE})"
        )))
        .build()
}

/// How many messages a page of the outbox holds at most.
pub fn outbox_limit() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .minimum(Some(1))
        .maximum(Some(MAX_OUTBOX_PAGE))
        .description(Some(format!(
            "At most this many on the page, 1 to {MAX_OUTBOX_PAGE} (default {DEFAULT_OUTBOX_PAGE})"
        )))
        .build()
}

/// A calibration page's size.
pub fn calibration_limit() -> Object {
    use operations::calibrations::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .minimum(Some(1))
        .maximum(Some(MAX_PAGE_SIZE))
        .description(Some(format!(
            "At most this many on the page, 1 to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE})"
        )))
        .build()
}

/// Why a parked message is resent.
pub fn resend_reason() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(ResendReason::pattern()))
        .description(Some(format!(
            "What was fixed (kept in the audit trail): {} to {} characters once surrounding white \
             space is dropped",
            ResendReason::MIN_CHARS,
            ResendReason::MAX_CHARS
        )))
        .build()
}

/// An id in a JSON body (`lot_id`): [`crate::extract::body_id`]'s rule.
pub fn body_id() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(PathId::MAX_ID))
        .description(Some(format!(
            "A positive whole number of at most {} digits",
            PathId::MAX_DIGITS
        )))
        .build()
}

/// A user name in the path.
pub fn username() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(Username::pattern()))
        .description(Some(format!(
            "A user name: a letter, then up to {} letters, digits, `.`, `_` or `-` (surrounding \
             white space is dropped, letters are lowercased)",
            Username::MAX_CHARS - 1
        )))
        .build()
}

/// An id in the path.
pub fn path_id() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(PathId::pattern()))
        .description(Some(format!(
            "A positive whole number of at most {} digits, written plainly (no sign, leading \
             zero, fraction or exponent)",
            PathId::MAX_DIGITS
        )))
        .build()
}
