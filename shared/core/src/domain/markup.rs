//! The markup rule every text keeps, whoever wrote it (a parent, a model): no tag, event
//! attribute or script URL a page could run, judged as a browser would read the text.

/// Whether `text` holds markup or script a page could run: a tag (`<` then a letter, `/`, `!` or
/// `?`), an event attribute (`on` and three or more letters at a word's start, then `=`, spaces
/// allowed between), or a script URL (`javascript:`, `vbscript:`, `data:text/html`, spaces and
/// case ignored). Read as a parser would, not as a list of substrings: `onerror =x`, `<svg>`,
/// `<a href>` are all caught, while `3 < 5` and Korean text pass. HTML character references are
/// decoded first, as a browser would decode them (`javascript&colon;`, `java&#x09;script:`,
/// `&#x3C;script&#x3E;`, `&amp;lt;` twice over), so an encoded form is judged as what it shows.
pub fn contains_markup(text: &str) -> bool {
    let mut seen = text.to_owned();
    // Each pass decodes one level; four cover any encoding a page would decode in one go.
    for _ in 0..4 {
        if markup_as_written(&seen) {
            return true;
        }
        let decoded = decode_references(&seen);
        if decoded == seen {
            return false;
        }
        seen = decoded;
    }
    markup_as_written(&seen)
}

/// `text` with its HTML character references decoded, those without a closing `;` too (as
/// browsers decode `&#60` and `&lt`).
fn decode_references(text: &str) -> String {
    let closed = html_escape::decode_html_entities(text);
    // Numeric references left without their `;`: add one and decode again.
    let mut with_semicolons = String::with_capacity(closed.len());
    let chars: Vec<char> = closed.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        with_semicolons.push(chars[i]);
        if chars[i] == '&' && chars.get(i + 1) == Some(&'#') {
            let hex = matches!(chars.get(i + 2), Some('x' | 'X'));
            let start = i + 2 + usize::from(hex);
            let digits = chars[start.min(chars.len())..]
                .iter()
                .take_while(|c| {
                    if hex {
                        c.is_ascii_hexdigit()
                    } else {
                        c.is_ascii_digit()
                    }
                })
                .count();
            if digits > 0 && chars.get(start + digits) != Some(&';') {
                with_semicolons.extend(&chars[i + 1..start + digits]);
                with_semicolons.push(';');
                i = start + digits;
                continue;
            }
        }
        i += 1;
    }
    html_escape::decode_html_entities(&with_semicolons).into_owned()
}

fn markup_as_written(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied();
        if c == '<' && next.is_some_and(|n| n.is_ascii_alphabetic() || matches!(n, '/' | '!' | '?'))
        {
            return true;
        }
        let word_start = i == 0 || !chars[i - 1].is_alphanumeric();
        if word_start
            && c.eq_ignore_ascii_case(&'o')
            && next.is_some_and(|n| n.eq_ignore_ascii_case(&'n'))
        {
            let letters = chars[i + 2..]
                .iter()
                .take_while(|l| l.is_ascii_alphabetic())
                .count();
            let rest = chars[i + 2 + letters..].iter().find(|r| !r.is_whitespace());
            if letters >= 3 && rest == Some(&'=') {
                return true;
            }
        }
    }
    // Whitespace and control characters inside a scheme are ignored by URL parsers.
    let squeezed: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .flat_map(char::to_lowercase)
        .collect();
    ["javascript:", "vbscript:", "data:text/html"]
        .iter()
        .any(|scheme| squeezed.contains(scheme))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_character_references_is_markup() {
        for encoded in [
            "javascript&colon;alert(1)",
            "java&#x09;script:alert(1)",
            "java&#9;script:alert(1)",
            "&#x3C;script&#x3E;alert(1)",
            "&#60script&#62",
            "&lt;img src=x onerror=alert(1)&gt;",
            "&amp;lt;script&amp;gt;",
            "&amp;#x3C;svg&amp;#x3E;",
            "jav&Tab;ascript:alert(1)",
            "<IMG SRC=x>",
        ] {
            assert!(contains_markup(encoded), "{encoded}");
        }
        for fine in [
            "3 &lt; 5 and 7 &gt; 2",
            "Tom &amp; Jerry",
            "salt &c.",
            "공룡 &#44277;",
            "a &#x41; b",
            "on the moon = happy",
        ] {
            assert!(!contains_markup(fine), "{fine}");
        }
    }
}
