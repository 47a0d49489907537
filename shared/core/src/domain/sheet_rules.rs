//! The rules every character sheet keeps, whoever wrote it (a parent's request, a model's
//! answer): each text's length (the app's `CreateCharacterRequest`), no markup or control
//! characters, and how many traits and features.

use super::character::Sheet;
use super::markup::contains_markup;

/// How a text or a list breaks the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broken {
    TooShort {
        min: usize,
    },
    TooLong {
        max: usize,
    },
    /// Markup, script or control characters.
    Markup,
    /// A list with too few or too many items.
    Items {
        min: usize,
        max: usize,
    },
}

/// Where in the sheet a rule is broken (`["appearance", "face"]`, `["personality_traits", "0"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetProblem {
    pub place: Vec<String>,
    pub broken: Broken,
}

/// A text of `min` to `max` characters (at least `min` of them not blank) without markup or
/// control characters, or how it breaks that.
pub fn text_rule(value: &str, min: usize, max: usize) -> Option<Broken> {
    let length = value.chars().count();
    // Blank text says nothing: `"   "` is as short as `""`.
    if value.trim().chars().count() < min {
        Some(Broken::TooShort { min })
    } else if length > max {
        Some(Broken::TooLong { max })
    } else if contains_markup(value) || value.chars().any(char::is_control) {
        Some(Broken::Markup)
    } else {
        None
    }
}

/// A list of `min` to `max` items, each 1 to 60 characters of text: its problems, placed under
/// `field`.
pub fn list_rule(field: &str, values: &[String], min: usize, max: usize) -> Vec<SheetProblem> {
    let mut problems = Vec::new();
    if values.len() < min || values.len() > max {
        problems.push(SheetProblem {
            place: vec![field.to_owned()],
            broken: Broken::Items { min, max },
        });
    }
    for (i, value) in values.iter().enumerate() {
        if let Some(broken) = text_rule(value, 1, 60) {
            problems.push(SheetProblem {
                place: vec![field.to_owned(), i.to_string()],
                broken,
            });
        }
    }
    problems
}

/// Every rule `sheet` breaks, in the order of its fields.
pub fn problems(sheet: &Sheet) -> Vec<SheetProblem> {
    let (a, c) = (&sheet.appearance, &sheet.clothing);
    let texts: [(&[&str], &str, usize, usize); 12] = [
        (&["name"], &sheet.name, 1, 40),
        (&["master_description"], &sheet.master_description, 10, 400),
        (&["visual_style_notes"], &sheet.visual_style_notes, 1, 200),
        (&["appearance", "age_visual"], &a.age_visual, 1, 40),
        (&["appearance", "face"], &a.face, 1, 120),
        (&["appearance", "hair"], &a.hair, 1, 120),
        (&["appearance", "skin"], &a.skin, 1, 80),
        (&["appearance", "body"], &a.body, 1, 80),
        (&["clothing", "top"], &c.top, 1, 80),
        (&["clothing", "bottom"], &c.bottom, 1, 80),
        (&["clothing", "shoes"], &c.shoes, 1, 80),
        (&["clothing", "accessories"], &c.accessories, 1, 80),
    ];
    let mut problems: Vec<SheetProblem> = texts
        .into_iter()
        .filter_map(|(place, value, min, max)| {
            text_rule(value, min, max).map(|broken| SheetProblem {
                place: place.iter().map(|p| p.to_string()).collect(),
                broken,
            })
        })
        .collect();
    problems.extend(list_rule(
        "personality_traits",
        &sheet.personality_traits,
        1,
        10,
    ));
    if let Some(features) = &sheet.distinctive_features {
        problems.extend(list_rule("distinctive_features", features, 0, 10));
    }
    problems
}
