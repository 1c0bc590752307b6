//! The rows of the table: what each measures, and the Vulkan ones' code.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ash::vk;

use crate::gpu::{Fail, Gpu, VkContext, LOCAL_SIZE, PUSH_A, SPEC_B};
use crate::stats::{time_runs, time_runs_reported, Plan, Timings};

/// Submits in the batched row.
pub(crate) const BATCH: u32 = 1000;
/// Bytes copied by the mapped-memory rows.
pub(crate) const MAPPED_BYTES: usize = 64 << 20;

/// Who measures a row.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Source {
    /// `venus-bench measure`, once per column.
    Vulkan,
    /// The driver times `vulkaninfo --summary`.
    Vulkaninfo,
    /// `bench-protocol --json` (our protocol crate, no Vulkan driver involved).
    Protocol,
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Row {
    pub(crate) id: &'static str,
    pub(crate) title: &'static str,
    /// Unit of the figures.
    pub(crate) unit: &'static str,
    /// Seconds are multiplied by this to give `unit` (0 for rates, see `rate_bytes`).
    pub(crate) scale: f64,
    /// For rates: bytes moved per iteration (figure = bytes / seconds / 1e9 or 1e6).
    pub(crate) rate_bytes: f64,
    pub(crate) higher_is_better: bool,
    pub(crate) source: Source,
}

const US: f64 = 1e6;
const MS: f64 = 1e3;

/// Every row, in table order.
pub(crate) const ROWS: &[Row] = &[
    Row {
        id: "submit_wait",
        title: "empty submit + fence wait",
        unit: "µs",
        scale: US,
        rate_bytes: 0.0,
        higher_is_better: false,
        source: Source::Vulkan,
    },
    Row {
        id: "fence_status",
        title: "vkGetFenceStatus (query)",
        unit: "µs",
        scale: US,
        rate_bytes: 0.0,
        higher_is_better: false,
        source: Source::Vulkan,
    },
    Row {
        id: "device_address",
        title: "vkGetBufferDeviceAddress (query)",
        unit: "µs",
        scale: US,
        rate_bytes: 0.0,
        higher_is_better: false,
        source: Source::Vulkan,
    },
    Row {
        id: "event_status",
        title: "vkGetEventStatus (query)",
        unit: "µs",
        scale: US,
        rate_bytes: 0.0,
        higher_is_better: false,
        source: Source::Vulkan,
    },
    Row {
        id: "host_query",
        title: "vkGetSemaphoreCounterValue (host round trip)",
        unit: "µs",
        scale: US,
        rate_bytes: 0.0,
        higher_is_better: false,
        source: Source::Vulkan,
    },
    Row {
        id: "query_after_300us",
        title: "host round trip after a 0.3 ms pause",
        unit: "µs",
        scale: US,
        rate_bytes: 0.0,
        higher_is_better: false,
        source: Source::Vulkan,
    },
    Row {
        id: "query_after_2ms",
        title: "host round trip after a 2 ms pause",
        unit: "µs",
        scale: US,
        rate_bytes: 0.0,
        higher_is_better: false,
        source: Source::Vulkan,
    },
    Row {
        id: "dispatch64",
        title: "64-element dispatch + wait",
        unit: "µs",
        scale: US,
        rate_bytes: 0.0,
        higher_is_better: false,
        source: Source::Vulkan,
    },
    Row {
        id: "submit_batch",
        title: "1000 submits + one wait, per submit",
        unit: "µs",
        scale: US / BATCH as f64,
        rate_bytes: 0.0,
        higher_is_better: false,
        source: Source::Vulkan,
    },
    Row {
        id: "dispatch1m",
        title: "1M-element dispatch + wait",
        unit: "ms",
        scale: MS,
        rate_bytes: 0.0,
        higher_is_better: false,
        source: Source::Vulkan,
    },
    Row {
        id: "map_write",
        title: "mapped memory write (64 MiB)",
        unit: "GB/s",
        scale: 0.0,
        rate_bytes: MAPPED_BYTES as f64 / 1e9,
        higher_is_better: true,
        source: Source::Vulkan,
    },
    Row {
        id: "map_read",
        title: "mapped memory read (64 MiB)",
        unit: "GB/s",
        scale: 0.0,
        rate_bytes: MAPPED_BYTES as f64 / 1e9,
        higher_is_better: true,
        source: Source::Vulkan,
    },
    Row {
        id: "vulkaninfo",
        title: "vulkaninfo --summary",
        unit: "ms",
        scale: MS,
        rate_bytes: 0.0,
        higher_is_better: false,
        source: Source::Vulkaninfo,
    },
    Row {
        id: "encode",
        title: "protocol encode",
        unit: "MB/s",
        scale: 0.0,
        rate_bytes: 0.0,
        higher_is_better: true,
        source: Source::Protocol,
    },
    Row {
        id: "decode",
        title: "protocol decode",
        unit: "MB/s",
        scale: 0.0,
        rate_bytes: 0.0,
        higher_is_better: true,
        source: Source::Protocol,
    },
];

