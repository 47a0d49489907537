//! Streaks and reading sessions.

use super::users::append_entry;
use super::*;
use storybook_core::domain::streak::Streak;

pub(super) fn read_streak(connection: &Connection, user: &str) -> anyhow::Result<StoredStreak> {
    let row: Option<(String, i64)> = connection
        .query_row(
            "SELECT doc, version FROM streaks WHERE user_id = ?1",
            [user],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    stored_streak(row)
}

/// A streak's row (its document and version), or the empty streak at version 0.
fn stored_streak(row: Option<(String, i64)>) -> anyhow::Result<StoredStreak> {
    match row {
        None => Ok(StoredStreak::default()),
        Some((doc, version)) => Ok(StoredStreak {
            streak: Document::read(&doc)?,
            version: version as u64,
        }),
    }
}

fn read_profile_streak(
    connection: &Connection,
    user: &str,
    profile: &str,
) -> anyhow::Result<StoredStreak> {
    let row: Option<(String, i64)> = connection
        .query_row(
            "SELECT doc, version FROM profile_streaks WHERE user_id = ?1 AND profile_id = ?2",
            [user, profile],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    stored_streak(row)
}

#[async_trait]
impl StreakStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn find_streak(&self, user: &UserId) -> Result<StoredStreak, StoreError> {
        let user = user.as_str().to_owned();
        self.run(move |c| read_streak(c, &user)).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn record_reading(
        &self,
        user: &UserId,
        reading: &Reading,
        advance: Option<&StreakAdvance>,
    ) -> Result<bool, StoreError> {
        let user = user.as_str().to_owned();
        let reading = reading.clone();
        let advance = advance.cloned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(advance) = &advance {
                if read_streak(&tx, &user)?.version != advance.expected_version {
                    return Ok(false);
                }
                tx.execute(
                    "INSERT INTO streaks (user_id, doc, version) VALUES (?1, ?2, ?3)
                     ON CONFLICT (user_id) DO UPDATE SET doc = excluded.doc, version = excluded.version",
                    params![user, advance.streak.write(), advance.expected_version as i64 + 1],
                )?;
                if advance.reward > 0 {
                    append_entry(&tx, &user, advance.reward, EntryKind::Bonus, &advance.reward_description, None, reading.read_at)?;
                }
            }
            tx.execute(
                "INSERT INTO readings (user_id, day, read_at, id, book_id, reading_time, completed, profile_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    user,
                    reading.day.to_string(),
                    reading.read_at.to_rfc3339(),
                    uuid::Uuid::new_v4().simple().to_string(),
                    reading.book_id.as_str(),
                    reading.reading_time,
                    reading.completed,
                    reading.profile,
                ],
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn find_profile_streak(
        &self,
        user: &UserId,
        profile: &str,
    ) -> Result<StoredStreak, StoreError> {
        let (user, profile) = (user.as_str().to_owned(), profile.to_owned());
        self.run(move |c| read_profile_streak(c, &user, &profile))
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn replace_profile_streak(
        &self,
        user: &UserId,
        profile: &str,
        streak: &Streak,
        expected_version: u64,
    ) -> Result<bool, StoreError> {
        let (user, profile, doc) = (user.as_str().to_owned(), profile.to_owned(), streak.write());
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if read_profile_streak(&tx, &user, &profile)?.version != expected_version {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO profile_streaks (user_id, profile_id, doc, version) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (user_id, profile_id) DO UPDATE SET doc = excluded.doc, version = excluded.version",
                params![user, profile, doc, expected_version as i64 + 1],
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn readings(
        &self,
        user: &UserId,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<Vec<Reading>, StoreError> {
        let user = user.as_str().to_owned();
        self.run(move |c| {
            type Row = (String, String, String, u32, bool, Option<String>);
            let rows: Vec<Row> = c
                .prepare_cached(
                    "SELECT day, read_at, book_id, reading_time, completed, profile_id FROM readings
                     WHERE user_id = ?1 AND day BETWEEN ?2 AND ?3 ORDER BY day, read_at",
                )?
                .query_map(params![user, first.to_string(), last.to_string()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                })?
                .collect::<Result<_, _>>()?;
            rows.into_iter()
                .map(
                    |(day, read_at, book_id, reading_time, completed, profile)| {
                        Ok(Reading {
                            book_id: BookId::parse(&book_id)
                                .map_err(|e| StoreError::Corrupt(e.0))?,
                            read_at: time(read_at)?,
                            day: day
                                .parse()
                                .map_err(|e| StoreError::Corrupt(format!("day {day}: {e}")))?,
                            reading_time,
                            completed,
                            profile,
                        })
                    },
                )
                .collect()
        })
        .await
    }
}
