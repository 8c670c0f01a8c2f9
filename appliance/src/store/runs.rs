//! Runs: one measurement of one sample's tubes, from queueing to release, and its state machine.
//!
//! States and the moves allowed between them ([`RunState::may_become`]):
//!
//! ```text
//! queued ──► running ◄──► awaiting_tube
//!   │          │                │
//!   │          ▼                │
//!   │   awaiting_release ◄──► released      (a correction sends a released run back for signing)
//!   ▼          ▼                ▼
//! failed · cancelled · interrupted          (terminal; interrupted = found in flight after a crash)
//! ```
//!
//! Every move is audited with its cause. The acquisition engine drives the moves; this module only
//! refuses the ones that make no sense.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::audit::append;
use super::error::{SqlxResultExt, found};
use super::qc_basis::{JudgedFor, QcRelied, record_qc_basis_in};
use super::timestamp::{stored, stored_opt};
use super::{
    Actor, AuditEntry, CalibrationId, RunId, SampleId, Store, StoreError, Timestamp, UserId, db,
};

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Waiting for the board.
    Queued,
    /// Measuring.
    Running,
    /// Waiting for the operator to insert the next tube.
    AwaitingTube,
    /// A result exists and waits for an electronic signature.
    AwaitingRelease,
    /// The result was signed for release.
    Released,
    /// Stopped by a fault (board, temperature, QC); what was measured is kept.
    Failed,
    /// Stopped by a user.
    Cancelled,
    /// Found in flight at start-up after a crash or power loss.
    Interrupted,
}

impl RunState {
    /// Every state.
    pub const ALL: [Self; 8] = [
        Self::Queued,
        Self::Running,
        Self::AwaitingTube,
        Self::AwaitingRelease,
        Self::Released,
        Self::Failed,
        Self::Cancelled,
        Self::Interrupted,
    ];

    /// States in which the engine is working on the run (a crash leaves these behind).
    pub const IN_FLIGHT: [Self; 3] = [Self::Queued, Self::Running, Self::AwaitingTube];

    /// The stored name (`awaiting_release`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::AwaitingTube => "awaiting_tube",
            Self::AwaitingRelease => "awaiting_release",
            Self::Released => "released",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Interrupted => "interrupted",
        }
    }

    /// No move leaves a terminal state.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Failed | Self::Cancelled | Self::Interrupted)
    }

    /// Whether a run may move from `self` to `next`.
    pub fn may_become(self, next: Self) -> bool {
        use RunState::*;
        matches!(
            (self, next),
            (Queued, Running | Failed | Cancelled | Interrupted)
                | (
                    Running,
                    AwaitingTube | AwaitingRelease | Failed | Cancelled | Interrupted
                )
                | (AwaitingTube, Running | Failed | Cancelled | Interrupted)
                | (AwaitingRelease, Released | Cancelled)
                | (Released, AwaitingRelease)
        )
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunState {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| StoreError::Invalid {
                field: "run state",
                reason: format!("{text:?} is not a run state"),
            })
    }
}

/// What is needed to queue a run.
#[derive(Clone, Debug, PartialEq)]
pub struct NewRun {
    /// The sample to measure.
    pub sample_id: SampleId,
    /// Who started it (`None`: the appliance, e.g. the demo seeder).
    pub operator_id: Option<UserId>,
    /// The reagent lot of the tubes.
    pub reagent_lot: Option<String>,
    /// Whether the board is simulated.
    pub simulated: bool,
}

/// A stored run.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Run {
    /// Row id.
    pub id: RunId,
    /// The sample measured.
    pub sample_id: SampleId,
    /// Who started it.
    pub operator_id: Option<UserId>,
    /// Where it stands.
    pub state: RunState,
    /// The reagent lot.
    pub reagent_lot: Option<String>,
    /// The calibration the result used.
    pub calibration_id: Option<CalibrationId>,
    /// Whether the board was simulated.
    pub simulated: bool,
    /// Why it failed, was cancelled or interrupted.
    pub failure_cause: Option<String>,
    /// When it was queued.
    pub queued_at: Timestamp,
    /// When measuring began.
    pub started_at: Option<Timestamp>,
    /// When it reached a result or a terminal state.
    pub finished_at: Option<Timestamp>,
    /// Last change.
    pub updated_at: Timestamp,
}

