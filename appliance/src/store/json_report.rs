//! Reports whose Rust types live in other parts (fit reports, QC flags, procedure reports, count
//! estimates), kept as JSON text.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;

/// A JSON document made from a typed report, and read back into one.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct JsonReport(serde_json::Value);

impl JsonReport {
    /// Serialises a report.
    pub fn of<T: Serialize + ?Sized>(report: &T) -> Result<Self, StoreError> {
        serde_json::to_value(report)
            .map(Self)
            .map_err(|error| StoreError::Invalid {
                field: "report",
                reason: format!("cannot be written as JSON: {error}"),
            })
    }

    /// Wraps a JSON value as it is.
    pub fn from_value(value: serde_json::Value) -> Self {
        Self(value)
    }

    /// The empty list, e.g. no QC flags.
    pub fn empty_list() -> Self {
        Self(serde_json::Value::Array(Vec::new()))
    }

    /// The empty object.
    pub fn empty_object() -> Self {
        Self(serde_json::Value::Object(serde_json::Map::new()))
    }

    /// The JSON value.
    pub fn value(&self) -> &serde_json::Value {
        &self.0
    }

    /// Reads the report back as `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.0)
    }

    /// The text stored in the database.
    pub(crate) fn to_text(&self) -> String {
        self.0.to_string()
    }

    /// Parses a stored column, naming the row when it is unreadable.
    pub(crate) fn stored(text: &str, what: &'static str, row: i64) -> Result<Self, StoreError> {
        serde_json::from_str(text)
            .map(Self)
            .map_err(|error| StoreError::Corrupt {
                what,
                row,
                reason: format!("not JSON: {error}"),
            })
    }
}

/// A JSON document is any JSON value (its shape is its producer's).
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for JsonReport {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        // No `type`: the empty schema, which any JSON value satisfies (an empty `anyOf` would
        // allow none).
        utoipa::openapi::schema::Schema::Object(
            utoipa::openapi::schema::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::SchemaType::AnyValue)
                .description(Some("Any JSON value: the record's own detail"))
                .build(),
        )
        .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for JsonReport {}
