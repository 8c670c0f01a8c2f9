//! Typed row identifiers, so that a run id cannot be passed where a patient id is meant.

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

id_type! {
    /// A row of `users`.
    UserId,
    /// A row of `sessions`.
    SessionId,
    /// A row of `api_tokens`.
    ApiTokenId,
    /// A row of `patients`.
    PatientId,
    /// A row of `samples`.
    SampleId,
    /// A row of `sample_tubes`.
    TubeId,
    /// A row of `runs`.
    RunId,
    /// A row of `measurements`.
    MeasurementId,
    /// A row of `results` (one version of a run's result).
    ResultId,
    /// A row of `result_signatures`.
    SignatureId,
    /// A row of `calibrations`.
    CalibrationId,
    /// A row of `qc_materials`.
    QcMaterialId,
    /// A row of `qc_lots`.
    QcLotId,
    /// A row of `qc_targets`.
    QcTargetId,
    /// A row of `qc_results`.
    QcResultId,
    /// A row of `instrument_log`.
    LogEntryId,
    /// A row of `audit_log`.
    AuditId,
    /// A row of `outbox_messages`.
    OutboxId,
}
