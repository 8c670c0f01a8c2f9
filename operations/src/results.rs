//! Results: release by electronic signature, and correction of a result by a new version with a
//! reason, signed by a person who may release.
//!
//! A correction recounts the run from its stored readings (every reported number can be
//! recomputed from the raw trains and their stored fits) with the corrected processed blood
//! volume and/or indication, through the engine's own report builder, so a corrected result is
//! computed exactly as a first one is. The store keeps the original version untouched and, when
//! the run was released, sends it back to `awaiting_release`: the corrected version must be
//! released again.

use std::net::IpAddr;

use appliance::engine::{Reading, ReportInputs, RunReport, TubeReadings};
use appliance::store::RunId;
use appliance::store::calibrations::ReagentLot;
use appliance::store::measurements::Measurement;
use appliance::store::results::{CorrectionReason, ResultVersion, Signature, SignatureMeaning};
use appliance::store::runs::{Run, RunState};
use appliance::store::samples::{BloodVolume, Indication};
use appliance::store::users::User;

use crate::qc_gate::QcGate;
use crate::signature::SignatureInput;
use crate::{OperationError, Operations, Permission, permission};

/// A correction as asked for, parsed once (the API body, the run page's form and `ferrocount
/// result correct` all build it with [`CorrectionOrder::parse`]).
#[derive(Clone, Debug, PartialEq)]
pub struct CorrectionOrder {
    /// The corrected processed blood volume, when it was entered wrongly.
    pub blood: Option<BloodVolume>,
    /// The corrected indication, when it was entered wrongly.
    pub indication: Option<Indication>,
    /// Why the result is corrected.
    pub reason: CorrectionReason,
}

impl CorrectionOrder {
    /// Parses a correction as entered (blank: not corrected): the processed blood volume in mL
    /// (the one range of `BloodVolume`), the indication, and a reason of 3 to 1000 characters.
    /// At least one input must be given; [`Operations::correct_result`] refuses one that does
    /// not differ from the current version.
    pub fn parse(
        blood_ml: Option<&str>,
        indication: Option<&str>,
        reason: &str,
    ) -> Result<Self, OperationError> {
        let blood = match blood_ml.map(str::trim).filter(|text| !text.is_empty()) {
            None => None,
            Some(text) => {
                let ml = text.parse::<f64>().map_err(|_| {
                    OperationError::invalid(
                        "blood_ml",
                        format!(
                            "{:?} is not a number of mL",
                            text.chars().take(20).collect::<String>()
                        ),
                    )
                })?;
                Some(
                    BloodVolume::from_ml(ml)
                        .map_err(|e| OperationError::invalid("blood_ml", e.to_string()))?,
                )
            }
        };
        let indication = indication
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(Indication::parse)
            .transpose()?;
        if blood.is_none() && indication.is_none() {
            return Err(OperationError::invalid(
                "correction",
                "give the corrected blood volume or indication",
            ));
        }
        Ok(Self {
            blood,
            indication,
            reason: CorrectionReason::parse(reason)?,
        })
    }
}

impl Operations {
    /// Signs the current version of a run's result: a release (clinicians and lab admins; the
    /// store refuses a result on QC hold or a run not awaiting release) or a review.
    pub async fn release_result(
        &self,
        signer: &User,
        client: IpAddr,
        run_id: RunId,
        signature: &SignatureInput,
        meaning: SignatureMeaning,
    ) -> Result<Signature, OperationError> {
        permission::require(signer.role, Permission::ReleaseResults)?;
        let run = self.store.run(run_id).await?;
        let relied = if meaning == SignatureMeaning::Release {
            self.release_qc_gate(&run).await?.relied()
        } else {
            Vec::new()
        };
        self.confirm_signature(
            signer,
            client,
            signature,
            "result.sign_refused",
            "run",
            run.id.0,
        )
        .await?;
        // The QC the release relied on, kept as judged now (the report names it), stored in
        // the release's own transaction.
        Ok(self
            .store
            .sign_result_relying_on(signer, run.id, meaning, &relied)
            .await?)
    }

