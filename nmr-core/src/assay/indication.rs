//! Cut-offs per indication and the favourable/unfavourable call.
//!
//! The cut-offs are configuration, not code: a TOML text such as
//!
//! ```toml
//! [indications.breast]
//! unfavorable_at_or_above_per_7_5ml = 5.0
//! ```
//!
//! (the binary embeds `config/indications.toml` as its default and lets a file override it). The
//! call is made on the point estimate per 7.5 mL, as CellSearch reports are; a sample whose count
//! is `not_detected` is favourable whatever its estimate. Because a count near the cut-off has an
//! interval that straddles it, the outcome also says whether the 95 % interval spans the cut-off.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::count::{CountCategory, CountEstimate};
use super::error::AssayError;

/// The cut-off of one indication.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cutoff {
    /// Counts per 7.5 mL at or above this are unfavourable.
    pub unfavorable_at_or_above_per_7_5ml: f64,
}

/// All configured indications, by name (`breast`, `prostate`, `colorectal`, …).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Indications {
    /// Cut-off per indication name.
    pub indications: BTreeMap<String, Cutoff>,
}

/// The prognostic call. [`Indications::call`] makes the point-estimate call (favourable or
/// unfavourable, with whether the interval spans the cut-off), which is what a result stores;
/// `Indeterminate` is the call as *reported* when the 95 % interval contains the cut-off, decided
/// by the operations layer (`operations::reported::reported_call`) and never stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Call {
    /// Below the indication's cut-off.
    Favorable,
    /// At or above the indication's cut-off.
    Unfavorable,
    /// The 95 % interval contains the cut-off: neither call can be made (reported only).
    Indeterminate,
}

crate::vocabulary::vocabulary!(Call, "call", "favorable, unfavorable, indeterminate", {
    Favorable => "favorable",
    Unfavorable => "unfavorable",
    Indeterminate => "indeterminate",
});

/// A call with what it was made against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallOutcome {
    /// The indication's name.
    pub indication: String,
    /// The cut-off used, per 7.5 mL.
    pub cutoff_per_7_5ml: f64,
    /// The call.
    pub call: Call,
    /// True when the 95 % interval per 7.5 mL contains the cut-off: the call could go either way.
    pub interval_spans_cutoff: bool,
}

impl Indications {
    /// Parses the TOML configuration; every cut-off must be a positive finite number.
    pub fn from_toml(text: &str) -> Result<Indications, AssayError> {
        let parsed: Indications = toml::from_str(text).map_err(|e| AssayError::Config {
            what: "indications configuration".to_string(),
            reason: e.to_string(),
        })?;
        for (name, cutoff) in &parsed.indications {
            AssayError::check(
                &format!("cut-off of indication `{name}`"),
                cutoff.unfavorable_at_or_above_per_7_5ml,
                true,
            )?;
        }
        Ok(parsed)
    }

    /// The cut-off for `indication`, or an error listing the known ones.
    pub fn cutoff(&self, indication: &str) -> Result<Cutoff, AssayError> {
        self.indications.get(indication).copied().ok_or_else(|| {
            AssayError::UnknownIndication(
                indication.to_string(),
                self.indications
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })
    }

    /// Calls `count` against the cut-off of `indication`.
    pub fn call(&self, indication: &str, count: &CountEstimate) -> Result<CallOutcome, AssayError> {
        let cutoff = self.cutoff(indication)?.unfavorable_at_or_above_per_7_5ml;
        let unfavorable = count.category != CountCategory::NotDetected && count.per_7_5ml >= cutoff;
        Ok(CallOutcome {
            indication: indication.to_string(),
            cutoff_per_7_5ml: cutoff,
            call: if unfavorable {
                Call::Unfavorable
            } else {
                Call::Favorable
            },
            interval_spans_cutoff: count.per_7_5ml_ci95[0] < cutoff
                && cutoff <= count.per_7_5ml_ci95[1],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[indications.breast]
unfavorable_at_or_above_per_7_5ml = 5.0
[indications.colorectal]
unfavorable_at_or_above_per_7_5ml = 3.0
"#;

    fn count(per_7_5ml: f64, category: CountCategory) -> CountEstimate {
        CountEstimate {
            delta_r2_per_s: 0.0,
            delta_r2_per_s_se: 0.0,
            cells: per_7_5ml,
            cells_uncut: per_7_5ml,
            cells_se: 0.0,
            cells_df: f64::INFINITY,
            cells_ci95: [per_7_5ml, per_7_5ml],
            blood_ml: 7.5,
            per_ml: per_7_5ml / 7.5,
            per_ml_ci95: [0.0, 1.0],
            per_7_5ml,
            per_7_5ml_ci95: [per_7_5ml - 2.0, per_7_5ml + 2.0],
            category,
        }
    }

    #[test]
    fn calls_at_the_cutoff_are_unfavorable() {
        let indications = Indications::from_toml(CONFIG).expect("config");
        let at = |n: f64, indication: &str| {
            indications
                .call(indication, &count(n, CountCategory::Quantified))
                .expect("call")
                .call
        };
        assert_eq!(at(5.0, "breast"), Call::Unfavorable);
        assert_eq!(at(4.9, "breast"), Call::Favorable);
        assert_eq!(at(3.0, "colorectal"), Call::Unfavorable);
        assert_eq!(at(2.9, "colorectal"), Call::Favorable);
        let outcome = indications
            .call("breast", &count(4.0, CountCategory::BelowLoq))
            .expect("call");
        assert!(outcome.interval_spans_cutoff);
    }

    #[test]
    fn not_detected_is_favorable_and_unknown_indications_are_errors() {
        let indications = Indications::from_toml(CONFIG).expect("config");
        let outcome = indications
            .call("breast", &count(6.0, CountCategory::NotDetected))
            .expect("call");
        assert_eq!(outcome.call, Call::Favorable);
        let err = indications
            .call("lung", &count(6.0, CountCategory::Quantified))
            .expect_err("unknown");
        assert!(err.to_string().contains("breast, colorectal"), "{err}");
        assert!(
            Indications::from_toml("[indications.x]\nunfavorable_at_or_above_per_7_5ml = -1")
                .is_err()
        );
    }
}
