//! The lab manager's review of QC over a chosen date range: the range itself ([`QcRange::parse`])
//! and each lot's observed statistics ([`LotStatistics::of`]: n, mean, SD, CV of the accepted
//! values, with how many were rejected or warned), computed once here for the QC page and any
//! other face.
//!
//! Not for: judging a value (the Westgard rules in `nmr_core::qc::westgard`, applied when it is
//! recorded) or setting a target (`Operations::set_qc_target`).

use appliance::store::qc::{QcResult, QcVerdict};

use crate::OperationError;

/// Longest range the review covers, in days (ten years of daily QC is still one page's charts).
pub const MAX_RANGE_DAYS: i64 = 3660;

/// Days the review covers when no start is given (the last month).
pub const DEFAULT_RANGE_DAYS: i64 = 31;

/// A range of whole days of the site's calendar, both ends included ([`QcRange::bounds`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QcRange {
    /// The first day.
    pub from: time::Date,
    /// The last day.
    pub to: time::Date,
}

impl QcRange {
    /// The range typed as `YYYY-MM-DD` days: a blank end is today, a blank start
    /// [`DEFAULT_RANGE_DAYS`] days before the end; the start not after the end, at most
    /// [`MAX_RANGE_DAYS`] days.
    pub fn parse(from: &str, to: &str, today: time::Date) -> Result<Self, OperationError> {
        let day = |field: &'static str, text: &str| {
            time::Date::parse(
                text.trim(),
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .map_err(|_| {
                OperationError::invalid(
                    field,
                    format!(
                        "{:?} is not a calendar date written YYYY-MM-DD",
                        text.trim().chars().take(40).collect::<String>()
                    ),
                )
            })
        };
        let to = match to.trim() {
            "" => today,
            text => day("to", text)?,
        };
        let from = match from.trim() {
            "" => to.saturating_sub(time::Duration::days(DEFAULT_RANGE_DAYS - 1)),
            text => day("from", text)?,
        };
        if from > to {
            return Err(OperationError::invalid(
                "from",
                format!("the range starts ({from}) after it ends ({to})"),
            ));
        }
        if (to - from).whole_days() >= MAX_RANGE_DAYS {
            return Err(OperationError::invalid(
                "from",
                format!("a range is at most {MAX_RANGE_DAYS} days"),
            ));
        }
        Ok(Self { from, to })
    }

    /// The range as instants: the site's local midnight starting its first day and the one
    /// ending its last.
    pub fn bounds(
        &self,
        zone: &appliance::site::SiteTimeZone,
    ) -> Result<(appliance::store::Timestamp, appliance::store::Timestamp), OperationError> {
        zone.days(self.from, self.to)
            .map_err(|e| OperationError::invalid("from", e.to_string()))
    }
}

/// A lot's observed statistics over a range: the accepted values' (not rejected by a Westgard
/// rule) count, mean, sample SD and CV, and the counts of rejected and warned values. With fewer
/// than two accepted values there is no SD or CV; with a mean of zero no CV.
#[derive(Clone, Debug, PartialEq)]
pub struct LotStatistics {
    /// Values in the range, all verdicts.
    pub values: usize,
    /// Values a Westgard rule rejected (left out of the mean, SD and CV).
    pub rejected: usize,
    /// Values a rule warned about (counted in).
    pub warned: usize,
    /// The accepted values' mean.
    pub mean: Option<f64>,
    /// Their sample standard deviation.
    pub sd: Option<f64>,
    /// Their coefficient of variation, %.
    pub cv_percent: Option<f64>,
}

impl LotStatistics {
    /// The statistics of `results`.
    pub fn of(results: &[QcResult]) -> Self {
        let accepted: Vec<f64> = results
            .iter()
            .filter(|r| r.status != QcVerdict::Reject && r.value.is_finite())
            .map(|r| r.value)
            .collect();
        let n = accepted.len();
        let mean = (n > 0).then(|| accepted.iter().sum::<f64>() / n as f64);
        let sd = mean.filter(|_| n > 1).map(|mean| {
            (accepted.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        });
        let cv_percent = match (mean, sd) {
            (Some(mean), Some(sd)) if mean != 0.0 => Some(sd / mean.abs() * 100.0),
            _ => None,
        };
        Self {
            values: results.len(),
            rejected: results
                .iter()
                .filter(|r| r.status == QcVerdict::Reject)
                .count(),
            warned: results
                .iter()
                .filter(|r| r.status == QcVerdict::Warning)
                .count(),
            mean,
            sd,
            cv_percent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use appliance::store::{QcLotId, QcResultId, Timestamp};

    fn result(value: f64, status: QcVerdict) -> QcResult {
        QcResult {
            id: QcResultId(1),
            lot_id: QcLotId(1),
            target_id: None,
            value,
            status,
            violations: Vec::new(),
            measurement_id: None,
            reagent_lot: None,
            measured_at: Timestamp::now(),
            operator_id: None,
            comment: None,
        }
    }

    #[test]
    fn statistics_are_of_the_accepted_values_and_count_the_rest() {
        let results = [
            result(10.0, QcVerdict::Pass),
            result(12.0, QcVerdict::Warning),
            result(14.0, QcVerdict::Pass),
            result(99.0, QcVerdict::Reject),
        ];
        let stats = LotStatistics::of(&results);
        assert_eq!((stats.values, stats.rejected, stats.warned), (4, 1, 1));
        assert_eq!(stats.mean, Some(12.0));
        assert_eq!(stats.sd, Some(2.0));
        let cv = stats.cv_percent.expect("a CV");
        assert!((cv - 100.0 / 6.0).abs() < 1e-12, "{cv}");
        let one = LotStatistics::of(&results[..1]);
        assert_eq!((one.mean, one.sd, one.cv_percent), (Some(10.0), None, None));
        let zero = LotStatistics::of(&[result(0.0, QcVerdict::Pass), result(0.0, QcVerdict::Pass)]);
        assert_eq!(zero.cv_percent, None, "no CV of a zero mean");
        assert_eq!(LotStatistics::of(&[]).mean, None);
    }

    #[test]
    fn a_range_is_whole_days_in_order_and_bounded() {
        let today = time::macros::date!(2026 - 12 - 02);
        let last_month = QcRange::parse("", "", today).expect("default");
        assert_eq!(last_month.to, today);
        assert_eq!(last_month.from, time::macros::date!(2026 - 11 - 02));
        let chosen = QcRange::parse("2026-01-01", "2026-06-30", today).expect("chosen");
        let berlin: appliance::site::SiteTimeZone = "Europe/Berlin".parse().expect("zone");
        let (start, end) = chosen.bounds(&berlin).expect("bounds");
        // Local midnights: CET on 1 January, CEST on 30 June.
        assert_eq!(start.to_rfc3339(), "2025-12-31T23:00:00Z");
        assert_eq!(end.to_rfc3339(), "2026-06-30T22:00:00Z");
        for (from, to, field) in [
            ("2026-02-30", "", "from"),
            ("", "tomorrow", "to"),
            ("2026-06-30", "2026-01-01", "from"),
            ("2000-01-01", "2026-01-01", "from"),
        ] {
            let refused = QcRange::parse(from, to, today);
            assert!(
                matches!(refused, Err(OperationError::Invalid { field: f, .. }) if f == field),
                "{from} {to}: {refused:?}"
            );
        }
    }
}
