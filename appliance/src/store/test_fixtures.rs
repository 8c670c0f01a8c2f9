//! Records that many store tests need: a user of each role, a patient with a sample, a run.

use sqlx::SqlitePool;

use super::patients::Mrn;
use super::runs::{NewRun, Run, RunState};
use super::samples::{BloodVolume, Indication, NewSample, NewTube, Sample, TubeKind, TubeLabel};
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

pub(crate) async fn sample(store: &Store, actor: &Actor, mrn: &str) -> Sample {
    let patient = store
        .patient_by_mrn_or_add(actor, &Mrn::parse(mrn).unwrap())
        .await
        .unwrap();
    store
        .add_sample(
            actor,
            &NewSample {
                patient_id: patient.id,
                drawn_at: Timestamp::parse("2026-11-20T08:30:00Z").unwrap(),
                blood: BloodVolume::from_ml(7.5).unwrap(),
                indication: Some(Indication::parse("breast").unwrap()),
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
