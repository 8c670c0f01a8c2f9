//! The site: who runs this appliance, where, and by which local rules — the `[site]` and `[qc]`
//! sections of the configuration.
//!
//! What it is for: the site's time zone (an IANA name; the tz database is compiled into the
//! binary by `jiff`, nothing is read from the host or downloaded), the laboratory's name and
//! address and the instrument's identity printed on report headers (and sent to the hospital's
//! systems), the paper size of printed reports, whether a patient's name or initials are kept
//! (minimum necessary: neither by default), and the QC policy that gates patient runs.
//!
//! What it is not for: the rules themselves. The QC gate is enforced in the operations layer; this
//! module only says which policy the site chose. Stored times stay UTC; the zone is for showing
//! and for reading what people type.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::store::Timestamp;

/// The `[site]` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SiteConfig {
    /// The site's time zone, an IANA name (`time_zone = "Europe/Berlin"`).
    pub time_zone: SiteTimeZone,
    /// The laboratory's name, on report headers.
    pub lab_name: String,
    /// The laboratory's address (one line, or lines separated by `\n`), on report headers.
    pub lab_address: String,
    /// The instrument's serial number (its name is `[http] instrument_name`).
    pub instrument_serial: String,
    /// Paper size of printed reports.
    pub paper_size: PaperSize,
    /// What is kept of a patient besides the MRN and the date of birth.
    pub patient_name: PatientNamePolicy,
}

impl Default for SiteConfig {
    fn default() -> Self {
        Self {
            time_zone: SiteTimeZone::utc(),
            lab_name: "Laboratory (set [site] lab_name)".to_owned(),
            lab_address: String::new(),
            instrument_serial: "unset".to_owned(),
            paper_size: PaperSize::A4,
            patient_name: PatientNamePolicy::None,
        }
    }
}

/// The site's time zone: an IANA name resolved against the compiled-in tz database.
#[derive(Clone, Debug, PartialEq)]
pub struct SiteTimeZone {
    name: String,
    zone: jiff::tz::TimeZone,
}

impl SiteTimeZone {
    /// UTC (the default until a site says otherwise).
    pub fn utc() -> Self {
        Self {
            name: "UTC".to_owned(),
            zone: jiff::tz::TimeZone::UTC,
        }
    }

    /// The IANA name as configured.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The zone.
    pub fn zone(&self) -> &jiff::tz::TimeZone {
        &self.zone
    }

    /// The site's calendar day holding `at`: its local midnight and the next, as instants (23,
    /// 24 or 25 hours apart across a DST change).
    pub fn day_of(&self, at: Timestamp) -> Result<(Timestamp, Timestamp), SiteError> {
        let zoned = self.zoned(at)?;
        let start = zoned.start_of_day().map_err(SiteError::time)?;
        let next = zoned
            .date()
            .tomorrow()
            .and_then(|day| day.to_zoned(self.zone.clone()))
            .map_err(SiteError::time)?;
        Ok((instant(&start)?, instant(&next)?))
    }

    /// The site's calendar date holding `at`.
    pub fn date_of(&self, at: Timestamp) -> Result<time::Date, SiteError> {
        let date = self.zoned(at)?.date();
        let month = time::Month::try_from(u8::try_from(date.month()).unwrap_or(0))
            .map_err(|e| SiteError::Time(e.to_string()))?;
        time::Date::from_calendar_date(i32::from(date.year()), month, date.day().unsigned_abs())
            .map_err(|e| SiteError::Time(e.to_string()))
    }

    /// The site's calendar days `first` to `last` (both included) as instants: the local
    /// midnight starting `first` and the one ending `last`.
    pub fn days(
        &self,
        first: time::Date,
        last: time::Date,
    ) -> Result<(Timestamp, Timestamp), SiteError> {
        let civil = |date: time::Date| {
            jiff::civil::Date::new(
                i16::try_from(date.year()).map_err(|e| SiteError::Time(e.to_string()))?,
                i8::try_from(u8::from(date.month())).map_err(|e| SiteError::Time(e.to_string()))?,
                i8::try_from(date.day()).map_err(|e| SiteError::Time(e.to_string()))?,
            )
            .map_err(SiteError::time)
        };
        let start = civil(first)?
            .to_zoned(self.zone.clone())
            .and_then(|zoned| zoned.start_of_day())
            .map_err(SiteError::time)?;
        let end = civil(last)?
            .tomorrow()
            .and_then(|day| day.to_zoned(self.zone.clone()))
            .and_then(|zoned| zoned.start_of_day())
            .map_err(SiteError::time)?;
        Ok((instant(&start)?, instant(&end)?))
    }

