//! `icd-edge`: loader and lifetime edge cases for a Vulkan driver, run by the guest ICD
//! end-to-end tests (`tests/tests/guest_icd.rs`) through our ICD.
//!
//! Every scenario's unit of work is a real round trip: a buffer in host-visible
//! coherent memory, a command buffer that fills it with a value particular to that
//! instance/device (vkCmdFillBuffer + a transfer-to-host barrier), vkQueueSubmit with a
//! fence, vkWaitForFences, then every word is read back and checked — so two instances
//! or devices that got mixed up would show.
//!
//! Scenarios (one per run, the first argument):
//! - `two-instances`: two instances at once, each with a device; both work at the same
//!   time (two threads), then instance A is destroyed and B still works;
//! - `two-devices`: two devices of one physical device, both working at the same time,
//!   then device 1 is destroyed and device 2 still works;
//! - `recreate`: instance + device + work + destroy everything, three times, with an
//!   instance created and destroyed without any device in between;
//! - `server-killed`: instance + device + work; every object for one more submit is
//!   made; `READY` is printed and a line is read from stdin (the test SIGKILLs the
//!   server, then writes the line); then vkQueueSubmit + vkWaitForFences (no timeout),
//!   vkGetFenceStatus and vkDeviceWaitIdle must report VK_ERROR_DEVICE_LOST within
//!   [`LOST_LIMIT`], and destroying everything must return;
//! - `killed-while-waiting`: a submit that waits for a timeline semaphore value nobody
//!   signals, `WAITING` printed, then vkWaitForFences without timeout, which blocks
//!   until the test SIGKILLs the server and must then return VK_ERROR_DEVICE_LOST (the
//!   test times the return); vkDeviceWaitIdle too, and destroying everything returns.
//!
//! - `fence-states`: every state a fence can be in, queried with vkGetFenceStatus and
//!   vkWaitForFences (timeout 0 and infinite, wait-all and wait-any): created
//!   unsignaled and signaled, submitted behind a timeline-semaphore wait nobody has
//!   signalled yet (pending), signalled, reset, resubmitted (the guest ICD answers
//!   some of these without asking the host; the answers must be the host's);
//!
//! - `event-states`: vkGetEventStatus after every way an event changes: created,
//!   vkSetEvent/vkResetEvent, vkCmdSetEvent[2]/vkCmdResetEvent[2] in primary and
//!   secondary command buffers (including a submission held behind a timeline
//!   semaphore: the status must not change before the device ran it), a device wait
//!   on an event the host set, 1,500 events at once with some destroyed and
//!   re-created, and a device-only event (the guest ICD answers these from its
//!   event feedback memory; the answers must be the driver's);
//!
//! `--validation` enables the Khronos validation layer by name with a debug messenger;
//! every validation warning or error is printed and fails the run.
//!
//! One `ok`/`FAIL` line per check, then `PASS` (exit 0) or `FAIL` (exit 1).

use std::ffi::{c_char, c_void};
use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ash::vk;

/// How long the calls after the server died may take, all together.
const LOST_LIMIT: Duration = Duration::from_secs(5);
/// Size of the buffer every unit of work fills.
const BUFFER_SIZE: u64 = 64 * 1024;
const VALIDATION_LAYER: &std::ffi::CStr = c"VK_LAYER_KHRONOS_validation";

/// Validation warnings and errors seen by the debug messengers.
static VALIDATION_MESSAGES: AtomicU32 = AtomicU32::new(0);

type Fail = String;

fn ctx<T>(r: Result<T, vk::Result>, what: &str) -> Result<T, Fail> {
    r.map_err(|e| format!("{what} failed: {e}"))
}

/// Prints and counts validation messages.
unsafe extern "system" fn debug_callback(
    severity: vk::DebugUtilsMessageSeverityFlagsEXT,
    types: vk::DebugUtilsMessageTypeFlagsEXT,
    data: *const vk::DebugUtilsMessengerCallbackDataEXT<'_>,
    _user: *mut c_void,
) -> vk::Bool32 {
    // SAFETY: the layer passes a valid callback data struct (or null) whose strings
    // are NUL-terminated or null, valid for the duration of the call.
    let message = unsafe {
        data.as_ref()
            .and_then(|d| d.message_as_c_str())
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    if types.intersects(
        vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION
            | vk::DebugUtilsMessageTypeFlagsEXT::PERFORMANCE,
    ) {
        VALIDATION_MESSAGES.fetch_add(1, Ordering::SeqCst);
        println!("validation message [{severity:?}]: {message}");
    } else {
        println!("debug message [{severity:?} {types:?}]: {message}");
    }
    vk::FALSE
}

fn messenger_info() -> vk::DebugUtilsMessengerCreateInfoEXT<'static> {
    vk::DebugUtilsMessengerCreateInfoEXT::default()
        .message_severity(
            vk::DebugUtilsMessageSeverityFlagsEXT::WARNING
                | vk::DebugUtilsMessageSeverityFlagsEXT::ERROR,
        )
        .message_type(
            vk::DebugUtilsMessageTypeFlagsEXT::GENERAL
                | vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION
                | vk::DebugUtilsMessageTypeFlagsEXT::PERFORMANCE,
        )
        .pfn_user_callback(Some(debug_callback))
}

/// Counts and prints the checks.
#[derive(Default)]
struct Report {
    checks: u32,
    failed: u32,
}

impl Report {
    fn check(&mut self, ok: bool, what: impl std::fmt::Display) -> bool {
        self.checks += 1;
        if ok {
            println!("ok {what}");
        } else {
            self.failed += 1;
            println!("FAIL {what}");
        }
        ok
    }
}

/// An instance (with its debug messenger when validating).
struct Instance {
    instance: ash::Instance,
    debug: Option<(ash::ext::debug_utils::Instance, vk::DebugUtilsMessengerEXT)>,
}

