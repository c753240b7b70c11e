//! HDR to SDR: the tone mapping of HLG and PQ (BT.2100) video into 8-bit BT.709, pure (the
//! GStreamer element in `gst::tonemap` feeds it frames).
//!
//! Per pixel, in this order: 10-bit Y'CbCr to R'G'B' (the source's matrix and range); R'G'B' to
//! display light (PQ's EOTF, or HLG's inverse OETF and its OOTF for a 1000 cd/m² display), in
//! units of 100 cd/m²; BT.2020 primaries to BT.709 in linear light; Hable's filmic curve on the
//! brightest component, scaled so the source's peak lands on white and applied to all three
//! components alike (hue and saturation kept); out-of-gamut components clipped; coded for an
//! SDR display (the inverse of BT.1886's gamma 2.4); BT.709 Y'CbCr in limited range, each 2×2
//! block's chroma the mean of its four pixels'. These are the operator and the units of the
//! usual reference chain (`zscale=t=linear:npl=100,zscale=p=bt709,tonemap=hable:desat=0,
//! zscale=t=bt709`, zimg being display-referred), so results can be compared with it.

use crate::domain::media::ColorFacts;

/// The transfer a source is coded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// Hybrid log-gamma (ARIB STD-B67, BT.2100): iPhones' HDR video, broadcast.
    Hlg,
    /// Perceptual quantizer (SMPTE ST 2084, BT.2100): HDR10, HDR10+, Dolby Vision's base layer.
    Pq,
}

impl Transfer {
    pub fn name(self) -> &'static str {
        match self {
            Transfer::Hlg => "hlg",
            Transfer::Pq => "pq",
        }
    }
}

/// The peak assumed when the stream says nothing (no content light level, no mastering
/// display): HLG's nominal display peak, and the most common HDR10 mastering peak.
pub const DEFAULT_PEAK_NITS: f32 = 1000.0;

/// Whether a stream is tone-mapped, and from what: its transfer and peak (cd/m²).
pub fn tone_map(color: Option<&ColorFacts>) -> Option<(Transfer, f32)> {
    let color = color.filter(|c| c.tone_mapped)?;
    let transfer = match color.transfer.as_str() {
        "hlg" => Transfer::Hlg,
        "pq" => Transfer::Pq,
        _ => return None,
    };
    Some((
        transfer,
        color.peak_nits.map_or(DEFAULT_PEAK_NITS, |n| n as f32),
    ))
}

/// What the mapping needs to know of a source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Source {
    pub transfer: Transfer,
    /// BT.2020 primaries (else BT.709's: no gamut conversion).
    pub wide_gamut: bool,
    /// The Y'CbCr matrix's red and blue weights (BT.2020: 0.2627, 0.0593).
    pub kr: f32,
    pub kb: f32,
    /// Full-range code values (else limited: 64–940 for luma).
    pub full_range: bool,
    /// The brightest the content gets, cd/m².
    pub peak_nits: f32,
}

impl Source {
    /// A BT.2100 source with BT.2020's matrix, limited range.
    pub fn bt2100(transfer: Transfer, peak_nits: f32) -> Source {
        Source {
            transfer,
            wide_gamut: true,
            kr: 0.2627,
            kb: 0.0593,
            full_range: false,
            peak_nits,
        }
    }
}

/// One 10-bit 4:2:0 frame's planes (samples in the low 10 bits), rows `stride` samples apart.
#[derive(Debug)]
pub struct Planes10<'a> {
    pub y: &'a [u16],
    pub u: &'a [u16],
    pub v: &'a [u16],
    pub y_stride: usize,
    pub uv_stride: usize,
}

/// One 8-bit 4:2:0 frame's planes, rows `stride` bytes apart.
#[derive(Debug)]
pub struct Planes8<'a> {
    pub y: &'a mut [u8],
    pub u: &'a mut [u8],
    pub v: &'a mut [u8],
    pub y_stride: usize,
    pub uv_stride: usize,
}

