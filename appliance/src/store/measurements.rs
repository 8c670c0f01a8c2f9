//! Measurements: one CPMG echo train of one tube in one run, with what was made of it.
//!
//! Each row keeps the raw train (lossless, compressed by [`train_codec`](super::train_codec)),
//! its acquisition metadata (JSON of `nmr_core::Acquisition`), the fit report and the QC flags
//! (JSON of `nmr_core` types), so that every reported number can be recomputed. A measurement is
//! committed as soon as it is measured, and is never updated or deleted (SQLite triggers refuse
//! it). The audit entry of each measurement carries the SHA-256 of the stored train, which ties the
//! raw data into the hash chain.

use nmr_core::fit::MonoFit;
use nmr_core::qc::QcFlag;
use nmr_core::{Acquisition, EchoTrain, Signal};
use serde::{Deserialize, Serialize};

use crate::procedures::CpmgReport;

use super::audit::append;
use super::digest::sha256_hex;
use super::error::{SqlxResultExt, found};
use super::runs::{RunState, run_in};
use super::timestamp::stored;
use super::train_codec::{self, CODEC_NAME, SignalColumns};
use super::{
    Actor, AuditEntry, JsonReport, MeasurementId, RunId, Store, StoreError, Timestamp, TubeId, db,
};

/// Encodes a train's times and signal (not its acquisition metadata) with the stored codec.
pub fn encode_train(train: &EchoTrain) -> Result<Vec<u8>, train_codec::CodecError> {
    let signal = match train.signal() {
        Signal::Complex { re, im } => SignalColumns::Complex { re, im },
        Signal::Magnitude(magnitude) => SignalColumns::Magnitude(magnitude),
        Signal::Real(real) => SignalColumns::Real(real),
    };
    train_codec::encode(train.times_s(), signal)
}

/// Decodes a stored train and gives it back its acquisition metadata. `row` names the
/// measurement in errors.
pub fn decode_train(
    blob: &[u8],
    acquisition: Acquisition,
    row: i64,
) -> Result<EchoTrain, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        what: "echo train",
        row,
        reason,
    };
    let decoded = train_codec::decode(blob).map_err(|error| corrupt(error.to_string()))?;
    let train = match decoded.signal {
        train_codec::DecodedSignal::Complex { re, im } => {
            EchoTrain::complex(decoded.times_s, re, im)
        }
        train_codec::DecodedSignal::Magnitude(magnitude) => {
            EchoTrain::magnitude(decoded.times_s, magnitude)
        }
        train_codec::DecodedSignal::Real(real) => EchoTrain::real(decoded.times_s, real),
    }
    .map_err(|error| corrupt(error.to_string()))?;
    Ok(train.with_acquisition(acquisition))
}

/// A measurement to store.
#[derive(Clone, Debug)]
pub struct NewMeasurement<'a> {
    /// The run (must be `running`).
    pub run_id: RunId,
    /// The tube (must belong to the run's sample).
    pub tube_id: TubeId,
    /// Replicate number, from 1.
    pub replicate: u32,
    /// When the train was acquired.
    pub measured_at: Timestamp,
    /// The raw train, with its acquisition metadata.
    pub train: &'a EchoTrain,
    /// The fit and its acquisition record, if fitted.
    pub fit_report: Option<MeasurementFit>,
    /// The QC flags raised on it.
    pub qc_flags: Vec<QcFlag>,
    /// The train's T2 distribution, computed when it was measured (stored in the same
    /// transaction).
    pub t2_distribution: Option<T2Distribution>,
}

/// A measurement's T2 distribution as stored: the regularised NNLS inversion of its train
/// (`nmr_core::fit::fit_spectrum`, default options), computed once — by the engine when the
/// train is measured, or for a measurement stored before `migrations/0003` the first time its
/// run is viewed — and never on a page view. Decoded once, here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum T2Distribution {
    /// The distribution.
    Computed {
        /// Bin centres, log-spaced, ascending, ms.
        t2_bins_ms: Vec<f64>,
        /// Non-negative amplitude per bin, in signal units.
        amplitudes: Vec<f64>,
        /// Amplitude-weighted geometric mean T2, ms (`None` when there is no amplitude).
        t2_logmean_ms: Option<f64>,
        /// The regularisation weight the inversion chose.
        alpha: f64,
        /// Whether the non-negative solve met its optimality conditions.
        converged: bool,
    },
    /// Why the train has no distribution.
    Failed {
        /// The inversion's error.
        reason: String,
    },
}

