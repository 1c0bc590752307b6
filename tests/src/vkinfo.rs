//! Runs `vulkaninfo` and compares what a device reports natively with what the same
//! device reports through the venus guest driver (Mesa 25.0.7) and our host translator.
//!
//! # What vulkaninfo 1.3.239 gives
//!
//! - `vulkaninfo --json` writes a *Vulkan Profiles* JSON document
//!   (`$schema` = profiles-0.8-latest) for GPU 0 to a file in the current directory,
//!   named `VP_VULKANINFO_<deviceName>_<driverVersion>.json`; `-o FILE` (`--output`)
//!   names the file instead (also relative to the current directory). Nothing goes to
//!   stdout. `--json=N` picks GPU N. The exit status is 0 on success, 1 when no
//!   instance or device could be created.
//! - The document holds `capabilities.device.{extensions, features, properties,
//!   formats, queueFamiliesProperties}` (plus a `profiles` section with a date,
//!   ignored here). It has **no memory heaps or types**: the profiles schema has none.
//!   They are parsed from the text output (`vulkaninfo --text`, section
//!   `VkPhysicalDeviceMemoryProperties:` of GPU0), leaving out the `budget` and `usage`
//!   of each heap, which change from run to run.
//!
//! # The comparison
//!
//! [`VulkanInfo::comparable`] is `{"device": capabilities.device, "memory": {...}}`.
//! [`diff`] walks two such documents: objects key by key, arrays of scalars (flag lists,
//! UUIDs) as one value, arrays of objects element by element (or as one value when their
//! lengths differ). Each [`Difference`] has a dotted path (array indices are segments),
//! the native value and the venus value (`None` when absent on that side).
//! [`compare`] first [`normalize`]s both documents (struct names lose their `KHR`/`EXT`
//! suffix: vulkaninfo names a promoted struct after its extension on a device whose
//! apiVersion predates the promotion, and venus may report a lower apiVersion), then
//! sorts the differences into expected ones (matched by an entry of
//! [`EXPECTED_DIFFERENCES`], whose rule also accepts the venus value) and unexpected
//! ones. Every expected difference states why, citing what Mesa's venus driver does in
//! `src/virtio/vulkan/vn_physical_device.c` (Mesa 25.0.7).

use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

/// Lavapipe's ICD manifest (Debian package `mesa-vulkan-drivers`).
pub const LVP_ICD: &str = "/usr/share/vulkan/icd.d/lvp_icd.json";
/// Venus's ICD manifest (Debian package `mesa-vulkan-drivers`).
pub const VENUS_ICD: &str = "/usr/share/vulkan/icd.d/virtio_icd.json";
/// How long one vulkaninfo run may take before it is killed.
pub const VULKANINFO_TIMEOUT: Duration = Duration::from_secs(120);

/// Loader and display variables removed from the inherited environment before every
/// vulkaninfo run, so that the given environment alone decides driver and layers.
pub const CLEARED_VARS: &[&str] = &[
    "VK_ICD_FILENAMES",
    "VK_DRIVER_FILES",
    "VK_ADD_DRIVER_FILES",
    "VK_INSTANCE_LAYERS",
    "VK_LOADER_LAYERS_ENABLE",
    "VK_LOADER_LAYERS_DISABLE",
    "VK_LOADER_DRIVERS_SELECT",
    "VK_LOADER_DRIVERS_DISABLE",
    "VK_LOADER_DEBUG",
    "MESA_VK_DEVICE_SELECT",
    "DISPLAY",
    "WAYLAND_DISPLAY",
];

/// An environment: variables set for a run (on top of the inherited ones minus
/// [`CLEARED_VARS`]).
pub type Env = [(String, String)];

/// The environment for native lavapipe.
pub fn native_lavapipe_env() -> Vec<(String, String)> {
    vec![("VK_DRIVER_FILES".into(), LVP_ICD.into())]
}

/// The environment for stock Mesa venus talking vtest to a server on `socket`
/// (`VN_DEBUG=vtest` selects the vtest renderer, `VTEST_SOCKET_NAME` its socket; the
/// default socket is `/tmp/.virgl_test`).
pub fn venus_vtest_env(socket: &Path) -> Vec<(String, String)> {
    vec![
        ("VK_DRIVER_FILES".into(), VENUS_ICD.into()),
        ("VN_DEBUG".into(), "vtest".into()),
        ("VTEST_SOCKET_NAME".into(), socket.display().to_string()),
    ]
}

/// Why running or reading vulkaninfo failed.
#[derive(Debug)]
pub enum VkInfoError {
    /// The program could not be started (not installed?).
    Spawn(String, std::io::Error),
    /// It ran but failed (non-zero exit, killed, or timed out).
    Failed {
        args: Vec<String>,
        status: String,
        stdout: String,
        stderr: String,
    },
    /// Reading or cleaning up its output file.
    Io(String, std::io::Error),
    /// The JSON output does not parse.
    Json(serde_json::Error),
    /// The output does not have the expected shape.
    Format(String),
}

impl fmt::Display for VkInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VkInfoError::Spawn(what, e) => write!(
                f,
                "cannot run {what}: {e} (Debian package vulkan-tools provides vulkaninfo)"
            ),
            VkInfoError::Failed {
                args,
                status,
                stdout,
                stderr,
            } => write!(
                f,
                "vulkaninfo {args:?} failed ({status})\n--- stdout\n{}\n--- stderr\n{}",
                tail(stdout, 4000),
                tail(stderr, 4000)
            ),
            VkInfoError::Io(what, e) => write!(f, "{what}: {e}"),
            VkInfoError::Json(e) => write!(f, "vulkaninfo JSON does not parse: {e}"),
            VkInfoError::Format(m) => write!(f, "unexpected vulkaninfo output: {m}"),
        }
    }
}

impl std::error::Error for VkInfoError {}

fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// The vulkaninfo program: `$VULKANINFO` if set, else `vulkaninfo` from `PATH`.
fn vulkaninfo_program() -> OsString {
    std::env::var_os("VULKANINFO").unwrap_or_else(|| "vulkaninfo".into())
}

struct Ran {
    stdout: String,
    stderr: String,
}

/// Runs vulkaninfo with `args` in `dir` under `env`, killing it after the timeout.
fn run_vulkaninfo_raw(args: &[&str], env: &Env, dir: &Path) -> Result<Ran, VkInfoError> {
    let program = vulkaninfo_program();
    let mut cmd = Command::new(&program);
    for var in CLEARED_VARS {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| VkInfoError::Spawn(program.to_string_lossy().into_owned(), e))?;
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out_thread = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err_thread = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + VULKANINFO_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("timed out after {VULKANINFO_TIMEOUT:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("wait failed: {e}"));
            }
        }
    };
    let stdout = out_thread.join().unwrap_or_default();
    let stderr = err_thread.join().unwrap_or_default();
    match status {
        Ok(s) if s.success() => Ok(Ran { stdout, stderr }),
        Ok(s) => Err(VkInfoError::Failed {
            args: args.iter().map(|a| a.to_string()).collect(),
            status: s.to_string(),
            stdout,
            stderr,
        }),
        Err(status) => Err(VkInfoError::Failed {
            args: args.iter().map(|a| a.to_string()).collect(),
            status,
            stdout,
            stderr,
        }),
    }
}

/// A fresh, empty directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self, VkInfoError> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "venus-vkinfo-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir(&path)
            .map_err(|e| VkInfoError::Io(format!("create {}", path.display()), e))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `vulkaninfo --json -o vulkaninfo.json` in a temporary directory and returns the
/// whole parsed Vulkan Profiles document of GPU 0.
pub fn run_vulkaninfo_json(env: &Env) -> Result<Value, VkInfoError> {
    let dir = TempDir::new()?;
    let name = "vulkaninfo.json";
    run_vulkaninfo_raw(&["--json", "-o", name], env, &dir.0)?;
    let path = dir.0.join(name);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| VkInfoError::Io(format!("read {}", path.display()), e))?;
    serde_json::from_str(&text).map_err(VkInfoError::Json)
}

/// Runs plain `vulkaninfo --text` and checks it succeeded and printed a device section
/// (`Device Properties and Extensions`, `GPU0:`, `VkPhysicalDeviceProperties:`,
/// `VkPhysicalDeviceMemoryProperties:`). Returns the text.
pub fn run_vulkaninfo_text(env: &Env) -> Result<String, VkInfoError> {
    let dir = TempDir::new()?;
    let ran = run_vulkaninfo_raw(&["--text"], env, &dir.0)?;
    for needle in [
        "Device Properties and Extensions",
        "GPU0:",
        "VkPhysicalDeviceProperties:",
        "VkPhysicalDeviceMemoryProperties:",
        "deviceName",
    ] {
        if !ran.stdout.contains(needle) {
            return Err(VkInfoError::Format(format!(
                "text output lacks {needle:?}; stderr: {}",
                tail(&ran.stderr, 2000)
            )));
        }
    }
    Ok(ran.stdout)
}