    /// `at` in local time with the zone's abbreviation: `2026-12-02 09:12 CET`.
    pub fn local_text(&self, at: Timestamp) -> String {
        match self.zoned(at) {
            Ok(zoned) => zoned.strftime("%Y-%m-%d %H:%M %Z").to_string(),
            Err(_) => at.to_rfc3339(),
        }
    }

    /// `at` as the pages and reports show it: `Wed 2 Dec 2026, 09:12 CET` (one format on every
    /// page; the zone's abbreviation, or its offset where it has none).
    pub fn display(&self, at: Timestamp) -> String {
        match self.zoned(at) {
            Ok(zoned) => zoned.strftime("%a %-d %b %Y, %H:%M %Z").to_string(),
            Err(_) => at.to_rfc3339(),
        }
    }

    /// `at` in local time, short enough for a chart's axis: `2 Dec 09:12` (the page names the
    /// zone beside the chart).
    pub fn chart_text(&self, at: Timestamp) -> String {
        match self.zoned(at) {
            Ok(zoned) => zoned.strftime("%-d %b %H:%M").to_string(),
            Err(_) => at.to_rfc3339(),
        }
    }

    /// `at` in local time for a `datetime-local` field: `2026-12-02T09:12`.
    pub fn field_text(&self, at: Timestamp) -> String {
        match self.zoned(at) {
            Ok(zoned) => zoned.strftime("%Y-%m-%dT%H:%M").to_string(),
            Err(_) => at.to_rfc3339(),
        }
    }

    /// `at` in RFC 3339 with the site's offset: `2026-12-02T09:12:00+01:00` (what CSV and JSON
    /// exports carry: the instant, and the local time it was).
    pub fn rfc3339(&self, at: Timestamp) -> String {
        match self.zoned(at) {
            Ok(zoned) => zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
            Err(_) => at.to_rfc3339(),
        }
    }

    /// Resolves a wall-clock time typed at the site (`2026-03-29T02:30`, seconds optional)
    /// against the zone's rules: the one instant it names, or the gap or fold it falls in. It
    /// never guesses: what to do with a gap or a fold is the caller's rule.
    pub fn resolve_local(&self, text: &str) -> Result<LocalTime, SiteError> {
        let civil: jiff::civil::DateTime = text
            .trim()
            .parse()
            .map_err(|_| SiteError::Time(format!("{text:?} is not a local date and time")))?;
        let ambiguous = self.zone.to_ambiguous_timestamp(civil);
        let at = |offset: jiff::tz::Offset| -> Result<Timestamp, SiteError> {
            let instant = offset.to_timestamp(civil).map_err(SiteError::time)?;
            time::OffsetDateTime::from_unix_timestamp_nanos(instant.as_nanosecond())
                .map(Timestamp::from_datetime)
                .map_err(|e| SiteError::Time(e.to_string()))
        };
        Ok(match ambiguous.offset() {
            jiff::tz::AmbiguousOffset::Unambiguous { offset } => LocalTime::Unique(at(offset)?),
            jiff::tz::AmbiguousOffset::Gap { before, after } => LocalTime::Gap {
                before: offset_text(before),
                after: offset_text(after),
            },
            jiff::tz::AmbiguousOffset::Fold { before, after } => LocalTime::Fold {
                earlier: at(before)?,
                later: at(after)?,
                earlier_offset: offset_text(before),
                later_offset: offset_text(after),
            },
        })
    }

    fn zoned(&self, at: Timestamp) -> Result<jiff::Zoned, SiteError> {
        let unix = at.datetime().unix_timestamp_nanos();
        let instant = jiff::Timestamp::from_nanosecond(unix).map_err(SiteError::time)?;
        Ok(instant.to_zoned(self.zone.clone()))
    }
}

