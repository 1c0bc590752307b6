//! `venus-macos-like-probe`: a tiny Vulkan program that exercises what
//! `VK_LAYER_VENUS_macos_like` changes, through the real loader. The layers
//! come from the environment (`VK_INSTANCE_LAYERS`, `VK_ADD_LAYER_PATH`), so
//! the same program runs with and without the layer.
//!
//! ```text
//! venus-macos-like-probe info                  extensions, alignment, external-handle caps
//! venus-macos-like-probe import OFFSET SIZE    host-pointer import at a 16 KiB-aligned base + OFFSET
//! venus-macos-like-probe map OFFSET            vkMapMemory of 64 KiB memory at OFFSET
//! venus-macos-like-probe map2 OFFSET           the same with vkMapMemory2KHR
//! venus-macos-like-probe write-manifest DIR    VkLayer_venus_macos_like.json naming the built layer
//! ```
//!
//! Output is `key=value` lines; validation messages (warnings and errors,
//! through `VK_EXT_debug_utils`) are printed as `validation-message ...` and
//! counted in a final `validation-messages=N` line.

use std::ffi::{c_void, CStr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use ash::vk;

/// Apple page size, the layer's alignment.
const PAGE: usize = 16384;

/// The layer library's file name.
const LAYER_LIBRARY: &str = "libVkLayer_venus_macos_like.so";

type Result<T> = std::result::Result<T, String>;

static VALIDATION_MESSAGES: AtomicU32 = AtomicU32::new(0);

unsafe extern "system" fn debug_callback(
    severity: vk::DebugUtilsMessageSeverityFlagsEXT,
    types: vk::DebugUtilsMessageTypeFlagsEXT,
    p_data: *const vk::DebugUtilsMessengerCallbackDataEXT<'_>,
    _user: *mut c_void,
) -> vk::Bool32 {
    let text = if p_data.is_null() {
        String::new()
    } else {
        // SAFETY: the loader passes valid callback data for this call.
        let data = unsafe { &*p_data };
        // SAFETY: as above, the message is NUL-terminated when non-null.
        unsafe { data.message_as_c_str() }
            .map(|m| m.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    if types.contains(vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION) {
        VALIDATION_MESSAGES.fetch_add(1, Ordering::Relaxed);
        println!("validation-message severity={severity:?} {text}");
    } else {
        println!("debug-message severity={severity:?} types={types:?} {text}");
    }
    vk::FALSE
}

/// An instance, its first physical device and an optional messenger.
struct Probe {
    entry: ash::Entry,
    instance: ash::Instance,
    physical_device: vk::PhysicalDevice,
    messenger: Option<(ash::ext::debug_utils::Instance, vk::DebugUtilsMessengerEXT)>,
}

impl Probe {
    fn new() -> Result<Self> {
        // SAFETY: loads the system Vulkan loader.
        let entry = unsafe { ash::Entry::load() }.map_err(|e| format!("loading Vulkan: {e}"))?;
        // SAFETY: a global query.
        let available = unsafe { entry.enumerate_instance_extension_properties(None) }
            .map_err(|e| format!("instance extensions: {e}"))?;
        let has_debug_utils = available
            .iter()
            .any(|e| e.extension_name_as_c_str() == Ok(ash::ext::debug_utils::NAME));
        let mut extensions = Vec::new();
        if has_debug_utils {
            extensions.push(ash::ext::debug_utils::NAME.as_ptr());
        }
        let app = vk::ApplicationInfo::default()
            .application_name(c"venus-macos-like-probe")
            .api_version(vk::API_VERSION_1_3);
        let mut messenger_info = vk::DebugUtilsMessengerCreateInfoEXT::default()
            .message_severity(
                vk::DebugUtilsMessageSeverityFlagsEXT::WARNING
                    | vk::DebugUtilsMessageSeverityFlagsEXT::ERROR,
            )
            .message_type(
                vk::DebugUtilsMessageTypeFlagsEXT::GENERAL
                    | vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION
                    | vk::DebugUtilsMessageTypeFlagsEXT::PERFORMANCE,
            )
            .pfn_user_callback(Some(debug_callback));
        let mut info = vk::InstanceCreateInfo::default()
            .application_info(&app)
            .enabled_extension_names(&extensions);
        if has_debug_utils {
            info = info.push_next(&mut messenger_info);
        }
        // SAFETY: valid create info.
        let instance = unsafe { entry.create_instance(&info, None) }
            .map_err(|e| format!("vkCreateInstance: {e:?}"))?;
        let messenger = if has_debug_utils {
            let loader = ash::ext::debug_utils::Instance::new(&entry, &instance);
            // SAFETY: valid create info on a live instance.
            let m = unsafe { loader.create_debug_utils_messenger(&messenger_info, None) }
                .map_err(|e| format!("messenger: {e:?}"))?;
            Some((loader, m))
        } else {
            None
        };
        // SAFETY: live instance.
        let devices = unsafe { instance.enumerate_physical_devices() }
            .map_err(|e| format!("vkEnumeratePhysicalDevices: {e:?}"))?;
        let physical_device = *devices.first().ok_or("no physical device")?;
        Ok(Self {
            entry,
            instance,
            physical_device,
            messenger,
        })
    }

    fn device_extensions(&self) -> Result<Vec<String>> {
        // SAFETY: live physical device.
        let props = unsafe {
            self.instance
                .enumerate_device_extension_properties(self.physical_device)
        }
        .map_err(|e| format!("device extensions: {e:?}"))?;
        Ok(props
            .iter()
            .filter_map(|p| p.extension_name_as_c_str().ok())
            .map(|n| n.to_string_lossy().into_owned())
            .collect())
    }

    fn create_device(&self, extensions: &[&CStr]) -> std::result::Result<ash::Device, vk::Result> {
        let priorities = [1.0f32];
        let queue = [vk::DeviceQueueCreateInfo::default()
            .queue_family_index(0)
            .queue_priorities(&priorities)];
        let names: Vec<_> = extensions.iter().map(|e| e.as_ptr()).collect();
        let info = vk::DeviceCreateInfo::default()
            .queue_create_infos(&queue)
            .enabled_extension_names(&names);
        // SAFETY: valid create info on a live physical device.
        unsafe {
            self.instance
                .create_device(self.physical_device, &info, None)
        }
    }

    /// A memory type index among `bits` with `flags`.
    fn memory_type(&self, bits: u32, flags: vk::MemoryPropertyFlags) -> Option<u32> {
        // SAFETY: live physical device.
        let props = unsafe {
            self.instance
                .get_physical_device_memory_properties(self.physical_device)
        };
        (0..props.memory_type_count).find(|&i| {
            bits & (1 << i) != 0
                && props.memory_types[i as usize]
                    .property_flags
                    .contains(flags)
        })
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        // SAFETY: objects created by this probe, destroyed once, children first.
        unsafe {
            if let Some((loader, m)) = self.messenger.take() {
                loader.destroy_debug_utils_messenger(m, None);
            }
            self.instance.destroy_instance(None);
        }
        let _ = &self.entry;
    }
}

fn info() -> Result<()> {
    let probe = Probe::new()?;
    let i = &probe.instance;
    let pd = probe.physical_device;
    // SAFETY: live physical device.
    let props = unsafe { i.get_physical_device_properties(pd) };
    println!(
        "device={}",
        props
            .device_name_as_c_str()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    for e in probe.device_extensions()? {
        println!("extension={e}");
    }
    let mut host = vk::PhysicalDeviceExternalMemoryHostPropertiesEXT::default();
    let mut props2 = vk::PhysicalDeviceProperties2::default().push_next(&mut host);
    // SAFETY: valid chain.
    unsafe { i.get_physical_device_properties2(pd, &mut props2) };
    println!(
        "min-imported-host-pointer-alignment={}",
        host.min_imported_host_pointer_alignment
    );
    for (name, handle_type) in [
        ("OPAQUE_FD", vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD),
        ("DMA_BUF", vk::ExternalMemoryHandleTypeFlags::DMA_BUF_EXT),
        (
            "HOST_ALLOCATION",
            vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT,
        ),
    ] {
        let info = vk::PhysicalDeviceExternalBufferInfo::default()
            .usage(vk::BufferUsageFlags::STORAGE_BUFFER | vk::BufferUsageFlags::TRANSFER_DST)
            .handle_type(handle_type);
        let mut out = vk::ExternalBufferProperties::default();
        // SAFETY: valid structures.
        unsafe { i.get_physical_device_external_buffer_properties(pd, &info, &mut out) };
        let m = out.external_memory_properties;
        println!(
            "external-buffer handle={name} features={:#x} compatible={:#x}",
            m.external_memory_features.as_raw(),
            m.compatible_handle_types.as_raw()
        );
        let mut ext_info =
            vk::PhysicalDeviceExternalImageFormatInfo::default().handle_type(handle_type);
        let image_info = vk::PhysicalDeviceImageFormatInfo2::default()
            .format(vk::Format::R8G8B8A8_UNORM)
            .ty(vk::ImageType::TYPE_2D)
            .tiling(vk::ImageTiling::LINEAR)
            .usage(vk::ImageUsageFlags::TRANSFER_DST | vk::ImageUsageFlags::TRANSFER_SRC)
            .push_next(&mut ext_info);
        let mut ext_out = vk::ExternalImageFormatProperties::default();
        let mut image_out = vk::ImageFormatProperties2::default().push_next(&mut ext_out);
        // SAFETY: valid structures.
        let r = unsafe {
            i.get_physical_device_image_format_properties2(pd, &image_info, &mut image_out)
        };
        let result = match r {
            Ok(()) => vk::Result::SUCCESS,
            Err(e) => e,
        };
        println!(
            "external-image handle={name} result={result:?} features={:#x}",
            ext_out
                .external_memory_properties
                .external_memory_features
                .as_raw()
        );
    }
    for (name, handle_type) in [
        ("OPAQUE_FD", vk::ExternalSemaphoreHandleTypeFlags::OPAQUE_FD),
        ("SYNC_FD", vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD),
    ] {
        let info = vk::PhysicalDeviceExternalSemaphoreInfo::default().handle_type(handle_type);
        let mut out = vk::ExternalSemaphoreProperties::default();
        // SAFETY: valid structures.
        unsafe { i.get_physical_device_external_semaphore_properties(pd, &info, &mut out) };
        println!(
            "external-semaphore handle={name} features={:#x} compatible={:#x}",
            out.external_semaphore_features.as_raw(),
            out.compatible_handle_types.as_raw()
        );
    }
    for (name, handle_type) in [
        ("OPAQUE_FD", vk::ExternalFenceHandleTypeFlags::OPAQUE_FD),
        ("SYNC_FD", vk::ExternalFenceHandleTypeFlags::SYNC_FD),
    ] {
        let info = vk::PhysicalDeviceExternalFenceInfo::default().handle_type(handle_type);
        let mut out = vk::ExternalFenceProperties::default();
        // SAFETY: valid structures.
        unsafe { i.get_physical_device_external_fence_properties(pd, &info, &mut out) };
        println!(
            "external-fence handle={name} features={:#x} compatible={:#x}",
            out.external_fence_features.as_raw(),
            out.compatible_handle_types.as_raw()
        );
    }
    let all = probe.device_extensions()?;
    for ext in [
        ash::khr::external_memory_fd::NAME,
        ash::ext::external_memory_dma_buf::NAME,
    ] {
        // Only meaningful when the extension is not listed: then the driver
        // must refuse it. (Without the layer lavapipe lists and accepts both.)
        if all.iter().any(|e| e.as_bytes() == ext.to_bytes()) {
            continue;
        }
        let result = match probe.create_device(&[ext]) {
            Ok(device) => {
                // SAFETY: just created, destroyed once.
                unsafe { device.destroy_device(None) };
                vk::Result::SUCCESS
            }
            Err(e) => e,
        };
        println!(
            "create-device extension={} result={result:?}",
            ext.to_string_lossy()
        );
    }
    Ok(())
}

/// Anonymous memory with a 16 KiB-aligned start inside it.
struct Mapping {
    base: *mut c_void,
    len: usize,
    aligned: *mut u8,
}

impl Mapping {
    fn new(len: usize) -> Result<Self> {
        let total = len + 2 * PAGE;
        // SAFETY: a fresh private anonymous mapping.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err("mmap failed".into());
        }
        let offset = (PAGE - base as usize % PAGE) % PAGE;
        // SAFETY: `offset < PAGE` stays inside the `len + 2 * PAGE` mapping.
        let aligned = unsafe { base.cast::<u8>().add(offset) };
        Ok(Self {
            base,
            len: total,
            aligned,
        })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

fn parse(arg: Option<&String>, what: &str) -> Result<u64> {
    let s = arg.ok_or(format!("missing {what}"))?;
    let parsed = match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.map_err(|e| format!("{what} {s:?}: {e}"))
}

fn import(offset: u64, size: u64) -> Result<()> {
    let probe = Probe::new()?;
    let device = probe
        .create_device(&[ash::ext::external_memory_host::NAME])
        .map_err(|e| format!("vkCreateDevice: {e:?}"))?;
    let host = ash::ext::external_memory_host::Device::new(&probe.instance, &device);
    let mapping = Mapping::new((offset + size) as usize)?;
    // SAFETY: `offset + size` bytes past `aligned` are inside the mapping.
    let pointer = unsafe { mapping.aligned.add(offset as usize) };
    println!("pointer={:#x} size={size}", pointer as usize);
    let handle_type = vk::ExternalMemoryHandleTypeFlags::HOST_ALLOCATION_EXT;
    let mut host_props = vk::MemoryHostPointerPropertiesEXT::default();
    // SAFETY: valid pointer into live memory and a valid output structure.
    let r = unsafe {
        (host.fp().get_memory_host_pointer_properties_ext)(
            device.handle(),
            handle_type,
            pointer.cast(),
            &mut host_props,
        )
    };
    println!(
        "host-pointer-properties={r:?} memory-type-bits={:#x}",
        host_props.memory_type_bits
    );
    // Without usable properties, still try a host-visible type, so the
    // allocation reaches the driver (or the layer) and is judged there.
    let bits = if r == vk::Result::SUCCESS {
        host_props.memory_type_bits
    } else {
        !0
    };
    let memory_type = probe
        .memory_type(bits, vk::MemoryPropertyFlags::HOST_VISIBLE)
        .ok_or("no host-visible memory type")?;
    let mut import_info = vk::ImportMemoryHostPointerInfoEXT::default()
        .handle_type(handle_type)
        .host_pointer(pointer.cast());
    let alloc = vk::MemoryAllocateInfo::default()
        .allocation_size(size)
        .memory_type_index(memory_type)
        .push_next(&mut import_info);
    // SAFETY: valid allocate info importing live memory that outlives it.
    let result = unsafe { device.allocate_memory(&alloc, None) };
    match result {
        Ok(memory) => {
            println!("import=SUCCESS");
            // SAFETY: host-visible memory just imported; mapped, used, unmapped, freed.
            unsafe {
                let mapped = device
                    .map_memory(memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty())
                    .map_err(|e| format!("vkMapMemory: {e:?}"))?
                    .cast::<u8>();
                mapped.write_volatile(0x5a);
                mapped.add(size as usize - 1).write_volatile(0xa5);
                let aliased = pointer.read_volatile() == 0x5a
                    && pointer.add(size as usize - 1).read_volatile() == 0xa5;
                println!("aliased={aliased}");
                device.unmap_memory(memory);
                device.free_memory(memory, None);
            }
        }
        Err(e) => println!("import={e:?}"),
    }
    // SAFETY: created above; all its children are gone.
    unsafe { device.destroy_device(None) };
    drop(mapping);
    Ok(())
}

/// Maps 64 KiB of host-visible memory at `offset`, with `vkMapMemory2KHR`
/// if `map2` (which Khronos validation 1.3.239 does not know: it wraps the
/// memory handle and does not unwrap it there, so the driver crashes).
fn map(offset: u64, map2: bool) -> Result<()> {
    let probe = Probe::new()?;
    let extensions: &[&CStr] = if map2 {
        &[ash::khr::map_memory2::NAME]
    } else {
        &[]
    };
    let device = probe
        .create_device(extensions)
        .map_err(|e| format!("vkCreateDevice: {e:?}"))?;
    let size = 4 * PAGE as u64;
    let memory_type = probe
        .memory_type(!0, vk::MemoryPropertyFlags::HOST_VISIBLE)
        .ok_or("no host-visible memory type")?;
    let alloc = vk::MemoryAllocateInfo::default()
        .allocation_size(size)
        .memory_type_index(memory_type);
    // SAFETY: valid allocate info.
    let memory = unsafe { device.allocate_memory(&alloc, None) }
        .map_err(|e| format!("vkAllocateMemory: {e:?}"))?;
    if !map2 {
        // SAFETY: host-visible memory, not mapped yet.
        let r = unsafe {
            device.map_memory(memory, offset, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty())
        };
        match r {
            Ok(_) => {
                println!("map=SUCCESS");
                // SAFETY: mapped just above.
                unsafe { device.unmap_memory(memory) };
            }
            Err(e) => println!("map={e:?}"),
        }
    } else {
        let map2 = ash::khr::map_memory2::Device::new(&probe.instance, &device);
        let info = vk::MemoryMapInfoKHR::default()
            .memory(memory)
            .offset(offset)
            .size(vk::WHOLE_SIZE);
        let mut data = std::ptr::null_mut();
        // SAFETY: valid map info for unmapped host-visible memory.
        let r = unsafe { (map2.fp().map_memory2_khr)(device.handle(), &info, &mut data) };
        println!("map2={r:?}");
        if r == vk::Result::SUCCESS {
            // SAFETY: mapped just above.
            unsafe { device.unmap_memory(memory) };
        }
    }
    // SAFETY: created above, destroyed once, children first.
    unsafe {
        device.free_memory(memory, None);
        device.destroy_device(None);
    }
    Ok(())
}

/// The built layer library: in `deps/` next to this program (where both
/// `cargo build` and `cargo test` put it; `cargo build` also copies it next to
/// the program, which a later `cargo test` does not refresh), else next to it.
fn layer_library() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let dir = exe.parent().ok_or("no executable directory")?;
    [
        dir.join(LAYER_LIBRARY),
        dir.join("deps").join(LAYER_LIBRARY),
    ]
    .into_iter()
    .find(|p| p.exists())
    .ok_or(format!(
        "{LAYER_LIBRARY} not found next to {}; run `cargo build -p venus-macos-like-layer`",
        exe.display()
    ))
}

fn write_manifest(dir: &Path) -> Result<()> {
    let library = layer_library()?;
    let library = library
        .canonicalize()
        .map_err(|e| format!("{}: {e}", library.display()))?;
    let json = format!(
        r#"{{
    "file_format_version": "1.2.0",
    "layer": {{
        "name": "VK_LAYER_VENUS_macos_like",
        "type": "GLOBAL",
        "library_path": "{}",
        "api_version": "1.3.281",
        "implementation_version": "1",
        "description": "Venus test fixture: makes the driver look like MoltenVK for memory sharing"
    }}
}}
"#,
        library.display()
    );
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join("VkLayer_venus_macos_like.json");
    std::fs::write(&path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("manifest={}", path.display());
    Ok(())
}

fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("info") => info(),
        Some("import") => import(
            parse(args.get(1), "OFFSET")?,
            parse(args.get(2), "SIZE")?,
        ),
        Some("map") => map(parse(args.get(1), "OFFSET")?, false),
        Some("map2") => map(parse(args.get(1), "OFFSET")?, true),
        Some("write-manifest") => write_manifest(Path::new(args.get(1).ok_or("missing DIR")?)),
        _ => Err("usage: venus-macos-like-probe info | import OFFSET SIZE | map OFFSET | map2 OFFSET | write-manifest DIR".into()),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = run(&args);
    if args.first().map(String::as_str) != Some("write-manifest") {
        println!(
            "validation-messages={}",
            VALIDATION_MESSAGES.load(Ordering::Relaxed)
        );
    }
    if let Err(e) = result {
        eprintln!("venus-macos-like-probe: {e}");
        std::process::exit(1);
    }
}
