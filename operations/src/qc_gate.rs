//! The QC gate (issue 11, point 1): no patient result without valid QC.
//!
//! A patient run relies on passing QC on the site's calendar day of the run, for the run's
//! reagent lot, at both control levels (negative and positive): for each level the newest control
//! value of that day measured with that reagent lot must pass (a Westgard warning passes, a
//! rejection does not; a later rejection the same day withdraws an earlier pass).
//! [`QcGate::judge`] is the one judgement; [`Operations::qc_gate`] reads the day's values for it.
//!
//! It is asked twice. Before a run starts (`Operations::start_run`): under the default policy
//! (`[qc] policy = "require_passing"`) a run without it does not start and the refusal says in
//! words what is missing; under `run_but_hold` the run starts. Before a result is released
//! (`Operations::release_result`): without it the result is on QC hold, whatever the policy —
//! so a run that started under `run_but_hold` is released only once QC passes.

use appliance::store::Timestamp;
use appliance::store::calibrations::ReagentLot;
use appliance::store::qc::{ControlLevel, QcToday, QcTodayValue, QcVerdict};
use appliance::store::qc_basis::QcRelied;

use crate::{OperationError, Operations};

/// The outcome of the gate.
#[derive(Clone, Debug, PartialEq)]
pub struct QcGate {
    /// The control values a result relies on: the newest of each level that passed.
    pub relied_on: Vec<QcTodayValue>,
    /// What is missing or failed, one sentence per level (empty: the gate is passed).
    pub missing: Vec<String>,
}

impl QcGate {
    /// Judges the day's control values for `reagent_lot` (see the module's rule); `local` writes
    /// a time as the site reads it.
    pub fn judge(
        day: &QcToday,
        reagent_lot: &ReagentLot,
        local: impl Fn(Timestamp) -> String,
    ) -> Self {
        let mut relied_on = Vec::new();
        let mut missing = Vec::new();
        for level in ControlLevel::ALL.iter().copied() {
            let newest = day
                .values
                .iter()
                .filter(|v| {
                    v.material.control_level == Some(level)
                        && v.result.reagent_lot.as_ref() == Some(reagent_lot)
                })
                .max_by_key(|v| (v.result.measured_at, v.result.id.0));
            match newest {
                None => missing.push(format!(
                    "no {level} control has been measured today with reagent lot {reagent_lot}"
                )),
                Some(value) if value.result.status == QcVerdict::Reject => {
                    let rules: Vec<String> = value
                        .result
                        .violations
                        .iter()
                        .map(|v| v.rule.name().to_owned())
                        .collect();
                    missing.push(format!(
                        "the {level} control ({} lot {}) was rejected at {}{}",
                        value.material.name,
                        value.lot.lot,
                        local(value.result.measured_at),
                        if rules.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", rules.join(", "))
                        }
                    ));
                }
                Some(value) => relied_on.push(value.clone()),
            }
        }
        Self { relied_on, missing }
    }

    /// Whether QC is passed.
    pub fn passed(&self) -> bool {
        self.missing.is_empty()
    }

    /// What is missing, as one sentence.
    pub fn missing_text(&self) -> String {
        self.missing.join("; ")
    }

    /// The control values relied on, as the store keeps them with the run, in the run's start
    /// or release transaction (`Store::create_run_relying_on`, `Store::sign_result_relying_on`):
    /// level, material, lot, time and verdict as judged now.
    pub fn relied(&self) -> Vec<QcRelied> {
        self.relied_on
            .iter()
            .filter_map(|v| {
                Some(QcRelied {
                    qc_result_id: v.result.id,
                    level: v.material.control_level?,
                    material: v.material.name.clone(),
                    qc_lot: v.lot.lot.clone(),
                    measured_at: v.result.measured_at,
                    verdict: v.result.status,
                })
            })
            .collect()
    }
}

