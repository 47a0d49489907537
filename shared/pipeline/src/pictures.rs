//! Pictures as files. An upload is checked (its type, then its declared size before any pixel is
//! decoded: a decompression bomb never is) and written again as a PNG of its pixels alone, so
//! nothing of the original file (EXIF, GPS, XMP, comments) goes further. A provider's picture
//! loses its metadata without being re-encoded.

use crate::providers::fetch::image_extension;
use bytes::Bytes;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use img_parts::{ImageEXIF, ImageICC};
use std::io::Cursor;
use storybook_core::domain::character::UploadRefusal;

/// The longest side of an upload as the models see it: the description model is shown it, and
/// the reference picture is drawn from it. A JPEG is decoded no larger than it needs for this.
pub const SHOWN_SIDE: u32 = 768;

/// The most pixels a PNG or WebP upload may have: those are decoded whole (unlike a JPEG, whose
/// DCT scales down), so their size is what they cost (16.8 megapixels, 64 MB of RGBA at most).
pub const WHOLE_DECODE_PIXELS: u64 = 4096 * 4096;

/// An upload's pixels, once its type and declared size pass: a JPEG (a phone's photo) decoded at
/// the smallest scale of an eighth, a quarter, a half or whole that keeps [`SHOWN_SIDE`], a PNG
/// or WebP whole, within [`WHOLE_DECODE_PIXELS`] as well as `max_pixels`.
pub fn decode_upload(bytes: &[u8], max_pixels: u64) -> Result<DynamicImage, UploadRefusal> {
    let format = match image::guess_format(bytes) {
        Ok(format @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP)) => format,
        _ => return Err(UploadRefusal::WrongType),
    };
    let reader = || ImageReader::with_format(Cursor::new(bytes), format);
    let (width, height) = reader()
        .into_dimensions()
        .map_err(|_| UploadRefusal::Undecodable)?;
    let limit_pixels = match format {
        ImageFormat::Jpeg => max_pixels,
        _ => max_pixels.min(WHOLE_DECODE_PIXELS),
    };
    if u64::from(width) * u64::from(height) > limit_pixels {
        return Err(UploadRefusal::TooManyPixels { limit_pixels });
    }
    if format == ImageFormat::Jpeg {
        return decode_jpeg_scaled(bytes, max_pixels);
    }
    // The decoder's own allocation cap as well, should a file's frames disagree with its header.
    let mut limits = Limits::default();
    limits.max_alloc = Some(limit_pixels.saturating_mul(8));
    let mut reader = reader();
    reader.limits(limits);
    reader.decode().map_err(|_| UploadRefusal::Undecodable)
}

/// A JPEG decoded at a reduced scale: its longest side at least [`SHOWN_SIDE`] where it has
/// that many, in a buffer no larger than `max_pixels` whole pixels would need.
fn decode_jpeg_scaled(bytes: &[u8], max_pixels: u64) -> Result<DynamicImage, UploadRefusal> {
    use jpeg_decoder::{Decoder, PixelFormat};
    let mut decoder = Decoder::new(Cursor::new(bytes));
    decoder.set_max_decoding_buffer_size(
        usize::try_from(max_pixels.saturating_mul(4)).unwrap_or(usize::MAX),
    );
    decoder
        .read_info()
        .map_err(|_| UploadRefusal::Undecodable)?;
    let info = decoder.info().ok_or(UploadRefusal::Undecodable)?;
    let longest = info.width.max(info.height).max(1);
    let shown = u16::try_from(SHOWN_SIDE).unwrap_or(u16::MAX);
    let ratio = f64::from(shown.min(longest)) / f64::from(longest);
    let wanted = |side: u16| ((f64::from(side) * ratio).ceil() as u16).max(1);
    let (width, height) = decoder
        .scale(wanted(info.width), wanted(info.height))
        .map_err(|_| UploadRefusal::Undecodable)?;
    let pixels = decoder.decode().map_err(|_| UploadRefusal::Undecodable)?;
    let (width, height) = (u32::from(width), u32::from(height));
    let format = decoder
        .info()
        .ok_or(UploadRefusal::Undecodable)?
        .pixel_format;
    let image = match format {
        PixelFormat::L8 => {
            image::GrayImage::from_raw(width, height, pixels).map(DynamicImage::ImageLuma8)
        }
        PixelFormat::L16 => {
            let wide = pixels
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
                .collect();
            image::ImageBuffer::from_raw(width, height, wide).map(DynamicImage::ImageLuma16)
        }
        PixelFormat::RGB24 => {
            image::RgbImage::from_raw(width, height, pixels).map(DynamicImage::ImageRgb8)
        }
        PixelFormat::CMYK32 => {
            // Adobe's inverted CMYK, as JPEG files carry it.
            let rgb = pixels
                .chunks_exact(4)
                .flat_map(|p| {
                    let k = u16::from(p[3]);
                    [0, 1, 2].map(|i| (u16::from(p[i]) * k / 255) as u8)
                })
                .collect();
            image::RgbImage::from_raw(width, height, rgb).map(DynamicImage::ImageRgb8)
        }
    };
    image.ok_or(UploadRefusal::Undecodable)
}

/// `image` as a PNG: its pixels, and no metadata chunk of any kind.
pub fn png_of(image: &DynamicImage) -> Bytes {
    let mut out = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .expect("a decoded picture encodes as PNG in memory");
    Bytes::from(out)
}

