//! Binary PGM (`P5`) greyscale images: read and write, 8- and 16-bit.
//!
//! The format (netpbm): the magic `P5`, then width, height and the maximum sample value as
//! ASCII decimals separated by whitespace (with `#` comments to the end of a line allowed between
//! them), then exactly one whitespace byte, then `width × height` samples in row-major order:
//! one byte each when `maxval < 256`, otherwise two bytes, big-endian.
//!
//! ## Hostile files
//! A PGM comes from outside the program, so every way a file can be wrong is an
//! [`NnError::Other`] naming the file, the byte offset and the problem — never a panic: bad magic,
//! non-numeric or overlong header fields, zero or absurd dimensions, `maxval` outside
//! `1..=65535`, a truncated raster, a sample above `maxval`. Sizes are checked against
//! [`PgmLimits`] *before* anything is allocated, and [`read_pgm`] checks the file's length before
//! reading it, so a 20-byte file claiming to be 10⁹ × 10⁹ pixels costs nothing. Data after the
//! raster is ignored (netpbm allows several images in one file; this reads the first).
//!
//! ```
//! use adjoint_nn::data::pgm::{decode_pgm, encode_pgm, Pgm, PgmLimits};
//!
//! let img = Pgm { width: 3, height: 2, maxval: 255, pixels: vec![0, 64, 128, 192, 255, 7] };
//! let bytes = encode_pgm(&img);
//! assert!(bytes.starts_with(b"P5\n3 2\n255\n"));
//! let back = decode_pgm(&bytes, "inline.pgm", &PgmLimits::default())?;
//! assert_eq!(back, img);
//! assert_eq!(back.to_tensor().shape(), &[2, 3]);
//!
//! let err = decode_pgm(b"P5 3 2 255\n\x00\x01", "short.pgm", &PgmLimits::default()).unwrap_err();
//! assert!(err.to_string().contains("truncated"));
//! # Ok::<(), adjoint_nn::NnError>(())
//! ```

use std::path::Path;

use adjoint_core::Tensor;

use crate::error::{NnError, Result};

/// Size limits checked before allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PgmLimits {
    /// Largest accepted `width × height` (default 2²⁸, a 16384² image).
    pub max_pixels: usize,
    /// Largest accepted file for [`read_pgm`], in bytes (default 1 GiB).
    pub max_bytes: u64,
}

impl Default for PgmLimits {
    fn default() -> Self {
        PgmLimits { max_pixels: 1 << 28, max_bytes: 1 << 30 }
    }
}

/// A greyscale image: `pixels` in row-major order, each in `0..=maxval`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pgm {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// The white level, `1..=65535` (`≤ 255`: 8-bit samples in the file, else 16-bit).
    pub maxval: u16,
    /// `width × height` samples, row-major.
    pub pixels: Vec<u16>,
}

impl Pgm {
    /// The image as an `f32` tensor of shape `[height, width]`, scaled to `[0, 1]`.
    pub fn to_tensor(&self) -> Tensor {
        let m = f32::from(self.maxval);
        Tensor::from_vec(self.pixels.iter().map(|&p| f32::from(p) / m).collect(), &[self.height, self.width])
    }

