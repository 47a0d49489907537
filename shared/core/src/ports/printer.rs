//! The printer: print-ready files of a book sent with an order, a job's state read back, and
//! its webhooks believed only when signed. The one implementation is Lulu's Print API
//! (`storybook-pipeline`'s `print`); a server without it is given [`NotGiven`](super::NotGiven).

use super::marketplace::Unverifiable;
use crate::domain::book::Book;
use crate::domain::print::{PrintOrder, PrintStatus};
use async_trait::async_trait;

/// A print job at the printer, as it last said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintJob {
    /// The printer's id of the job.
    pub id: String,
    /// Our order id, as the job carries it (`external_id`).
    pub order_id: Option<String>,
    pub status: PrintStatus,
    pub tracking_number: Option<String>,
    /// What the printer charges us, in `currency`'s minor units.
    pub total: Option<i64>,
    pub currency: Option<String>,
}

/// A job ready to be created: its files where the printer fetches them, and its cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedJob {
    pub title: String,
    pub interior_url: String,
    pub cover_url: String,
    /// What the printer will charge us, in `currency`'s minor units.
    pub total: i64,
    pub currency: String,
}

/// Why the printer could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PrinterError {
    /// No printer is configured here.
    #[error("no printer is configured")]
    NotConfigured,
    /// The printer refused the job (its files, the address): an operator must look.
    #[error("the printer refused the job: {0}")]
    Refused(String),
    /// The printer (or our blob storage) could not be reached, and no job was made; try again
    /// later.
    #[error("the printer is unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// The job's creation got no answer: it may exist at the printer. Not tried again here.
    #[error("the printer did not answer whether it made the job: {0:#}")]
    Unknown(anyhow::Error),
}

#[async_trait]
pub trait Printer: Send + Sync {
    /// Makes `book`'s print-ready files for `order`, stores them where the printer fetches
    /// them, and asks what the job will cost: everything short of the job, safe to repeat.
    async fn prepare(&self, order: &PrintOrder, book: &Book) -> Result<PreparedJob, PrinterError>;

    /// Creates the print job `prepared` describes; answers the job. Not repeated on a lost
    /// answer ([`PrinterError::Unknown`]).
    async fn create(
        &self,
        order: &PrintOrder,
        prepared: &PreparedJob,
    ) -> Result<PrintJob, PrinterError>;

    /// The job `job_id` as the printer says now.
    async fn job(&self, job_id: &str) -> Result<PrintJob, PrinterError>;

    /// A webhook's body, believed only when `signature` is the printer's over it.
    fn webhook(&self, body: &[u8], signature: Option<&str>) -> Result<PrintJob, Unverifiable>;
}