impl Instance {
    fn new(entry: &ash::Entry, validation: bool) -> Result<Instance, Fail> {
        let app = vk::ApplicationInfo::default()
            .application_name(c"icd-edge")
            .api_version(vk::API_VERSION_1_3);
        let layers: Vec<*const c_char> = if validation {
            vec![VALIDATION_LAYER.as_ptr()]
        } else {
            Vec::new()
        };
        let exts: Vec<*const c_char> = if validation {
            vec![ash::ext::debug_utils::NAME.as_ptr()]
        } else {
            Vec::new()
        };
        let mut early = messenger_info();
        let mut info = vk::InstanceCreateInfo::default()
            .application_info(&app)
            .enabled_layer_names(&layers)
            .enabled_extension_names(&exts);
        if validation {
            info = info.push_next(&mut early);
        }
        // SAFETY: `info` and what it points to live until the call returns.
        let instance = ctx(
            unsafe { entry.create_instance(&info, None) },
            "vkCreateInstance",
        )?;
        let debug = if validation {
            let du = ash::ext::debug_utils::Instance::new(entry, &instance);
            // SAFETY: the instance has VK_EXT_debug_utils enabled.
            let m = ctx(
                unsafe { du.create_debug_utils_messenger(&messenger_info(), None) },
                "vkCreateDebugUtilsMessengerEXT",
            )?;
            Some((du, m))
        } else {
            None
        };
        Ok(Instance { instance, debug })
    }

    fn physical(&self) -> Result<vk::PhysicalDevice, Fail> {
        // SAFETY: valid instance.
        let list = ctx(
            unsafe { self.instance.enumerate_physical_devices() },
            "vkEnumeratePhysicalDevices",
        )?;
        list.first()
            .copied()
            .ok_or_else(|| "no physical device".to_string())
    }

    /// Destroys the instance (its devices must be gone).
    fn destroy(self) {
        if let Some((du, m)) = self.debug {
            // SAFETY: the messenger belongs to this instance and is destroyed once.
            unsafe { du.destroy_debug_utils_messenger(m, None) };
        }
        // SAFETY: every child object was destroyed before; destroyed once.
        unsafe { self.instance.destroy_instance(None) };
    }
}

/// A device with one queue and the memory type the work uses.
struct Gpu {
    device: ash::Device,
    queue: vk::Queue,
    family: u32,
    memory_type: u32,
}

impl Gpu {
    fn new(inst: &Instance) -> Result<Gpu, Fail> {
        let instance = &inst.instance;
        let physical = inst.physical()?;
        // SAFETY: `physical` comes from this instance.
        let families = unsafe { instance.get_physical_device_queue_family_properties(physical) };
        let family = families
            .iter()
            .position(|f| {
                f.queue_flags
                    .intersects(vk::QueueFlags::COMPUTE | vk::QueueFlags::GRAPHICS)
            })
            .ok_or("no compute or graphics queue family")? as u32;
        // SAFETY: as above.
        let mem = unsafe { instance.get_physical_device_memory_properties(physical) };
        let want = vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT;
        let memory_type = (0..mem.memory_type_count)
            .find(|&i| mem.memory_types[i as usize].property_flags.contains(want))
            .ok_or("no host-visible coherent memory type")?;
        let priorities = [1.0f32];
        let queues = [vk::DeviceQueueCreateInfo::default()
            .queue_family_index(family)
            .queue_priorities(&priorities)];
        let mut v12 = vk::PhysicalDeviceVulkan12Features::default().timeline_semaphore(true);
        let mut v13 = vk::PhysicalDeviceVulkan13Features::default().synchronization2(true);
        let info = vk::DeviceCreateInfo::default()
            .queue_create_infos(&queues)
            .push_next(&mut v12)
            .push_next(&mut v13);
        // SAFETY: `info` and what it points to live until the call returns.
        let device = ctx(
            unsafe { instance.create_device(physical, &info, None) },
            "vkCreateDevice",
        )?;
        // SAFETY: queue 0 of a family the device was created with.
        let queue = unsafe { device.get_device_queue(family, 0) };
        Ok(Gpu {
            device,
            queue,
            family,
            memory_type,
        })
    }

    /// A timeline semaphore at value 0.
    fn timeline(&self) -> Result<vk::Semaphore, Fail> {
        let mut type_info = vk::SemaphoreTypeCreateInfo::default()
            .semaphore_type(vk::SemaphoreType::TIMELINE)
            .initial_value(0);
        let info = vk::SemaphoreCreateInfo::default().push_next(&mut type_info);
        // SAFETY: valid device and create info (timelineSemaphore is enabled).
        ctx(
            unsafe { self.device.create_semaphore(&info, None) },
            "vkCreateSemaphore (timeline)",
        )
    }

    /// vkQueueSubmit of `cmd` signalling `fence`, after value 1 of `timeline` (at
    /// `stage`) when given.
    fn submit(
        &self,
        cmd: vk::CommandBuffer,
        timeline: Option<vk::Semaphore>,
        stage: vk::PipelineStageFlags,
        fence: vk::Fence,
    ) -> Result<(), vk::Result> {
        let cmds = [cmd];
        let sems: Vec<vk::Semaphore> = timeline.into_iter().collect();
        let values = vec![1u64; sems.len()];
        let stages = vec![stage; sems.len()];
        let mut timeline_info =
            vk::TimelineSemaphoreSubmitInfo::default().wait_semaphore_values(&values);
        let mut submit = vk::SubmitInfo::default()
            .command_buffers(&cmds)
            .wait_semaphores(&sems)
            .wait_dst_stage_mask(&stages);
        if timeline.is_some() {
            submit = submit.push_next(&mut timeline_info);
        }
        // SAFETY: the command buffer is recorded and not in use; the fence unsignaled;
        // the semaphore (if any) is a timeline semaphore of this device.
        unsafe { self.device.queue_submit(self.queue, &[submit], fence) }
    }

