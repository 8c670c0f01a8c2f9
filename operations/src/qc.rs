//! Quality control: recording a control value judged by the Westgard rules, today's QC, the QC
//! overview, setting QC up (control materials, their lots, a lot's target), and the corrective
//! actions recorded against a rejected control value (who, what, when).
//!
//! The set-up rules live here, once, for every front end: a material is a phantom or a control
//! measuring an analyte the appliance charts; a lot may not be expired when it is added; a
//! target has a positive SD, and a target established on this instrument rests on at least 20
//! values (CLSI C24).

use std::collections::BTreeMap;

use appliance::store::calibrations::ReagentLot;
use appliance::store::qc::{
    ControlLevel, NewQcResult, QcLot, QcLotEntry, QcMaterial, QcMaterialKind, QcRangeValues,
    QcResult, QcTarget, QcToday, QcVerdict, TargetSource,
};
use appliance::store::qc_corrective::CorrectiveAction;
use appliance::store::{QcLotId, QcMaterialId, QcResultId, StoreError, Timestamp, UserId};
use nmr_core::qc::westgard::{self, ControlTarget};

use crate::qc_statistics::{LotStatistics, QcRange};
use crate::{OperationError, Operations, Permission, Requester};

/// The analytes the appliance records and charts (the unit is the name's suffix).
pub const ANALYTES: [&str; 2] = ["t2_ms", "cells"];

/// Most values of one lot the review reads over its range (its latest): a chart of a thousand
/// points is already denser than a screen shows, and the page stays bounded however long the
/// range.
pub const MAX_REVIEW_VALUES: u32 = 1000;

/// Fewest values a target established on this instrument rests on (CLSI C24).
pub const MIN_ESTABLISHING_VALUES: u32 = 20;

/// A lot of a control material, its current target and its recent results.
#[derive(Clone, Debug, PartialEq)]
pub struct QcLotRecord {
    /// The lot.
    pub lot: QcLot,
    /// Its current target, if set.
    pub target: Option<QcTarget>,
    /// Its values in the review's range (its latest [`MAX_REVIEW_VALUES`]), oldest first; none
    /// in the set-up overview.
    pub results: Vec<QcResult>,
    /// Whether the range holds more of its values than [`MAX_REVIEW_VALUES`] (the earliest
    /// are left out: a shorter range shows them).
    pub more_in_range: bool,
    /// Their observed statistics.
    pub statistics: LotStatistics,
    /// The corrective actions recorded against those of them that were rejected, oldest first.
    pub corrective_actions: Vec<CorrectiveAction>,
}

/// A control material and its lots.
#[derive(Clone, Debug, PartialEq)]
pub struct QcMaterialRecord {
    /// The material.
    pub material: QcMaterial,
    /// Its lots, newest first.
    pub lots: Vec<QcLotRecord>,
}

/// The QC overview: today's QC, every material with its lots, targets and recent results, and
/// the printed names of the users who recorded them.
#[derive(Clone, Debug, PartialEq)]
pub struct QcOverview {
    /// Today's QC.
    pub today: QcToday,
    /// Every material, by name.
    pub materials: Vec<QcMaterialRecord>,
    /// Printed names by user id (for "recorded by").
    pub operators: BTreeMap<UserId, String>,
}

/// One page of QC results ([`Operations::qc_results_page`]).
#[derive(Clone, Debug, PartialEq)]
pub struct QcResultsPage {
    /// The results, newest recorded first.
    pub results: Vec<QcResult>,
    /// The result the next (older) page starts before; `None` on the last page.
    pub next_before: Option<QcResultId>,
}

pub use appliance::store::qc::MAX_QC_RESULTS_PAGE;

/// QC results a page of `GET /api/v1/qc` holds when the request does not say.
pub const DEFAULT_QC_RESULTS_PAGE: u32 = 100;

/// A new control material, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct QcMaterialOrder {
    /// Its name (1 to 100 characters).
    pub name: String,
    /// Phantom or control.
    pub kind: QcMaterialKind,
    /// A control's level (negative or positive); a phantom has none.
    pub control_level: Option<ControlLevel>,
    /// What is measured: one of [`ANALYTES`].
    pub analyte: &'static str,
}

/// A new lot of a material, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct QcLotOrder {
    /// The material.
    pub material_id: QcMaterialId,
    /// The lot number (1 to 100 characters).
    pub lot: String,
    /// Its expiry date (not before today).
    pub expires_on: time::Date,
}

