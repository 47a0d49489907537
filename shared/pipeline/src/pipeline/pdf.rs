//! The book as a PDF, laid out as a picture book: a cover with the title, the hero and the
//! child's name; one page per story page with its picture large (most of the page, at the
//! resolution the provider made it, its proportions kept) and the text beneath it (or beside it
//! when it is long) in a size for the reader's age; an end page.
//! Text is set in NanumSquareRound (SIL Open Font License, `shared/assets/fonts`), which covers
//! Hangul and Latin; krilla embeds only the glyphs used. Pictures come from our own blob storage,
//! never from a URL a client supplied.

use krilla::Document;
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect, Size, Transform};
use krilla::image::Image;
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::Fill;
use krilla::surface::Surface;
use krilla::text::{Font, TextDirection};
use storybook_core::domain::book::{Book, Language, TargetAge};
use storybook_core::ports::{BlobKey, BlobStore};

pub(crate) static FONT: &[u8] = include_bytes!("../../assets/fonts/NanumSquareRoundR.ttf");

/// A4 landscape, in points.
const WIDTH: f32 = 842.0;
const HEIGHT: f32 = 595.0;
const MARGIN: f32 = 36.0;

/// The text size a reader of this age follows comfortably (points), and the smallest it may be
/// set at when a page's text is long.
pub(crate) fn text_size(age: TargetAge) -> (f32, f32) {
    match age {
        TargetAge::ThreeToFive => (24.0, 16.0),
        TargetAge::FiveToSeven => (20.0, 14.0),
        TargetAge::SevenToNine => (17.0, 12.0),
        TargetAge::Adult => (14.0, 11.0),
    }
}

/// The line height for text of `size`.
pub(crate) fn leading(size: f32) -> f32 {
    size * 1.45
}

/// Splits text into lines that fit `width` at `size`, estimating advances (Hangul and other wide
/// characters one em, the rest about half), breaking at spaces where possible.
pub fn wrap(text: &str, size: f32, width: f32) -> Vec<String> {
    let advance = |c: char| if c.is_ascii() { 0.55 * size } else { size };
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut line_width = 0.0;
    for word in text.split_whitespace() {
        let word_width: f32 = word.chars().map(advance).sum();
        let space = if line.is_empty() { 0.0 } else { advance(' ') };
        if line_width + space + word_width > width && !line.is_empty() {
            lines.push(std::mem::take(&mut line));
            line_width = 0.0;
        }
        if word_width > width {
            // A word longer than the line is cut where it must be.
            for c in word.chars() {
                if line_width + advance(c) > width && !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                    line_width = 0.0;
                }
                line.push(c);
                line_width += advance(c);
            }
            continue;
        }
        if !line.is_empty() {
            line.push(' ');
            line_width += advance(' ');
        }
        line.push_str(word);
        line_width += word_width;
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

pub(crate) fn fill(surface: &mut Surface, colour: (u8, u8, u8)) {
    surface.set_fill(Some(Fill {
        paint: rgb::Color::new(colour.0, colour.1, colour.2).into(),
        opacity: NormalizedF32::ONE,
        rule: Default::default(),
    }));
}

fn background(surface: &mut Surface, colour: (u8, u8, u8)) {
    let mut path = PathBuilder::new();
    path.push_rect(Rect::from_xywh(0.0, 0.0, WIDTH, HEIGHT).expect("a positive page"));
    fill(surface, colour);
    surface.draw_path(&path.finish().expect("a rectangle"));
}

/// A picture in any of the kinds providers make (PNG, JPEG, WebP), at its own resolution.
pub(crate) fn decode(bytes: Vec<u8>) -> anyhow::Result<Image> {
    let kind = crate::providers::fetch::image_extension(&bytes);
    let decoded = match kind {
        Some("jpg") => Image::from_jpeg(bytes.into(), true),
        Some("webp") => Image::from_webp(bytes.into(), true),
        _ => Image::from_png(bytes.into(), true),
    };
    decoded.map_err(|e| anyhow::anyhow!("picture: {e}"))
}

/// Draws `image` as large as fits the box at (`x`, `y`) of `width` x `height`, its proportions
/// kept, centred in the box; answers the rectangle it took.
pub(crate) fn picture(
    surface: &mut Surface,
    image: Image,
    x: f32,
    y: f32,
    width: f32,
    height: f32,
) -> (f32, f32, f32, f32) {
    let (pixels_wide, pixels_high) = image.size();
    let aspect = pixels_wide.max(1) as f32 / pixels_high.max(1) as f32;
    let (w, h) = if width / height > aspect {
        (height * aspect, height)
    } else {
        (width, width / aspect)
    };
    let (left, top) = (x + (width - w) / 2.0, y + (height - h) / 2.0);
    surface.push_transform(&Transform::from_translate(left, top));
    surface.draw_image(image, Size::from_wh(w, h).expect("a positive size"));
    surface.pop();
    (left, top, w, h)
}

fn centred(surface: &mut Surface, font: &Font, text: &str, size: f32, y: f32) {
    let column = WIDTH - 2.0 * MARGIN;
    let lines = wrap(text, size, column);
    centred_lines(surface, font, &lines, size, MARGIN, column, y);
}

/// Lines of text centred in the column from `left`, `width` wide, the first at `y`.
pub(crate) fn centred_lines(
    surface: &mut Surface,
    font: &Font,
    lines: &[String],
    size: f32,
    left: f32,
    width: f32,
    y: f32,
) {
    for (i, line) in lines.iter().enumerate() {
        let line_width: f32 = line
            .chars()
            .map(|c| if c.is_ascii() { 0.55 * size } else { size })
            .sum();
        let x = left + ((width - line_width) / 2.0).max(0.0);
        surface.draw_text(
            Point::from_xy(x, y + i as f32 * leading(size)),
            font.clone(),
            size,
            line,
            false,
            TextDirection::Auto,
        );
    }
}

async fn image_of(blobs: &dyn BlobStore, key: Option<&str>) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(key) = key else { return Ok(None) };
    let key = BlobKey::parse(key).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(blobs.get(&key).await?.map(|bytes| bytes.to_vec()))
}