    /// Destroys the device (its objects must be gone).
    fn destroy(self) {
        // SAFETY: every object of the device was destroyed before; destroyed once.
        unsafe { self.device.destroy_device(None) };
    }
}

/// The objects of one unit of work, with the command buffer recorded.
struct Work {
    buffer: vk::Buffer,
    memory: vk::DeviceMemory,
    mapped: *const u32,
    pool: vk::CommandPool,
    cmd: vk::CommandBuffer,
    fence: vk::Fence,
    value: u32,
}

impl Work {
    /// Creates and records everything for filling the buffer with `value`.
    fn prepare(gpu: &Gpu, value: u32) -> Result<Work, Fail> {
        let d = &gpu.device;
        let info = vk::BufferCreateInfo::default()
            .size(BUFFER_SIZE)
            .usage(vk::BufferUsageFlags::TRANSFER_DST)
            .sharing_mode(vk::SharingMode::EXCLUSIVE);
        // SAFETY: valid device and create info; every object made here is destroyed
        // in `destroy` (or leaked only if a later step fails and the process exits).
        unsafe {
            let buffer = ctx(d.create_buffer(&info, None), "vkCreateBuffer")?;
            let req = d.get_buffer_memory_requirements(buffer);
            if req.memory_type_bits & (1 << gpu.memory_type) == 0 {
                return Err("the buffer cannot live in the host-visible coherent type".into());
            }
            let alloc = vk::MemoryAllocateInfo::default()
                .allocation_size(req.size)
                .memory_type_index(gpu.memory_type);
            let memory = ctx(d.allocate_memory(&alloc, None), "vkAllocateMemory")?;
            ctx(
                d.bind_buffer_memory(buffer, memory, 0),
                "vkBindBufferMemory",
            )?;
            let mapped = ctx(
                d.map_memory(memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty()),
                "vkMapMemory",
            )? as *const u32;
            // Poison the contents so a fill that never ran cannot pass.
            std::ptr::write_bytes(mapped as *mut u8, 0x5a, BUFFER_SIZE as usize);
            let pool_info = vk::CommandPoolCreateInfo::default().queue_family_index(gpu.family);
            let pool = ctx(
                d.create_command_pool(&pool_info, None),
                "vkCreateCommandPool",
            )?;
            let alloc_info = vk::CommandBufferAllocateInfo::default()
                .command_pool(pool)
                .level(vk::CommandBufferLevel::PRIMARY)
                .command_buffer_count(1);
            let cmd = ctx(
                d.allocate_command_buffers(&alloc_info),
                "vkAllocateCommandBuffers",
            )?[0];
            ctx(
                d.begin_command_buffer(cmd, &vk::CommandBufferBeginInfo::default()),
                "vkBeginCommandBuffer",
            )?;
            d.cmd_fill_buffer(cmd, buffer, 0, vk::WHOLE_SIZE, value);
            let barrier = vk::MemoryBarrier::default()
                .src_access_mask(vk::AccessFlags::TRANSFER_WRITE)
                .dst_access_mask(vk::AccessFlags::HOST_READ);
            d.cmd_pipeline_barrier(
                cmd,
                vk::PipelineStageFlags::TRANSFER,
                vk::PipelineStageFlags::HOST,
                vk::DependencyFlags::empty(),
                &[barrier],
                &[],
                &[],
            );
            ctx(d.end_command_buffer(cmd), "vkEndCommandBuffer")?;
            let fence = ctx(
                d.create_fence(&vk::FenceCreateInfo::default(), None),
                "vkCreateFence",
            )?;
            Ok(Work {
                buffer,
                memory,
                mapped,
                pool,
                cmd,
                fence,
                value,
            })
        }
    }

    /// vkQueueSubmit (waiting for `timeline` to reach 1 first, if given).
    fn submit(&self, gpu: &Gpu, timeline: Option<vk::Semaphore>) -> Result<(), vk::Result> {
        gpu.submit(
            self.cmd,
            timeline,
            vk::PipelineStageFlags::TRANSFER,
            self.fence,
        )
    }

    /// vkWaitForFences without timeout.
    fn wait(&self, gpu: &Gpu) -> Result<(), vk::Result> {
        // SAFETY: the fence belongs to this device.
        unsafe { gpu.device.wait_for_fences(&[self.fence], true, u64::MAX) }
    }

    /// vkQueueSubmit, then vkWaitForFences without timeout.
    fn submit_and_wait(
        &self,
        gpu: &Gpu,
    ) -> (Result<(), vk::Result>, Option<Result<(), vk::Result>>) {
        let submitted = self.submit(gpu, None);
        if submitted.is_err() {
            return (submitted, None);
        }
        (submitted, Some(self.wait(gpu)))
    }

    /// Whether every word of the buffer holds the value.
    fn verify(&self) -> Result<(), Fail> {
        let words = (BUFFER_SIZE / 4) as usize;
        // SAFETY: the whole buffer's memory is mapped (at least BUFFER_SIZE bytes) and
        // the GPU is done with it (fence waited).
        let data = unsafe { std::slice::from_raw_parts(self.mapped, words) };
        match data.iter().position(|&w| w != self.value) {
            None => Ok(()),
            Some(i) => Err(format!(
                "word {i} is {:#010x}, not {:#010x}",
                data[i], self.value
            )),
        }
    }

    fn destroy(self, gpu: &Gpu) {
        let d = &gpu.device;
        // SAFETY: all objects belong to this device, are no longer in use (fence
        // waited, or the device is lost) and are destroyed once.
        unsafe {
            d.destroy_fence(self.fence, None);
            d.free_command_buffers(self.pool, &[self.cmd]);
            d.destroy_command_pool(self.pool, None);
            d.unmap_memory(self.memory);
            d.destroy_buffer(self.buffer, None);
            d.free_memory(self.memory, None);
        }
    }
}