/// A lot's new target, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct QcTargetOrder {
    /// The lot.
    pub lot_id: QcLotId,
    /// The mean.
    pub mean: f64,
    /// The SD (above 0).
    pub sd: f64,
    /// Where it comes from.
    pub source: TargetSource,
    /// Values it rests on (at least [`MIN_ESTABLISHING_VALUES`] when established here).
    pub n_values: Option<u32>,
}

/// What was done about a rejected control value, as recorded against it: trimmed, 3 to
/// [`CorrectiveActionText::MAX_CHARS`] characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorrectiveActionText(String);

impl CorrectiveActionText {
    /// The longest text.
    pub const MAX_CHARS: usize = 1000;

    /// Parses the typed text (the field `action`).
    pub fn parse(text: &str) -> Result<Self, OperationError> {
        let text = text.trim();
        let chars = text.chars().count();
        if !(3..=Self::MAX_CHARS).contains(&chars) {
            return Err(OperationError::invalid(
                "action",
                format!(
                    "say what was done about the rejected QC (3 to {} characters)",
                    Self::MAX_CHARS
                ),
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A text field trimmed, 1 to 100 characters.
fn required_text(field: &'static str, text: &str) -> Result<String, OperationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(OperationError::invalid(field, "must not be empty"));
    }
    if text.chars().count() > 100 {
        return Err(OperationError::invalid(field, "at most 100 characters"));
    }
    Ok(text.to_owned())
}

/// A finite number as typed; a decimal comma (a German or French tablet keyboard's) accepted.
pub fn number(field: &'static str, text: &str) -> Result<f64, OperationError> {
    text.trim()
        .replace(',', ".")
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| {
            OperationError::invalid(
                field,
                format!(
                    "{:?} is not a number",
                    text.chars().take(40).collect::<String>()
                ),
            )
        })
}

/// A row id chosen in a form.
fn row_id(field: &'static str, text: &str, what: &str) -> Result<i64, OperationError> {
    text.trim()
        .parse::<i64>()
        .map_err(|_| OperationError::invalid(field, format!("choose a {what}")))
}

impl QcMaterialOrder {
    /// Parses a new material: a name, `phantom` or `control`, a control's level (`negative` or
    /// `positive`; blank for a phantom), one of [`ANALYTES`].
    pub fn parse(
        name: &str,
        kind: &str,
        control_level: &str,
        analyte: &str,
    ) -> Result<Self, OperationError> {
        let name = required_text("name", name)?;
        let kind = match kind.trim() {
            "phantom" => QcMaterialKind::Phantom,
            "control" => QcMaterialKind::Control,
            other => {
                return Err(OperationError::invalid(
                    "kind",
                    format!("{other:?} is neither phantom nor control"),
                ));
            }
        };
        let control_level = match (kind, control_level.trim()) {
            (QcMaterialKind::Phantom, "") => None,
            (QcMaterialKind::Phantom, _) => {
                return Err(OperationError::invalid(
                    "control_level",
                    "a phantom has no control level; leave it blank",
                ));
            }
            (QcMaterialKind::Control, level) => {
                Some(level.parse::<ControlLevel>().map_err(|_| {
                    OperationError::invalid(
                        "control_level",
                        format!(
                            "{:?}: a control material is negative or positive",
                            level.chars().take(20).collect::<String>()
                        ),
                    )
                })?)
            }
        };
        let analyte = ANALYTES
            .into_iter()
            .find(|a| *a == analyte.trim())
            .ok_or_else(|| {
                OperationError::invalid(
                    "analyte",
                    format!("{analyte:?} is not one of {}", ANALYTES.join(", ")),
                )
            })?;
        Ok(Self {
            name,
            kind,
            control_level,
            analyte,
        })
    }
}

impl QcLotOrder {
    /// Parses a new lot: the material chosen, a lot number, an expiry date (`YYYY-MM-DD`) not
    /// before `today`.
    pub fn parse(
        material_id: &str,
        lot: &str,
        expires_on: &str,
        today: time::Date,
    ) -> Result<Self, OperationError> {
        let material_id = row_id("material_id", material_id, "control material")?;
        let lot = required_text("lot", lot)?;
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let expires_on = time::Date::parse(expires_on.trim(), &format).map_err(|_| {
            OperationError::invalid(
                "expires_on",
                format!("{expires_on:?} is not a date like 2027-03-31"),
            )
        })?;
        if expires_on < today {
            return Err(OperationError::invalid(
                "expires_on",
                format!("the lot expired on {expires_on}; an expired control cannot be used"),
            ));
        }
        Ok(Self {
            material_id: QcMaterialId(material_id),
            lot,
            expires_on,
        })
    }
}

impl QcTargetOrder {
    /// Parses a target: the lot chosen, mean, SD above 0, `manufacturer` or `established`, and
    /// for an established target the number of values (at least [`MIN_ESTABLISHING_VALUES`]).
    pub fn parse(
        lot_id: &str,
        mean: &str,
        sd: &str,
        source: &str,
        n_values: &str,
    ) -> Result<Self, OperationError> {
        let lot_id = row_id("lot_id", lot_id, "lot")?;
        let mean = number("mean", mean)?;
        let sd = number("sd", sd)?;
        if sd <= 0.0 {
            return Err(OperationError::invalid("sd", "the SD must be above 0"));
        }
        let source = match source.trim() {
            "manufacturer" => TargetSource::Manufacturer,
            "established" => TargetSource::Established,
            other => {
                return Err(OperationError::invalid(
                    "source",
                    format!("{other:?} is neither manufacturer nor established"),
                ));
            }
        };
        let n_values = match n_values.trim() {
            "" => None,
            text => Some(text.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
                OperationError::invalid(
                    "n_values",
                    format!("{text:?} is not a whole number above 0"),
                )
            })?),
        };
        if source == TargetSource::Established
            && n_values.is_none_or(|n| n < MIN_ESTABLISHING_VALUES)
        {
            return Err(OperationError::invalid(
                "n_values",
                format!(
                    "a target established on this instrument needs at least \
                     {MIN_ESTABLISHING_VALUES} values (CLSI C24)"
                ),
            ));
        }
        Ok(Self {
            lot_id: QcLotId(lot_id),
            mean,
            sd,
            source,
            n_values,
        })
    }
}

/// A store refusal of set-up input, naming the form's field: what collided, what was missing.
fn setup_refusal(
    error: StoreError,
    duplicate_field: &'static str,
    missing_field: &'static str,
) -> OperationError {
    match error {
        StoreError::Duplicate { entity, key } => OperationError::invalid(
            duplicate_field,
            format!("a {entity} {key:?} exists already"),
        ),
        StoreError::NotFound { entity, key } => {
            OperationError::invalid(missing_field, format!("no {entity} {key}"))
        }
        other => other.into(),
    }
}

impl Operations {
    /// Records `value` for a lot measured now (operators and lab admins), judged by every
    /// Westgard rule over the lot's results since its current target was set, the new value last
    /// (`westgard::judge_latest`, the one Westgard judgement): the verdict is the worst rule the
    /// new value takes part in. Without a target there are no limits yet: the value is stored as
    /// `pass`, towards establishing one. Each lot is judged on its own (one control per run).
    /// `reagent_lot` is the reagent lot a control was measured with (the QC gate counts a
    /// control value for its own reagent lot only).
    pub async fn record_qc(
        &self,
        who: &Requester,
        lot_id: QcLotId,
        value: f64,
        reagent_lot: Option<&str>,
        comment: Option<&str>,
    ) -> Result<QcResult, OperationError> {
        who.require(Permission::RecordQc)?;
        let reagent_lot = reagent_lot
            .map(str::trim)
            .filter(|lot| !lot.is_empty())
            .map(ReagentLot::parse)
            .transpose()
            .map_err(|e| OperationError::invalid("reagent_lot", e.to_string()))?;
        if !value.is_finite() {
            return Err(OperationError::invalid("value", "must be a finite number"));
        }
        let comment = comment.map(str::trim).filter(|c| !c.is_empty());
        if comment.is_some_and(|c| c.chars().count() > 500) {
            return Err(OperationError::invalid(
                "comment",
                "must be at most 500 characters",
            ));
        }
        let (status, violations) = match self.store.current_qc_target(lot_id).await? {
            None => (QcVerdict::Pass, Vec::new()),
            Some(target) => {
                let beginning = Timestamp::now().plus(-time::Duration::days(365 * 100));
                let values: Vec<f64> = self
                    .store
                    .qc_results(lot_id, beginning)
                    .await?
                    .iter()
                    .filter(|r| r.target_id == Some(target.id))
                    .map(|r| r.value)
                    .chain([value])
                    .collect();
                let control = ControlTarget {
                    mean: target.mean,
                    sd: target.sd,
                    n: target.n_values.map_or(0, |n| n as usize),
                };
                westgard::judge_latest(&values, control)
                    .map_err(|error| OperationError::invalid("value", error.to_string()))?
            }
        };
        let new = NewQcResult {
            lot_id,
            value,
            status,
            violations,
            measurement_id: None,
            reagent_lot,
            measured_at: Timestamp::now(),
            comment: comment.map(str::to_owned),
        };
        Ok(self.store.record_qc_result(&who.actor(), &new).await?)
    }

