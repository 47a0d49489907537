//! The print-ready files Lulu asks for: the interior as single pages at the trim size plus a
//! 0.125" bleed on every side, text kept half an inch inside the trim, every picture at the
//! resolution the provider made it, the font embedded (krilla embeds the glyphs used), padded
//! with blank pages to the binding's minimum; and a one-piece cover (back, spine, front) of
//! exactly the size Lulu's cover-dimensions call gave.

use crate::pipeline::pdf::{
    FONT, centred_lines, decode, dedication, fill, fitted, leading, picture, pictures_of,
    text_size, wrap,
};
use krilla::Document;
use krilla::geom::{PathBuilder, Rect};
use krilla::page::PageSettings;
use krilla::surface::Surface;
use krilla::text::Font;
use storybook_core::domain::book::{Book, Language};
use storybook_core::ports::BlobStore;

/// Points per inch.
const INCH: f32 = 72.0;
/// Lulu's bleed on each side of an interior page.
const BLEED: f32 = 0.125 * INCH;
/// Text and faces stay this far inside the trim (Lulu's safety margin).
const SAFE: f32 = 0.5 * INCH;
/// Casewrap picture books are bound from this many interior pages up.
pub const MIN_PAGES: usize = 24;

/// The trim a Lulu package id names: its first nine characters, `WWWWXHHHH` in hundredths of
/// an inch (`0850X0850…` is 8.5" square).
pub fn trim_of(package_id: &str) -> Option<(f32, f32)> {
    let (width, height) = package_id.get(..9)?.split_once('X')?;
    let inches = |raw: &str| raw.parse::<u32>().ok().map(|h| h as f32 / 100.0 * INCH);
    Some((inches(width)?, inches(height)?))
}

fn rect(surface: &mut Surface, x: f32, y: f32, w: f32, h: f32, colour: (u8, u8, u8)) {
    let mut path = PathBuilder::new();
    path.push_rect(Rect::from_xywh(x, y, w, h).expect("a positive rectangle"));
    fill(surface, colour);
    surface.draw_path(&path.finish().expect("a rectangle"));
}

/// What the files are made of, read from the book's own stored pictures.
pub struct PrintBook {
    pub title: String,
    pub dedication: Option<String>,
    pub language: Language,
    pub cover: Option<Vec<u8>>,
    pub pages: Vec<(String, Option<Vec<u8>>)>,
    pub text_size: (f32, f32),
}

impl PrintBook {
    pub async fn read(book: &Book, blobs: &dyn BlobStore) -> anyhow::Result<Self> {
        let (cover, pages) = pictures_of(book, blobs).await?;
        let language = book.request.language;
        Ok(PrintBook {
            title: book.title.clone().unwrap_or_default(),
            dedication: book
                .request
                .protagonist
                .as_ref()
                .map(|child| dedication(child.as_str(), language)),
            language,
            cover,
            pages,
            text_size: text_size(book.request.target_age),
        })
    }

    /// How many interior pages the book prints on: a title page, its story pages and an end
    /// page, padded to the binding's minimum and to an even count.
    pub fn interior_pages(&self) -> usize {
        let pages = (self.pages.len() + 2).max(MIN_PAGES);
        pages + pages % 2
    }

    /// The interior PDF for a trim of `trim` points.
    pub fn interior(&self, trim: (f32, f32)) -> anyhow::Result<Vec<u8>> {
        let font = Font::new(FONT.into(), 0).ok_or_else(|| anyhow::anyhow!("the font"))?;
        let (width, height) = (trim.0 + 2.0 * BLEED, trim.1 + 2.0 * BLEED);
        let settings = PageSettings::from_wh(width, height).expect("a positive page");
        let inset = BLEED + SAFE;
        let column = width - 2.0 * inset;
        let mut document = Document::new();
        let mut printed = 0;

        let mut page = document.start_page_with(settings.clone());
        let mut surface = page.surface();
        rect(&mut surface, 0.0, 0.0, width, height, (252, 246, 232));
        fill(&mut surface, (60, 50, 80));
        let title = wrap(&self.title, 30.0, column);
        centred_lines(
            &mut surface,
            &font,
            &title,
            30.0,
            inset,
            column,
            height * 0.4,
        );
        if let Some(line) = &self.dedication {
            fill(&mut surface, (110, 100, 130));
            let y = height * 0.4 + title.len() as f32 * leading(30.0) + 12.0;
            centred_lines(
                &mut surface,
                &font,
                std::slice::from_ref(line),
                16.0,
                inset,
                column,
                y,
            );
        }
        surface.finish();
        page.finish();
        printed += 1;

        let (size, smallest) = self.text_size;
        for (text, bytes) in &self.pages {
            let mut page = document.start_page_with(settings.clone());
            let mut surface = page.surface();
            rect(&mut surface, 0.0, 0.0, width, height, (255, 253, 248));
            let text_height = (height - 2.0 * inset) * 0.3;
            let picture_height = height - 2.0 * inset - text_height - 12.0;
            if let Some(bytes) = bytes {
                picture(
                    &mut surface,
                    decode(bytes.clone())?,
                    inset,
                    inset,
                    column,
                    picture_height,
                );
            }
            let (size, lines) = fitted(text, size, smallest, column, text_height);
            fill(&mut surface, (40, 40, 50));
            let top = inset + picture_height + 12.0 + size;
            centred_lines(&mut surface, &font, &lines, size, inset, column, top);
            surface.finish();
            page.finish();
            printed += 1;
        }

        let mut page = document.start_page_with(settings.clone());
        let mut surface = page.surface();
        rect(&mut surface, 0.0, 0.0, width, height, (252, 246, 232));
        fill(&mut surface, (60, 50, 80));
        let end = if self.language == Language::Korean {
            "끝"
        } else {
            "The End"
        };
        centred_lines(
            &mut surface,
            &font,
            &[end.to_owned()],
            40.0,
            inset,
            column,
            height / 2.0,
        );
        surface.finish();
        page.finish();
        printed += 1;

        // Blank pages to the binding's minimum and an even count.
        while printed < self.interior_pages() {
            let mut page = document.start_page_with(settings.clone());
            let mut surface = page.surface();
            rect(&mut surface, 0.0, 0.0, width, height, (255, 255, 255));
            surface.finish();
            page.finish();
            printed += 1;
        }
        document
            .finish()
            .map_err(|e| anyhow::anyhow!("writing the interior: {e:?}"))
    }

