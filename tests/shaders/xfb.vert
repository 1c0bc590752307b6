// Transform-feedback vertex shader of the venus-render test program
// (tests/src/bin/venus-render/xfb.rs).
//
// Captures (2 * position, 1) of every vertex into transform feedback buffer 0
// (16-byte stride); rasterization is discarded.
//
// Rebuild the committed SPIR-V with (tests/tests/render.rs checks it):
//   glslangValidator -V --quiet xfb.vert -o xfb.vert.spv
#version 450

layout(location = 0) in vec3 in_position;

layout(xfb_buffer = 0, xfb_offset = 0, xfb_stride = 16, location = 0) out vec4 captured;

void main() {
    captured = vec4(in_position * 2.0, 1.0);
    gl_Position = vec4(in_position, 1.0);
}
