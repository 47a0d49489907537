//! What generation costs us: provider calls priced from a price table, in whole micro-dollars so
//! that sums are exact, against a daily alert threshold and a hard limit; and the kill switch.

use super::Invalid;
use super::book::BookId;
use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Money in millionths of a US dollar.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Microdollars(pub u64);

impl Microdollars {
    pub const ZERO: Self = Self(0);

    /// Dollars as written in configuration, rounded to the nearest micro-dollar.
    pub fn from_usd(usd: f64) -> Result<Self, Invalid> {
        if !usd.is_finite() || !(0.0..=1e9).contains(&usd) {
            return Err(Invalid::new(format!(
                "{usd} is not a price in dollars (0 or more)"
            )));
        }
        Ok(Self((usd * 1e6).round() as u64))
    }

    pub fn usd(self) -> f64 {
        self.0 as f64 / 1e6
    }

    pub fn saturating_add(self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0))
    }
}

/// What one provider call used, as priced: the provider's name and model, and the units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Consumption<'a> {
    pub model: &'a str,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub images: u32,
    pub image_size: Option<&'a str>,
    pub image_quality: Option<&'a str>,
    pub characters_spoken: u64,
}

/// Chat and moderation models: dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenPrice {
    pub input_per_million: f64,
    pub output_per_million: f64,
}

/// Prices per model. Images: dollars per image, keyed `size/quality`, `size`, or `*` (any), the
/// most specific that matches; speech: dollars per thousand characters. A model the table does
/// not name is priced at the kind's `*` entry: an unknown model is never free.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTable {
    #[serde(default)]
    pub text: BTreeMap<String, TokenPrice>,
    #[serde(default)]
    pub images: BTreeMap<String, BTreeMap<String, f64>>,
    #[serde(default)]
    pub speech: BTreeMap<String, f64>,
}

/// The providers' public list prices (USD, late 2025), for the default models and their usual
/// alternatives; `*` prices what the table does not name at the dearest of its kind.
const DEFAULT_PRICES: &str = r#"{
  "text": {
    "gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.60},
    "gpt-4o": {"input_per_million": 2.50, "output_per_million": 10.00},
    "gpt-4.1-mini": {"input_per_million": 0.40, "output_per_million": 1.60},
    "gpt-4.1": {"input_per_million": 2.00, "output_per_million": 8.00},
    "omni-moderation-latest": {"input_per_million": 0, "output_per_million": 0},
    "text-moderation-latest": {"input_per_million": 0, "output_per_million": 0},
    "offline": {"input_per_million": 0, "output_per_million": 0},
    "forbidden-words": {"input_per_million": 0, "output_per_million": 0},
    "*": {"input_per_million": 2.50, "output_per_million": 10.00}
  },
  "images": {
    "gpt-image-1": {
      "1024x1024/low": 0.011, "1024x1536/low": 0.016, "1536x1024/low": 0.016,
      "1024x1024/medium": 0.042, "1024x1536/medium": 0.063, "1536x1024/medium": 0.063,
      "1024x1024/high": 0.167, "1024x1536/high": 0.25, "1536x1024/high": 0.25,
      "*": 0.25
    },
    "dall-e-3": {
      "1024x1024/standard": 0.04, "1024x1024/hd": 0.08,
      "1792x1024/standard": 0.08, "1024x1792/standard": 0.08,
      "*": 0.12
    },
    "black-forest-labs/flux-schnell": {"*": 0.003},
    "black-forest-labs/flux-dev": {"*": 0.025},
    "black-forest-labs/flux-1.1-pro": {"*": 0.04},
    "black-forest-labs/flux-kontext-pro": {"*": 0.04},
    "fal-ai/flux/schnell": {"*": 0.003},
    "fal-ai/flux/dev": {"*": 0.025},
    "fal-ai/flux-pro/kontext": {"*": 0.04},
    "offline": {"*": 0},
    "*": {"*": 0.25}
  },
  "speech": {
    "tts-1": 0.015,
    "tts-1-hd": 0.03,
    "gpt-4o-mini-tts": 0.015,
    "offline": 0,
    "*": 0.03
  }
}"#;

impl Default for PriceTable {
    fn default() -> Self {
        serde_json::from_str(DEFAULT_PRICES).expect("the default price table parses")
    }
}

impl PriceTable {
    /// The defaults with `overrides` (the same JSON shape, `PRICE_TABLE`) laid over them, model
    /// by model.
    pub fn with_overrides(raw: &str) -> Result<Self, Invalid> {
        let overrides: PriceTable = serde_json::from_str(raw)
            .map_err(|e| Invalid::new(format!("PRICE_TABLE is not a price table: {e}")))?;
        let mut table = Self::default();
        table.text.extend(overrides.text);
        table.images.extend(overrides.images);
        table.speech.extend(overrides.speech);
        table.check()?;
        Ok(table)
    }

