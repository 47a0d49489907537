//! What the app reads about a book: the job it polls, the finished book with its signed links,
//! the PDF's link (the app contract's `JobCreateResponse`, `JobStatus`, `BookResult`).

use crate::routes::timestamp;
use axum::Json;
use serde::Serialize;
use storybook_core::domain::book::{AudioState, Book, GenerationWarning, ImageState, JobState};
use storybook_core::domain::failure::FailureCode;
use storybook_core::usecases::books::BookLinks;

fn estimate_seconds(book: &Book) -> u32 {
    20 + 5 * u32::from(book.request.page_count.get())
}

/// The app contract's `JobCreateResponse`.
#[derive(Serialize)]
pub struct JobCreated<'a> {
    job_id: &'a str,
    status: &'static str,
    estimated_time_seconds: u32,
}

pub(super) fn created(book: &Book) -> Json<JobCreated<'_>> {
    Json(JobCreated {
        job_id: book.id.as_str(),
        status: "queued",
        estimated_time_seconds: estimate_seconds(book),
    })
}

/// The app contract's `BookResult` of a finished book, with fresh signed URLs.
#[derive(Serialize)]
pub struct BookResult<'a> {
    book_id: &'a str,
    title: &'a str,
    language: &'static str,
    target_age: &'static str,
    style: &'static str,
    cover_image_url: String,
    pages: Vec<PageResult<'a>>,
    created_at: String,
    pdf_url: Option<String>,
    generation_warnings: Vec<Warning>,
    #[serde(skip_serializing_if = "Option::is_none")]
    series_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    series_index: Option<u32>,
}

/// The app contract's `GenerationWarning`: something the book was delivered without.
#[derive(Serialize)]
struct Warning {
    code: &'static str,
    message: &'static str,
    asset: &'static str,
    page_number: u8,
}

impl From<&GenerationWarning> for Warning {
    fn from(warning: &GenerationWarning) -> Self {
        Warning {
            code: warning.code.as_str(),
            message: warning.code.message(),
            asset: warning.code.asset(),
            page_number: warning.page_number,
        }
    }
}

/// One page of a `BookResult`.
#[derive(Serialize)]
struct PageResult<'a> {
    page_number: u8,
    text: &'a str,
    image_url: String,
    asset_status: AssetStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    audio_url: Option<String>,
}

/// A page's picture and narration, each with its state (and why it is missing).
#[derive(Serialize)]
struct AssetStatus {
    image: Asset,
    #[serde(skip_serializing_if = "Option::is_none")]
    audio: Option<Asset>,
}

#[derive(Serialize)]
struct Asset {
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

impl<'a> BookResult<'a> {
    pub fn of(book: &'a Book, links: BookLinks) -> Self {
        let pages = book
            .story_pages()
            .zip(links.pages)
            .map(|(page, (image_url, audio_url))| {
                let image = match page.image_state {
                    ImageState::Generated => ("generated", None),
                    ImageState::Degraded => ("degraded", None),
                    ImageState::Missing | ImageState::Pending => (
                        "missing",
                        Some("The picture could not be drawn; a placeholder is shown."),
                    ),
                };
                let audio = match page.audio_state {
                    AudioState::Available => Some(Asset {
                        state: "available",
                        url: audio_url.clone(),
                        reason: None,
                    }),
                    AudioState::Missing | AudioState::Pending => Some(Asset {
                        state: "missing",
                        url: None,
                        reason: Some("The narration could not be made."),
                    }),
                    AudioState::NotRequested => None,
                };
                PageResult {
                    page_number: page.number,
                    text: &page.text,
                    asset_status: AssetStatus {
                        image: Asset {
                            state: image.0,
                            url: Some(image_url.clone()),
                            reason: image.1,
                        },
                        audio,
                    },
                    image_url,
                    audio_url,
                }
            })
            .collect();
        BookResult {
            book_id: book.id.as_str(),
            title: book.title.as_deref().unwrap_or_default(),
            language: book.request.language.as_str(),
            target_age: book.request.target_age.as_str(),
            style: book.request.style.as_str(),
            cover_image_url: links.cover,
            pages,
            created_at: timestamp(book.created_at),
            pdf_url: links.pdf,
            generation_warnings: book.warnings.iter().map(Warning::from).collect(),
            series_id: book.request.series.as_ref().map(|s| s.id.as_str()),
            series_index: book.request.series.as_ref().map(|s| s.number),
        }
    }
}

/// The friendly sentence for a failed job; only moderation of the request says what it refused.
fn failure_message(book: &Book) -> String {
    match book.failure {
        Some(FailureCode::SafetyInput) => book
            .refusal
            .clone()
            .unwrap_or_else(|| "This topic is not suitable for a children's book.".into())
            .chars()
            .take(300)
            .collect(),
        Some(FailureCode::SafetyOutput) => {
            "The story did not pass our safety check. Your credit was returned.".into()
        }
        _ => "We could not finish this book. Your credit was returned; please try again.".into(),
    }
}

/// The app contract's `JobStatus`, polled by the app every 2 s.
#[derive(Serialize)]
pub struct JobStatus<'a> {
    job_id: &'a str,
    status: &'static str,
    progress: u8,
    current_step: &'static str,
    error: Option<JobError>,
    result: Option<BookResult<'a>>,
}

impl<'a> JobStatus<'a> {
    pub fn of(book: &'a Book, links: Option<BookLinks>) -> Self {
        JobStatus {
            job_id: book.id.as_str(),
            status: book.state.as_str(),
            progress: book.progress(),
            current_step: book.current_step(),
            error: (book.state == JobState::Failed).then(|| JobError {
                code: book.failure.map_or("UNKNOWN", FailureCode::for_app),
                message: failure_message(book),
            }),
            result: links.map(|links| BookResult::of(book, links)),
        }
    }
}

#[derive(Serialize)]
struct JobError {
    code: &'static str,
    message: String,
}

/// A signed URL of the book's PDF.
#[derive(Serialize)]
pub struct PdfLink {
    pub book_id: String,
    pub pdf_url: String,
    pub expires_in_seconds: u64,
}
