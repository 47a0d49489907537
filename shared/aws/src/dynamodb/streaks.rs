//! Streaks and reading sessions.

use super::*;
use storybook_core::domain::streak::Streak;

fn profile_streak_sk(profile: &str) -> String {
    format!("STREAK#PROFILE#{profile}")
}

impl DynamoStore {
    async fn stored_streak(&self, user: &UserId, sk: String) -> Result<StoredStreak, StoreError> {
        let Some(item) = self.get(user_pk(user), &sk).await? else {
            return Ok(StoredStreak::default());
        };
        Ok(StoredStreak {
            streak: Document::read(&text(&item, "doc")?)?,
            version: num(&item, "version")? as u64,
        })
    }
}

pub(super) fn reading_sk(reading: &Reading, id: &str) -> String {
    format!("READ#{}#{}#{id}", reading.day, reading.read_at.to_rfc3339())
}

#[async_trait]
impl StreakStore for DynamoStore {
    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn find_streak(&self, user: &UserId) -> Result<StoredStreak, StoreError> {
        self.stored_streak(user, "STREAK".into()).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn find_profile_streak(
        &self,
        user: &UserId,
        profile: &str,
    ) -> Result<StoredStreak, StoreError> {
        self.stored_streak(user, profile_streak_sk(profile)).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn replace_profile_streak(
        &self,
        user: &UserId,
        profile: &str,
        streak: &Streak,
        expected_version: u64,
    ) -> Result<bool, StoreError> {
        let sk = profile_streak_sk(profile);
        self.put_versioned(user_pk(user), sk, streak.write(), expected_version)
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn record_reading(
        &self,
        user: &UserId,
        reading: &Reading,
        advance: Option<&StreakAdvance>,
    ) -> Result<bool, StoreError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let reading_put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(user_pk(user)))
            .item("sk", s(reading_sk(reading, &id)))
            .item("day", s(reading.day.to_string()))
            .item("read_at", s(reading.read_at.to_rfc3339()))
            .item("book_id", s(reading.book_id.as_str()))
            .item("reading_time", n(i64::from(reading.reading_time)))
            .item("completed", AttributeValue::Bool(reading.completed));
        let reading_put = match &reading.profile {
            Some(profile) => reading_put.item("profile_id", s(profile.clone())),
            None => reading_put,
        }
        .build()
        .map_err(StoreError::unavailable)?;
        let Some(advance) = advance else {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(reading_put.item))
                .send()
                .await
                .map_err(|e| StoreError::Unavailable(describe(e)))?;
            return Ok(true);
        };
        let expected = advance.expected_version as i64;
        let streak_put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(user_pk(user)))
            .item("sk", s("STREAK"))
            .item("doc", s(Document::write(&advance.streak)))
            .item("version", n(expected + 1));
        let streak_put = if expected == 0 {
            streak_put.condition_expression("attribute_not_exists(pk)")
        } else {
            streak_put
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", n(expected))
        }
        .build()
        .map_err(StoreError::unavailable)?;
        let items = vec![
            TransactWriteItem::builder().put(streak_put).build(),
            TransactWriteItem::builder().put(reading_put).build(),
        ];
        let attempt = || async {
            let written = if advance.reward > 0 {
                let (balance, seq) = self
                    .read_user(user)
                    .await?
                    .ok_or(StoreError::Missing("user"))?;
                let entry = EntryFields {
                    kind: EntryKind::Bonus,
                    description: &advance.reward_description,
                    reference: None,
                    at: reading.read_at,
                };
                let after = balance.credits + advance.reward;
                self.append_entry(user, seq, advance.reward, after, entry, items.clone())
                    .await
            } else {
                self.transact(items.clone()).await
            };
            match written {
                Ok(()) => Ok(true),
                // Lost to another read of this streak (its put comes first: theirs counts the
                // day), or only to a balance change: only the second is worth another try. When
                // DynamoDB named no failed condition, the streak's version tells.
                Err(lost) if lost.condition_failed_at(0) => Ok(false),
                Err(Attempt::Lost(failed))
                    if !failed.is_empty()
                        || self.find_streak(user).await?.version == advance.expected_version =>
                {
                    Err(Attempt::Lost(failed))
                }
                Err(Attempt::Lost(_)) => Ok(false),
                Err(failed) => Err(failed),
            }
        };
        until_settled(attempt).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn readings(
        &self,
        user: &UserId,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<Vec<Reading>, StoreError> {
        // `~` sorts after every character of a time and an id: the whole of the last day.
        let keys = SortKeys::Between(format!("READ#{first}"), format!("READ#{last}#~"));
        self.query_keys(user_pk(user), keys, false)
            .await?
            .iter()
            .map(|item| {
                let day = text(item, "day")?;
                Ok(Reading {
                    book_id: BookId::parse(&text(item, "book_id")?)
                        .map_err(|e| StoreError::Corrupt(e.0))?,
                    read_at: time(item, "read_at")?,
                    day: day
                        .parse()
                        .map_err(|e| StoreError::Corrupt(format!("day {day}: {e}")))?,
                    reading_time: num(item, "reading_time")? as u32,
                    completed: matches!(item.get("completed"), Some(AttributeValue::Bool(true))),
                    profile: optional_text(item, "profile_id"),
                })
            })
            .collect()
    }
}
