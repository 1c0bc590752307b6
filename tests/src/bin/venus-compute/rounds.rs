//! The rounds of one dispatch size: buffers and descriptor set, input data, submission,
//! and the checks of synchronization objects, timestamps and results.

use ash::vk;

use crate::commands::{record, scratch_bytes, submit, Extra, Grid, TAIL_PATTERN, TAIL_WORDS};
use crate::device::Setup;
use crate::memory::{create_buffer, Placement};
use crate::pipeline::{LOCAL_SIZE, SPEC_B};
use crate::report::{Fail, Report, VkContext};
use crate::vulkan::{Obj, Vulkan};
use crate::Options;

/// At most this many workgroups along x; larger dispatches use a 2D grid.
const MAX_GROUPS_X: u32 = 4096;
/// Timeout of every wait (fence, timeline semaphore): 60 s.
const WAIT_TIMEOUT_NS: u64 = 60_000_000_000;
/// The input value of element `i` in round `round`.
fn input_value(i: u32, round: u64) -> u32 {
    i.wrapping_mul(2_654_435_761) ^ (round as u32).wrapping_mul(0x9E37_79B9) ^ 0x5555_0000
}

/// The multiplier `a` (a push constant) of round `round`.
pub(crate) fn multiplier(round: u64) -> u32 {
    3 + 2 * (round as u32)
}

fn expected_value(i: u32, round: u64) -> u32 {
    input_value(i, round)
        .wrapping_mul(multiplier(round))
        .wrapping_add(SPEC_B)
        .wrapping_add(i)
}

/// Compares `words` against the expected output; returns (mismatches, first few).
fn verify(words: &[u32], round: u64) -> (usize, Vec<String>) {
    let mut bad = 0;
    let mut first = Vec::new();
    for (i, &w) in words.iter().enumerate() {
        let want = expected_value(i as u32, round);
        if w != want {
            bad += 1;
            if first.len() < 4 {
                first.push(format!("[{i}] = 0x{w:08x}, want 0x{want:08x}"));
            }
        }
    }
    (bad, first)
}

