//! `venus-compute`: a Vulkan compute program of our own that exercises the parts of
//! Vulkan a compute workload needs and checks every result on the CPU.
//!
//! It is built to be run twice: natively on lavapipe, and through the venus guest
//! driver talking to our host translator; both runs must print `PASS`.
//!
//! What it covers (one `ok`/`FAIL` line per check, then `PASS` or `FAIL`):
//! - instance (API 1.3 when the loader has it, 1.2 at least), a debug-utils messenger
//!   that counts validation warnings and errors, the first physical device (its name is
//!   printed), whether the Khronos validation layer is active (tool properties);
//! - device with one compute queue and the `timelineSemaphore` feature;
//! - storage buffers in HOST_VISIBLE|HOST_COHERENT memory, mapped, written and read by
//!   the CPU; a readback buffer in host-visible non-coherent memory when the device has
//!   such a type (flush/invalidate are called on every mapped range either way);
//! - descriptor set layout, pool (free-able sets), set allocation, vkUpdateDescriptorSets,
//!   vkFreeDescriptorSets;
//! - compute pipeline from the embedded SPIR-V (`tests/shaders/compute.spv`) with a
//!   push-constant range and two specialization constants (workgroup width and `b`),
//!   a pipeline cache (its data header is checked, it seeds a second cache, merged);
//! - command pool and buffers (reset and re-recorded every round), vkCmdBindPipeline,
//!   vkCmdBindDescriptorSets, vkCmdPushConstants, vkCmdDispatch (1D and 2D grids),
//!   pipeline barriers, vkCmdCopyBuffer, vkCmdFillBuffer, vkCmdSetEvent,
//!   vkCmdResetQueryPool and vkCmdWriteTimestamp;
//! - two submits per round joined by a binary semaphore; a timeline semaphore signalled
//!   by the host (vkSignalSemaphore) and waited on by the first submit, signalled by both
//!   submits and waited on by the host (vkWaitSemaphores, vkGetSemaphoreCounterValue);
//!   a fence (vkWaitForFences, vkGetFenceStatus, vkResetFences); an event
//!   (vkGetEventStatus, vkSetEvent, vkResetEvent); timestamp queries
//!   (vkGetQueryPoolResults, monotonic, non-zero period);
//! - results `out[i] = in[i] * a + b + i` (wrapping u32) verified element by element for
//!   64 elements and for `--elements N` (default 1M), `--iterations K` rounds each.
//!
//! Everything is destroyed at the end; the exit code is 0 only if every check passed.

use std::ffi::c_void;
use std::fmt::Display;
use std::io::Cursor;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};

use ash::vk;

/// The compute shader, built from `tests/shaders/compute.comp` by glslangValidator.
const SPIRV: &[u8] = include_bytes!("../../shaders/compute.spv");
/// Workgroup width (specialization constant 0).
const LOCAL_SIZE: u32 = 64;
/// The `b` of `in[i] * a + b + i` (specialization constant 1).
const SPEC_B: u32 = 1_000_003;
/// At most this many workgroups along x; larger dispatches use a 2D grid.
const MAX_GROUPS_X: u32 = 4096;
/// What vkCmdFillBuffer writes into the output buffer before the dispatch.
const FILL_PATTERN: u32 = 0xDEAD_BEEF;
/// What vkCmdFillBuffer writes after the copied results in the readback buffer.
const TAIL_PATTERN: u32 = 0xCAFE_BABE;
/// Number of u32 words of the readback buffer filled with `TAIL_PATTERN`.
const TAIL_WORDS: u64 = 64;
/// Timeout of every wait (fence, timeline semaphore): 60 s.
const WAIT_TIMEOUT_NS: u64 = 60_000_000_000;
/// Name of the Khronos validation layer.
const VALIDATION_LAYER: &str = "VK_LAYER_KHRONOS_validation";

/// Validation (or performance) warnings and errors seen by the debug messenger.
static VALIDATION_MESSAGES: AtomicU32 = AtomicU32::new(0);
/// Other warnings and errors seen by the debug messenger (loader, driver).
static OTHER_MESSAGES: AtomicU32 = AtomicU32::new(0);

const USAGE: &str = "usage: venus-compute [--elements N] [--iterations K] [--quiet] \
[--require-validation]\n\
  --elements N          size of the large dispatch (default 1048576; 64 always runs too)\n\
  --iterations K        rounds of the whole dispatch for each size (default 2)\n\
  --quiet               print only FAIL lines and the final PASS/FAIL\n\
  --require-validation  FAIL unless the Khronos validation layer is active\n\
  --inject-validation-error  (tests only) make one invalid call, caught by the validation\n\
                        layer, to prove that validation messages make the run FAIL";

struct Options {
    elements: u32,
    iterations: u32,
    quiet: bool,
    require_validation: bool,
    inject_validation_error: bool,
}

fn parse_args() -> Result<Options, String> {
    let mut opts = Options {
        elements: 1 << 20,
        iterations: 2,
        quiet: false,
        require_validation: false,
        inject_validation_error: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<u32, String> {
            let v = inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))?;
            v.parse::<u32>()
                .map_err(|e| format!("{name} {v}: {e}"))
                .and_then(|n| {
                    if n == 0 {
                        Err(format!("{name} must be at least 1"))
                    } else {
                        Ok(n)
                    }
                })
        };
        match name.as_str() {
            "--elements" => opts.elements = value("--elements")?,
            "--iterations" => opts.iterations = value("--iterations")?,
            "--quiet" => opts.quiet = true,
            "--require-validation" => opts.require_validation = true,
            "--inject-validation-error" => opts.inject_validation_error = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(opts)
}

