//! The level of a control material: the assay's QC runs a negative and a positive control, and a
//! patient run is gated on passing QC at both (issue 11; the gate itself lives in the
//! operations layer).

use serde::{Deserialize, Serialize};

/// A control material's level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ControlLevel {
    /// No target cells (blood or buffer without spiked cells): shows the background and the
    /// limit of blank.
    Negative,
    /// Spiked cells above the clinical cut-off: shows the assay finds them.
    Positive,
}

crate::vocabulary::vocabulary!(ControlLevel, "control level", "negative, positive", {
    Negative => "negative",
    Positive => "positive",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_read_back_from_their_words() {
        for level in ControlLevel::ALL {
            assert_eq!(level.as_str().parse::<ControlLevel>(), Ok(*level));
        }
        assert!("low".parse::<ControlLevel>().is_err());
    }
}