    /// The one-piece cover, `size` points as Lulu's cover-dimensions call gave it: the back on
    /// the left half, the front (the cover picture and the title) on the right.
    pub fn cover(&self, size: (f32, f32)) -> anyhow::Result<Vec<u8>> {
        let font = Font::new(FONT.into(), 0).ok_or_else(|| anyhow::anyhow!("the font"))?;
        let (width, height) = size;
        let settings = PageSettings::from_wh(width, height)
            .ok_or_else(|| anyhow::anyhow!("cover dimensions {width} x {height}"))?;
        let mut document = Document::new();
        let mut page = document.start_page_with(settings);
        let mut surface = page.surface();
        rect(&mut surface, 0.0, 0.0, width, height, (252, 246, 232));
        // The front panel: everything kept inside the wrap and the safety margin.
        let inside = 0.75 * INCH + SAFE;
        let left = width / 2.0 + inside;
        let column = width / 2.0 - 2.0 * inside;
        let title = wrap(&self.title, 28.0, column);
        let title_height = title.len() as f32 * leading(28.0);
        let picture_height = height - 2.0 * inside - title_height - 16.0;
        if let Some(bytes) = &self.cover {
            picture(
                &mut surface,
                decode(bytes.clone())?,
                left,
                inside,
                column,
                picture_height,
            );
        }
        fill(&mut surface, (60, 50, 80));
        centred_lines(
            &mut surface,
            &font,
            &title,
            28.0,
            left,
            column,
            inside + picture_height + 16.0 + 28.0,
        );
        surface.finish();
        page.finish();
        document
            .finish()
            .map_err(|e| anyhow::anyhow!("writing the cover: {e:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_package_names_its_trim() {
        assert_eq!(trim_of("0850X0850FCPRECW080CW444GXX"), Some((612.0, 612.0)));
        assert_eq!(trim_of("1100X0850FCPRECW080CW444GXX"), Some((792.0, 612.0)));
        assert_eq!(trim_of("short"), None);
    }

    fn book(pages: usize) -> PrintBook {
        PrintBook {
            title: "The Moon Rabbit".into(),
            dedication: Some("A picture book for Mina".into()),
            language: Language::English,
            cover: None,
            pages: (0..pages).map(|i| (format!("Page {i}."), None)).collect(),
            text_size: (20.0, 14.0),
        }
    }

    /// Each page's size (MediaBox width and height, points) of a PDF.
    fn page_sizes(pdf: &[u8]) -> Vec<(f32, f32)> {
        let document = lopdf::Document::load_mem(pdf).unwrap();
        document
            .get_pages()
            .values()
            .map(|id| {
                let page = document.get_dictionary(*id).unwrap();
                let media = page.get(b"MediaBox").unwrap().as_array().unwrap();
                let number = |o: &lopdf::Object| o.as_float().unwrap();
                (
                    number(&media[2]) - number(&media[0]),
                    number(&media[3]) - number(&media[1]),
                )
            })
            .collect()
    }

    #[test]
    fn the_interior_is_padded_to_the_binding_and_sized_with_its_bleed() {
        assert_eq!(book(12).interior_pages(), 24);
        assert_eq!(book(23).interior_pages(), 26);
        let pdf = book(12).interior((612.0, 612.0)).unwrap();
        let sizes = page_sizes(&pdf);
        assert_eq!(sizes.len(), 24);
        assert!(
            sizes.iter().all(|&size| size == (630.0, 630.0)),
            "8.5\" and 0.125\" bleed each side: {sizes:?}"
        );
        assert!(
            String::from_utf8_lossy(&pdf).contains("FontFile"),
            "the font is embedded"
        );
    }

    #[test]
    fn the_cover_is_the_size_lulu_gave() {
        let pdf = book(12).cover((1350.72, 720.0)).unwrap();
        let sizes = page_sizes(&pdf);
        assert_eq!(sizes.len(), 1);
        assert!(
            (sizes[0].0 - 1350.72).abs() < 0.01 && sizes[0].1 == 720.0,
            "{sizes:?}"
        );
    }
}
