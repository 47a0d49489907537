//! The studio over the providers: the calls an API function makes while the parent waits. Each
//! is made only while generation may go on, and its cost is counted in today's spend like a
//! book step's (under the character's or the book's id).

use crate::pictures;
use crate::providers::fetch::Expected;
use crate::providers::{
    Artwork, CharacterReference, DesignBrief, ImagePrompt, Metered, PictureKind, ProviderError,
    Providers, SpeechRequest, Verdict, seed_of,
};
use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use storybook_core::domain::book::{BookId, Language, Style, TargetAge};
use storybook_core::domain::character::{Sheet, UploadKind, UploadRefusal};
use storybook_core::ports::studio::{
    CharacterWords, PageSpeech, PictureCharacter, Studio, StudioError, Upload,
};
use storybook_core::spend::SpendGuard;

use crate::pictures::SHOWN_SIDE;

pub struct ProviderStudio {
    providers: Providers,
    spend: SpendGuard,
    max_pixels: u64,
}

impl ProviderStudio {
    pub fn new(app: &storybook_core::app::App, providers: Providers) -> Self {
        Self {
            providers,
            spend: SpendGuard::new(app),
            max_pixels: app.config.upload_max_pixels,
        }
    }

    /// One provider call, made only while generation may go on, its cost counted under
    /// `spent_on`.
    async fn metered<T>(
        &self,
        spent_on: &str,
        step: &str,
        call: impl std::future::Future<Output = Result<Metered<T>, ProviderError>>,
    ) -> Result<T, StudioError> {
        if let Some(stopped) = self
            .spend
            .stopped()
            .await
            .map_err(|e| StudioError::Unavailable(e.into()))?
        {
            return Err(StudioError::Stopped(stopped));
        }
        let made = call.await.map_err(|error| match error {
            ProviderError::Refused(_) => StudioError::Refused,
            other => StudioError::Unavailable(other.into()),
        })?;
        if let Ok(id) = BookId::parse(spent_on)
            && let Err(error) = self.spend.record(&id, step, &made.usage).await
        {
            tracing::error!(usage = ?made.usage, error = format!("{error:#}"), "provider spend not recorded");
        }
        Ok(made.value)
    }

    /// The character's reference picture, drawn from its sheet with the child's picture as the
    /// reference, as a PNG of its pixels alone (whatever the provider put in its file).
    async fn draw_reference(
        &self,
        spent_on: &str,
        sheet: &Sheet,
        style: &str,
        picture: Bytes,
    ) -> Result<Bytes, StudioError> {
        let features = sheet
            .distinctive_features
            .as_deref()
            .unwrap_or_default()
            .join(", ");
        let prompt = ImagePrompt {
            prompt: format!(
                "Character reference for a children's picture book: {}. {features}. Full body, \
                 standing, facing forward, plain light background.",
                sheet.master_description
            ),
            negative_prompt: "text, watermark, photo-realistic face, scary".into(),
            style: Style::parse(style).unwrap_or(Style::Cartoon),
            seed: seed_of(&sheet.master_description),
            reference: CharacterReference {
                name: sheet.name.clone(),
                description: Some(sheet.master_description.clone()),
                seed: seed_of(&sheet.name),
            },
            kind: PictureKind::Reference,
            reference_image: Some(picture),
        };
        let illustrator = &self.providers.illustrator;
        let artwork = self
            .metered(spent_on, "reference", illustrator.illustrate(&prompt))
            .await?;
        let bytes = match artwork {
            Artwork::Bytes(bytes) => bytes,
            Artwork::Url(url) => {
                let fetched = self
                    .providers
                    .fetcher
                    .fetch(&url, Expected::Image)
                    .await
                    .map_err(|e| StudioError::Unavailable(e.into()))?;
                let parts: Vec<Bytes> = fetched
                    .body
                    .try_collect()
                    .await
                    .map_err(|e| StudioError::Unavailable(e.into()))?;
                Bytes::from(parts.concat())
            }
        };
        let unusable = || StudioError::Unavailable(anyhow::anyhow!("the reference is no picture"));
        let decoded = image::load_from_memory(&bytes).map_err(|_| unusable())?;
        Ok(pictures::png_of(&decoded))
    }
}

#[async_trait]
impl Studio for ProviderStudio {
    async fn moderate(&self, words: &str, spent_on: &str) -> Result<(), StudioError> {
        let moderator = &self.providers.moderator;
        match self
            .metered(spent_on, "moderate", moderator.check(words))
            .await?
        {
            Verdict::Allowed => Ok(()),
            Verdict::Refused(_) => Err(StudioError::Refused),
        }
    }

    async fn sheet_from_words(
        &self,
        words: &CharacterWords,
        spent_on: &str,
    ) -> Result<Sheet, StudioError> {
        let said = format!("{} {} {}", words.name, words.age, words.traits.join(", "));
        self.moderate(&said, spent_on).await?;
        let brief = DesignBrief::Words(words.clone());
        let designer = &self.providers.designer;
        let sheet = self
            .metered(spent_on, "design", designer.design(&brief))
            .await?;
        // What the model filled in is moderated like what the parent wrote.
        self.moderate(&sheet.words(), spent_on).await?;
        Ok(sheet)
    }

    async fn character_from_upload(
        &self,
        upload: &Upload,
        spent_on: &str,
    ) -> Result<PictureCharacter, StudioError> {
        if let Some(name) = &upload.name {
            self.moderate(name, spent_on).await?;
        }
        // Decoding is CPU work: off the request's thread.
        let (bytes, max_pixels) = (upload.bytes.clone(), self.max_pixels);
        let shown = tokio::task::spawn_blocking(move || {
            let decoded = pictures::decode_upload(&bytes, max_pixels)?;
            let small = decoded.thumbnail(SHOWN_SIDE, SHOWN_SIDE);
            Ok::<_, UploadRefusal>((pictures::png_of(&small), pictures::main_colours(&small)))
        })
        .await
        .map_err(|e| StudioError::Unavailable(e.into()))?;
        let (png, colours) = shown.map_err(StudioError::Upload)?;
        let brief = DesignBrief::Picture {
            kind: upload.kind,
            png: png.clone(),
            colours,
            name: upload.name.clone(),
            style: upload.style.clone(),
        };
        let designer = &self.providers.designer;
        let sheet = self
            .metered(spent_on, "design", designer.design(&brief))
            .await?;
        self.moderate(&sheet.words(), spent_on).await?;
        let style = match upload.kind {
            UploadKind::Photo => upload.style.as_str(),
            // The app's drawing style (`storybook_crayon`) is no book style: drawn as a cartoon.
            UploadKind::Drawing => "cartoon",
        };
        let reference = self.draw_reference(spent_on, &sheet, style, png).await?;
        Ok(PictureCharacter { sheet, reference })
    }

    async fn read_aloud(
        &self,
        text: &str,
        language: Language,
        age: TargetAge,
        spent_on: &str,
    ) -> Result<PageSpeech, StudioError> {
        let request = SpeechRequest {
            text: text.to_owned(),
            language,
            age,
        };
        let narrator = &self.providers.narrator;
        let speech = self
            .metered(spent_on, "narrate", narrator.narrate(&request))
            .await?;
        Ok(PageSpeech {
            audio: speech.audio,
            format: speech.format,
        })
    }
}
