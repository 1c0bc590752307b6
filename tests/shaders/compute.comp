// Compute shader of the venus-compute test program (tests/src/bin/venus-compute.rs).
//
// out[i] = in[i] * a + b + i   (all arithmetic in wrapping 32-bit unsigned integers)
//
// - `a`, the element count and the row length come from push constants;
// - `b` is specialization constant 1, the workgroup width is specialization constant 0;
// - a large element count is dispatched as a 2D grid of workgroups, the element index
//   being gid.y * row_elements + gid.x.
//
// Rebuild the committed SPIR-V with (tests/tests/compute_native.rs checks it):
//   glslangValidator -V --quiet compute.comp -o compute.spv
#version 450

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;

layout(constant_id = 1) const uint SPEC_B = 0u;

layout(push_constant) uniform Push {
    uint a;
    uint count;
    uint row_elements;
} pc;

layout(std430, set = 0, binding = 0) readonly buffer Input {
    uint data[];
} in_buf;

layout(std430, set = 0, binding = 1) writeonly buffer Output {
    uint data[];
} out_buf;

void main() {
    uint i = gl_GlobalInvocationID.y * pc.row_elements + gl_GlobalInvocationID.x;
    if (i >= pc.count) {
        return;
    }
    out_buf.data[i] = in_buf.data[i] * pc.a + SPEC_B + i;
}
