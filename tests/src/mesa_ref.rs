//! Mesa's generated Venus encoder, compiled and loaded as a reference.
//!
//! [`MesaRef::build_and_load`] fetches Mesa 25.0.7's source (see
//! `tests/reference/fetch-mesa.sh`) unless `VENUS_MESA_SRC` names a
//! `src/virtio/venus-protocol` directory, generates a dispatch table over the
//! `vn_protocol_driver_*.h` encoders (`tests/reference/gen_wrappers.py`),
//! compiles it with our stub `vn_cs.h` into `target/mesa-ref/libvnref-<hash>.so`
//! (reused while its inputs are unchanged) and loads it.
//!
//! Arguments are passed the way the C functions take them: `args[i]` points
//! at the value of the command's i-th parameter (after `cmd_flags`), e.g. at a
//! `vk::Device` for `VkDevice device` and at the pointer for
//! `const VkBufferCreateInfo* pCreateInfo`. ash's `vk` structs are
//! `#[repr(C)]` and ABI-identical to the C ones; [`arg`] makes an entry.
//! A null entry stands for a zero value.

use std::ffi::{c_char, c_int, c_long, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// `vk_xml_version` of the Venus protocol in Mesa 25.0.7 (1.3.269).
pub const VK_XML_VERSION_1_3_269: u32 = ash::vk::make_api_version(0, 1, 3, 269);

/// Extension mask with bit 0 clear: Mesa then treats every extension as present.
pub const ALL_EXTENSIONS: [u32; 32] = [0; 32];

/// The capset extension mask virglrenderer 1.1.0 reports (VENUS-WIRE.md §11).
pub const VKR_1_1_0_EXTENSION_MASK: [u32; 32] = [
    0x2000_8001,
    0x3040_2000,
    0x005f_6bcb,
    0xc256_60c0,
    0xe01a_2819,
    0x8265_060c,
    0x4131_0162,
    0xd0c4_600c,
    0x8620_1454,
    0x0800_0549,
    0x0035_0842,
    0xc400_0233,
    0x5002_0703,
    0x0000_0080,
    0x0081_0140,
    0x0010_8000,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
];

/// `VK_COMMAND_GENERATE_REPLY_BIT_EXT`, the only command flag.
pub const GENERATE_REPLY: u32 = 1;

/// An `args` entry pointing at `value`.
pub fn arg<T>(value: &T) -> *const c_void {
    (value as *const T).cast()
}

/// An `args` entry for [`MesaRef::decode_reply`] pointing at `value`.
pub fn arg_mut<T>(value: &mut T) -> *mut c_void {
    (value as *mut T).cast()
}

/// What a reply decoder produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodedReply {
    /// Bytes of the reply the decoder consumed.
    pub consumed: usize,
    /// The return value (a `VkResult` sign-extended, or a u64), if the command has one.
    pub ret: Option<u64>,
}

const ERR_UNKNOWN: c_long = -1;
const ERR_OVERFLOW: c_long = -2;
const ERR_ASSERT: c_long = -3;
const RETURN_VOID: c_int = 0;

type SetProtocolFn = unsafe extern "C" fn(*const u32, u32);
type CountFn = unsafe extern "C" fn() -> c_int;
type NameFn = unsafe extern "C" fn(c_int) -> *const c_char;
type ParamCountFn = unsafe extern "C" fn(*const c_char) -> c_int;
type ParamFn = unsafe extern "C" fn(*const c_char, c_int) -> *const c_char;
type SizeofFn = unsafe extern "C" fn(*const c_char, u32, *const *const c_void) -> c_long;
type EncodeFn =
    unsafe extern "C" fn(*const c_char, u32, *const *const c_void, *mut u8, usize, u8) -> c_long;
type SizeofReplyFn = unsafe extern "C" fn(*const c_char, *const *const c_void) -> c_long;
type DecodeReplyFn =
    unsafe extern "C" fn(*const c_char, *const u8, usize, *const *mut c_void, *mut u64) -> c_long;
type LastAssertFn = unsafe extern "C" fn() -> *const c_char;

/// The loaded library and its entry points (see `tests/reference/stub/vnref.h`).
struct Loaded {
    path: PathBuf,
    set_protocol: SetProtocolFn,
    command_count: CountFn,
    command_name: NameFn,
    command_param_count: ParamCountFn,
    command_param: ParamFn,
    command_return_kind: ParamCountFn,
    sizeof_command: SizeofFn,
    encode_command: EncodeFn,
    sizeof_reply: SizeofReplyFn,
    decode_reply: DecodeReplyFn,
    last_assert: LastAssertFn,
    /// Keeps the entry points above valid; never unloaded before them.
    _library: libloading::Library,
}