/// A book's cover picture, and each story page's text and picture, from our blob storage.
pub(crate) async fn pictures_of(
    book: &Book,
    blobs: &dyn BlobStore,
) -> anyhow::Result<(Option<Vec<u8>>, Vec<(String, Option<Vec<u8>>)>)> {
    let cover = image_of(blobs, book.cover().and_then(|p| p.image_key.as_deref())).await?;
    let mut pages = Vec::new();
    for page in book.story_pages() {
        pages.push((
            page.text.clone(),
            image_of(blobs, page.image_key.as_deref()).await?,
        ));
    }
    Ok((cover, pages))
}

/// Builds the PDF of a book whose pages and pictures are all recorded.
pub async fn render(book: &Book, blobs: &dyn BlobStore) -> anyhow::Result<Vec<u8>> {
    let (cover, pages) = pictures_of(book, blobs).await?;
    let cover = Cover {
        title: book.title.clone().unwrap_or_default(),
        child: book
            .request
            .protagonist
            .as_ref()
            .map(|n| n.as_str().to_owned()),
        picture: cover,
    };
    let (language, age) = (book.request.language, book.request.target_age);
    // Laying out is CPU work.
    tokio::task::spawn_blocking(move || lay_out(cover, language, age, pages)).await?
}

struct Cover {
    title: String,
    /// The child the book is for, when the parent named them.
    child: Option<String>,
    picture: Option<Vec<u8>>,
}

/// The line under the title.
pub(crate) fn dedication(child: &str, language: Language) -> String {
    match language {
        Language::Korean => format!("{child}를 위한 그림책"),
        _ => format!("A picture book for {child}"),
    }
}

