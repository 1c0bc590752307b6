//! Our `libvirglrenderer.so.1` (host-translator/virgl-abi) as QEMU 10.0 loads it:
//! the soname and the 28 symbols QEMU imports, then the C test
//! (`tests/abi/virgl_abi_test.c`, built with gcc against our own header and
//! linked against the library) driving the ABI on lavapipe — capsets before
//! init, fences delivered in poll, mappable blobs, 2D resources, a Venus command
//! stream made here with our encoder, hostile arguments, reset and cleanup — at
//! the default granularity, at 16 KiB (Apple Silicon's pages), and with device
//! memory shared as the driver's own mapping (`VENUS_HOST_MEMORY=map-ptr`); and
//! the install script's layout.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ash::vk;
use ash::vk::Handle;
use venus_protocol::generated as g;
use venus_protocol::mesa::{CommandStreamDescriptionMESA, DeviceQueueTimelineInfoMESA};
use venus_protocol::{Decoder, Encoder};
use venus_tests::server::{LOADER_VARS, LVP_ICD};

/// The functions QEMU 10.0's `hw-display-virtio-gpu-gl.so` imports.
const QEMU_IMPORTS: [&str; 28] = [
    "virgl_renderer_cleanup",
    "virgl_renderer_context_create",
    "virgl_renderer_context_create_fence",
    "virgl_renderer_context_create_with_flags",
    "virgl_renderer_context_destroy",
    "virgl_renderer_create_fence",
    "virgl_renderer_ctx_attach_resource",
    "virgl_renderer_ctx_detach_resource",
    "virgl_renderer_fill_caps",
    "virgl_renderer_force_ctx_0",
    "virgl_renderer_get_cap_set",
    "virgl_renderer_get_cursor_data",
    "virgl_renderer_init",
    "virgl_renderer_poll",
    "virgl_renderer_reset",
    "virgl_renderer_resource_attach_iov",
    "virgl_renderer_resource_create",
    "virgl_renderer_resource_create_blob",
    "virgl_renderer_resource_detach_iov",
    "virgl_renderer_resource_get_info",
    "virgl_renderer_resource_get_info_ext",
    "virgl_renderer_resource_get_map_info",
    "virgl_renderer_resource_map",
    "virgl_renderer_resource_unmap",
    "virgl_renderer_resource_unref",
    "virgl_renderer_submit_cmd",
    "virgl_renderer_transfer_read_iov",
    "virgl_renderer_transfer_write_iov",
];

/// Conventions shared with the C test.
const REPLY_RES: u32 = 30;
const REPLY_SIZE: usize = 65536;
const MEMORY_ID: u64 = 5;
const MEMORY_SIZE: u64 = 65536;
const REPLY: u32 = 1; // VK_COMMAND_GENERATE_REPLY_BIT_EXT

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// `target/<profile>`, the profile this test was built with.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// `target/<profile>/libvirglrenderer.so`, built (once per test process) if out of date.
fn library() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = profile_dir();
            let release = dir.file_name().is_some_and(|n| n == "release");
            let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            cmd.current_dir(workspace_root())
                .args(["build", "-p", "venus-virglrenderer"]);
            if release {
                cmd.arg("--release");
            }
            let st = cmd.status().expect("running cargo build");
            assert!(st.success(), "building venus-virglrenderer failed");
            let lib = dir.join("libvirglrenderer.so");
            assert!(lib.exists(), "{} missing after the build", lib.display());
            lib
        })
        .clone()
}

/// A temporary directory with `libvirglrenderer.so{,.1}` pointing at the library.
fn lib_dir(name: &str, lib: &Path) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("venus-virgl-abi-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    for link in ["libvirglrenderer.so.1", "libvirglrenderer.so"] {
        std::os::unix::fs::symlink(lib, dir.join(link)).expect("symlink");
    }
    dir
}

fn output(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn soname_and_qemu_imports_are_exported() {
    let lib = library();
    let dynamic = output(Command::new("readelf").arg("-d").arg(&lib));
    assert!(
        dynamic.contains("Library soname: [libvirglrenderer.so.1]"),
        "{dynamic}"
    );
    let symbols = output(Command::new("nm").args(["-D", "--defined-only"]).arg(&lib));
    let exported: Vec<&str> = symbols
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, kind, name) = (f.next()?, f.next()?, f.next()?);
            (kind == "T").then_some(name)
        })
        .collect();
    for name in QEMU_IMPORTS {
        assert!(exported.contains(&name), "{name} is not exported");
    }
    let extra: Vec<&&str> = exported
        .iter()
        .filter(|n| n.starts_with("virgl_") && !QEMU_IMPORTS.contains(n))
        .collect();
    assert!(extra.is_empty(), "exported beyond the header: {extra:?}");
}