/// Entries in each lookup table.
const LUT: usize = 4096;

/// A function by a table of its values, read at the nearest entry (no libm call, no division
/// per pixel). `Linear` tables are spaced evenly over [0, top]; `Root` tables evenly in the
/// square root of x, which puts most entries where x is small and the function steep (gamma
/// curves near black, HLG's OOTF, the tone curve's slope).
struct Table<const ROOT: bool> {
    values: Box<[f32; LUT]>,
    /// Entries per unit of x (Linear) or of √x (Root).
    scale: f32,
}

impl Table<false> {
    fn linear(top: f32, f: impl Fn(f32) -> f32) -> Table<false> {
        Table::of(top, |t| f(t * top))
    }
}

impl Table<true> {
    fn root(top: f32, f: impl Fn(f32) -> f32) -> Table<true> {
        Table::of(top, |t| f(t * t * top))
    }
}

impl<const ROOT: bool> Table<ROOT> {
    fn of(top: f32, f: impl Fn(f32) -> f32) -> Table<ROOT> {
        let last = (LUT - 1) as f32;
        let mut values = Box::new([0f32; LUT]);
        for (i, v) in values.iter_mut().enumerate() {
            *v = f(i as f32 / last);
        }
        let scale = if ROOT { last / top.sqrt() } else { last / top };
        Table { values, scale }
    }

    #[inline(always)]
    fn at(&self, x: f32) -> f32 {
        let x = x.max(0.0);
        let t = if ROOT { x.sqrt() } else { x } * self.scale + 0.5;
        // A float-to-int cast saturates; `min` keeps it in the table.
        let i = (t as u32).min(LUT as u32 - 1) as usize;
        self.values[i]
    }
}

/// BT.2020 to BT.709 primaries, linear light (BT.2087).
const GAMUT: [[f32; 3]; 3] = [
    [1.660_491, -0.587_641, -0.072_850],
    [-0.124_550, 1.132_9, -0.008_349],
    [-0.018_151, -0.100_579, 1.118_73],
];

/// Hable's filmic curve (Uncharted 2), as ffmpeg's `tonemap=hable` has it.
fn hable(x: f32) -> f32 {
    let (a, b, c, d, e, f) = (0.15, 0.50, 0.10, 0.20, 0.02, 0.30);
    (x * (a * x + c * b) + d * e) / (x * (a * x + b) + d * f) - e / f
}

/// PQ's EOTF: signal to cd/m².
fn pq_eotf(e: f32) -> f32 {
    let (m1, m2) = (0.159_301_76_f32, 78.843_75_f32);
    let (c1, c2, c3) = (0.835_937_5_f32, 18.851_562_f32, 18.687_5_f32);
    let p = e.max(0.0).powf(1.0 / m2);
    10_000.0 * ((p - c1).max(0.0) / (c2 - c3 * p)).powf(1.0 / m1)
}

/// HLG's inverse OETF: signal to scene light, 0–1.
fn hlg_inverse_oetf(e: f32) -> f32 {
    let (a, b, c) = (0.178_832_77_f32, 0.284_668_92_f32, 0.559_910_7_f32);
    if e <= 0.5 {
        e * e / 3.0
    } else {
        (((e - c) / a).exp() + b) / 12.0
    }
}

/// The inverse of BT.1886's EOTF (an SDR display's gamma 2.4, black at 0): display light 0–1
/// to the signal that shows it. (The mapping ends in display light, so it is coded for the
/// display, not with BT.709's camera OETF, which would crush the shadows.)
fn bt1886_inverse_eotf(l: f32) -> f32 {
    l.max(0.0).powf(1.0 / 2.4)
}

/// HLG's display peak and its system gamma (BT.2100: 1.2 at 1000 cd/m²).
const HLG_PEAK: f32 = 1000.0;
const HLG_GAMMA: f32 = 1.2;

