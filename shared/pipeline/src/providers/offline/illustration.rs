use crate::providers::{
    Artwork, Illustrator, ImagePrompt, Metered, PictureKind, ProviderError, Usage,
};
use async_trait::async_trait;
use bytes::Bytes;
use storybook_core::domain::book::Style;

const WIDTH: u32 = 512;
const HEIGHT: u32 = 384;

/// Paints a scene per page: sky and ground in the style's palette, a sun or moon and hills that
/// move with the page's seed, and the hero, whose colours and shape come only from the
/// character reference, so they stay the same on every page.
pub struct OfflineIllustrator;

type Rgb = [u8; 3];

fn palette(style: Style) -> (Rgb, Rgb, Rgb) {
    // (sky top, sky bottom, ground)
    match style {
        Style::Watercolor => ([170, 205, 235], [240, 228, 250], [168, 210, 160]),
        Style::Cartoon => ([80, 170, 255], [190, 230, 255], [90, 200, 90]),
        Style::ThreeD => ([110, 140, 210], [220, 225, 245], [120, 170, 110]),
        Style::Pixel => ([40, 60, 140], [120, 150, 220], [60, 140, 60]),
        Style::OilPainting => ([200, 150, 90], [250, 220, 160], [120, 110, 60]),
        Style::Claymation => ([240, 180, 150], [250, 230, 200], [190, 150, 100]),
        Style::Realistic => ([100, 150, 200], [210, 225, 235], [100, 130, 80]),
    }
}

fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    [0, 1, 2].map(|i| (f32::from(a[i]) * (1.0 - t) + f32::from(b[i]) * t) as u8)
}

struct Canvas {
    pixels: Vec<u8>,
}

impl Canvas {
    fn new() -> Self {
        Self {
            pixels: vec![0; (WIDTH * HEIGHT * 3) as usize],
        }
    }

    fn set(&mut self, x: i32, y: i32, colour: Rgb) {
        if (0..WIDTH as i32).contains(&x) && (0..HEIGHT as i32).contains(&y) {
            let at = ((y as u32 * WIDTH + x as u32) * 3) as usize;
            self.pixels[at..at + 3].copy_from_slice(&colour);
        }
    }

    fn ellipse(&mut self, cx: i32, cy: i32, rx: i32, ry: i32, colour: Rgb) {
        for y in cy - ry..=cy + ry {
            for x in cx - rx..=cx + rx {
                let (dx, dy) = ((x - cx) as f32 / rx as f32, (y - cy) as f32 / ry as f32);
                if dx * dx + dy * dy <= 1.0 {
                    self.set(x, y, colour);
                }
            }
        }
    }

    fn png(&self) -> Result<Bytes, ProviderError> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| ProviderError::Malformed(e.to_string()))?;
        writer
            .write_image_data(&self.pixels)
            .map_err(|e| ProviderError::Malformed(e.to_string()))?;
        writer
            .finish()
            .map_err(|e| ProviderError::Malformed(e.to_string()))?;
        Ok(Bytes::from(out))
    }
}

/// A small deterministic generator (SplitMix64) so that a seed fixes a picture.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }

    fn within(&mut self, low: i32, high: i32) -> i32 {
        low + (self.next() % (high - low + 1) as u64) as i32
    }

    fn colour(&mut self) -> Rgb {
        [0, 0, 0].map(|_| 60 + (self.next() % 180) as u8)
    }
}

fn paint(prompt: &ImagePrompt) -> Canvas {
    let (top, bottom, ground) = palette(prompt.style);
    // The book's seed and the picture's own words: pictures of one book belong together and
    // still differ page by page.
    let mut scene = Dice(prompt.seed ^ crate::providers::seed_of(&prompt.prompt));
    let mut canvas = Canvas::new();
    let horizon = scene.within(230, 280);
    for y in 0..HEIGHT as i32 {
        let colour = mix(top, bottom, y as f32 / horizon as f32);
        for x in 0..WIDTH as i32 {
            canvas.set(x, y, colour);
        }
    }
    // Sun or moon.
    let sun = if scene.next().is_multiple_of(2) {
        [255, 220, 90]
    } else {
        [240, 240, 220]
    };
    canvas.ellipse(scene.within(40, 470), scene.within(30, 110), 28, 28, sun);
    // Rolling hills.
    let (phase, height) = (
        scene.within(0, 628) as f32 / 100.0,
        scene.within(10, 30) as f32,
    );
    for x in 0..WIDTH as i32 {
        let top_of_ground = horizon + ((x as f32 / 60.0 + phase).sin() * height) as i32;
        for y in top_of_ground..HEIGHT as i32 {
            canvas.set(
                x,
                y,
                mix(ground, [40, 80, 40], (y - top_of_ground) as f32 / 200.0),
            );
        }
    }
    // A few flowers or stones.
    for _ in 0..scene.within(3, 8) {
        let colour = scene.colour();
        canvas.ellipse(
            scene.within(10, 500),
            scene.within(horizon + 40, 375),
            6,
            6,
            colour,
        );
    }
    // The hero: colours and proportions from the character alone.
    let mut look = Dice(prompt.reference.seed);
    let (body, head, accent) = (
        look.colour(),
        mix(look.colour(), [255, 230, 200], 0.6),
        look.colour(),
    );
    let (body_width, body_height) = (look.within(34, 50), look.within(44, 60));
    let scale = if prompt.kind == PictureKind::Cover {
        1.6
    } else {
        1.0
    };
    let (bw, bh) = (
        (body_width as f32 * scale) as i32,
        (body_height as f32 * scale) as i32,
    );
    let x = if prompt.kind == PictureKind::Cover {
        WIDTH as i32 / 2
    } else {
        scene.within(100, 410)
    };
    let feet = horizon + 60;
    canvas.ellipse(x, feet - bh, bw, bh, body);
    let head_radius = (bw as f32 * 0.8) as i32;
    let head_y = feet - 2 * bh - head_radius / 2;
    canvas.ellipse(x, head_y, head_radius, head_radius, head);
    canvas.ellipse(
        x - head_radius / 3,
        head_y - head_radius / 6,
        4,
        5,
        [30, 30, 40],
    );
    canvas.ellipse(
        x + head_radius / 3,
        head_y - head_radius / 6,
        4,
        5,
        [30, 30, 40],
    );
    canvas.ellipse(
        x,
        head_y + head_radius / 3,
        head_radius / 4,
        3,
        [200, 80, 90],
    );
    canvas.ellipse(x, feet - bh, bw / 3, bh / 3, accent);
    canvas
}