/// The Venus stream the C test submits (see the C file's header).
fn venus_stream() -> Vec<u8> {
    let mut buf = vec![0u8; 1 << 16];
    let mut e = Encoder::with_all(&mut buf);
    let s = CommandStreamDescriptionMESA {
        resource_id: REPLY_RES,
        offset: 0,
        size: REPLY_SIZE,
    };
    let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_1);
    let ci = vk::InstanceCreateInfo::default().application_info(&app);
    let mut inst = vk::Instance::from_raw(1);
    let mut count = 1u32;
    let mut pds = [vk::PhysicalDevice::from_raw(2)];
    let prio = [1.0f32];
    let q = [vk::DeviceQueueCreateInfo::default()
        .queue_family_index(0)
        .queue_priorities(&prio)];
    let dci = vk::DeviceCreateInfo::default().queue_create_infos(&q);
    let mut dev = vk::Device::from_raw(3);
    let timeline = DeviceQueueTimelineInfoMESA {
        ring_idx: 1,
        ..Default::default()
    };
    let mut qi = vk::DeviceQueueInfo2::default()
        .queue_family_index(0)
        .queue_index(0);
    qi.p_next = (&timeline as *const DeviceQueueTimelineInfoMESA).cast();
    let mut queue = vk::Queue::from_raw(4);
    // Lavapipe's only memory type is host visible.
    let ai = vk::MemoryAllocateInfo::default()
        .allocation_size(MEMORY_SIZE)
        .memory_type_index(0);
    let mut mem = vk::DeviceMemory::from_raw(MEMORY_ID);
    // SAFETY: every pointer is to a live local.
    unsafe {
        g::encode_vk_set_reply_command_stream_mesa(&mut e, 0, &s);
        g::encode_vk_create_instance(&mut e, REPLY, &ci, std::ptr::null(), &mut inst);
        g::encode_vk_enumerate_physical_devices(&mut e, REPLY, inst, &mut count, pds.as_mut_ptr());
        g::encode_vk_create_device(&mut e, REPLY, pds[0], &dci, std::ptr::null(), &mut dev);
        g::encode_vk_get_device_queue2(&mut e, 0, dev, &qi, &mut queue);
        g::encode_vk_allocate_memory(&mut e, REPLY, dev, &ai, std::ptr::null(), &mut mem);
    }
    let n = e.finish().expect("encoding the stream");
    buf.truncate(n);
    assert_eq!(n % 4, 0, "Venus streams are dword-sized");
    buf
}

/// Decodes the replies the stream produced: every command succeeded.
fn check_replies(reply: &[u8]) {
    assert_eq!(reply.len(), REPLY_SIZE);
    let mut d = Decoder::new(reply);
    let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_1);
    let ci = vk::InstanceCreateInfo::default().application_info(&app);
    let mut inst = vk::Instance::null();
    // SAFETY: valid pointers to locals; the decoder is bounds checked.
    let r = unsafe { g::decode_reply_vk_create_instance(&mut d, &ci, std::ptr::null(), &mut inst) };
    assert_eq!(r, vk::Result::SUCCESS, "vkCreateInstance");
    let (mut count, mut pds) = (1u32, [vk::PhysicalDevice::null()]);
    // SAFETY: as above.
    let r = unsafe {
        g::decode_reply_vk_enumerate_physical_devices(
            &mut d,
            vk::Instance::from_raw(1),
            &mut count,
            pds.as_mut_ptr(),
        )
    };
    assert!(
        r.as_raw() >= 0 && count == 1,
        "vkEnumeratePhysicalDevices: {r:?}, {count}"
    );
    let prio = [1.0f32];
    let q = [vk::DeviceQueueCreateInfo::default()
        .queue_family_index(0)
        .queue_priorities(&prio)];
    let dci = vk::DeviceCreateInfo::default().queue_create_infos(&q);
    let mut dev = vk::Device::null();
    // SAFETY: as above.
    let r = unsafe {
        g::decode_reply_vk_create_device(
            &mut d,
            vk::PhysicalDevice::from_raw(2),
            &dci,
            std::ptr::null(),
            &mut dev,
        )
    };
    assert_eq!(r, vk::Result::SUCCESS, "vkCreateDevice");
    let ai = vk::MemoryAllocateInfo::default()
        .allocation_size(MEMORY_SIZE)
        .memory_type_index(0);
    let mut mem = vk::DeviceMemory::null();
    // SAFETY: as above.
    let r = unsafe {
        g::decode_reply_vk_allocate_memory(
            &mut d,
            vk::Device::from_raw(3),
            &ai,
            std::ptr::null(),
            &mut mem,
        )
    };
    assert_eq!(r, vk::Result::SUCCESS, "vkAllocateMemory");
}

