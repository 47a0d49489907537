//! Reading streaks: consecutive local days on which a child read, and the milestones along them.

use super::book::BookId;
use super::settings::TimeZone;
use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::Serialize;

/// One reading session, on the local day it counted for (the user's time zone when it happened).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub book_id: BookId,
    pub read_at: DateTime<Utc>,
    pub day: NaiveDate,
    /// Seconds spent reading, as the app reports them.
    pub reading_time: u32,
    pub completed: bool,
    /// The child profile it was read under (`X-Profile-Id`), if any.
    pub profile: Option<String>,
}

/// The sessions of one local day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadingDay {
    pub day: NaiveDate,
    pub sessions: Vec<Reading>,
}

impl ReadingDay {
    /// Sessions grouped by local day, oldest day first.
    pub fn group(readings: Vec<Reading>) -> Vec<ReadingDay> {
        let mut days: std::collections::BTreeMap<NaiveDate, Vec<Reading>> = Default::default();
        for reading in readings {
            days.entry(reading.day).or_default().push(reading);
        }
        days.into_iter()
            .map(|(day, sessions)| ReadingDay { day, sessions })
            .collect()
    }

    pub fn seconds_read(&self) -> u64 {
        self.sessions
            .iter()
            .map(|r| u64::from(r.reading_time))
            .sum()
    }

    pub fn completed(&self) -> usize {
        self.sessions.iter().filter(|r| r.completed).count()
    }
}

/// The first and last day of a calendar month; `None` for no such month.
pub fn month_days(year: i32, month: u32) -> Option<(NaiveDate, NaiveDate)> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let last = first
        .checked_add_months(chrono::Months::new(1))?
        .pred_opt()?;
    Some((first, last))
}

/// The `days` local days ending with `last` (so `days` 1 is `last` alone).
pub fn days_ending(last: NaiveDate, days: u32) -> Option<(NaiveDate, NaiveDate)> {
    let first = last.checked_sub_days(Days::new(u64::from(days.max(1)) - 1))?;
    Some((first, last))
}

/// The longest reading session we record: a day. Longer is a client's mistake.
pub const MAX_READING_SECONDS: i64 = 86_400;

/// A user's streak as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Streak {
    pub current: u32,
    pub longest: u32,
    pub total_days: u32,
    /// The last local day that counted.
    pub last_day: Option<NaiveDate>,
    /// When the read that counted it happened: a later read counts a new day only if it falls on
    /// a later day than this instant in the reader's zone of now, so that moving the time zone
    /// east cannot make a new day out of the same hours.
    pub last_read_at: Option<DateTime<Utc>>,
}

impl Streak {
    /// The streak after a read on local `day`, or `None` when that day counted already (a second
    /// session) or lies before the last counted day (the parent moved time zones westwards).
    pub fn after_read(&self, day: NaiveDate) -> Option<Streak> {
        let current = match self.last_day {
            Some(last) if day <= last => return None,
            Some(last) if last.checked_add_days(Days::new(1)) == Some(day) => self.current + 1,
            _ => 1,
        };
        Some(Streak {
            current,
            longest: self.longest.max(current),
            total_days: self.total_days + 1,
            last_day: Some(day),
            last_read_at: self.last_read_at,
        })
    }

    /// The streak after a read at `at` by a reader in `zone`, or `None` when it counts no new
    /// day: its local day counted already, or it is not a later day than the last counted read
    /// in this same zone (the reader moved east of where that read counted).
    pub fn after_read_in(&self, zone: &TimeZone, at: DateTime<Utc>) -> Option<Streak> {
        let day = zone.day_of(at);
        if self
            .last_read_at
            .is_some_and(|last| day <= zone.day_of(last))
        {
            return None;
        }
        let mut next = self.after_read(day)?;
        next.last_read_at = Some(at);
        Some(next)
    }

