// Vertex shader of the venus-render test program (tests/src/bin/venus-render/).
//
// gl_Position = (position + push.offset.xyz, 1): the push-constant offset moves a
// triangle without another vertex buffer; color and texture coordinates pass through.
//
// Rebuild the committed SPIR-V with (tests/tests/render.rs checks it):
//   glslangValidator -V --quiet render.vert -o render.vert.spv
#version 450

layout(location = 0) in vec3 in_position;
layout(location = 1) in vec4 in_color;
layout(location = 2) in vec2 in_uv;

// Shared with the fragment shader (one range, vertex and fragment stages).
layout(push_constant) uniform Push {
    vec4 offset;
    uint textured;
} pc;

layout(location = 0) out vec4 v_color;
layout(location = 1) out vec2 v_uv;

void main() {
    gl_Position = vec4(in_position + pc.offset.xyz, 1.0);
    v_color = in_color;
    v_uv = in_uv;
}
