//! What is drawn: the vertices, indices, uniform values, texture, clear colors and the
//! operations of each pass, in a form both the recording code and the CPU model use.
//!
//! Geometry is given in framebuffer pixels and converted to normalized device
//! coordinates for a viewport, so every vertex lands exactly on a pixel corner.

use crate::model::{Draw, First, Op, Rect, Viewport};

/// Size of the color and depth attachments.
pub(crate) const WIDTH: u32 = 256;
pub(crate) const HEIGHT: u32 = 256;
/// Size of the blit and copy destinations.
pub(crate) const SMALL: u32 = 128;
/// Size of the texture (four uniformly colored quadrants of TEXTURE_SIZE / 2 texels).
pub(crate) const TEXTURE_SIZE: u32 = 8;

/// The full-framebuffer viewport and scissor.
pub(crate) const FULL_VIEWPORT: Viewport = Viewport {
    x: 0.0,
    y: 0.0,
    w: WIDTH as f32,
    h: HEIGHT as f32,
};
pub(crate) const FULL_RECT: Rect = Rect {
    x: 0,
    y: 0,
    w: WIDTH,
    h: HEIGHT,
};

/// One vertex: position (NDC), color, texture coordinates (36 bytes, 3 attributes).
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Vertex {
    pub(crate) position: [f32; 3],
    pub(crate) color: [f32; 4],
    pub(crate) uv: [f32; 2],
}

pub(crate) const VERTEX_STRIDE: u32 = std::mem::size_of::<Vertex>() as u32;

/// Converts 8-bit channel values to the floats that convert back to them exactly.
pub(crate) const fn unorm(c: [u8; 4]) -> [f32; 4] {
    [
        c[0] as f32 / 255.0,
        c[1] as f32 / 255.0,
        c[2] as f32 / 255.0,
        c[3] as f32 / 255.0,
    ]
}

const WHITE: [u8; 4] = [255, 255, 255, 255];
/// Vertex color of triangle A (far, flat colored).
pub(crate) const COLOR_A: [u8; 4] = [200, 40, 0, 255];
/// Vertex color of triangle C (nearest, flat colored, drawn with its own viewport).
pub(crate) const COLOR_C: [u8; 4] = [16, 200, 64, 255];
/// Clear color of the render-pass pass and of the dynamic-rendering pass.
pub(crate) const BACKGROUND_1: [u8; 4] = [25, 50, 75, 255];
pub(crate) const BACKGROUND_2: [u8; 4] = [60, 20, 90, 255];
pub(crate) const BACKGROUND_3: [u8; 4] = [90, 90, 30, 255];
/// Colors of the vkCmdClearAttachments rectangles of each pass.
pub(crate) const CLEAR_RECT_1: [u8; 4] = [255, 128, 0, 255];
pub(crate) const CLEAR_RECT_2: [u8; 4] = [0, 64, 255, 255];
/// Color of vkCmdClearColorImage on the copy destination.
pub(crate) const CLEAR_IMAGE: [u8; 4] = [10, 220, 130, 255];
/// Depth of vkCmdClearDepthStencilImage.
pub(crate) const CLEAR_DEPTH_IMAGE: f32 = 0.75;

/// Depths of the triangles (compare op LESS, cleared to 1.0).
pub(crate) const DEPTH_A: f32 = 0.5;
pub(crate) const DEPTH_B: f32 = 0.25;
pub(crate) const DEPTH_C: f32 = 0.125;

/// The uniform buffer: `color * mul + add`.
pub(crate) const UNIFORM_MUL: [f32; 4] = [1.0, 0.5, 1.0, 1.0];
pub(crate) const UNIFORM_ADD: [f32; 4] = [0.0, 0.0, 32.0 / 255.0, 0.0];

/// The texture's quadrants: top left, top right, bottom left, bottom right.
pub(crate) const QUADRANTS: [[u8; 4]; 4] = [
    [240, 16, 16, 255],
    [16, 240, 16, 255],
    [16, 16, 200, 255],
    [240, 240, 16, 255],
];

/// Texel (x, y) of the texture.
pub(crate) fn texel(x: u32, y: u32) -> [u8; 4] {
    let half = TEXTURE_SIZE / 2;
    let q = usize::from(x >= half) + 2 * usize::from(y >= half);
    QUADRANTS[q]
}

