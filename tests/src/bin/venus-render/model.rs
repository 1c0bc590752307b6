//! The CPU model of a pass: for every pixel, the (color, depth) values it may end
//! with, and the comparison of a read-back image against them.
//!
//! Each pixel center is classified against each triangle as inside, outside, or on an
//! edge (closer than `EDGE_MARGIN` pixels, where the rasterization rules decide); a
//! texture coordinate is ambiguous near a texel boundary. An ambiguous pixel keeps
//! every value it may take, so every pixel is checked, most against exactly one value.

use crate::scene::{shade, texel, unorm, Vertex, HEIGHT, TEXTURE_SIZE, WIDTH};

/// Pixel centers closer than this to an edge may be covered or not (single sample; with
/// 4 samples, anything closer than MSAA_EDGE_MARGIN may be partly covered).
const EDGE_MARGIN: f32 = 0.05;
const MSAA_EDGE_MARGIN: f32 = 0.75;
/// Texture coordinates (in texels) closer than this to a texel boundary may sample
/// either texel (with multisampling, the fragment shader may run off center).
const TEXEL_MARGIN: f32 = 0.01;
const MSAA_TEXEL_MARGIN: f32 = 0.1;
/// Allowed difference per channel of a shaded color (0..=255 units).
const SHADED_TOLERANCE: f32 = 1.0;
/// Allowed difference of a depth value read back from a D32_SFLOAT attachment.
const DEPTH_TOLERANCE: f32 = 1e-6;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Viewport {
    pub(crate) x: f32,
    pub(crate) y: f32,
    pub(crate) w: f32,
    pub(crate) h: f32,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Rect {
    pub(crate) x: i32,
    pub(crate) y: i32,
    pub(crate) w: u32,
    pub(crate) h: u32,
}

impl Rect {
    fn contains(&self, x: u32, y: u32) -> bool {
        let (x, y) = (i64::from(x), i64::from(y));
        let (rx, ry) = (i64::from(self.x), i64::from(self.y));
        x >= rx && y >= ry && x < rx + i64::from(self.w) && y < ry + i64::from(self.h)
    }
}

/// Where a draw starts in the vertex or index buffer (not used by the model).
#[derive(Clone, Copy)]
pub(crate) enum First {
    Index(u32),
    Vertex(u32),
}

/// One draw of one triangle (depth test LESS, depth writes on).
#[derive(Clone, Copy)]
pub(crate) struct Draw {
    pub(crate) first: First,
    pub(crate) triangle: [Vertex; 3],
    /// The push-constant offset added to every position.
    pub(crate) offset: [f32; 3],
    pub(crate) textured: bool,
    pub(crate) viewport: Viewport,
    pub(crate) scissor: Rect,
    /// The fraction of the samples the draw's sample mask lets through (1 without a
    /// mask); a partial mask must keep sample 0 and no later draw may touch its pixels.
    pub(crate) sample_fraction: f32,
}

/// What a pass does to its attachments after the clears of its load ops.
pub(crate) enum Op {
    /// vkCmdClearAttachments of the color attachment.
    ClearColor(Rect, [u8; 4]),
    /// vkCmdClearAttachments of the depth attachment.
    ClearDepth(Rect, f32),
    Draw(Draw),
}

/// A value a pixel may hold.
#[derive(Clone, Copy, PartialEq, Debug)]
struct Value {
    /// Color in 0..=255 units (unrounded for shaded fragments).
    color: [f32; 4],
    /// Allowed difference per channel.
    tolerance: f32,
    depth: f32,
}

enum Coverage {
    Inside,
    Outside,
    Edge,
}

/// A triangle in framebuffer coordinates.
struct Raster {
    p: [[f32; 2]; 3],
    z: [f32; 3],
    area: f32,
    edge_margin: f32,
    texel_margin: f32,
}

impl Raster {
    fn new(d: &Draw, samples: u32) -> Raster {
        let vp = d.viewport;
        let p = d.triangle.map(|v| {
            let x = v.position[0] + d.offset[0];
            let y = v.position[1] + d.offset[1];
            [vp.x + (x + 1.0) * vp.w / 2.0, vp.y + (y + 1.0) * vp.h / 2.0]
        });
        let z = d.triangle.map(|v| v.position[2] + d.offset[2]);
        let area = cross(p[0], p[1], p[2]);
        let msaa = samples > 1;
        Raster {
            p,
            z,
            area,
            edge_margin: if msaa { MSAA_EDGE_MARGIN } else { EDGE_MARGIN },
            texel_margin: if msaa {
                MSAA_TEXEL_MARGIN
            } else {
                TEXEL_MARGIN
            },
        }
    }

    /// Barycentric weights of `q` (summing to 1).
    fn weights(&self, q: [f32; 2]) -> [f32; 3] {
        let p = self.p;
        [
            cross(p[1], p[2], q) / self.area,
            cross(p[2], p[0], q) / self.area,
            cross(p[0], p[1], q) / self.area,
        ]
    }

    fn coverage(&self, q: [f32; 2]) -> Coverage {
        if self.area == 0.0 {
            return Coverage::Outside;
        }
        let sign = self.area.signum();
        let mut edge = false;
        for i in 0..3 {
            let (a, b) = (self.p[i], self.p[(i + 1) % 3]);
            let len = ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
            let distance = sign * cross(a, b, q) / len;
            if distance < -self.edge_margin {
                return Coverage::Outside;
            }
            if distance <= self.edge_margin {
                edge = true;
            }
        }
        if edge {
            Coverage::Edge
        } else {
            Coverage::Inside
        }
    }
}

/// Twice the signed area of (a, b, c).
fn cross(a: [f32; 2], b: [f32; 2], c: [f32; 2]) -> f32 {
    (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
}

/// The texels a texture coordinate may select along one axis (nearest filtering,
/// clamp to edge).
fn texel_candidates(t: f32, margin: f32) -> Vec<u32> {
    let size = TEXTURE_SIZE as f32;
    let s = t * size;
    let mut out = Vec::new();
    for probe in [s - margin, s + margin] {
        let i = probe.floor().clamp(0.0, size - 1.0) as u32;
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// The colors a fragment of `d` at pixel center `q` may have.
fn fragment_colors(d: &Draw, raster: &Raster, q: [f32; 2]) -> Vec<[f32; 4]> {
    let w = raster.weights(q);
    let color = d.triangle[0].color.map(|c| (c * 255.0).round() as u8);
    if !d.textured {
        return vec![shade(color)];
    }
    let uv = |k: usize| (0..3).map(|i| w[i] * d.triangle[i].uv[k]).sum::<f32>();
    let mut out = Vec::new();
    for ty in texel_candidates(uv(1), raster.texel_margin) {
        for tx in texel_candidates(uv(0), raster.texel_margin) {
            let t = texel(tx, ty);
            let c = unorm(color);
            let modulated: [u8; 4] =
                std::array::from_fn(|i| (c[i] * t[i] as f32).round().clamp(0.0, 255.0) as u8);
            let s = shade(modulated);
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out
}

/// The values every pixel of a pass may end with.
pub(crate) struct Expected {
    values: Vec<Vec<Value>>,
    /// Multisampled: a pixel with several values may show any blend of them.
    blends: bool,
    /// Per op index: the fewest and the most samples that may pass the depth test.
    pub(crate) samples_passed: Vec<(u64, u64)>,
}

/// Runs `ops` on the CPU, starting from the load-op clear values, for attachments of
/// `samples` samples (resolved to one).
pub(crate) fn expected(ops: &[Op], clear: [u8; 4], clear_depth: f32, samples: u32) -> Expected {
    let start = Value {
        color: clear.map(f32::from),
        tolerance: 0.0,
        depth: clear_depth,
    };
    let mut values = vec![vec![start]; (WIDTH * HEIGHT) as usize];
    let mut samples_passed = vec![(0, 0); ops.len()];
    for (index, op) in ops.iter().enumerate() {
        let raster = match op {
            Op::Draw(d) => Some(Raster::new(d, samples)),
            _ => None,
        };
        for y in 0..HEIGHT {
            for x in 0..WIDTH {
                let pixel = &mut values[(y * WIDTH + x) as usize];
                let q = [x as f32 + 0.5, y as f32 + 0.5];
                match (op, &raster) {
                    (Op::ClearColor(r, c), _) if r.contains(x, y) => {
                        for v in pixel.iter_mut() {
                            v.color = c.map(f32::from);
                            v.tolerance = 0.0;
                        }
                    }
                    (Op::ClearDepth(r, z), _) if r.contains(x, y) => {
                        for v in pixel.iter_mut() {
                            v.depth = *z;
                        }
                    }
                    (Op::Draw(d), Some(raster)) if d.scissor.contains(x, y) => {
                        let (certain, possible) = draw_pixel(d, raster, q, pixel);
                        samples_passed[index].0 += u64::from(certain);
                        samples_passed[index].1 += u64::from(possible);
                    }
                    _ => {}
                }
                dedup(pixel);
            }
        }
    }
    Expected {
        values,
        blends: samples > 1,
        samples_passed,
    }
}

/// Applies a draw to one pixel; returns whether a sample certainly / possibly passed.
fn draw_pixel(d: &Draw, raster: &Raster, q: [f32; 2], pixel: &mut Vec<Value>) -> (bool, bool) {
    let coverage = raster.coverage(q);
    if let Coverage::Outside = coverage {
        return (false, false);
    }
    let w = raster.weights(q);
    let z: f32 = (0..3).map(|i| w[i] * raster.z[i]).sum();
    let colors = fragment_colors(d, raster, q);
    let mut next = Vec::new();
    let (mut all_pass, mut any_pass) = (true, false);
    let f = d.sample_fraction;
    for v in pixel.iter() {
        if z < v.depth {
            any_pass = true;
            for &color in &colors {
                next.push(Value {
                    color: std::array::from_fn(|i| v.color[i] * (1.0 - f) + color[i] * f),
                    tolerance: if f < 1.0 {
                        SHADED_TOLERANCE + v.tolerance
                    } else {
                        SHADED_TOLERANCE
                    },
                    depth: z,
                });
            }
            if f < 1.0 && matches!(coverage, Coverage::Edge) {
                next.extend(colors.iter().map(|&color| Value {
                    color,
                    tolerance: SHADED_TOLERANCE,
                    depth: z,
                }));
            }
        } else {
            all_pass = false;
        }
        if matches!(coverage, Coverage::Edge) || z >= v.depth {
            next.push(*v);
        }
    }
    *pixel = next;
    let inside = matches!(coverage, Coverage::Inside);
    (inside && all_pass, any_pass)
}

fn dedup(pixel: &mut Vec<Value>) {
    let mut out: Vec<Value> = Vec::with_capacity(pixel.len());
    for v in pixel.drain(..) {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    *pixel = out;
}

/// The result of comparing an image with the model.
pub(crate) struct Comparison {
    /// Pixels with one possible value, and with several (edges, texel boundaries).
    pub(crate) exact: u32,
    pub(crate) ambiguous: u32,
    pub(crate) mismatches: u32,
    pub(crate) first_mismatches: Vec<String>,
}

impl Expected {
    /// Whether pixel (x, y) has exactly one possible value, and that value's color
    /// rounded.
    pub(crate) fn single_color(&self, x: u32, y: u32) -> Option<[u8; 4]> {
        match self.values.get((y * WIDTH + x) as usize).map(Vec::as_slice) {
            Some([v]) => Some(v.color.map(|c| c.round() as u8)),
            _ => None,
        }
    }

    /// Compares RGBA8 `color` (and D32_SFLOAT `depth` when given) pixel by pixel.
    pub(crate) fn compare(&self, color: &[u8], depth: Option<&[f32]>) -> Comparison {
        let mut cmp = Comparison {
            exact: 0,
            ambiguous: 0,
            mismatches: 0,
            first_mismatches: Vec::new(),
        };
        for (i, values) in self.values.iter().enumerate() {
            let Some(px) = color.get(i * 4..i * 4 + 4) else {
                cmp.mismatches += 1;
                continue;
            };
            let d = depth.and_then(|d| d.get(i).copied());
            let matches = |v: &Value| {
                let color_ok = (0..4).all(|c| (f32::from(px[c]) - v.color[c]).abs() <= v.tolerance);
                let depth_ok = d.is_none_or(|d| (d - v.depth).abs() <= DEPTH_TOLERANCE);
                color_ok && depth_ok
            };
            if values.len() == 1 {
                cmp.exact += 1;
            } else {
                cmp.ambiguous += 1;
            }
            let blend_ok = || {
                let tolerance = values.iter().map(|v| v.tolerance).fold(1.0, f32::max);
                let color_ok = (0..4).all(|c| {
                    let lo = values.iter().map(|v| v.color[c]).fold(f32::MAX, f32::min);
                    let hi = values.iter().map(|v| v.color[c]).fold(f32::MIN, f32::max);
                    let x = f32::from(px[c]);
                    x >= lo - tolerance && x <= hi + tolerance
                });
                let depth_ok = d.is_none_or(|d| {
                    values
                        .iter()
                        .any(|v| (d - v.depth).abs() <= DEPTH_TOLERANCE)
                });
                color_ok && depth_ok
            };
            let ok = if self.blends && values.len() > 1 {
                blend_ok()
            } else {
                values.iter().any(matches)
            };
            if !ok {
                cmp.mismatches += 1;
                if cmp.first_mismatches.len() < 8 {
                    let (x, y) = (i as u32 % WIDTH, i as u32 / WIDTH);
                    let want: Vec<String> = values
                        .iter()
                        .map(|v| format!("{:?}±{} depth {}", v.color, v.tolerance, v.depth))
                        .collect();
                    cmp.first_mismatches.push(format!(
                        "({x},{y}) = {px:?}{}, want one of [{}]",
                        d.map(|d| format!(" depth {d}")).unwrap_or_default(),
                        want.join(", ")
                    ));
                }
            }
        }
        cmp
    }
}