    /// An image from a `[height, width]` float tensor with values in `[0, 1]` (clamped), rounded
    /// to `0..=maxval`. Errors on a wrong rank, an empty image, `maxval = 0` or a NaN value.
    ///
    /// ```
    /// use adjoint_core::Tensor;
    /// use adjoint_nn::data::pgm::Pgm;
    /// let t = Tensor::from_vec(vec![0.0f32, 0.5, 1.0, 2.0], &[2, 2]);
    /// assert_eq!(Pgm::from_tensor(&t, 255)?.pixels, vec![0, 128, 255, 255]);
    /// # Ok::<(), adjoint_nn::NnError>(())
    /// ```
    pub fn from_tensor(t: &Tensor, maxval: u16) -> Result<Pgm> {
        let bad = |m: String| Err(NnError::Other(format!("Pgm::from_tensor: {m}")));
        if t.rank() != 2 || t.numel() == 0 || !t.dtype().is_float() {
            return bad(format!(
                "expected a non-empty 2-D float image, got shape {:?} {}",
                t.shape(),
                t.dtype()
            ));
        }
        if maxval == 0 {
            return bad("maxval must be at least 1".into());
        }
        let mut pixels = Vec::with_capacity(t.numel());
        for (i, v) in t.to_vec::<f64>().into_iter().enumerate() {
            if v.is_nan() {
                return bad(format!("element {i} is NaN"));
            }
            pixels.push((v.clamp(0.0, 1.0) * f64::from(maxval)).round() as u16);
        }
        Ok(Pgm { width: t.shape()[1], height: t.shape()[0], maxval, pixels })
    }
}

/// Read the binary PGM at `path` (default [`PgmLimits`]).
pub fn read_pgm(path: impl AsRef<Path>) -> Result<Pgm> {
    read_pgm_with(path, &PgmLimits::default())
}

