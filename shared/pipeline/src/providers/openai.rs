//! OpenAI-compatible providers: chat completions for the story (structured output), the
//! moderation endpoint, images (generations and edits) and speech. Any server that speaks the
//! same API works by its base URL (OpenAI, a LiteLLM proxy, vLLM, Ollama).

use super::designer;
use super::story::{self, WrittenStory};
use super::wire::{ApiSecret, RetryPolicy, capped_body, checked, client, json, transport};
use super::{
    Artwork, CharacterDesigner, DesignBrief, ImagePrompt, Metered, Moderator, Narrator, PageBrief,
    ProviderError, Speech, SpeechRequest, StoryBrief, StoryPage, StoryWriter, Usage, Verdict,
};
use crate::domain::book::{Language, TargetAge};
use crate::domain::character::Sheet;
use crate::domain::markup::contains_markup;
use async_trait::async_trait;
use base64::Engine;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Where an OpenAI-compatible API is and how to reach it.
#[derive(Debug, Clone)]
pub struct OpenAi {
    /// With the version: `https://api.openai.com/v1`.
    pub base_url: String,
    pub key: ApiSecret,
    pub retry: RetryPolicy,
}

impl OpenAi {
    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base_url.trim_end_matches('/'))
    }
}

/// One model of an OpenAI-compatible API, with a client whose timeout is the model's.
#[derive(Debug, Clone)]
struct Model {
    api: OpenAi,
    http: reqwest::Client,
    name: String,
}

impl Model {
    fn new(api: OpenAi, name: impl Into<String>, timeout: Duration) -> Self {
        Self {
            api,
            http: client(timeout),
            name: name.into(),
        }
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(self.api.url(path))
            .bearer_auth(self.api.key.expose())
    }

    /// POSTs `body` to `path` and reads its JSON answer, retried as [`RetryPolicy`] says.
    async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, ProviderError> {
        self.api
            .retry
            .run(|| async {
                let response = self.post(path).json(body).send().await.map_err(transport)?;
                json(checked(response).await?).await
            })
            .await
    }
}

// ---------------------------------------------------------------------------------------------
// Story: chat completions with a strict JSON schema.

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