    /// The QC gate at release: the run's reagent lot passed QC at both levels on the site's day
    /// the run was queued (`QcGate`); otherwise the result is on QC hold, naming what is missing.
    async fn release_qc_gate(&self, run: &Run) -> Result<QcGate, OperationError> {
        let Some(lot) = run.reagent_lot.as_deref() else {
            return Err(OperationError::Conflict(
                "QC hold: the run has no reagent lot, so no QC can stand for it".into(),
            ));
        };
        let lot = ReagentLot::parse(lot)?;
        let gate = self.qc_gate(&lot, run.queued_at).await?;
        if gate.passed() {
            Ok(gate)
        } else {
            Err(OperationError::Conflict(format!(
                "QC hold: not released, QC has not passed for the run's day ({})",
                gate.missing_text()
            )))
        }
    }

    /// Corrects a run's result: recounts it from its stored readings with the corrected inputs
    /// and stores the new version with the reason, signed by `signer` (who must be allowed to
    /// release). The original stays; a released run goes back to awaiting release.
    pub async fn correct_result(
        &self,
        signer: &User,
        client: IpAddr,
        run_id: RunId,
        order: &CorrectionOrder,
        signature: &SignatureInput,
    ) -> Result<ResultVersion, OperationError> {
        permission::require(signer.role, Permission::ReleaseResults)?;
        let run = self.store.run(run_id).await?;
        if !matches!(run.state, RunState::AwaitingRelease | RunState::Released) {
            return Err(OperationError::Conflict(format!(
                "run {run_id} is {}: only a result awaiting release or released can be corrected",
                run.state
            )));
        }
        let current = self.store.current_result(run.id).await?.ok_or_else(|| {
            OperationError::Conflict(format!("run {run_id} has no result to correct"))
        })?;
        // Only what differs from the current version is a correction (the run page's form
        // carries every current value).
        let blood = order
            .blood
            .filter(|blood| blood.ml() != current.report.blood_ml);
        let indication = order
            .indication
            .as_ref()
            .filter(|i| current.report.indication.as_deref() != Some(i.as_str()));
        if blood.is_none() && indication.is_none() {
            return Err(OperationError::invalid(
                "correction",
                "nothing differs from the current version: give the corrected blood volume or \
                 indication",
            ));
        }
        self.confirm_signature(
            signer,
            client,
            signature,
            "result.correct_refused",
            "run",
            run.id.0,
        )
        .await?;
        let calibration_id = run.calibration_id.ok_or_else(|| {
            OperationError::Conflict(format!("run {run_id} has no calibration to recount with"))
        })?;
        let stored = self.store.calibration(calibration_id).await?;
        let calibration = stored.content.document().map_err(|e| {
            OperationError::Conflict(format!(
                "the run's calibration {} is unreadable: {e}",
                stored.id.0
            ))
        })?;
        let sample = self.store.sample(run.sample_id).await?;
        let measurements = self.store.run_measurements(run.id).await?;
        let tubes = tube_readings(&sample.tubes, &measurements);
        let blood_ml = blood.map_or(current.report.blood_ml, BloodVolume::ml);
        let indication = match indication {
            Some(indication) => Some(indication.as_str().to_owned()),
            None => current.report.indication.clone(),
        };
        let engine = &self.settings;
        if let Some(name) = &indication {
            engine.indications.cutoff(name).map_err(|_| {
                OperationError::invalid("indication", format!("{name:?} has no configured cut-off"))
            })?;
        }
        let report = RunReport::build(
            &tubes,
            &ReportInputs {
                run_id: run.id,
                calibration: &calibration,
                blood_ml,
                indication: indication.as_deref(),
                indications: &engine.indications,
                limits: &engine.qc_limits,
                te_ms: f64::from(stored.te_us) / 1000.0,
            },
        )
        .map_err(|failure| OperationError::Conflict(format!("the recount failed: {failure}")))?;
        Ok(self
            .store
            .correct_result(&signer.actor(), run.id, &report.count, &order.reason)
            .await?)
    }
}

/// The run's readings per tube, rebuilt from the stored measurements and their fits.
fn tube_readings(
    tubes: &[appliance::store::samples::Tube],
    measurements: &[Measurement],
) -> Vec<TubeReadings> {
    tubes
        .iter()
        .map(|tube| TubeReadings {
            kind: tube.kind,
            readings: measurements
                .iter()
                .filter(|m| m.tube_id == tube.id)
                .map(|m| {
                    Reading::from_stored(
                        format!("{} reading {}", tube.kind, m.replicate),
                        m.fit_report.as_ref().map(|f| &f.fit),
                        m.train.acquisition().temp_c,
                    )
                })
                .collect(),
        })
        .filter(|tube| !tube.readings.is_empty())
        .collect()
}
