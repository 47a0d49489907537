//! A book's generation: the providers (real ones over their wire formats, offline ones without
//! keys) and the pipeline of queue steps that calls them, down to the PDF.
//!
//! Module map:
//! - [`providers`]: the provider ports, OpenAI-compatible, Replicate, fal and offline providers,
//!   fallback chains behind circuit breakers, SSRF-safe fetching, provider settings.
//! - [`pipeline`]: the steps (story, reference, pages, narration, assembly), the PDF, the SQS
//!   batch handler and local mode's worker.
//! - [`studio`]: the provider calls an API function makes while the parent waits (characters
//!   from words or pictures, a page read aloud on demand).
//! - [`print`]: printed copies by Lulu's Print API: the print-ready files and the job.
//! - [`pictures`]: uploads checked, decoded and written again without metadata; providers'
//!   pictures stripped of theirs.

pub mod pictures;
pub mod pipeline;
pub mod print;
pub mod providers;
pub mod studio;