/// The texture's bytes, row by row (RGBA8).
pub(crate) fn texture_bytes() -> Vec<u8> {
    (0..TEXTURE_SIZE)
        .flat_map(|y| (0..TEXTURE_SIZE).flat_map(move |x| texel(x, y)))
        .collect()
}

/// The uniform buffer's bytes (two vec4).
pub(crate) fn uniform_bytes() -> Vec<u8> {
    UNIFORM_MUL
        .iter()
        .chain(UNIFORM_ADD.iter())
        .flat_map(|f| f.to_le_bytes())
        .collect()
}

/// Pixel position to NDC in `vp`.
fn ndc(vp: Viewport, px: f32, py: f32) -> [f32; 2] {
    [
        (px - vp.x) / vp.w * 2.0 - 1.0,
        (py - vp.y) / vp.h * 2.0 - 1.0,
    ]
}

fn vertex(vp: Viewport, px: f32, py: f32, z: f32, color: [u8; 4], uv: [f32; 2]) -> Vertex {
    let [x, y] = ndc(vp, px, py);
    Vertex {
        position: [x, y, z],
        color: unorm(color),
        uv,
    }
}

/// Viewport of triangle C in the render-pass pass: the top-right quadrant.
pub(crate) const VIEWPORT_C1: Viewport = Viewport {
    x: 128.0,
    y: 0.0,
    w: 128.0,
    h: 128.0,
};
/// Viewport of triangle C in the dynamic-rendering pass: the bottom-left quadrant.
pub(crate) const VIEWPORT_C2: Viewport = Viewport {
    x: 0.0,
    y: 128.0,
    w: 128.0,
    h: 128.0,
};

/// The vertex buffer: B (vertices 0..3, textured, white), A (3..6), C (6..9, given in
/// the coordinates of a 128×128 viewport at the origin).
pub(crate) fn vertices() -> [Vertex; 9] {
    let vp = FULL_VIEWPORT;
    let quad = Viewport {
        x: 0.0,
        y: 0.0,
        w: 128.0,
        h: 128.0,
    };
    [
        vertex(vp, 32.0, 32.0, DEPTH_B, WHITE, [0.0, 0.0]),
        vertex(vp, 224.0, 32.0, DEPTH_B, WHITE, [1.0, 0.0]),
        vertex(vp, 32.0, 224.0, DEPTH_B, WHITE, [0.0, 1.0]),
        vertex(vp, 96.0, 96.0, DEPTH_A, COLOR_A, [0.0, 0.0]),
        vertex(vp, 240.0, 112.0, DEPTH_A, COLOR_A, [0.0, 0.0]),
        vertex(vp, 112.0, 240.0, DEPTH_A, COLOR_A, [0.0, 0.0]),
        vertex(quad, 24.0, 8.0, DEPTH_C, COLOR_C, [0.0, 0.0]),
        vertex(quad, 104.0, 8.0, DEPTH_C, COLOR_C, [0.0, 0.0]),
        vertex(quad, 64.0, 88.0, DEPTH_C, COLOR_C, [0.0, 0.0]),
    ]
}

/// The index buffer; triangle B is drawn with firstIndex = B_FIRST_INDEX (pass 3 also
/// from index 6).
pub(crate) const INDICES: [u16; 9] = [2, 1, 0, 1, 2, 0, 1, 2, 0];
pub(crate) const B_FIRST_INDEX: u32 = 3;
/// First vertices of A and C (vkCmdDraw).
pub(crate) const A_FIRST_VERTEX: u32 = 3;
pub(crate) const C_FIRST_VERTEX: u32 = 6;

/// The three vertices that draw `first_index`.. of the index buffer, or `first`..
fn triangle(vertices: &[Vertex; 9], first: u32, indexed: bool) -> [Vertex; 3] {
    let at = |i: u32| {
        let v = if indexed {
            u32::from(INDICES[i as usize])
        } else {
            i
        };
        vertices[v as usize]
    };
    [at(first), at(first + 1), at(first + 2)]
}

/// Push-constant offsets (NDC): A moves 16 pixels left in pass 2, C 16 pixels right.
pub(crate) const OFFSET_NONE: [f32; 3] = [0.0, 0.0, 0.0];
pub(crate) const OFFSET_A2: [f32; 3] = [-0.125, 0.0, 0.0];
pub(crate) const OFFSET_C: [f32; 3] = [0.25, 0.0, 0.0];

