//! Set-up shared by the operations tests: users and released runs in a store.

use appliance::store::patients::{BirthDate, Mrn, NewPatient};
use appliance::store::results::SignatureMeaning;
use appliance::store::runs::{NewRun, RunState};
use appliance::store::samples::{
    Accession, BloodVolume, Indication, NewSample, NewTube, TubeKind, TubeLabel,
};
use appliance::store::users::{NewPassword, NewUser, Role, User, Username};
use appliance::store::{Actor, RunId, Store, Timestamp};
use nmr_core::assay::CountReport;

/// A user of `role`.
pub async fn add_user(store: &Store, name: &str, role: Role) -> User {
    store
        .add_user(
            &Actor::Appliance,
            NewUser {
                username: Username::parse(name).unwrap(),
                display_name: name.to_owned(),
                role,
                password: NewPassword::parse("correct horse battery").unwrap(),
            },
        )
        .await
        .unwrap()
}

/// A run for `mrn` whose result `report` a clinician released.
pub async fn released_run(
    store: &Store,
    clinician: &User,
    mrn: &str,
    report: &CountReport,
) -> RunId {
    let actor = Actor::Appliance;
    let patient = store
        .patient_by_mrn_or_add(
            &actor,
            &NewPatient::new(
                Mrn::parse(mrn).unwrap(),
                BirthDate::parse("1961-04-23", time::macros::date!(2026 - 01 - 01)).unwrap(),
            ),
        )
        .await
        .unwrap();
    let sample = store
        .add_sample(
            &actor,
            &NewSample {
                patient_id: patient.id,
                accession: Accession::parse(&format!("{mrn}-A")).unwrap(),
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
        .unwrap();
    let run = store
        .create_run(
            &actor,
            &NewRun {
                sample_id: sample.id,
                operator_id: None,
                reagent_lot: Some("LOT-A1".into()),
                simulated: true,
            },
        )
        .await
        .unwrap();
    store
        .set_run_state(&actor, run.id, RunState::Running, None)
        .await
        .unwrap();
    store.record_result(&actor, run.id, report).await.unwrap();
    store
        .sign_result(clinician, run.id, SignatureMeaning::Release)
        .await
        .unwrap();
    run.id
}