/// A wall-clock time typed at the site, resolved against its zone's rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalTime {
    /// The one instant it names.
    Unique(Timestamp),
    /// It never happened: the clocks went forward over it (from offset `before` to `after`).
    Gap {
        /// The offset before the change (`+01:00`).
        before: String,
        /// The offset after it (`+02:00`).
        after: String,
    },
    /// It happened twice: the clocks went back over it.
    Fold {
        /// The first time it happened.
        earlier: Timestamp,
        /// The second time.
        later: Timestamp,
        /// The offset of the first (`+02:00`).
        earlier_offset: String,
        /// The offset of the second (`+01:00`).
        later_offset: String,
    },
}

/// An offset as RFC 3339 writes it: `+01:00`.
fn offset_text(offset: jiff::tz::Offset) -> String {
    let seconds = offset.seconds();
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.unsigned_abs() / 60;
    format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}

/// A jiff instant as the store's timestamp.
fn instant(zoned: &jiff::Zoned) -> Result<Timestamp, SiteError> {
    let nanos = zoned.timestamp().as_nanosecond();
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map(Timestamp::from_datetime)
        .map_err(|e| SiteError::Time(e.to_string()))
}

impl FromStr for SiteTimeZone {
    type Err = SiteError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let name = name.trim();
        let zone = jiff::tz::db()
            .get(name)
            .map_err(|_| SiteError::UnknownTimeZone(name.to_owned()))?;
        Ok(Self {
            name: name.to_owned(),
            zone,
        })
    }
}

impl fmt::Display for SiteTimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl Serialize for SiteTimeZone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

impl<'de> Deserialize<'de> for SiteTimeZone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Paper size of printed reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaperSize {
    /// ISO A4, 210 × 297 mm.
    A4,
    /// US Letter, 8.5 × 11 in.
    Letter,
}

impl PaperSize {
    /// Width and height in millimetres.
    pub fn size_mm(self) -> (f32, f32) {
        match self {
            PaperSize::A4 => (210.0, 297.0),
            PaperSize::Letter => (215.9, 279.4),
        }
    }
}

/// What the appliance keeps of a patient besides the two identifiers (minimum necessary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatientNamePolicy {
    /// Neither name nor initials (the default).
    None,
    /// Initials (asked when a patient is registered).
    Initials,
    /// The full name (asked when a patient is registered).
    Name,
}

/// The `[qc]` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QcConfig {
    /// How QC gates patient runs.
    pub policy: QcPolicy,
}

/// How QC gates a patient run (issue 11 point 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QcPolicy {
    /// A patient run needs passing QC today (the site's calendar day) for its reagent lot at both
    /// control levels (negative and positive); without it the run does not start.
    #[default]
    RequirePassing,
    /// The run starts, and its result carries a QC hold that blocks release until QC passes.
    RunButHold,
}

/// A site setting that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SiteError {
    /// Not a zone of the tz database.
    #[error(
        "time_zone {0:?} is not an IANA time zone name (e.g. \"Europe/Berlin\", \"America/New_York\", \"UTC\")"
    )]
    UnknownTimeZone(String),
    /// A time outside what the calendar can hold.
    #[error("a time the site's calendar cannot hold: {0}")]
    Time(String),
}