pub(crate) struct RunRow {
    pub(crate) id: i64,
    pub(crate) sample_id: i64,
    pub(crate) operator_id: Option<i64>,
    pub(crate) state: String,
    pub(crate) reagent_lot: Option<String>,
    pub(crate) calibration_id: Option<i64>,
    pub(crate) simulated: i64,
    pub(crate) failure_cause: Option<String>,
    pub(crate) queued_at: String,
    pub(crate) started_at: Option<String>,
    pub(crate) finished_at: Option<String>,
    pub(crate) updated_at: String,
}

impl RunRow {
    pub(crate) fn into_run(self) -> Result<Run, StoreError> {
        Ok(Run {
            id: RunId(self.id),
            sample_id: SampleId(self.sample_id),
            operator_id: self.operator_id.map(UserId),
            state: self.state.parse().map_err(|_| StoreError::Corrupt {
                what: "run state",
                row: self.id,
                reason: format!("{:?} is not a run state", self.state),
            })?,
            reagent_lot: self.reagent_lot,
            calibration_id: self.calibration_id.map(CalibrationId),
            simulated: self.simulated != 0,
            failure_cause: self.failure_cause,
            queued_at: stored(&self.queued_at, "run queue time", self.id)?,
            started_at: stored_opt(self.started_at.as_deref(), "run start", self.id)?,
            finished_at: stored_opt(self.finished_at.as_deref(), "run end", self.id)?,
            updated_at: stored(&self.updated_at, "run update time", self.id)?,
        })
    }
}

pub(crate) async fn run_in(
    conn: &mut sqlx::SqliteConnection,
    id: RunId,
) -> Result<Run, StoreError> {
    let row = sqlx::query_as!(
        RunRow,
        "SELECT id, sample_id, operator_id, state, reagent_lot, calibration_id, simulated,
                failure_cause, queued_at, started_at, finished_at, updated_at
         FROM runs WHERE id = ?",
        id.0
    )
    .fetch_optional(&mut *conn)
    .await
    .context("looking up a run")?;
    found(row, "run", id)?.into_run()
}

/// Moves a run inside the caller's write transaction, checking the move and auditing it.
pub(crate) async fn transition_in(
    conn: &mut sqlx::SqliteConnection,
    actor: &Actor,
    id: RunId,
    next: RunState,
    cause: Option<&str>,
) -> Result<Run, StoreError> {
    let run = run_in(conn, id).await?;
    if !run.state.may_become(next) {
        return Err(StoreError::Conflict(format!(
            "run {id} cannot go from {} to {next}",
            run.state
        )));
    }
    let cause = cause.map(str::trim).filter(|c| !c.is_empty());
    if matches!(
        next,
        RunState::Failed | RunState::Cancelled | RunState::Interrupted
    ) && cause.is_none()
    {
        return Err(StoreError::Invalid {
            field: "cause",
            reason: format!("a run that becomes {next} must say why"),
        });
    }
    let now = Timestamp::now().to_rfc3339();
    let next_text = next.as_str();
    let starting = next == RunState::Running;
    let finishing = next.is_terminal() || next == RunState::AwaitingRelease;
    let failure_cause = if next.is_terminal() { cause } else { None };
    sqlx::query!(
        "UPDATE runs SET state = ?1, updated_at = ?2,
             started_at = CASE WHEN ?3 AND started_at IS NULL THEN ?2 ELSE started_at END,
             finished_at = CASE WHEN ?4 THEN ?2 ELSE finished_at END,
             failure_cause = COALESCE(?5, failure_cause)
         WHERE id = ?6",
        next_text,
        now,
        starting,
        finishing,
        failure_cause,
        id.0,
    )
    .execute(&mut *conn)
    .await
    .context("changing a run's state")?;
    let mut entry = AuditEntry::new("run.state", "run")
        .id(id)
        .detail(serde_json::json!({ "from": run.state, "to": next }));
    if let Some(cause) = cause {
        entry = entry.reason(cause);
    }
    append(conn, actor, entry).await?;
    run_in(conn, id).await
}