    /// Today's QC (the site's calendar day's control values and their worst verdict):
    /// `Store::qc_between` over the day `SiteTimeZone::day_of` names, the one reading the QC
    /// gate and the engine's pre-run check use too.
    pub async fn qc_today(&self, who: &Requester) -> Result<QcToday, OperationError> {
        who.require(Permission::ViewQc)?;
        self.qc_day(Timestamp::now()).await
    }

    /// The control values of the site's calendar day holding `at`.
    async fn qc_day(&self, at: Timestamp) -> Result<QcToday, OperationError> {
        let (midnight, next) = self
            .settings
            .site
            .time_zone
            .day_of(at)
            .map_err(|e| OperationError::invalid("time", e.to_string()))?;
        Ok(self.store.qc_between(midnight, next).await?)
    }

    /// The QC set-up: today's QC, and every material's lots with their current target, without
    /// results (those come a page at a time: [`Operations::qc_results_page`]). Two statements
    /// however many materials and lots there are.
    pub async fn qc_setup(&self, who: &Requester) -> Result<QcOverview, OperationError> {
        self.overview(who, None).await
    }

    /// One page of every lot's QC results, newest recorded first, before the result `before`:
    /// at most `limit` (1 to [`MAX_QC_RESULTS_PAGE`], refused naming the bound otherwise), ONE
    /// statement (`Store::qc_results_page`), read as `limit + 1` so that one more says whether
    /// another page follows.
    pub async fn qc_results_page(
        &self,
        who: &Requester,
        before: Option<QcResultId>,
        limit: u32,
    ) -> Result<QcResultsPage, OperationError> {
        who.require(Permission::ViewQc)?;
        if !(1..=MAX_QC_RESULTS_PAGE).contains(&limit) {
            return Err(OperationError::invalid(
                "limit",
                format!("{limit} is not within 1 to {MAX_QC_RESULTS_PAGE}"),
            ));
        }
        let mut results = self.store.qc_results_page(before, limit + 1).await?;
        let next_before = if results.len() > limit as usize {
            results.truncate(limit as usize);
            results.last().map(|r| r.id)
        } else {
            None
        };
        Ok(QcResultsPage {
            results,
            next_before,
        })
    }

