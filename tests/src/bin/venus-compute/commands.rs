//! Command buffer recording and queue submission of a round.

use ash::vk;

use crate::device::Setup;
use crate::memory::BufferMem;
use crate::report::{Fail, VkContext};
use crate::rounds::multiplier;

/// What vkCmdFillBuffer writes into the output buffer before the dispatch.
const FILL_PATTERN: u32 = 0xDEAD_BEEF;
/// What vkCmdFillBuffer writes after the copied results in the readback buffer.
pub(crate) const TAIL_PATTERN: u32 = 0xCAFE_BABE;
/// Number of u32 words of the readback buffer filled with `TAIL_PATTERN`.
pub(crate) const TAIL_WORDS: u64 = 64;
/// Size in bytes of a venus-encoded vkCmdPushConstants of 12 bytes: command type and
/// flags (4 + 4), command buffer and layout handles (8 + 8), stage flags, offset, size
/// (4 + 4 + 4), array size (8) and the 12 value bytes.
const VENUS_PUSH_CONSTANTS_BYTES: u64 = 56;
/// Size in bytes of a venus-encoded vkCmdFillBuffer: command type and flags (4 + 4),
/// command buffer and buffer handles (8 + 8), offset and size (8 + 8), data (4).
const VENUS_FILL_BUFFER_BYTES: u64 = 44;

/// The shape of one dispatch.
#[derive(Clone, Copy)]
pub(crate) struct Grid {
    pub(crate) n: u32,
    pub(crate) gx: u32,
    pub(crate) gy: u32,
    pub(crate) row_elements: u32,
}

/// Commands that change nothing, recorded into the main command buffer after its
/// vkCmdPushConstants (`--record-extra`): command `i` is, for even `i`, the same
/// vkCmdPushConstants again and, for odd `i`, a vkCmdFillBuffer of word `i / 2` of
/// `scratch`, a buffer nothing reads. Every fill writes its own word, so the fills need
/// no barrier between them.
#[derive(Clone, Copy)]
pub(crate) struct Extra {
    pub(crate) commands: u32,
    /// At least `scratch_bytes(commands)` bytes, with TRANSFER_DST usage.
    pub(crate) scratch: vk::Buffer,
}

/// How many of `commands` extra commands are vkCmdPushConstants and vkCmdFillBuffer.
pub(crate) fn extra_command_split(commands: u32) -> (u32, u32) {
    (commands - commands / 2, commands / 2)
}

/// The size of the scratch buffer the extra fills write (never 0).
pub(crate) fn scratch_bytes(commands: u32) -> u64 {
    4 * u64::from(extra_command_split(commands).1).max(1)
}

/// About how many bytes the extra commands add to the venus-encoded command buffer.
pub(crate) fn extra_venus_bytes(commands: u32) -> u64 {
    let (pushes, fills) = extra_command_split(commands);
    u64::from(pushes) * VENUS_PUSH_CONSTANTS_BYTES + u64::from(fills) * VENUS_FILL_BUFFER_BYTES
}

