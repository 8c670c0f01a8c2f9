//! Instants as the database stores them: RFC 3339 text in UTC, with microsecond precision.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// An instant in UTC. Stored and serialised as RFC 3339 text (`2026-11-24T03:41:07.123456Z`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    /// The current time, truncated to whole microseconds so that it survives a text round trip.
    pub fn now() -> Self {
        Self::from_datetime(OffsetDateTime::now_utc())
    }

    /// Converts any offset to UTC and truncates to whole microseconds.
    pub fn from_datetime(datetime: OffsetDateTime) -> Self {
        let utc = datetime.to_offset(time::UtcOffset::UTC);
        let micros_ns = utc.nanosecond() / 1_000 * 1_000;
        // `replace_nanosecond` only fails above 999_999_999, and we only lowered the value.
        let truncated = utc
            .replace_nanosecond(micros_ns)
            .expect("a truncated nanosecond count stays in range");
        Self(truncated)
    }

    /// Parses RFC 3339 text with any offset.
    pub fn parse(text: &str) -> Result<Self, time::error::Parse> {
        OffsetDateTime::parse(text, &Rfc3339).map(Self::from_datetime)
    }

    /// RFC 3339 text in UTC (`Z`).
    pub fn to_rfc3339(&self) -> String {
        // Formatting a UTC instant between years 0 and 9999 as RFC 3339 cannot fail; instants come
        // from the clock or from parsed RFC 3339 text, which are both in that range.
        self.0
            .format(&Rfc3339)
            .expect("a UTC instant within years 0..=9999 formats as RFC 3339")
    }

    /// The instant as a `time` value (UTC).
    pub fn datetime(&self) -> OffsetDateTime {
        self.0
    }

    /// This instant moved by `duration`, held within years 1 to 9999 (RFC 3339's range).
    pub fn plus(&self, duration: time::Duration) -> Self {
        let limit = |year: i32, end: bool| {
            let date = time::Date::from_calendar_date(year, time::Month::January, 1)
                .expect("1 January of years 1 and 9999 exists");
            let date = if end {
                time::Date::from_calendar_date(year, time::Month::December, 31)
                    .expect("31 December of year 9999 exists")
            } else {
                date
            };
            date.with_hms(0, 0, 0)
                .expect("midnight exists")
                .assume_utc()
        };
        let moved = self
            .0
            .checked_add(duration)
            .unwrap_or(if duration.is_negative() {
                limit(1, false)
            } else {
                limit(9999, true)
            });
        Self::from_datetime(moved.clamp(limit(1, false), limit(9999, true)))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Parses a stored timestamp column, naming the row when it is unreadable.
pub(crate) fn stored(
    text: &str,
    what: &'static str,
    row: i64,
) -> Result<Timestamp, super::StoreError> {
    Timestamp::parse(text).map_err(|error| super::StoreError::Corrupt {
        what,
        row,
        reason: format!("{text:?} is not RFC 3339: {error}"),
    })
}

/// Parses an optional stored timestamp column.
pub(crate) fn stored_opt(
    text: Option<&str>,
    what: &'static str,
    row: i64,
) -> Result<Option<Timestamp>, super::StoreError> {
    text.map(|text| stored(text, what, row)).transpose()
}

/// A timestamp is served as RFC 3339 text in UTC.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::DateTime,
            )))
            .description(Some("RFC 3339, UTC"))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_offsets_become_utc() {
        let t = Timestamp::parse("2026-03-01T10:00:00+02:00").expect("valid RFC 3339");
        assert_eq!(t.to_rfc3339(), "2026-03-01T08:00:00Z");
    }

    #[test]
    fn now_survives_a_text_round_trip() {
        let now = Timestamp::now();
        assert_eq!(
            Timestamp::parse(&now.to_rfc3339()).expect("own output parses"),
            now
        );
    }

    #[test]
    fn huge_moves_stay_within_rfc_3339() {
        let now = Timestamp::now();
        assert_eq!(
            now.plus(time::Duration::MAX).to_rfc3339(),
            "9999-12-31T00:00:00Z"
        );
        assert_eq!(
            now.plus(time::Duration::MIN).to_rfc3339(),
            "0001-01-01T00:00:00Z"
        );
        let later = now.plus(time::Duration::minutes(15));
        assert_eq!(
            later.datetime() - now.datetime(),
            time::Duration::minutes(15)
        );
    }

    #[test]
    fn garbage_is_refused() {
        assert!(Timestamp::parse("yesterday").is_err());
        assert!(Timestamp::parse("2026-13-01T00:00:00Z").is_err());
    }
}
