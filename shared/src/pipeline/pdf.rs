//! The book as a PDF: a cover, one page per story page with its picture and text, an end page.
//! Text is set in NanumSquareRound (SIL Open Font License, `shared/assets/fonts`), which covers
//! Hangul and Latin; krilla embeds only the glyphs used. Pictures come from our own blob storage,
//! never from a URL a client supplied.

use crate::domain::book::{Book, Language};
use crate::ports::{BlobKey, BlobStore};
use krilla::Document;
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect, Size, Transform};
use krilla::image::Image;
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::Fill;
use krilla::surface::Surface;
use krilla::text::{Font, TextDirection};

static FONT: &[u8] = include_bytes!("../../assets/fonts/NanumSquareRoundR.ttf");

/// A5 landscape, in points.
const WIDTH: f32 = 595.0;
const HEIGHT: f32 = 420.0;
const MARGIN: f32 = 36.0;

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

fn fill(surface: &mut Surface, colour: (u8, u8, u8)) {
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

fn picture(
    surface: &mut Surface,
    png: Vec<u8>,
    x: f32,
    y: f32,
    width: f32,
    height: f32,
) -> anyhow::Result<()> {
    let image = Image::from_png(png.into(), true).map_err(|e| anyhow::anyhow!("picture: {e}"))?;
    surface.push_transform(&Transform::from_translate(x, y));
    surface.draw_image(
        image,
        Size::from_wh(width, height).expect("a positive size"),
    );
    surface.pop();
    Ok(())
}

fn centred(surface: &mut Surface, font: &Font, text: &str, size: f32, y: f32) {
    for (i, line) in wrap(text, size, WIDTH - 2.0 * MARGIN).iter().enumerate() {
        let width: f32 = line
            .chars()
            .map(|c| if c.is_ascii() { 0.55 * size } else { size })
            .sum();
        let x = ((WIDTH - width) / 2.0).max(MARGIN);
        surface.draw_text(
            Point::from_xy(x, y + i as f32 * size * 1.4),
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

/// Builds the PDF of a book whose pages and pictures are all recorded.
pub async fn render(book: &Book, blobs: &dyn BlobStore) -> anyhow::Result<Vec<u8>> {
    let cover = image_of(blobs, book.cover().and_then(|p| p.image_key.as_deref())).await?;
    let mut pages = Vec::new();
    for page in book.story_pages() {
        pages.push((
            page.text.clone(),
            image_of(blobs, page.image_key.as_deref()).await?,
        ));
    }
    let title = book.title.clone().unwrap_or_default();
    let language = book.request.language;
    // Laying out is CPU work.
    tokio::task::spawn_blocking(move || lay_out(&title, language, cover, pages)).await?
}

fn lay_out(
    title: &str,
    language: Language,
    cover: Option<Vec<u8>>,
    pages: Vec<(String, Option<Vec<u8>>)>,
) -> anyhow::Result<Vec<u8>> {
    let font = Font::new(FONT.into(), 0)
        .ok_or_else(|| anyhow::anyhow!("the bundled font does not load"))?;
    let settings = PageSettings::from_wh(WIDTH, HEIGHT).expect("a positive page");
    let mut document = Document::new();

    let mut page = document.start_page_with(settings.clone());
    let mut surface = page.surface();
    background(&mut surface, (252, 246, 232));
    if let Some(png) = cover {
        picture(
            &mut surface,
            png,
            (WIDTH - 320.0) / 2.0,
            MARGIN,
            320.0,
            240.0,
        )?;
    }
    fill(&mut surface, (60, 50, 80));
    centred(&mut surface, &font, title, 24.0, MARGIN + 240.0 + 48.0);
    surface.finish();
    page.finish();

    for (number, (text, png)) in pages.into_iter().enumerate() {
        let mut page = document.start_page_with(settings.clone());
        let mut surface = page.surface();
        background(&mut surface, (255, 253, 248));
        if let Some(png) = png {
            picture(&mut surface, png, (WIDTH - 288.0) / 2.0, 24.0, 288.0, 216.0)?;
        }
        fill(&mut surface, (40, 40, 50));
        for (i, line) in wrap(&text, 14.0, WIDTH - 2.0 * MARGIN)
            .iter()
            .take(7)
            .enumerate()
        {
            let y = 24.0 + 216.0 + 34.0 + i as f32 * 20.0;
            surface.draw_text(
                Point::from_xy(MARGIN, y),
                font.clone(),
                14.0,
                line,
                false,
                TextDirection::Auto,
            );
        }
        fill(&mut surface, (150, 150, 160));
        centred(
            &mut surface,
            &font,
            &(number + 1).to_string(),
            10.0,
            HEIGHT - 18.0,
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
    centred(&mut surface, &font, end, 36.0, HEIGHT / 2.0);
    surface.finish();
    page.finish();

    document
        .finish()
        .map_err(|e| anyhow::anyhow!("writing the PDF: {e:?}"))
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
