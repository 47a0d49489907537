//! Chat completions: a book's story and a page written again, held to strict JSON schemas, and
//! a character's sheet from a parent's words or a picture (a vision-capable chat model).

use super::api::{Model, OpenAi, TokenUsage};
use crate::providers::story;
use crate::providers::{
    CharacterDesigner, DesignBrief, Metered, PageBrief, ProviderError, StoryBrief, StoryPage,
    StoryWriter, Usage, designer,
};
use async_trait::async_trait;
use base64::Engine;
use serde::Deserialize;
use std::time::Duration;
use storybook_core::domain::book::WrittenStory;
use storybook_core::domain::character::Sheet;
use storybook_core::domain::markup::contains_markup;

/// Writes the story with a chat model held to [`story::json_schema`].
pub struct ChatStoryWriter {
    model: Model,
}

impl ChatStoryWriter {
    pub fn new(api: OpenAi, model: impl Into<String>, timeout: Duration) -> Self {
        Self {
            model: Model::new(api, model, timeout),
        }
    }
}

#[derive(Deserialize)]
struct ChatAnswer {
    #[serde(default)]
    choices: Vec<ChatChoice>,
    #[serde(default)]
    usage: Option<TokenUsage>,
}

#[derive(Deserialize)]
struct ChatChoice {
    message: ChatMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChatMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

/// A structured-output answer's JSON as `T`, its tokens added to `usage`; a refusal, an answer
/// cut off at the token limit or one off the schema is not.
fn structured<T: serde::de::DeserializeOwned>(
    answer: ChatAnswer,
    usage: &mut Usage,
    what: &str,
) -> Result<T, ProviderError> {
    let tokens = answer.usage.unwrap_or_default();
    usage.input_tokens += tokens.prompt_tokens;
    usage.output_tokens += tokens.completion_tokens;
    let choice = answer
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| ProviderError::Malformed("an answer without choices".into()))?;
    if let Some(refusal) = choice.message.refusal.filter(|r| !r.is_empty()) {
        return Err(ProviderError::Refused(refusal));
    }
    if choice.finish_reason.as_deref() == Some("length") {
        return Err(ProviderError::Malformed(format!(
            "{what} was cut off at the token limit"
        )));
    }
    let content = choice.message.content.unwrap_or_default();
    serde_json::from_str(&content)
        .map_err(|e| ProviderError::Malformed(format!("{what} is not the schema's JSON: {e}")))
}

impl ChatStoryWriter {
    /// One exchange: the story, or why this answer cannot be used.
    async fn ask(
        &self,
        brief: &StoryBrief,
        usage: &mut Usage,
    ) -> Result<WrittenStory, ProviderError> {
        let request = &brief.request;
        let body = serde_json::json!({
            "model": self.model.name,
            "messages": [
                {"role": "system", "content": story::instructions(request, brief.stricter)},
                {"role": "user", "content": story::user_message(request)},
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "picture_book",
                    "strict": true,
                    "schema": story::json_schema(request.page_count.get()),
                }
            },
        });
        let answer: ChatAnswer = self.model.post_json("chat/completions", &body).await?;
        let written: WrittenStory =
            structured::<story::StoryAnswer>(answer, usage, "the story")?.into();
        story::check(&written, request).map_err(ProviderError::Malformed)?;
        Ok(written)
    }
}

/// A rewritten page as the chat model answers it.
#[derive(Deserialize)]
struct RewrittenPage {
    text: String,
    scene: String,
}

