//! Users and their credits: the users table, the ledger, grants.

use super::*;

pub(super) fn read_user(connection: &Connection, id: &str) -> anyhow::Result<Option<User>> {
    let row = connection
        .query_row(
            "SELECT credits, total_purchased, total_used, created_at FROM users WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?)),
        )
        .optional()?;
    row.map(|(credits, total_purchased, total_used, created_at)| {
        Ok(User {
            id: CredentialHash::from_stored(id.to_owned()),
            credits,
            total_purchased,
            total_used,
            created_at: time(created_at)?,
        })
    })
    .transpose()
}

/// Appends a ledger entry and moves the balance, inside the caller's transaction.
pub(super) fn append_entry(
    connection: &Connection,
    user: &str,
    delta: i64,
    kind: EntryKind,
    description: &str,
    reference: Option<&str>,
    at: DateTime<Utc>,
) -> anyhow::Result<i64> {
    let (balance, seq): (i64, i64) = connection
        .query_row(
            "UPDATE users SET credits = credits + ?2, ledger_seq = ledger_seq + 1,
                 total_purchased = total_purchased + CASE WHEN ?3 IN ('purchase', 'subscription') THEN ?2 ELSE 0 END,
                 total_used = total_used + CASE WHEN ?3 = 'usage' THEN -?2 ELSE 0 END
             WHERE id = ?1 RETURNING credits, ledger_seq",
            params![user, delta, kind.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .ok_or(StoreError::Missing("user"))?;
    connection.execute(
        "INSERT INTO ledger (user_id, seq, delta, balance_after, kind, description, reference, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![user, seq, delta, balance, kind.as_str(), description, reference, at.to_rfc3339()],
    )?;
    Ok(balance)
}

#[async_trait]
impl UserStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all, fields(user = %id.truncated()))]
    async fn erase_user(&self, id: &UserId) -> Result<u64, StoreError> {
        let id = id.as_str().to_owned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // The ledger stays, under an id that leads back to no one, without its free text.
            let anonymous = format!("erased-{}", uuid::Uuid::new_v4().simple());
            // Its balance stays with it, so that the kept ledger still sums to a balance.
            tx.execute(
                "INSERT INTO users (id, credits, total_purchased, total_used, ledger_seq, created_at)
                 SELECT ?2, credits, total_purchased, total_used, ledger_seq, created_at FROM users WHERE id = ?1",
                params![id, anonymous],
            )?;
            let kept = tx.execute(
                "UPDATE ledger SET user_id = ?2, description = NULL, reference = NULL WHERE user_id = ?1",
                params![id, anonymous],
            )? as u64;
            tx.execute("UPDATE grants SET user_id = ?2 WHERE user_id = ?1", params![id, anonymous])?;
            // The store payments it redeemed stay claimed, by no one: never redeemed again.
            tx.execute("UPDATE purchases SET user_id = NULL WHERE user_id = ?1", [&id])?;
            tx.execute("UPDATE purchases SET paid_to = NULL WHERE paid_to = ?1", [&id])?;
            tx.execute("DELETE FROM subscriptions WHERE user_id = ?1", [&id])?;
            tx.execute("DELETE FROM print_orders WHERE user_id = ?1", [&id])?;
            tx.execute("DELETE FROM profiles WHERE user_id = ?1", [&id])?;
            tx.execute(
                "DELETE FROM page_assets WHERE book_id IN (SELECT id FROM books WHERE user_id = ?1)",
                [&id],
            )?;
            tx.execute("DELETE FROM books WHERE user_id = ?1", [&id])?;
            tx.execute("DELETE FROM idempotency WHERE user_id = ?1", [&id])?;
            tx.execute("DELETE FROM settings WHERE user_id = ?1", [&id])?;
            tx.execute("DELETE FROM consents WHERE user_id = ?1", [&id])?;
            tx.execute("DELETE FROM characters WHERE user_id = ?1", [&id])?;
            tx.execute("DELETE FROM streaks WHERE user_id = ?1", [&id])?;
            tx.execute("DELETE FROM readings WHERE user_id = ?1", [&id])?;
            tx.execute("DELETE FROM profile_streaks WHERE user_id = ?1", [&id])?;
            tx.execute("DELETE FROM shares WHERE user_id = ?1", [&id])?;
            tx.execute("DELETE FROM share_generations WHERE user_id = ?1", [&id])?;
            tx.execute("DELETE FROM users WHERE id = ?1", [&id])?;
            tx.commit()?;
            Ok(kept)
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %id.truncated()))]
    async fn find_user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        let id = id.as_str().to_owned();
        self.run(move |c| read_user(c, &id)).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %id.truncated()))]
    async fn create_user(
        &self,
        id: &UserId,
        opening_credits: i64,
        at: DateTime<Utc>,
    ) -> Result<UserLookup, StoreError> {
        let id = id.as_str().to_owned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let inserted = tx.execute(
                "INSERT INTO users (id, credits, total_purchased, total_used, ledger_seq, created_at)
                 VALUES (?1, 0, 0, 0, 0, ?2) ON CONFLICT (id) DO NOTHING",
                params![id, at.to_rfc3339()],
            )? == 1;
            if inserted && opening_credits > 0 {
                append_entry(&tx, &id, opening_credits, EntryKind::Bonus, "Welcome credits", None, at)?;
            }
            let user = read_user(&tx, &id)?.ok_or(StoreError::Missing("user"))?;
            tx.commit()?;
            Ok(UserLookup { user, created: inserted })
        })
        .await
    }
}