/// One complete unit of work on `gpu`, checked.
fn round_trip(gpu: &Gpu, value: u32) -> Result<(), Fail> {
    let work = Work::prepare(gpu, value)?;
    let (submitted, waited) = work.submit_and_wait(gpu);
    let result = ctx(submitted, "vkQueueSubmit")
        .and_then(|()| ctx(waited.unwrap_or(Ok(())), "vkWaitForFences"))
        .and_then(|()| work.verify());
    work.destroy(gpu);
    result
}

fn check_round_trip(report: &mut Report, gpu: &Gpu, value: u32, what: &str) {
    let r = round_trip(gpu, value);
    report.check(
        r.is_ok(),
        format!("{what}: fill {value:#010x}, submit, fence wait, read back: {r:?}"),
    );
}

fn two_instances(entry: &ash::Entry, validation: bool, report: &mut Report) -> Result<(), Fail> {
    let a = Instance::new(entry, validation)?;
    let b = Instance::new(entry, validation)?;
    report.check(
        a.instance.handle() != b.instance.handle(),
        "two instances at once, distinct handles",
    );
    let ga = Gpu::new(&a)?;
    let gb = Gpu::new(&b)?;
    report.check(true, "a device on each instance");
    let (ra, rb) = std::thread::scope(|s| {
        let ta = s.spawn(|| round_trip(&ga, 0xa1a1_a1a1));
        let tb = s.spawn(|| round_trip(&gb, 0xb2b2_b2b2));
        (
            ta.join().unwrap_or_else(|_| Err("thread panicked".into())),
            tb.join().unwrap_or_else(|_| Err("thread panicked".into())),
        )
    });
    report.check(
        ra.is_ok(),
        format!("instance A, concurrently with B: {ra:?}"),
    );
    report.check(
        rb.is_ok(),
        format!("instance B, concurrently with A: {rb:?}"),
    );
    check_round_trip(report, &ga, 0xa3a3_a3a3, "instance A again");
    ga.destroy();
    a.destroy();
    report.check(true, "instance A and its device destroyed");
    check_round_trip(report, &gb, 0xb4b4_b4b4, "instance B after A is gone");
    gb.destroy();
    b.destroy();
    Ok(())
}

fn two_devices(entry: &ash::Entry, validation: bool, report: &mut Report) -> Result<(), Fail> {
    let inst = Instance::new(entry, validation)?;
    let g1 = Gpu::new(&inst)?;
    let g2 = Gpu::new(&inst)?;
    report.check(
        g1.device.handle() != g2.device.handle() && g1.queue != g2.queue,
        "two devices of one physical device, distinct device and queue handles",
    );
    let (r1, r2) = std::thread::scope(|s| {
        let t1 = s.spawn(|| round_trip(&g1, 0xd1d1_d1d1));
        let t2 = s.spawn(|| round_trip(&g2, 0xd2d2_d2d2));
        (
            t1.join().unwrap_or_else(|_| Err("thread panicked".into())),
            t2.join().unwrap_or_else(|_| Err("thread panicked".into())),
        )
    });
    report.check(r1.is_ok(), format!("device 1, concurrently with 2: {r1:?}"));
    report.check(r2.is_ok(), format!("device 2, concurrently with 1: {r2:?}"));
    g1.destroy();
    report.check(true, "device 1 destroyed");
    check_round_trip(report, &g2, 0xd3d3_d3d3, "device 2 after device 1 is gone");
    g2.destroy();
    inst.destroy();
    Ok(())
}

fn recreate(entry: &ash::Entry, validation: bool, report: &mut Report) -> Result<(), Fail> {
    for round in 0..3u32 {
        let inst = Instance::new(entry, validation)?;
        let gpu = Gpu::new(&inst)?;
        check_round_trip(
            report,
            &gpu,
            0xc0de_0000 | round,
            &format!("round {round}: fresh instance and device"),
        );
        gpu.destroy();
        inst.destroy();
        report.check(true, format!("round {round}: everything destroyed"));
        // An instance that never makes a device, between two full rounds.
        let bare = Instance::new(entry, validation)?;
        let pd = bare.physical();
        report.check(
            pd.is_ok(),
            format!("round {round}: instance without a device enumerates: {pd:?}"),
        );
        bare.destroy();
    }
    Ok(())
}

fn server_killed(entry: &ash::Entry, validation: bool, report: &mut Report) -> Result<(), Fail> {
    let inst = Instance::new(entry, validation)?;
    let gpu = Gpu::new(&inst)?;
    check_round_trip(report, &gpu, 0x1111_1111, "before the server is killed");
    let work = Work::prepare(&gpu, 0x2222_2222)?;
    wait_for_kill()?;
    let t0 = Instant::now();
    let (submitted, waited) = work.submit_and_wait(&gpu);
    println!(
        "   vkQueueSubmit -> {submitted:?}, vkWaitForFences -> {waited:?} after {:?}",
        t0.elapsed()
    );
    let lost = Err(vk::Result::ERROR_DEVICE_LOST);
    report.check(
        submitted == lost || waited == Some(lost),
        format!(
            "vkQueueSubmit ({submitted:?}) or vkWaitForFences ({waited:?}) reports \
             VK_ERROR_DEVICE_LOST"
        ),
    );
    // SAFETY: the fence belongs to this device.
    let status = unsafe { gpu.device.get_fence_status(work.fence) };
    report.check(
        status == Err(vk::Result::ERROR_DEVICE_LOST) || status == Ok(true),
        format!("vkGetFenceStatus: {status:?} (VK_ERROR_DEVICE_LOST, or signaled)"),
    );
    // SAFETY: valid device.
    let idle = unsafe { gpu.device.device_wait_idle() };
    report.check(
        idle == lost,
        format!("vkDeviceWaitIdle: {idle:?} (VK_ERROR_DEVICE_LOST)"),
    );
    let calls = t0.elapsed();
    report.check(
        calls < LOST_LIMIT,
        format!("the calls after the server died took {calls:?} (limit {LOST_LIMIT:?})"),
    );
    let t1 = Instant::now();
    work.destroy(&gpu);
    gpu.destroy();
    inst.destroy();
    let teardown = t1.elapsed();
    report.check(
        teardown < LOST_LIMIT,
        format!("destroying objects, device and instance of the lost device took {teardown:?}"),
    );
    Ok(())
}