#[async_trait]
impl StoryWriter for ChatStoryWriter {
    /// One page of the book written again, held to a small schema and the reader's length.
    #[tracing::instrument(level = "debug", skip_all)]
    async fn rewrite_page(&self, brief: &PageBrief) -> Result<Metered<StoryPage>, ProviderError> {
        let request = &brief.request;
        let longest = story::max_page_chars(request.target_age);
        let story: Vec<String> = brief
            .pages
            .iter()
            .enumerate()
            .map(|(i, text)| format!("Page {}: {text}", i + 1))
            .collect();
        let mut ask = format!(
            "The book \"{}\":\n{}\n\nWrite page {} again: a new text of at most {longest} \
             characters that fits between the pages around it, and its English scene for the \
             illustrator.",
            brief.title,
            story.join("\n"),
            brief.page
        );
        if let Some(feedback) = &brief.feedback {
            ask.push_str(&format!(" The parent asks: {feedback}"));
        }
        let schema = serde_json::json!({
            "type": "object",
            "properties": {"text": {"type": "string"}, "scene": {"type": "string"}},
            "required": ["text", "scene"],
            "additionalProperties": false,
        });
        let body = serde_json::json!({
            "model": self.model.name,
            "messages": [
                {"role": "system", "content": story::instructions(request, false)},
                {"role": "user", "content": ask},
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "picture_book_page", "strict": true, "schema": schema}
            },
        });
        let mut usage = Usage::new("openai", &self.model.name);
        let answer: ChatAnswer = self.model.post_json("chat/completions", &body).await?;
        let page: RewrittenPage = structured(answer, &mut usage, "the page")?;
        if contains_markup(&page.text) || contains_markup(&page.scene) {
            return Err(ProviderError::Malformed("the page holds markup".into()));
        }
        if page.text.trim().is_empty() || page.text.chars().count() > longest {
            return Err(ProviderError::Malformed(format!(
                "the page's text is {} characters long",
                page.text.chars().count()
            )));
        }
        Ok(Metered {
            value: StoryPage {
                text: page.text,
                scene: page.scene.chars().take(600).collect(),
                characters: Vec::new(),
            },
            usage,
        })
    }

    /// Asks again once on an invalid answer, a refusal or an answer cut off at the limit.
    #[tracing::instrument(level = "debug", skip_all)]
    async fn write(&self, brief: &StoryBrief) -> Result<Metered<WrittenStory>, ProviderError> {
        let mut usage = Usage::new("openai", &self.model.name);
        let mut last = None;
        for attempt in 0..2 {
            match self.ask(brief, &mut usage).await {
                Ok(story) => {
                    return Ok(Metered {
                        value: story,
                        usage,
                    });
                }
                Err(error @ (ProviderError::Malformed(_) | ProviderError::Refused(_))) => {
                    tracing::info!(attempt, error = %error, "story answer unusable; asking again");
                    last = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(last.expect("two attempts were made"))
    }
}

/// Fills in a character sheet with a chat model held to [`designer::json_schema`]; a picture
/// goes with the question as a data URL, so the upload is never put anywhere a URL could name.
pub struct ChatCharacterDesigner {
    model: Model,
}

impl ChatCharacterDesigner {
    pub fn new(api: OpenAi, model: impl Into<String>, timeout: Duration) -> Self {
        Self {
            model: Model::new(api, model, timeout),
        }
    }
}

#[async_trait]
impl CharacterDesigner for ChatCharacterDesigner {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn design(&self, brief: &DesignBrief) -> Result<Metered<Sheet>, ProviderError> {
        let text = designer::user_message(brief);
        let content = match brief {
            DesignBrief::Words(_) => serde_json::json!(text),
            DesignBrief::Picture { png, .. } => {
                let data = base64::engine::general_purpose::STANDARD.encode(png);
                serde_json::json!([
                    {"type": "text", "text": text},
                    {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{data}")}},
                ])
            }
        };
        let body = serde_json::json!({
            "model": self.model.name,
            "messages": [
                {"role": "system", "content": designer::instructions(brief)},
                {"role": "user", "content": content},
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "character_sheet", "strict": true, "schema": designer::json_schema()}
            },
        });
        let mut usage = Usage::new("openai", &self.model.name);
        let answer: ChatAnswer = self.model.post_json("chat/completions", &body).await?;
        let written: designer::WrittenSheet = structured(answer, &mut usage, "the sheet")?;
        let sheet = designer::check(written, brief).map_err(ProviderError::Malformed)?;
        Ok(Metered {
            value: sheet,
            usage,
        })
    }
}
