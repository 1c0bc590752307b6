//! Recording the operations of a pass (`model::Op`) into a command buffer inside a
//! render pass instance: pipeline and descriptor binding, vertex and index buffers,
//! dynamic state, push constants, the draw commands and vkCmdClearAttachments.

use ash::vk;

use crate::device::Gpu;
use crate::model::{First, Op, Rect, Viewport};
use crate::pipeline::PUSH_SIZE;
use crate::report::Fail;
use crate::resources::Resources;

/// How a pass issues its draws.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum DrawMode {
    /// vkCmdDrawIndexed and vkCmdDraw.
    Direct,
    /// vkCmdDrawIndexedIndirect and vkCmdDrawIndirect.
    Indirect,
    /// vkCmdDrawIndexedIndirectCount and vkCmdDrawIndirectCount (Vulkan 1.2
    /// drawIndirectCount) with a count of 1 of at most 2 commands; the second command
    /// would draw triangle A's vertices at the current viewport, so a count that is not
    /// honored shows in the image.
    IndirectCount,
}

/// Writes indirect commands to consecutive slots of the host-visible indirect buffer.
pub(crate) struct IndirectSlots {
    next: u64,
}

impl IndirectSlots {
    pub(crate) fn new() -> IndirectSlots {
        IndirectSlots { next: 0 }
    }

    fn push(&mut self, res: &Resources, words: &[u32]) -> Result<u64, Fail> {
        let offset = self.next;
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        res.indirect.write(offset as usize, &bytes)?;
        self.next += 32;
        Ok(offset)
    }
}

pub(crate) fn vk_rect(r: Rect) -> vk::Rect2D {
    vk::Rect2D {
        offset: vk::Offset2D { x: r.x, y: r.y },
        extent: vk::Extent2D {
            width: r.w,
            height: r.h,
        },
    }
}

pub(crate) fn vk_viewport(v: Viewport) -> vk::Viewport {
    vk::Viewport {
        x: v.x,
        y: v.y,
        width: v.w,
        height: v.h,
        min_depth: 0.0,
        max_depth: 1.0,
    }
}

/// Binds `pipeline`, the descriptor set, the vertex and index buffers, and sets the
/// dynamic states that stay the same for every draw.
pub(crate) fn bind(
    gpu: &Gpu,
    cb: vk::CommandBuffer,
    pipeline: vk::Pipeline,
    layout: vk::PipelineLayout,
    res: &Resources,
) {
    let d = &gpu.device;
    // SAFETY: `cb` is recording inside a render pass instance compatible with
    // `pipeline`; every bound object is valid; the index buffer holds INDICES (u16).
    unsafe {
        d.cmd_bind_pipeline(cb, vk::PipelineBindPoint::GRAPHICS, pipeline);
        d.cmd_bind_descriptor_sets(
            cb,
            vk::PipelineBindPoint::GRAPHICS,
            layout,
            0,
            &[res.set],
            &[],
        );
        d.cmd_bind_vertex_buffers(cb, 0, &[res.vertex.buffer], &[0]);
        d.cmd_bind_index_buffer(cb, res.index.buffer, 0, vk::IndexType::UINT16);
        d.cmd_set_line_width(cb, 1.0);
        d.cmd_set_depth_bias(cb, 0.0, 0.0, 0.0);
        d.cmd_set_blend_constants(cb, &[0.25, 0.5, 0.75, 1.0]);
        d.cmd_set_depth_bounds(cb, 0.0, 1.0);
        d.cmd_set_stencil_compare_mask(cb, vk::StencilFaceFlags::FRONT_AND_BACK, 0xff);
        d.cmd_set_stencil_write_mask(cb, vk::StencilFaceFlags::FRONT_AND_BACK, 0xff);
        d.cmd_set_stencil_reference(cb, vk::StencilFaceFlags::FRONT_AND_BACK, 0);
    }
}

/// Records one operation.
pub(crate) fn record_op(
    gpu: &Gpu,
    cb: vk::CommandBuffer,
    layout: vk::PipelineLayout,
    res: &Resources,
    op: &Op,
    mode: DrawMode,
    slots: &mut IndirectSlots,
) -> Result<(), Fail> {
    let d = &gpu.device;
    match op {
        Op::ClearColor(..) | Op::ClearDepth(..) => record_clear(gpu, cb, op),
        Op::Draw(draw) => {
            // SAFETY: `cb` is recording inside a render pass instance with a bound
            // pipeline whose viewport and scissor are dynamic (see `bind`).
            unsafe {
                d.cmd_set_viewport(cb, 0, &[vk_viewport(draw.viewport)]);
                d.cmd_set_scissor(cb, 0, &[vk_rect(draw.scissor)]);
            }
            push_constants(gpu, cb, layout, draw);
            match (draw.first, mode) {
                // SAFETY: the bound vertex and index buffers hold what is drawn.
                (First::Index(i), DrawMode::Direct) => unsafe {
                    d.cmd_draw_indexed(cb, 3, 1, i, 0, 0)
                },
                // SAFETY: as above.
                (First::Vertex(v), DrawMode::Direct) => unsafe { d.cmd_draw(cb, 3, 1, v, 0) },
                (First::Index(i), DrawMode::Indirect) => {
                    let offset = slots.push(res, &[3, 1, i, 0, 0])?;
                    // SAFETY: as above; the indirect buffer holds the command just written
                    // (VkDrawIndexedIndirectCommand, 20 bytes).
                    unsafe { d.cmd_draw_indexed_indirect(cb, res.indirect.buffer, offset, 1, 20) }
                }
                (First::Vertex(v), DrawMode::Indirect) => {
                    let offset = slots.push(res, &[3, 1, v, 0])?;
                    // SAFETY: as above (VkDrawIndirectCommand, 16 bytes).
                    unsafe { d.cmd_draw_indirect(cb, res.indirect.buffer, offset, 1, 16) }
                }
                (first, DrawMode::IndirectCount) => {
                    draw_count(gpu, cb, res, slots, first, 1)?;
                }
            }
        }
    }
    Ok(())
}