impl Row {
    /// The figure, in `unit`, for one iteration that took `seconds`.
    pub(crate) fn figure(&self, seconds: f64) -> f64 {
        if self.scale > 0.0 {
            seconds * self.scale
        } else {
            self.rate_bytes / seconds
        }
    }
}

/// The figures of one Vulkan row: one per timed run, in the row's unit.
pub(crate) struct Measured {
    pub(crate) figures: Vec<f64>,
    pub(crate) iterations_per_run: u32,
}

fn figures(row: &Row, t: Timings) -> Measured {
    Measured {
        figures: t.per_iteration.iter().map(|&s| row.figure(s)).collect(),
        iterations_per_run: t.iterations_per_run,
    }
}

/// Measures the Vulkan row `row` on `gpu`.
pub(crate) fn measure(gpu: &mut Gpu, row: &Row, plan: &Plan) -> Result<Measured, Fail> {
    let timings = match row.id {
        "submit_wait" => submit_wait(gpu, plan)?,
        "fence_status" => fence_status(gpu, plan)?,
        "device_address" => device_address(gpu, plan)?,
        "event_status" => event_status(gpu, plan)?,
        "host_query" => host_query(gpu, plan, None)?,
        "query_after_300us" => host_query(gpu, plan, Some(Duration::from_micros(300)))?,
        "query_after_2ms" => host_query(gpu, plan, Some(Duration::from_millis(2)))?,
        "dispatch64" => dispatch(gpu, 64, plan)?,
        "submit_batch" => submit_batch(gpu, plan)?,
        "dispatch1m" => dispatch(gpu, gpu.max_elements, plan)?,
        "map_write" => mapped(gpu, true, plan)?,
        "map_read" => mapped(gpu, false, plan)?,
        other => return Err(format!("{other} is not a Vulkan row")),
    };
    Ok(figures(row, timings))
}

fn wait_and_reset(gpu: &Gpu) -> Result<(), Fail> {
    let fences = [gpu.fence];
    // SAFETY: the fence belongs to the device and was submitted with a batch.
    unsafe { gpu.device.wait_for_fences(&fences, true, u64::MAX) }.ctx("vkWaitForFences")?;
    // SAFETY: the fence is signaled, so no queue operation uses it any more.
    unsafe { gpu.device.reset_fences(&fences) }.ctx("vkResetFences")
}

/// vkQueueSubmit of one batch without command buffers, signalling the fence;
/// vkWaitForFences; vkResetFences.
fn submit_wait(gpu: &Gpu, plan: &Plan) -> Result<Timings, Fail> {
    time_runs(plan, || {
        let submits = [vk::SubmitInfo::default()];
        // SAFETY: valid queue and unsignaled fence; the batch is empty.
        unsafe { gpu.device.queue_submit(gpu.queue, &submits, gpu.fence) }.ctx("vkQueueSubmit")?;
        wait_and_reset(gpu)
    })
}