    /// How the streak stands on local `today`: it is broken once a whole local day passed without
    /// a read.
    pub fn as_of(&self, today: NaiveDate) -> StreakView {
        let yesterday = today.checked_sub_days(Days::new(1));
        let alive = self.last_day == Some(today) || self.last_day == yesterday;
        StreakView {
            current: if alive { self.current } else { 0 },
            read_today: self.last_day == Some(today),
            broken: self.last_day.is_some() && !alive,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreakView {
    pub current: u32,
    pub read_today: bool,
    pub broken: bool,
}

/// Streak lengths that are celebrated (no reward).
pub const STREAK_MILESTONES: &[u32] = &[3, 7, 14, 30, 100];
/// Total reading days that earn credits, once per account.
pub const TOTAL_DAY_REWARDS: &[(u32, i64)] = &[(10, 1), (50, 2), (100, 3)];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MilestoneKind {
    Streak,
    TotalDays,
}

/// A milestone reached by a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Milestone {
    #[serde(rename = "type")]
    pub kind: MilestoneKind,
    pub value: u32,
    pub reward_credits: i64,
}

impl Milestone {
    /// What the app shows; the app contract leaves the wording to us.
    pub fn message(&self) -> String {
        match (self.kind, self.reward_credits) {
            (MilestoneKind::Streak, _) => format!("{} days in a row!", self.value),
            (MilestoneKind::TotalDays, 0) => format!("{} reading days!", self.value),
            (MilestoneKind::TotalDays, n) => format!(
                "{} reading days! {n} free credit{} added.",
                self.value,
                if n == 1 { "" } else { "s" }
            ),
        }
    }

    /// What granting the reward is called in the ledger.
    pub fn ledger_description(&self) -> String {
        format!("Reading milestone: {} days", self.value)
    }
}

/// The milestones a move from `before` to `after` reaches. A total is reached once per account
/// (it only grows), so its reward is paid once.
pub fn milestones_reached(before: &Streak, after: &Streak) -> Vec<Milestone> {
    let mut reached = Vec::new();
    if after.current != before.current && STREAK_MILESTONES.contains(&after.current) {
        reached.push(Milestone {
            kind: MilestoneKind::Streak,
            value: after.current,
            reward_credits: 0,
        });
    }
    for &(days, reward) in TOTAL_DAY_REWARDS {
        if before.total_days < days && after.total_days >= days {
            reached.push(Milestone {
                kind: MilestoneKind::TotalDays,
                value: days,
                reward_credits: reward,
            });
        }
    }
    reached
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(day: u32, seconds: u32, completed: bool) -> Reading {
        Reading {
            profile: None,
            book_id: BookId::parse("bk_00000000000000000000000000").unwrap(),
            read_at: DateTime::UNIX_EPOCH,
            day: NaiveDate::from_ymd_opt(2026, 2, day).unwrap(),
            reading_time: seconds,
            completed,
        }
    }

    #[test]
    fn readings_are_grouped_by_day_oldest_first() {
        let days = ReadingDay::group(vec![
            reading(3, 60, true),
            reading(1, 30, false),
            reading(3, 15, false),
        ]);
        let summary: Vec<(u32, usize, u64, usize)> = days
            .iter()
            .map(|d| {
                use chrono::Datelike;
                (
                    d.day.day(),
                    d.sessions.len(),
                    d.seconds_read(),
                    d.completed(),
                )
            })
            .collect();
        assert_eq!(summary, [(1, 1, 30, 0), (3, 2, 75, 1)]);
    }

    #[test]
    fn months_and_spans_of_days() {
        let day = |m, d| NaiveDate::from_ymd_opt(2028, m, d).unwrap();
        assert_eq!(month_days(2028, 2), Some((day(2, 1), day(2, 29))));
        assert_eq!(month_days(2028, 13), None);
        assert_eq!(days_ending(day(3, 1), 1), Some((day(3, 1), day(3, 1))));
        assert_eq!(days_ending(day(3, 1), 2), Some((day(2, 29), day(3, 1))));
    }

    fn day(raw: &str) -> NaiveDate {
        raw.parse().unwrap()
    }

    #[test]
    fn consecutive_days_extend_and_a_gap_restarts() {
        let s = Streak::default().after_read(day("2026-07-06")).unwrap();
        assert_eq!((s.current, s.longest, s.total_days), (1, 1, 1));
        let s = s.after_read(day("2026-07-07")).unwrap();
        assert_eq!((s.current, s.longest, s.total_days), (2, 2, 2));
        assert_eq!(
            s.after_read(day("2026-07-07")),
            None,
            "a second read that day"
        );
        assert_eq!(s.after_read(day("2026-07-06")), None, "an earlier day");
        let s = s.after_read(day("2026-07-09")).unwrap();
        assert_eq!((s.current, s.longest, s.total_days), (1, 2, 3));
    }

    #[test]
    fn a_missed_day_breaks_the_streak() {
        let s = Streak::default().after_read(day("2026-07-06")).unwrap();
        let view = s.as_of(day("2026-07-07"));
        assert_eq!(
            (view.current, view.read_today, view.broken),
            (1, false, false)
        );
        let view = s.as_of(day("2026-07-08"));
        assert_eq!((view.current, view.broken), (0, true));
        let never = Streak::default().as_of(day("2026-07-08"));
        assert_eq!((never.current, never.broken), (0, false));
    }

    #[test]
    fn milestones_are_reached_once() {
        let mut streak = Streak::default();
        let mut rewards = 0;
        let mut celebrated = Vec::new();
        let mut today = day("2026-01-01");
        for _ in 0..120 {
            let next = streak.after_read(today).unwrap();
            for m in milestones_reached(&streak, &next) {
                rewards += m.reward_credits;
                celebrated.push((m.kind, m.value));
            }
            streak = next;
            today = today.succ_opt().unwrap();
        }
        assert_eq!(rewards, 1 + 2 + 3);
        assert_eq!(
            celebrated
                .iter()
                .filter(|(k, _)| *k == MilestoneKind::Streak)
                .count(),
            STREAK_MILESTONES.len()
        );
    }
}