/// Rectangles of the two passes.
pub(crate) const DEPTH_RECT_1: Rect = Rect {
    x: 40,
    y: 40,
    w: 32,
    h: 16,
};
pub(crate) const COLOR_RECT_1: Rect = Rect {
    x: 40,
    y: 150,
    w: 24,
    h: 20,
};
pub(crate) const SCISSOR_C1: Rect = Rect {
    x: 128,
    y: 0,
    w: 128,
    h: 56,
};
pub(crate) const DEPTH_RECT_2: Rect = Rect {
    x: 120,
    y: 60,
    w: 30,
    h: 16,
};
pub(crate) const COLOR_RECT_2: Rect = Rect {
    x: 140,
    y: 140,
    w: 20,
    h: 20,
};

fn draw(
    vertices: &[Vertex; 9],
    first: u32,
    indexed: bool,
    offset: [f32; 3],
    textured: bool,
    viewport: Viewport,
    scissor: Rect,
) -> Op {
    Op::Draw(Draw {
        first: if indexed {
            First::Index(first)
        } else {
            First::Vertex(first)
        },
        triangle: triangle(vertices, first, indexed),
        offset,
        textured,
        viewport,
        scissor,
        sample_fraction: 1.0,
    })
}

/// Operations of the render-pass pass, in order (B, A with the occlusion query, then in
/// the second subpass, from a secondary command buffer, C and a clear rectangle).
pub(crate) fn pass1_ops() -> Vec<Op> {
    let v = vertices();
    vec![
        Op::ClearDepth(DEPTH_RECT_1, 0.0),
        draw(
            &v,
            B_FIRST_INDEX,
            true,
            OFFSET_NONE,
            true,
            FULL_VIEWPORT,
            FULL_RECT,
        ),
        draw(
            &v,
            A_FIRST_VERTEX,
            false,
            OFFSET_NONE,
            false,
            FULL_VIEWPORT,
            FULL_RECT,
        ),
        draw(
            &v,
            C_FIRST_VERTEX,
            false,
            OFFSET_C,
            false,
            VIEWPORT_C1,
            SCISSOR_C1,
        ),
        Op::ClearColor(COLOR_RECT_1, CLEAR_RECT_1),
    ]
}

/// Index of triangle A's draw in `pass1_ops` (counted by the occlusion query).
pub(crate) const PASS1_QUERIED_OP: usize = 2;

/// Operations of pass 3 (render pass 2, 4 samples): pass 1's, with C drawn with half
/// of the samples (sample mask 0b0101), blending it with what is below once resolved.
pub(crate) fn pass3_ops() -> Vec<Op> {
    let mut ops = pass1_ops();
    for op in &mut ops {
        if let Op::Draw(d) = op {
            if d.viewport.x == VIEWPORT_C1.x && d.viewport.y == VIEWPORT_C1.y {
                d.sample_fraction = 0.5;
            }
        }
    }
    ops
}

/// The draw the conditional-rendering predicate 0 must skip: triangle A moved left and in
/// front of everything.
pub(crate) const SKIPPED_OFFSET: [f32; 3] = [-0.25, 0.0, -0.45];

/// Operations of the dynamic-rendering pass (B and A drawn indirectly).
pub(crate) fn pass2_ops() -> Vec<Op> {
    let v = vertices();
    vec![
        Op::ClearDepth(DEPTH_RECT_2, 0.0),
        draw(
            &v,
            B_FIRST_INDEX,
            true,
            OFFSET_NONE,
            true,
            FULL_VIEWPORT,
            FULL_RECT,
        ),
        draw(
            &v,
            A_FIRST_VERTEX,
            false,
            OFFSET_A2,
            false,
            FULL_VIEWPORT,
            FULL_RECT,
        ),
        draw(
            &v,
            C_FIRST_VERTEX,
            false,
            OFFSET_NONE,
            false,
            VIEWPORT_C2,
            FULL_RECT,
        ),
        Op::ClearColor(COLOR_RECT_2, CLEAR_RECT_2),
    ]
}

