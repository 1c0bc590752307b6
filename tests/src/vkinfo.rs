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

mod mesa_venus;
pub use mesa_venus::*;