#[async_trait]
impl Illustrator for OfflineIllustrator {
    async fn illustrate(&self, prompt: &ImagePrompt) -> Result<Metered<Artwork>, ProviderError> {
        let prompt = prompt.clone();
        // Painting and PNG encoding are CPU work: keep them off the async threads.
        let png = tokio::task::spawn_blocking(move || paint(&prompt).png())
            .await
            .map_err(|e| ProviderError::Unavailable(e.to_string()))??;
        let mut usage = Usage::new("offline", "offline");
        usage.images = 1;
        usage.image_size = Some(format!("{WIDTH}x{HEIGHT}"));
        Ok(Metered {
            value: Artwork::Bytes(png),
            usage,
        })
    }
}

/// A plain picture for a page whose illustration failed for good.
pub fn placeholder_png() -> Bytes {
    let mut canvas = Canvas::new();
    for y in 0..HEIGHT as i32 {
        for x in 0..WIDTH as i32 {
            canvas.set(x, y, [236, 236, 240]);
        }
    }
    canvas.ellipse(WIDTH as i32 / 2, HEIGHT as i32 / 2, 40, 40, [205, 205, 215]);
    canvas.png().expect("encoding a fixed picture")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::CharacterReference;

    fn prompt(seed: u64) -> ImagePrompt {
        ImagePrompt {
            prompt: "a dinosaur in the dark".into(),
            negative_prompt: String::new(),
            style: Style::Watercolor,
            seed,
            reference: CharacterReference {
                name: "Dino".into(),
                description: None,
                seed: 42,
            },
            kind: PictureKind::Page,
            reference_image: None,
        }
    }

    async fn png_of(prompt: &ImagePrompt) -> Bytes {
        match OfflineIllustrator.illustrate(prompt).await.unwrap().value {
            Artwork::Bytes(png) => png,
            Artwork::Url(_) => panic!("offline pictures are bytes"),
        }
    }

    #[tokio::test]
    async fn pages_differ_and_the_same_seed_repeats() {
        let a = png_of(&prompt(1)).await;
        let b = png_of(&prompt(2)).await;
        assert_eq!(&a[..8], b"\x89PNG\r\n\x1a\n");
        assert_ne!(a, b);
        assert_eq!(a, png_of(&prompt(1)).await);
    }

    fn pixels(png_bytes: &[u8]) -> Vec<[u8; 3]> {
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes.to_vec()));
        let mut reader = decoder.read_info().unwrap();
        let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buffer).unwrap();
        buffer[..info.buffer_size()]
            .chunks(3)
            .map(|p| [p[0], p[1], p[2]])
            .collect()
    }

    #[tokio::test]
    async fn the_hero_keeps_its_colours_and_size_on_every_page() {
        let body = Dice(42).colour();
        let counts: Vec<usize> = futures::future::join_all((1..=4).map(|seed| async move {
            let png = png_of(&prompt(seed)).await;
            pixels(&png).iter().filter(|p| **p == body).count()
        }))
        .await;
        // The same body colour, over about the same area, on every page (the accent patch and the
        // scene may cover a little of it).
        assert!(counts.iter().all(|c| *c > 2000), "{counts:?}");
        let (least, most) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(*most as f32 / *least as f32 <= 1.2, "{counts:?}");
        let other = ImagePrompt {
            reference: CharacterReference {
                name: "Rex".into(),
                description: None,
                seed: 7,
            },
            ..prompt(1)
        };
        let png = png_of(&other).await;
        assert!(
            pixels(&png).iter().filter(|p| **p == body).count() < 100,
            "another hero looks different"
        );
    }
}