/// The mapping for one source, its tables made once.
pub struct Mapper {
    source: Source,
    /// Signal to linear light (PQ: display light in 100 cd/m²; HLG: scene light 0–1).
    to_linear: Table<false>,
    /// HLG's OOTF gain by scene luminance (display light in 100 cd/m² per unit of scene light).
    ootf: Table<true>,
    /// The tone curve's factor by the brightest component: hable(x) / hable(peak) / x.
    tone: Table<true>,
    /// Display light 0–1 to the SDR signal.
    to_signal: Table<true>,
    /// Luma weights of the source's primaries (for HLG's OOTF).
    lum: [f32; 3],
    /// Y'CbCr to R'G'B': R' = Y' + cr_r·Cr, G' = Y' − cb_g·Cb − cr_g·Cr, B' = Y' + cb_b·Cb.
    cr_r: f32,
    cb_g: f32,
    cr_g: f32,
    cb_b: f32,
    /// Code value to Y' (offset, scale) and to Cb/Cr (scale; offset 512).
    luma: (f32, f32),
    chroma: f32,
}

impl std::fmt::Debug for Mapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapper")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// The brightest component the tone curve is tabled for, 100 cd/m² units (PQ's 10,000 cd/m²,
/// times the most BT.2020 to BT.709 can push one component up).
const TONE_TOP: f32 = 170.0;

impl Mapper {
    pub fn new(source: Source) -> Mapper {
        let to_linear = match source.transfer {
            Transfer::Pq => Table::linear(1.0, |e| pq_eotf(e) / 100.0),
            Transfer::Hlg => Table::linear(1.0, hlg_inverse_oetf),
        };
        let ootf = Table::root(1.0, |ys| HLG_PEAK / 100.0 * ys.powf(HLG_GAMMA - 1.0));
        let white = hable(source.peak_nits.max(100.0) / 100.0);
        let tone = Table::root(TONE_TOP, |x| {
            let x = x.max(1e-6);
            hable(x) / white / x
        });
        let lum = if source.wide_gamut {
            [0.2627, 0.6780, 0.0593]
        } else {
            [0.2126, 0.7152, 0.0722]
        };
        let (kr, kb) = (source.kr, source.kb);
        let kg = 1.0 - kr - kb;
        let (luma, chroma) = if source.full_range {
            ((0.0, 1.0 / 1023.0), 1.0 / 1023.0)
        } else {
            ((64.0, 1.0 / 876.0), 1.0 / 896.0)
        };
        Mapper {
            source,
            to_linear,
            ootf,
            tone,
            to_signal: Table::root(1.0, bt1886_inverse_eotf),
            lum,
            cr_r: 2.0 * (1.0 - kr),
            cb_g: 2.0 * kb * (1.0 - kb) / kg,
            cr_g: 2.0 * kr * (1.0 - kr) / kg,
            cb_b: 2.0 * (1.0 - kb),
            luma,
            chroma,
        }
    }

    /// One pixel: source R'G'B' (0–1) to BT.709 R'G'B' (0–1).
    #[inline(always)]
    pub fn pixel(&self, rgb: [f32; 3]) -> [f32; 3] {
        let mut l = [
            self.to_linear.at(rgb[0]),
            self.to_linear.at(rgb[1]),
            self.to_linear.at(rgb[2]),
        ];
        if self.source.transfer == Transfer::Hlg {
            let ys = self.lum[0] * l[0] + self.lum[1] * l[1] + self.lum[2] * l[2];
            let gain = self.ootf.at(ys);
            l = [l[0] * gain, l[1] * gain, l[2] * gain];
        }
        if self.source.wide_gamut {
            let g = &GAMUT;
            l = [
                g[0][0] * l[0] + g[0][1] * l[1] + g[0][2] * l[2],
                g[1][0] * l[0] + g[1][1] * l[1] + g[1][2] * l[2],
                g[2][0] * l[0] + g[2][1] * l[1] + g[2][2] * l[2],
            ];
        }
        let scale = self.tone.at(l[0].max(l[1]).max(l[2]));
        [
            self.to_signal.at((l[0] * scale).min(1.0)),
            self.to_signal.at((l[1] * scale).min(1.0)),
            self.to_signal.at((l[2] * scale).min(1.0)),
        ]
    }