/// What is stored as a measurement's fit: the mono-exponential fit or why it failed, the mono-
/// versus bi-exponential comparison, and the CPMG procedure's record. Decoded once, here; a stored
/// fit that does not decode is a named error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeasurementFit {
    /// The fit of the train.
    pub fit: StoredFit,
    /// How the train was acquired.
    pub cpmg: CpmgReport,
}

/// A reading's fit as stored (new fields may be added; old records decode with their default).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredFit {
    /// The fit, or the fit error.
    #[serde(flatten)]
    pub outcome: FitOutcome,
    /// Whether two exponentials describe the decay better (`None`: not compared).
    #[serde(default)]
    pub biexponential_preferred: Option<bool>,
    /// Fitted signal at the first echo, A·e^(−t₁/T2) + C.
    #[serde(default)]
    pub first_echo_amplitude: Option<f64>,
    /// The fit of T2 with the refocusing angle, when it was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stimulated_echoes: Option<nmr_core::fit::EpgFit>,
    /// Which model's T2 the reading uses (older records: the exponential).
    #[serde(default = "exponential")]
    pub t2_model: nmr_core::fit::T2Model,
    /// Why that model.
    #[serde(default)]
    pub t2_model_reason: String,
}

fn exponential() -> nmr_core::fit::T2Model {
    nmr_core::fit::T2Model::Exponential
}

/// A fit or why there is none.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
// A fit report is decoded once per stored measurement; boxing the common variant would only add an
// allocation to every read.
#[allow(clippy::large_enum_variant)]
pub enum FitOutcome {
    /// The mono-exponential fit.
    Mono(MonoFit),
    /// Why the train could not be fitted.
    Error(String),
}

impl StoredFit {
    /// The fit, when there is one.
    pub fn mono(&self) -> Option<&MonoFit> {
        match &self.outcome {
            FitOutcome::Mono(fit) => Some(fit),
            FitOutcome::Error(_) => None,
        }
    }
}

/// A stored measurement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Measurement {
    /// Row id.
    pub id: MeasurementId,
    /// The run.
    pub run_id: RunId,
    /// The tube.
    pub tube_id: TubeId,
    /// Replicate number.
    pub replicate: u32,
    /// When it was acquired.
    pub measured_at: Timestamp,
    /// The raw train, bit for bit as stored, with its acquisition metadata.
    pub train: EchoTrain,
    /// The fit report.
    pub fit_report: Option<MeasurementFit>,
    /// The QC flags.
    pub qc_flags: Vec<QcFlag>,
    /// The train's T2 distribution (`None`: stored before distributions were kept, and not
    /// viewed since).
    pub t2_distribution: Option<T2Distribution>,
    /// Size of the compressed train in the database, bytes.
    pub stored_train_bytes: usize,
}