    /// The lab manager's review: the QC overview with the values of `range` (the site's
    /// calendar days) for the Levey–Jennings charts and their statistics: each lot's latest
    /// [`MAX_REVIEW_VALUES`] of the range, the lots with more named
    /// ([`QcLotRecord::more_in_range`]), the corrective actions recorded against them and who
    /// recorded what. Four statements however many materials, lots and values there are.
    pub async fn qc_review(
        &self,
        who: &Requester,
        range: QcRange,
    ) -> Result<QcOverview, OperationError> {
        self.overview(who, Some(range)).await
    }

    /// Today's QC and every material's lots with their target, and (with `range`) their values
    /// in the range, statistics and corrective actions.
    async fn overview(
        &self,
        who: &Requester,
        range: Option<QcRange>,
    ) -> Result<QcOverview, OperationError> {
        who.require(Permission::ViewQc)?;
        let today = self.qc_day(Timestamp::now()).await?;
        let catalogue = self.store.qc_catalogue().await?;
        let (mut values, actions) = match range {
            Some(range) => {
                let (from, until) = range.bounds(&self.settings.site.time_zone)?;
                let values = self
                    .store
                    .qc_values_between(from, until, MAX_REVIEW_VALUES)
                    .await?;
                let rejected: Vec<QcResultId> = values
                    .by_lot
                    .values()
                    .flatten()
                    .filter(|r| r.status == QcVerdict::Reject)
                    .map(|r| r.id)
                    .collect();
                let actions = self.store.corrective_actions_of(&rejected).await?;
                (values, actions)
            }
            None => (QcRangeValues::default(), Vec::new()),
        };
        let mut actions_of: BTreeMap<QcResultId, Vec<CorrectiveAction>> = BTreeMap::new();
        for action in actions {
            actions_of
                .entry(action.qc_result_id)
                .or_default()
                .push(action);
        }
        let materials = catalogue
            .into_iter()
            .map(|entry| QcMaterialRecord {
                material: entry.material,
                lots: entry
                    .lots
                    .into_iter()
                    .map(|QcLotEntry { lot, target }| {
                        let results = values.by_lot.remove(&lot.id).unwrap_or_default();
                        let corrective_actions = results
                            .iter()
                            .flat_map(|r| actions_of.remove(&r.id).unwrap_or_default())
                            .collect();
                        QcLotRecord {
                            more_in_range: values.more.contains(&lot.id),
                            statistics: LotStatistics::of(&results),
                            lot,
                            target,
                            results,
                            corrective_actions,
                        }
                    })
                    .collect(),
            })
            .collect();
        Ok(QcOverview {
            today,
            materials,
            operators: values.operators,
        })
    }

