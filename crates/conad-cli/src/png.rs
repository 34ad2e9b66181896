//! PNG encoding of HWC u8 images (`conad data export`) and `data:` URIs (PNG, base64) that
//! make the HTML report one self-contained file.

use anyhow::{Context, Result};

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 §4).
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// PNG bytes of an HWC u8 image with 1 or 3 channels.
///
/// # Errors
/// The encoder's errors (a buffer that does not match the shape).
pub fn encode(pixels: &[u8], height: usize, width: usize, channels: usize) -> Result<Vec<u8>> {
    let colour = if channels == 1 {
        image::ExtendedColorType::L8
    } else {
        image::ExtendedColorType::Rgb8
    };
    let mut png = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut png),
        pixels,
        width as u32,
        height as u32,
        colour,
    )
    .context("encoding an image as PNG")?;
    Ok(png)
}

/// A `data:image/png;base64,…` URI of an HWC u8 image with 1 or 3 channels.
///
/// # Errors
/// As [`encode`].
pub fn data_uri(pixels: &[u8], height: usize, width: usize, channels: usize) -> Result<String> {
    Ok(format!(
        "data:image/png;base64,{}",
        base64(&encode(pixels, height, width, channels)?)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_test_vectors() {
        // RFC 4648 §10.
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(base64(&[0xff, 0xfe]), "//4=");
    }

    #[test]
    fn data_uri_decodes_back_to_the_pixels() {
        let pixels: Vec<u8> = (0..2 * 3 * 3).map(|i| (i * 13) as u8).collect();
        let uri = data_uri(&pixels, 2, 3, 3).unwrap();
        let b64 = uri.strip_prefix("data:image/png;base64,").unwrap();
        // Decode with a reference decoder written from the alphabet.
        let mut bits = Vec::new();
        for c in b64.bytes().filter(|&c| c != b'=') {
            let v = ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
            bits.push(v);
        }
        let mut bytes = Vec::new();
        for q in bits.chunks(4) {
            let n = q
                .iter()
                .enumerate()
                .fold(0u32, |n, (k, v)| n | (v << (18 - 6 * k)));
            for k in 0..q.len() - 1 {
                bytes.push((n >> (16 - 8 * k)) as u8);
            }
        }
        let img = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert_eq!((img.width(), img.height()), (3, 2));
        assert_eq!(img.into_raw(), pixels);
    }
}
