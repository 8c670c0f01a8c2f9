//! Records that many store tests need: a user of each role, a patient with a sample, a run.

use sqlx::SqlitePool;

use std::sync::atomic::{AtomicU32, Ordering};

use super::patients::{BirthDate, Mrn, NewPatient};
use super::runs::{NewRun, Run, RunState};
use super::samples::{
    Accession, BloodVolume, Indication, NewSample, NewTube, Sample, TubeKind, TubeLabel,
};
use super::users::{NewPassword, NewUser, Role, User, Username};
use super::{Actor, Store, Timestamp};

pub(crate) const PASSWORD: &str = "correct horse battery";

pub(crate) async fn user(store: &Store, name: &str, role: Role) -> User {
    store
        .add_user(
            &Actor::Appliance,
            NewUser {
                username: Username::parse(name).unwrap(),
                display_name: format!("{name} (printed)"),
                role,
                password: NewPassword::parse(PASSWORD).unwrap(),
            },
        )
        .await
        .unwrap()
}

/// The birth date of every fixture patient.
pub(crate) fn birth_date() -> BirthDate {
    BirthDate::parse("1961-04-23", time::macros::date!(2026 - 01 - 01)).unwrap()
}

/// A fresh accession number for each fixture sample.
fn next_accession(mrn: &str) -> Accession {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    Accession::parse(&format!("{mrn}-A{}", NEXT.fetch_add(1, Ordering::Relaxed))).unwrap()
}

pub(crate) async fn sample(store: &Store, actor: &Actor, mrn: &str) -> Sample {
    let patient = store
        .patient_by_mrn_or_add(
            actor,
            &NewPatient::new(Mrn::parse(mrn).unwrap(), birth_date()),
        )
        .await
        .unwrap();
    store
        .add_sample(
            actor,
            &NewSample {
                patient_id: patient.id,
                accession: next_accession(mrn),
                drawn_at: Timestamp::parse("2026-11-20T08:30:00Z").unwrap(),
                blood: BloodVolume::from_ml(7.5).unwrap(),
                indication: Some(Indication::parse("breast").unwrap()),
                indication_override_reason: None,
                tubes: vec![
                    NewTube {
                        kind: TubeKind::Control,
                        label: TubeLabel::parse(&format!("{mrn}-C")).unwrap(),
                    },
                    NewTube {
                        kind: TubeKind::Quad,
                        label: TubeLabel::parse(&format!("{mrn}-Q")).unwrap(),
                    },
                ],
            },
        )
        .await
        .unwrap()
}

/// An operator, a sample and a run of it in state `running`.
pub(crate) async fn running_run(store: &Store, mrn: &str) -> (User, Sample, Run) {
    let operator = match store.user_by_name(&Username::parse("olga").unwrap()).await {
        Ok(user) => user,
        Err(_) => user(store, "olga", Role::Operator).await,
    };
    let actor = operator.actor();
    let sample = sample(store, &actor, mrn).await;
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
        .await
        .unwrap();
    let run = store
        .set_run_state(&actor, run.id, RunState::Running, None)
        .await
        .unwrap();
    (operator, sample, run)
}

pub(crate) async fn count(pool: &SqlitePool, table: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(pool)
        .await
        .unwrap()
}