/// What vulkaninfo reports about GPU 0, in comparable form.
#[derive(Clone, Debug, PartialEq)]
pub struct VulkanInfo {
    /// `capabilities.device` of the JSON profile.
    pub device: Value,
    /// Memory heaps and types parsed from the text output (see [`parse_memory_properties`]).
    pub memory: Value,
}

impl VulkanInfo {
    /// `{"device": ..., "memory": ...}`: the document [`diff`] and [`compare`] take.
    pub fn comparable(&self) -> Value {
        let mut m = Map::new();
        m.insert("device".into(), self.device.clone());
        m.insert("memory".into(), self.memory.clone());
        Value::Object(m)
    }

    /// `VkPhysicalDeviceProperties.deviceName`.
    pub fn device_name(&self) -> Option<&str> {
        self.device
            .pointer("/properties/VkPhysicalDeviceProperties/deviceName")
            .and_then(Value::as_str)
    }
}

/// Builds a [`VulkanInfo`] from a profile document and a text output.
pub fn vulkan_info_from(profile: &Value, text: &str) -> Result<VulkanInfo, VkInfoError> {
    let device = profile
        .pointer("/capabilities/device")
        .cloned()
        .ok_or_else(|| VkInfoError::Format("JSON has no capabilities.device".into()))?;
    for key in [
        "extensions",
        "features",
        "properties",
        "formats",
        "queueFamiliesProperties",
    ] {
        if device.get(key).is_none() {
            return Err(VkInfoError::Format(format!(
                "JSON capabilities.device has no {key}"
            )));
        }
    }
    Ok(VulkanInfo {
        device,
        memory: parse_memory_properties(text)?,
    })
}

/// Runs vulkaninfo twice (JSON profile and text) under `env`.
pub fn run_vulkaninfo(env: &Env) -> Result<VulkanInfo, VkInfoError> {
    let profile = run_vulkaninfo_json(env)?;
    let text = run_vulkaninfo_text(env)?;
    let info = vulkan_info_from(&profile, &text)?;
    // Both runs must describe the same device.
    let text_name = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("deviceName"))
        .and_then(|rest| rest.split_once('='))
        .map(|(_, name)| name.trim().to_string());
    if text_name.as_deref() != info.device_name() {
        return Err(VkInfoError::Format(format!(
            "JSON describes {:?} but the text output {text_name:?}",
            info.device_name()
        )));
    }
    Ok(info)
}

/// One line of an indented text section: depth (leading tabs) and content.
struct Node {
    text: String,
    children: Vec<Node>,
}

fn build_tree(lines: &[(usize, &str)]) -> Vec<Node> {
    fn build(lines: &[(usize, &str)], i: &mut usize, depth: usize) -> Vec<Node> {
        let mut out = Vec::new();
        while *i < lines.len() {
            let (d, text) = lines[*i];
            if d < depth {
                break;
            }
            *i += 1;
            let children = build(lines, i, d + 1);
            out.push(Node {
                text: text.to_string(),
                children,
            });
        }
        out
    }
    let mut i = 0;
    let base = lines.iter().map(|(d, _)| *d).min().unwrap_or(0);
    build(lines, &mut i, base)
}

/// `key = value...` or `key: ...` -> (key, rest after the separator).
fn split_key(text: &str) -> (&str, &str) {
    let eq = text.find('=');
    let colon = text.find(':');
    let at = match (eq, colon) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return (text.trim(), ""),
    };
    (text[..at].trim(), text[at + 1..].trim())
}

/// `... count = N` -> N.
fn count_of(text: &str) -> Option<usize> {
    text.rsplit_once("count =")
        .and_then(|(_, n)| n.trim().parse().ok())
}

fn flag_list(node: &Node) -> Value {
    Value::Array(
        node.children
            .iter()
            .map(|c| c.text.trim())
            .filter(|t| *t != "None")
            .map(|t| Value::String(t.to_string()))
            .collect(),
    )
}

fn first_number(text: &str) -> Result<u64, VkInfoError> {
    let token = text.split_whitespace().next().unwrap_or("");
    token
        .parse()
        .map_err(|_| VkInfoError::Format(format!("expected a number in {text:?}")))
}

/// Parses the `VkPhysicalDeviceMemoryProperties:` section of the first GPU of a
/// `vulkaninfo --text` output into
/// `{"memoryHeaps": [{"size", "flags"}], "memoryTypes": [{"heapIndex", "propertyFlags",
/// "usableFor": {tiling: [..]}}]}` (flag names as printed, `budget`/`usage` left out).
pub fn parse_memory_properties(text: &str) -> Result<Value, VkInfoError> {
    let mut lines = text.lines();
    lines
        .by_ref()
        .find(|l| l.trim() == "VkPhysicalDeviceMemoryProperties:")
        .ok_or_else(|| VkInfoError::Format("no VkPhysicalDeviceMemoryProperties section".into()))?;
    let section: Vec<(usize, &str)> = lines
        .skip_while(|l| l.trim().chars().all(|c| c == '='))
        .take_while(|l| !l.trim().is_empty())
        .map(|l| (l.len() - l.trim_start_matches('\t').len(), l.trim()))
        .collect();
    let tree = build_tree(&section);
    let mut heaps = None;
    let mut types = None;
    for node in &tree {
        let (key, _) = split_key(&node.text);
        let want = count_of(&node.text);
        let items: Result<Vec<Value>, VkInfoError> = match key {
            "memoryHeaps" => node.children.iter().map(parse_heap).collect(),
            "memoryTypes" => node.children.iter().map(parse_type).collect(),
            _ => continue,
        };
        let items = items?;
        if want != Some(items.len()) {
            return Err(VkInfoError::Format(format!(
                "{:?} announces {want:?} entries, {} found",
                node.text,
                items.len()
            )));
        }
        if key == "memoryHeaps" {
            heaps = Some(items);
        } else {
            types = Some(items);
        }
    }
    let (Some(heaps), Some(types)) = (heaps, types) else {
        return Err(VkInfoError::Format(
            "memory section lacks memoryHeaps or memoryTypes".into(),
        ));
    };
    let mut m = Map::new();
    m.insert("memoryHeaps".into(), Value::Array(heaps));
    m.insert("memoryTypes".into(), Value::Array(types));
    Ok(Value::Object(m))
}

fn parse_heap(node: &Node) -> Result<Value, VkInfoError> {
    let mut m = Map::new();
    for c in &node.children {
        let (key, rest) = split_key(&c.text);
        match key {
            "size" => {
                m.insert("size".into(), Value::from(first_number(rest)?));
            }
            "flags" => {
                m.insert("flags".into(), flag_list(c));
            }
            // budget and usage change from run to run.
            _ => {}
        }
    }
    if !m.contains_key("size") || !m.contains_key("flags") {
        return Err(VkInfoError::Format(format!(
            "heap {:?} lacks size or flags",
            node.text
        )));
    }
    Ok(Value::Object(m))
}

fn parse_type(node: &Node) -> Result<Value, VkInfoError> {
    let mut m = Map::new();
    for c in &node.children {
        let (key, rest) = split_key(&c.text);
        match key {
            "heapIndex" => {
                m.insert("heapIndex".into(), Value::from(first_number(rest)?));
            }
            "propertyFlags" => {
                m.insert("propertyFlags".into(), flag_list(c));
            }
            "usable for" => {
                let mut usable = Map::new();
                for tiling in &c.children {
                    let (name, _) = split_key(&tiling.text);
                    usable.insert(name.to_string(), flag_list(tiling));
                }
                m.insert("usableFor".into(), Value::Object(usable));
            }
            _ => {}
        }
    }
    if !m.contains_key("heapIndex") || !m.contains_key("propertyFlags") {
        return Err(VkInfoError::Format(format!(
            "memory type {:?} lacks heapIndex or propertyFlags",
            node.text
        )));
    }
    Ok(Value::Object(m))
}

// ---------------------------------------------------------------------------------------
// Differences
// ---------------------------------------------------------------------------------------

/// One difference between the native and the venus document.
#[derive(Clone, Debug, PartialEq)]
pub struct Difference {
    /// Path segments (object keys; array indices as decimal strings).
    pub path: Vec<String>,
    /// The native value, `None` when absent natively.
    pub native: Option<Value>,
    /// The venus value, `None` when absent through venus.
    pub venus: Option<Value>,
}

