// Fragment shader of the venus-render test program (tests/src/bin/venus-render/).
//
// color = (textured ? vertex color * texture(tex, uv) : vertex color) * ubo.mul + ubo.add
//
// - the texture is a combined image sampler (set 0, binding 1), the multiplier and the
//   addend a uniform buffer (set 0, binding 0);
// - `textured` comes from the push constants shared with the vertex shader.
//
// Rebuild the committed SPIR-V with (tests/tests/render.rs checks it):
//   glslangValidator -V --quiet render.frag -o render.frag.spv
#version 450

layout(set = 0, binding = 0) uniform Params {
    vec4 mul;
    vec4 add;
} ubo;

layout(set = 0, binding = 1) uniform sampler2D tex;

layout(push_constant) uniform Push {
    vec4 offset;
    uint textured;
} pc;

layout(location = 0) in vec4 v_color;
layout(location = 1) in vec2 v_uv;

layout(location = 0) out vec4 out_color;

void main() {
    vec4 c = v_color;
    if (pc.textured != 0u) {
        c *= texture(tex, v_uv);
    }
    out_color = c * ubo.mul + ubo.add;
}