/// Records vkCmdDrawIndexedIndirectCount (for `First::Index`) or vkCmdDrawIndirectCount
/// with `count` of at most 2 commands: the draw itself, then one of triangle A's
/// vertices at the current viewport (which must not be drawn when `count` < 2).
pub(crate) fn draw_count(
    gpu: &Gpu,
    cb: vk::CommandBuffer,
    res: &Resources,
    slots: &mut IndirectSlots,
    first: First,
    count: u32,
) -> Result<(), Fail> {
    let d = &gpu.device;
    let a = crate::scene::A_FIRST_VERTEX;
    let buffer = res.indirect.buffer;
    match first {
        First::Index(i) => {
            let commands = slots.push(res, &[3, 1, i, 0, 0])?;
            // Indices 6.. are B's, offset by 3 vertices: A's.
            slots.push(res, &[3, 1, 6, a, 0])?;
            let counter = slots.push(res, &[count])?;
            // SAFETY: `cb` is recording inside a rendering instance with a bound pipeline
            // and buffers; the indirect buffer (INDIRECT_BUFFER usage) holds 2 commands
            // 32 bytes apart and the count; drawIndirectCount is enabled.
            unsafe {
                d.cmd_draw_indexed_indirect_count(cb, buffer, commands, buffer, counter, 2, 32)
            };
        }
        First::Vertex(v) => {
            let commands = slots.push(res, &[3, 1, v, 0])?;
            slots.push(res, &[3, 1, a, 0])?;
            let counter = slots.push(res, &[count])?;
            // SAFETY: as above.
            unsafe { d.cmd_draw_indirect_count(cb, buffer, commands, buffer, counter, 2, 32) };
        }
    }
    Ok(())
}

/// Pushes a draw's offset and texturing flag.
pub(crate) fn push_constants(
    gpu: &Gpu,
    cb: vk::CommandBuffer,
    layout: vk::PipelineLayout,
    draw: &crate::model::Draw,
) {
    let mut push = Vec::with_capacity(PUSH_SIZE as usize);
    for f in [draw.offset[0], draw.offset[1], draw.offset[2], 0.0] {
        push.extend_from_slice(&f.to_le_bytes());
    }
    push.extend_from_slice(&u32::from(draw.textured).to_le_bytes());
    // SAFETY: `cb` is recording; `layout` has one 20-byte range for both stages.
    unsafe {
        gpu.device.cmd_push_constants(
            cb,
            layout,
            vk::ShaderStageFlags::VERTEX | vk::ShaderStageFlags::FRAGMENT,
            0,
            &push,
        )
    };
}

/// Records vkCmdClearAttachments of a pass operation (draws are ignored).
pub(crate) fn record_clear(gpu: &Gpu, cb: vk::CommandBuffer, op: &Op) {
    match op {
        Op::ClearColor(rect, color) => {
            let attachment = vk::ClearAttachment {
                aspect_mask: vk::ImageAspectFlags::COLOR,
                color_attachment: 0,
                clear_value: vk::ClearValue {
                    color: vk::ClearColorValue {
                        float32: crate::scene::unorm(*color),
                    },
                },
            };
            clear(gpu, cb, attachment, *rect);
        }
        Op::ClearDepth(rect, depth) => {
            let attachment = vk::ClearAttachment {
                aspect_mask: vk::ImageAspectFlags::DEPTH,
                color_attachment: 0,
                clear_value: vk::ClearValue {
                    depth_stencil: vk::ClearDepthStencilValue {
                        depth: *depth,
                        stencil: 0,
                    },
                },
            };
            clear(gpu, cb, attachment, *rect);
        }
        Op::Draw(_) => {}
    }
}

fn clear(gpu: &Gpu, cb: vk::CommandBuffer, attachment: vk::ClearAttachment, rect: Rect) {
    let rect = vk::ClearRect {
        rect: vk_rect(rect),
        base_array_layer: 0,
        layer_count: 1,
    };
    // SAFETY: `cb` is recording inside a render pass instance whose attachment matches
    // the aspect; the rectangle lies inside the render area.
    unsafe { gpu.device.cmd_clear_attachments(cb, &[attachment], &[rect]) };
}