/// Counts and prints the checks.
struct Report {
    quiet: bool,
    checks: u32,
    failed: u32,
}

impl Report {
    fn check(&mut self, ok: bool, what: impl Display) -> bool {
        self.checks += 1;
        if ok {
            if !self.quiet {
                println!("ok {what}");
            }
        } else {
            self.failed += 1;
            println!("FAIL {what}");
        }
        ok
    }

    fn fail(&mut self, what: impl Display) {
        self.check(false, what);
    }

    fn info(&self, what: impl Display) {
        if !self.quiet {
            println!("   {what}");
        }
    }
}

/// A failure that stops the run (the rest of the program cannot go on without it).
type Fail = String;

trait VkContext<T> {
    fn ctx(self, what: &str) -> Result<T, Fail>;
}

impl<T> VkContext<T> for Result<T, vk::Result> {
    fn ctx(self, what: &str) -> Result<T, Fail> {
        self.map_err(|e| format!("{what} failed: {e}"))
    }
}

/// Everything created on the device, destroyed in reverse order.
#[derive(Clone)]
enum Obj {
    Buffer(vk::Buffer),
    Memory(vk::DeviceMemory),
    Mapped(vk::DeviceMemory),
    ShaderModule(vk::ShaderModule),
    SetLayout(vk::DescriptorSetLayout),
    DescriptorPool(vk::DescriptorPool),
    DescriptorSet(vk::DescriptorPool, vk::DescriptorSet),
    PipelineLayout(vk::PipelineLayout),
    PipelineCache(vk::PipelineCache),
    Pipeline(vk::Pipeline),
    CommandPool(vk::CommandPool),
    CommandBuffers(vk::CommandPool, Vec<vk::CommandBuffer>),
    Fence(vk::Fence),
    Semaphore(vk::Semaphore),
    Event(vk::Event),
    QueryPool(vk::QueryPool),
}

/// The instance, the device and the objects to destroy.
struct Vulkan {
    entry: ash::Entry,
    instance: Option<ash::Instance>,
    debug: Option<(ash::ext::debug_utils::Instance, vk::DebugUtilsMessengerEXT)>,
    device: Option<ash::Device>,
    objects: Vec<Obj>,
    /// The Khronos validation layer reported itself as an active tool.
    validation_active: bool,
}

impl Vulkan {
    fn device(&self) -> Result<&ash::Device, Fail> {
        self.device.as_ref().ok_or_else(|| "no device".to_string())
    }

    fn track(&mut self, obj: Obj) {
        self.objects.push(obj);
    }

    /// Destroys, newest first, the objects created since `mark` (a length of `objects`).
    fn release_to(&mut self, mark: usize, report: &mut Report) {
        let Some(device) = self.device.as_ref() else {
            self.objects.truncate(mark);
            return;
        };
        while self.objects.len() > mark {
            let Some(obj) = self.objects.pop() else {
                break;
            };
            // SAFETY: every tracked object was created on `device`, is destroyed once
            // (it is popped), and the device is idle (callers wait before releasing).
            unsafe {
                match obj {
                    Obj::Buffer(b) => device.destroy_buffer(b, None),
                    Obj::Memory(m) => device.free_memory(m, None),
                    Obj::Mapped(m) => device.unmap_memory(m),
                    Obj::ShaderModule(s) => device.destroy_shader_module(s, None),
                    Obj::SetLayout(l) => device.destroy_descriptor_set_layout(l, None),
                    Obj::DescriptorPool(p) => device.destroy_descriptor_pool(p, None),
                    Obj::DescriptorSet(p, s) => {
                        let r = device.free_descriptor_sets(p, &[s]);
                        report.check(r.is_ok(), format!("vkFreeDescriptorSets: {r:?}"));
                    }
                    Obj::PipelineLayout(l) => device.destroy_pipeline_layout(l, None),
                    Obj::PipelineCache(c) => device.destroy_pipeline_cache(c, None),
                    Obj::Pipeline(p) => device.destroy_pipeline(p, None),
                    Obj::CommandPool(p) => device.destroy_command_pool(p, None),
                    Obj::CommandBuffers(p, b) => device.free_command_buffers(p, &b),
                    Obj::Fence(f) => device.destroy_fence(f, None),
                    Obj::Semaphore(s) => device.destroy_semaphore(s, None),
                    Obj::Event(e) => device.destroy_event(e, None),
                    Obj::QueryPool(q) => device.destroy_query_pool(q, None),
                }
            }
        }
    }

    /// Waits for the device, destroys everything, then the device and the instance.
    fn destroy_all(&mut self, report: &mut Report) {
        if let Some(device) = self.device.as_ref() {
            // SAFETY: the device is valid; no other thread uses it.
            let idle = unsafe { device.device_wait_idle() };
            report.check(idle.is_ok(), format!("vkDeviceWaitIdle: {idle:?}"));
        }
        self.release_to(0, report);
        if let Some(device) = self.device.take() {
            // SAFETY: all its children were destroyed above; it is idle.
            unsafe { device.destroy_device(None) };
        }
        if let Some((debug_utils, messenger)) = self.debug.take() {
            // SAFETY: the messenger was created on this instance, which is still alive.
            unsafe { debug_utils.destroy_debug_utils_messenger(messenger, None) };
        }
        if let Some(instance) = self.instance.take() {
            // SAFETY: the device and the messenger, its only children, are destroyed.
            unsafe { instance.destroy_instance(None) };
        }
    }
}