/// Waits for the test's line on stdin (it kills the server before writing it).
fn wait_for_kill() -> Result<(), Fail> {
    println!("READY");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("reading stdin: {e}"))?;
    println!("   the server is gone; calling into the device");
    Ok(())
}

/// vkGetFenceStatus and vkWaitForFences (timeout 0 and infinite, all and any) on
/// `fences`, against what the fences' states require.
fn check_fences(
    report: &mut Report,
    gpu: &Gpu,
    fences: &[vk::Fence],
    signaled: &[bool],
    what: &str,
) {
    let d = &gpu.device;
    for (i, (&f, &want)) in fences.iter().zip(signaled).enumerate() {
        // SAFETY: fences of this device.
        let status = unsafe { d.get_fence_status(f) };
        report.check(
            status == Ok(want),
            format!("{what}: vkGetFenceStatus of fence {i} is {status:?}, want Ok({want})"),
        );
    }
    let all = signaled.iter().all(|&s| s);
    let any = signaled.iter().any(|&s| s);
    // SAFETY: fences of this device.
    let w = unsafe { d.wait_for_fences(fences, true, 0) };
    let want = if all {
        Ok(())
    } else {
        Err(vk::Result::TIMEOUT)
    };
    report.check(
        w == want,
        format!("{what}: wait-all, timeout 0: {w:?}, want {want:?}"),
    );
    // SAFETY: fences of this device.
    let w = unsafe { d.wait_for_fences(fences, false, 0) };
    let want = if any {
        Ok(())
    } else {
        Err(vk::Result::TIMEOUT)
    };
    report.check(
        w == want,
        format!("{what}: wait-any, timeout 0: {w:?}, want {want:?}"),
    );
    if all {
        // SAFETY: fences of this device, all signaled.
        let w = unsafe { d.wait_for_fences(fences, true, u64::MAX) };
        report.check(w.is_ok(), format!("{what}: wait-all, no timeout: {w:?}"));
    }
}

fn fence_states(entry: &ash::Entry, validation: bool, report: &mut Report) -> Result<(), Fail> {
    let inst = Instance::new(entry, validation)?;
    let gpu = Gpu::new(&inst)?;
    let d = &gpu.device;
    let work = Work::prepare(&gpu, 0x5eed_f00d)?;
    let signaled_info = vk::FenceCreateInfo::default().flags(vk::FenceCreateFlags::SIGNALED);
    // SAFETY: valid device and create info.
    let pre = ctx(
        unsafe { d.create_fence(&signaled_info, None) },
        "vkCreateFence (signaled)",
    )?;
    check_fences(report, &gpu, &[work.fence], &[false], "created unsignaled");
    check_fences(report, &gpu, &[pre], &[true], "created signaled");
    check_fences(
        report,
        &gpu,
        &[work.fence, pre],
        &[false, true],
        "one of each",
    );

    let timeline = gpu.timeline()?;
    let submitted = work.submit(&gpu, Some(timeline));
    report.check(
        submitted.is_ok(),
        format!("submit behind an unsignalled timeline value: {submitted:?}"),
    );
    check_fences(report, &gpu, &[work.fence], &[false], "pending");
    let signal = vk::SemaphoreSignalInfo::default()
        .semaphore(timeline)
        .value(1);
    // SAFETY: a timeline semaphore of this device, value increasing.
    let s = unsafe { d.signal_semaphore(&signal) };
    report.check(s.is_ok(), format!("vkSignalSemaphore: {s:?}"));
    // SAFETY: the fence belongs to this device.
    let w = unsafe { d.wait_for_fences(&[work.fence], true, u64::MAX) };
    report.check(w.is_ok(), format!("wait for the released submit: {w:?}"));
    check_fences(
        report,
        &gpu,
        &[work.fence],
        &[true],
        "signalled by the host",
    );
    let v = work.verify();
    report.check(v.is_ok(), format!("the submit's work is done: {v:?}"));

    // SAFETY: both fences are signaled (not in use by any queue operation).
    let r = unsafe { d.reset_fences(&[work.fence, pre]) };
    report.check(r.is_ok(), format!("vkResetFences: {r:?}"));
    check_fences(report, &gpu, &[work.fence, pre], &[false, false], "reset");
    let (submitted, waited) = work.submit_and_wait(&gpu);
    report.check(
        submitted.is_ok() && waited == Some(Ok(())),
        format!("resubmitted after the reset, waited: {submitted:?} {waited:?}"),
    );
    check_fences(
        report,
        &gpu,
        &[work.fence, pre],
        &[true, false],
        "resubmitted",
    );
    // SAFETY: the fence is signaled.
    let g = unsafe { d.get_fence_status(work.fence) };
    report.check(g == Ok(true), format!("still signaled: {g:?}"));

    // SAFETY: nothing uses these any more (the fence waited).
    unsafe {
        d.destroy_fence(pre, None);
        d.destroy_semaphore(timeline, None);
    }
    work.destroy(&gpu);
    gpu.destroy();
    inst.destroy();
    Ok(())
}