/// The library's protocol configuration and assert record are process-wide:
/// every call into it holds this lock.
static CALL_LOCK: Mutex<()> = Mutex::new(());
static LOADED: OnceLock<Result<Arc<Loaded>, String>> = OnceLock::new();

/// Mesa's Venus encoders, loaded from a freshly built shared library.
///
/// Each value carries its own protocol configuration (extension mask and API
/// version), applied before every call.
pub struct MesaRef {
    lib: Arc<Loaded>,
    ext_mask: [u32; 32],
    api_version: u32,
}

impl MesaRef {
    /// Builds (or reuses) the reference library and loads it. The protocol
    /// starts as every extension present and vk_xml_version 1.3.269.
    pub fn build_and_load() -> Result<MesaRef, String> {
        let lib = LOADED.get_or_init(|| build().and_then(|p| load(&p).map(Arc::new)));
        Ok(MesaRef {
            lib: lib.clone()?,
            ext_mask: ALL_EXTENSIONS,
            api_version: VK_XML_VERSION_1_3_269,
        })
    }

    /// For tests: the loaded reference, `None` (with a note on stderr) if
    /// `VENUS_SKIP_MESA_REF=1` is set.
    ///
    /// # Panics
    /// If the library cannot be built or loaded and skipping is not requested.
    pub fn for_tests() -> Option<MesaRef> {
        if std::env::var_os("VENUS_SKIP_MESA_REF").is_some_and(|v| v == "1") {
            eprintln!("skipped: VENUS_SKIP_MESA_REF=1, Mesa reference harness not built");
            return None;
        }
        match MesaRef::build_and_load() {
            Ok(mesa) => Some(mesa),
            Err(e) => panic!(
                "cannot build the Mesa reference harness: {e}\n\
                 (set VENUS_MESA_SRC to Mesa 25.0.7's src/virtio/venus-protocol, \
                 or VENUS_SKIP_MESA_REF=1 to skip these tests)"
            ),
        }
    }

    /// Path of the loaded shared library.
    pub fn library_path(&self) -> &Path {
        &self.lib.path
    }

    /// Sets the renderer protocol the encoders gate on: `ext_mask` in the
    /// capset layout (bit 0 of word 0 clear means every extension, as in
    /// Mesa) and the renderer's `vk_xml_version`.
    pub fn set_protocol(&mut self, ext_mask: &[u32; 32], api_version: u32) {
        self.ext_mask = *ext_mask;
        self.api_version = api_version;
    }

    /// Names of all commands with a Mesa encoder, sorted.
    pub fn command_names(&self) -> Vec<String> {
        let _guard = self.lock();
        // SAFETY: vnref_command_count takes no arguments and reads a constant.
        let count = unsafe { (self.lib.command_count)() };
        (0..count)
            .filter_map(|i| {
                // SAFETY: i is in 0..count; the result is NULL or a static string.
                let name = unsafe { (self.lib.command_name)(i) };
                // SAFETY: name is NULL or a NUL-terminated static string.
                unsafe { c_str(name) }
            })
            .collect()
    }

    /// The C parameter declarations of `name` after `cmd_flags`, e.g.
    /// `["VkDevice device", "const VkBufferCreateInfo* pCreateInfo", …]`.
    pub fn params(&self, name: &str) -> Option<Vec<String>> {
        let cname = CString::new(name).ok()?;
        let _guard = self.lock();
        // SAFETY: cname is a valid NUL-terminated string.
        let count = unsafe { (self.lib.command_param_count)(cname.as_ptr()) };
        if count < 0 {
            return None;
        }
        let params = (0..count)
            .filter_map(|i| {
                // SAFETY: cname is valid and i is in range; the result is a static string.
                let decl = unsafe { (self.lib.command_param)(cname.as_ptr(), i) };
                // SAFETY: decl is NULL or a NUL-terminated static string.
                unsafe { c_str(decl) }
            })
            .collect();
        Some(params)
    }

