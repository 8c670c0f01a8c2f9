//! The clinician's lists: the patient list with its search (MRN prefix, date of birth) and the
//! worklist of results awaiting release, each one bounded page with links to the next and first
//! pages.

use askama::Template;
use askama_web::WebTemplate;

use super::count_view::CountView;
use super::layout::Layout;
use super::paths;

/// One patient in the list.
#[derive(Clone, Debug, PartialEq)]
pub struct PatientListRow {
    /// Patient id.
    pub patient_id: i64,
    /// MRN.
    pub mrn: String,
    /// Date of birth, `YYYY-MM-DD`, or "not recorded".
    pub birth_date: String,
    /// Name or initials where the site keeps them, else empty.
    pub name: String,
    /// The patient's indication, or "—".
    pub indication: String,
}

impl PatientListRow {
    /// The patient's page.
    pub fn href(&self) -> String {
        paths::patient(self.patient_id)
    }
}

/// The patient list (`GET /patients`).
#[derive(Clone, Debug, Template, WebTemplate)]
#[template(path = "patient_list.html")]
pub struct PatientListPage {
    /// Frame.
    pub layout: Layout,
    /// The MRN prefix searched for, as typed.
    pub mrn_prefix: String,
    /// The date of birth searched for, as typed.
    pub birth_date: String,
    /// What is wrong with the search, in words (the form is shown again with it).
    pub search_error: Option<String>,
    /// The patients of this page.
    pub rows: Vec<PatientListRow>,
    /// Whether the site keeps names or initials (the column is shown only then).
    pub shows_names: bool,
    /// The next page, when there is one.
    pub next_href: Option<String>,
    /// The first page, when this is not it.
    pub first_href: Option<String>,
}

impl PatientListPage {
    /// Whether anything was searched for.
    pub fn searched(&self) -> bool {
        !self.mrn_prefix.trim().is_empty() || !self.birth_date.trim().is_empty()
    }

    /// The list's address (the search form's target and "clear the search").
    pub fn list_href(&self) -> &'static str {
        paths::PATIENT_SEARCH
    }
}

/// One result awaiting release.
#[derive(Clone, Debug, PartialEq)]
pub struct WorklistRow {
    /// Run id.
    pub run_id: i64,
    /// Patient id.
    pub patient_id: i64,
    /// MRN.
    pub mrn: String,
    /// Date of birth or "not recorded".
    pub birth_date: String,
    /// Accession number.
    pub accession: String,
    /// Draw time, readable.
    pub drawn_at: String,
    /// When the result was reached, readable, or "—".
    pub finished_at: String,
    /// The result.
    pub count: CountView,
    /// Whether a QC hold blocks its release.
    pub qc_hold: bool,
}

impl WorklistRow {
    /// The run's report (where it is released).
    pub fn href(&self) -> String {
        paths::run(self.run_id)
    }

    /// The patient's page.
    pub fn patient_href(&self) -> String {
        paths::patient(self.patient_id)
    }
}

/// The worklist (`GET /worklist`).
#[derive(Clone, Debug, Template, WebTemplate)]
#[template(path = "worklist.html")]
pub struct WorklistPage {
    /// Frame.
    pub layout: Layout,
    /// The results of this page, oldest first.
    pub rows: Vec<WorklistRow>,
    /// The next page, when there is one.
    pub next_href: Option<String>,
    /// The first page, when this is not it.
    pub first_href: Option<String>,
}
