//! Who may do what: the one table of permissions per role, which `docs/roles.md` shows.
//!
//! Every operation that needs more than authentication checks one [`Permission`] here; the web
//! face asks the same table before a page or route does anything (its locks tests walk every
//! route with every role against an independent copy of the table in `docs/roles.md`).

use appliance::store::users::Role;

/// Something a route lets its caller do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    /// List patients, open one, read their trend (patient data).
    ViewPatients,
    /// Register a patient by MRN.
    RegisterPatients,
    /// Add a treatment or event marker to a patient's trend.
    AnnotatePatients,
    /// Start a run, confirm its tubes, cancel it.
    OperateRuns,
    /// Read a run, its result and its live events.
    ViewRuns,
    /// Sign a result's release.
    ReleaseResults,
    /// Read the instrument's status.
    ViewInstrument,
    /// Read QC status and history.
    ViewQc,
    /// Read calibrations.
    ViewCalibrations,
    /// Add and activate calibrations.
    ManageCalibrations,
    /// Make an API token for oneself.
    CreateOwnTokens,
    /// Record a QC measurement (daily QC at the bench).
    RecordQc,
    /// Define QC control materials and lots and set a lot's target mean and SD.
    ManageQc,
    /// Add users, disable them, and list or revoke anyone's API tokens.
    ManageUsers,
    /// Search the audit trail and read the instrument log.
    ViewAuditTrail,
    /// Download a copy of the whole database.
    DownloadBackup,
    /// See the outbox of messages to the hospital's systems and resend a parked one.
    ManageOutbox,
}

impl Permission {
    /// What the permission allows, in words (for "a clinician may not ...").
    pub fn action(self) -> &'static str {
        match self {
            Self::ViewPatients => "view patient data",
            Self::RegisterPatients => "register patients",
            Self::AnnotatePatients => "add treatment or event markers to a patient's trend",
            Self::OperateRuns => "start, confirm or cancel runs",
            Self::ViewRuns => "view runs",
            Self::ReleaseResults => "release results",
            Self::ViewInstrument => "view the instrument status",
            Self::ViewQc => "view QC",
            Self::ViewCalibrations => "view calibrations",
            Self::ManageCalibrations => "import, approve or reject calibrations",
            Self::CreateOwnTokens => "create API tokens",
            Self::RecordQc => "record QC measurements",
            Self::ManageQc => "define QC materials, lots and targets",
            Self::ManageUsers => "manage users and API tokens",
            Self::ViewAuditTrail => "read the audit trail and instrument log",
            Self::DownloadBackup => "download backups",
            Self::ManageOutbox => "see or resend outgoing messages",
        }
    }
}

/// Whether `role` has `permission`.
///
/// Operators run samples (they register the patient at the bedside and see their run's result,
/// but do not browse patients' histories) and run the daily QC at the bench; clinicians view patients and release results;
/// laboratory administrators supervise the instrument and may do everything.
pub fn allows(role: Role, permission: Permission) -> bool {
    use Permission::*;
    match role {
        Role::LabAdmin => true,
        Role::Operator => matches!(
            permission,
            RegisterPatients
                | OperateRuns
                | ViewRuns
                | ViewInstrument
                | ViewQc
                | ViewCalibrations
                | CreateOwnTokens
                | RecordQc
        ),
        Role::Clinician => matches!(
            permission,
            ViewPatients
                | RegisterPatients
                | AnnotatePatients
                | ViewRuns
                | ReleaseResults
                | ViewInstrument
                | ViewQc
                | ViewCalibrations
                | CreateOwnTokens
        ),
    }
}

/// Refuses, naming the role and the action, unless `role` has `permission`.
pub fn require(role: Role, permission: Permission) -> Result<(), crate::OperationError> {
    if allows(role, permission) {
        Ok(())
    } else {
        Err(crate::OperationError::Forbidden {
            role: role.to_string(),
            action: permission.action(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_agrees_with_the_store_rule() {
        for role in [Role::Operator, Role::Clinician, Role::LabAdmin] {
            assert_eq!(
                allows(role, Permission::ReleaseResults),
                role.may_release_results(),
                "{role}"
            );
        }
    }

    #[test]
    fn operators_cannot_browse_patients_and_clinicians_cannot_run_samples() {
        assert!(!allows(Role::Operator, Permission::ViewPatients));
        assert!(!allows(Role::Clinician, Permission::OperateRuns));
        assert!(!allows(Role::Clinician, Permission::ManageCalibrations));
        assert!(!allows(Role::Operator, Permission::ManageCalibrations));
    }

    #[test]
    fn operators_record_qc_and_only_lab_admins_administer() {
        assert!(allows(Role::Operator, Permission::RecordQc));
        assert!(!allows(Role::Clinician, Permission::RecordQc));
        for permission in [
            Permission::ManageQc,
            Permission::ManageUsers,
            Permission::ViewAuditTrail,
            Permission::DownloadBackup,
            Permission::ManageOutbox,
        ] {
            assert!(allows(Role::LabAdmin, permission));
            assert!(!allows(Role::Operator, permission));
            assert!(!allows(Role::Clinician, permission));
        }
    }
}