    fn check(&self) -> Result<(), Invalid> {
        let prices = self
            .text
            .values()
            .flat_map(|p| [p.input_per_million, p.output_per_million])
            .chain(
                self.images
                    .values()
                    .flat_map(|sizes| sizes.values().copied()),
            )
            .chain(self.speech.values().copied());
        for price in prices {
            Microdollars::from_usd(price)?;
        }
        Ok(())
    }

    /// The price of one call.
    pub fn price(&self, used: &Consumption<'_>) -> Microdollars {
        let mut usd = 0.0;
        if used.images > 0 {
            // Images are priced per image; the tokens an image call reports are part of it.
            usd += f64::from(used.images) * self.image_price(used);
        } else if used.characters_spoken > 0 {
            let per_thousand = lookup(&self.speech, used.model).copied().unwrap_or(0.0);
            usd += used.characters_spoken as f64 / 1000.0 * per_thousand;
        } else if let Some(tokens) = lookup(&self.text, used.model) {
            usd += used.input_tokens as f64 / 1e6 * tokens.input_per_million
                + used.output_tokens as f64 / 1e6 * tokens.output_per_million;
        }
        Microdollars::from_usd(usd).unwrap_or(Microdollars::ZERO)
    }

    fn image_price(&self, used: &Consumption<'_>) -> f64 {
        let Some(sizes) = lookup(&self.images, used.model) else {
            return 0.0;
        };
        let size = used.image_size.unwrap_or("*");
        let keys = [
            used.image_quality
                .map(|quality| format!("{size}/{quality}")),
            // OpenAI's `auto` (no quality asked) is priced as medium.
            Some(format!("{size}/medium")),
            Some(size.to_owned()),
            Some("*".to_owned()),
        ];
        keys.iter()
            .flatten()
            .find_map(|key| sizes.get(key))
            .copied()
            .unwrap_or(0.0)
    }
}

fn lookup<'a, T>(table: &'a BTreeMap<String, T>, model: &str) -> Option<&'a T> {
    table.get(model).or_else(|| table.get("*"))
}

/// What the stack may spend on providers per UTC day, and what happens to a book whose step
/// meets the hard limit or the kill switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpendLimits {
    /// Crossing it logs once and emits a metric (an alarm notifies the operator).
    pub alert: Microdollars,
    /// At or over it, new books are refused and workers stop before their next provider call.
    pub hard_limit: Microdollars,
    pub when_stopped: WhenStopped,
}

impl Default for SpendLimits {
    fn default() -> Self {
        Self {
            alert: Microdollars(100_000_000),
            hard_limit: Microdollars(500_000_000),
            when_stopped: WhenStopped::Wait,
        }
    }
}

/// What a step does when generation is stopped (hard limit or kill switch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenStopped {
    /// Put back on the queue to run when generation resumes (a book stopped longer than the
    /// stuck-book period is failed and refunded by the sweep).
    Wait,
    /// Fail the book now and refund it.
    Fail,
}

impl WhenStopped {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "wait" => Ok(Self::Wait),
            "fail" => Ok(Self::Fail),
            _ => Err(Invalid::new("WHEN_GENERATION_STOPPED must be wait or fail")),
        }
    }
}

/// The UTC day spend is counted in, and the seconds until the next one begins.
pub fn spend_day(now: DateTime<Utc>) -> (NaiveDate, u64) {
    let day = now.date_naive();
    let next = day
        .checked_add_days(Days::new(1))
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|midnight| midnight.and_utc())
        .unwrap_or(now);
    (day, (next - now).num_seconds().max(1) as u64)
}

/// What an erased book's spend records are kept under.
pub const ERASED_BOOK: &str = "erased";

/// One provider call's cost, added to its day and its book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendCharge {
    pub day: NaiveDate,
    pub book: BookId,
    pub cost: Microdollars,
}

/// A day's spend: the total and the calls, books and finished books behind it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaySpend {
    pub total: Microdollars,
    pub calls: u64,
    /// Per book charged this day: its cost this day and its calls, dearest first.
    pub books: Vec<BookSpend>,
    /// Books finished this day and their whole cost (every day they were charged).
    pub finished_books: u64,
    pub finished_cost: Microdollars,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookSpend {
    pub book: String,
    pub cost: Microdollars,
    pub calls: u64,
}

/// Generation switched off by an operator (or the budget guard), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillSwitch {
    pub on: bool,
    pub reason: String,
    /// Who set it: an API key id, or `budget-guard`.
    pub by: String,
    pub at: DateTime<Utc>,
}

