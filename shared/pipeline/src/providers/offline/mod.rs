//! Offline providers: simple, deterministic, and real enough to look at and listen to.

mod design;
mod illustration;
mod narration;
mod story;

pub use design::OfflineDesigner;
pub use illustration::{OfflineIllustrator, placeholder_png};
pub use narration::OfflineNarrator;
pub use story::{OfflineModerator, OfflineWriter};
