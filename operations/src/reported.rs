//! What a result says when it is shown or printed: its status (preliminary until released, final,
//! corrected), its call made honestly (indeterminate when the 95 % interval contains the cut-off)
//! and its count as printed (whole cells per 7.5 mL, never rounded across the cut-off).
//!
//! The one home of these rules: the pages, the JSON API, the CSV and the PDF take a
//! [`Reported`] (or the functions below) and only word it. Full precision stays in the stored
//! report and in the exports; only the printed text is rounded.
//!
//! Not here: computing the count or the point-estimate call (`nmr_core::assay`), releasing or
//! correcting (`results`).

use appliance::store::qc_basis::{JudgedFor, QcBasis};
use appliance::store::results::{ReleaseMarks, ResultSummary, ResultVersion, SignatureMeaning};
use appliance::store::runs::RunState;
use nmr_core::assay::{Call, CountCategory};
use serde::Serialize;

/// Where a result stands for those who read it (HL7 v2's result status P, F, C).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResultStatus {
    /// Not released (awaiting release, on hold, cancelled before release, or a correction not
    /// yet released): not for clinical decisions.
    Preliminary,
    /// Released for clinical use, the first released version.
    Final,
    /// Released for clinical use, and it replaces an earlier released version.
    Corrected,
}

impl ResultStatus {
    /// `PRELIMINARY`, `FINAL`, `CORRECTED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Preliminary => "PRELIMINARY",
            Self::Final => "FINAL",
            Self::Corrected => "CORRECTED",
        }
    }

    /// Whether the result may be read as released (final or corrected).
    pub fn is_released(self) -> bool {
        self != Self::Preliminary
    }

    /// Decides the status of a run's current result from its stored versions (oldest first,
    /// the last current) and their signatures: released only when the run is released and the
    /// current version carries a release signature; corrected when, besides, an earlier version
    /// had been released. `None` without a result.
    pub fn of(run_state: RunState, versions: &[ResultVersion]) -> Option<Self> {
        Some(Self::of_marks(run_state, release_marks(versions)?))
    }

    /// The same rule from the release marks a list reads with the current version (released
    /// only when the run is released and the current version carries a release signature;
    /// corrected when an earlier version carries one too).
    pub fn of_marks(run_state: RunState, marks: ReleaseMarks) -> Self {
        if let Some(status) = Self::of_unreleased_run(run_state) {
            return status;
        }
        Self::released_by(marks).unwrap_or(Self::Preliminary)
    }

    /// The status the last of `versions` (oldest first) carries as released: FINAL when no
    /// earlier version had been released, CORRECTED otherwise; `None` when it carries no release
    /// signature. What a message sent for that version says (HL7 v2 OBX-11 `F`/`C`), whatever
    /// happened to the run after it.
    pub fn as_released(versions: &[ResultVersion]) -> Option<Self> {
        Self::released_by(release_marks(versions)?)
    }

    fn released_by(marks: ReleaseMarks) -> Option<Self> {
        if !marks.current {
            None
        } else if marks.earlier {
            Some(Self::Corrected)
        } else {
            Some(Self::Final)
        }
    }
}

/// Which of `versions` (oldest first, the last current) carry a release signature; `None`
/// without a version.
pub fn release_marks(versions: &[ResultVersion]) -> Option<ReleaseMarks> {
    let (current, earlier) = versions.split_last()?;
    Some(ReleaseMarks {
        current: is_released(current),
        earlier: earlier.iter().any(is_released),
    })
}

/// Whether a version carries a release signature.
fn is_released(version: &ResultVersion) -> bool {
    version
        .signatures
        .iter()
        .any(|s| s.meaning == SignatureMeaning::Release)
}

impl ResultStatus {
    /// The status of any result of a run that is not released, whatever its versions say:
    /// PRELIMINARY (the worklist's rows, a run on hold, a correction awaiting release). `None`
    /// for a released run, whose status depends on its versions ([`ResultStatus::of`]).
    pub fn of_unreleased_run(run_state: RunState) -> Option<Self> {
        (run_state != RunState::Released).then_some(Self::Preliminary)
    }
}