    /// `vn_sizeof_vkXxx`: the size of the encoded command, or `None` if Mesa
    /// has no encoder named `name`.
    ///
    /// # Panics
    /// If `args` has the wrong length or one of Mesa's asserts fails.
    ///
    /// # Safety
    /// Each `args[i]` must be null or point at a valid value of the C type of
    /// parameter i (see [`MesaRef::params`]), and every pointer reachable from
    /// those values (structs, arrays, pNext chains) must be valid as the
    /// Vulkan API requires.
    pub unsafe fn sizeof(&self, name: &str, flags: u32, args: &[*const c_void]) -> Option<usize> {
        let cname = self.checked_name(name, args.len())?;
        let _guard = self.lock();
        // SAFETY: the caller guarantees args; the count was checked above.
        let r = unsafe { (self.lib.sizeof_command)(cname.as_ptr(), flags, args.as_ptr()) };
        Some(self.check(name, "vn_sizeof", r))
    }

    /// Encodes `name` with Mesa's `vn_encode_vkXxx` and returns the bytes
    /// plus a mask of pad bytes (true = Mesa never wrote the byte; it is 0 in
    /// the returned bytes). `None` if Mesa has no encoder named `name`.
    ///
    /// The command is encoded twice, into buffers prefilled with 0x00 and
    /// 0xFF; bytes that differ are pads.
    ///
    /// # Panics
    /// If `args` has the wrong length, one of Mesa's asserts fails, or the
    /// encoder writes a different number of bytes than `vn_sizeof` reports.
    ///
    /// # Safety
    /// As for [`MesaRef::sizeof`].
    pub unsafe fn encode(
        &self,
        name: &str,
        flags: u32,
        args: &[*const c_void],
    ) -> Option<(Vec<u8>, Vec<bool>)> {
        let cname = self.checked_name(name, args.len())?;
        let _guard = self.lock();
        // SAFETY: the caller guarantees args; the count was checked above.
        let r = unsafe { (self.lib.sizeof_command)(cname.as_ptr(), flags, args.as_ptr()) };
        let size = self.check(name, "vn_sizeof", r);
        // Slack so that an encoder writing more than vn_sizeof is reported
        // as a size mismatch rather than as an overflow.
        let cap = size + 4096;
        let mut runs = [vec![0u8; cap], vec![0u8; cap]];
        for (buf, fill) in runs.iter_mut().zip([0x00u8, 0xff]) {
            // SAFETY: the caller guarantees args; buf is valid for cap bytes.
            let r = unsafe {
                (self.lib.encode_command)(
                    cname.as_ptr(),
                    flags,
                    args.as_ptr(),
                    buf.as_mut_ptr(),
                    cap,
                    fill,
                )
            };
            let written = self.check(name, "vn_encode", r);
            assert_eq!(
                written, size,
                "{name}: Mesa's vn_encode wrote {written} bytes but vn_sizeof said {size}"
            );
        }
        let [mut zeros, ones] = runs;
        zeros.truncate(size);
        let pad = zeros.iter().zip(&ones).map(|(a, b)| a != b).collect();
        Some((zeros, pad))
    }

    /// `vn_sizeof_vkXxx_reply`: the size of the reply to `name`.
    ///
    /// # Panics
    /// As for [`MesaRef::sizeof`].
    ///
    /// # Safety
    /// As for [`MesaRef::sizeof`].
    pub unsafe fn sizeof_reply(&self, name: &str, args: &[*const c_void]) -> Option<usize> {
        let cname = self.checked_name(name, args.len())?;
        let _guard = self.lock();
        // SAFETY: the caller guarantees args; the count was checked above.
        let r = unsafe { (self.lib.sizeof_reply)(cname.as_ptr(), args.as_ptr()) };
        Some(self.check(name, "vn_sizeof_reply", r))
    }

