//! The page a shared link opens: the book's title, its cover and every page's picture and text
//! in order, in the book's language, readable on a phone and on a desktop. Nothing else of the
//! family's (no key, profile, child's photo or stored URL), no script, nothing from another
//! origin: the policy allows only our own pictures and the one stylesheet below, by its hash.

use base64::Engine;
use html_escape::{encode_double_quoted_attribute as attribute, encode_text as text};
use sha2::{Digest, Sha256};
use std::fmt::Write;
use std::sync::LazyLock;
use storybook_core::domain::book::{Book, Language};

/// Where the page sends a reader who wants a book of their own.
const APP_URL: &str = "https://aistorybook.app";

const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;background:#fdf8f0;color:#2b2b2b;font:18px/1.6 system-ui,-apple-system,'Segoe UI',sans-serif}\
main{max-width:760px;margin:0 auto;padding:16px}\
h1{font-size:1.6em;line-height:1.25;margin:.4em 0 .8em;text-align:center}\
img{display:block;width:100%;height:auto;border-radius:12px;background:#eee}\
.page{margin:0 0 32px}\
.page p{margin:.8em .2em 0;white-space:pre-line}\
.number{color:#8a7f70;font-size:.8em}\
.note{text-align:center}\
footer{text-align:center;margin:40px 0 24px}\
footer a{display:inline-block;padding:12px 20px;border-radius:24px;background:#ff8a3d;color:#fff;text-decoration:none;font-weight:600}\
@media (min-width:900px){body{font-size:20px}main{padding:32px}}";

/// The answer's Content-Security-Policy: our own pictures, the stylesheet by its hash, nothing
/// else (no script, no frame, no form, no other origin).
pub static POLICY: LazyLock<String> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    format!(
        "default-src 'none'; img-src 'self'; style-src 'sha256-{hash}'; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    )
});

/// What the page says around the book, in its language.
struct Words {
    lang: &'static str,
    page: &'static str,
    cover: &'static str,
    call_to_action: &'static str,
    description: &'static str,
}

fn words(language: Language) -> Words {
    match language {
        Language::Korean => Words {
            lang: "ko",
            page: "쪽",
            cover: "표지",
            call_to_action: "AI Story Book으로 우리 아이 동화 만들기",
            description: "AI Story Book으로 만든 그림책",
        },
        Language::English => Words {
            lang: "en",
            page: "Page",
            cover: "Cover",
            call_to_action: "Make your own picture book with AI Story Book",
            description: "A picture book made with AI Story Book",
        },
        Language::Japanese => Words {
            lang: "ja",
            page: "ページ",
            cover: "表紙",
            call_to_action: "AI Story Bookで絵本をつくろう",
            description: "AI Story Bookでつくった絵本",
        },
        Language::Chinese => Words {
            lang: "zh",
            page: "第页",
            cover: "封面",
            call_to_action: "用 AI Story Book 制作你的绘本",
            description: "用 AI Story Book 制作的绘本",
        },
        Language::Spanish => Words {
            lang: "es",
            page: "Página",
            cover: "Portada",
            call_to_action: "Crea tu propio libro ilustrado con AI Story Book",
            description: "Un libro ilustrado hecho con AI Story Book",
        },
    }
}

/// A page's label: "3쪽", "Page 3", "第3页".
fn page_label(words: &Words, number: u8) -> String {
    match words.lang {
        "ko" | "ja" => format!("{number}{}", words.page),
        "zh" => format!("第{number}页"),
        _ => format!("{} {number}", words.page),
    }
}

/// The book's page for the link `token`; `origin` makes the preview's image URL absolute.
pub fn book_page(book: &Book, token: &str, origin: &str) -> String {
    let words = words(book.request.language);
    let title = book.title.as_deref().unwrap_or_default();
    let has_cover = book.cover().is_some_and(|c| c.image_key.is_some());
    let mut html = String::with_capacity(8 * 1024);
    let _ = write!(
        html,
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex,nofollow\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{title_text}</title>\
         <meta property=\"og:type\" content=\"book\">\
         <meta property=\"og:title\" content=\"{title_attr}\">\
         <meta property=\"og:description\" content=\"{description}\">",
        lang = words.lang,
        title_text = text(title),
        title_attr = attribute(title),
        description = attribute(words.description),
    );
    if has_cover {
        let _ = write!(
            html,
            "<meta property=\"og:image\" content=\"{}\">\
             <meta name=\"twitter:card\" content=\"summary_large_image\">",
            attribute(&format!("{origin}/share/{token}/img/cover"))
        );
    }
    let _ = write!(html, "<style>{STYLE}</style></head><body><main>");
    if has_cover {
        let _ = write!(
            html,
            "<img class=\"cover\" src=\"/share/{token}/img/cover\" alt=\"{}\">",
            attribute(&format!("{title} — {}", words.cover))
        );
    }
    let _ = write!(html, "<h1>{}</h1>", text(title));
    let mut pages: Vec<_> = book.story_pages().collect();
    pages.sort_by_key(|p| p.number);
    for page in pages {
        let label = page_label(&words, page.number);
        let _ = write!(html, "<section class=\"page\">");
        if page.image_key.is_some() {
            let _ = write!(
                html,
                "<img src=\"/share/{token}/img/page/{}\" alt=\"{}\">",
                page.number,
                attribute(&label)
            );
        }
        let _ = write!(
            html,
            "<p>{}</p><p class=\"number\">{}</p></section>",
            text(&page.text),
            text(&label)
        );
    }
    let _ = write!(
        html,
        "<footer><a href=\"{APP_URL}\">{}</a></footer></main></body></html>",
        text(words.call_to_action)
    );
    html
}

/// What an expired, revoked or unknown link opens (with a 404): said in Korean and English,
/// since there is no book to take a language from.
pub fn gone_page() -> String {
    format!(
        "<!doctype html><html lang=\"ko\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex,nofollow\">\
         <title>더 이상 공유되지 않는 책입니다 · No longer shared</title>\
         <style>{STYLE}</style></head><body><main>\
         <h1>더 이상 공유되지 않는 책입니다</h1>\
         <p lang=\"en\" class=\"note\">This book is no longer shared.</p>\
         <footer><a href=\"{APP_URL}\">AI Story Book</a></footer></main></body></html>"
    )
}