/// Prints the messages of the debug messenger and counts warnings and errors.
unsafe extern "system" fn debug_callback(
    severity: vk::DebugUtilsMessageSeverityFlagsEXT,
    types: vk::DebugUtilsMessageTypeFlagsEXT,
    data: *const vk::DebugUtilsMessengerCallbackDataEXT<'_>,
    _user: *mut c_void,
) -> vk::Bool32 {
    let serious = severity.intersects(
        vk::DebugUtilsMessageSeverityFlagsEXT::WARNING
            | vk::DebugUtilsMessageSeverityFlagsEXT::ERROR,
    );
    if !serious {
        return vk::FALSE;
    }
    // SAFETY: the loader or layer passes a valid callback data struct (or null) whose
    // strings are NUL-terminated or null, valid for the duration of the call.
    let (id, message) = unsafe {
        match data.as_ref() {
            None => (String::new(), String::new()),
            Some(d) => (
                d.message_id_name_as_c_str()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                d.message_as_c_str()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
        }
    };
    let validation = types.intersects(
        vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION
            | vk::DebugUtilsMessageTypeFlagsEXT::PERFORMANCE,
    );
    if validation {
        VALIDATION_MESSAGES.fetch_add(1, Ordering::SeqCst);
        println!("validation message [{severity:?}] {id}: {message}");
    } else {
        OTHER_MESSAGES.fetch_add(1, Ordering::SeqCst);
        println!("debug message [{severity:?} {types:?}] {id}: {message}");
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

fn api_version_string(v: u32) -> String {
    format!(
        "{}.{}.{}",
        vk::api_version_major(v),
        vk::api_version_minor(v),
        vk::api_version_patch(v)
    )
}

/// Device-level state shared by every dispatch.
struct Setup {
    queue: vk::Queue,
    memory: vk::PhysicalDeviceMemoryProperties,
    limits: vk::PhysicalDeviceLimits,
    timestamp_bits: u32,
    set_layout: vk::DescriptorSetLayout,
    descriptor_pool: vk::DescriptorPool,
    pipeline_layout: vk::PipelineLayout,
    pipelines: [vk::Pipeline; 2],
    command_buffers: [vk::CommandBuffer; 2],
    fence: vk::Fence,
    binary: vk::Semaphore,
    timeline: vk::Semaphore,
    event: vk::Event,
    query_pool: vk::QueryPool,
    /// Rounds run so far (over all sizes); drives the timeline values and the data.
    round: u64,
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("venus-compute: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut report = Report {
        quiet: opts.quiet,
        checks: 0,
        failed: 0,
    };

    // SAFETY: loads libvulkan.so.1 (the system Vulkan loader) and runs its
    // initialisers; nothing else in this process is loading it concurrently.
    let entry = match unsafe { ash::Entry::load() } {
        Ok(e) => e,
        Err(e) => {
            report.fail(format!("load the Vulkan loader (libvulkan.so.1): {e}"));
            println!("FAIL");
            return ExitCode::FAILURE;
        }
    };
    let mut vulkan = Vulkan {
        entry,
        instance: None,
        debug: None,
        device: None,
        objects: Vec::new(),
        validation_active: false,
    };
    if let Err(e) = run(&opts, &mut vulkan, &mut report) {
        report.fail(e);
    }
    vulkan.destroy_all(&mut report);

    let validation = VALIDATION_MESSAGES.load(Ordering::SeqCst);
    report.check(
        validation == 0,
        format!("validation warnings and errors: {validation}"),
    );
    let other = OTHER_MESSAGES.load(Ordering::SeqCst);
    if other != 0 {
        report.info(format!("other debug warnings and errors: {other}"));
    }
    if !opts.quiet {
        println!(
            "summary: {} checks, {} failed",
            report.checks, report.failed
        );
    }
    if report.failed == 0 {
        println!("PASS");
        ExitCode::SUCCESS
    } else {
        println!("FAIL");
        ExitCode::FAILURE
    }
}

fn run(opts: &Options, vk_: &mut Vulkan, report: &mut Report) -> Result<(), Fail> {
    let physical = create_instance(opts, vk_, report)?;
    let mut setup = create_device(vk_, physical, report)?;
    if opts.inject_validation_error {
        inject_validation_error(vk_, report)?;
    }

    let mut sizes = vec![64u32];
    if opts.elements != 64 {
        sizes.push(opts.elements);
    }
    for (index, &n) in sizes.iter().enumerate() {
        // The first size uses the pipeline built with the fresh cache, the second the
        // one built with the cache seeded from its data.
        let pipeline = setup.pipelines[index % 2];
        run_size(vk_, &mut setup, pipeline, n, opts.iterations, report)?;
    }
    Ok(())
}

fn create_instance(
    opts: &Options,
    vk_: &mut Vulkan,
    report: &mut Report,
) -> Result<vk::PhysicalDevice, Fail> {
    let entry = &vk_.entry;
    // SAFETY: plain global query on a loaded entry.
    let loader_version = unsafe { entry.try_enumerate_instance_version() }
        .ctx("vkEnumerateInstanceVersion")?
        .unwrap_or(vk::API_VERSION_1_0);
    report.check(
        loader_version >= vk::API_VERSION_1_2,
        format!(
            "loader instance version {} (1.2 needed)",
            api_version_string(loader_version)
        ),
    );
    let api = if loader_version >= vk::API_VERSION_1_3 {
        vk::API_VERSION_1_3
    } else {
        vk::API_VERSION_1_2
    };

    // SAFETY: plain global queries on a loaded entry.
    let layers = unsafe { entry.enumerate_instance_layer_properties() }
        .ctx("vkEnumerateInstanceLayerProperties")?;
    let validation_installed = layers.iter().any(|l| {
        l.layer_name_as_c_str()
            .is_ok_and(|n| n.to_bytes() == VALIDATION_LAYER.as_bytes())
    });
    report.info(format!(
        "{VALIDATION_LAYER} installed: {}",
        if validation_installed { "yes" } else { "no" }
    ));
    // SAFETY: as above.
    let extensions = unsafe { entry.enumerate_instance_extension_properties(None) }
        .ctx("vkEnumerateInstanceExtensionProperties")?;
    let has_debug_utils = extensions.iter().any(|e| {
        e.extension_name_as_c_str()
            .is_ok_and(|n| n == ash::ext::debug_utils::NAME)
    });
    report.check(
        has_debug_utils,
        "instance extension VK_EXT_debug_utils available",
    );

    let app = vk::ApplicationInfo::default()
        .application_name(c"venus-compute")
        .application_version(1)
        .engine_name(c"venus-tests")
        .api_version(api);
    let ext_names: Vec<*const std::ffi::c_char> = if has_debug_utils {
        vec![ash::ext::debug_utils::NAME.as_ptr()]
    } else {
        Vec::new()
    };
    let mut instance_messenger = messenger_info();
    let mut info = vk::InstanceCreateInfo::default()
        .application_info(&app)
        .enabled_extension_names(&ext_names);
    if has_debug_utils {
        // Catches messages of vkCreateInstance / vkDestroyInstance themselves.
        info = info.push_next(&mut instance_messenger);
    }
    // SAFETY: `info` and everything it points to live until the call returns.
    let instance = unsafe { entry.create_instance(&info, None) }.ctx("vkCreateInstance")?;
    report.check(
        true,
        format!("vkCreateInstance (API {})", api_version_string(api)),
    );

    if has_debug_utils {
        let debug_utils = ash::ext::debug_utils::Instance::new(entry, &instance);
        // SAFETY: the instance was created with VK_EXT_debug_utils enabled.
        match unsafe { debug_utils.create_debug_utils_messenger(&messenger_info(), None) } {
            Ok(m) => vk_.debug = Some((debug_utils, m)),
            Err(e) => report.fail(format!("vkCreateDebugUtilsMessengerEXT failed: {e}")),
        }
    }
    vk_.instance = Some(instance);
    let Some(instance) = vk_.instance.as_ref() else {
        return Err("no instance".into());
    };

    // SAFETY: valid instance.
    let physicals =
        unsafe { instance.enumerate_physical_devices() }.ctx("vkEnumeratePhysicalDevices")?;
    let Some(&physical) = physicals.first() else {
        return Err("no physical device".into());
    };
    // SAFETY: `physical` comes from this instance.
    let props = unsafe { instance.get_physical_device_properties(physical) };
    let name = props
        .device_name_as_c_str()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "<unterminated name>".into());
    report.check(
        true,
        format!(
            "physical device 0 of {}: {name} (API {}, vendor 0x{:x}, device 0x{:x})",
            physicals.len(),
            api_version_string(props.api_version),
            props.vendor_id,
            props.device_id
        ),
    );
    report.check(
        props.api_version >= vk::API_VERSION_1_2,
        format!(
            "device API version {} (1.2 needed)",
            api_version_string(props.api_version)
        ),
    );

    // Is the validation layer active? It reports itself as a tool (VK_EXT_tooling_info,
    // core in 1.3), which enumerating installed layers cannot tell.
    let tools = tool_names(vk_, physical, props.api_version, api, validation_installed)?;
    report.info(format!("active tools: {tools:?}"));
    let active = tools.iter().any(|t| t.contains("Validation"));
    if opts.require_validation {
        report.check(
            active,
            "validation layer active (reported by vkGetPhysicalDeviceToolProperties[EXT])",
        );
    } else {
        report.info(format!(
            "validation layer active: {}",
            if active { "yes" } else { "no" }
        ));
    }
    vk_.validation_active = active;
    Ok(physical)
}

/// Makes one invalid call (vkCreateBuffer with size 0, VUID-VkBufferCreateInfo-size-00912)
/// so that a test can prove the validation messages are seen and fail the run. Only done
/// when the validation layer is active: it stops the call before it reaches the driver
/// (VK_ERROR_VALIDATION_FAILED_EXT), so the driver never sees invalid usage.
fn inject_validation_error(vk_: &mut Vulkan, report: &mut Report) -> Result<(), Fail> {
    if !vk_.validation_active {
        report.fail("--inject-validation-error needs the validation layer active");
        return Ok(());
    }
    let device = vk_.device()?.clone();
    let info = vk::BufferCreateInfo::default()
        .size(0)
        .usage(vk::BufferUsageFlags::STORAGE_BUFFER)
        .sharing_mode(vk::SharingMode::EXCLUSIVE);
    // SAFETY: deliberately invalid (size 0), but the active validation layer rejects it
    // before the driver; a buffer it might still return is tracked and destroyed.
    let result = unsafe { device.create_buffer(&info, None) };
    report.info(format!(
        "injected invalid vkCreateBuffer(size 0): {result:?}"
    ));
    if let Ok(buffer) = result {
        vk_.track(Obj::Buffer(buffer));
    }
    Ok(())
}

/// Names of the active tools (layers that report themselves through tooling info).
///
/// Core vkGetPhysicalDeviceToolProperties (1.3) is asked first. The validation layer
/// 1.3.239 reports itself only through the VK_EXT_tooling_info entry point (which it
/// implements itself, and advertises as a layer device extension that
/// vkEnumerateDeviceExtensionProperties(NULL) does not list), so that one is asked too
/// when the device has the extension or the validation layer is installed.
fn tool_names(
    vk_: &Vulkan,
    physical: vk::PhysicalDevice,
    device_api: u32,
    instance_api: u32,
    validation_installed: bool,
) -> Result<Vec<String>, Fail> {
    let Some(instance) = vk_.instance.as_ref() else {
        return Err("no instance".into());
    };
    let name = |t: &vk::PhysicalDeviceToolProperties<'_>| {
        t.name_as_c_str()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut names = Vec::new();
    if device_api >= vk::API_VERSION_1_3 && instance_api >= vk::API_VERSION_1_3 {
        // SAFETY: core 1.3 query on a 1.3 instance and device; `out` has `len` elements.
        unsafe {
            let len = instance
                .get_physical_device_tool_properties_len(physical)
                .ctx("vkGetPhysicalDeviceToolProperties")?;
            let mut out = vec![vk::PhysicalDeviceToolProperties::default(); len];
            instance
                .get_physical_device_tool_properties(physical, &mut out)
                .ctx("vkGetPhysicalDeviceToolProperties")?;
            names.extend(out.iter().map(name));
        }
    }
    // SAFETY: `physical` belongs to this instance.
    let exts = unsafe { instance.enumerate_device_extension_properties(physical) }
        .ctx("vkEnumerateDeviceExtensionProperties")?;
    let device_has_ext = exts.iter().any(|e| {
        e.extension_name_as_c_str()
            .is_ok_and(|n| n == ash::ext::tooling_info::NAME)
    });
    if device_has_ext || validation_installed {
        let tooling = ash::ext::tooling_info::Instance::new(&vk_.entry, instance);
        // SAFETY: a physical-device query; the entry point is the loader's trampoline,
        // which answers with no tools when neither a layer nor the driver implements it.
        let tools = unsafe { tooling.get_physical_device_tool_properties(physical) }
            .ctx("vkGetPhysicalDeviceToolPropertiesEXT")?;
        for t in tools.iter().map(name) {
            if !names.contains(&t) {
                names.push(t);
            }
        }
    }
    Ok(names)
}

fn create_device(
    vk_: &mut Vulkan,
    physical: vk::PhysicalDevice,
    report: &mut Report,
) -> Result<Setup, Fail> {
    let Some(instance) = vk_.instance.as_ref() else {
        return Err("no instance".into());
    };
    // SAFETY: `physical` belongs to this instance.
    let (props, memory, families) = unsafe {
        (
            instance.get_physical_device_properties(physical),
            instance.get_physical_device_memory_properties(physical),
            instance.get_physical_device_queue_family_properties(physical),
        )
    };
    let Some(family) = families
        .iter()
        .position(|f| f.queue_flags.contains(vk::QueueFlags::COMPUTE))
    else {
        return Err("no queue family with VK_QUEUE_COMPUTE_BIT".into());
    };
    let timestamp_bits = families[family].timestamp_valid_bits;
    report.check(
        true,
        format!(
            "queue family {family} of {}: {:?}, timestampValidBits {timestamp_bits}",
            families.len(),
            families[family].queue_flags
        ),
    );
    report.check(
        props.limits.timestamp_period > 0.0,
        format!(
            "timestampPeriod {} ns is non-zero",
            props.limits.timestamp_period
        ),
    );
    report.check(
        timestamp_bits > 0,
        format!("queue family supports timestamps ({timestamp_bits} valid bits)"),
    );
    for (i, t) in memory.memory_types[..memory.memory_type_count as usize]
        .iter()
        .enumerate()
    {
        report.info(format!(
            "memory type {i}: heap {} {:?}",
            t.heap_index, t.property_flags
        ));
    }

    let mut v12 = vk::PhysicalDeviceVulkan12Features::default();
    let mut feats2 = vk::PhysicalDeviceFeatures2::default().push_next(&mut v12);
    // SAFETY: the device is 1.2+ (checked by the caller's report; the query itself is
    // core 1.1 and valid on a 1.2 instance); `feats2` chains a valid struct.
    unsafe { instance.get_physical_device_features2(physical, &mut feats2) };
    let timeline_supported = v12.timeline_semaphore == vk::TRUE;
    if !report.check(timeline_supported, "feature timelineSemaphore supported") {
        return Err("timeline semaphores are required".into());
    }

    let priorities = [1.0f32];
    let queue_info = [vk::DeviceQueueCreateInfo::default()
        .queue_family_index(family as u32)
        .queue_priorities(&priorities)];
    let mut enable12 = vk::PhysicalDeviceVulkan12Features::default().timeline_semaphore(true);
    let device_info = vk::DeviceCreateInfo::default()
        .queue_create_infos(&queue_info)
        .push_next(&mut enable12);
    // SAFETY: `device_info` and what it points to outlive the call; the enabled feature
    // is supported (checked above).
    let device =
        unsafe { instance.create_device(physical, &device_info, None) }.ctx("vkCreateDevice")?;
    report.check(true, "vkCreateDevice with timelineSemaphore");
    vk_.device = Some(device);
    let device = vk_.device()?.clone();

    // SAFETY: family `family` with one queue was requested at device creation.
    let queue = unsafe { device.get_device_queue(family as u32, 0) };

    // Descriptor set layout, pool, pipeline layout with a push-constant range.
    let bindings = [
        vk::DescriptorSetLayoutBinding::default()
            .binding(0)
            .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
            .descriptor_count(1)
            .stage_flags(vk::ShaderStageFlags::COMPUTE),
        vk::DescriptorSetLayoutBinding::default()
            .binding(1)
            .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
            .descriptor_count(1)
            .stage_flags(vk::ShaderStageFlags::COMPUTE),
    ];
    // SAFETY: valid device, create infos that live until the call returns; every
    // object is tracked for destruction (the same holds for the creations below).
    let set_layout = unsafe {
        device.create_descriptor_set_layout(
            &vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings),
            None,
        )
    }
    .ctx("vkCreateDescriptorSetLayout")?;
    vk_.track(Obj::SetLayout(set_layout));
    let pool_sizes = [vk::DescriptorPoolSize::default()
        .ty(vk::DescriptorType::STORAGE_BUFFER)
        .descriptor_count(2)];
    // SAFETY: see above.
    let descriptor_pool = unsafe {
        device.create_descriptor_pool(
            &vk::DescriptorPoolCreateInfo::default()
                .flags(vk::DescriptorPoolCreateFlags::FREE_DESCRIPTOR_SET)
                .max_sets(1)
                .pool_sizes(&pool_sizes),
            None,
        )
    }
    .ctx("vkCreateDescriptorPool")?;
    vk_.track(Obj::DescriptorPool(descriptor_pool));
    let push_ranges = [vk::PushConstantRange::default()
        .stage_flags(vk::ShaderStageFlags::COMPUTE)
        .offset(0)
        .size(12)];
    let set_layouts = [set_layout];
    // SAFETY: see above.
    let pipeline_layout = unsafe {
        device.create_pipeline_layout(
            &vk::PipelineLayoutCreateInfo::default()
                .set_layouts(&set_layouts)
                .push_constant_ranges(&push_ranges),
            None,
        )
    }
    .ctx("vkCreatePipelineLayout")?;
    vk_.track(Obj::PipelineLayout(pipeline_layout));
    report.check(
        true,
        "descriptor set layout (2 storage buffers), descriptor pool, pipeline layout with a 12-byte push-constant range",
    );

    // Shader module from the embedded SPIR-V.
    let code = ash::util::read_spv(&mut Cursor::new(SPIRV))
        .map_err(|e| format!("embedded SPIR-V is malformed: {e}"))?;
    // SAFETY: see above; `code` is SPIR-V validated by spirv-val at build time.
    let module = unsafe {
        device.create_shader_module(&vk::ShaderModuleCreateInfo::default().code(&code), None)
    }
    .ctx("vkCreateShaderModule")?;
    vk_.track(Obj::ShaderModule(module));

    // Pipeline cache, pipeline with specialization constants.
    // SAFETY: see above.
    let cache =
        unsafe { device.create_pipeline_cache(&vk::PipelineCacheCreateInfo::default(), None) }
            .ctx("vkCreatePipelineCache")?;
    vk_.track(Obj::PipelineCache(cache));
    let pipeline = create_pipeline(&device, module, pipeline_layout, cache)?;
    vk_.track(Obj::Pipeline(pipeline));
    report.check(
        true,
        format!("compute pipeline from SPIR-V ({} bytes) with specialization constants local_size_x={LOCAL_SIZE} b={SPEC_B}", SPIRV.len()),
    );

    // SAFETY: valid device and cache.
    let data = unsafe { device.get_pipeline_cache_data(cache) }.ctx("vkGetPipelineCacheData")?;
    check_cache_header(&data, &props, report);
    // SAFETY: see above; `data` came from vkGetPipelineCacheData of this device.
    let cache2 = unsafe {
        device.create_pipeline_cache(
            &vk::PipelineCacheCreateInfo::default().initial_data(&data),
            None,
        )
    }
    .ctx("vkCreatePipelineCache (with initial data)")?;
    vk_.track(Obj::PipelineCache(cache2));
    // SAFETY: both caches belong to this device and are not used concurrently.
    unsafe { device.merge_pipeline_caches(cache2, &[cache]) }.ctx("vkMergePipelineCaches")?;
    let pipeline2 = create_pipeline(&device, module, pipeline_layout, cache2)?;
    vk_.track(Obj::Pipeline(pipeline2));
    report.check(
        true,
        "second pipeline cache seeded with the first one's data, merged, second pipeline created",
    );

    // Command pool and two command buffers.
    // SAFETY: see above.
    let command_pool = unsafe {
        device.create_command_pool(
            &vk::CommandPoolCreateInfo::default()
                .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER)
                .queue_family_index(family as u32),
            None,
        )
    }
    .ctx("vkCreateCommandPool")?;
    vk_.track(Obj::CommandPool(command_pool));
    // SAFETY: see above.
    let cbs = unsafe {
        device.allocate_command_buffers(
            &vk::CommandBufferAllocateInfo::default()
                .command_pool(command_pool)
                .level(vk::CommandBufferLevel::PRIMARY)
                .command_buffer_count(2),
        )
    }
    .ctx("vkAllocateCommandBuffers")?;
    vk_.track(Obj::CommandBuffers(command_pool, cbs.clone()));
    let [cb_a, cb_b] = cbs[..] else {
        return Err(format!(
            "vkAllocateCommandBuffers returned {} buffers",
            cbs.len()
        ));
    };

    // Synchronization objects.
    // SAFETY: see above.
    let fence = unsafe { device.create_fence(&vk::FenceCreateInfo::default(), None) }
        .ctx("vkCreateFence")?;
    vk_.track(Obj::Fence(fence));
    // SAFETY: see above.
    let binary = unsafe { device.create_semaphore(&vk::SemaphoreCreateInfo::default(), None) }
        .ctx("vkCreateSemaphore (binary)")?;
    vk_.track(Obj::Semaphore(binary));
    let mut type_info = vk::SemaphoreTypeCreateInfo::default()
        .semaphore_type(vk::SemaphoreType::TIMELINE)
        .initial_value(0);
    // SAFETY: see above; timelineSemaphore is enabled.
    let timeline = unsafe {
        device.create_semaphore(
            &vk::SemaphoreCreateInfo::default().push_next(&mut type_info),
            None,
        )
    }
    .ctx("vkCreateSemaphore (timeline)")?;
    vk_.track(Obj::Semaphore(timeline));
    // SAFETY: see above.
    let event = unsafe { device.create_event(&vk::EventCreateInfo::default(), None) }
        .ctx("vkCreateEvent")?;
    vk_.track(Obj::Event(event));
    // SAFETY: see above.
    let query_pool = unsafe {
        device.create_query_pool(
            &vk::QueryPoolCreateInfo::default()
                .query_type(vk::QueryType::TIMESTAMP)
                .query_count(2),
            None,
        )
    }
    .ctx("vkCreateQueryPool")?;
    vk_.track(Obj::QueryPool(query_pool));
    report.check(
        true,
        "command pool, 2 command buffers, fence, binary and timeline semaphores, event, timestamp query pool",
    );

    // SAFETY: freshly created timeline semaphore.
    let initial = unsafe { device.get_semaphore_counter_value(timeline) };
    report.check(
        initial == Ok(0),
        format!("timeline semaphore initial value: {initial:?}"),
    );
    // SAFETY: freshly created event.
    let status = unsafe { device.get_event_status(event) };
    report.check(
        status == Ok(false),
        format!("new event is unsignaled: {status:?}"),
    );
    // SAFETY: freshly created fence.
    let status = unsafe { device.get_fence_status(fence) };
    report.check(
        status == Ok(false),
        format!("new fence is unsignaled: {status:?}"),
    );

    Ok(Setup {
        queue,
        memory,
        limits: props.limits,
        timestamp_bits,
        set_layout,
        descriptor_pool,
        pipeline_layout,
        pipelines: [pipeline, pipeline2],
        command_buffers: [cb_a, cb_b],
        fence,
        binary,
        timeline,
        event,
        query_pool,
        round: 0,
    })
}