/// vkGetFenceStatus of a fence that was never submitted.
fn fence_status(gpu: &Gpu, plan: &Plan) -> Result<Timings, Fail> {
    time_runs(plan, || {
        // SAFETY: valid fence of this device.
        match unsafe { gpu.device.get_fence_status(gpu.idle_fence) } {
            Ok(false) => Ok(()),
            Ok(true) => Err("a fence never submitted reports signaled".into()),
            Err(e) => Err(format!("vkGetFenceStatus failed: {e}")),
        }
    })
}

/// vkGetEventStatus of an event nothing sets (Mesa venus and our ICD answer it
/// from event feedback memory where they can map it; elsewhere a round trip).
fn event_status(gpu: &Gpu, plan: &Plan) -> Result<Timings, Fail> {
    time_runs(plan, || {
        // SAFETY: an event of this device.
        match unsafe { gpu.device.get_event_status(gpu.event) } {
            Ok(false) => Ok(()),
            Ok(true) => Err("an event never set reports set".to_string()),
            Err(e) => Err(format!("vkGetEventStatus failed: {e}")),
        }
    })
}

/// vkGetSemaphoreCounterValue of a timeline semaphore nothing signals (0). Our
/// ICD always asks the host; Mesa venus reads its semaphore feedback memory where
/// it can map it, and asks the host elsewhere (on stock virglrenderer here). With
/// `pause`, the thread computes (spins) that long before each call (not counted),
/// as an application doing other work between calls: what a round trip costs once
/// the host's ring thread naps.
fn host_query(gpu: &Gpu, plan: &Plan, pause: Option<Duration>) -> Result<Timings, Fail> {
    let call = || {
        // SAFETY: a timeline semaphore of this device.
        match unsafe { gpu.device.get_semaphore_counter_value(gpu.timeline) } {
            Ok(0) => Ok(()),
            Ok(v) => Err(format!("a timeline semaphore nothing signals reports {v}")),
            Err(e) => Err(format!("vkGetSemaphoreCounterValue failed: {e}")),
        }
    };
    match pause {
        None => time_runs(plan, call),
        Some(p) => time_runs_reported(plan, || {
            // Busy, as an application computing between calls (a sleep would let the
            // kernel coalesce this thread's timer with the host thread's naps).
            let pause = Instant::now();
            while pause.elapsed() < p {
                std::hint::spin_loop();
            }
            let t = Instant::now();
            call()?;
            Ok(t.elapsed())
        }),
    }
}

/// vkGetBufferDeviceAddress of a small buffer, asked again and again (our ICD
/// caches a buffer's address after the first answer; Mesa venus asks the host
/// every time).
fn device_address(gpu: &mut Gpu, plan: &Plan) -> Result<Timings, Fail> {
    if !gpu.device_address {
        return Err("the device has no bufferDeviceAddress feature".into());
    }
    let buffer = match gpu.address_buffer {
        Some(b) => b,
        None => {
            let usage =
                vk::BufferUsageFlags::STORAGE_BUFFER | vk::BufferUsageFlags::SHADER_DEVICE_ADDRESS;
            let b = gpu.create_bound(64 << 10, usage, true, false)?;
            let buffer = b.buffer;
            gpu.extra.push(b);
            gpu.address_buffer = Some(buffer);
            buffer
        }
    };
    let gpu = &*gpu;
    let call = || {
        let info = vk::BufferDeviceAddressInfo::default().buffer(buffer);
        // SAFETY: the buffer was created with SHADER_DEVICE_ADDRESS usage and is bound
        // to memory allocated with the DEVICE_ADDRESS flag; bufferDeviceAddress is on.
        let address = unsafe { gpu.device.get_buffer_device_address(&info) };
        if address == 0 {
            return Err("vkGetBufferDeviceAddress returned 0".to_string());
        }
        black_box(address);
        Ok(())
    };
    time_runs(plan, call)
}

