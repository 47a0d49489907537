//! A page's picture: drawn (again once, safer, when refused) and stored, then recorded.

use super::*;

impl Pipeline {
    /// Draws one picture and stores it under `key_for(extension)`; a provider's safety refusal
    /// is drawn again once with a safer prompt.
    pub(super) async fn draw(
        &self,
        book: &Book,
        step: Step,
        prompt: &crate::providers::ImagePrompt,
        key_for: impl Fn(&str) -> BlobKey,
    ) -> Result<Drawn, StepError> {
        let mut attempt = prompt.clone();
        for safer in [false, true] {
            if safer {
                attempt = artwork::safer(prompt);
            }
            let providers = &self.providers;
            let images = providers.names.images.join(",");
            match self
                .provider_call(
                    &book.id,
                    step,
                    &images,
                    providers.illustrator.illustrate(&attempt),
                )
                .await?
            {
                Ok(made) => {
                    let from_picture = book.request.from_picture;
                    let fetcher = &self.providers.fetcher;
                    let key =
                        artwork::store(&*self.blobs, fetcher, made, from_picture, key_for).await?;
                    return Ok(Drawn::Stored(key));
                }
                Err(ProviderError::Refused(reason)) => {
                    tracing::info!(book = book.id.as_str(), safer, %reason, "picture refused by the provider's safety system");
                }
                Err(error) => return Err(StepError::provider(provider_code(&error, false), error)),
            }
        }
        Ok(Drawn::Refused)
    }

    #[tracing::instrument(skip(self, id))]
    pub(super) async fn illustrate(&self, id: &BookId, page: u8) -> Result<(), StepError> {
        let Some(stored) = self.store.find_book(id).await? else {
            return Ok(());
        };
        let book = stored.book;
        let Some(current) = book.pages.iter().find(|p| p.number == page) else {
            return Ok(());
        };
        if !book.in_production() || current.image_state != ImageState::Pending {
            return self.assemble_when_ready(&book).await;
        }
        let reference = match &book.reference_key {
            Some(key) => {
                let key = BlobKey::parse(key)
                    .map_err(|e| StepError::retry(FailureCode::ImageFailed, e))?;
                self.blobs.get(&key).await?
            }
            None => None,
        };
        let kind = if page == 0 {
            PictureKind::Cover
        } else {
            PictureKind::Page
        };
        let prompt = artwork::prompt(&book, kind, Some(current)).with_reference(reference);
        match self
            .draw(&book, Step::Illustrate { page }, &prompt, |ext| {
                image_key_as(id, page, ext)
            })
            .await?
        {
            Drawn::Stored(key) => {
                self.record_asset(
                    id,
                    page,
                    Asset::Image(key.as_str().to_owned(), ImageState::Generated),
                    None,
                )
                .await
            }
            Drawn::Refused => {
                let warning = GenerationWarning {
                    code: WarningCode::ImageRefused,
                    page_number: page,
                };
                self.place_placeholder(id, page, warning).await
            }
        }
    }
}