impl Difference {
    /// The dotted path, e.g. `device.properties.VkPhysicalDeviceProperties.deviceName`.
    pub fn path_string(&self) -> String {
        self.path.join(".")
    }
}

fn short(v: &Option<Value>) -> String {
    match v {
        None => "<absent>".into(),
        Some(v) => {
            let s = v.to_string();
            if s.len() > 160 {
                let mut end = 157;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                format!("{}...", &s[..end])
            } else {
                s
            }
        }
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: native {} venus {}",
            self.path_string(),
            short(&self.native),
            short(&self.venus)
        )
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

/// All differences between `native` and `venus` (see the module documentation; no
/// [`normalize`]ation here, [`compare`] does it).
pub fn diff(native: &Value, venus: &Value) -> Vec<Difference> {
    let mut out = Vec::new();
    diff_into(&mut Vec::new(), Some(native), Some(venus), &mut out);
    out
}

fn diff_into(
    path: &mut Vec<String>,
    native: Option<&Value>,
    venus: Option<&Value>,
    out: &mut Vec<Difference>,
) {
    let whole = |path: &Vec<String>, out: &mut Vec<Difference>| {
        out.push(Difference {
            path: path.clone(),
            native: native.cloned(),
            venus: venus.cloned(),
        })
    };
    match (native, venus) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                path.push(k.clone());
                diff_into(path, a.get(k), b.get(k), out);
                path.pop();
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b)))
            if a.len() == b.len() && !(a.iter().all(is_scalar) && b.iter().all(is_scalar)) =>
        {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                path.push(i.to_string());
                diff_into(path, Some(x), Some(y), out);
                path.pop();
            }
        }
        (a, b) if a == b => {}
        _ => whole(path, out),
    }
}

// ---------------------------------------------------------------------------------------
// Expected differences
// ---------------------------------------------------------------------------------------

/// Both whole documents ([`VulkanInfo::comparable`]), for rules that look elsewhere.
#[derive(Clone, Copy)]
pub struct Documents<'a> {
    pub native: &'a Value,
    pub venus: &'a Value,
}

impl<'a> Documents<'a> {
    /// A value of the venus document by dotted path.
    pub fn venus_at(&self, path: &str) -> Option<&'a Value> {
        at(self.venus, path)
    }

    /// A value of the native document by dotted path.
    pub fn native_at(&self, path: &str) -> Option<&'a Value> {
        at(self.native, path)
    }

    /// Whether the venus device advertises a device extension.
    pub fn venus_has_extension(&self, name: &str) -> bool {
        self.venus_at("device.extensions")
            .and_then(|e| e.get(name))
            .is_some()
    }

    /// The venus device's apiVersion.
    pub fn venus_api_version(&self) -> Option<u64> {
        self.venus_at("device.properties.VkPhysicalDeviceProperties.apiVersion")
            .and_then(Value::as_u64)
    }
}

fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, seg| match v {
        Value::Object(m) => m.get(seg),
        Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// What an expected difference allows.
#[derive(Clone, Copy)]
pub enum Rule {
    /// Anything: a changed value, or presence on one side only.
    Any,
    /// The venus value is this JSON (given as JSON text), whatever the native one.
    VenusIs(&'static str),
    /// Present natively, absent through venus.
    Absent,
    /// Absent natively, present through venus.
    Added,
    /// A predicate over the documents and the difference.
    Check(fn(&Documents<'_>, &Difference) -> bool),
}

impl Rule {
    fn accepts(&self, docs: &Documents<'_>, d: &Difference) -> bool {
        match self {
            Rule::Any => true,
            Rule::VenusIs(json) => match serde_json::from_str::<Value>(json) {
                Ok(want) => d.venus.as_ref() == Some(&want),
                Err(_) => false,
            },
            Rule::Absent => d.native.is_some() && d.venus.is_none(),
            Rule::Added => d.native.is_none() && d.venus.is_some(),
            Rule::Check(f) => f(docs, d),
        }
    }
}

/// A difference between native and venus that is expected, and why.
#[derive(Clone, Copy)]
pub struct ExpectedDifference {
    /// Dotted path; a segment `*` matches any one segment, a segment with a `*` inside
    /// (`sparse*`) matches by prefix and suffix.
    pub pattern: &'static str,
    pub rule: Rule,
    pub reason: &'static str,
}

impl ExpectedDifference {
    /// Whether the pattern matches a path.
    pub fn matches(&self, path: &[String]) -> bool {
        let segs: Vec<&str> = self.pattern.split('.').collect();
        segs.len() == path.len()
            && segs.iter().zip(path).all(|(p, s)| match p.split_once('*') {
                None => p == s,
                Some((pre, suf)) => {
                    s.len() >= pre.len() + suf.len() && s.starts_with(pre) && s.ends_with(suf)
                }
            })
    }
}

/// An expected difference found, with the entry that explains it.
#[derive(Clone)]
pub struct Explained {
    pub difference: Difference,
    pub pattern: &'static str,
    pub reason: &'static str,
}

/// An unexpected difference; `rejected_by` lists patterns that matched its path but
/// whose rule did not accept the values.
#[derive(Clone, Debug)]
pub struct Unexpected {
    pub difference: Difference,
    pub rejected_by: Vec<&'static str>,
}

/// The result of a comparison.
#[derive(Clone, Default)]
pub struct Comparison {
    pub expected: Vec<Explained>,
    pub unexpected: Vec<Unexpected>,
}

impl Comparison {
    /// No unexpected difference.
    pub fn is_clean(&self) -> bool {
        self.unexpected.is_empty()
    }

    /// A readable report: unexpected differences first, then the expected ones.
    pub fn report(&self) -> String {
        let mut s = format!(
            "{} unexpected difference(s), {} expected\n",
            self.unexpected.len(),
            self.expected.len()
        );
        for u in &self.unexpected {
            s.push_str(&format!("UNEXPECTED {}\n", u.difference));
            if !u.rejected_by.is_empty() {
                s.push_str(&format!(
                    "    (path matches {:?} but the rule rejects the values)\n",
                    u.rejected_by
                ));
            }
        }
        for e in &self.expected {
            s.push_str(&format!("expected   {}  [{}]\n", e.difference, e.pattern));
        }
        s
    }
}

/// A struct name without its `KHR`/`EXT` suffix: vulkaninfo names a struct after its
/// extension when the device's apiVersion is below the version that promoted it
/// (`VkPhysicalDeviceMaintenance4FeaturesKHR` on a 1.2 device, `...Features` on 1.3).
pub fn canonical_struct_name(name: &str) -> &str {
    if !name.starts_with("Vk") {
        return name;
    }
    name.strip_suffix("KHR")
        .or_else(|| name.strip_suffix("EXT"))
        .unwrap_or(name)
}

fn canonical_keys(obj: &mut Value) {
    let Value::Object(m) = obj else {
        return;
    };
    let old = std::mem::take(m);
    let canon: Vec<&str> = old.keys().map(|k| canonical_struct_name(k)).collect();
    for (k, v) in old.iter() {
        let c = canonical_struct_name(k);
        // Keep the original name if two names would collide (both aliases present).
        let key = if canon.iter().filter(|x| **x == c).count() > 1 {
            k.as_str()
        } else {
            c
        };
        m.insert(key.to_string(), v.clone());
    }
}

/// Renames the structs of a comparable document to [`canonical_struct_name`]s: the
/// keys of `device.features`, `device.properties`, each `device.formats.<format>` and
/// each `device.queueFamiliesProperties[i]`.
pub fn normalize(doc: &Value) -> Value {
    let mut doc = doc.clone();
    if let Some(dev) = doc.get_mut("device") {
        for key in ["features", "properties"] {
            if let Some(v) = dev.get_mut(key) {
                canonical_keys(v);
            }
        }
        if let Some(Value::Object(formats)) = dev.get_mut("formats") {
            formats.values_mut().for_each(canonical_keys);
        }
        if let Some(Value::Array(families)) = dev.get_mut("queueFamiliesProperties") {
            families.iter_mut().for_each(canonical_keys);
        }
    }
    doc
}

/// Compares two comparable documents (normalized first, see [`normalize`]) against a
/// table of expected differences.
pub fn compare(native: &Value, venus: &Value, table: &[ExpectedDifference]) -> Comparison {
    let (native, venus) = (&normalize(native), &normalize(venus));
    let docs = Documents { native, venus };
    let mut result = Comparison::default();
    for d in diff(native, venus) {
        let mut rejected_by = Vec::new();
        let mut explained = None;
        for e in table.iter().filter(|e| e.matches(&d.path)) {
            if e.rule.accepts(&docs, &d) {
                explained = Some(e);
                break;
            }
            rejected_by.push(e.pattern);
        }
        match explained {
            Some(e) => result.expected.push(Explained {
                difference: d,
                pattern: e.pattern,
                reason: e.reason,
            }),
            None => result.unexpected.push(Unexpected {
                difference: d,
                rejected_by,
            }),
        }
    }
    result
}

/// Runs vulkaninfo natively on lavapipe and through venus (`env_for_venus`, e.g.
/// [`venus_vtest_env`]) and compares the two against [`EXPECTED_DIFFERENCES`].
/// The end-to-end test asserts `is_clean()` and prints `report()`.
pub fn compare_venus_against_native(env_for_venus: &Env) -> Result<Comparison, VkInfoError> {
    let native = run_vulkaninfo(&native_lavapipe_env())?;
    let venus = run_vulkaninfo(env_for_venus)?;
    let name_ok = venus
        .device_name()
        .is_some_and(|n| n.starts_with("Virtio-GPU Venus ("));
    if !name_ok {
        return Err(VkInfoError::Format(format!(
            "the venus environment did not give a venus device but {:?}",
            venus.device_name()
        )));
    }
    Ok(compare(
        &native.comparable(),
        &venus.comparable(),
        EXPECTED_DIFFERENCES,
    ))
}

// ---------------------------------------------------------------------------------------
// What Mesa 25.0.7's venus does (src/virtio/vulkan/vn_physical_device.c)
// ---------------------------------------------------------------------------------------

/// `vn_physical_device_get_passthrough_extensions`: extensions venus exposes when the
/// renderer (host) exposes them. `EXT_memory_budget` is listed there as `false` and is
/// therefore not here; `KHR_synchronization2` is conditional (see
/// [`VENUS_CONDITIONAL_EXTENSIONS`]).
pub const VENUS_PASSTHROUGH_EXTENSIONS: &[&str] = &[
    // promoted to 1.1
    "VK_KHR_16bit_storage",
    "VK_KHR_bind_memory2",
    "VK_KHR_dedicated_allocation",
    "VK_KHR_descriptor_update_template",
    "VK_KHR_device_group",
    "VK_KHR_external_fence",
    "VK_KHR_external_memory",
    "VK_KHR_external_semaphore",
    "VK_KHR_get_memory_requirements2",
    "VK_KHR_maintenance1",
    "VK_KHR_maintenance2",
    "VK_KHR_maintenance3",
    "VK_KHR_multiview",
    "VK_KHR_relaxed_block_layout",
    "VK_KHR_sampler_ycbcr_conversion",
    "VK_KHR_shader_draw_parameters",
    "VK_KHR_storage_buffer_storage_class",
    "VK_KHR_variable_pointers",
    // promoted to 1.2
    "VK_KHR_8bit_storage",
    "VK_KHR_buffer_device_address",
    "VK_KHR_create_renderpass2",
    "VK_KHR_depth_stencil_resolve",
    "VK_KHR_draw_indirect_count",
    "VK_KHR_driver_properties",
    "VK_KHR_image_format_list",
    "VK_KHR_imageless_framebuffer",
    "VK_KHR_sampler_mirror_clamp_to_edge",
    "VK_KHR_separate_depth_stencil_layouts",
    "VK_KHR_shader_atomic_int64",
    "VK_KHR_shader_float16_int8",
    "VK_KHR_shader_float_controls",
    "VK_KHR_shader_subgroup_extended_types",
    "VK_KHR_spirv_1_4",
    "VK_KHR_timeline_semaphore",
    "VK_KHR_uniform_buffer_standard_layout",
    "VK_KHR_vulkan_memory_model",
    "VK_EXT_descriptor_indexing",
    "VK_EXT_host_query_reset",
    "VK_EXT_sampler_filter_minmax",
    "VK_EXT_scalar_block_layout",
    "VK_EXT_separate_stencil_usage",
    "VK_EXT_shader_viewport_index_layer",
    // promoted to 1.3
    "VK_KHR_copy_commands2",
    "VK_KHR_dynamic_rendering",
    "VK_KHR_format_feature_flags2",
    "VK_KHR_maintenance4",
    "VK_KHR_shader_integer_dot_product",
    "VK_KHR_shader_non_semantic_info",
    "VK_KHR_shader_terminate_invocation",
    "VK_KHR_zero_initialize_workgroup_memory",
    "VK_EXT_4444_formats",
    "VK_EXT_extended_dynamic_state",
    "VK_EXT_extended_dynamic_state2",
    "VK_EXT_image_robustness",
    "VK_EXT_inline_uniform_block",
    "VK_EXT_pipeline_creation_cache_control",
    "VK_EXT_pipeline_creation_feedback",
    "VK_EXT_shader_demote_to_helper_invocation",
    "VK_EXT_subgroup_size_control",
    "VK_EXT_texel_buffer_alignment",
    "VK_EXT_texture_compression_astc_hdr",
    "VK_EXT_ycbcr_2plane_444_formats",
    // KHR
    "VK_KHR_fragment_shading_rate",
    "VK_KHR_maintenance5",
    "VK_KHR_pipeline_library",
    "VK_KHR_push_descriptor",
    "VK_KHR_shader_clock",
    "VK_KHR_shader_expect_assume",
    // EXT
    "VK_EXT_attachment_feedback_loop_layout",
    "VK_EXT_border_color_swizzle",
    "VK_EXT_calibrated_timestamps",
    "VK_EXT_color_write_enable",
    "VK_EXT_conditional_rendering",
    "VK_EXT_conservative_rasterization",
    "VK_EXT_custom_border_color",
    "VK_EXT_depth_clip_control",
    "VK_EXT_depth_clip_enable",
    "VK_EXT_extended_dynamic_state3",
    "VK_EXT_dynamic_rendering_unused_attachments",
    "VK_EXT_external_memory_acquire_unmodified",
    "VK_EXT_fragment_shader_interlock",
    "VK_EXT_graphics_pipeline_library",
    "VK_EXT_image_2d_view_of_3d",
    "VK_EXT_image_drm_format_modifier",
    "VK_EXT_image_view_min_lod",
    "VK_EXT_index_type_uint8",
    "VK_EXT_line_rasterization",
    "VK_EXT_load_store_op_none",
    "VK_EXT_multi_draw",
    "VK_EXT_mutable_descriptor_type",
    "VK_EXT_non_seamless_cube_map",
    "VK_EXT_primitive_topology_list_restart",
    "VK_EXT_primitives_generated_query",
    "VK_EXT_private_data",
    "VK_EXT_provoking_vertex",
    "VK_EXT_queue_family_foreign",
    "VK_EXT_rasterization_order_attachment_access",
    "VK_EXT_robustness2",
    "VK_EXT_shader_stencil_export",
    "VK_EXT_shader_subgroup_ballot",
    "VK_EXT_transform_feedback",
    "VK_EXT_vertex_attribute_divisor",
    "VK_EXT_vertex_input_dynamic_state",
    // vendor
    "VK_VALVE_mutable_descriptor_type",
];

/// Extensions of [`VENUS_PASSTHROUGH_EXTENSIONS`] missing from Mesa 25.0.7's venus
/// protocol table (`vn_protocol_driver_info.h`, 118 extensions): the encoder reports
/// spec version 0 for them, so `vn_physical_device_init_renderer_extensions` never
/// marks them as supported by the renderer and venus does not expose them.
pub const VENUS_PASSTHROUGH_NOT_ENCODED: &[&str] = &["VK_KHR_shader_expect_assume"];

/// Extensions venus always implements itself (`vn_physical_device_get_native_extensions`).
pub const VENUS_NATIVE_EXTENSIONS: &[&str] = &[
    "VK_EXT_physical_device_drm",
    "VK_EXT_tooling_info",
    "VK_EXT_device_memory_report",
];

/// Extensions whose presence through venus depends on the renderer's abilities
/// (`vn_physical_device_get_native_extensions` / `..._get_passthrough_extensions`):
/// - `KHR_external_fence_fd` / `KHR_external_semaphore_fd`: need `has_external_sync`
///   (false for the vtest renderer) and a renderer exporting/importing sync fds;
/// - `KHR_external_memory_fd`, `EXT_external_memory_dma_buf`: need the renderer's
///   `EXT_external_memory_dma_buf` + `EXT_image_drm_format_modifier` +
///   `EXT_queue_family_foreign` (lavapipe without DRM lacks the modifier extension);
/// - `KHR_swapchain`, `KHR_swapchain_mutable_format`, `KHR_incremental_present`: need
///   that external memory and an importable renderer sync-fd semaphore (WSI build);
/// - `EXT_pci_bus_info`: needs PCI bus info from the renderer;
/// - `KHR_synchronization2`: with WSI platforms built in (Debian builds X11 and
///   Wayland, so `VN_USE_WSI_PLATFORM`), only when the renderer can import sync-fd
///   semaphores (`renderer_sync_fd.semaphore_importable`, i.e. its
///   `KHR_external_semaphore_fd` with SYNC_FD importable); lavapipe without a DRM
///   device has no `KHR_external_semaphore_fd`.
pub const VENUS_CONDITIONAL_EXTENSIONS: &[&str] = &[
    "VK_KHR_external_fence_fd",
    "VK_KHR_external_semaphore_fd",
    "VK_KHR_external_memory_fd",
    "VK_EXT_external_memory_dma_buf",
    "VK_KHR_swapchain",
    "VK_KHR_swapchain_mutable_format",
    "VK_KHR_incremental_present",
    "VK_EXT_pci_bus_info",
    "VK_KHR_synchronization2",
];

/// Feature structs (vulkaninfo's names) that venus fills from the renderer
/// (`vn_physical_device_init_features`) or itself (`deviceMemoryReport`).
pub const VENUS_FEATURE_STRUCTS: &[&str] = &[
    "VkPhysicalDeviceFeatures",
    "VkPhysicalDeviceVulkan11Features",
    "VkPhysicalDeviceVulkan12Features",
    "VkPhysicalDeviceVulkan13Features",
    "VkPhysicalDevice16BitStorageFeatures",
    "VkPhysicalDeviceMultiviewFeatures",
    "VkPhysicalDeviceVariablePointersFeatures",
    "VkPhysicalDeviceProtectedMemoryFeatures",
    "VkPhysicalDeviceSamplerYcbcrConversionFeatures",
    "VkPhysicalDeviceShaderDrawParametersFeatures",
    "VkPhysicalDevice8BitStorageFeatures",
    "VkPhysicalDeviceShaderAtomicInt64Features",
    "VkPhysicalDeviceShaderFloat16Int8Features",
    "VkPhysicalDeviceDescriptorIndexingFeatures",
    "VkPhysicalDeviceScalarBlockLayoutFeatures",
    "VkPhysicalDeviceImagelessFramebufferFeatures",
    "VkPhysicalDeviceUniformBufferStandardLayoutFeatures",
    "VkPhysicalDeviceShaderSubgroupExtendedTypesFeatures",
    "VkPhysicalDeviceSeparateDepthStencilLayoutsFeatures",
    "VkPhysicalDeviceHostQueryResetFeatures",
    "VkPhysicalDeviceTimelineSemaphoreFeatures",
    "VkPhysicalDeviceBufferDeviceAddressFeatures",
    "VkPhysicalDeviceVulkanMemoryModelFeatures",
    "VkPhysicalDeviceDynamicRenderingFeatures",
    "VkPhysicalDeviceImageRobustnessFeatures",
    "VkPhysicalDeviceInlineUniformBlockFeatures",
    "VkPhysicalDeviceMaintenance4Features",
    "VkPhysicalDevicePipelineCreationCacheControlFeatures",
    "VkPhysicalDevicePrivateDataFeatures",
    "VkPhysicalDeviceShaderDemoteToHelperInvocationFeatures",
    "VkPhysicalDeviceShaderIntegerDotProductFeatures",
    "VkPhysicalDeviceShaderTerminateInvocationFeatures",
    "VkPhysicalDeviceSynchronization2Features",
    "VkPhysicalDeviceSubgroupSizeControlFeatures",
    "VkPhysicalDeviceTextureCompressionASTCHDRFeatures",
    "VkPhysicalDeviceZeroInitializeWorkgroupMemoryFeatures",
    "VkPhysicalDevice4444FormatsFeaturesEXT",
    "VkPhysicalDeviceExtendedDynamicStateFeaturesEXT",
    "VkPhysicalDeviceExtendedDynamicState2FeaturesEXT",
    "VkPhysicalDeviceTexelBufferAlignmentFeaturesEXT",
    "VkPhysicalDeviceYcbcr2Plane444FormatsFeaturesEXT",
    "VkPhysicalDeviceFragmentShadingRateFeaturesKHR",
    "VkPhysicalDeviceMaintenance5FeaturesKHR",
    "VkPhysicalDeviceShaderClockFeaturesKHR",
    "VkPhysicalDeviceShaderExpectAssumeFeaturesKHR",
    "VkPhysicalDeviceAttachmentFeedbackLoopLayoutFeaturesEXT",
    "VkPhysicalDeviceBorderColorSwizzleFeaturesEXT",
    "VkPhysicalDeviceColorWriteEnableFeaturesEXT",
    "VkPhysicalDeviceConditionalRenderingFeaturesEXT",
    "VkPhysicalDeviceCustomBorderColorFeaturesEXT",
    "VkPhysicalDeviceDepthClipControlFeaturesEXT",
    "VkPhysicalDeviceDepthClipEnableFeaturesEXT",
    "VkPhysicalDeviceDynamicRenderingUnusedAttachmentsFeaturesEXT",
    "VkPhysicalDeviceExtendedDynamicState3FeaturesEXT",
    "VkPhysicalDeviceFragmentShaderInterlockFeaturesEXT",
    "VkPhysicalDeviceGraphicsPipelineLibraryFeaturesEXT",
    "VkPhysicalDeviceImage2DViewOf3DFeaturesEXT",
    "VkPhysicalDeviceImageViewMinLodFeaturesEXT",
    "VkPhysicalDeviceIndexTypeUint8FeaturesEXT",
    "VkPhysicalDeviceLineRasterizationFeaturesEXT",
    "VkPhysicalDeviceMultiDrawFeaturesEXT",
    "VkPhysicalDeviceMutableDescriptorTypeFeaturesEXT",
    "VkPhysicalDeviceNonSeamlessCubeMapFeaturesEXT",
    "VkPhysicalDevicePrimitiveTopologyListRestartFeaturesEXT",
    "VkPhysicalDevicePrimitivesGeneratedQueryFeaturesEXT",
    "VkPhysicalDeviceProvokingVertexFeaturesEXT",
    "VkPhysicalDeviceRasterizationOrderAttachmentAccessFeaturesEXT",
    "VkPhysicalDeviceRobustness2FeaturesEXT",
    "VkPhysicalDeviceTransformFeedbackFeaturesEXT",
    "VkPhysicalDeviceVertexAttributeDivisorFeaturesEXT",
    "VkPhysicalDeviceVertexInputDynamicStateFeaturesEXT",
    "VkPhysicalDeviceDeviceMemoryReportFeaturesEXT",
];

/// Property structs (vulkaninfo's names) that venus fills from the renderer
/// (`vn_physical_device_init_properties`) or itself (DRM, PCI bus info).
pub const VENUS_PROPERTY_STRUCTS: &[&str] = &[
    "VkPhysicalDeviceProperties",
    "VkPhysicalDeviceVulkan11Properties",
    "VkPhysicalDeviceVulkan12Properties",
    "VkPhysicalDeviceVulkan13Properties",
    "VkPhysicalDeviceIDProperties",
    "VkPhysicalDeviceSubgroupProperties",
    "VkPhysicalDevicePointClippingProperties",
    "VkPhysicalDeviceMultiviewProperties",
    "VkPhysicalDeviceProtectedMemoryProperties",
    "VkPhysicalDeviceMaintenance3Properties",
    "VkPhysicalDeviceDriverProperties",
    "VkPhysicalDeviceFloatControlsProperties",
    "VkPhysicalDeviceDescriptorIndexingProperties",
    "VkPhysicalDeviceDepthStencilResolveProperties",
    "VkPhysicalDeviceSamplerFilterMinmaxProperties",
    "VkPhysicalDeviceTimelineSemaphoreProperties",
    "VkPhysicalDeviceInlineUniformBlockProperties",
    "VkPhysicalDeviceMaintenance4Properties",
    "VkPhysicalDeviceShaderIntegerDotProductProperties",
    "VkPhysicalDeviceSubgroupSizeControlProperties",
    "VkPhysicalDeviceTexelBufferAlignmentProperties",
    "VkPhysicalDeviceMaintenance5PropertiesKHR",
    "VkPhysicalDevicePushDescriptorPropertiesKHR",
    "VkPhysicalDeviceFragmentShadingRatePropertiesKHR",
    "VkPhysicalDeviceConservativeRasterizationPropertiesEXT",
    "VkPhysicalDeviceCustomBorderColorPropertiesEXT",
    "VkPhysicalDeviceExtendedDynamicState3PropertiesEXT",
    "VkPhysicalDeviceGraphicsPipelineLibraryPropertiesEXT",
    "VkPhysicalDeviceLineRasterizationPropertiesEXT",
    "VkPhysicalDeviceMultiDrawPropertiesEXT",
    "VkPhysicalDevicePCIBusInfoPropertiesEXT",
    "VkPhysicalDeviceProvokingVertexPropertiesEXT",
    "VkPhysicalDeviceRobustness2PropertiesEXT",
    "VkPhysicalDeviceTransformFeedbackPropertiesEXT",
    "VkPhysicalDeviceVertexAttributeDivisorPropertiesEXT",
    "VkPhysicalDeviceDrmPropertiesEXT",
];

/// `VK_MAKE_API_VERSION(0, major, minor, patch)`.
pub const fn make_version(major: u64, minor: u64, patch: u64) -> u64 {
    (major << 22) | (minor << 12) | patch
}

/// `vn_info_vk_xml_version()` of Mesa 25.0.7's venus protocol: 1.3.269.
pub const VENUS_VK_XML_VERSION: u64 = make_version(1, 3, 269);

fn last_segment(d: &Difference) -> &str {
    d.path.last().map(String::as_str).unwrap_or("")
}

fn venus_str<'a>(docs: &Documents<'a>, path: &str) -> Option<&'a str> {
    docs.venus_at(path).and_then(Value::as_str)
}

fn check_device_name(_: &Documents<'_>, d: &Difference) -> bool {
    let (Some(Value::String(native)), Some(Value::String(venus))) = (&d.native, &d.venus) else {
        return false;
    };
    // snprintf into VK_MAX_PHYSICAL_DEVICE_NAME_SIZE (256) bytes; when truncated, the
    // end becomes "...)".
    let full = format!("Virtio-GPU Venus ({native})");
    if full.len() < 256 {
        venus == &full
    } else {
        venus.len() == 255
            && venus.ends_with("...)")
            && full.as_bytes()[..251] == venus.as_bytes()[..251]
    }
}

fn check_api_version(docs: &Documents<'_>, d: &Difference) -> bool {
    let (Some(native), Some(venus)) = (
        d.native.as_ref().and_then(Value::as_u64),
        d.venus.as_ref().and_then(Value::as_u64),
    ) else {
        return false;
    };
    let minor = |v: u64| (v >> 12) & 0x3ff;
    let cap = native.min(VENUS_VK_XML_VERSION);
    let sync2 = docs.venus_has_extension("VK_KHR_synchronization2");
    venus <= cap
        && venus >> 22 == 1
        && if sync2 {
            minor(venus) == 3
        } else {
            minor(venus) == 2
        }
}

/// `Mesa 25.0.7...` -> VK_MAKE_VERSION(25, 0, 7) (`vk_get_driver_version`).
fn mesa_version_from_driver_info(info: &str) -> Option<u64> {
    let rest = info.strip_prefix("Mesa ")?;
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = digits.split('.').map(|p| p.parse::<u64>().ok());
    let major = parts.next()??;
    let minor = parts.next()??;
    let patch = parts.next().flatten().unwrap_or(0);
    Some(make_version(major, minor, patch))
}

fn check_driver_version(docs: &Documents<'_>, d: &Difference) -> bool {
    let info = venus_str(
        docs,
        "device.properties.VkPhysicalDeviceDriverProperties.driverInfo",
    )
    .or_else(|| {
        venus_str(
            docs,
            "device.properties.VkPhysicalDeviceVulkan12Properties.driverInfo",
        )
    });
    match (
        info.and_then(mesa_version_from_driver_info),
        d.venus.as_ref().and_then(Value::as_u64),
    ) {
        (Some(want), Some(got)) => want == got,
        _ => false,
    }
}

fn bytes_of(v: &Value) -> Option<Vec<u8>> {
    v.as_array()?
        .iter()
        .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
        .collect()
}

fn venus_uuid_is_sha1_of(d: &Difference, input: &[u8]) -> bool {
    let digest = sha1(input);
    d.venus.as_ref().and_then(bytes_of).as_deref() == Some(&digest[..16])
}

fn check_pipeline_cache_uuid(_: &Documents<'_>, d: &Difference) -> bool {
    match d.native.as_ref().and_then(bytes_of) {
        Some(native) => venus_uuid_is_sha1_of(d, &native),
        None => false,
    }
}

fn check_device_uuid(docs: &Documents<'_>, d: &Difference) -> bool {
    let id = |k: &str| {
        docs.venus_at(&format!("device.properties.VkPhysicalDeviceProperties.{k}"))
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
    };
    let (Some(vendor), Some(device)) = (id("vendorID"), id("deviceID")) else {
        return false;
    };
    let mut input = vendor.to_le_bytes().to_vec();
    input.extend_from_slice(&device.to_le_bytes());
    venus_uuid_is_sha1_of(d, &input)
}

fn check_driver_uuid(docs: &Documents<'_>, d: &Difference) -> bool {
    // Driver name and info sit in the driver properties (or Vulkan 1.2 properties).
    let name_info = [
        "VkPhysicalDeviceDriverProperties",
        "VkPhysicalDeviceVulkan12Properties",
    ]
    .iter()
    .find_map(|s| {
        Some((
            venus_str(docs, &format!("device.properties.{s}.driverName"))?,
            venus_str(docs, &format!("device.properties.{s}.driverInfo"))?,
        ))
    });
    match name_info {
        Some((name, info)) => {
            let mut input = name.as_bytes().to_vec();
            input.extend_from_slice(info.as_bytes());
            venus_uuid_is_sha1_of(d, &input)
        }
        None => false,
    }
}

fn check_driver_info(_: &Documents<'_>, d: &Difference) -> bool {
    d.venus
        .as_ref()
        .and_then(Value::as_str)
        .is_some_and(|s| s.starts_with("Mesa "))
}

fn check_conformance_version(_: &Documents<'_>, d: &Difference) -> bool {
    let want = match last_segment(d) {
        "major" => 1,
        "minor" => 3,
        "subminor" | "patch" => 0,
        _ => return false,
    };
    d.venus.as_ref().and_then(Value::as_u64) == Some(want)
}

fn check_extension(_: &Documents<'_>, d: &Difference) -> bool {
    let name = last_segment(d);
    let conditional = VENUS_CONDITIONAL_EXTENSIONS.contains(&name);
    match (&d.native, &d.venus) {
        // Not exposed through venus: not passed through, or conditional.
        (Some(_), None) => {
            !VENUS_PASSTHROUGH_EXTENSIONS.contains(&name)
                || VENUS_PASSTHROUGH_NOT_ENCODED.contains(&name)
                || conditional
        }
        // Exposed only through venus: implemented by venus itself.
        (None, Some(_)) => VENUS_NATIVE_EXTENSIONS.contains(&name) || conditional,
        // Spec version: MIN(renderer, venus encoder, Mesa's table).
        (Some(n), Some(v)) => match (n.as_u64(), v.as_u64()) {
            (Some(n), Some(v)) => v <= n,
            _ => false,
        },
        (None, None) => false,
    }
}

/// Structs (canonical names) of Vulkan 1.3 and the extension each came from (`None`
/// for the core-only ones). vulkaninfo prints them on a 1.3 device, and on an older one
/// only when the extension is exposed.
pub const PROMOTED_TO_1_3: &[(&str, Option<&str>)] = &[
    ("VkPhysicalDeviceVulkan13Features", None),
    ("VkPhysicalDeviceVulkan13Properties", None),
    (
        "VkPhysicalDeviceDynamicRenderingFeatures",
        Some("VK_KHR_dynamic_rendering"),
    ),
    (
        "VkPhysicalDeviceImageRobustnessFeatures",
        Some("VK_EXT_image_robustness"),
    ),
    (
        "VkPhysicalDeviceInlineUniformBlockFeatures",
        Some("VK_EXT_inline_uniform_block"),
    ),
    (
        "VkPhysicalDeviceInlineUniformBlockProperties",
        Some("VK_EXT_inline_uniform_block"),
    ),
    (
        "VkPhysicalDeviceMaintenance4Features",
        Some("VK_KHR_maintenance4"),
    ),
    (
        "VkPhysicalDeviceMaintenance4Properties",
        Some("VK_KHR_maintenance4"),
    ),
    (
        "VkPhysicalDevicePipelineCreationCacheControlFeatures",
        Some("VK_EXT_pipeline_creation_cache_control"),
    ),
    (
        "VkPhysicalDevicePrivateDataFeatures",
        Some("VK_EXT_private_data"),
    ),
    (
        "VkPhysicalDeviceShaderDemoteToHelperInvocationFeatures",
        Some("VK_EXT_shader_demote_to_helper_invocation"),
    ),
    (
        "VkPhysicalDeviceShaderIntegerDotProductFeatures",
        Some("VK_KHR_shader_integer_dot_product"),
    ),
    (
        "VkPhysicalDeviceShaderIntegerDotProductProperties",
        Some("VK_KHR_shader_integer_dot_product"),
    ),
    (
        "VkPhysicalDeviceShaderTerminateInvocationFeatures",
        Some("VK_KHR_shader_terminate_invocation"),
    ),
    (
        "VkPhysicalDeviceSubgroupSizeControlFeatures",
        Some("VK_EXT_subgroup_size_control"),
    ),
    (
        "VkPhysicalDeviceSubgroupSizeControlProperties",
        Some("VK_EXT_subgroup_size_control"),
    ),
    (
        "VkPhysicalDeviceSynchronization2Features",
        Some("VK_KHR_synchronization2"),
    ),
    (
        "VkPhysicalDeviceTextureCompressionASTCHDRFeatures",
        Some("VK_EXT_texture_compression_astc_hdr"),
    ),
    (
        "VkPhysicalDeviceTexelBufferAlignmentProperties",
        Some("VK_EXT_texel_buffer_alignment"),
    ),
    (
        "VkPhysicalDeviceZeroInitializeWorkgroupMemoryFeatures",
        Some("VK_KHR_zero_initialize_workgroup_memory"),
    ),
];

/// A struct absent through venus whose presence vulkaninfo ties to the API version or
/// to a conditional extension.
fn absent_because_conditional(docs: &Documents<'_>, name: &str) -> bool {
    let api13 = docs
        .venus_api_version()
        .is_some_and(|v| v >= make_version(1, 3, 0));
    if let Some((_, ext)) = PROMOTED_TO_1_3.iter().find(|(s, _)| *s == name) {
        return !api13 && ext.is_none_or(|e| !docs.venus_has_extension(e));
    }
    name == "VkPhysicalDevicePCIBusInfoProperties"
        && !docs.venus_has_extension("VK_EXT_pci_bus_info")
}

fn in_list(list: &[&str], name: &str) -> bool {
    list.iter().any(|s| canonical_struct_name(s) == name)
}

fn check_feature_struct(docs: &Documents<'_>, d: &Difference) -> bool {
    let name = last_segment(d);
    match (&d.native, &d.venus) {
        (Some(_), None) => {
            !in_list(VENUS_FEATURE_STRUCTS, name) || absent_because_conditional(docs, name)
        }
        (None, Some(_)) => name == "VkPhysicalDeviceDeviceMemoryReportFeatures",
        _ => false,
    }
}

fn check_property_struct(docs: &Documents<'_>, d: &Difference) -> bool {
    let name = last_segment(d);
    match (&d.native, &d.venus) {
        (Some(_), None) => {
            !in_list(VENUS_PROPERTY_STRUCTS, name) || absent_because_conditional(docs, name)
        }
        (None, Some(_)) => matches!(
            name,
            "VkPhysicalDeviceDrmProperties" | "VkPhysicalDevicePCIBusInfoProperties"
        ),
        _ => false,
    }
}

/// `vn_physical_device_init_memory_properties`: a non-coherent cached type loses
/// HOST_VISIBLE and HOST_CACHED; if no type is coherent and cached, the first coherent
/// type gains HOST_CACHED.
pub fn venus_memory_type_flags(native_types: &[Vec<String>]) -> Vec<Vec<String>> {
    const VISIBLE: &str = "MEMORY_PROPERTY_HOST_VISIBLE_BIT";
    const COHERENT: &str = "MEMORY_PROPERTY_HOST_COHERENT_BIT";
    const CACHED: &str = "MEMORY_PROPERTY_HOST_CACHED_BIT";
    let has = |f: &Vec<String>, x: &str| f.iter().any(|s| s == x);
    let mut out: Vec<Vec<String>> = native_types.to_vec();
    let mut has_coherent_cached = false;
    let mut first_coherent = None;
    for (i, flags) in out.iter_mut().enumerate() {
        let coherent = has(flags, COHERENT);
        let cached = has(flags, CACHED);
        if coherent {
            first_coherent.get_or_insert(i);
            has_coherent_cached |= cached;
        } else if cached {
            flags.retain(|f| f != VISIBLE && f != CACHED);
        }
    }
    if !has_coherent_cached {
        if let Some(i) = first_coherent {
            if !has(&out[i], CACHED) {
                // vulkaninfo prints flags in bit order: HOST_CACHED (0x8) follows
                // HOST_COHERENT (0x4).
                let pos = out[i]
                    .iter()
                    .position(|f| f == COHERENT)
                    .map_or(out[i].len(), |p| p + 1);
                out[i].insert(pos, CACHED.to_string());
            }
        }
    }
    out
}

/// vulkaninfo's note after the formats a memory type is usable for, from which image
/// kinds (regular, transient, sparse) are supported (`GpuDumpMemoryProps`).
fn usable_note(regular: bool, transient: bool, sparse: bool) -> Option<&'static str> {
    match (regular, transient, sparse) {
        (true, false, true) => Some("(non-transient)"),
        (true, true, false) => Some("(non-sparse)"),
        (true, false, false) => Some("(non-sparse, non-transient)"),
        (false, true, true) => Some("(sparse and transient only)"),
        (false, false, true) => Some("(sparse only)"),
        (false, true, false) => Some("(transient only)"),
        _ => None,
    }
}

fn check_usable_for(docs: &Documents<'_>, d: &Difference) -> bool {
    let sparse_off = docs
        .venus_at("device.features.VkPhysicalDeviceFeatures.sparseBinding")
        .is_some_and(|v| v == &Value::Bool(false));
    let list = |v: &Option<Value>| -> Option<Vec<String>> {
        v.as_ref()?
            .as_array()?
            .iter()
            .map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    let (Some(native), Some(venus)) = (list(&d.native), list(&d.venus)) else {
        return false;
    };
    if !sparse_off || native.is_empty() {
        return false;
    }
    let is_note = |s: &String| s.starts_with('(');
    let native_note = native.iter().find(|s| is_note(s)).map(String::as_str);
    // Which kinds the native note stands for (no note: all three).
    let Some((r, t)) = (1u8..8)
        .map(|bits| (bits & 1 != 0, bits & 2 != 0, bits & 4 != 0))
        .find(|&(r, t, s)| {
            usable_note(r, t, s) == native_note && (native_note.is_some() || (r && t && s))
        })
        .map(|(r, t, _)| (r, t))
    else {
        return false;
    };
    let mut want: Vec<String> = native.iter().filter(|s| !is_note(s)).cloned().collect();
    match usable_note(r, t, false) {
        Some(note) => want.push(note.to_string()),
        None if !r && !t => want.clear(),
        None => {}
    }
    venus == want
}

fn check_memory_type_flags(docs: &Documents<'_>, d: &Difference) -> bool {
    let Some(index) = d.path.get(2).and_then(|s| s.parse::<usize>().ok()) else {
        return false;
    };
    let Some(types) = docs
        .native_at("memory.memoryTypes")
        .and_then(Value::as_array)
    else {
        return false;
    };
    let native: Option<Vec<Vec<String>>> = types
        .iter()
        .map(|t| {
            t.get("propertyFlags")?
                .as_array()?
                .iter()
                .map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .collect();
    let Some(native) = native else {
        return false;
    };
    let want = venus_memory_type_flags(&native);
    let got: Option<Vec<String>> = d.venus.as_ref().and_then(|v| {
        v.as_array()?
            .iter()
            .map(|f| f.as_str().map(str::to_string))
            .collect()
    });
    got.is_some() && want.get(index) == got.as_ref()
}

/// The differences between native lavapipe and venus-on-lavapipe that Mesa 25.0.7's
/// venus driver causes by design. Checked against a real run (stock venus over vtest
/// on our `venus-vtest-server`, lavapipe without a DRM device): 273 differences, all
/// explained, none unexpected. Notably venus reports apiVersion 1.2.0 there: lavapipe
/// cannot import sync-fd semaphores, so venus hides VK_KHR_synchronization2 (see
/// [`VENUS_CONDITIONAL_EXTENSIONS`]). Differences our host translator causes on purpose
/// belong here too, each with its reason.
pub const EXPECTED_DIFFERENCES: &[ExpectedDifference] = &[
    // --- identity: vn_physical_device_sanitize_properties ---
    ExpectedDifference {
        pattern: "device.properties.VkPhysicalDeviceProperties.deviceName",
        rule: Rule::Check(check_device_name),
        reason: "sanitize_properties renames the device \"Virtio-GPU Venus (<host name>)\" \
                 (truncated with \"...)\" at 255 bytes)",
    },
    ExpectedDifference {
        pattern: "device.properties.VkPhysicalDeviceProperties.apiVersion",
        rule: Rule::Check(check_api_version),
        reason: "sanitize_properties caps apiVersion at MIN3(host apiVersion, VN_MAX_API_VERSION \
                 1.3.305, capset vk_xml_version clamped to vn_info_vk_xml_version() 1.3.269), \
                 and at 1.2 when VK_KHR_synchronization2 is hidden (it is required by 1.3); \
                 the rule checks 1.3 iff venus exposes synchronization2, 1.2 otherwise",
    },
    ExpectedDifference {
        pattern: "device.properties.VkPhysicalDeviceProperties.driverVersion",
        rule: Rule::Check(check_driver_version),
        reason: "sanitize_properties sets driverVersion = vk_get_driver_version(), the guest \
                 Mesa version (checked against the Mesa version in venus's driverInfo)",
    },
    ExpectedDifference {
        pattern: "device.properties.VkPhysicalDeviceProperties.pipelineCacheUUID",
        rule: Rule::Check(check_pipeline_cache_uuid),
        reason: "init_uuids: pipelineCacheUUID = SHA-1(host pipelineCacheUUID)[0..16]",
    },
    ExpectedDifference {
        pattern: "device.properties.*.deviceUUID",
        rule: Rule::Check(check_device_uuid),
        reason: "init_uuids: deviceUUID = SHA-1(vendorID, deviceID as host-endian u32)[0..16]",
    },
    ExpectedDifference {
        pattern: "device.properties.*.driverUUID",
        rule: Rule::Check(check_driver_uuid),
        reason: "init_uuids: driverUUID = SHA-1(driverName \"venus\" + driverInfo)[0..16]",
    },
    ExpectedDifference {
        pattern: "device.properties.*.deviceNodeMask",
        rule: Rule::VenusIs("0"),
        reason: "init_uuids zeroes deviceNodeMask (and deviceLUID)",
    },
    ExpectedDifference {
        pattern: "device.properties.*.deviceLUIDValid",
        rule: Rule::VenusIs("false"),
        reason: "init_uuids sets deviceLUIDValid = false",
    },
    ExpectedDifference {
        pattern: "device.properties.*.driverID",
        rule: Rule::VenusIs("\"VK_DRIVER_ID_MESA_VENUS\""),
        reason: "sanitize_properties sets driverID = VK_DRIVER_ID_MESA_VENUS",
    },
    ExpectedDifference {
        pattern: "device.properties.*.driverName",
        rule: Rule::VenusIs("\"venus\""),
        reason: "sanitize_properties sets driverName = \"venus\"",
    },
    ExpectedDifference {
        pattern: "device.properties.*.driverInfo",
        rule: Rule::Check(check_driver_info),
        reason: "sanitize_properties sets driverInfo = \"Mesa \" PACKAGE_VERSION MESA_GIT_SHA1 \
                 of the guest driver",
    },
    ExpectedDifference {
        pattern: "device.properties.*.conformanceVersion.*",
        rule: Rule::Check(check_conformance_version),
        reason: "sanitize_properties sets conformanceVersion = 1.3.0.0",
    },
    ExpectedDifference {
        pattern: "device.properties.VkPhysicalDeviceFragmentShadingRateProperties.fragmentShadingRateWithCustomSampleLocations",
        rule: Rule::VenusIs("false"),
        reason: "sanitize_properties clears it: VK_EXT_sample_locations is not supported",
    },
    // --- sparse: lavapipe -> sparse_binding_disabled -> disable_sparse_binding ---
    ExpectedDifference {
        pattern: "device.features.VkPhysicalDeviceFeatures.sparse*",
        rule: Rule::VenusIs("false"),
        reason: "init_properties sets sparse_binding_disabled when the host driverID is \
                 MESA_LLVMPIPE (\"TODO: Fix sparse binding on lavapipe\"; also when every \
                 sparse queue family is sparse-only); disable_sparse_binding then clears \
                 sparseBinding and every sparseResidency* feature",
    },
    ExpectedDifference {
        pattern: "device.properties.VkPhysicalDeviceProperties.sparseProperties.*",
        rule: Rule::VenusIs("false"),
        reason: "disable_sparse_binding (lavapipe host) zeroes the sparse properties",
    },
    ExpectedDifference {
        pattern: "device.properties.VkPhysicalDeviceProperties.limits.sparseAddressSpaceSize",
        rule: Rule::VenusIs("0"),
        reason: "disable_sparse_binding (lavapipe host) sets sparseAddressSpaceSize = 0",
    },
    // --- features venus forces ---
    ExpectedDifference {
        pattern: "device.features.VkPhysicalDeviceExtendedDynamicState3Features.extendedDynamicState3*",
        rule: Rule::Check(check_eds3_feature),
        reason: "init_features clears the extendedDynamicState3 features venus does not \
                 support (SampleLocationsEnable, ColorBlendAdvanced and the ten VK_NV ones)",
    },
    // --- extensions: vn_physical_device_init_supported_extensions ---
    ExpectedDifference {
        pattern: "device.extensions.*",
        rule: Rule::Check(check_extension),
        reason: "venus exposes native extensions (physical_device_drm, tooling_info, \
                 device_memory_report) plus the passthrough list intersected with the host's \
                 (EXT_memory_budget explicitly off); some depend on renderer abilities \
                 (VENUS_CONDITIONAL_EXTENSIONS); spec versions are MIN(host, encoder, Mesa)",
    },
    ExpectedDifference {
        pattern: "device.features.*",
        rule: Rule::Check(check_feature_struct),
        reason: "vulkaninfo prints a feature struct only for exposed extensions/versions: \
                 structs of extensions venus does not pass through vanish (Vulkan 1.3 ones too \
                 when apiVersion is capped at 1.2); deviceMemoryReport is venus's own",
    },
    ExpectedDifference {
        pattern: "device.properties.*",
        rule: Rule::Check(check_property_struct),
        reason: "as for features: property structs of extensions venus does not pass through \
                 vanish; VK_EXT_physical_device_drm (and pci_bus_info when available) are \
                 venus's own",
    },
    // --- queue families: vn_physical_device_init_queue_family_properties ---
    ExpectedDifference {
        pattern: "device.queueFamiliesProperties.*.VkQueueFamilyGlobalPriorityProperties",
        rule: Rule::Absent,
        reason: "VK_KHR/EXT_global_priority(_query) are not in venus's passthrough list, so \
                 vulkaninfo does not chain the global priority struct",
    },
    // --- formats ---
    ExpectedDifference {
        pattern: "device.formats.*.VkSubpassResolvePerformanceQuery",
        rule: Rule::Absent,
        reason: "VK_EXT_multisampled_render_to_single_sampled is not in venus's passthrough \
                 list, so vulkaninfo does not chain VkSubpassResolvePerformanceQueryEXT",
    },
    // --- memory: vn_physical_device_init_memory_properties ---
    ExpectedDifference {
        pattern: "memory.memoryTypes.*.usableFor.*",
        rule: Rule::Check(check_usable_for),
        reason: "with sparse binding disabled (lavapipe host, see above) sparse images are \
                 unsupported, so vulkaninfo notes \"(non-sparse)\" (or drops sparse-only \
                 formats) after the formats a memory type is usable for",
    },
    ExpectedDifference {
        pattern: "memory.memoryTypes.*.propertyFlags",
        rule: Rule::Check(check_memory_type_flags),
        reason: "init_memory_properties removes HOST_VISIBLE|HOST_CACHED from non-coherent \
                 cached types and adds HOST_CACHED to the first coherent type when no type is \
                 coherent and cached (the rule recomputes that from the native types)",
    },
];

fn check_eds3_feature(_: &Documents<'_>, d: &Difference) -> bool {
    const CLEARED: &[&str] = &[
        "extendedDynamicState3SampleLocationsEnable",
        "extendedDynamicState3ColorBlendAdvanced",
        "extendedDynamicState3ViewportWScalingEnable",
        "extendedDynamicState3ViewportSwizzle",
        "extendedDynamicState3CoverageToColorEnable",
        "extendedDynamicState3CoverageToColorLocation",
        "extendedDynamicState3CoverageModulationMode",
        "extendedDynamicState3CoverageModulationTableEnable",
        "extendedDynamicState3CoverageModulationTable",
        "extendedDynamicState3CoverageReductionMode",
        "extendedDynamicState3RepresentativeFragmentTestEnable",
        "extendedDynamicState3ShadingRateImageEnable",
    ];
    CLEARED.contains(&last_segment(d)) && d.venus == Some(Value::Bool(false))
}

// ---------------------------------------------------------------------------------------
// SHA-1 (Mesa's _mesa_sha1 is plain SHA-1), for the UUID rules.
// ---------------------------------------------------------------------------------------

/// SHA-1 of `data`.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let bit_len = (data.len() as u64).wrapping_mul(8);
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}
