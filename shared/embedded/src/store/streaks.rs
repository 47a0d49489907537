//! Streaks and reading sessions.

use super::users::append_entry;
use super::*;

pub(super) fn read_streak(connection: &Connection, user: &str) -> anyhow::Result<StoredStreak> {
    let row: Option<(String, i64)> = connection
        .query_row(
            "SELECT doc, version FROM streaks WHERE user_id = ?1",
            [user],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match row {
        None => Ok(StoredStreak::default()),
        Some((doc, version)) => Ok(StoredStreak {
            streak: Document::read(&doc)?,
            version: version as u64,
        }),
    }
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
                "INSERT INTO readings (user_id, day, read_at, id, book_id, reading_time, completed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    user,
                    reading.day.to_string(),
                    reading.read_at.to_rfc3339(),
                    uuid::Uuid::new_v4().simple().to_string(),
                    reading.book_id.as_str(),
                    reading.reading_time,
                    reading.completed,
                ],
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
            let rows: Vec<(String, String, String, u32, bool)> = c
                .prepare_cached(
                    "SELECT day, read_at, book_id, reading_time, completed FROM readings
                     WHERE user_id = ?1 AND day BETWEEN ?2 AND ?3 ORDER BY day, read_at",
                )?
                .query_map(params![user, first.to_string(), last.to_string()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect::<Result<_, _>>()?;
            rows.into_iter()
                .map(|(day, read_at, book_id, reading_time, completed)| {
                    Ok(Reading {
                        book_id: BookId::parse(&book_id).map_err(|e| StoreError::Corrupt(e.0))?,
                        read_at: time(read_at)?,
                        day: day
                            .parse()
                            .map_err(|e| StoreError::Corrupt(format!("day {day}: {e}")))?,
                        reading_time,
                        completed,
                    })
                })
                .collect()
        })
        .await
    }
}