impl SiteError {
    fn time(error: jiff::Error) -> Self {
        SiteError::Time(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_days_are_local_midnights_across_a_dst_change() {
        let berlin: SiteTimeZone = "Europe/Berlin".parse().unwrap();
        let date = |text: &str| {
            time::Date::parse(
                text,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .unwrap()
        };
        // 29 March 2026 has 23 hours in Berlin (CET → CEST).
        let (start, end) = berlin.days(date("2026-03-28"), date("2026-03-29")).unwrap();
        assert_eq!(start.to_rfc3339(), "2026-03-27T23:00:00Z");
        assert_eq!(end.to_rfc3339(), "2026-03-29T22:00:00Z");
        // 23:30 UTC on the 28th is already the 29th in Berlin.
        let late = Timestamp::parse("2026-03-28T23:30:00Z").unwrap();
        assert_eq!(berlin.date_of(late).unwrap(), date("2026-03-29"));
        assert_eq!(
            SiteTimeZone::utc().date_of(late).unwrap(),
            date("2026-03-28")
        );
    }

    #[test]
    fn local_times_resolve_across_the_dst_changes_without_guessing() {
        let berlin: SiteTimeZone = "Europe/Berlin".parse().unwrap();
        let unique = |text: &str| match berlin.resolve_local(text).unwrap() {
            LocalTime::Unique(at) => at.to_rfc3339(),
            other => panic!("{text} is not unique: {other:?}"),
        };
        // Winter (+01:00) and summer (+02:00) on either side of the spring change.
        assert_eq!(unique("2026-03-29T01:30"), "2026-03-29T00:30:00Z");
        assert_eq!(unique("2026-03-29T03:30"), "2026-03-29T01:30:00Z");
        // 02:30 on 29 March 2026 never happened in Berlin.
        assert_eq!(
            berlin.resolve_local("2026-03-29T02:30").unwrap(),
            LocalTime::Gap {
                before: "+01:00".into(),
                after: "+02:00".into()
            }
        );
        // 02:30 on 25 October 2026 happened twice.
        match berlin.resolve_local("2026-10-25T02:30:00").unwrap() {
            LocalTime::Fold { earlier, later, .. } => {
                assert_eq!(earlier.to_rfc3339(), "2026-10-25T00:30:00Z");
                assert_eq!(later.to_rfc3339(), "2026-10-25T01:30:00Z");
            }
            other => panic!("not a fold: {other:?}"),
        }
        assert!(berlin.resolve_local("25.10.2026 02:30").is_err());
        // Shown back in local time with the zone, one format.
        let at = Timestamp::parse("2026-12-02T08:12:00Z").unwrap();
        assert_eq!(berlin.display(at), "Wed 2 Dec 2026, 09:12 CET");
        assert_eq!(berlin.field_text(at), "2026-12-02T09:12");
        assert_eq!(berlin.rfc3339(at), "2026-12-02T09:12:00+01:00");
    }

    #[test]
    fn iana_names_resolve_from_the_compiled_in_database() {
        let berlin: SiteTimeZone = "Europe/Berlin".parse().unwrap();
        assert_eq!(berlin.name(), "Europe/Berlin");
        // 2026-07-01T12:00Z is 14:00 in Berlin (CEST, +02:00): the zone knows its rules.
        let noon = jiff::Timestamp::from_second(1_782_907_200).unwrap();
        assert_eq!(
            berlin.zone().to_offset(noon),
            jiff::tz::Offset::from_hours(2).unwrap()
        );
        let refused = "Europe/Bonn".parse::<SiteTimeZone>();
        assert_eq!(
            refused,
            Err(SiteError::UnknownTimeZone("Europe/Bonn".into()))
        );
        assert!(refused.unwrap_err().to_string().contains("IANA"));
    }

    #[test]
    fn the_sites_day_runs_from_local_midnight_to_the_next_across_a_dst_change() {
        let berlin: SiteTimeZone = "Europe/Berlin".parse().unwrap();
        // 2026-03-29 is the spring change in Berlin (02:00 CET → 03:00 CEST): a 23-hour day
        // from 2026-03-28T23:00Z to 2026-03-29T22:00Z.
        let noon = Timestamp::parse("2026-03-29T10:00:00Z").unwrap();
        let (start, end) = berlin.day_of(noon).unwrap();
        assert_eq!(start.to_rfc3339(), "2026-03-28T23:00:00Z");
        assert_eq!(end.to_rfc3339(), "2026-03-29T22:00:00Z");
        // 00:30 local on the 29th is still that day; 23:30Z on the 28th too.
        let late = Timestamp::parse("2026-03-28T23:30:00Z").unwrap();
        assert_eq!(berlin.day_of(late).unwrap().0, start);
        assert_eq!(berlin.local_text(noon), "2026-03-29 12:00 CEST");
        let utc = SiteTimeZone::utc();
        let (start, end) = utc.day_of(noon).unwrap();
        assert_eq!(
            (start.to_rfc3339().as_str(), end.to_rfc3339().as_str()),
            ("2026-03-29T00:00:00Z", "2026-03-30T00:00:00Z")
        );
    }
}