fn killed_while_waiting(
    entry: &ash::Entry,
    validation: bool,
    report: &mut Report,
) -> Result<(), Fail> {
    let inst = Instance::new(entry, validation)?;
    let gpu = Gpu::new(&inst)?;
    check_round_trip(report, &gpu, 0x3333_3333, "before the server is killed");
    let timeline = gpu.timeline()?;
    let work = Work::prepare(&gpu, 0x4444_4444)?;
    let submitted = work.submit(&gpu, Some(timeline));
    report.check(
        submitted.is_ok(),
        format!("vkQueueSubmit waiting for a timeline value nobody signals: {submitted:?}"),
    );
    // SAFETY: the fence belongs to this device.
    let status = unsafe { gpu.device.get_fence_status(work.fence) };
    report.check(
        status == Ok(false),
        format!("the fence is not signaled while the submit waits: {status:?}"),
    );
    // The test kills the server once this is printed; the wait below blocks until then.
    println!("WAITING");
    let _ = std::io::stdout().flush();
    let t0 = Instant::now();
    let waited = work.wait(&gpu);
    report.check(
        waited == Err(vk::Result::ERROR_DEVICE_LOST),
        format!(
            "vkWaitForFences blocked on the host returns {waited:?} after {:?} \
             (VK_ERROR_DEVICE_LOST)",
            t0.elapsed()
        ),
    );
    // SAFETY: valid device.
    let idle = unsafe { gpu.device.device_wait_idle() };
    report.check(
        idle == Err(vk::Result::ERROR_DEVICE_LOST),
        format!("vkDeviceWaitIdle: {idle:?} (VK_ERROR_DEVICE_LOST)"),
    );
    let t1 = Instant::now();
    work.destroy(&gpu);
    // SAFETY: the semaphore belongs to this device; the device is lost, nothing runs.
    unsafe { gpu.device.destroy_semaphore(timeline, None) };
    gpu.destroy();
    inst.destroy();
    let teardown = t1.elapsed();
    report.check(
        teardown < LOST_LIMIT,
        format!("destroying objects, device and instance of the lost device took {teardown:?}"),
    );
    Ok(())
}

/// How long a submission of the event scenario may take.
const EVENT_WAIT: Duration = Duration::from_secs(10);

/// One-off command buffers for the event scenario: record, submit, wait.
struct Recorder {
    pool: vk::CommandPool,
    fence: vk::Fence,
}

impl Recorder {
    fn new(gpu: &Gpu) -> Result<Recorder, Fail> {
        let d = &gpu.device;
        let info = vk::CommandPoolCreateInfo::default()
            .queue_family_index(gpu.family)
            .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER);
        // SAFETY: valid device and create infos.
        unsafe {
            let pool = ctx(d.create_command_pool(&info, None), "vkCreateCommandPool")?;
            let fence = ctx(
                d.create_fence(&vk::FenceCreateInfo::default(), None),
                "vkCreateFence",
            )?;
            Ok(Recorder { pool, fence })
        }
    }

    fn allocate(
        &self,
        gpu: &Gpu,
        level: vk::CommandBufferLevel,
    ) -> Result<vk::CommandBuffer, Fail> {
        let info = vk::CommandBufferAllocateInfo::default()
            .command_pool(self.pool)
            .level(level)
            .command_buffer_count(1);
        // SAFETY: a pool of this device.
        Ok(ctx(
            unsafe { gpu.device.allocate_command_buffers(&info) },
            "vkAllocateCommandBuffers",
        )?[0])
    }

    /// Records a primary command buffer with `f` and submits it, after timeline
    /// value 1 of `timeline` when given. Not waited: see [`Recorder::finish`].
    fn submit(
        &self,
        gpu: &Gpu,
        timeline: Option<vk::Semaphore>,
        f: impl FnOnce(&ash::Device, vk::CommandBuffer),
    ) -> Result<vk::CommandBuffer, Fail> {
        let d = &gpu.device;
        let cmd = self.allocate(gpu, vk::CommandBufferLevel::PRIMARY)?;
        // SAFETY: a fresh command buffer of this device; `f` records valid commands.
        unsafe {
            ctx(
                d.begin_command_buffer(cmd, &vk::CommandBufferBeginInfo::default()),
                "vkBeginCommandBuffer",
            )?;
            f(d, cmd);
            ctx(d.end_command_buffer(cmd), "vkEndCommandBuffer")?;
        }
        ctx(
            gpu.submit(
                cmd,
                timeline,
                vk::PipelineStageFlags::ALL_COMMANDS,
                self.fence,
            ),
            "vkQueueSubmit",
        )?;
        Ok(cmd)
    }

    /// Waits (bounded) for the submission of `cmd`, then frees it.
    fn finish(&self, gpu: &Gpu, cmd: vk::CommandBuffer) -> Result<(), Fail> {
        let d = &gpu.device;
        // SAFETY: the fence and command buffer belong to this device.
        unsafe {
            ctx(
                d.wait_for_fences(&[self.fence], true, EVENT_WAIT.as_nanos() as u64),
                "vkWaitForFences",
            )?;
            ctx(d.reset_fences(&[self.fence]), "vkResetFences")?;
            d.free_command_buffers(self.pool, &[cmd]);
        }
        Ok(())
    }

    /// Records, submits and waits.
    fn run(&self, gpu: &Gpu, f: impl FnOnce(&ash::Device, vk::CommandBuffer)) -> Result<(), Fail> {
        let cmd = self.submit(gpu, None, f)?;
        self.finish(gpu, cmd)
    }

    fn destroy(self, gpu: &Gpu) {
        // SAFETY: nothing of the pool is pending (every submission was waited).
        unsafe {
            gpu.device.destroy_fence(self.fence, None);
            gpu.device.destroy_command_pool(self.pool, None);
        }
    }
}

/// vkGetEventStatus of `event` against `set`.
fn check_event(report: &mut Report, gpu: &Gpu, event: vk::Event, set: bool, what: &str) {
    // SAFETY: an event of this device, not device-only.
    let s = unsafe { gpu.device.get_event_status(event) };
    report.check(
        s == Ok(set),
        format!("{what}: vkGetEventStatus is {s:?}, want Ok({set})"),
    );
}

