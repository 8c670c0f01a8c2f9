//! The tubes of a sample run: what each one holds and what it is for.
//!
//! A run measures the patient's processed blood split into tubes: a control tube (no targeted
//! particles), the quad-marker tube (one cocktail of EpCAM, MUC-1, HER-2 and EGFR antibodies: the
//! count comes from it), optionally a non-specific control (CD45 or IgG particles) and single-marker
//! tubes that give a marker profile. This module only names them; statistics live in
//! [`crate::assay::replicate`].

use serde::{Deserialize, Serialize};
use std::fmt;

/// One antibody of the quad-marker cocktail, used alone in a single-marker tube.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Marker {
    /// Epithelial cell adhesion molecule (the CellSearch capture marker).
    Epcam,
    /// Mucin 1.
    Muc1,
    /// Human epidermal growth factor receptor 2.
    Her2,
    /// Epidermal growth factor receptor.
    Egfr,
}

impl Marker {
    /// All four markers, in cocktail order.
    pub const ALL: [Marker; 4] = [Marker::Epcam, Marker::Muc1, Marker::Her2, Marker::Egfr];

    /// The marker's usual written name (`EpCAM`, `MUC-1`, `HER-2`, `EGFR`).
    pub fn label(self) -> &'static str {
        match self {
            Marker::Epcam => "EpCAM",
            Marker::Muc1 => "MUC-1",
            Marker::Her2 => "HER-2",
            Marker::Egfr => "EGFR",
        }
    }
}

/// What a tube holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TubeKind {
    /// Processed blood without targeted particles: the R2 baseline.
    Control,
    /// Labelled with the quad-marker cocktail: the tube the count comes from.
    Quad,
    /// Labelled with CD45 particles (leukocyte marker): a check on non-specific binding.
    Cd45Control,
    /// Labelled with isotype IgG particles: a check on non-specific binding.
    IggControl,
    /// Labelled with one marker of the cocktail.
    Single(Marker),
}

impl TubeKind {
    /// Every kind of tube a run may hold, control and quad first.
    pub const ALL: [TubeKind; 8] = [
        TubeKind::Control,
        TubeKind::Quad,
        TubeKind::Cd45Control,
        TubeKind::IggControl,
        TubeKind::Single(Marker::Epcam),
        TubeKind::Single(Marker::Muc1),
        TubeKind::Single(Marker::Her2),
        TubeKind::Single(Marker::Egfr),
    ];

    /// The short name the database, the API and the command line use (`control`, `quad`,
    /// `cd45`, `igg`, `epcam`, `muc1`, `her2`, `egfr`).
    pub fn as_str(self) -> &'static str {
        match self {
            TubeKind::Control => "control",
            TubeKind::Quad => "quad",
            TubeKind::Cd45Control => "cd45",
            TubeKind::IggControl => "igg",
            TubeKind::Single(Marker::Epcam) => "epcam",
            TubeKind::Single(Marker::Muc1) => "muc1",
            TubeKind::Single(Marker::Her2) => "her2",
            TubeKind::Single(Marker::Egfr) => "egfr",
        }
    }

    /// What the tube is for, in a person's words (a run report's tube list).
    pub fn role(self) -> String {
        match self {
            TubeKind::Control => "control (no particles)".into(),
            TubeKind::Quad => "quad (targeted particles)".into(),
            TubeKind::Cd45Control => "CD45 non-specific control".into(),
            TubeKind::IggControl => "IgG non-specific control".into(),
            TubeKind::Single(_) => format!("{} single-marker tube", self.as_str()),
        }
    }
}

impl std::str::FromStr for TubeKind {
    type Err = crate::vocabulary::UnknownName;

    /// The kind of a short name, the inverse of [`TubeKind::as_str`].
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        crate::vocabulary::parse_name(
            text,
            &Self::ALL,
            Self::as_str,
            "tube",
            "control, quad, cd45, igg, epcam, muc1, her2, egfr",
        )
    }
}

impl fmt::Display for TubeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TubeKind::Control => f.write_str("control tube"),
            TubeKind::Quad => f.write_str("quad-marker tube"),
            TubeKind::Cd45Control => f.write_str("CD45 control tube"),
            TubeKind::IggControl => f.write_str("IgG control tube"),
            TubeKind::Single(marker) => write!(f, "{} tube", marker.label()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_serialize_to_stable_snake_case_names() {
        let text = serde_json::to_string(&[TubeKind::Quad, TubeKind::Single(Marker::Her2)])
            .expect("plain enums serialize");
        assert_eq!(text, r#"["quad",{"single":"her2"}]"#);
        assert_eq!(TubeKind::Single(Marker::Muc1).to_string(), "MUC-1 tube");
    }

    #[test]
    fn short_names_round_trip_and_are_distinct() {
        for kind in TubeKind::ALL {
            assert_eq!(kind.as_str().parse::<TubeKind>(), Ok(kind));
        }
        let mut names: Vec<_> = TubeKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TubeKind::ALL.len());
        let error = "plasma".parse::<TubeKind>().unwrap_err().to_string();
        assert!(
            error.contains("plasma") && error.contains("cd45"),
            "{error}"
        );
    }
}