#[async_trait]
impl CreditStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all, fields(user = %grant.user.truncated()))]
    async fn grant(&self, grant: &Grant) -> Result<GrantOutcome, StoreError> {
        let grant = grant.clone();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let user = grant.user.as_str();
            let balance = read_user(&tx, user)?.ok_or(StoreError::Missing("user"))?.credits;
            let seen: bool = tx
                .query_row("SELECT 1 FROM grants WHERE transaction_id = ?1", [grant.transaction_id.as_str()], |_| Ok(()))
                .optional()?
                .is_some();
            if seen {
                return Ok(GrantOutcome::AlreadyProcessed { balance });
            }
            if balance + grant.delta < 0 {
                return Ok(GrantOutcome::InsufficientCredits { balance });
            }
            tx.execute(
                "INSERT INTO grants (transaction_id, user_id, amount, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![grant.transaction_id.as_str(), user, grant.delta, grant.at.to_rfc3339()],
            )?;
            let balance = append_entry(
                &tx,
                user,
                grant.delta,
                grant.kind,
                &grant.description(),
                Some(grant.transaction_id.as_str()),
                grant.at,
            )?;
            tx.commit()?;
            Ok(GrantOutcome::Applied { balance })
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn ledger(
        &self,
        user: &UserId,
        page: LedgerPage,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let user = user.as_str().to_owned();
        self.run(move |c| {
            let mut statement = c.prepare_cached(
                "SELECT seq, delta, balance_after, kind, description, reference, created_at
                 FROM ledger WHERE user_id = ?1 ORDER BY seq DESC LIMIT ?2 OFFSET ?3",
            )?;
            let rows = statement.query_map(params![user, page.limit, page.offset], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get::<_, String>(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get::<_, String>(6)?,
                ))
            })?;
            rows.map(|row| {
                let (seq, delta, balance_after, kind, description, reference, created_at) = row?;
                Ok(LedgerEntry {
                    seq,
                    delta,
                    balance_after,
                    kind: EntryKind::parse(&kind).map_err(|e| StoreError::Corrupt(e.0))?,
                    description,
                    reference,
                    created_at: time(created_at)?,
                })
            })
            .collect()
        })
        .await
    }
}