/// Records the dispatch of `count` elements into `cb`: a barrier that orders it after
/// earlier dispatches, bind, push constants, dispatch, a barrier that makes the
/// output visible to the host.
fn record(
    gpu: &Gpu,
    cb: vk::CommandBuffer,
    count: u32,
    flags: vk::CommandBufferUsageFlags,
) -> Result<(), Fail> {
    let d = &gpu.device;
    let groups = count.div_ceil(LOCAL_SIZE);
    let push: Vec<u8> = [PUSH_A, count, groups * LOCAL_SIZE]
        .iter()
        .flat_map(|w| w.to_ne_bytes())
        .collect();
    let before = [vk::MemoryBarrier::default()
        .src_access_mask(vk::AccessFlags::SHADER_WRITE)
        .dst_access_mask(vk::AccessFlags::SHADER_READ | vk::AccessFlags::SHADER_WRITE)];
    let after = [vk::MemoryBarrier::default()
        .src_access_mask(vk::AccessFlags::SHADER_WRITE)
        .dst_access_mask(vk::AccessFlags::HOST_READ)];
    let compute = vk::PipelineStageFlags::COMPUTE_SHADER;
    // SAFETY: `cb` belongs to this device's pool (created with RESET_COMMAND_BUFFER, so
    // begin resets it) and is not pending (callers waited for its last submission, or
    // it was never submitted); every object bound is valid, the push range matches the
    // layout, and `groups` is within maxComputeWorkGroupCount (count <= 4M elements).
    unsafe {
        d.begin_command_buffer(cb, &vk::CommandBufferBeginInfo::default().flags(flags))
            .ctx("vkBeginCommandBuffer")?;
        d.cmd_pipeline_barrier(
            cb,
            compute,
            compute,
            vk::DependencyFlags::empty(),
            &before,
            &[],
            &[],
        );
        d.cmd_bind_pipeline(cb, vk::PipelineBindPoint::COMPUTE, gpu.pipeline);
        d.cmd_bind_descriptor_sets(
            cb,
            vk::PipelineBindPoint::COMPUTE,
            gpu.pipeline_layout,
            0,
            &[gpu.descriptor_set],
            &[],
        );
        d.cmd_push_constants(
            cb,
            gpu.pipeline_layout,
            vk::ShaderStageFlags::COMPUTE,
            0,
            &push,
        );
        d.cmd_dispatch(cb, groups, 1, 1);
        d.cmd_pipeline_barrier(
            cb,
            compute,
            vk::PipelineStageFlags::HOST,
            vk::DependencyFlags::empty(),
            &after,
            &[],
            &[],
        );
        d.end_command_buffer(cb).ctx("vkEndCommandBuffer")
    }
}

fn submit(gpu: &Gpu, cb: vk::CommandBuffer, fence: vk::Fence) -> Result<(), Fail> {
    let cbs = [cb];
    let submits = [vk::SubmitInfo::default().command_buffers(&cbs)];
    // SAFETY: `cb` is recorded and either not pending or recorded with
    // SIMULTANEOUS_USE; the fence (if any) is unsignaled.
    unsafe { gpu.device.queue_submit(gpu.queue, &submits, fence) }.ctx("vkQueueSubmit")
}

/// Creates the buffers if needed, fills the input with a pattern and clears the
/// output, for [`check_output`].
fn prepare_data(gpu: &mut Gpu) -> Result<(), Fail> {
    gpu.ensure_buffers()?;
    for (i, w) in gpu.input.words().iter_mut().enumerate() {
        *w = (i as u32).wrapping_mul(2_654_435_761);
    }
    gpu.output.words().fill(0);
    Ok(())
}