/// Builds the C test against our header and library; runs it with `env`.
fn run_c_test(name: &str, env: &[(&str, &str)]) {
    let lib = library();
    let dir = lib_dir(name, &lib);
    let root = workspace_root();
    let exe = dir.join("virgl_abi_test");
    let st = Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", "-g"])
        .arg("-I")
        .arg(root.join("packaging/virglrenderer"))
        .arg(root.join("tests/abi/virgl_abi_test.c"))
        .arg("-L")
        .arg(&dir)
        .arg("-lvirglrenderer")
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("running gcc");
    assert!(st.success(), "compiling virgl_abi_test.c failed");
    let needed = output(Command::new("readelf").arg("-d").arg(&exe));
    assert!(
        needed.contains("Shared library: [libvirglrenderer.so.1]"),
        "the test links by soname: {needed}"
    );

    let stream = dir.join("stream.bin");
    let reply = dir.join("reply.bin");
    std::fs::write(&stream, venus_stream()).expect("writing the stream");
    let mut cmd = Command::new(&exe);
    cmd.arg(&stream).arg(&reply);
    for v in LOADER_VARS {
        cmd.env_remove(v);
    }
    cmd.env("LD_LIBRARY_PATH", &dir)
        .env("VK_DRIVER_FILES", LVP_ICD)
        .env_remove("VENUS_HOST_GRANULARITY")
        .env_remove("VENUS_HOST_DRIVER")
        .env_remove("VENUS_HOST_MEMORY")
        .env("VENUS_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("running virgl_abi_test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("--- virgl_abi_test ({name}) stdout\n{stdout}--- stderr\n{stderr}");
    assert!(
        out.status.success() && stdout.contains("PASS"),
        "virgl_abi_test ({name}) failed: {:?}",
        out.status
    );
    assert!(
        !stderr.contains("panic"),
        "a panic was caught at the C boundary"
    );
    check_replies(&std::fs::read(&reply).expect("reading the replies"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn c_abi_test_passes() {
    run_c_test("default", &[]);
}

#[test]
fn c_abi_test_passes_at_16k_granularity() {
    run_c_test("16k", &[("VENUS_HOST_GRANULARITY", "16384")]);
}

#[test]
fn install_script_lays_out_the_package() {
    let lib = library();
    let profile = profile_dir()
        .file_name()
        .and_then(|n| n.to_str())
        .map(String::from)
        .expect("profile name");
    let dest = std::env::temp_dir().join(format!("venus-virgl-install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dest);
    let root = workspace_root();
    output(
        Command::new("bash")
            .arg(root.join("packaging/virglrenderer/install.sh"))
            .arg(&dest)
            .arg(&profile),
    );
    let installed = dest.join("lib/libvirglrenderer.so.1");
    assert_eq!(
        std::fs::read(&installed).expect("installed library"),
        std::fs::read(&lib).expect("built library")
    );
    assert_eq!(
        std::fs::read_link(dest.join("lib/libvirglrenderer.so")).expect("dev symlink"),
        Path::new("libvirglrenderer.so.1")
    );
    assert!(dest.join("include/virgl/virglrenderer.h").is_file());
    let pc = std::fs::read_to_string(dest.join("lib/pkgconfig/virglrenderer.pc")).expect("pc");
    assert!(
        pc.contains("Version: 1.1.0") && !pc.contains("@PREFIX@"),
        "{pc}"
    );
    // What a VMM's build asks pkg-config (QEMU wants at least 1.0), when installed.
    let pkg_config = |args: &[&str]| {
        Command::new("pkg-config")
            .args(args)
            .arg("virglrenderer")
            .env("PKG_CONFIG_PATH", dest.join("lib/pkgconfig"))
            .output()
    };
    if let Ok(out) = pkg_config(&["--atleast-version=1.0.0"]) {
        assert!(out.status.success(), "pkg-config: {out:?}");
        let out = pkg_config(&["--modversion"]).expect("pkg-config");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.1.0");
        let out = pkg_config(&["--cflags", "--libs"]).expect("pkg-config");
        let flags = String::from_utf8_lossy(&out.stdout);
        assert!(
            flags.contains("include/virgl") && flags.contains("-lvirglrenderer"),
            "{flags}"
        );
    }
    let _ = std::fs::remove_dir_all(&dest);
}

#[test]
fn c_abi_test_passes_with_driver_mapped_memory() {
    // map-ptr: device memory has no shared memory behind it; blobs of it are the
    // driver's own mapping (for a VMM in this process).
    run_c_test("map-ptr", &[("VENUS_HOST_MEMORY", "map-ptr")]);
}