    /// Source Y' code value and Cb, Cr (-0.5–0.5) to R'G'B' 0–1.
    #[inline(always)]
    fn rgb(&self, y: u16, cb: f32, cr: f32) -> [f32; 3] {
        let y = (y as f32 - self.luma.0) * self.luma.1;
        [
            y + self.cr_r * cr,
            y - self.cb_g * cb - self.cr_g * cr,
            y + self.cb_b * cb,
        ]
    }

    /// Chroma code value (10-bit) to -0.5–0.5.
    #[inline(always)]
    fn chroma(&self, c: u16) -> f32 {
        (c as f32 - 512.0) * self.chroma
    }

    /// Maps a `width`×`height` frame, its rows split into `threads` bands mapped side by side.
    pub fn frame(
        &self,
        input: &Planes10<'_>,
        output: &mut Planes8<'_>,
        (width, height): (usize, usize),
        threads: usize,
    ) {
        let chroma_rows = height.div_ceil(2);
        let band = chroma_rows.div_ceil(threads.max(1)).max(1);
        let out_y = output.y.chunks_mut(output.y_stride * 2 * band);
        let out_u = output.u.chunks_mut(output.uv_stride * band);
        let out_v = output.v.chunks_mut(output.uv_stride * band);
        let (ys, uvs) = (output.y_stride, output.uv_stride);
        std::thread::scope(|scope| {
            for (i, ((y, u), v)) in out_y.zip(out_u).zip(out_v).enumerate() {
                let first = i * band;
                let rows = first..(first + band).min(chroma_rows);
                let mut out = Planes8 {
                    y,
                    u,
                    v,
                    y_stride: ys,
                    uv_stride: uvs,
                };
                scope.spawn(move || self.band(input, &mut out, width, height, rows));
            }
        });
    }

    /// Maps the chroma rows `rows` (two luma rows each); `out` starts at the band's first row.
    fn band(
        &self,
        input: &Planes10<'_>,
        out: &mut Planes8<'_>,
        width: usize,
        height: usize,
        rows: std::ops::Range<usize>,
    ) {
        let first = rows.start;
        for cy in rows {
            let (uv_in, uv_out) = (cy * input.uv_stride, (cy - first) * out.uv_stride);
            for cx in 0..width.div_ceil(2) {
                let cb = self.chroma(input.u[uv_in + cx]);
                let cr = self.chroma(input.v[uv_in + cx]);
                let (mut sum_b, mut sum_r, mut n) = (0.0, 0.0, 0.0);
                for dy in 0..2 {
                    let y = cy * 2 + dy;
                    if y >= height {
                        break;
                    }
                    for dx in 0..2 {
                        let x = cx * 2 + dx;
                        if x >= width {
                            break;
                        }
                        let [r, g, b] =
                            self.pixel(self.rgb(input.y[y * input.y_stride + x], cb, cr));
                        let luma = 0.2126 * r + 0.7152 * g + 0.0722 * b;
                        out.y[(y - first * 2) * out.y_stride + x] = (16.5 + 219.0 * luma) as u8;
                        sum_b += b - luma;
                        sum_r += r - luma;
                        n += 1.0;
                    }
                }
                // Cb = (B' − Y') / 1.8556, Cr = (R' − Y') / 1.5748 (BT.709), the block's mean.
                let k = 224.0 / n;
                out.u[uv_out + cx] = (128.5 + k * sum_b * (1.0 / 1.8556)).clamp(16.0, 240.0) as u8;
                out.v[uv_out + cx] = (128.5 + k * sum_r * (1.0 / 1.5748)).clamp(16.0, 240.0) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests;
