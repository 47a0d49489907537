//! The daily story: one theme and topic a day, the same for every family, from the day of the
//! year (the parent's local day): theme `day mod 7`, topic `day mod 4`, as the app contract has
//! it. The seven themes are the contract's; the topics are ours, four a theme.

use chrono::{Datelike, NaiveDate};

/// A daily theme: its id, its Korean name (also a book's `theme`), and its four topics.
pub struct DailyTheme {
    pub id: &'static str,
    pub name: &'static str,
    pub topics: [&'static str; 4],
}

pub const DAILY_THEMES: [DailyTheme; 7] = [
    DailyTheme {
        id: "friendship",
        name: "우정",
        topics: [
            "새로 전학 온 친구에게 먼저 인사하기",
            "친구와 장난감을 나누어 노는 날",
            "다툰 친구와 화해하는 방법",
            "멀리 이사 간 친구에게 보내는 편지",
        ],
    },
    DailyTheme {
        id: "courage",
        name: "용기",
        topics: [
            "어둠 속에서 혼자 잠들기",
            "처음 타 보는 두발자전거",
            "무대 위에서 노래 부르기",
            "모르는 것을 손들고 물어보기",
        ],
    },
    DailyTheme {
        id: "kindness",
        name: "친절",
        topics: [
            "길 잃은 아기 새를 도와준 날",
            "할머니의 무거운 짐 들어 드리기",
            "아픈 친구에게 그림 선물하기",
            "놀이터에서 혼자 있는 친구와 함께 놀기",
        ],
    },
    DailyTheme {
        id: "family",
        name: "가족",
        topics: [
            "아빠와 함께 만드는 주말 요리",
            "동생이 태어난 날",
            "할아버지의 옛날이야기",
            "온 가족이 떠나는 캠핑",
        ],
    },
    DailyTheme {
        id: "nature",
        name: "자연",
        topics: [
            "씨앗이 자라 꽃이 되기까지",
            "비 오는 날 만난 달팽이",
            "바닷가에서 주운 조개껍데기",
            "사계절을 지나는 커다란 나무",
        ],
    },
    DailyTheme {
        id: "growth",
        name: "성장",
        topics: [
            "혼자서 신발 끈 묶기",
            "실수해도 다시 해 보는 연습",
            "처음으로 심부름 가는 날",
            "키가 한 뼘 자란 봄",
        ],
    },
    DailyTheme {
        id: "imagination",
        name: "상상",
        topics: [
            "구름 위에 있는 비밀 도서관",
            "장난감들이 깨어나는 밤",
            "달나라로 떠나는 종이비행기",
            "말하는 크레파스와 그린 세상",
        ],
    },
];

/// One day's story: its theme and which of the theme's topics.
pub struct DailyStory {
    pub theme: &'static DailyTheme,
    pub topic_index: usize,
}

impl DailyStory {
    /// The story of `day` (the parent's local day).
    pub fn of(day: NaiveDate) -> Self {
        let day_of_year = day.ordinal() as usize;
        DailyStory {
            theme: &DAILY_THEMES[day_of_year % DAILY_THEMES.len()],
            topic_index: day_of_year % 4,
        }
    }

    pub fn topic(&self) -> &'static str {
        self.theme.topics[self.topic_index]
    }

    /// `<theme>_<index>`, as the app reads it.
    pub fn topic_id(&self) -> String {
        format!("{}_{}", self.theme.id, self.topic_index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_day_has_its_theme_and_topic() {
        // 2026-07-07 is the 188th day: 188 mod 7 = 6, 188 mod 4 = 0.
        let story = DailyStory::of(NaiveDate::from_ymd_opt(2026, 7, 7).unwrap());
        assert_eq!(story.theme.id, "imagination");
        assert_eq!(story.topic_id(), "imagination_0");
        let next = DailyStory::of(NaiveDate::from_ymd_opt(2026, 7, 8).unwrap());
        assert_eq!((next.theme.id, next.topic_index), ("friendship", 1));
        for theme in &DAILY_THEMES {
            assert!(
                theme
                    .topics
                    .iter()
                    .all(|t| super::super::book::Topic::parse(t).is_ok())
            );
        }
    }
}