/// The color a flat or textured fragment ends with, in 0..=255 units, unrounded.
pub(crate) fn shade(color: [u8; 4]) -> [f32; 4] {
    let c = unorm(color);
    std::array::from_fn(|i| ((c[i] * UNIFORM_MUL[i] + UNIFORM_ADD[i]).clamp(0.0, 1.0)) * 255.0)
}

/// Rounds a shaded color for the named probes.
pub(crate) fn shaded(color: [u8; 4]) -> [u8; 4] {
    shade(color).map(|c| c.round() as u8)
}

/// Named pixels of each pass and what they must show, independent of the model (the
/// model is checked against them too).
pub(crate) fn pass1_probes() -> Vec<(&'static str, u32, u32, [u8; 4])> {
    vec![
        ("background (top left)", 4, 4, BACKGROUND_1),
        ("background (bottom right)", 250, 250, BACKGROUND_1),
        (
            "triangle B, texture quadrant top left",
            50,
            70,
            shaded(QUADRANTS[0]),
        ),
        (
            "triangle B, texture quadrant top right",
            150,
            40,
            shaded(QUADRANTS[1]),
        ),
        (
            "triangle B, texture quadrant bottom left",
            40,
            180,
            shaded(QUADRANTS[2]),
        ),
        ("triangle A alone", 170, 150, shaded(COLOR_A)),
        (
            "A and B overlap: nearer B (drawn first) wins the depth test",
            110,
            110,
            shaded(QUADRANTS[0]),
        ),
        (
            "depth cleared to 0 by vkCmdClearAttachments: B rejected",
            56,
            48,
            BACKGROUND_1,
        ),
        (
            "color rectangle of vkCmdClearAttachments (secondary)",
            50,
            160,
            CLEAR_RECT_1,
        ),
        (
            "triangle C (secondary, own viewport) over B",
            200,
            30,
            shaded(COLOR_C),
        ),
        (
            "triangle C cut by the scissor: B shows",
            196,
            58,
            shaded(QUADRANTS[1]),
        ),
    ]
}

/// The average of two shaded colors (a half-covered pixel, resolved).
fn half(a: [u8; 4], b: [u8; 4]) -> [u8; 4] {
    let (a, b) = (shade(a), b.map(f32::from));
    std::array::from_fn(|i| ((a[i] + b[i]) / 2.0).round() as u8)
}

pub(crate) fn pass3_probes() -> Vec<(&'static str, u32, u32, [u8; 4])> {
    vec![
        ("background (top left)", 4, 4, BACKGROUND_3),
        (
            "triangle B, texture quadrant top left",
            50,
            70,
            shaded(QUADRANTS[0]),
        ),
        (
            "triangle A alone (vkCmdDrawMultiEXT)",
            170,
            150,
            shaded(COLOR_A),
        ),
        (
            "A and B overlap: nearer B wins",
            110,
            110,
            shaded(QUADRANTS[0]),
        ),
        ("depth cleared to 0: B rejected", 56, 48, BACKGROUND_3),
        (
            "color rectangle cleared under an inverted predicate",
            50,
            160,
            CLEAR_RECT_1,
        ),
        (
            "C with sample mask 0b0101 over B: half and half",
            200,
            40,
            half(COLOR_C, shaded(QUADRANTS[1])),
        ),
        (
            "C with sample mask 0b0101 over the background",
            208,
            20,
            half(COLOR_C, BACKGROUND_3),
        ),
        (
            "where the draw skipped by predicate 0 would be: B",
            80,
            150,
            shaded(QUADRANTS[2]),
        ),
    ]
}

pub(crate) fn pass2_probes() -> Vec<(&'static str, u32, u32, [u8; 4])> {
    vec![
        ("background (top left)", 4, 4, BACKGROUND_2),
        (
            "triangle B, texture quadrant top right",
            150,
            40,
            shaded(QUADRANTS[1]),
        ),
        (
            "triangle A moved by push constants",
            150,
            180,
            shaded(COLOR_A),
        ),
        (
            "A and B overlap: nearer B wins",
            100,
            110,
            shaded(QUADRANTS[0]),
        ),
        ("depth cleared to 0: B rejected", 130, 70, BACKGROUND_2),
        (
            "color rectangle of vkCmdClearAttachments over A",
            150,
            150,
            CLEAR_RECT_2,
        ),
        (
            "triangle C (bottom-left viewport) over B",
            60,
            150,
            shaded(COLOR_C),
        ),
    ]
}