fn event_states(entry: &ash::Entry, validation: bool, report: &mut Report) -> Result<(), Fail> {
    let inst = Instance::new(entry, validation)?;
    let gpu = Gpu::new(&inst)?;
    let d = &gpu.device;
    let rec = Recorder::new(&gpu)?;
    let transfer = vk::PipelineStageFlags::TRANSFER;
    // SAFETY: valid device and create info.
    let ev = ctx(
        unsafe { d.create_event(&vk::EventCreateInfo::default(), None) },
        "vkCreateEvent",
    )?;
    check_event(report, &gpu, ev, false, "created");

    // SAFETY: `ev` is an event of this device that no pending submission uses
    // when the host changes it (the same holds for the host changes below).
    unsafe {
        report.check(d.set_event(ev).is_ok(), "vkSetEvent");
        check_event(report, &gpu, ev, true, "set by the host");
        report.check(d.set_event(ev).is_ok(), "vkSetEvent again");
        check_event(report, &gpu, ev, true, "set twice by the host");
        report.check(d.reset_event(ev).is_ok(), "vkResetEvent");
        check_event(report, &gpu, ev, false, "reset by the host");
    }

    // SAFETY: commands of this device recorded into a command buffer in the recording state.
    let r = rec.run(&gpu, |d, c| unsafe { d.cmd_set_event(c, ev, transfer) });
    report.check(
        r.is_ok(),
        format!("vkCmdSetEvent submitted and waited: {r:?}"),
    );
    check_event(report, &gpu, ev, true, "set by vkCmdSetEvent");
    // SAFETY: commands of this device recorded into a command buffer in the recording state.
    let r = rec.run(&gpu, |d, c| unsafe { d.cmd_reset_event(c, ev, transfer) });
    report.check(
        r.is_ok(),
        format!("vkCmdResetEvent submitted and waited: {r:?}"),
    );
    check_event(report, &gpu, ev, false, "reset by vkCmdResetEvent");
    // SAFETY: commands of this device recorded into a command buffer in the recording state.
    let r = rec.run(&gpu, |d, c| unsafe {
        d.cmd_set_event(c, ev, transfer);
        d.cmd_reset_event(c, ev, transfer);
    });
    report.check(
        r.is_ok(),
        format!("set then reset in one command buffer: {r:?}"),
    );
    check_event(
        report,
        &gpu,
        ev,
        false,
        "set then reset in one command buffer",
    );

    // Held behind a timeline value: the status must not change before the device
    // runs the command buffer.
    let timeline = gpu.timeline()?;
    // SAFETY: commands of this device recorded into a command buffer in the recording state.
    let held = rec.submit(&gpu, Some(timeline), |d, c| unsafe {
        d.cmd_set_event(c, ev, vk::PipelineStageFlags::ALL_COMMANDS)
    })?;
    for k in 0..3 {
        std::thread::sleep(Duration::from_millis(20));
        check_event(
            report,
            &gpu,
            ev,
            false,
            &format!("vkCmdSetEvent held behind a timeline wait, look {k}"),
        );
    }
    let signal = vk::SemaphoreSignalInfo::default()
        .semaphore(timeline)
        .value(1);
    // SAFETY: a timeline semaphore of this device, value increasing.
    let s = unsafe { d.signal_semaphore(&signal) };
    report.check(s.is_ok(), format!("vkSignalSemaphore: {s:?}"));
    let r = rec.finish(&gpu, held);
    report.check(r.is_ok(), format!("the held submission ran: {r:?}"));
    check_event(report, &gpu, ev, true, "set once the held submission ran");

    // Synchronization2.
    let barrier = [vk::MemoryBarrier2::default()
        .src_stage_mask(vk::PipelineStageFlags2::COPY)
        .src_access_mask(vk::AccessFlags2::TRANSFER_WRITE)
        .dst_stage_mask(vk::PipelineStageFlags2::COPY)
        .dst_access_mask(vk::AccessFlags2::TRANSFER_READ)];
    let dep = vk::DependencyInfo::default().memory_barriers(&barrier);
    // SAFETY: commands of this device recorded into a command buffer in the recording state.
    let r = rec.run(&gpu, |d, c| unsafe {
        d.cmd_reset_event2(c, ev, vk::PipelineStageFlags2::COPY)
    });
    report.check(r.is_ok(), format!("vkCmdResetEvent2: {r:?}"));
    check_event(report, &gpu, ev, false, "reset by vkCmdResetEvent2");
    // SAFETY: commands of this device recorded into a command buffer in the recording state.
    let r = rec.run(&gpu, |d, c| unsafe { d.cmd_set_event2(c, ev, &dep) });
    report.check(r.is_ok(), format!("vkCmdSetEvent2: {r:?}"));
    check_event(report, &gpu, ev, true, "set by vkCmdSetEvent2");

    // Set by the host, waited for by the device: the host's vkSetEvent must reach
    // the driver even though the guest answers queries itself.
    // SAFETY: as above.
    unsafe {
        report.check(
            d.reset_event(ev).is_ok(),
            "vkResetEvent before the device wait",
        );
        report.check(d.set_event(ev).is_ok(), "vkSetEvent for the device wait");
    }
    // SAFETY: commands of this device recorded into a command buffer in the recording state.
    let r = rec.run(&gpu, |d, c| unsafe {
        d.cmd_wait_events(
            c,
            &[ev],
            vk::PipelineStageFlags::HOST,
            transfer,
            &[],
            &[],
            &[],
        )
    });
    report.check(
        r.is_ok(),
        format!("vkCmdWaitEvents on an event the host set finished: {r:?}"),
    );
    check_event(report, &gpu, ev, true, "still set after the device wait");

    // Secondary command buffer.
    // SAFETY: as above.
    unsafe {
        report.check(
            d.reset_event(ev).is_ok(),
            "vkResetEvent before the secondary",
        )
    };
    let secondary = rec.allocate(&gpu, vk::CommandBufferLevel::SECONDARY)?;
    let inheritance = vk::CommandBufferInheritanceInfo::default();
    let begin = vk::CommandBufferBeginInfo::default().inheritance_info(&inheritance);
    // SAFETY: a fresh secondary command buffer of this device.
    unsafe {
        ctx(
            d.begin_command_buffer(secondary, &begin),
            "vkBeginCommandBuffer (secondary)",
        )?;
        d.cmd_set_event(secondary, ev, transfer);
        ctx(
            d.end_command_buffer(secondary),
            "vkEndCommandBuffer (secondary)",
        )?;
    }
    // SAFETY: commands of this device recorded into a command buffer in the recording state.
    let r = rec.run(&gpu, |d, c| unsafe {
        d.cmd_execute_commands(c, &[secondary])
    });
    report.check(r.is_ok(), format!("secondary executed: {r:?}"));
    check_event(report, &gpu, ev, true, "set by a secondary command buffer");
    // SAFETY: the submission using it was waited.
    unsafe { d.free_command_buffers(rec.pool, &[secondary]) };

    // Many events: more than one buffer of slots, some destroyed and re-created.
    const MANY: usize = 1500;
    let mut many = Vec::with_capacity(MANY);
    for _ in 0..MANY {
        // SAFETY: valid device and create info.
        many.push(ctx(
            unsafe { d.create_event(&vk::EventCreateInfo::default(), None) },
            "vkCreateEvent (many)",
        )?);
    }
    // SAFETY: commands of this device recorded into a command buffer in the recording state.
    let r = rec.run(&gpu, |d, c| unsafe {
        for (i, &e) in many.iter().enumerate() {
            if i % 3 == 0 {
                d.cmd_set_event(c, e, transfer);
            }
        }
    });
    report.check(
        r.is_ok(),
        format!("{MANY} events, every third set by the device: {r:?}"),
    );
    for (i, &e) in many.iter().enumerate() {
        if i % 3 == 1 {
            // SAFETY: an event of this device, no pending use.
            unsafe { d.set_event(e) }.map_err(|e| format!("vkSetEvent: {e}"))?;
        }
    }
    let wrong = |events: &[vk::Event], want: &dyn Fn(usize) -> bool| -> Vec<usize> {
        (0..events.len())
            // SAFETY: events of this device.
            .filter(|&i| unsafe { d.get_event_status(events[i]) } != Ok(want(i)))
            .collect()
    };
    let bad = wrong(&many, &|i| i % 3 != 2);
    report.check(
        bad.is_empty(),
        format!("{MANY} events: device-set and host-set ones set, the rest reset; wrong: {bad:?}"),
    );
    for &e in &many[..MANY / 2] {
        // SAFETY: no pending use.
        unsafe { d.destroy_event(e, None) };
    }
    for e in &mut many[..MANY / 2] {
        // SAFETY: valid device and create info.
        *e = ctx(
            unsafe { d.create_event(&vk::EventCreateInfo::default(), None) },
            "vkCreateEvent (re-created)",
        )?;
    }
    let bad = wrong(&many, &|i| i >= MANY / 2 && i % 3 != 2);
    report.check(
        bad.is_empty(),
        format!(
            "half destroyed and re-created: new ones reset, old ones unchanged; wrong: {bad:?}"
        ),
    );
    for &e in &many {
        // SAFETY: no pending use.
        unsafe { d.destroy_event(e, None) };
    }

    // A device-only event: the device sets, waits for and resets it.
    let info = vk::EventCreateInfo::default().flags(vk::EventCreateFlags::DEVICE_ONLY);
    // SAFETY: valid device and create info (synchronization2 is enabled).
    let dev_only = ctx(
        unsafe { d.create_event(&info, None) },
        "vkCreateEvent (device only)",
    )?;
    // SAFETY: commands of this device recorded into a command buffer in the recording state.
    let r = rec.run(&gpu, |d, c| unsafe {
        d.cmd_set_event2(c, dev_only, &dep);
        d.cmd_wait_events2(c, &[dev_only], std::slice::from_ref(&dep));
        d.cmd_reset_event2(c, dev_only, vk::PipelineStageFlags2::COPY);
    });
    report.check(
        r.is_ok(),
        format!("device-only event set, waited for, reset: {r:?}"),
    );

    // SAFETY: nothing pending uses these.
    unsafe {
        d.destroy_event(dev_only, None);
        d.destroy_event(ev, None);
        d.destroy_semaphore(timeline, None);
    }
    rec.destroy(&gpu);
    gpu.destroy();
    inst.destroy();
    Ok(())
}

