//! A port a function is not given: the credits and admin functions have no blob store and no
//! queue (their IAM policies allow neither, and they link neither client); only the studio
//! function is given the studio (the providers). Every call fails as
//! an unreachable dependency would; the route declarations keep such functions to routes that make
//! no such call, and a test runs every one of their routes over this port.

use super::blobs::{BlobError, BlobFolder, BlobKey, BlobStore, BlobStream};
use super::marketplace::{
    Marketplace, NotificationDelivery, PurchaseClaim, StoreAnswer, StoreNotification,
    StoreSubscription, StoreUnavailable, Unverifiable,
};
use super::printer::{PreparedJob, PrintJob, Printer, PrinterError};
use super::queue::{QueueError, QueuedMessage, StepQueue};
use super::studio::{CharacterWords, PageSpeech, PictureCharacter, Studio, StudioError, Upload};
use crate::domain::book::{Book, Language, TargetAge};
use crate::domain::character::Sheet;
use crate::domain::print::PrintOrder;
use crate::domain::purchase::{Platform, PurchaseRefusal};
use async_trait::async_trait;
use bytes::Bytes;
use std::time::Duration;

#[derive(Debug, Clone, Copy, Default)]
pub struct NotGiven;

fn not_given(port: &str) -> anyhow::Error {
    anyhow::anyhow!("this function is not given a {port}")
}

#[async_trait]
impl BlobStore for NotGiven {
    async fn put(&self, _: &BlobKey, _: BlobStream) -> Result<(), BlobError> {
        Err(BlobError::Unavailable(not_given("blob store")))
    }

    async fn get(&self, _: &BlobKey) -> Result<Option<Bytes>, BlobError> {
        Err(BlobError::Unavailable(not_given("blob store")))
    }

    async fn delete(&self, _: &BlobKey) -> Result<(), BlobError> {
        Err(BlobError::Unavailable(not_given("blob store")))
    }

    async fn delete_folder(&self, _: &BlobFolder) -> Result<(), BlobError> {
        Err(BlobError::Unavailable(not_given("blob store")))
    }

    async fn signed_url(&self, _: &BlobKey, _: Duration) -> Result<String, BlobError> {
        Err(BlobError::Unavailable(not_given("blob store")))
    }

    async fn ping(&self) -> Result<(), BlobError> {
        Err(BlobError::Unavailable(not_given("blob store")))
    }
}

#[async_trait]
impl StepQueue for NotGiven {
    async fn send_delayed(&self, _: &str, _: Duration) -> Result<String, QueueError> {
        Err(QueueError::Unavailable(not_given("step queue")))
    }

    async fn receive(&self, _: u32, _: Duration) -> Result<Vec<QueuedMessage>, QueueError> {
        Err(QueueError::Unavailable(not_given("step queue")))
    }

    async fn delete(&self, _: &str) -> Result<(), QueueError> {
        Err(QueueError::Unavailable(not_given("step queue")))
    }

    async fn postpone(&self, _: &str, _: Duration) -> Result<(), QueueError> {
        Err(QueueError::Unavailable(not_given("step queue")))
    }

    async fn dead_letters(&self, _: u32) -> Result<Vec<QueuedMessage>, QueueError> {
        Err(QueueError::Unavailable(not_given("step queue")))
    }

    async fn ping(&self) -> Result<(), QueueError> {
        Err(QueueError::Unavailable(not_given("step queue")))
    }
}

#[async_trait]
impl Studio for NotGiven {
    async fn moderate(&self, _: &str, _: &str) -> Result<(), StudioError> {
        Err(StudioError::Unavailable(not_given("studio")))
    }

    async fn sheet_from_words(&self, _: &CharacterWords, _: &str) -> Result<Sheet, StudioError> {
        Err(StudioError::Unavailable(not_given("studio")))
    }

    async fn character_from_upload(
        &self,
        _: &Upload,
        _: &str,
    ) -> Result<PictureCharacter, StudioError> {
        Err(StudioError::Unavailable(not_given("studio")))
    }

    async fn read_aloud(
        &self,
        _: &str,
        _: Language,
        _: TargetAge,
        _: &str,
    ) -> Result<PageSpeech, StudioError> {
        Err(StudioError::Unavailable(not_given("studio")))
    }
}

/// No store is configured: every purchase is refused as such (never trusted unchecked).
#[async_trait]
impl Marketplace for NotGiven {
    async fn confirm(&self, _: &PurchaseClaim) -> StoreAnswer {
        Ok(Err(PurchaseRefusal::StoreNotConfigured))
    }

    async fn cancel_renewal(
        &self,
        _: Platform,
        _: &str,
        _: &str,
    ) -> Result<bool, StoreUnavailable> {
        Ok(false)
    }

    async fn notification(
        &self,
        _: &NotificationDelivery,
    ) -> Result<StoreNotification, Unverifiable> {
        Err(Unverifiable("no store is configured".into()))
    }

    async fn subscription(
        &self,
        _: Platform,
        _: &str,
        _: &str,
    ) -> Result<Option<StoreSubscription>, StoreUnavailable> {
        Err(StoreUnavailable(not_given("marketplace")))
    }
}

/// No printer: orders wait, approved, until one is configured.
#[async_trait]
impl Printer for NotGiven {
    async fn prepare(&self, _: &PrintOrder, _: &Book) -> Result<PreparedJob, PrinterError> {
        Err(PrinterError::NotConfigured)
    }

    async fn create(&self, _: &PrintOrder, _: &PreparedJob) -> Result<PrintJob, PrinterError> {
        Err(PrinterError::NotConfigured)
    }

    async fn job(&self, _: &str) -> Result<PrintJob, PrinterError> {
        Err(PrinterError::NotConfigured)
    }

    fn webhook(&self, _: &[u8], _: Option<&str>) -> Result<PrintJob, Unverifiable> {
        Err(Unverifiable("no printer is configured".into()))
    }
}