    /// Decodes a reply with Mesa's `vn_decode_vkXxx_reply`, writing through
    /// the output parameters in `args` (handles receive the ids). Errors: no
    /// decoder, the data ran out or failed a check, or an assert failed (e.g.
    /// a wrong command type).
    ///
    /// # Panics
    /// If `args` has the wrong length.
    ///
    /// # Safety
    /// As for [`MesaRef::sizeof`]; in addition every output parameter must
    /// be writable, with output structs' `sType`/`pNext` set up as the
    /// Vulkan API requires.
    pub unsafe fn decode_reply(
        &self,
        name: &str,
        data: &[u8],
        args: &[*mut c_void],
    ) -> Result<DecodedReply, String> {
        let cname = self
            .checked_name(name, args.len())
            .ok_or_else(|| format!("{name}: Mesa has no such command"))?;
        let _guard = self.lock();
        // SAFETY: cname is a valid NUL-terminated string.
        let kind = unsafe { (self.lib.command_return_kind)(cname.as_ptr()) };
        let mut ret = 0u64;
        // SAFETY: the caller guarantees args; data is valid for data.len()
        // bytes and ret for a u64 write.
        let r = unsafe {
            (self.lib.decode_reply)(
                cname.as_ptr(),
                data.as_ptr(),
                data.len(),
                args.as_ptr(),
                &mut ret,
            )
        };
        match r {
            ERR_UNKNOWN => Err(format!("{name}: Mesa has no reply decoder")),
            ERR_OVERFLOW => Err(format!(
                "{name}: reply decoding failed (data short or invalid)"
            )),
            ERR_ASSERT => Err(format!("{name}: {}", self.last_assert())),
            n if n >= 0 => Ok(DecodedReply {
                consumed: n as usize,
                ret: (kind != RETURN_VOID).then_some(ret),
            }),
            n => Err(format!("{name}: unexpected result {n}")),
        }
    }

    /// Takes the call lock and applies this value's protocol configuration.
    fn lock(&self) -> MutexGuard<'static, ()> {
        let guard = CALL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: ext_mask holds the 32 words the function reads.
        unsafe { (self.lib.set_protocol)(self.ext_mask.as_ptr(), self.api_version) };
        guard
    }

    /// `name` as a C string if Mesa has an encoder for it; panics if
    /// `arg_count` does not match its parameters.
    fn checked_name(&self, name: &str, arg_count: usize) -> Option<CString> {
        let params = self.params(name)?;
        assert_eq!(
            arg_count,
            params.len(),
            "{name} takes {} arguments after cmd_flags: {params:?}",
            params.len()
        );
        CString::new(name).ok()
    }

    /// Maps a size result to usize, panicking on errors (the name is known).
    fn check(&self, name: &str, what: &str, r: c_long) -> usize {
        match r {
            ERR_ASSERT => panic!("{name}: {what}: {}", self.last_assert()),
            ERR_OVERFLOW => panic!("{name}: {what} overflowed its buffer"),
            n if n >= 0 => n as usize,
            n => panic!("{name}: {what} returned {n}"),
        }
    }

    /// The assert message recorded by the last call (call lock held).
    fn last_assert(&self) -> String {
        // SAFETY: no arguments; returns NULL or a string in the library.
        let msg = unsafe { (self.lib.last_assert)() };
        // SAFETY: msg is NULL or NUL-terminated and unchanged while the lock is held.
        unsafe { c_str(msg) }.unwrap_or_else(|| "an assert failed".into())
    }
}

/// Copies a C string.
///
/// # Safety
/// `p` must be null or point at a NUL-terminated string.
unsafe fn c_str(p: *const c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: p is non-null and NUL-terminated (caller's guarantee).
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{what}: cannot run {cmd:?}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "{what} failed ({}): {cmd:?}\n{}",
            out.status,
            tail.join("\n")
        ));
    }
    Ok(stdout)
}

/// The venus-protocol directory: `VENUS_MESA_SRC`, else fetch-mesa.sh's answer.
fn venus_protocol_dir(root: &Path) -> Result<PathBuf, String> {
    let dir = match std::env::var_os("VENUS_MESA_SRC") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let script = root.join("tests/reference/fetch-mesa.sh");
            let out = run(
                Command::new("sh")
                    .arg(&script)
                    .stdin(std::process::Stdio::null()),
                "fetching Mesa's source",
            )?;
            let last = out.lines().rev().find(|l| !l.trim().is_empty());
            PathBuf::from(last.ok_or("fetch-mesa.sh printed no path")?.trim())
        }
    };
    if !dir.join("vn_protocol_driver.h").is_file() {
        return Err(format!(
            "{} has no vn_protocol_driver.h (VENUS_MESA_SRC must name Mesa's src/virtio/venus-protocol)",
            dir.display()
        ));
    }
    Ok(dir)
}

/// 64-bit FNV-1a, stable across toolchains (unlike `DefaultHasher`).
struct Fnv(u64);

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

fn hash_files(hash: &mut Fnv, files: &[PathBuf]) -> Result<(), String> {
    for file in files {
        let bytes =
            std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        hash.write(file.file_name().map_or(&[][..], |n| n.as_encoded_bytes()));
        hash.write(&(bytes.len() as u64).to_le_bytes());
        hash.write(&bytes);
    }
    Ok(())
}