/// Checks `out[i] = in[i] * a + b + i` for the first `count` elements.
fn check_output(gpu: &mut Gpu, count: u32) -> Result<(), Fail> {
    let input: Vec<u32> = gpu.input.words()[..count as usize].to_vec();
    let output = &gpu.output.words()[..count as usize];
    for (i, (&x, &y)) in input.iter().zip(output).enumerate() {
        let want = x
            .wrapping_mul(PUSH_A)
            .wrapping_add(SPEC_B)
            .wrapping_add(i as u32);
        if y != want {
            return Err(format!(
                "dispatch of {count} elements: out[{i}] = {y}, expected {want}"
            ));
        }
    }
    Ok(())
}

/// Record (into a reset command buffer), submit with the fence, wait, reset the fence.
fn dispatch(gpu: &mut Gpu, count: u32, plan: &Plan) -> Result<Timings, Fail> {
    prepare_data(gpu)?;
    let cb = gpu.command_buffers[0];
    let t = {
        let gpu = &*gpu;
        time_runs(plan, || {
            record(gpu, cb, count, vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT)?;
            submit(gpu, cb, gpu.fence)?;
            wait_and_reset(gpu)
        })?
    };
    check_output(gpu, count)?;
    Ok(t)
}

/// A 64-element dispatch recorded once (simultaneous use), submitted BATCH times in
/// separate vkQueueSubmit calls, the fence on the last; one wait.
fn submit_batch(gpu: &mut Gpu, plan: &Plan) -> Result<Timings, Fail> {
    prepare_data(gpu)?;
    let cb = gpu.command_buffers[1];
    record(gpu, cb, 64, vk::CommandBufferUsageFlags::SIMULTANEOUS_USE)?;
    let t = {
        let gpu = &*gpu;
        time_runs(plan, || {
            for i in 0..BATCH {
                let fence = if i + 1 == BATCH {
                    gpu.fence
                } else {
                    vk::Fence::null()
                };
                submit(gpu, cb, fence)?;
            }
            wait_and_reset(gpu)
        })?
    };
    check_output(gpu, 64)?;
    Ok(t)
}

/// Copies MAPPED_BYTES into (`write`) or out of a mapped HOST_COHERENT allocation.
fn mapped(gpu: &mut Gpu, write: bool, plan: &Plan) -> Result<Timings, Fail> {
    let b = gpu.create_mapped(
        MAPPED_BYTES as u64,
        vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST,
    )?;
    let mut local: Vec<u8> = (0..MAPPED_BYTES).map(|i| (i * 31 % 251) as u8).collect();
    if !write {
        // Fill the mapping once so reads see real pages with data.
        // SAFETY: `b.ptr` maps at least MAPPED_BYTES bytes that nothing else uses.
        unsafe { std::ptr::copy_nonoverlapping(local.as_ptr(), b.ptr, MAPPED_BYTES) };
    }
    let ptr = b.ptr;
    gpu.extra.push(b);
    let t = time_runs(plan, || {
        // SAFETY: `ptr` maps at least MAPPED_BYTES bytes of host-coherent memory that
        // nothing else (the device included: no command uses it) touches; `local` has
        // MAPPED_BYTES bytes; the two do not overlap.
        unsafe {
            if write {
                std::ptr::copy_nonoverlapping(
                    black_box(local.as_ptr()),
                    black_box(ptr),
                    MAPPED_BYTES,
                );
            } else {
                std::ptr::copy_nonoverlapping(
                    black_box(ptr.cast_const()),
                    local.as_mut_ptr(),
                    MAPPED_BYTES,
                );
            }
        }
        black_box(&mut local);
        Ok(())
    })?;
    // Check that the bytes went through the mapping.
    // SAFETY: as above; the timed copies are done.
    let first = unsafe { std::slice::from_raw_parts(ptr.cast_const(), 4096) };
    if first != &local[..4096] {
        return Err("mapped memory does not hold the bytes copied".into());
    }
    Ok(t)
}
