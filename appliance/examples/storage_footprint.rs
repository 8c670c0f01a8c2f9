//! Measures how many database bytes the appliance spends per stored measurement (a 500-echo
//! complex train, compressed, with its fit report) and per run (6 measurements, the sample, the
//! run, its result, the release signature and every audit entry), on a scratch database.
//!
//! `cargo run --release -p appliance --example storage_footprint [RUNS]`

use std::path::Path;
use std::time::Instant;

use appliance::store::example_report::example_report;
use appliance::store::measurements::NewMeasurement;
use appliance::store::measurements::{FitOutcome, MeasurementFit, StoredFit};
use appliance::store::patients::{BirthDate, Mrn, NewPatient};
use appliance::store::results::SignatureMeaning;
use appliance::store::runs::{NewRun, RunState};
use appliance::store::samples::{
    Accession, BloodVolume, Indication, NewSample, NewTube, TubeKind, TubeLabel,
};
use appliance::store::users::{NewPassword, NewUser, Role, Username};
use appliance::store::{Actor, Store, Timestamp};
use nmr_core::assay::{Call, CountCategory};
use nmr_core::fit::{FitOptions, fit_mono};
use nmr_core::{Acquisition, CpmgSimulation};

async fn database_bytes(store: &Store, file: &Path) -> anyhow::Result<u64> {
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(store.pool())
        .await?;
    Ok(std::fs::metadata(file)?.len())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(100);
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path()).await?;
    let file = dir.path().join(appliance::store::db::DATABASE_FILE);
    let new_user = |name: &str, role| NewUser {
        username: Username::parse(name).expect("a valid name"),
        display_name: String::new(),
        role,
        password: NewPassword::parse("footprint password").expect("a valid password"),
    };
    let operator = store
        .add_user(&Actor::Appliance, new_user("olga", Role::Operator))
        .await?;
    let clinician = store
        .add_user(&Actor::Appliance, new_user("dr-lee", Role::Clinician))
        .await?;
    let actor = operator.actor();
    let baseline = database_bytes(&store, &file).await?;

    // The sample and run rows first, so that measurements can be counted on their own.
    let mut started = Vec::with_capacity(runs);
    for i in 0..runs {
        let patient = store
            .patient_by_mrn_or_add(
                &actor,
                &NewPatient::new(
                    Mrn::parse(&format!("FP-{}", i % 20 + 1000))?,
                    BirthDate::parse("1961-04-23", Timestamp::now().datetime().date())?,
                ),
            )
            .await?;
        let sample = store
            .add_sample(
                &actor,
                &NewSample {
                    patient_id: patient.id,
                    accession: Accession::parse(&format!("FP{i:07}"))?,
                    indication_override_reason: None,
                    drawn_at: Timestamp::now(),
                    blood: BloodVolume::from_ml(7.5)?,
                    indication: Some(Indication::parse("breast")?),
                    tubes: vec![
                        NewTube {
                            kind: TubeKind::Control,
                            label: TubeLabel::parse(&format!("CS{i:06}C"))?,
                        },
                        NewTube {
                            kind: TubeKind::Quad,
                            label: TubeLabel::parse(&format!("CS{i:06}Q"))?,
                        },
                    ],
                },
            )
            .await?;
        let run = store
            .create_run(
                &actor,
                &NewRun {
                    sample_id: sample.id,
                    operator_id: Some(operator.id),
                    reagent_lot: Some("LOT-A1".into()),
                    simulated: true,
                },
            )
            .await?;
        store
            .set_run_state(&actor, run.id, RunState::Running, None)
            .await?;
        started.push((run.id, sample));
    }
    let before_measurements = database_bytes(&store, &file).await?;

    let acquisition = Acquisition {
        te_s: Some(0.004),
        scans: Some(4),
        freq_hz: Some(21.3e6),
        temp_c: Some(30.0),
    };
    let mut train_bytes = 0_usize;
    let mut fit_bytes = 0_usize;
    let mut storing = std::time::Duration::ZERO;
    for (n, (run_id, sample)) in started.iter().enumerate() {
        for (k, kind) in [TubeKind::Control, TubeKind::Quad].iter().enumerate() {
            let t2_s = if k == 0 { 0.150 } else { 0.120 };
            for replicate in 1..=3_u32 {
                let simulation = CpmgSimulation {
                    noise_sd: 0.005,
                    phase_rad: 0.4,
                    ..CpmgSimulation::mono(1.0, t2_s, 0.004, 500)
                };
                let seed = (n * 6 + k * 3) as u64 + u64::from(replicate);
                let train = simulation
                    .simulate(seed)
                    .with_acquisition(acquisition.clone());
                let fit = fit_mono(&train, &FitOptions::default())?;
                let fit_report = MeasurementFit {
                    fit: StoredFit {
                        outcome: FitOutcome::Mono(fit),
                        biexponential_preferred: Some(false),
                        first_echo_amplitude: None,
                        stimulated_echoes: None,
                        t2_model: nmr_core::fit::T2Model::Exponential,
                        t2_model_reason: String::new(),
                    },
                    cpmg: appliance::procedures::CpmgReport {
                        settings: appliance::procedures::CpmgSettings::default(),
                        frequency_hz: 20e6,
                        magnet_temp_before_c: 25.0,
                        magnet_temp_after_c: 25.0,
                        coil_temp_before_c: 25.0,
                        coil_temp_after_c: 25.0,
                        phase_rad: 0.4,
                        noise_sd: 0.005,
                    },
                };
                train_bytes += appliance::store::measurements::encode_train(&train)?.len();
                fit_bytes += serde_json::to_string(&fit_report)?.len();
                let distribution = appliance::engine::t2_distribution(&train);
                fit_bytes += serde_json::to_string(&distribution)?.len();
                let tube_id = sample.tube(*kind).expect("the sample has this tube").id;
                let clock = Instant::now();
                store
                    .add_measurement(
                        &actor,
                        &NewMeasurement {
                            run_id: *run_id,
                            tube_id,
                            replicate,
                            measured_at: Timestamp::now(),
                            train: &train,
                            fit_report: Some(fit_report),
                            qc_flags: Vec::new(),
                            t2_distribution: Some(distribution),
                        },
                    )
                    .await?;
                storing += clock.elapsed();
            }
        }
    }
    let after_measurements = database_bytes(&store, &file).await?;

    for (run_id, _) in &started {
        let report = example_report(
            5.0,
            [1.6, 11.7],
            CountCategory::Quantified,
            Some(Call::Unfavorable),
            false,
        );
        store.record_result(&actor, *run_id, &report).await?;
        store
            .sign_result(&clinician, *run_id, SignatureMeaning::Release)
            .await?;
    }
    let after_results = database_bytes(&store, &file).await?;

    // Board data are sums of ADC counts: values on a grid, whose low mantissa bytes repeat. The
    // simulated trains above carry full-precision noise, the codec's worst case.
    let quantised = {
        let train = CpmgSimulation {
            noise_sd: 0.005,
            phase_rad: 0.4,
            ..CpmgSimulation::mono(1.0, 0.150, 0.004, 500)
        }
        .simulate(7);
        let step = 1.0 / 32768.0;
        let on_grid = |v: &[f64]| {
            v.iter()
                .map(|x| (x / step).round() * step)
                .collect::<Vec<_>>()
        };
        let (re, im) = match train.signal() {
            nmr_core::Signal::Complex { re, im } => (on_grid(re), on_grid(im)),
            nmr_core::Signal::Magnitude(m) | nmr_core::Signal::Real(m) => {
                (on_grid(m), vec![0.0; m.len()])
            }
        };
        let train = nmr_core::EchoTrain::complex(train.times_s().to_vec(), re, im)?;
        appliance::store::measurements::encode_train(&train)?.len()
    };

    let measurements = runs * 6;
    println!("runs: {runs}, measurements: {measurements} (500-echo complex trains)");
    println!("raw train: {} bytes (3 columns x 500 x 8)", 3 * 500 * 8);
    println!(
        "compressed train blob: {:.0} bytes on average; fit report and T2 distribution JSON: {:.0} bytes",
        train_bytes as f64 / measurements as f64,
        fit_bytes as f64 / measurements as f64
    );
    println!("the same train on a 16-bit ADC grid (1/32768 steps): {quantised} bytes");
    println!(
        "database growth per measurement (row, indexes, audit entry): {:.0} bytes",
        (after_measurements - before_measurements) as f64 / measurements as f64
    );
    println!(
        "database growth per run of 6 measurements with fit reports, sample, run, result, \
         signature and audit: {:.0} bytes",
        (after_results - baseline) as f64 / runs as f64
    );
    println!(
        "time to store one measurement (synchronous=FULL, one transaction each): {:.2} ms",
        storing.as_secs_f64() * 1e3 / measurements as f64
    );
    store.close().await;
    Ok(())
}
