//! Checks of read-back images: every pixel against the CPU model, named pixels against
//! stated colors, depth values read back from a D32_SFLOAT attachment.

use ash::vk;

use crate::device::Gpu;
use crate::model::Expected;
use crate::report::{Fail, Report};
use crate::resources::Resources;
use crate::scene::{HEIGHT, WIDTH};

/// A named pixel: (what it shows, x, y, color).
pub(crate) type Probe = (&'static str, u32, u32, [u8; 4]);

/// Reads a depth image copied to the read-back buffer at `offset`, as floats; `None`
/// (with a note) when the depth format is not D32_SFLOAT.
pub(crate) fn read_depth(
    gpu: &Gpu,
    res: &Resources,
    offset: u64,
    report: &mut Report,
) -> Result<Option<Vec<f32>>, Fail> {
    if gpu.depth_format != vk::Format::D32_SFLOAT {
        report.info(format!(
            "depth values not compared ({:?} is not D32_SFLOAT)",
            gpu.depth_format
        ));
        return Ok(None);
    }
    let bytes = res
        .readback
        .bytes(offset as usize, (WIDTH * HEIGHT * 4) as usize)?;
    Ok(Some(
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    ))
}

fn pixel(color: &[u8], x: u32, y: u32) -> [u8; 4] {
    let i = ((y * WIDTH + x) * 4) as usize;
    match color.get(i..i + 4) {
        Some(p) => [p[0], p[1], p[2], p[3]],
        None => [0; 4],
    }
}

/// Checks the named pixels (within 1 per channel), that the model agrees with each of
/// them, then every pixel against the model.
pub(crate) fn check_image(
    report: &mut Report,
    pass: &str,
    want: &Expected,
    color: &[u8],
    depth: Option<&[f32]>,
    probes: &[Probe],
) {
    for &(name, x, y, expected) in probes {
        let got = pixel(color, x, y);
        let close = got.iter().zip(expected).all(|(&g, e)| g.abs_diff(e) <= 1);
        let model = want.single_color(x, y);
        let model_agrees =
            model.is_some_and(|m| m.iter().zip(expected).all(|(&g, e)| g.abs_diff(e) <= 1));
        report.check(
            close && model_agrees,
            format!(
                "{pass}: {name}: pixel ({x},{y}) = {got:?}, want {expected:?}{}",
                if model_agrees {
                    String::new()
                } else {
                    format!(" (the CPU model disagrees: {model:?})")
                }
            ),
        );
    }
    let cmp = want.compare(color, depth);
    report.check(
        cmp.mismatches == 0,
        format!(
            "{pass}: every pixel matches the CPU model{}: {} with one possible value, {} on \
             edges or texel boundaries with two or more, {} mismatches",
            if depth.is_some() {
                " (color and depth)"
            } else {
                " (color)"
            },
            cmp.exact,
            cmp.ambiguous,
            cmp.mismatches
        ),
    );
    for m in &cmp.first_mismatches {
        report.info(format!("  mismatch {m}"));
    }
}