/// [`read_pgm`] with explicit limits.
pub fn read_pgm_with(path: impl AsRef<Path>, limits: &PgmLimits) -> Result<Pgm> {
    let path = path.as_ref();
    let io = |source| NnError::Io { path: path.to_path_buf(), source };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > limits.max_bytes {
        return Err(NnError::Other(format!(
            "{}: file is {size} bytes, over the limit of {} (PgmLimits::max_bytes)",
            path.display(),
            limits.max_bytes
        )));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    decode_pgm(&bytes, path, limits)
}

/// Write `img` as a binary PGM at `path`, atomically (temporary file, fsync, rename).
pub fn write_pgm(path: impl AsRef<Path>, img: &Pgm) -> Result<()> {
    let path = path.as_ref();
    check_image(img).map_err(|m| NnError::Other(format!("{}: cannot write: {m}", path.display())))?;
    crate::checkpoint::write_atomic(path, &encode_pgm(img))
}

fn check_image(img: &Pgm) -> std::result::Result<(), String> {
    if img.width == 0 || img.height == 0 || img.maxval == 0 {
        return Err(format!("empty image or maxval 0 ({}x{}, maxval {})", img.width, img.height, img.maxval));
    }
    if img.width.checked_mul(img.height) != Some(img.pixels.len()) {
        return Err(format!("{}x{} image with {} pixels", img.width, img.height, img.pixels.len()));
    }
    if let Some(p) = img.pixels.iter().find(|&&p| p > img.maxval) {
        return Err(format!("sample {p} above maxval {}", img.maxval));
    }
    Ok(())
}

/// The bytes of `img` as a binary PGM. Samples above `maxval` are clamped (use
/// [`write_pgm`] to have them rejected instead).
pub fn encode_pgm(img: &Pgm) -> Vec<u8> {
    let mut out = format!("P5\n{} {}\n{}\n", img.width, img.height, img.maxval).into_bytes();
    let wide = img.maxval > 255;
    out.reserve(img.pixels.len() * if wide { 2 } else { 1 });
    for &p in &img.pixels {
        let p = p.min(img.maxval);
        if wide {
            out.extend_from_slice(&p.to_be_bytes());
        } else {
            out.push(p as u8);
        }
    }
    out
}

/// Parse a binary PGM held in memory; `source` names it in errors.
pub fn decode_pgm(bytes: &[u8], source: impl AsRef<Path>, limits: &PgmLimits) -> Result<Pgm> {
    let source = source.as_ref();
    let fail = |at: usize, m: String| NnError::Other(format!("{}: byte {at}: {m}", source.display()));
    if bytes.len() < 2 || &bytes[..2] != b"P5" {
        let what = if bytes.starts_with(b"P2") {
            "an ASCII PGM (P2); only binary P5 is supported".to_string()
        } else {
            format!("not a binary PGM: expected magic `P5`, found {:?}", &bytes[..bytes.len().min(2)])
        };
        return Err(fail(0, what));
    }
    let mut pos = 2;
    let width = header_number(bytes, &mut pos, "width").map_err(|(at, m)| fail(at, m))?;
    let height = header_number(bytes, &mut pos, "height").map_err(|(at, m)| fail(at, m))?;
    let maxval = header_number(bytes, &mut pos, "maxval").map_err(|(at, m)| fail(at, m))?;
    if width == 0 || height == 0 {
        return Err(fail(pos, format!("empty image: {width}x{height}")));
    }
    if !(1..=65535).contains(&maxval) {
        return Err(fail(pos, format!("maxval {maxval} outside 1..=65535")));
    }
    let n = match width.checked_mul(height) {
        Some(n) if n <= limits.max_pixels => n,
        _ => {
            return Err(fail(
                pos,
                format!(
                    "{width}x{height} pixels is over the limit of {} (PgmLimits::max_pixels)",
                    limits.max_pixels
                ),
            ))
        }
    };
    // Exactly one whitespace byte separates maxval from the raster.
    match bytes.get(pos) {
        Some(b) if b.is_ascii_whitespace() => pos += 1,
        Some(b) => return Err(fail(pos, format!("expected whitespace after maxval, found byte {b:#04x}"))),
        None => return Err(fail(pos, "truncated: the header ends before the raster".into())),
    }
    let wide = maxval > 255;
    let need = n * if wide { 2 } else { 1 };
    let raster = &bytes[pos..];
    if raster.len() < need {
        return Err(fail(
            pos + raster.len(),
            format!(
                "truncated raster: {width}x{height} {}-bit image needs {need} bytes, the file has {}",
                if wide { 16 } else { 8 },
                raster.len()
            ),
        ));
    }
    let maxval = maxval as u16;
    let pixels: Vec<u16> = if wide {
        raster[..need].chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect()
    } else {
        raster[..need].iter().map(|&b| u16::from(b)).collect()
    };
    if let Some(i) = pixels.iter().position(|&p| p > maxval) {
        let at = pos + i * if wide { 2 } else { 1 };
        return Err(fail(at, format!("sample {} at pixel {i} is above maxval {maxval}", pixels[i])));
    }
    Ok(Pgm { width, height, maxval, pixels })
}

/// Skip whitespace and `#` comments, then read one decimal field (at most 9 digits, so no
/// overflow), which must be followed by whitespace or `#`. Errors carry the byte offset.
fn header_number(bytes: &[u8], pos: &mut usize, what: &str) -> std::result::Result<usize, (usize, String)> {
    loop {
        match bytes.get(*pos) {
            Some(b) if b.is_ascii_whitespace() => *pos += 1,
            Some(b'#') => {
                while let Some(&b) = bytes.get(*pos) {
                    *pos += 1;
                    if b == b'\n' || b == b'\r' {
                        break;
                    }
                }
            }
            Some(_) => break,
            None => return Err((*pos, format!("truncated: the header ends before the {what}"))),
        }
    }
    let start = *pos;
    let mut v: usize = 0;
    while let Some(&b) = bytes.get(*pos) {
        if !b.is_ascii_digit() {
            break;
        }
        if *pos - start == 9 {
            return Err((start, format!("{what} has more than 9 digits")));
        }
        v = v * 10 + usize::from(b - b'0');
        *pos += 1;
    }
    if *pos == start {
        let found = bytes.get(start).map_or("end of file".to_string(), |b| format!("byte {b:#04x}"));
        return Err((start, format!("expected the {what} (a decimal number), found {found}")));
    }
    match bytes.get(*pos) {
        Some(b) if b.is_ascii_whitespace() || *b == b'#' => Ok(v),
        Some(b) => Err((*pos, format!("unexpected byte {b:#04x} after the {what}"))),
        None => Err((*pos, format!("truncated: the header ends after the {what}"))),
    }
}