fn create_pipeline(
    device: &ash::Device,
    module: vk::ShaderModule,
    layout: vk::PipelineLayout,
    cache: vk::PipelineCache,
) -> Result<vk::Pipeline, Fail> {
    let map = [
        vk::SpecializationMapEntry::default()
            .constant_id(0)
            .offset(0)
            .size(4),
        vk::SpecializationMapEntry::default()
            .constant_id(1)
            .offset(4)
            .size(4),
    ];
    let mut spec_data = Vec::with_capacity(8);
    spec_data.extend_from_slice(&LOCAL_SIZE.to_ne_bytes());
    spec_data.extend_from_slice(&SPEC_B.to_ne_bytes());
    let spec = vk::SpecializationInfo::default()
        .map_entries(&map)
        .data(&spec_data);
    let stage = vk::PipelineShaderStageCreateInfo::default()
        .stage(vk::ShaderStageFlags::COMPUTE)
        .module(module)
        .name(c"main")
        .specialization_info(&spec);
    let info = [vk::ComputePipelineCreateInfo::default()
        .stage(stage)
        .layout(layout)];
    // SAFETY: valid device, module, layout and cache; `info` lives until the call returns.
    match unsafe { device.create_compute_pipelines(cache, &info, None) } {
        Ok(p) if p.len() == 1 => Ok(p[0]),
        Ok(p) => Err(format!(
            "vkCreateComputePipelines returned {} pipelines",
            p.len()
        )),
        Err((_, e)) => Err(format!("vkCreateComputePipelines failed: {e}")),
    }
}