const USAGE: &str = "usage: icd-edge two-instances|two-devices|recreate|server-killed|\
killed-while-waiting|fence-states|event-states [--validation]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let validation = args.iter().any(|a| a == "--validation");
    let Some(scenario) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    if args
        .iter()
        .any(|a| a.starts_with("--") && a != "--validation")
    {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let run: fn(&ash::Entry, bool, &mut Report) -> Result<(), Fail> = match scenario.as_str() {
        "two-instances" => two_instances,
        "two-devices" => two_devices,
        "recreate" => recreate,
        "server-killed" => server_killed,
        "killed-while-waiting" => killed_while_waiting,
        "fence-states" => fence_states,
        "event-states" => event_states,
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    // SAFETY: loads the system Vulkan loader; nothing else in this process uses it.
    let entry = match unsafe { ash::Entry::load() } {
        Ok(e) => e,
        Err(e) => {
            println!("FAIL loading the Vulkan loader: {e}");
            println!("FAIL");
            return ExitCode::FAILURE;
        }
    };
    let mut report = Report::default();
    if let Err(e) = run(&entry, validation, &mut report) {
        report.check(false, e);
    }
    if validation {
        let n = VALIDATION_MESSAGES.load(Ordering::SeqCst);
        report.check(n == 0, format!("validation warnings and errors: {n}"));
    }
    println!(
        "summary: {} checks, {} failed",
        report.checks, report.failed
    );
    if report.failed == 0 && report.checks > 0 {
        println!("PASS");
        ExitCode::SUCCESS
    } else {
        println!("FAIL");
        ExitCode::FAILURE
    }
}