/// The names of the colours a picture is mostly made of, most common first (white and black,
/// a drawing's paper and outlines, left out): what the offline describer tells from a picture.
pub fn main_colours(image: &DynamicImage) -> Vec<&'static str> {
    const NAMED: [(&str, [u8; 3]); 11] = [
        ("red", [220, 40, 40]),
        ("orange", [240, 140, 30]),
        ("yellow", [240, 220, 50]),
        ("green", [60, 170, 70]),
        ("blue", [50, 100, 220]),
        ("purple", [140, 70, 190]),
        ("pink", [240, 150, 190]),
        ("brown", [130, 85, 45]),
        ("grey", [128, 128, 128]),
        ("white", [245, 245, 245]),
        ("black", [15, 15, 15]),
    ];
    let small = image.thumbnail(16, 16).to_rgb8();
    let mut counts = [0usize; NAMED.len()];
    for pixel in small.pixels() {
        let distance = |c: &[u8; 3]| {
            (0..3)
                .map(|i| (i32::from(pixel[i]) - i32::from(c[i])).pow(2))
                .sum::<i32>()
        };
        let nearest = (0..NAMED.len())
            .min_by_key(|&i| distance(&NAMED[i].1))
            .expect("there are named colours");
        counts[nearest] += 1;
    }
    let mut ranked: Vec<usize> = (0..NAMED.len())
        .filter(|&i| counts[i] > 0 && !matches!(NAMED[i].0, "white" | "black"))
        .collect();
    ranked.sort_by_key(|&i| std::cmp::Reverse(counts[i]));
    ranked.into_iter().take(3).map(|i| NAMED[i].0).collect()
}

/// PNG chunks a picture needs to be drawn the same: everything else (text, EXIF, time, ICC
/// profiles) is metadata.
const PNG_KEPT: [&[u8; 4]; 8] = [
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB",
];

/// A provider's picture (PNG, JPEG or WebP) without its metadata, its image data as it was;
/// `None` for bytes that are none of those.
pub fn without_metadata(picture: Bytes) -> Option<Bytes> {
    match image_extension(&picture)? {
        "png" => {
            let mut png = img_parts::png::Png::from_bytes(picture).ok()?;
            png.chunks_mut()
                .retain(|chunk| PNG_KEPT.contains(&&chunk.kind()));
            Some(png.encoder().bytes())
        }
        "jpg" => {
            let mut jpeg = img_parts::jpeg::Jpeg::from_bytes(picture).ok()?;
            // APP0 (JFIF) and APP14 (Adobe's colour transform) are needed to decode; the other
            // application segments (EXIF, XMP, ICC, maker notes) and comments are not.
            jpeg.segments_mut().retain(|segment| {
                let marker = segment.marker();
                !((0xE1..=0xED).contains(&marker) || marker == 0xEF || marker == 0xFE)
            });
            Some(jpeg.encoder().bytes())
        }
        _ => {
            let mut webp = img_parts::webp::WebP::from_bytes(picture).ok()?;
            webp.set_exif(None);
            webp.set_icc_profile(None);
            webp.remove_chunks_by_id(*b"XMP ");
            Some(webp.encoder().bytes())
        }
    }
}

/// Whether `picture` carries metadata [`without_metadata`] would remove.
pub fn has_metadata(picture: &Bytes) -> bool {
    without_metadata(picture.clone()).is_none_or(|clean| clean.len() != picture.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_jpeg_is_decoded_at_a_reduced_scale() {
        let mut jpeg = Vec::new();
        let wide =
            image::RgbImage::from_fn(3200, 400, |x, _| image::Rgb([(x % 256) as u8, 90, 200]));
        image::codecs::jpeg::JpegEncoder::new(&mut jpeg)
            .encode_image(&wide)
            .unwrap();
        let decoded = decode_upload(&jpeg, 40_000_000).unwrap();
        // A quarter of it: the smallest scale that keeps 768 pixels on its longest side.
        assert_eq!((decoded.width(), decoded.height()), (800, 100));
        let small = image::RgbImage::from_pixel(300, 200, image::Rgb([10, 20, 30]));
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut jpeg)
            .encode_image(&small)
            .unwrap();
        let decoded = decode_upload(&jpeg, 40_000_000).unwrap();
        assert_eq!(
            (decoded.width(), decoded.height()),
            (300, 200),
            "whole when small"
        );
    }

    fn png_with_text() -> Bytes {
        let clean = png_of(&DynamicImage::new_rgb8(4, 4));
        let mut png = img_parts::png::Png::from_bytes(clean).unwrap();
        let at = png.chunks().len() - 1;
        let chunk =
            img_parts::png::PngChunk::new(*b"tEXt", Bytes::from_static(b"GPS\x0037.5,127.0"));
        png.chunks_mut().insert(at, chunk);
        png.set_exif(Some(Bytes::from_static(b"Exif\0\0MM")));
        png.encoder().bytes()
    }

    #[test]
    fn metadata_goes_and_the_pixels_stay() {
        let tagged = png_with_text();
        assert!(has_metadata(&tagged));
        let clean = without_metadata(tagged.clone()).unwrap();
        assert!(!has_metadata(&clean));
        let before = image::load_from_memory(&tagged).unwrap().to_rgb8();
        let after = image::load_from_memory(&clean).unwrap().to_rgb8();
        assert_eq!(before, after);
    }

    #[test]
    fn an_upload_is_checked_before_it_is_decoded() {
        let png = png_of(&DynamicImage::new_rgb8(100, 100));
        assert!(decode_upload(&png, 10_000).is_ok());
        assert_eq!(
            decode_upload(&png, 9_999).unwrap_err(),
            UploadRefusal::TooManyPixels {
                limit_pixels: 9_999
            }
        );
        assert_eq!(
            decode_upload(b"GIF89a....", 10).unwrap_err(),
            UploadRefusal::WrongType
        );
        let cut = &png[..png.len() / 2];
        assert_eq!(
            decode_upload(cut, 10_000).unwrap_err(),
            UploadRefusal::Undecodable
        );
    }
}