impl Store {
    /// Stores a measurement as soon as it is measured (its own committed transaction).
    pub async fn add_measurement(
        &self,
        actor: &Actor,
        new: &NewMeasurement<'_>,
    ) -> Result<MeasurementId, StoreError> {
        if new.replicate == 0 {
            return Err(StoreError::Invalid {
                field: "replicate",
                reason: "replicates are numbered from 1".into(),
            });
        }
        let blob = encode_train(new.train).map_err(|error| StoreError::Invalid {
            field: "echo train",
            reason: error.to_string(),
        })?;
        let blob_sha256 = sha256_hex(&blob);
        let acquisition = JsonReport::of(new.train.acquisition())?.to_text();
        let fit = new
            .fit_report
            .as_ref()
            .map(JsonReport::of)
            .transpose()?
            .map(|report| report.to_text());
        let flags = JsonReport::of(&new.qc_flags)?.to_text();
        let distribution = new
            .t2_distribution
            .as_ref()
            .map(JsonReport::of)
            .transpose()?
            .map(|report| report.to_text());
        let measured_at = new.measured_at.to_rfc3339();
        let replicate = i64::from(new.replicate);
        let echoes = i64::try_from(new.train.len()).map_err(|_| StoreError::Invalid {
            field: "echo train",
            reason: "too many echoes".into(),
        })?;
        let mut tx = db::begin_write(&self.pool).await?;
        let run = run_in(&mut tx, new.run_id).await?;
        if run.state != RunState::Running {
            return Err(StoreError::Conflict(format!(
                "run {} is {}, not running: it cannot take measurements",
                new.run_id, run.state
            )));
        }
        let tube = sqlx::query!(
            "SELECT sample_id, kind FROM sample_tubes WHERE id = ?",
            new.tube_id.0
        )
        .fetch_optional(&mut *tx)
        .await
        .context("checking a measurement's tube")?;
        let tube = found(tube, "tube", new.tube_id)?;
        if tube.sample_id != run.sample_id.0 {
            return Err(StoreError::Invalid {
                field: "tube",
                reason: format!(
                    "tube {} belongs to sample {}, not to run {}'s sample {}",
                    new.tube_id, tube.sample_id, new.run_id, run.sample_id
                ),
            });
        }
        let id = sqlx::query_scalar!(
            r#"INSERT INTO measurements (run_id, tube_id, replicate, measured_at, echo_count,
                                         train_codec, train, acquisition_json, fit_json,
                                         qc_flags_json)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id AS "id!""#,
            new.run_id.0,
            new.tube_id.0,
            replicate,
            measured_at,
            echoes,
            CODEC_NAME,
            blob,
            acquisition,
            fit,
            flags,
        )
        .fetch_one(&mut *tx)
        .await
        .unique(
            "storing a measurement",
            "measurement",
            &format!(
                "run {} tube {} replicate {}",
                new.run_id, new.tube_id, new.replicate
            ),
        )?;
        append(
            &mut tx,
            actor,
            AuditEntry::new("measurement.add", "measurement")
                .id(id)
                .detail(serde_json::json!({
                    "run_id": new.run_id, "tube_id": new.tube_id, "tube_kind": tube.kind,
                    "replicate": new.replicate, "echoes": echoes, "codec": CODEC_NAME,
                    "train_sha256": blob_sha256, "stored_bytes": blob.len(),
                    "t2_distribution": distribution.is_some(),
                })),
        )
        .await?;
        if let Some(distribution) = &distribution {
            sqlx::query!(
                "INSERT INTO t2_distributions (measurement_id, distribution_json, computed_at)
                 VALUES (?, ?, ?)",
                id,
                distribution,
                measured_at
            )
            .execute(&mut *tx)
            .await
            .context("storing a measurement's T2 distribution")?;
        }
        tx.commit().await.context("committing a measurement")?;
        Ok(MeasurementId(id))
    }

    /// A run's measurements with their trains, in the order they were measured.
    pub async fn run_measurements(&self, run_id: RunId) -> Result<Vec<Measurement>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT m.id, m.run_id, m.tube_id, m.replicate, m.measured_at, m.train_codec,
                      m.train, m.acquisition_json, m.fit_json, m.qc_flags_json,
                      d.distribution_json AS "distribution_json?"
               FROM measurements m
               LEFT JOIN t2_distributions d ON d.measurement_id = m.id
               WHERE m.run_id = ? ORDER BY m.id"#,
            run_id.0
        )
        .fetch_all(&self.pool)
        .await
        .context("reading a run's measurements")?;
        rows.into_iter()
            .map(|r| {
                if r.train_codec != CODEC_NAME {
                    return Err(StoreError::Corrupt {
                        what: "echo train codec",
                        row: r.id,
                        reason: format!("unknown codec {:?}", r.train_codec),
                    });
                }
                let acquisition: Acquisition =
                    serde_json::from_str(&r.acquisition_json).map_err(|error| {
                        StoreError::Corrupt {
                            what: "acquisition metadata",
                            row: r.id,
                            reason: error.to_string(),
                        }
                    })?;
                Ok(Measurement {
                    id: MeasurementId(r.id),
                    run_id: RunId(r.run_id),
                    tube_id: TubeId(r.tube_id),
                    replicate: u32::try_from(r.replicate).map_err(|_| StoreError::Corrupt {
                        what: "replicate",
                        row: r.id,
                        reason: r.replicate.to_string(),
                    })?,
                    measured_at: stored(&r.measured_at, "measurement time", r.id)?,
                    stored_train_bytes: r.train.len(),
                    train: decode_train(&r.train, acquisition, r.id)?,
                    fit_report: r
                        .fit_json
                        .as_deref()
                        .map(|text| decode_stored(text, "fit report", r.id))
                        .transpose()?,
                    qc_flags: decode_stored(&r.qc_flags_json, "QC flags", r.id)?,
                    t2_distribution: r
                        .distribution_json
                        .as_deref()
                        .map(|text| decode_stored(text, "T2 distribution", r.id))
                        .transpose()?,
                })
            })
            .collect()
    }

    /// Stores the T2 distribution of a measurement that has none (one stored before
    /// distributions were kept), computed from its stored train, and audits it. A distribution
    /// already there is kept as it is (two viewers may compute it at once): `false` then.
    pub async fn add_t2_distribution(
        &self,
        actor: &Actor,
        measurement_id: MeasurementId,
        distribution: &T2Distribution,
    ) -> Result<bool, StoreError> {
        let text = JsonReport::of(distribution)?.to_text();
        let now = Timestamp::now().to_rfc3339();
        let mut tx = db::begin_write(&self.pool).await?;
        let exists =
            sqlx::query_scalar!("SELECT id FROM measurements WHERE id = ?", measurement_id.0)
                .fetch_optional(&mut *tx)
                .await
                .context("looking up a measurement")?;
        found(exists, "measurement", measurement_id)?;
        let inserted = sqlx::query!(
            "INSERT INTO t2_distributions (measurement_id, distribution_json, computed_at)
             VALUES (?, ?, ?) ON CONFLICT (measurement_id) DO NOTHING",
            measurement_id.0,
            text,
            now
        )
        .execute(&mut *tx)
        .await
        .context("storing a T2 distribution")?
        .rows_affected()
            == 1;
        if inserted {
            append(
                &mut tx,
                actor,
                AuditEntry::new("measurement.t2_distribution", "measurement")
                    .id(measurement_id)
                    .detail(serde_json::json!({
                        "computed": "from the stored train, on first view",
                        "outcome": match distribution {
                            T2Distribution::Computed { .. } => "computed",
                            T2Distribution::Failed { .. } => "failed",
                        },
                    })),
            )
            .await?;
        }
        tx.commit().await.context("committing a T2 distribution")?;
        Ok(inserted)
    }
}