impl std::fmt::Display for ResultStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The call as reported: the stored point-estimate call, except that a result whose 95 %
/// interval contains the cut-off is `indeterminate` (never favourable or unfavourable). The
/// point estimate was compared with the cut-off unrounded (`nmr_core::assay::Indications::call`).
pub fn reported_call(summary: &ResultSummary) -> Option<Call> {
    let call = summary.call?;
    Some(if summary.interval_spans_cutoff == Some(true) {
        Call::Indeterminate
    } else {
        call
    })
}

/// A count as printed: whole cells per 7.5 mL, the interval beside.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PrintedCount {
    /// The estimate ("4"; "4.95" when whole cells would round it across the cut-off).
    pub value: String,
    /// The interval's low end, printed the same way.
    pub low: String,
    /// The interval's high end, printed the same way.
    pub high: String,
    /// Whether nothing was detected (then only the high end is meaningful: "at most").
    pub not_detected: bool,
}

impl PrintedCount {
    /// The count of `summary` as printed, against its cut-off.
    pub fn of(summary: &ResultSummary) -> Self {
        Self::from_values(
            summary.per_7_5ml,
            summary.per_7_5ml_ci95,
            summary.category,
            summary.cutoff_per_7_5ml,
        )
    }

    /// `per_7_5ml` and its interval as whole cells, each kept on its own side of `cutoff`.
    pub fn from_values(
        per_7_5ml: f64,
        ci95: [f64; 2],
        category: CountCategory,
        cutoff: Option<f64>,
    ) -> Self {
        Self {
            value: whole_cells(per_7_5ml, cutoff),
            low: whole_cells(ci95[0], cutoff),
            high: whole_cells(ci95[1], cutoff),
            not_detected: category == CountCategory::NotDetected,
        }
    }

    /// "4 CTC/7.5 mL (95 % CI 1–10)", or for nothing detected "Not detected (at most 3 CTC/7.5
    /// mL, 95 %)".
    pub fn line(&self) -> String {
        if self.not_detected {
            format!("Not detected (at most {} CTC/7.5 mL, 95 %)", self.high)
        } else {
            format!(
                "{} CTC/7.5 mL (95 % CI {}–{})",
                self.value, self.low, self.high
            )
        }
    }
}

/// A count per 7.5 mL as whole cells, with as many decimals as it takes (up to three, then
/// truncated towards its own side) never to print a value on the other side of `cutoff` than
/// the value itself: 4.954 against 5 prints "4.95", not "5".
pub fn whole_cells(value: f64, cutoff: Option<f64>) -> String {
    if !value.is_finite() {
        return "—".to_owned();
    }
    let side = |v: f64| cutoff.map(|c| v >= c);
    for decimals in 0..=3 {
        let text = format!("{value:.decimals$}");
        let printed = text.parse::<f64>().unwrap_or(value);
        if side(printed) == side(value) {
            return text;
        }
    }
    // Rounding to thousandths still crosses: truncate towards the value's side.
    let scaled = value * 1000.0;
    let kept = if side(value) == Some(true) {
        scaled.ceil()
    } else {
        scaled.floor()
    };
    format!("{:.3}", kept / 1000.0)
}

/// The QC a result relies on, from the judgements stored with its run (never recomputed): the
/// newest judgement at release, else the judgement at its start; `None` when no valid QC was
/// ever judged for it (a report then says so, never "no QC flags").
pub fn qc_relied_on(basis: &[QcBasis]) -> Option<&QcBasis> {
    basis
        .iter()
        .rev()
        .find(|b| b.judged_for == JudgedFor::Release)
        .or_else(|| {
            basis
                .iter()
                .rev()
                .find(|b| b.judged_for == JudgedFor::Start)
        })
        .filter(|b| !b.values.is_empty())
}

/// A result as reported: its status, its call and its printed count, decided once here.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reported {
    /// PRELIMINARY, FINAL or CORRECTED.
    pub status: ResultStatus,
    /// The reported call (`indeterminate` when the interval contains the cut-off).
    pub call: Option<Call>,
    /// The count as printed.
    pub count: PrintedCount,
}