/// Why generation may not go on now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// The kill switch is on.
    Switched { reason: String },
    /// Today's spend reached the hard limit; generation resumes with the next UTC day.
    OverBudget {
        spent: Microdollars,
        retry_after: u64,
    },
}

/// Whether generation may go on, given the switch and today's spend.
pub fn generation_stopped(
    switch: Option<&KillSwitch>,
    spent_today: Microdollars,
    limits: &SpendLimits,
    now: DateTime<Utc>,
) -> Option<Stopped> {
    if let Some(switch) = switch.filter(|s| s.on) {
        return Some(Stopped::Switched {
            reason: switch.reason.clone(),
        });
    }
    (spent_today >= limits.hard_limit).then(|| Stopped::OverBudget {
        spent: spent_today,
        retry_after: spend_day(now).1,
    })
}

/// What a call used, as the provider reported it (or as we counted it where it reports nothing),
/// so that spend can be priced from it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub provider: String,
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub images: u32,
    /// `1024x1024` and the like, for images.
    pub image_size: Option<String>,
    /// `low`, `medium`, `high` and the like, when one was asked for.
    #[serde(default)]
    pub image_quality: Option<String>,
    pub characters_spoken: u64,
}

impl Usage {
    pub fn new(provider: &str, model: &str) -> Self {
        Self {
            provider: provider.to_owned(),
            model: model.to_owned(),
            ..Self::default()
        }
    }

    /// The units the price table prices.
    pub fn consumption(&self) -> Consumption<'_> {
        Consumption {
            model: &self.model,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            images: self.images,
            image_size: self.image_size.as_deref(),
            image_quality: self.image_quality.as_deref(),
            characters_spoken: self.characters_spoken,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumption(model: &str) -> Consumption<'_> {
        Consumption {
            model,
            ..Consumption::default()
        }
    }

    #[test]
    fn tokens_images_and_speech_are_priced_from_the_table() {
        let table = PriceTable::default();
        let story = Consumption {
            input_tokens: 1_000,
            output_tokens: 2_000,
            ..consumption("gpt-4o-mini")
        };
        // 1000 * 0.15/1M + 2000 * 0.60/1M = 0.00015 + 0.0012
        assert_eq!(table.price(&story), Microdollars(1_350));
        let picture = Consumption {
            images: 1,
            image_size: Some("1536x1024"),
            image_quality: Some("high"),
            input_tokens: 500,
            ..consumption("gpt-image-1")
        };
        assert_eq!(table.price(&picture), Microdollars(250_000));
        let auto = Consumption {
            image_quality: None,
            ..picture.clone()
        };
        assert_eq!(table.price(&auto), Microdollars(63_000));
        let speech = Consumption {
            characters_spoken: 2_000,
            ..consumption("gpt-4o-mini-tts")
        };
        assert_eq!(table.price(&speech), Microdollars(30_000));
        let offline = Consumption {
            images: 1,
            ..consumption("offline")
        };
        assert_eq!(table.price(&offline), Microdollars::ZERO);
    }

    #[test]
    fn an_unknown_model_is_priced_at_its_kinds_dearest_and_overrides_replace_models() {
        let table = PriceTable::default();
        let unknown = Consumption {
            images: 2,
            ..consumption("someone/new-model")
        };
        assert_eq!(table.price(&unknown), Microdollars(500_000));
        let table = PriceTable::with_overrides(r#"{"images": {"someone/new-model": {"*": 0.01}}}"#)
            .unwrap();
        assert_eq!(table.price(&unknown), Microdollars(20_000));
        assert!(table.images.contains_key("gpt-image-1"), "defaults stay");
        assert!(PriceTable::with_overrides(r#"{"speech": {"x": -1}}"#).is_err());
        assert!(PriceTable::with_overrides(r#"{"sound": {}}"#).is_err());
    }

    #[test]
    fn the_kill_switch_wins_and_the_hard_limit_waits_for_the_next_utc_day() {
        let limits = SpendLimits::default();
        let now = "2026-12-01T23:00:00Z".parse().unwrap();
        assert_eq!(
            generation_stopped(None, Microdollars(499_999_999), &limits, now),
            None
        );
        assert_eq!(
            generation_stopped(None, limits.hard_limit, &limits, now),
            Some(Stopped::OverBudget {
                spent: limits.hard_limit,
                retry_after: 3600
            })
        );
        let switch = KillSwitch {
            on: true,
            reason: "incident".into(),
            by: "key_1".into(),
            at: now,
        };
        assert!(matches!(
            generation_stopped(Some(&switch), Microdollars::ZERO, &limits, now),
            Some(Stopped::Switched { .. })
        ));
        let off = KillSwitch {
            on: false,
            ..switch
        };
        assert_eq!(
            generation_stopped(Some(&off), Microdollars::ZERO, &limits, now),
            None
        );
    }
}