    /// Records a corrective action against a QC result (those who record QC: operators and lab
    /// admins). **The rule:** only a rejected control value takes one; a pass or a warning is
    /// refused (409) and an unknown result is 404 (`Store::add_corrective_action` reads the
    /// stored verdict in the insert's transaction). Audited `qc.corrective_action` with who,
    /// when and what.
    pub async fn record_corrective_action(
        &self,
        who: &Requester,
        qc_result_id: QcResultId,
        action: &CorrectiveActionText,
    ) -> Result<CorrectiveAction, OperationError> {
        who.require(Permission::RecordQc)?;
        Ok(self
            .store
            .add_corrective_action(&who.actor(), qc_result_id, action.as_str())
            .await?)
    }

    /// Defines a control material (lab admins); a name in use is refused naming `name`.
    pub async fn define_qc_material(
        &self,
        who: &Requester,
        order: &QcMaterialOrder,
    ) -> Result<QcMaterial, OperationError> {
        who.require(Permission::ManageQc)?;
        self.store
            .add_qc_material(
                &who.actor(),
                &order.name,
                order.kind,
                order.control_level,
                order.analyte,
            )
            .await
            .map_err(|e| setup_refusal(e, "name", "name"))
    }

    /// Adds a lot of a material (lab admins).
    pub async fn add_qc_lot(
        &self,
        who: &Requester,
        order: &QcLotOrder,
    ) -> Result<QcLot, OperationError> {
        who.require(Permission::ManageQc)?;
        self.store
            .add_qc_lot(
                &who.actor(),
                order.material_id,
                &order.lot,
                order.expires_on,
            )
            .await
            .map_err(|e| setup_refusal(e, "lot", "material_id"))
    }

    /// Sets a lot's target (lab admins); it supersedes the lot's earlier targets, which stay on
    /// record.
    pub async fn set_qc_target(
        &self,
        who: &Requester,
        order: &QcTargetOrder,
    ) -> Result<QcTarget, OperationError> {
        who.require(Permission::ManageQc)?;
        self.store
            .set_qc_target(
                &who.actor(),
                order.lot_id,
                order.mean,
                order.sd,
                order.source,
                order.n_values,
            )
            .await
            .map_err(|e| setup_refusal(e, "lot_id", "lot_id"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_up_forms_are_parsed_naming_the_field() {
        let field = |result: Result<(), OperationError>| match result {
            Err(OperationError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert!(QcMaterialOrder::parse("Phantom", "phantom", "", "t2_ms").is_ok());
        assert_eq!(
            field(QcMaterialOrder::parse(" ", "phantom", "", "t2_ms").map(drop)),
            "name"
        );
        assert_eq!(
            field(QcMaterialOrder::parse("P", "blood", "", "t2_ms").map(drop)),
            "kind"
        );
        assert_eq!(
            field(QcMaterialOrder::parse("P", "control", "positive", "ph").map(drop)),
            "analyte"
        );
        let today = time::macros::date!(2026 - 11 - 24);
        assert!(QcLotOrder::parse("3", "PH-1", "2026-11-24", today).is_ok());
        assert_eq!(
            field(QcLotOrder::parse("3", "PH-1", "2026-11-23", today).map(drop)),
            "expires_on"
        );
        assert_eq!(
            field(QcLotOrder::parse("x", "PH-1", "2027-01-01", today).map(drop)),
            "material_id"
        );
        let target = |source: &str, n: &str| QcTargetOrder::parse("4", "100", "2,5", source, n);
        assert_eq!(target("manufacturer", "").map(|t| t.sd).ok(), Some(2.5));
        assert_eq!(field(target("established", "19").map(drop)), "n_values");
        assert!(target("established", "20").is_ok());
        assert_eq!(
            field(QcTargetOrder::parse("4", "100", "0", "manufacturer", "").map(drop)),
            "sd"
        );
    }
}