/// Checks the header of vkGetPipelineCacheData (VK_PIPELINE_CACHE_HEADER_VERSION_ONE).
fn check_cache_header(data: &[u8], props: &vk::PhysicalDeviceProperties, report: &mut Report) {
    let word = |i: usize| -> Option<u32> {
        data.get(i * 4..i * 4 + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    let (Some(size), Some(version), Some(vendor), Some(device)) =
        (word(0), word(1), word(2), word(3))
    else {
        report.fail(format!(
            "pipeline cache data too short for a header: {} bytes",
            data.len()
        ));
        return;
    };
    let uuid = data.get(16..32);
    let ok = size >= 32
        && data.len() >= size as usize
        && version == vk::PipelineCacheHeaderVersion::ONE.as_raw() as u32
        && vendor == props.vendor_id
        && device == props.device_id
        && uuid == Some(&props.pipeline_cache_uuid[..]);
    report.check(
        ok,
        format!(
            "pipeline cache data ({} bytes): header size {size}, version {version}, vendor 0x{vendor:x}, device 0x{device:x}, uuid {} the device's pipelineCacheUUID",
            data.len(),
            if uuid == Some(&props.pipeline_cache_uuid[..]) { "matches" } else { "DOES NOT match" }
        ),
    );
}

fn find_memory_type(
    memory: &vk::PhysicalDeviceMemoryProperties,
    type_bits: u32,
    required: vk::MemoryPropertyFlags,
    avoid: vk::MemoryPropertyFlags,
) -> Option<u32> {
    (0..memory.memory_type_count).find(|&i| {
        let flags = memory.memory_types[i as usize].property_flags;
        type_bits & (1 << i) != 0 && flags.contains(required) && !flags.intersects(avoid)
    })
}

/// Which memory a buffer goes in.
#[derive(Clone, Copy, PartialEq)]
enum Placement {
    /// HOST_VISIBLE | HOST_COHERENT.
    Coherent,
    /// HOST_VISIBLE without HOST_COHERENT if there is one, otherwise coherent.
    PreferNonCoherent,
    /// DEVICE_LOCAL if possible, otherwise anything.
    Device,
}

struct BufferMem {
    buffer: vk::Buffer,
    memory: vk::DeviceMemory,
    coherent: bool,
    mapped: *mut c_void,
}

fn create_buffer(
    vk_: &mut Vulkan,
    setup: &Setup,
    size: u64,
    usage: vk::BufferUsageFlags,
    placement: Placement,
) -> Result<BufferMem, Fail> {
    let device = vk_.device()?.clone();
    // SAFETY: valid device; the buffer is tracked for destruction.
    let buffer = unsafe {
        device.create_buffer(
            &vk::BufferCreateInfo::default()
                .size(size)
                .usage(usage)
                .sharing_mode(vk::SharingMode::EXCLUSIVE),
            None,
        )
    }
    .ctx("vkCreateBuffer")?;
    vk_.track(Obj::Buffer(buffer));
    // SAFETY: valid buffer.
    let req = unsafe { device.get_buffer_memory_requirements(buffer) };
    use vk::MemoryPropertyFlags as F;
    let none = F::empty();
    let index = match placement {
        Placement::Coherent => find_memory_type(
            &setup.memory,
            req.memory_type_bits,
            F::HOST_VISIBLE | F::HOST_COHERENT,
            none,
        ),
        Placement::PreferNonCoherent => find_memory_type(
            &setup.memory,
            req.memory_type_bits,
            F::HOST_VISIBLE,
            F::HOST_COHERENT,
        )
        .or_else(|| {
            find_memory_type(
                &setup.memory,
                req.memory_type_bits,
                F::HOST_VISIBLE | F::HOST_COHERENT,
                none,
            )
        }),
        Placement::Device => {
            find_memory_type(&setup.memory, req.memory_type_bits, F::DEVICE_LOCAL, none)
                .or_else(|| find_memory_type(&setup.memory, req.memory_type_bits, none, none))
        }
    }
    .ok_or_else(|| format!("no memory type for a buffer of usage {usage:?}"))?;
    let flags = setup.memory.memory_types[index as usize].property_flags;
    // SAFETY: valid device; the allocation is tracked (freed after the buffer).
    let memory = unsafe {
        device.allocate_memory(
            &vk::MemoryAllocateInfo::default()
                .allocation_size(req.size)
                .memory_type_index(index),
            None,
        )
    }
    .ctx("vkAllocateMemory")?;
    vk_.track(Obj::Memory(memory));
    // Destroy the buffer before freeing its memory: move the buffer after the memory.
    let len = vk_.objects.len();
    vk_.objects.swap(len - 1, len - 2);
    // SAFETY: unbound buffer, memory of a type allowed by its requirements, offset 0.
    unsafe { device.bind_buffer_memory(buffer, memory, 0) }.ctx("vkBindBufferMemory")?;
    let mut mapped = std::ptr::null_mut();
    if placement != Placement::Device {
        // SAFETY: host-visible memory, not mapped yet; unmapped before it is freed.
        mapped =
            unsafe { device.map_memory(memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty()) }
                .ctx("vkMapMemory")?;
        vk_.track(Obj::Mapped(memory));
        if mapped.is_null() {
            return Err("vkMapMemory returned a null pointer".into());
        }
        let align = setup.limits.min_memory_map_alignment.max(4);
        let aligned = align.is_power_of_two() && (mapped as usize) & (align - 1) == 0;
        if !aligned {
            return Err(format!(
                "vkMapMemory returned a misaligned pointer {mapped:p}"
            ));
        }
    }
    Ok(BufferMem {
        buffer,
        memory,
        coherent: flags.contains(F::HOST_COHERENT),
        mapped,
    })
}

/// The input value of element `i` in round `round`.
fn input_value(i: u32, round: u64) -> u32 {
    i.wrapping_mul(2_654_435_761) ^ (round as u32).wrapping_mul(0x9E37_79B9) ^ 0x5555_0000
}

/// The multiplier `a` (a push constant) of round `round`.
fn multiplier(round: u64) -> u32 {
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

fn run_size(
    vk_: &mut Vulkan,
    setup: &mut Setup,
    pipeline: vk::Pipeline,
    n: u32,
    iterations: u32,
    report: &mut Report,
) -> Result<(), Fail> {
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

    for iteration in 0..iterations {
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
        record(
            &device,
            setup,
            pipeline,
            set,
            [&output, &readback, &readback2],
            grid,
            round,
        )?;

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
    Ok(())
}

/// The shape of one dispatch.
#[derive(Clone, Copy)]
struct Grid {
    n: u32,
    gx: u32,
    gy: u32,
    row_elements: u32,
}

/// Records the two command buffers of a round (see `run_size`).
fn record(
    device: &ash::Device,
    setup: &Setup,
    pipeline: vk::Pipeline,
    set: vk::DescriptorSet,
    [output, readback, readback2]: [&BufferMem; 3],
    Grid {
        n,
        gx,
        gy,
        row_elements,
    }: Grid,
    round: u64,
) -> Result<(), Fail> {
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

    // SAFETY: the command buffers come from a pool with RESET_COMMAND_BUFFER and their
    // previous submission finished (fence waited); every handle used is valid; the
    // barriers order fill -> dispatch -> copy/fill -> host read.
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
    Ok(())
}

/// Submits the two command buffers of a round:
/// A waits for the host-signalled timeline value, signals the binary semaphore and the
/// timeline value `a_value`; B waits for the binary semaphore, signals `b_value` and the
/// fence.
fn submit(
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