impl Reported {
    /// The current result of a run in `run_state` with these versions (oldest first), as
    /// reported; `None` without a result.
    pub fn of(run_state: RunState, versions: &[ResultVersion]) -> Option<Self> {
        let current = versions.last()?;
        Some(Self::of_summary(
            run_state,
            &current.summary,
            release_marks(versions)?,
        ))
    }

    /// The current version's `summary` of a run in `run_state`, as reported, from the release
    /// marks a list reads with it.
    pub fn of_summary(run_state: RunState, summary: &ResultSummary, marks: ReleaseMarks) -> Self {
        Self {
            status: ResultStatus::of_marks(run_state, marks),
            call: reported_call(summary),
            count: PrintedCount::of(summary),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use appliance::store::results::Signature;
    use appliance::store::{ResultId, RunId, SignatureId, Timestamp, UserId};
    use nmr_core::assay::CountReport;

    fn summary(per: f64, ci: [f64; 2], call: Call, spans: bool) -> ResultSummary {
        ResultSummary {
            per_7_5ml: per,
            per_7_5ml_ci95: ci,
            category: CountCategory::Quantified,
            call: Some(call),
            indication: Some("breast".into()),
            cutoff_per_7_5ml: Some(5.0),
            interval_spans_cutoff: Some(spans),
            qc_hold: false,
        }
    }

    #[test]
    fn an_interval_containing_the_cut_off_is_indeterminate_whatever_the_point_estimate() {
        let s = summary(4.954, [2.1, 9.8], Call::Favorable, true);
        assert_eq!(reported_call(&s), Some(Call::Indeterminate));
        let s = summary(5.2, [2.1, 9.8], Call::Unfavorable, true);
        assert_eq!(reported_call(&s), Some(Call::Indeterminate));
        let s = summary(12.0, [7.1, 19.8], Call::Unfavorable, false);
        assert_eq!(reported_call(&s), Some(Call::Unfavorable));
        let s = summary(1.0, [0.1, 3.8], Call::Favorable, false);
        assert_eq!(reported_call(&s), Some(Call::Favorable));
        let mut none = s;
        none.call = None;
        assert_eq!(reported_call(&none), None);
    }

    #[test]
    fn the_printed_value_never_crosses_the_cut_off() {
        // The case: 4.954 against 5 must not print "5".
        assert_eq!(whole_cells(4.954, Some(5.0)), "4.95");
        assert_eq!(whole_cells(4.9996, Some(5.0)), "4.999");
        assert_eq!(whole_cells(5.0, Some(5.0)), "5");
        assert_eq!(whole_cells(5.4, Some(5.0)), "5");
        assert_eq!(whole_cells(2.96, Some(3.0)), "2.96");
        // Whole cells away from the cut-off, and without one.
        assert_eq!(whole_cells(4.24, Some(5.0)), "4");
        assert_eq!(whole_cells(212.4, Some(5.0)), "212");
        assert_eq!(whole_cells(4.954, None), "5");
        assert_eq!(whole_cells(f64::NAN, None), "—");
        let tight = summary(4.954, [4.93, 4.98], Call::Favorable, false);
        let printed = PrintedCount::of(&tight);
        assert_eq!(printed.line(), "4.95 CTC/7.5 mL (95 % CI 4.9–4.98)");
        assert_eq!(reported_call(&tight), Some(Call::Favorable));
    }

    #[test]
    fn counts_print_as_whole_cells_with_the_interval_beside() {
        let s = summary(12.4, [7.1, 19.8], Call::Unfavorable, false);
        assert_eq!(PrintedCount::of(&s).line(), "12 CTC/7.5 mL (95 % CI 7–20)");
        let mut nd = summary(0.0, [0.0, 2.84], Call::Favorable, false);
        nd.category = CountCategory::NotDetected;
        assert_eq!(
            PrintedCount::of(&nd).line(),
            "Not detected (at most 3 CTC/7.5 mL, 95 %)"
        );
    }

    #[test]
    fn a_report_relies_on_the_qc_judged_at_release_else_at_start() {
        use appliance::store::qc_basis::QcRelied;
        use appliance::store::{QcResultId, Timestamp};
        let judged = |judged_for, id: i64, at: &str| QcBasis {
            judged_for,
            judged_at: Timestamp::parse(at).unwrap(),
            values: vec![QcRelied {
                qc_result_id: QcResultId(id),
                level: nmr_core::qc::ControlLevel::Negative,
                material: "neg".into(),
                qc_lot: "QN".into(),
                measured_at: Timestamp::parse(at).unwrap(),
                verdict: nmr_core::qc::QcVerdict::Pass,
            }],
        };
        assert_eq!(qc_relied_on(&[]), None);
        let start = judged(JudgedFor::Start, 1, "2026-12-02T08:00:00Z");
        assert_eq!(qc_relied_on(std::slice::from_ref(&start)), Some(&start));
        let release = judged(JudgedFor::Release, 2, "2026-12-02T11:00:00Z");
        let later_start = judged(JudgedFor::Start, 3, "2026-12-02T12:00:00Z");
        assert_eq!(
            qc_relied_on(&[start.clone(), release.clone(), later_start]),
            Some(&release)
        );
        let empty = QcBasis {
            values: Vec::new(),
            ..start
        };
        assert_eq!(qc_relied_on(&[empty]), None);
    }

    fn version(number: u32, released: bool) -> ResultVersion {
        let report: CountReport = appliance::store::example_report::example_report(
            1.0,
            [0.0, 3.0],
            CountCategory::Quantified,
            Some(Call::Favorable),
            false,
        );
        ResultVersion {
            id: ResultId(i64::from(number)),
            run_id: RunId(1),
            version: number,
            summary: summary(1.0, [0.0, 3.0], Call::Favorable, false),
            report,
            reason: (number > 1).then(|| "blood volume".to_owned()),
            created_at: Timestamp::now(),
            created_by: None,
            signatures: if released {
                vec![Signature {
                    id: SignatureId(i64::from(number)),
                    result_id: ResultId(i64::from(number)),
                    user_id: UserId(1),
                    printed_name: "Dr A".into(),
                    meaning: SignatureMeaning::Release,
                    signed_at: Timestamp::now(),
                }]
            } else {
                Vec::new()
            },
        }
    }

    #[test]
    fn the_status_follows_the_release_signatures() {
        use RunState::*;
        assert_eq!(ResultStatus::of(Released, &[]), None);
        assert_eq!(
            ResultStatus::of(AwaitingRelease, &[version(1, false)]),
            Some(ResultStatus::Preliminary)
        );
        assert_eq!(
            ResultStatus::of(Released, &[version(1, true)]),
            Some(ResultStatus::Final)
        );
        // Corrected after release: preliminary until the new version is released, then corrected.
        let corrected = [version(1, true), version(2, false)];
        assert_eq!(
            ResultStatus::of(AwaitingRelease, &corrected),
            Some(ResultStatus::Preliminary)
        );
        let re_released = [version(1, true), version(2, true)];
        assert_eq!(
            ResultStatus::of(Released, &re_released),
            Some(ResultStatus::Corrected)
        );
        // Corrected before it was ever released: its first release is final.
        let early = [version(1, false), version(2, true)];
        assert_eq!(
            ResultStatus::of(Released, &early),
            Some(ResultStatus::Final)
        );
        // A review signature is not a release; a cancelled run's result stays preliminary.
        let mut reviewed = version(1, true);
        reviewed.signatures[0].meaning = SignatureMeaning::Review;
        assert_eq!(
            ResultStatus::of(AwaitingRelease, &[reviewed]),
            Some(ResultStatus::Preliminary)
        );
        assert_eq!(
            ResultStatus::of(Cancelled, &[version(1, false)]),
            Some(ResultStatus::Preliminary)
        );
    }

    #[test]
    fn a_version_keeps_the_status_it_was_released_with() {
        // What a message sent for each version says, however late it is sent.
        let history = [version(1, true), version(2, true), version(3, false)];
        assert_eq!(
            ResultStatus::as_released(&history[..1]),
            Some(ResultStatus::Final)
        );
        assert_eq!(
            ResultStatus::as_released(&history[..2]),
            Some(ResultStatus::Corrected)
        );
        assert_eq!(ResultStatus::as_released(&history), None);
        assert_eq!(ResultStatus::as_released(&[]), None);
    }
}