fn lay_out(
    cover: Cover,
    language: Language,
    age: TargetAge,
    pages: Vec<(String, Option<Vec<u8>>)>,
) -> anyhow::Result<Vec<u8>> {
    let font = Font::new(FONT.into(), 0)
        .ok_or_else(|| anyhow::anyhow!("the bundled font does not load"))?;
    let settings = PageSettings::from_wh(WIDTH, HEIGHT).expect("a positive page");
    let mut document = Document::new();

    // The cover: the picture over most of the page, the title and dedication beneath.
    let mut page = document.start_page_with(settings.clone());
    let mut surface = page.surface();
    background(&mut surface, (252, 246, 232));
    let title_size = 34.0;
    let title_lines = wrap(&cover.title, title_size, WIDTH - 2.0 * MARGIN)
        .len()
        .max(1) as f32;
    let under = title_lines * leading(title_size) + if cover.child.is_some() { 40.0 } else { 0.0 };
    let picture_height = HEIGHT - 2.0 * MARGIN - under - 16.0;
    if let Some(bytes) = cover.picture {
        picture(
            &mut surface,
            decode(bytes)?,
            MARGIN,
            MARGIN,
            WIDTH - 2.0 * MARGIN,
            picture_height,
        );
    }
    fill(&mut surface, (60, 50, 80));
    let title_y = MARGIN + picture_height + 16.0 + title_size;
    centred(&mut surface, &font, &cover.title, title_size, title_y);
    if let Some(child) = &cover.child {
        fill(&mut surface, (110, 100, 130));
        centred(
            &mut surface,
            &font,
            &dedication(child, language),
            18.0,
            title_y + title_lines * leading(title_size) + 8.0,
        );
    }
    surface.finish();
    page.finish();

    let (size, smallest) = text_size(age);
    for (number, (text, bytes)) in pages.into_iter().enumerate() {
        let mut page = document.start_page_with(settings.clone());
        let mut surface = page.surface();
        background(&mut surface, (255, 253, 248));
        let image = bytes.map(decode).transpose()?;
        story_page(&mut surface, &font, image, &text, size, smallest);
        fill(&mut surface, (150, 150, 160));
        centred(
            &mut surface,
            &font,
            &(number + 1).to_string(),
            10.0,
            HEIGHT - 14.0,
        );
        surface.finish();
        page.finish();
    }

    let mut page = document.start_page_with(settings);
    let mut surface = page.surface();
    background(&mut surface, (252, 246, 232));
    fill(&mut surface, (60, 50, 80));
    let end = if language == Language::Korean {
        "끝"
    } else {
        "The End"
    };
    centred(&mut surface, &font, end, 48.0, HEIGHT / 2.0);
    surface.finish();
    page.finish();

    document
        .finish()
        .map_err(|e| anyhow::anyhow!("writing the PDF: {e:?}"))
}

/// Lines of `text` at `size` in `width`, from `size` down to `smallest` until they fit `height`.
pub(crate) fn fitted(
    text: &str,
    size: f32,
    smallest: f32,
    width: f32,
    height: f32,
) -> (f32, Vec<String>) {
    let mut size = size;
    loop {
        let lines = wrap(text, size, width);
        if lines.len() as f32 * leading(size) <= height || size <= smallest {
            return (size, lines);
        }
        size -= 1.0;
    }
}

/// One story page: the picture across the top two thirds and the text beneath it; when the text
/// would not fit beneath even at the smallest size, the picture on the left and the text beside.
fn story_page(
    surface: &mut Surface,
    font: &Font,
    image: Option<Image>,
    text: &str,
    size: f32,
    smallest: f32,
) {
    let full_width = WIDTH - 2.0 * MARGIN;
    let picture_height = (HEIGHT - 2.0 * MARGIN) * 0.68;
    let beneath = HEIGHT - 2.0 * MARGIN - picture_height - 20.0;
    let (below_size, below_lines) = fitted(text, size, smallest, full_width, beneath);
    let fits_below = below_lines.len() as f32 * leading(below_size) <= beneath;
    let (text_x, text_y, text_size, lines) = if fits_below {
        if let Some(image) = image {
            picture(surface, image, MARGIN, MARGIN, full_width, picture_height);
        }
        (
            MARGIN,
            MARGIN + picture_height + 20.0,
            below_size,
            below_lines,
        )
    } else {
        let column = (full_width - 24.0) / 2.0;
        if let Some(image) = image {
            picture(
                surface,
                image,
                MARGIN,
                MARGIN,
                column,
                HEIGHT - 2.0 * MARGIN,
            );
        }
        let (size, lines) = fitted(text, size, smallest, column, HEIGHT - 2.0 * MARGIN);
        (MARGIN + column + 24.0, MARGIN, size, lines)
    };
    fill(surface, (40, 40, 50));
    for (i, line) in lines.iter().enumerate() {
        surface.draw_text(
            Point::from_xy(text_x, text_y + text_size + i as f32 * leading(text_size)),
            font.clone(),
            text_size,
            line,
            false,
            TextDirection::Auto,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_every_word_and_fits() {
        let text = "옛날 옛적에 토리가 살았어요. 오늘 토리의 마음속에는 어둠을 무서워하는 공룡에 대한 생각이 가득했어요.";
        let lines = wrap(text, 14.0, 200.0);
        assert!(lines.len() > 2);
        assert_eq!(lines.join(" "), text);
        for line in &lines {
            assert!(
                line.chars()
                    .map(|c| if c.is_ascii() { 7.7 } else { 14.0 })
                    .sum::<f32>()
                    <= 200.0,
                "{line}"
            );
        }
    }
}