/// `.h` files of `dir`, sorted.
fn headers_in(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "h"))
        .collect();
    files.sort();
    Ok(files)
}

/// Builds the library if needed and returns its path.
fn build() -> Result<PathBuf, String> {
    let root = repo_root();
    let reference = root.join("tests/reference");
    let stub = reference.join("stub");
    let proto = venus_protocol_dir(&root)?;
    // <mesa>/src/virtio/venus-protocol -> <mesa>/include
    let include = proto.join("../../../include");
    if !include.join("vulkan/vulkan.h").is_file() {
        return Err(format!(
            "{} has no vulkan/vulkan.h (expected Mesa's include/ three levels above venus-protocol)",
            include.display()
        ));
    }
    let out_dir = target_dir(&root).join("mesa-ref");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;

    let generated = out_dir.join("vnref_commands.c");
    run(
        Command::new("python3")
            .arg(reference.join("gen_wrappers.py"))
            .arg(&proto)
            .arg(&generated),
        "generating the dispatch table",
    )?;

    let runtime = stub.join("vnref_runtime.c");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let flags = ["-O1", "-shared", "-fPIC", "-std=gnu11"];
    let mut hash = Fnv(0xcbf2_9ce4_8422_2325);
    hash.write(cc.as_bytes());
    hash.write(flags.join(" ").as_bytes());
    let mut inputs = vec![generated.clone(), runtime.clone()];
    inputs.extend(headers_in(&stub)?);
    inputs.extend(headers_in(&proto)?);
    inputs.extend(headers_in(&include.join("vulkan"))?);
    hash_files(&mut hash, &inputs)?;

    let lib = out_dir.join(format!("libvnref-{:016x}.so", hash.0));
    if lib.is_file() {
        return Ok(lib);
    }
    let tmp = out_dir.join(format!("libvnref.{}.tmp", std::process::id()));
    run(
        Command::new(&cc)
            .args(flags)
            .arg("-I")
            .arg(&stub)
            .arg("-I")
            .arg(&proto)
            .arg("-I")
            .arg(&include)
            .arg("-o")
            .arg(&tmp)
            .arg(&generated)
            .arg(&runtime),
        "compiling Mesa's encoders",
    )?;
    std::fs::rename(&tmp, &lib).map_err(|e| format!("cannot rename to {}: {e}", lib.display()))?;
    remove_stale(&out_dir, &lib);
    Ok(lib)
}

/// Best effort: drop libraries built from older inputs.
fn remove_stale(out_dir: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(out_dir) else {
        return;
    };
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("libvnref-") && name.ends_with(".so") && path != keep {
            let _ = std::fs::remove_file(&path);
        }
    }
}

fn load(path: &Path) -> Result<Loaded, String> {
    // SAFETY: the library is our harness; its initializers only set up
    // static data (no constructors besides the C runtime's).
    let library = unsafe { libloading::Library::new(path) }
        .map_err(|e| format!("cannot load {}: {e}", path.display()))?;

    macro_rules! sym {
        ($name:literal, $ty:ty) => {{
            // SAFETY: the symbol is defined in stub/vnref_runtime.c with the
            // C signature that $ty spells out (see stub/vnref.h).
            let s = unsafe { library.get::<$ty>(concat!($name, "\0").as_bytes()) };
            *s.map_err(|e| format!("{}: {}: {e}", path.display(), $name))?
        }};
    }

    Ok(Loaded {
        path: path.to_path_buf(),
        set_protocol: sym!("vnref_set_protocol", SetProtocolFn),
        command_count: sym!("vnref_command_count", CountFn),
        command_name: sym!("vnref_command_name", NameFn),
        command_param_count: sym!("vnref_command_param_count", ParamCountFn),
        command_param: sym!("vnref_command_param", ParamFn),
        command_return_kind: sym!("vnref_command_return_kind", ParamCountFn),
        sizeof_command: sym!("vnref_sizeof_command", SizeofFn),
        encode_command: sym!("vnref_encode_command", EncodeFn),
        sizeof_reply: sym!("vnref_sizeof_reply", SizeofReplyFn),
        decode_reply: sym!("vnref_decode_reply", DecodeReplyFn),
        last_assert: sym!("vnref_last_assert", LastAssertFn),
        _library: library,
    })
}
