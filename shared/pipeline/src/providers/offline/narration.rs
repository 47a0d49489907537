use crate::providers::{Metered, Narrator, ProviderError, Speech, SpeechRequest, Usage};
use async_trait::async_trait;
use bytes::Bytes;
use std::io::Cursor;
use storybook_core::domain::book::Language;

const RATE: u32 = 16_000;

/// Reads text as a soft melody: one short tone per letter or syllable, rests between words, a
/// longer rest between sentences. A real WAV (16 kHz, 16-bit, mono) whose length follows the text.
pub struct OfflineNarrator;

fn render(text: &str, language: Language) -> Result<Bytes, hound::Error> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut out, spec)?;
    // Korean syllables carry more sound each than Latin letters.
    let tone_ms = if language == Language::Korean {
        140
    } else {
        55
    };
    let base = if language == Language::Korean {
        220.0
    } else {
        260.0
    };
    for c in text.chars() {
        let (ms, frequency) = match c {
            '.' | '!' | '?' | '。' => (300, None),
            c if c.is_whitespace() || c == ',' => (90, None),
            c => (tone_ms, Some(base + (u32::from(c) % 12) as f32 * 18.0)),
        };
        let samples = RATE * ms / 1000;
        for i in 0..samples {
            let value = match frequency {
                Some(f) => {
                    let t = i as f32 / RATE as f32;
                    // A gentle attack and release keeps the tones from clicking.
                    let envelope = (i.min(samples - i) as f32 / 200.0).min(1.0);
                    (t * f * std::f32::consts::TAU).sin() * envelope * 0.3
                }
                None => 0.0,
            };
            writer.write_sample((value * f32::from(i16::MAX)) as i16)?;
        }
    }
    writer.finalize()?;
    Ok(Bytes::from(out.into_inner()))
}

#[async_trait]
impl Narrator for OfflineNarrator {
    async fn narrate(&self, request: &SpeechRequest) -> Result<Metered<Speech>, ProviderError> {
        let (text, language) = (request.text.clone(), request.language);
        let characters = text.chars().count() as u64;
        let audio = tokio::task::spawn_blocking(move || render(&text, language))
            .await
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?
            .map_err(|e| ProviderError::Malformed(e.to_string()))?;
        let mut usage = Usage::new("offline", "offline");
        usage.characters_spoken = characters;
        Ok(Metered {
            value: Speech {
                audio,
                format: "wav",
            },
            usage,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn wav(text: &str) -> Bytes {
        let request = SpeechRequest {
            text: text.into(),
            language: Language::Korean,
            age: storybook_core::domain::book::TargetAge::FiveToSeven,
        };
        OfflineNarrator.narrate(&request).await.unwrap().value.audio
    }

    #[tokio::test]
    async fn longer_text_reads_longer() {
        let short = wav("안녕.").await;
        let long = wav("안녕하세요, 토리예요. 오늘은 날씨가 좋아요.").await;
        assert_eq!(&short[..4], b"RIFF");
        assert_eq!(&short[8..12], b"WAVE");
        assert!(long.len() > short.len() * 3);
    }
}