impl Store {
    /// Queues a run of a sample.
    pub async fn create_run(&self, actor: &Actor, new: &NewRun) -> Result<Run, StoreError> {
        self.create_run_relying_on(actor, new, &[]).await
    }

    /// Queues a run for a sample, storing the QC the run's start relied on (the QC gate judged
    /// for it) in the same transaction: the run and its stated QC basis are stored together or
    /// not at all.
    pub async fn create_run_relying_on(
        &self,
        actor: &Actor,
        new: &NewRun,
        qc_basis: &[QcRelied],
    ) -> Result<Run, StoreError> {
        let started = Timestamp::now();
        let now = started.to_rfc3339();
        let state = RunState::Queued.as_str();
        let mut tx = db::begin_write(&self.pool).await?;
        let sample = sqlx::query_scalar!("SELECT id FROM samples WHERE id = ?", new.sample_id.0)
            .fetch_optional(&mut *tx)
            .await
            .context("checking a run's sample")?;
        found(sample, "sample", new.sample_id)?;
        let operator = new.operator_id.map(|id| id.0);
        let id = sqlx::query_scalar!(
            "INSERT INTO runs (sample_id, operator_id, state, reagent_lot, simulated, queued_at,
                               updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id AS \"id!\"",
            new.sample_id.0,
            operator,
            state,
            new.reagent_lot,
            new.simulated,
            now,
            now,
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(|source| match &source {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound {
                entity: "operator",
                key: format!("{operator:?}"),
            },
            _ => StoreError::Database {
                context: "queueing a run",
                source,
            },
        })?;
        append(
            &mut tx,
            actor,
            AuditEntry::new("run.create", "run")
                .id(id)
                .detail(serde_json::json!({
                    "sample_id": new.sample_id, "operator_id": operator,
                    "reagent_lot": new.reagent_lot, "simulated": new.simulated,
                })),
        )
        .await?;
        record_qc_basis_in(&mut tx, RunId(id), JudgedFor::Start, started, qc_basis).await?;
        let run = run_in(&mut tx, RunId(id)).await?;
        tx.commit().await.context("committing a new run")?;
        Ok(run)
    }

    /// A run.
    pub async fn run(&self, id: RunId) -> Result<Run, StoreError> {
        let mut conn = self.pool.acquire().await.context("looking up a run")?;
        run_in(&mut conn, id).await
    }

    /// Moves a run to `next`, refusing moves the state machine does not allow. `cause` is
    /// required for `failed`, `cancelled` and `interrupted` and recorded in the audit trail.
    pub async fn set_run_state(
        &self,
        actor: &Actor,
        id: RunId,
        next: RunState,
        cause: Option<&str>,
    ) -> Result<Run, StoreError> {
        let mut tx = db::begin_write(&self.pool).await?;
        let run = transition_in(&mut tx, actor, id, next, cause).await?;
        tx.commit().await.context("committing a run's state")?;
        Ok(run)
    }

    /// Records which calibration a run's result uses.
    pub async fn set_run_calibration(
        &self,
        actor: &Actor,
        id: RunId,
        calibration_id: CalibrationId,
    ) -> Result<Run, StoreError> {
        let now = Timestamp::now().to_rfc3339();
        let mut tx = db::begin_write(&self.pool).await?;
        let calibration =
            sqlx::query_scalar!("SELECT id FROM calibrations WHERE id = ?", calibration_id.0)
                .fetch_optional(&mut *tx)
                .await
                .context("checking a calibration")?;
        found(calibration, "calibration", calibration_id)?;
        let updated = sqlx::query_scalar!(
            "UPDATE runs SET calibration_id = ?, updated_at = ? WHERE id = ? RETURNING id AS \"id!\"",
            calibration_id.0,
            now,
            id.0
        )
        .fetch_optional(&mut *tx)
        .await
        .context("setting a run's calibration")?;
        found(updated, "run", id)?;
        append(
            &mut tx,
            actor,
            AuditEntry::new("run.calibration", "run")
                .id(id)
                .detail(serde_json::json!({ "calibration_id": calibration_id })),
        )
        .await?;
        let run = run_in(&mut tx, id).await?;
        tx.commit()
            .await
            .context("committing a run's calibration")?;
        Ok(run)
    }

    /// Runs in any of `states`, oldest first.
    pub async fn runs_in_states(&self, states: &[RunState]) -> Result<Vec<Run>, StoreError> {
        let names: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
        let names_json = serde_json::Value::from(names).to_string();
        sqlx::query_as!(
            RunRow,
            "SELECT id, sample_id, operator_id, state, reagent_lot, calibration_id, simulated,
                    failure_cause, queued_at, started_at, finished_at, updated_at
             FROM runs WHERE state IN (SELECT value FROM json_each(?)) ORDER BY id",
            names_json
        )
        .fetch_all(&self.pool)
        .await
        .context("listing runs by state")?
        .into_iter()
        .map(RunRow::into_run)
        .collect()
    }

    /// The most recent runs, newest first.
    pub async fn recent_runs(&self, limit: u32) -> Result<Vec<Run>, StoreError> {
        let limit = i64::from(limit.clamp(1, 1000));
        sqlx::query_as!(
            RunRow,
            "SELECT id, sample_id, operator_id, state, reagent_lot, calibration_id, simulated,
                    failure_cause, queued_at, started_at, finished_at, updated_at
             FROM runs ORDER BY id DESC LIMIT ?",
            limit
        )
        .fetch_all(&self.pool)
        .await
        .context("listing recent runs")?
        .into_iter()
        .map(RunRow::into_run)
        .collect()
    }

    /// At start-up: marks every run left in flight (queued, running, awaiting a tube) by a crash
    /// or power loss as `interrupted`, each with an audit entry. Returns the runs marked.
    pub async fn interrupt_runs_in_flight(&self, cause: &str) -> Result<Vec<RunId>, StoreError> {
        let mut tx = db::begin_write(&self.pool).await?;
        let ids = sqlx::query_scalar!(
            "SELECT id FROM runs WHERE state IN ('queued', 'running', 'awaiting_tube') ORDER BY id"
        )
        .fetch_all(&mut *tx)
        .await
        .context("finding runs in flight")?;
        for &id in &ids {
            transition_in(
                &mut tx,
                &Actor::Appliance,
                RunId(id),
                RunState::Interrupted,
                Some(cause),
            )
            .await?;
        }
        tx.commit().await.context("committing interrupted runs")?;
        Ok(ids.into_iter().map(RunId).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::audit::AuditQuery;
    use crate::store::test_fixtures::{running_run, sample};
    use sqlx::SqlitePool;

    #[sqlx::test(migrations = "../migrations")]
    async fn a_run_moves_only_along_the_state_machine(pool: SqlitePool) {
        let store = Store::from_pool(pool);
        let (operator, _, run) = running_run(&store, "R-1").await;
        let actor = operator.actor();
        assert_eq!(run.state, RunState::Running);
        assert!(run.started_at.is_some());
        assert_eq!(run.finished_at, None);
        let skip = store
            .set_run_state(&actor, run.id, RunState::Released, None)
            .await;
        assert!(matches!(skip, Err(StoreError::Conflict(_))), "{skip:?}");
        let waiting = store
            .set_run_state(&actor, run.id, RunState::AwaitingTube, None)
            .await
            .unwrap();
        assert_eq!(waiting.started_at, run.started_at);
        let no_cause = store
            .set_run_state(&actor, run.id, RunState::Failed, Some("  "))
            .await;
        assert!(matches!(
            no_cause,
            Err(StoreError::Invalid { field: "cause", .. })
        ));
        let failed = store
            .set_run_state(
                &actor,
                run.id,
                RunState::Failed,
                Some("magnet temperature unstable"),
            )
            .await
            .unwrap();
        assert_eq!(
            failed.failure_cause.as_deref(),
            Some("magnet temperature unstable")
        );
        assert!(failed.finished_at.is_some());
        let after = store
            .set_run_state(&actor, run.id, RunState::Running, None)
            .await;
        assert!(matches!(after, Err(StoreError::Conflict(_))));
        let trail = store
            .audit_entries(&AuditQuery {
                entity: Some("run".into()),
                entity_id: Some(run.id.to_string()),
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        let actions: Vec<_> = trail.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            ["run.state", "run.state", "run.state", "run.create"]
        );
        assert_eq!(
            trail[0].reason.as_deref(),
            Some("magnet temperature unstable")
        );
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn unknown_samples_runs_and_operators_are_refused(pool: SqlitePool) {
        let store = Store::from_pool(pool);
        let new = |sample_id, operator_id| NewRun {
            sample_id,
            operator_id,
            reagent_lot: None,
            simulated: true,
        };
        let no_sample = store
            .create_run(&Actor::Appliance, &new(SampleId(3), None))
            .await;
        assert!(matches!(
            no_sample,
            Err(StoreError::NotFound {
                entity: "sample",
                ..
            })
        ));
        let s = sample(&store, &Actor::Appliance, "R-2").await;
        let no_operator = store
            .create_run(&Actor::Appliance, &new(s.id, Some(UserId(9))))
            .await;
        assert!(matches!(
            no_operator,
            Err(StoreError::NotFound {
                entity: "operator",
                ..
            })
        ));
        let no_run = store
            .set_run_state(&Actor::Appliance, RunId(8), RunState::Running, None)
            .await;
        assert!(matches!(
            no_run,
            Err(StoreError::NotFound { entity: "run", .. })
        ));
        let no_calibration = store
            .set_run_calibration(&Actor::Appliance, RunId(8), CalibrationId(1))
            .await;
        assert!(matches!(no_calibration, Err(StoreError::NotFound { .. })));
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn runs_in_flight_are_interrupted_at_start_up(pool: SqlitePool) {
        let store = Store::from_pool(pool);
        let (operator, sample, running) = running_run(&store, "R-3").await;
        let actor = operator.actor();
        let new = NewRun {
            sample_id: sample.id,
            operator_id: Some(operator.id),
            reagent_lot: None,
            simulated: true,
        };
        let queued = store.create_run(&actor, &new).await.unwrap();
        let cancelled = store.create_run(&actor, &new).await.unwrap();
        store
            .set_run_state(
                &actor,
                cancelled.id,
                RunState::Cancelled,
                Some("wrong patient"),
            )
            .await
            .unwrap();
        let marked = store
            .interrupt_runs_in_flight("found in flight at start-up")
            .await
            .unwrap();
        assert_eq!(marked, [running.id, queued.id]);
        for id in marked {
            let run = store.run(id).await.unwrap();
            assert_eq!(run.state, RunState::Interrupted);
            assert_eq!(
                run.failure_cause.as_deref(),
                Some("found in flight at start-up")
            );
        }
        assert_eq!(
            store.run(cancelled.id).await.unwrap().state,
            RunState::Cancelled
        );
        let left = store.runs_in_states(&RunState::IN_FLIGHT).await.unwrap();
        assert!(left.is_empty());
        assert_eq!(store.recent_runs(10).await.unwrap().len(), 3);
        assert!(
            store
                .interrupt_runs_in_flight("again")
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn state_names_round_trip() {
        for state in RunState::ALL {
            assert_eq!(state.as_str().parse::<RunState>().ok(), Some(state));
        }
        assert!("done".parse::<RunState>().is_err());
    }

    #[test]
    fn terminal_states_go_nowhere() {
        for from in RunState::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in RunState::ALL {
                assert!(!from.may_become(to), "{from} -> {to} must be refused");
            }
        }
    }

    #[test]
    fn a_run_cannot_skip_measuring() {
        assert!(!RunState::Queued.may_become(RunState::AwaitingRelease));
        assert!(!RunState::Queued.may_become(RunState::Released));
        assert!(!RunState::Running.may_become(RunState::Released));
        assert!(RunState::Running.may_become(RunState::AwaitingRelease));
        assert!(RunState::AwaitingRelease.may_become(RunState::Released));
    }
}