/// Records the two command buffers of a round (see `run_size`); returns how many extra
/// commands (`extra`) went into the first one.
pub(crate) fn record(
    device: &ash::Device,
    setup: &Setup,
    (pipeline, set): (vk::Pipeline, vk::DescriptorSet),
    [output, readback, readback2]: [&BufferMem; 3],
    Grid {
        n,
        gx,
        gy,
        row_elements,
    }: Grid,
    round: u64,
    extra: Option<Extra>,
) -> Result<u32, Fail> {
    let bytes = u64::from(n) * 4;
    let [cb_a, cb_b] = setup.command_buffers;
    let begin =
        vk::CommandBufferBeginInfo::default().flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT);
    let barrier = |buffer: vk::Buffer, src: vk::AccessFlags, dst: vk::AccessFlags| {
        vk::BufferMemoryBarrier::default()
            .src_access_mask(src)
            .dst_access_mask(dst)
            .src_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .dst_queue_family_index(vk::QUEUE_FAMILY_IGNORED)
            .buffer(buffer)
            .offset(0)
            .size(vk::WHOLE_SIZE)
    };
    use vk::AccessFlags as A;
    use vk::PipelineStageFlags as S;
    let mut push = Vec::with_capacity(12);
    push.extend_from_slice(&multiplier(round).to_ne_bytes());
    push.extend_from_slice(&n.to_ne_bytes());
    push.extend_from_slice(&row_elements.to_ne_bytes());

    let mut extra_recorded = 0;

    // SAFETY: the command buffers come from a pool with RESET_COMMAND_BUFFER and their
    // previous submission finished (fence waited); every handle used is valid; the
    // barriers order fill -> dispatch -> copy/fill -> host read. The extra commands
    // push the same 12 bytes within the layout's push-constant range, and fill distinct
    // aligned words inside the scratch buffer (TRANSFER_DST, `scratch_bytes` long).
    unsafe {
        device
            .reset_command_buffer(cb_a, vk::CommandBufferResetFlags::empty())
            .ctx("vkResetCommandBuffer")?;
        device
            .begin_command_buffer(cb_a, &begin)
            .ctx("vkBeginCommandBuffer")?;
        device.cmd_reset_query_pool(cb_a, setup.query_pool, 0, 2);
        device.cmd_write_timestamp(cb_a, S::TOP_OF_PIPE, setup.query_pool, 0);
        device.cmd_fill_buffer(cb_a, output.buffer, 0, bytes, FILL_PATTERN);
        device.cmd_pipeline_barrier(
            cb_a,
            S::TRANSFER,
            S::COMPUTE_SHADER,
            vk::DependencyFlags::empty(),
            &[],
            &[barrier(output.buffer, A::TRANSFER_WRITE, A::SHADER_WRITE)],
            &[],
        );
        device.cmd_bind_pipeline(cb_a, vk::PipelineBindPoint::COMPUTE, pipeline);
        device.cmd_bind_descriptor_sets(
            cb_a,
            vk::PipelineBindPoint::COMPUTE,
            setup.pipeline_layout,
            0,
            &[set],
            &[],
        );
        device.cmd_push_constants(
            cb_a,
            setup.pipeline_layout,
            vk::ShaderStageFlags::COMPUTE,
            0,
            &push,
        );
        if let Some(Extra { commands, scratch }) = extra {
            for i in 0..commands {
                if i % 2 == 0 {
                    device.cmd_push_constants(
                        cb_a,
                        setup.pipeline_layout,
                        vk::ShaderStageFlags::COMPUTE,
                        0,
                        &push,
                    );
                } else {
                    device.cmd_fill_buffer(cb_a, scratch, u64::from(i / 2) * 4, 4, i);
                }
                extra_recorded += 1;
            }
        }
        device.cmd_dispatch(cb_a, gx, gy, 1);
        device.cmd_set_event(cb_a, setup.event, S::COMPUTE_SHADER);
        device.cmd_pipeline_barrier(
            cb_a,
            S::COMPUTE_SHADER,
            S::TRANSFER,
            vk::DependencyFlags::empty(),
            &[],
            &[barrier(output.buffer, A::SHADER_WRITE, A::TRANSFER_READ)],
            &[],
        );
        device.cmd_copy_buffer(
            cb_a,
            output.buffer,
            readback.buffer,
            &[vk::BufferCopy::default()
                .src_offset(0)
                .dst_offset(0)
                .size(bytes)],
        );
        device.cmd_fill_buffer(cb_a, readback.buffer, bytes, TAIL_WORDS * 4, TAIL_PATTERN);
        device.cmd_pipeline_barrier(
            cb_a,
            S::TRANSFER,
            S::HOST,
            vk::DependencyFlags::empty(),
            &[],
            &[barrier(readback.buffer, A::TRANSFER_WRITE, A::HOST_READ)],
            &[],
        );
        device.cmd_write_timestamp(cb_a, S::BOTTOM_OF_PIPE, setup.query_pool, 1);
        device.end_command_buffer(cb_a).ctx("vkEndCommandBuffer")?;

        device
            .reset_command_buffer(cb_b, vk::CommandBufferResetFlags::empty())
            .ctx("vkResetCommandBuffer")?;
        device
            .begin_command_buffer(cb_b, &begin)
            .ctx("vkBeginCommandBuffer")?;
        device.cmd_copy_buffer(
            cb_b,
            output.buffer,
            readback2.buffer,
            &[vk::BufferCopy::default()
                .src_offset(0)
                .dst_offset(0)
                .size(bytes)],
        );
        device.cmd_pipeline_barrier(
            cb_b,
            S::TRANSFER,
            S::HOST,
            vk::DependencyFlags::empty(),
            &[],
            &[barrier(readback2.buffer, A::TRANSFER_WRITE, A::HOST_READ)],
            &[],
        );
        device.end_command_buffer(cb_b).ctx("vkEndCommandBuffer")?;
    }
    Ok(extra_recorded)
}

/// Submits the two command buffers of a round:
/// A waits for the host-signalled timeline value, signals the binary semaphore and the
/// timeline value `a_value`; B waits for the binary semaphore, signals `b_value` and the
/// fence.
pub(crate) fn submit(
    device: &ash::Device,
    setup: &Setup,
    host_value: u64,
    a_value: u64,
    b_value: u64,
) -> Result<(), Fail> {
    let [cb_a, cb_b] = setup.command_buffers;

    let a_waits = [setup.timeline];
    let a_wait_values = [host_value];
    let a_stages = [vk::PipelineStageFlags::TRANSFER | vk::PipelineStageFlags::COMPUTE_SHADER];
    let a_signals = [setup.binary, setup.timeline];
    // The binary semaphore's value is ignored.
    let a_signal_values = [0, a_value];
    let a_cbs = [cb_a];
    let mut a_timeline = vk::TimelineSemaphoreSubmitInfo::default()
        .wait_semaphore_values(&a_wait_values)
        .signal_semaphore_values(&a_signal_values);
    let a_submit = vk::SubmitInfo::default()
        .wait_semaphores(&a_waits)
        .wait_dst_stage_mask(&a_stages)
        .command_buffers(&a_cbs)
        .signal_semaphores(&a_signals)
        .push_next(&mut a_timeline);
    // SAFETY: recorded command buffers, valid semaphores; the arrays live until the call
    // returns; the timeline wait value was signalled by the host already.
    unsafe { device.queue_submit(setup.queue, &[a_submit], vk::Fence::null()) }
        .ctx("vkQueueSubmit (first)")?;

    let b_waits = [setup.binary];
    let b_wait_values = [0];
    let b_stages = [vk::PipelineStageFlags::TRANSFER];
    let b_signals = [setup.timeline];
    let b_signal_values = [b_value];
    let b_cbs = [cb_b];
    let mut b_timeline = vk::TimelineSemaphoreSubmitInfo::default()
        .wait_semaphore_values(&b_wait_values)
        .signal_semaphore_values(&b_signal_values);
    let b_submit = vk::SubmitInfo::default()
        .wait_semaphores(&b_waits)
        .wait_dst_stage_mask(&b_stages)
        .command_buffers(&b_cbs)
        .signal_semaphores(&b_signals)
        .push_next(&mut b_timeline);
    // SAFETY: as above; the binary semaphore has a pending signal from the first submit;
    // the fence is unsignaled and not in use.
    unsafe { device.queue_submit(setup.queue, &[b_submit], setup.fence) }
        .ctx("vkQueueSubmit (second)")?;
    Ok(())
}