#[derive(Deserialize, Default)]
struct TokenUsage {
    #[serde(default, alias = "input_tokens")]
    prompt_tokens: u64,
    #[serde(default, alias = "output_tokens")]
    completion_tokens: u64,
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
        let written: WrittenStory = structured(answer, usage, "the story")?;
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

// ---------------------------------------------------------------------------------------------
// Characters: a sheet from a parent's words, or from a picture (a vision-capable chat model).

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

// ---------------------------------------------------------------------------------------------
// Moderation.

/// The moderation endpoint (`omni-moderation-latest` and compatible).
pub struct ModerationEndpoint {
    model: Model,
}

impl ModerationEndpoint {
    pub fn new(api: OpenAi, model: impl Into<String>, timeout: Duration) -> Self {
        Self {
            model: Model::new(api, model, timeout),
        }
    }
}

#[derive(Deserialize)]
struct ModerationAnswer {
    results: Vec<ModerationResult>,
}

#[derive(Deserialize)]
struct ModerationResult {
    flagged: bool,
    /// Category names change between models: read as a map.
    #[serde(default)]
    categories: BTreeMap<String, Option<bool>>,
}

#[async_trait]
impl Moderator for ModerationEndpoint {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn check(&self, text: &str) -> Result<Metered<Verdict>, ProviderError> {
        let body = serde_json::json!({"model": self.model.name, "input": text});
        let answer: ModerationAnswer = self.model.post_json("moderations", &body).await?;
        let result = answer.results.into_iter().next().ok_or_else(|| {
            ProviderError::Malformed("a moderation answer without results".into())
        })?;
        let verdict = if result.flagged {
            let flagged: Vec<String> = result
                .categories
                .into_iter()
                .filter(|(_, on)| *on == Some(true))
                .map(|(name, _)| name)
                .collect();
            Verdict::Refused(format!(
                "The text was refused by moderation ({}).",
                if flagged.is_empty() {
                    "flagged".to_owned()
                } else {
                    flagged.join(", ")
                }
            ))
        } else {
            Verdict::Allowed
        };
        Ok(Metered {
            value: verdict,
            usage: Usage::new("openai", &self.model.name),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Images: generations, and edits with the book's reference image.

/// OpenAI-compatible images: `/images/generations`, or `/images/edits` when the prompt carries a
/// reference image.
pub struct OpenAiImages {
    model: Model,
    size: String,
    quality: Option<String>,
}

impl OpenAiImages {
    pub fn new(
        api: OpenAi,
        model: impl Into<String>,
        size: impl Into<String>,
        quality: Option<String>,
        timeout: Duration,
    ) -> Self {
        Self {
            model: Model::new(api, model, timeout),
            size: size.into(),
            quality,
        }
    }
}

#[derive(Deserialize)]
struct ImagesAnswer {
    #[serde(default)]
    data: Vec<ImageDatum>,
    #[serde(default)]
    usage: Option<TokenUsage>,
}

#[derive(Deserialize)]
struct ImageDatum {
    #[serde(default)]
    b64_json: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

/// OpenAI's models take no negative prompt: it is said in words.
pub fn with_negatives(prompt: &ImagePrompt) -> String {
    if prompt.negative_prompt.is_empty() {
        prompt.prompt.clone()
    } else {
        format!("{} Do not show: {}.", prompt.prompt, prompt.negative_prompt)
    }
}

#[async_trait]
impl super::Illustrator for OpenAiImages {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn illustrate(&self, prompt: &ImagePrompt) -> Result<Metered<Artwork>, ProviderError> {
        let text = with_negatives(prompt);
        let answer: ImagesAnswer = self
            .model
            .api
            .retry
            .run(|| async {
                let request = match &prompt.reference_image {
                    Some(reference) => {
                        let mut form = reqwest::multipart::Form::new()
                            .text("model", self.model.name.clone())
                            .text("prompt", text.clone())
                            .text("size", self.size.clone())
                            .text("n", "1")
                            .part(
                                "image[]",
                                reqwest::multipart::Part::bytes(reference.to_vec())
                                    .file_name("reference.png")
                                    .mime_str("image/png")
                                    .expect("a valid content type"),
                            );
                        if let Some(quality) = &self.quality {
                            form = form.text("quality", quality.clone());
                        }
                        self.model.post("images/edits").multipart(form)
                    }
                    None => {
                        let mut body = serde_json::json!({
                            "model": self.model.name, "prompt": text, "n": 1, "size": self.size,
                        });
                        if let Some(quality) = &self.quality {
                            body["quality"] = quality.clone().into();
                        }
                        self.model.post("images/generations").json(&body)
                    }
                };
                let response = request.send().await.map_err(transport)?;
                json(checked(response).await?).await
            })
            .await?;
        let datum = answer
            .data
            .into_iter()
            .next()
            .ok_or_else(|| ProviderError::Malformed("an images answer without data".into()))?;
        let artwork = match (datum.b64_json, datum.url) {
            (Some(b64), _) => Artwork::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|e| ProviderError::Malformed(format!("b64_json: {e}")))?
                    .into(),
            ),
            (None, Some(url)) => Artwork::Url(url),
            (None, None) => {
                return Err(ProviderError::Malformed(
                    "an image with neither b64_json nor url".into(),
                ));
            }
        };
        let tokens = answer.usage.unwrap_or_default();
        let mut usage = Usage::new("openai", &self.model.name);
        usage.images = 1;
        usage.image_size = Some(self.size.clone());
        usage.image_quality = self.quality.clone();
        usage.input_tokens = tokens.prompt_tokens;
        usage.output_tokens = tokens.completion_tokens;
        Ok(Metered {
            value: artwork,
            usage,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Speech.

/// OpenAI-compatible speech (`/audio/speech`): a voice per language, slower for younger children.
pub struct OpenAiSpeech {
    model: Model,
    voices: VoiceChoice,
    format: &'static str,
    /// The largest answer kept (`MAX_AUDIO_BYTES`); a larger one is refused as it streams.
    max_bytes: u64,
}

/// The largest narration of one page kept by default: minutes of speech in either format.
pub const MAX_AUDIO_BYTES: u64 = 10 * 1024 * 1024;

/// Which voice reads which language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceChoice {
    pub default: String,
    pub by_language: BTreeMap<String, String>,
}

impl VoiceChoice {
    pub fn for_language(&self, language: Language) -> &str {
        self.by_language
            .get(language.as_str())
            .unwrap_or(&self.default)
    }
}

/// How fast narration reads for a child of this age (1.0 is the voice's own pace).
pub fn speed_for(age: TargetAge) -> f64 {
    match age {
        TargetAge::ThreeToFive => 0.85,
        TargetAge::FiveToSeven => 0.9,
        TargetAge::SevenToNine => 0.95,
        TargetAge::Adult => 1.0,
    }
}

impl OpenAiSpeech {
    /// `format` is what we ask for and store: `mp3` or `wav`.
    pub fn new(
        api: OpenAi,
        model: impl Into<String>,
        voices: VoiceChoice,
        format: &'static str,
        timeout: Duration,
    ) -> Self {
        Self {
            model: Model::new(api, model, timeout),
            voices,
            format,
            max_bytes: MAX_AUDIO_BYTES,
        }
    }

    /// The same speech, keeping answers of at most `max_bytes`.
    pub fn with_max_bytes(self, max_bytes: u64) -> Self {
        Self { max_bytes, ..self }
    }
}

#[async_trait]
impl Narrator for OpenAiSpeech {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn narrate(&self, request: &SpeechRequest) -> Result<Metered<Speech>, ProviderError> {
        let body = serde_json::json!({
            "model": self.model.name,
            "input": request.text,
            "voice": self.voices.for_language(request.language),
            "speed": speed_for(request.age),
            "response_format": self.format,
        });
        let audio = self
            .model
            .api
            .retry
            .run(|| async {
                let response = self
                    .model
                    .post("audio/speech")
                    .json(&body)
                    .send()
                    .await
                    .map_err(transport)?;
                let response = checked(response).await?;
                let kind = response
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                if !(kind.starts_with("audio/") || kind == "application/octet-stream") {
                    return Err(ProviderError::Malformed(format!(
                        "speech answered {kind:?}, not audio"
                    )));
                }
                let audio = capped_body(response, self.max_bytes, "speech").await?;
                if audio.is_empty() {
                    return Err(ProviderError::Malformed("empty audio".into()));
                }
                Ok(audio)
            })
            .await?;
        let mut usage = Usage::new("openai", &self.model.name);
        usage.characters_spoken = request.text.chars().count() as u64;
        Ok(Metered {
            value: Speech {
                audio,
                format: self.format,
            },
            usage,
        })
    }
}
