//! The colours of every chart: matplotlib's tab10 (distinct and readable on white, which the
//! light yellows of plotters' own palettes are not), its tab20 light partners, tab20b's
//! darks, and [`palette`] for as many distinct colours as a chart has series.

use plotters::style::RGBColor;

/// matplotlib's "tab10": the first colours of the latency curves, the bar charts' colours,
/// and most of the profile's components.
pub(crate) const TAB10: [RGBColor; 10] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
];

/// The second ten colours: tab20's light partners of [`TAB10`], still readable as
/// 2-px lines on white.
const LIGHT_COLORS: [RGBColor; 10] = [
    RGBColor(0xae, 0xc7, 0xe8),
    RGBColor(0xff, 0xbb, 0x78),
    RGBColor(0x98, 0xdf, 0x8a),
    RGBColor(0xff, 0x98, 0x96),
    RGBColor(0xc5, 0xb0, 0xd5),
    RGBColor(0xc4, 0x9c, 0x94),
    RGBColor(0xf7, 0xb6, 0xd2),
    RGBColor(0xc7, 0xc7, 0xc7),
    RGBColor(0xdb, 0xdb, 0x8d),
    RGBColor(0x9e, 0xda, 0xe5),
];

/// tab20b's darkest four (navy, olive, brown, plum): readable on white past tab10, where the
/// profile chart needs more components than ten.
pub(crate) const TAB20B_DARK: [RGBColor; 4] = [
    RGBColor(0x39, 0x3b, 0x79),
    RGBColor(0x63, 0x79, 0x39),
    RGBColor(0x84, 0x3c, 0x39),
    RGBColor(0x7b, 0x41, 0x73),
];

/// `n` colours, no two alike: [`TAB10`], [`LIGHT_COLORS`], then dark hues around the
/// circle at the golden angle (so neighbours differ most).
pub(super) fn palette(n: usize) -> Vec<RGBColor> {
    let mut out: Vec<RGBColor> = TAB10.iter().chain(&LIGHT_COLORS).copied().take(n).collect();
    let mut k = 0_u32;
    while out.len() < n {
        let hue = (f64::from(k) * 137.508 + 15.0) % 360.0;
        let light = [0.28, 0.4][(k % 2) as usize];
        let c = hsl(hue, 0.8, light);
        if !out.contains(&c) {
            out.push(c);
        }
        k += 1;
    }
    out
}

/// HSL (hue in degrees, saturation and lightness 0..1) to RGB.
fn hsl(h: f64, s: f64, l: f64) -> RGBColor {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let x = c * (1.0 - ((h / 60.0) % 2.0 - 1.0).abs());
    let m = l - c / 2.0;
    let (r, g, b) = match (h / 60.0) as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let byte = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    RGBColor(byte(r), byte(g), byte(b))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_palette_never_repeats_a_colour() {
        for n in [1, 10, 11, 20, 21, 64] {
            let mut p = palette(n);
            assert_eq!(p.len(), n);
            p.sort_by_key(|c| (c.0, c.1, c.2));
            p.dedup();
            assert_eq!(p.len(), n, "{n} colours");
        }
    }
}