/// Decodes a stored JSON column into its type, naming the row when it does not decode.
fn decode_stored<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &'static str,
    row: i64,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|error| StoreError::Corrupt {
        what,
        row,
        reason: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use nmr_core::CpmgSimulation;
    use nmr_core::fit::{FitOptions, fit_mono};
    use sqlx::SqlitePool;

    use super::*;
    use crate::procedures::CpmgSettings;
    use crate::store::samples::TubeKind;
    use crate::store::test_fixtures::{count, running_run, sample};

    fn noisy_train(seed: u64) -> EchoTrain {
        let simulation = CpmgSimulation {
            noise_sd: 0.01,
            phase_rad: 0.7,
            ..CpmgSimulation::mono(1.0, 0.15, 0.004, 500)
        };
        simulation.simulate(seed).with_acquisition(Acquisition {
            te_s: Some(0.004),
            scans: Some(4),
            freq_hz: Some(21.3e6),
            temp_c: Some(30.2),
        })
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_stored_train_comes_back_bit_for_bit(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone());
        let (operator, sample, run) = running_run(&store, "M-1").await;
        let train = noisy_train(11);
        let fit = fit_mono(&train, &FitOptions::default()).unwrap();
        let distribution = T2Distribution::Computed {
            t2_bins_ms: vec![100.0, 150.0, 225.0],
            amplitudes: vec![0.0, 1.0, 0.1],
            t2_logmean_ms: Some(152.3),
            alpha: 0.5,
            converged: true,
        };
        let quad = sample.tube(TubeKind::Quad).unwrap().id;
        let id = store
            .add_measurement(
                &operator.actor(),
                &NewMeasurement {
                    run_id: run.id,
                    tube_id: quad,
                    replicate: 1,
                    measured_at: Timestamp::now(),
                    train: &train,
                    fit_report: Some(MeasurementFit {
                        fit: StoredFit {
                            outcome: FitOutcome::Mono(fit.clone()),
                            biexponential_preferred: Some(false),
                            first_echo_amplitude: None,
                            stimulated_echoes: None,
                            t2_model: nmr_core::fit::T2Model::Exponential,
                            t2_model_reason: String::new(),
                        },
                        cpmg: CpmgReport {
                            settings: CpmgSettings::default(),
                            frequency_hz: 20e6,
                            magnet_temp_before_c: 25.0,
                            magnet_temp_after_c: 25.0,
                            coil_temp_before_c: 25.0,
                            coil_temp_after_c: 25.0,
                            phase_rad: 0.0,
                            noise_sd: 1.0,
                        },
                    }),
                    qc_flags: Vec::new(),
                    t2_distribution: Some(distribution.clone()),
                },
            )
            .await
            .unwrap();
        let stored = store.run_measurements(run.id).await.unwrap();
        assert_eq!(stored.len(), 1);
        let m = &stored[0];
        assert_eq!(m.id, id);
        assert_eq!(m.tube_id, quad);
        assert_eq!(m.train, train, "train and acquisition metadata survive");
        let bits = |t: &EchoTrain| match t.signal() {
            Signal::Complex { re, im } => re.iter().chain(im).map(|v| v.to_bits()).collect(),
            Signal::Magnitude(m) | Signal::Real(m) => {
                m.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            }
        };
        assert_eq!(bits(&m.train), bits(&train));
        let refit = fit_mono(&m.train, &FitOptions::default()).unwrap();
        assert_eq!(refit, fit, "the stored train refits to the same numbers");
        assert_eq!(m.t2_distribution.as_ref(), Some(&distribution));
        // Stored with the measurement: a second one for it is not taken.
        let again = T2Distribution::Failed {
            reason: "a second computation".into(),
        };
        assert!(
            !store
                .add_t2_distribution(&operator.actor(), id, &again)
                .await
                .unwrap()
        );
        let back = m.fit_report.as_ref().unwrap().fit.mono().unwrap();
        assert_eq!(back.t2_ms.to_bits(), fit.t2_ms.to_bits());
        // 500 complex echoes are 12 kB raw; noise does not compress much, times do.
        assert!(
            m.stored_train_bytes < 3 * 500 * 8,
            "{} bytes",
            m.stored_train_bytes
        );
        let audited: String = sqlx::query_scalar(
            "SELECT detail_json FROM audit_log WHERE action = 'measurement.add'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        let blob: Vec<u8> = sqlx::query_scalar("SELECT train FROM measurements")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(audited.contains(&sha256_hex(&blob)));
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn measurements_are_refused_out_of_place(pool: SqlitePool) {
        let store = Store::from_pool(pool.clone());
        let (operator, own, run) = running_run(&store, "M-2").await;
        let other = sample(&store, &operator.actor(), "M-3").await;
        let train = noisy_train(12);
        let new = |tube_id, replicate| NewMeasurement {
            run_id: run.id,
            tube_id,
            replicate,
            measured_at: Timestamp::now(),
            train: &train,
            fit_report: None,
            qc_flags: Vec::new(),
            t2_distribution: None,
        };
        let control = own.tube(TubeKind::Control).unwrap().id;
        let foreign = other.tube(TubeKind::Control).unwrap().id;
        let actor = operator.actor();
        let wrong_tube = store.add_measurement(&actor, &new(foreign, 1)).await;
        assert!(matches!(
            wrong_tube,
            Err(StoreError::Invalid { field: "tube", .. })
        ));
        let no_tube = store.add_measurement(&actor, &new(TubeId(999), 1)).await;
        assert!(matches!(
            no_tube,
            Err(StoreError::NotFound { entity: "tube", .. })
        ));
        let zero = store.add_measurement(&actor, &new(control, 0)).await;
        assert!(matches!(
            zero,
            Err(StoreError::Invalid {
                field: "replicate",
                ..
            })
        ));
        store
            .add_measurement(&actor, &new(control, 1))
            .await
            .unwrap();
        let twice = store.add_measurement(&actor, &new(control, 1)).await;
        assert!(
            matches!(twice, Err(StoreError::Duplicate { .. })),
            "{twice:?}"
        );
        store
            .set_run_state(
                &actor,
                run.id,
                RunState::Cancelled,
                Some("operator stopped it"),
            )
            .await
            .unwrap();
        let late = store.add_measurement(&actor, &new(control, 2)).await;
        assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");
        // What was measured before the cancel is kept.
        assert_eq!(store.run_measurements(run.id).await.unwrap().len(), 1);
        for statement in [
            "UPDATE measurements SET replicate = 5",
            "DELETE FROM measurements",
        ] {
            let refused = sqlx::query(statement).execute(&pool).await.unwrap_err();
            assert!(refused.to_string().contains("raw records"), "{refused}");
        }
        assert_eq!(count(&pool, "measurements").await, 1);
    }

    #[test]
    fn a_damaged_blob_is_reported_with_its_row() {
        let error = decode_train(
            b"FCET\x01\x01\x05\x00\x00\x00garbage",
            Acquisition::default(),
            42,
        )
        .unwrap_err();
        assert!(
            matches!(error, StoreError::Corrupt { row: 42, .. }),
            "{error:?}"
        );
    }
}