/// Runs `opts.iterations` rounds of a dispatch of `n` elements with `pipeline`; returns
/// how many extra commands (`--record-extra`) were recorded over those rounds.
pub(crate) fn run_size(
    vk_: &mut Vulkan,
    setup: &mut Setup,
    pipeline: vk::Pipeline,
    n: u32,
    opts: &Options,
    report: &mut Report,
) -> Result<u64, Fail> {
    let bytes = u64::from(n) * 4;
    if bytes > u64::from(setup.limits.max_storage_buffer_range) {
        return Err(format!(
            "{n} elements ({bytes} bytes) exceed maxStorageBufferRange {}",
            setup.limits.max_storage_buffer_range
        ));
    }
    let groups = n.div_ceil(LOCAL_SIZE);
    let gx = groups
        .min(MAX_GROUPS_X)
        .min(setup.limits.max_compute_work_group_count[0]);
    let gy = groups.div_ceil(gx);
    if gy > setup.limits.max_compute_work_group_count[1] {
        return Err(format!(
            "{n} elements need {gy} workgroup rows, more than the device allows"
        ));
    }
    let row_elements = gx * LOCAL_SIZE;
    let mark = vk_.objects.len();

    use vk::BufferUsageFlags as U;
    let input = create_buffer(vk_, setup, bytes, U::STORAGE_BUFFER, Placement::Coherent)?;
    let output = create_buffer(
        vk_,
        setup,
        bytes,
        U::STORAGE_BUFFER | U::TRANSFER_SRC | U::TRANSFER_DST,
        Placement::Device,
    )?;
    let readback_bytes = bytes + TAIL_WORDS * 4;
    let readback = create_buffer(
        vk_,
        setup,
        readback_bytes,
        U::TRANSFER_DST,
        Placement::PreferNonCoherent,
    )?;
    let readback2 = create_buffer(vk_, setup, bytes, U::TRANSFER_DST, Placement::Coherent)?;
    let extra = if opts.record_extra > 0 {
        let scratch_size = scratch_bytes(opts.record_extra);
        let scratch = create_buffer(vk_, setup, scratch_size, U::TRANSFER_DST, Placement::Device)?;
        Some(Extra {
            commands: opts.record_extra,
            scratch: scratch.buffer,
        })
    } else {
        None
    };
    let mut extra_recorded = 0u64;
    report.check(
        input.coherent && readback2.coherent,
        format!("n={n}: buffers created, bound, host-visible ones mapped (input and second readback coherent)"),
    );
    if readback.coherent {
        report.info(format!(
            "n={n}: the device has no host-visible non-coherent memory type: the readback \
             buffer is coherent (flush/invalidate are still called on it)"
        ));
    } else {
        report.info(format!(
            "n={n}: readback buffer in host-visible NON-coherent memory (flush/invalidate needed)"
        ));
    }

    let device = vk_.device()?.clone();
    // Descriptor set.
    let layouts = [setup.set_layout];
    // SAFETY: valid pool and layout; the set is tracked (freed before the pool).
    let sets = unsafe {
        device.allocate_descriptor_sets(
            &vk::DescriptorSetAllocateInfo::default()
                .descriptor_pool(setup.descriptor_pool)
                .set_layouts(&layouts),
        )
    }
    .ctx("vkAllocateDescriptorSets")?;
    let Some(&set) = sets.first() else {
        return Err("vkAllocateDescriptorSets returned no set".into());
    };
    vk_.track(Obj::DescriptorSet(setup.descriptor_pool, set));
    let in_info = [vk::DescriptorBufferInfo::default()
        .buffer(input.buffer)
        .offset(0)
        .range(vk::WHOLE_SIZE)];
    let out_info = [vk::DescriptorBufferInfo::default()
        .buffer(output.buffer)
        .offset(0)
        .range(bytes)];
    let writes = [
        vk::WriteDescriptorSet::default()
            .dst_set(set)
            .dst_binding(0)
            .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
            .buffer_info(&in_info),
        vk::WriteDescriptorSet::default()
            .dst_set(set)
            .dst_binding(1)
            .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
            .buffer_info(&out_info),
    ];
    // SAFETY: the set and buffers are valid and not in use by the device.
    unsafe { device.update_descriptor_sets(&writes, &[]) };
    report.check(true, format!("n={n}: descriptor set allocated and updated"));

    for iteration in 0..opts.iterations {
        let round = setup.round;
        setup.round += 1;
        let tag = format!("n={n} iteration {iteration}");
        let host_value = 3 * round + 1;
        let a_value = 3 * round + 2;
        let b_value = 3 * round + 3;

        // CPU writes the input through the coherent mapping (flushing is allowed on
        // coherent memory and exercises vkFlushMappedMemoryRanges).
        // SAFETY: `input.mapped` maps the whole allocation (at least `bytes` bytes,
        // aligned to minMemoryMapAlignment); the device is not using it (previous
        // round's fence was waited on).
        let in_words =
            unsafe { std::slice::from_raw_parts_mut(input.mapped.cast::<u32>(), n as usize) };
        for (i, w) in in_words.iter_mut().enumerate() {
            *w = input_value(i as u32, round);
        }
        let range = [vk::MappedMemoryRange::default()
            .memory(input.memory)
            .offset(0)
            .size(vk::WHOLE_SIZE)];
        // SAFETY: the memory is mapped; the range covers the mapping.
        unsafe { device.flush_mapped_memory_ranges(&range) }.ctx("vkFlushMappedMemoryRanges")?;

        // The event is unsignaled before the submit.
        // SAFETY: valid event, not used by pending work.
        let status = unsafe { device.get_event_status(setup.event) };
        report.check(
            status == Ok(false),
            format!("{tag}: event unsignaled before submit: {status:?}"),
        );

        let grid = Grid {
            n,
            gx,
            gy,
            row_elements,
        };
        extra_recorded += u64::from(record(
            &device,
            setup,
            (pipeline, set),
            [&output, &readback, &readback2],
            grid,
            round,
            extra,
        )?);

        // The host signals the value the first submit waits on.
        // SAFETY: valid timeline semaphore; the value is larger than the current one.
        unsafe {
            device.signal_semaphore(
                &vk::SemaphoreSignalInfo::default()
                    .semaphore(setup.timeline)
                    .value(host_value),
            )
        }
        .ctx("vkSignalSemaphore")?;
        // SAFETY: valid timeline semaphore.
        let value = unsafe { device.get_semaphore_counter_value(setup.timeline) };
        report.check(
            value == Ok(host_value),
            format!("{tag}: vkSignalSemaphore({host_value}) then counter value {value:?}"),
        );

        submit(&device, setup, host_value, a_value, b_value)?;

        // The host waits for the timeline value of the second submit.
        let sems = [setup.timeline];
        let values = [b_value];
        // SAFETY: valid semaphore; arrays of equal length.
        let waited = unsafe {
            device.wait_semaphores(
                &vk::SemaphoreWaitInfo::default()
                    .semaphores(&sems)
                    .values(&values),
                WAIT_TIMEOUT_NS,
            )
        };
        report.check(
            waited.is_ok(),
            format!("{tag}: vkWaitSemaphores(timeline >= {b_value}): {waited:?}"),
        );
        // SAFETY: valid semaphore.
        let value = unsafe { device.get_semaphore_counter_value(setup.timeline) };
        report.check(
            value == Ok(b_value),
            format!("{tag}: timeline counter after both submits: {value:?} (want {b_value})"),
        );

        // Fence: wait, status, reset, status.
        // SAFETY: valid fence, submitted above.
        let waited = unsafe { device.wait_for_fences(&[setup.fence], true, WAIT_TIMEOUT_NS) };
        if !report.check(
            waited.is_ok(),
            format!("{tag}: vkWaitForFences: {waited:?}"),
        ) {
            return Err(format!("{tag}: the submitted work did not finish"));
        }
        // SAFETY: valid fence.
        let status = unsafe { device.get_fence_status(setup.fence) };
        report.check(
            status == Ok(true),
            format!("{tag}: vkGetFenceStatus after wait: {status:?}"),
        );
        // SAFETY: the fence is signaled and not in use by pending work.
        unsafe { device.reset_fences(&[setup.fence]) }.ctx("vkResetFences")?;
        // SAFETY: valid fence.
        let status = unsafe { device.get_fence_status(setup.fence) };
        report.check(
            status == Ok(false),
            format!("{tag}: vkGetFenceStatus after reset: {status:?}"),
        );

        // Event: set by the command buffer; host reset, host set, host reset.
        // SAFETY: valid event; the work that set it is finished.
        let status = unsafe { device.get_event_status(setup.event) };
        report.check(
            status == Ok(true),
            format!("{tag}: event set by vkCmdSetEvent: {status:?}"),
        );
        // SAFETY: see above.
        let (r1, s1, r2, s2, r3) = unsafe {
            let r1 = device.reset_event(setup.event);
            let s1 = device.get_event_status(setup.event);
            let r2 = device.set_event(setup.event);
            let s2 = device.get_event_status(setup.event);
            let r3 = device.reset_event(setup.event);
            (r1, s1, r2, s2, r3)
        };
        report.check(
            r1.is_ok() && s1 == Ok(false) && r2.is_ok() && s2 == Ok(true) && r3.is_ok(),
            format!(
                "{tag}: host vkResetEvent -> {s1:?}, vkSetEvent -> {s2:?}, vkResetEvent {r3:?}"
            ),
        );

        // Timestamps.
        let mut stamps = [0u64; 2];
        // SAFETY: both queries were written by the finished command buffer.
        let got = unsafe {
            device.get_query_pool_results(
                setup.query_pool,
                0,
                &mut stamps,
                vk::QueryResultFlags::TYPE_64 | vk::QueryResultFlags::WAIT,
            )
        };
        let mask = if setup.timestamp_bits >= 64 {
            u64::MAX
        } else {
            (1u64 << setup.timestamp_bits) - 1
        };
        let (t0, t1) = (stamps[0] & mask, stamps[1] & mask);
        let ns = (t1.wrapping_sub(t0) & mask) as f64 * f64::from(setup.limits.timestamp_period);
        report.check(
            got.is_ok() && t1 >= t0 && t1 != 0,
            format!("{tag}: timestamps {got:?}: {t0} <= {t1} (monotonic, written), {ns:.0} ns"),
        );

        // Results: invalidate the readback (non-coherent when possible), verify.
        let ranges = [
            vk::MappedMemoryRange::default()
                .memory(readback.memory)
                .offset(0)
                .size(vk::WHOLE_SIZE),
            vk::MappedMemoryRange::default()
                .memory(readback2.memory)
                .offset(0)
                .size(vk::WHOLE_SIZE),
        ];
        // SAFETY: both memories are mapped; the ranges cover the mappings.
        unsafe { device.invalidate_mapped_memory_ranges(&ranges) }
            .ctx("vkInvalidateMappedMemoryRanges")?;
        // SAFETY: the mappings cover at least `readback_bytes` / `bytes` bytes, are
        // suitably aligned, and the device finished writing them (fence waited).
        let (words, words2) = unsafe {
            (
                std::slice::from_raw_parts(
                    readback.mapped.cast::<u32>(),
                    (readback_bytes / 4) as usize,
                ),
                std::slice::from_raw_parts(readback2.mapped.cast::<u32>(), n as usize),
            )
        };
        let (results, tail) = words.split_at(n as usize);
        let (bad, first) = verify(results, round);
        report.check(
            bad == 0,
            format!(
                "{tag}: {n} elements out[i] = in[i]*{} + {SPEC_B} + i verified (dispatch {gx}x{gy}, {} memory){}",
                multiplier(round),
                if readback.coherent { "coherent" } else { "non-coherent" },
                if bad == 0 { String::new() } else { format!(": {bad} wrong, {}", first.join(", ")) }
            ),
        );
        let tail_ok = tail.iter().all(|&w| w == TAIL_PATTERN);
        report.check(
            tail_ok,
            format!("{tag}: vkCmdFillBuffer wrote 0x{TAIL_PATTERN:08x} into {TAIL_WORDS} words after the results"),
        );
        let (bad2, first2) = verify(words2, round);
        report.check(
            bad2 == 0,
            format!(
                "{tag}: second submit (after the binary semaphore) copied the same results{}",
                if bad2 == 0 {
                    String::new()
                } else {
                    format!(": {bad2} wrong, {}", first2.join(", "))
                }
            ),
        );
    }

    // Free the descriptor set and destroy this size's buffers (device is idle: the
    // last fence was waited on).
    vk_.release_to(mark, report);
    Ok(extra_recorded)
}
