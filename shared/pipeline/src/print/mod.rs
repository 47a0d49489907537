//! The printer of paid-for copies: Lulu's Print API (the core's `Printer` port). At submission
//! the book's print-ready files are made from its own stored pictures, kept beside the book
//! (`books/{id}/print/{order}/`), and handed to Lulu as signed URLs it fetches; the job's cost
//! is asked first and the job created once.

mod files;
mod lulu;
mod settings;

pub use settings::{DEFAULT_PACKAGE, LULU_PRODUCTION, LULU_SANDBOX, LuluSettings};

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use files::{PrintBook, trim_of};
use lulu::{Failed, Lulu};
use std::sync::Arc;
use std::time::Duration;
use storybook_core::book_files::print_file_key;
use storybook_core::domain::book::Book;
use storybook_core::domain::print::PrintOrder;
use storybook_core::ports::BlobStore;
use storybook_core::ports::blobs::stream_of;
use storybook_core::ports::marketplace::Unverifiable;
use storybook_core::ports::printer::{PreparedJob, PrintJob, Printer, PrinterError};

/// How long Lulu may fetch the files: it fetches them after the job is made, sometimes late.
const FILES_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

/// Lulu, over our blob storage.
pub struct LuluPrinter {
    lulu: Lulu,
    blobs: Arc<dyn BlobStore>,
}

impl LuluPrinter {
    pub fn new(settings: LuluSettings, blobs: Arc<dyn BlobStore>) -> Self {
        Self {
            lulu: Lulu::new(settings),
            blobs,
        }
    }

    /// A call that may be asked again when Lulu is busy (reads, and the cost and cover
    /// calculations: never the job's creation).
    async fn again<T, F, Fut>(call: F) -> Result<T, PrinterError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failed>>,
    {
        call.retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(2))
                .with_max_times(2)
                .with_jitter(),
        )
        .when(|failed: &Failed| matches!(failed, Failed::Busy(_) | Failed::Unsent(_)))
        .await
        .map_err(PrinterError::from)
    }

    /// The job's creation, asked again only when it was never sent; an answer lost after
    /// sending is `Unknown`.
    async fn again_unsent<F, Fut>(call: F) -> Result<PrintJob, PrinterError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<PrintJob, Failed>>,
    {
        call.retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_times(1),
        )
        .when(|failed: &Failed| matches!(failed, Failed::Unsent(_)))
        .await
        .map_err(|failed| match failed {
            Failed::Busy(error) => PrinterError::Unknown(error),
            other => PrinterError::from(other),
        })
    }

    /// Stores a print-ready file and answers the URL Lulu fetches it from.
    async fn publish(
        &self,
        order: &PrintOrder,
        file: &str,
        pdf: Vec<u8>,
    ) -> Result<String, PrinterError> {
        let key = print_file_key(&order.book_id, &order.id, file);
        let unavailable = |e: storybook_core::ports::BlobError| PrinterError::Unavailable(e.into());
        self.blobs
            .put(&key, stream_of(pdf))
            .await
            .map_err(unavailable)?;
        self.blobs
            .signed_url(&key, FILES_FOR)
            .await
            .map_err(unavailable)
    }
}

#[async_trait]
impl Printer for LuluPrinter {
    async fn prepare(&self, order: &PrintOrder, book: &Book) -> Result<PreparedJob, PrinterError> {
        let print = PrintBook::read(book, &*self.blobs)
            .await
            .map_err(PrinterError::Unavailable)?;
        let pages = print.interior_pages();
        let trim = trim_of(&self.lulu.settings.package_id).expect("checked at start");
        let cover_size = Self::again(|| self.lulu.cover_dimensions(pages)).await?;
        let (print, interior, cover) = tokio::task::spawn_blocking(move || {
            let interior = print.interior(trim)?;
            let cover = print.cover(cover_size)?;
            Ok::<_, anyhow::Error>((print, interior, cover))
        })
        .await
        .map_err(|e| PrinterError::Unavailable(e.into()))?
        .map_err(PrinterError::Unavailable)?;
        let interior_url = self.publish(order, "interior", interior).await?;
        let cover_url = self.publish(order, "cover", cover).await?;
        let (total, currency) = Self::again(|| self.lulu.cost(order, pages)).await?;
        Ok(PreparedJob {
            title: print.title,
            interior_url,
            cover_url,
            total,
            currency,
        })
    }

    async fn create(
        &self,
        order: &PrintOrder,
        prepared: &PreparedJob,
    ) -> Result<PrintJob, PrinterError> {
        // Created once: an answer lost after sending is not asked again (it may have made the
        // job); one never sent is.
        let job = Self::again_unsent(|| self.lulu.create_job(order, prepared)).await?;
        Ok(PrintJob {
            order_id: job.order_id.clone().or(Some(order.id.clone())),
            total: job.total.or(Some(prepared.total)),
            currency: job.currency.clone().or(Some(prepared.currency.clone())),
            ..job
        })
    }

    async fn job(&self, job_id: &str) -> Result<PrintJob, PrinterError> {
        Self::again(|| self.lulu.job(job_id)).await
    }

    fn webhook(&self, body: &[u8], signature: Option<&str>) -> Result<PrintJob, Unverifiable> {
        let signature = signature.ok_or_else(|| Unverifiable("no Lulu-HMAC-SHA256".into()))?;
        if !self.lulu.signed(body, signature) {
            return Err(Unverifiable("Lulu's HMAC does not match".into()));
        }
        lulu::webhook_job(body)
    }
}
