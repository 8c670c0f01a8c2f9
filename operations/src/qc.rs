//! Quality control at the bench: recording a control value and judging it by the Westgard rules.

use appliance::store::qc::{NewQcResult, QcResult, QcVerdict};
use appliance::store::users::User;
use appliance::store::{QcLotId, Timestamp};
use nmr_core::qc::westgard::{self, ControlTarget};

use crate::{OperationError, Operations, Permission, permission};

impl Operations {
    /// Records `value` for a lot measured now (operators and lab admins), judged by every
    /// Westgard rule over the lot's results since its current target was set, the new value last
    /// (`westgard::judge_latest`, the one Westgard judgement): the verdict is the worst rule the
    /// new value takes part in. Without a target there are no limits yet: the value is stored as
    /// `pass`, towards establishing one. Each lot is judged on its own (one control per run).
    pub async fn record_qc(
        &self,
        user: &User,
        lot_id: QcLotId,
        value: f64,
        comment: Option<&str>,
    ) -> Result<QcResult, OperationError> {
        permission::require(user.role, Permission::RecordQc)?;
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
            measured_at: Timestamp::now(),
            comment: comment.map(str::to_owned),
        };
        Ok(self.store.record_qc_result(&user.actor(), &new).await?)
    }
}
