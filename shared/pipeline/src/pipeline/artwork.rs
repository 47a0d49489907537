//! Pictures of a book: the prompt every illustrator gets (the book's style, the character sheets,
//! the scene, what to leave out, one seed per book), and storing what comes back, whether bytes
//! or a URL, with its type and size checked and its metadata removed where it is held.

use crate::providers::fetch::{Expected, FetchError, SafeFetcher, image_extension};
use crate::providers::{Artwork, CharacterReference, ImagePrompt, PictureKind, seed_of};
use bytes::Bytes;
use futures::TryStreamExt;
use storybook_core::domain::book::{Book, Page};
use storybook_core::ports::BlobStore;
use storybook_core::ports::blobs::{BlobKey, stream_of};

/// What no picture in a children's book shows, whatever the story says.
const ALWAYS_LEFT_OUT: &[&str] = &[
    "text",
    "letters",
    "watermark",
    "signature",
    "scary",
    "violent",
    "blood",
    "weapons",
    "deformed hands",
    "extra limbs",
];

/// The prompt for one picture of `book`: the reference (the hero alone), the cover, or a page.
pub fn prompt(book: &Book, kind: PictureKind, page: Option<&Page>) -> ImagePrompt {
    let request = &book.request;
    let style = request.style.as_str().replace('_', " ");
    let hero = request.hero();
    let present: Vec<&storybook_core::domain::character::Sheet> = match page {
        Some(page) if !page.characters.is_empty() => book
            .characters
            .iter()
            .filter(|sheet| page.characters.iter().any(|name| name == &sheet.name))
            .collect(),
        _ => book.characters.iter().take(1).collect(),
    };
    let sheets = present
        .iter()
        .map(|sheet| sheet.prompt_line())
        .collect::<Vec<_>>()
        .join(" ");
    let scene = match (kind, page) {
        (PictureKind::Reference, _) => format!(
            "A character reference of {hero} alone, full body, facing forward, plain light background."
        ),
        (PictureKind::Cover, _) => format!(
            "The cover of a picture book titled \"{}\": {}",
            book.title.as_deref().unwrap_or_default(),
            if book.cover_scene.is_empty() {
                format!("{hero} smiling")
            } else {
                book.cover_scene.clone()
            }
        ),
        (PictureKind::Page, Some(page)) if !page.scene.is_empty() => page.scene.clone(),
        (PictureKind::Page, Some(page)) => page.text.clone(),
        (PictureKind::Page, None) => String::new(),
    };
    let mut left_out: Vec<&str> = ALWAYS_LEFT_OUT.to_vec();
    left_out.extend(request.forbidden_elements.iter().map(String::as_str));
    let hero_sheet = book.characters.first();
    let description = hero_sheet
        .map(|sheet| sheet.prompt_line())
        .or_else(|| request.character_appearance.clone());
    ImagePrompt {
        prompt: format!(
            "A {style} illustration for a children's picture book, gentle and warm. {scene} \
             Characters, drawn exactly as described on every page: {sheets}"
        )
        .trim()
        .to_owned(),
        negative_prompt: left_out.join(", "),
        style: request.style,
        // One seed per book: its pictures belong together.
        seed: seed_of(book.id.as_str()),
        reference: CharacterReference {
            name: hero.to_owned(),
            seed: seed_of(&format!(
                "{hero}|{}",
                request.character_appearance.as_deref().unwrap_or_default()
            )),
            description,
        },
        kind,
        reference_image: None,
    }
}

/// The same picture asked again after a safety refusal: calmer words, the same characters.
pub fn safer(prompt: &ImagePrompt) -> ImagePrompt {
    ImagePrompt {
        prompt: format!(
            "{} Keep everything calm, friendly, fully clothed and wholesome, suitable for a \
             toddler's bedtime book.",
            prompt.prompt
        ),
        negative_prompt: format!(
            "{}, danger, fighting, frightening faces, nudity",
            prompt.negative_prompt
        ),
        ..prompt.clone()
    }
}

/// Stores a provider's picture under `key_for(extension)`, with its type and size checked.
/// Bytes lose their metadata (a provider's EXIF, XMP or text chunks). A URL is fetched through
/// the SSRF-safe fetcher and streamed straight into the blob, unless the picture is drawn from a
/// child's photo or drawing (`from_picture`): then it is held (at most the fetcher's size cap)
/// to lose its metadata too, since nothing derived from a child's picture may say where or how
/// it was made.
pub async fn store(
    blobs: &dyn BlobStore,
    fetcher: &SafeFetcher,
    artwork: Artwork,
    from_picture: bool,
    key_for: impl Fn(&str) -> BlobKey,
) -> Result<BlobKey, super::StepError> {
    let unusable = |why: String| {
        super::StepError::retry(
            storybook_core::domain::failure::FailureCode::ImageFailed,
            anyhow::anyhow!("the picture: {why}"),
        )
    };
    let too_large = || unusable(FetchError::TooLarge(fetcher.policy().max_bytes).to_string());
    let bytes = match artwork {
        Artwork::Bytes(bytes) => bytes,
        Artwork::Url(url) => {
            let fetched = fetcher
                .fetch(&url, Expected::Image)
                .await
                .map_err(|e| unusable(e.to_string()))?;
            let flag = fetched.too_large_flag();
            if !from_picture {
                let key = key_for(fetched.extension);
                return match blobs.put(&key, fetched.body).await {
                    Ok(()) => Ok(key),
                    Err(_) if flag.is_set() => Err(too_large()),
                    Err(error) => Err(error.into()),
                };
            }
            let parts: Result<Vec<Bytes>, _> = fetched.body.try_collect().await;
            match parts {
                Ok(parts) => Bytes::from(parts.concat()),
                Err(_) if flag.is_set() => return Err(too_large()),
                Err(error) => return Err(unusable(error.to_string())),
            }
        }
    };
    if bytes.len() as u64 > fetcher.policy().max_bytes {
        return Err(too_large());
    }
    let extension = image_extension(&bytes)
        .ok_or_else(|| unusable("bytes that are not PNG, JPEG or WebP".into()))?;
    let clean = crate::pictures::without_metadata(bytes)
        .ok_or_else(|| unusable("a picture whose parts cannot be read".into()))?;
    let key = key_for(extension);
    blobs.put(&key, stream_of(clean)).await?;
    Ok(key)
}