impl Operations {
    /// The QC gate for `reagent_lot` on the site's calendar day holding `at`.
    pub async fn qc_gate(
        &self,
        reagent_lot: &ReagentLot,
        at: Timestamp,
    ) -> Result<QcGate, OperationError> {
        let zone = &self.settings.site.time_zone;
        let (midnight, next) = zone
            .day_of(at)
            .map_err(|e| OperationError::invalid("time", e.to_string()))?;
        let day = self.store.qc_between(midnight, next).await?;
        Ok(QcGate::judge(&day, reagent_lot, |t| zone.local_text(t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use appliance::store::qc::{QcLot, QcMaterial, QcMaterialKind, QcResult};
    use appliance::store::{QcLotId, QcMaterialId, QcResultId};
    use nmr_core::qc::westgard::{WestgardRule, WestgardViolation};

    fn value(
        id: i64,
        level: Option<ControlLevel>,
        lot: &str,
        at: &str,
        status: QcVerdict,
    ) -> QcTodayValue {
        QcTodayValue {
            material: QcMaterial {
                id: QcMaterialId(id),
                name: format!("Control {id}"),
                kind: QcMaterialKind::Control,
                control_level: level,
                analyte: "cells".into(),
            },
            lot: QcLot {
                id: QcLotId(id),
                material_id: QcMaterialId(id),
                lot: format!("QC-{id}"),
                expires_on: time::macros::date!(2099 - 01 - 01),
            },
            result: QcResult {
                id: QcResultId(id),
                lot_id: QcLotId(id),
                target_id: None,
                value: 1.0,
                status,
                violations: if status == QcVerdict::Reject {
                    vec![WestgardViolation {
                        rule: WestgardRule::OneThreeS,
                        severity: nmr_core::qc::Severity::Hold,
                        indices: vec![0],
                    }]
                } else {
                    Vec::new()
                },
                measurement_id: None,
                reagent_lot: Some(ReagentLot::parse(lot).unwrap()),
                measured_at: Timestamp::parse(at).unwrap(),
                operator_id: None,
                comment: None,
            },
        }
    }

    fn judge(values: Vec<QcTodayValue>) -> QcGate {
        QcGate::judge(
            &QcToday { values },
            &ReagentLot::parse("RL-1").unwrap(),
            |t| t.to_rfc3339(),
        )
    }

    use ControlLevel::{Negative, Positive};
    const EARLY: &str = "2026-12-02T07:00:00Z";
    const LATE: &str = "2026-12-02T09:00:00Z";

    #[test]
    fn no_valid_qc_means_no_releasable_result() {
        // Nothing at all: both levels are named.
        let none = judge(Vec::new());
        assert!(!none.passed());
        assert_eq!(none.missing.len(), 2);
        assert!(none.missing[0].contains("negative") && none.missing[0].contains("RL-1"));
        assert!(none.missing[1].contains("positive"));
        // One level only; the other lot's control does not count; a phantom-like material
        // without a level does not count.
        let one = judge(vec![
            value(1, Some(Negative), "RL-1", EARLY, QcVerdict::Pass),
            value(2, Some(Positive), "RL-2", EARLY, QcVerdict::Pass),
            value(3, None, "RL-1", EARLY, QcVerdict::Pass),
        ]);
        assert_eq!(one.missing.len(), 1, "{:?}", one.missing);
        assert!(one.missing[0].contains("positive"));
        // A rejection is named with its time and rule; a later rejection withdraws a pass.
        let rejected = judge(vec![
            value(1, Some(Negative), "RL-1", EARLY, QcVerdict::Pass),
            value(2, Some(Positive), "RL-1", EARLY, QcVerdict::Pass),
            value(3, Some(Positive), "RL-1", LATE, QcVerdict::Reject),
        ]);
        assert_eq!(rejected.missing.len(), 1);
        assert!(
            rejected.missing[0].contains("rejected at 2026-12-02T09:00:00Z (1-3s)"),
            "{}",
            rejected.missing[0]
        );
        // Rerun after the rejection passes again; warnings pass.
        let passed = judge(vec![
            value(1, Some(Negative), "RL-1", EARLY, QcVerdict::Warning),
            value(2, Some(Positive), "RL-1", EARLY, QcVerdict::Reject),
            value(3, Some(Positive), "RL-1", LATE, QcVerdict::Pass),
        ]);
        assert!(passed.passed(), "{:?}", passed.missing);
        let relied: Vec<i64> = passed.relied_on.iter().map(|v| v.result.id.0).collect();
        assert_eq!(relied, [1, 3]);
        // What the run keeps: the level, material, lot, time and verdict as judged.
        let kept = passed.relied();
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].level, Negative);
        assert_eq!(kept[0].verdict, QcVerdict::Warning);
        assert_eq!(kept[1].material, "Control 3");
        assert_eq!(kept[1].qc_lot, "QC-3");
        assert_eq!(kept[1].measured_at, Timestamp::parse(LATE).unwrap());
    }
}
