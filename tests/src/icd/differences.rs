//! How `vulkaninfo` through our guest ICD differs from native lavapipe
//! ([`OUR_EXPECTED_DIFFERENCES`], used with [`vkinfo::compare`]), and the listing of how
//! it differs from stock Mesa venus on the same host ([`ours_against_mesa`]).
//!
//! Our ICD passes the host's answers through: device name, driver id, name and info,
//! UUIDs, limits, formats and memory types are lavapipe's own. What changes:
//!
//! - apiVersion: capped at the protocol's Vulkan 1.3.269 (`cap_api_version` in the
//!   host translator, `cap_api` in the guest ICD);
//! - device extensions: the host translator passes only those the protocol carries
//!   (`venus_protocol::generated::EXTENSIONS`, Mesa 25.0.7's 118), spec versions
//!   clamped to the protocol's; the guest ICD then hides those that need guest-kernel
//!   objects ([`OUR_HIDDEN_EXTENSIONS`]);
//! - structs vulkaninfo chains only for exposed extensions vanish with them
//!   ([`STRUCT_EXTENSIONS`]).
//!
//! The ours-against-Mesa listing needs no table of its own: both drivers are compared
//! with native lavapipe (Mesa venus with [`vkinfo::EXPECTED_DIFFERENCES`], ours with
//! [`OUR_EXPECTED_DIFFERENCES`]), and every difference between the two is explained by
//! the entries that explain the two drivers' differences from native at that path.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;
use venus_protocol::generated::EXTENSIONS as PROTOCOL_EXTENSIONS;

use crate::vkinfo::{
    self, diff, make_version, normalize, Comparison, Difference, Documents, ExpectedDifference,
    Rule,
};

/// Host device extensions the guest ICD hides: they hand out or take in guest-kernel
/// objects (fds, dma-bufs, DRM modifiers of imported buffers, foreign queue families of
/// external memory) that the ICD does not provide. All are in the protocol.
pub const OUR_HIDDEN_EXTENSIONS: &[&str] = &[
    "VK_KHR_external_memory_fd",
    "VK_KHR_external_semaphore_fd",
    "VK_KHR_external_fence_fd",
    "VK_EXT_external_memory_dma_buf",
    "VK_EXT_image_drm_format_modifier",
    "VK_EXT_queue_family_foreign",
    "VK_EXT_external_memory_acquire_unmodified",
];

/// Structs (canonical names, see [`vkinfo::canonical_struct_name`]) that vulkaninfo
/// 1.3.239 chains only when the device exposes one of the extensions listed, for the
/// extensions lavapipe has and our ICD does not expose.
pub const STRUCT_EXTENSIONS: &[(&str, &[&str])] = &[
    // features
    (
        "VkPhysicalDeviceAccelerationStructureFeatures",
        &["VK_KHR_acceleration_structure"],
    ),
    (
        "VkPhysicalDeviceDescriptorBufferFeatures",
        &["VK_EXT_descriptor_buffer"],
    ),
    (
        "VkPhysicalDeviceGlobalPriorityQueryFeatures",
        &["VK_KHR_global_priority", "VK_EXT_global_priority_query"],
    ),
    (
        "VkPhysicalDeviceMemoryPriorityFeatures",
        &["VK_EXT_memory_priority"],
    ),
    (
        "VkPhysicalDeviceMeshShaderFeatures",
        &["VK_EXT_mesh_shader"],
    ),
    (
        "VkPhysicalDeviceMultisampledRenderToSingleSampledFeatures",
        &["VK_EXT_multisampled_render_to_single_sampled"],
    ),
    (
        "VkPhysicalDevicePageableDeviceLocalMemoryFeatures",
        &["VK_EXT_pageable_device_local_memory"],
    ),
    (
        "VkPhysicalDevicePipelineProtectedAccessFeatures",
        &["VK_EXT_pipeline_protected_access"],
    ),
    (
        "VkPhysicalDevicePipelineRobustnessFeatures",
        &["VK_EXT_pipeline_robustness"],
    ),
    ("VkPhysicalDeviceRayQueryFeatures", &["VK_KHR_ray_query"]),
    (
        "VkPhysicalDeviceRayTracingMaintenance1Features",
        &["VK_KHR_ray_tracing_maintenance1"],
    ),
    (
        "VkPhysicalDeviceRayTracingPipelineFeatures",
        &["VK_KHR_ray_tracing_pipeline"],
    ),
    (
        "VkPhysicalDeviceShaderAtomicFloatFeatures",
        &["VK_EXT_shader_atomic_float"],
    ),
    (
        "VkPhysicalDeviceShaderAtomicFloat2Features",
        &["VK_EXT_shader_atomic_float2"],
    ),
    (
        "VkPhysicalDeviceSwapchainMaintenance1Features",
        &["VK_EXT_swapchain_maintenance1"],
    ),
    (
        "VkPhysicalDeviceYcbcrImageArraysFeatures",
        &["VK_EXT_ycbcr_image_arrays"],
    ),
    // properties
    (
        "VkPhysicalDeviceAccelerationStructureProperties",
        &["VK_KHR_acceleration_structure"],
    ),
    (
        "VkPhysicalDeviceDescriptorBufferProperties",
        &["VK_EXT_descriptor_buffer"],
    ),
    (
        "VkPhysicalDeviceDescriptorBufferDensityMapProperties",
        &["VK_EXT_descriptor_buffer"],
    ),
    (
        "VkPhysicalDeviceExternalMemoryHostProperties",
        &["VK_EXT_external_memory_host"],
    ),
    (
        "VkPhysicalDeviceMeshShaderProperties",
        &["VK_EXT_mesh_shader"],
    ),
    (
        "VkPhysicalDevicePipelineRobustnessProperties",
        &["VK_EXT_pipeline_robustness"],
    ),
    (
        "VkPhysicalDeviceRayTracingPipelineProperties",
        &["VK_KHR_ray_tracing_pipeline"],
    ),
    // queue family and format structs
    (
        "VkQueueFamilyGlobalPriorityProperties",
        &["VK_KHR_global_priority", "VK_EXT_global_priority_query"],
    ),
    (
        "VkSubpassResolvePerformanceQuery",
        &["VK_EXT_multisampled_render_to_single_sampled"],
    ),
];

/// The protocol's spec version of extension `name`, if the protocol carries it.
pub fn protocol_spec_version(name: &str) -> Option<u64> {
    PROTOCOL_EXTENSIONS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, v)| u64::from(*v))
}

fn last_segment(d: &Difference) -> &str {
    d.path.last().map(String::as_str).unwrap_or("")
}

fn native_has_extension(docs: &Documents<'_>, name: &str) -> bool {
    docs.native_at("device.extensions")
        .and_then(|e| e.get(name))
        .is_some()
}

/// `cap_api_version`: above 1.3 becomes 1.3 with the same patch number.
pub fn capped_api_version(native: u64) -> u64 {
    // The protocol level: Vulkan 1.3.269 (newer structs cannot cross the wire).
    native.min(make_version(1, 3, 269))
}

fn check_api_version(_: &Documents<'_>, d: &Difference) -> bool {
    match (
        d.native.as_ref().and_then(Value::as_u64),
        d.venus.as_ref().and_then(Value::as_u64),
    ) {
        (Some(native), Some(ours)) => ours == capped_api_version(native),
        _ => false,
    }
}

fn check_not_in_protocol(_: &Documents<'_>, d: &Difference) -> bool {
    d.native.is_some() && d.venus.is_none() && protocol_spec_version(last_segment(d)).is_none()
}

fn check_hidden(_: &Documents<'_>, d: &Difference) -> bool {
    d.native.is_some() && d.venus.is_none() && OUR_HIDDEN_EXTENSIONS.contains(&last_segment(d))
}

fn check_spec_version(_: &Documents<'_>, d: &Difference) -> bool {
    let (Some(native), Some(ours), Some(protocol)) = (
        d.native.as_ref().and_then(Value::as_u64),
        d.venus.as_ref().and_then(Value::as_u64),
        protocol_spec_version(last_segment(d)),
    ) else {
        return false;
    };
    ours == native.min(protocol)
}

/// A struct present natively and absent through our ICD, whose extension(s) lavapipe
/// has and our ICD does not expose.
fn check_struct_of_unexposed_extension(docs: &Documents<'_>, d: &Difference) -> bool {
    let name = vkinfo::canonical_struct_name(last_segment(d));
    let Some((_, exts)) = STRUCT_EXTENSIONS.iter().find(|(s, _)| *s == name) else {
        return false;
    };
    d.native.is_some()
        && d.venus.is_none()
        && exts.iter().any(|e| native_has_extension(docs, e))
        && !exts.iter().any(|e| docs.venus_has_extension(e))
}

const STRUCT_REASON: &str = "vulkaninfo chains this struct only when the device exposes its \
extension (STRUCT_EXTENSIONS), which our ICD does not (see the extension rows)";

/// Every difference between native lavapipe ("native") and lavapipe through our guest
/// ICD and host translator ("venus" in [`Documents`] and [`Difference`]), with why.
pub const OUR_EXPECTED_DIFFERENCES: &[ExpectedDifference] = &[
    ExpectedDifference {
        pattern: "device.properties.VkPhysicalDeviceProperties.apiVersion",
        rule: Rule::Check(check_api_version),
        reason: "apiVersion is capped at the protocol level, Vulkan 1.3.269 (newer \
                 structs cannot cross the wire): lavapipe 1.4.305 becomes 1.3.269",
    },
    ExpectedDifference {
        pattern: "device.extensions.*",
        rule: Rule::Check(check_not_in_protocol),
        reason: "not among the protocol's 118 extensions (Mesa 25.0.7's venus protocol \
                 level, venus_protocol::generated::EXTENSIONS): the host translator does \
                 not pass it through",
    },
    ExpectedDifference {
        pattern: "device.extensions.*",
        rule: Rule::Check(check_hidden),
        reason: "needs guest-kernel objects (fds, dma-bufs, DRM modifiers, foreign queue \
                 family of external memory): the guest ICD hides it (OUR_HIDDEN_EXTENSIONS)",
    },
    ExpectedDifference {
        pattern: "device.extensions.*",
        rule: Rule::Check(check_spec_version),
        reason: "spec version clamped to the protocol's (filter_extensions in the host \
                 translator)",
    },
    ExpectedDifference {
        pattern: "device.features.*",
        rule: Rule::Check(check_struct_of_unexposed_extension),
        reason: STRUCT_REASON,
    },
    ExpectedDifference {
        pattern: "device.properties.*",
        rule: Rule::Check(check_struct_of_unexposed_extension),
        reason: STRUCT_REASON,
    },
    ExpectedDifference {
        pattern: "device.queueFamiliesProperties.*.*",
        rule: Rule::Check(check_struct_of_unexposed_extension),
        reason: STRUCT_REASON,
    },
    ExpectedDifference {
        pattern: "device.formats.*.*",
        rule: Rule::Check(check_struct_of_unexposed_extension),
        reason: STRUCT_REASON,
    },
];

/// The device extensions our ICD must expose over a host whose native extensions
/// (`device.extensions` of a comparable document) are given: the protocol's ones,
/// minus [`OUR_HIDDEN_EXTENSIONS`], spec versions clamped to the protocol's.
pub fn expected_extensions(native: &Value) -> BTreeMap<String, u64> {
    native
        .pointer("/device/extensions")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(name, _)| !OUR_HIDDEN_EXTENSIONS.contains(&name.as_str()))
        .filter_map(|(name, v)| {
            let protocol = protocol_spec_version(name)?;
            Some((name.clone(), v.as_u64()?.min(protocol)))
        })
        .collect()
}

/// Where our device extensions differ from [`expected_extensions`] (empty when they
/// are exactly those). The comparison with native alone cannot see an extension that
/// should be hidden but is not: it would equal native.
pub fn extension_mismatches(native: &Value, ours: &Value) -> Vec<String> {
    let want = expected_extensions(native);
    let got: BTreeMap<String, Option<u64>> = ours
        .pointer("/device/extensions")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_u64()))
        .collect();
    let mut out = Vec::new();
    for (name, v) in &want {
        match got.get(name) {
            None => out.push(format!("{name} (spec {v}) missing")),
            Some(g) if *g != Some(*v) => out.push(format!("{name}: spec {g:?}, expected {v}")),
            Some(_) => {}
        }
    }
    for name in got.keys().filter(|n| !want.contains_key(*n)) {
        let why = if OUR_HIDDEN_EXTENSIONS.contains(&name.as_str()) {
            "should be hidden"
        } else if protocol_spec_version(name).is_none() {
            "not in the protocol"
        } else {
            "not a host extension"
        };
        out.push(format!("{name} exposed ({why})"));
    }
    out
}

/// One difference between Mesa venus and our ICD, and the table entries (pattern,
/// reason) that explain each driver's difference from native lavapipe there.
#[derive(Clone, Debug)]
pub struct CrossDifference {
    /// Path, Mesa venus's value, our value (`native` = Mesa, `venus` = ours).
    pub difference: Difference,
    /// Native lavapipe's value at that path.
    pub native: Option<Value>,
    /// Why Mesa venus differs from native here, if it does.
    pub mesa: Option<(&'static str, &'static str)>,
    /// Why our ICD differs from native here, if it does.
    pub ours: Option<(&'static str, &'static str)>,
}

impl CrossDifference {
    /// Explained by at least one of the tables.
    pub fn is_explained(&self) -> bool {
        self.mesa.is_some() || self.ours.is_some()
    }
}

/// All differences between Mesa venus and our ICD.
#[derive(Clone, Debug, Default)]
pub struct CrossListing {
    pub differences: Vec<CrossDifference>,
}

fn related(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

fn explanation(cmp: &Comparison, path: &[String]) -> Option<(&'static str, &'static str)> {
    cmp.expected
        .iter()
        .find(|e| related(&e.difference.path, path))
        .map(|e| (e.pattern, e.reason))
}

fn value_at<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(doc, |v, seg| match v {
        Value::Object(m) => m.get(seg),
        Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// Diffs Mesa venus against ours (both [`vkinfo::VulkanInfo::comparable`] documents)
/// and explains each difference with the comparisons of both against native lavapipe
/// (`mesa_cmp` from [`vkinfo::EXPECTED_DIFFERENCES`], `ours_cmp` from
/// [`OUR_EXPECTED_DIFFERENCES`]).
pub fn ours_against_mesa(
    native: &Value,
    mesa: &Value,
    ours: &Value,
    mesa_cmp: &Comparison,
    ours_cmp: &Comparison,
) -> CrossListing {
    let native = normalize(native);
    let differences = diff(&normalize(mesa), &normalize(ours))
        .into_iter()
        .map(|d| CrossDifference {
            native: value_at(&native, &d.path).cloned(),
            mesa: explanation(mesa_cmp, &d.path),
            ours: explanation(ours_cmp, &d.path),
            difference: d,
        })
        .collect();
    CrossListing { differences }
}

fn short(v: &Option<Value>) -> String {
    match v {
        None => "-".into(),
        Some(v) => {
            let s = v.to_string();
            if s.chars().count() > 60 {
                format!("{}...", s.chars().take(57).collect::<String>())
            } else {
                s
            }
        }
    }
}

/// The category a path belongs to in the report: its first two segments.
fn category(path: &[String]) -> String {
    path.iter().take(2).cloned().collect::<Vec<_>>().join(".")
}

impl CrossListing {
    /// Differences no table explains.
    pub fn unexplained(&self) -> Vec<&CrossDifference> {
        self.differences
            .iter()
            .filter(|d| !d.is_explained())
            .collect()
    }

    /// The listing grouped by (why Mesa differs, why we differ): one row per group
    /// with its count, the reasons, and the paths (values for scalar ones).
    pub fn report(&self) -> String {
        type Key = (
            String,
            Option<(&'static str, &'static str)>,
            Option<(&'static str, &'static str)>,
        );
        let mut groups: BTreeMap<Key, Vec<&CrossDifference>> = BTreeMap::new();
        for d in &self.differences {
            groups
                .entry((category(&d.difference.path), d.mesa, d.ours))
                .or_default()
                .push(d);
        }
        let mut s = format!(
            "vulkaninfo: Mesa venus vs our ICD (same host: our venus-vtest-server on \
             lavapipe): {} difference(s), {} unexplained, in {} group(s)\n",
            self.differences.len(),
            self.unexplained().len(),
            groups.len()
        );
        for (i, ((cat, mesa, ours), items)) in groups.iter().enumerate() {
            let _ = writeln!(s, "\n[{}] {cat}: {} difference(s)", i + 1, items.len());
            match mesa {
                Some((p, r)) => {
                    let _ = writeln!(s, "    Mesa differs from native [{p}]: {r}");
                }
                None => {
                    let _ = writeln!(s, "    Mesa = native here");
                }
            }
            match ours {
                Some((p, r)) => {
                    let _ = writeln!(s, "    ours differs from native [{p}]: {r}");
                }
                None => {
                    let _ = writeln!(s, "    ours = native here");
                }
            }
            // Every extension is listed; of other groups the first rows.
            let shown = if cat == "device.extensions" {
                items.len()
            } else {
                8
            };
            for d in items.iter().take(shown) {
                let path = d.difference.path.join(".");
                let _ = writeln!(
                    s,
                    "      {path}: native {} | Mesa {} | ours {}",
                    short(&d.native),
                    short(&d.difference.native),
                    short(&d.difference.venus)
                );
            }
            if items.len() > shown {
                let _ = writeln!(s, "      ... and {} more alike", items.len() - shown);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::vkinfo::compare;

    const V14: u64 = make_version(1, 4, 305);
    const V13: u64 = make_version(1, 3, 269);

    fn native() -> Value {
        json!({
            "device": {
                "extensions": {
                    "VK_KHR_maintenance4": 2,
                    "VK_KHR_external_memory_fd": 1,
                    "VK_EXT_mesh_shader": 1,
                    "VK_KHR_swapchain": 70,
                    "VK_KHR_global_priority": 1,
                    "VK_EXT_multisampled_render_to_single_sampled": 1,
                },
                "features": {
                    "VkPhysicalDeviceFeatures": {"robustBufferAccess": true},
                    "VkPhysicalDeviceMaintenance4Features": {"maintenance4": true},
                    "VkPhysicalDeviceMeshShaderFeaturesEXT": {"meshShader": true},
                },
                "properties": {
                    "VkPhysicalDeviceProperties": {
                        "apiVersion": V14,
                        "deviceName": "llvmpipe",
                        "limits": {"maxImageDimension2D": 16384},
                    },
                    "VkPhysicalDeviceMeshShaderPropertiesEXT": {"maxMeshOutputLayers": 8},
                },
                "formats": {
                    "VK_FORMAT_R8_UNORM": {
                        "VkFormatProperties": {"linearTilingFeatures": ["A"]},
                        "VkSubpassResolvePerformanceQueryEXT": {"optimal": false},
                    },
                },
                "queueFamiliesProperties": [{
                    "VkQueueFamilyProperties": {"queueCount": 1},
                    "VkQueueFamilyGlobalPriorityPropertiesKHR": {"priorities": ["LOW"]},
                }],
            },
            "memory": {"memoryHeaps": [], "memoryTypes": []},
        })
    }

    /// What our ICD shows for [`native`].
    fn ours() -> Value {
        let mut v = native();
        let dev = &mut v["device"];
        dev["properties"]["VkPhysicalDeviceProperties"]["apiVersion"] = json!(V13);
        for e in [
            "VK_KHR_external_memory_fd",
            "VK_EXT_mesh_shader",
            "VK_KHR_swapchain",
            "VK_KHR_global_priority",
            "VK_EXT_multisampled_render_to_single_sampled",
        ] {
            dev["extensions"].as_object_mut().map(|m| m.remove(e));
        }
        dev["features"]
            .as_object_mut()
            .map(|m| m.remove("VkPhysicalDeviceMeshShaderFeaturesEXT"));
        dev["properties"]
            .as_object_mut()
            .map(|m| m.remove("VkPhysicalDeviceMeshShaderPropertiesEXT"));
        dev["formats"]["VK_FORMAT_R8_UNORM"]
            .as_object_mut()
            .map(|m| m.remove("VkSubpassResolvePerformanceQueryEXT"));
        dev["queueFamiliesProperties"][0]
            .as_object_mut()
            .map(|m| m.remove("VkQueueFamilyGlobalPriorityPropertiesKHR"));
        v
    }

    fn unexpected(ours: &Value) -> Vec<String> {
        compare(&native(), ours, OUR_EXPECTED_DIFFERENCES)
            .unexpected
            .iter()
            .map(|u| u.difference.path_string())
            .collect()
    }

    #[test]
    fn what_our_icd_does_by_design_is_expected() {
        let cmp = compare(&native(), &ours(), OUR_EXPECTED_DIFFERENCES);
        assert!(cmp.is_clean(), "{}", cmp.report());
        assert_eq!(cmp.expected.len(), 10, "{}", cmp.report());
        assert_eq!(
            extension_mismatches(&native(), &ours()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn wrong_values_are_reported() {
        type Edit = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(&str, Edit)> = vec![
            (
                "apiVersion 1.2",
                Box::new(|v| {
                    v["device"]["properties"]["VkPhysicalDeviceProperties"]["apiVersion"] =
                        json!(make_version(1, 2, 0))
                }),
            ),
            (
                "apiVersion patch changed",
                Box::new(|v| {
                    v["device"]["properties"]["VkPhysicalDeviceProperties"]["apiVersion"] =
                        json!(make_version(1, 3, 250))
                }),
            ),
            (
                "a protocol extension missing",
                Box::new(|v| {
                    v["device"]["extensions"]
                        .as_object_mut()
                        .map(|m| m.remove("VK_KHR_maintenance4"));
                }),
            ),
            (
                "an extension lavapipe lacks",
                Box::new(|v| v["device"]["extensions"]["VK_KHR_present_id"] = json!(1)),
            ),
            (
                "a spec version not the protocol's",
                Box::new(|v| v["device"]["extensions"]["VK_KHR_maintenance4"] = json!(1)),
            ),
            (
                "a struct of an exposed extension missing",
                Box::new(|v| {
                    v["device"]["features"]
                        .as_object_mut()
                        .map(|m| m.remove("VkPhysicalDeviceMaintenance4Features"));
                }),
            ),
            (
                "a struct missing although its extension is exposed",
                Box::new(|v| v["device"]["extensions"]["VK_EXT_mesh_shader"] = json!(1)),
            ),
            (
                "a limit changed",
                Box::new(|v| {
                    v["device"]["properties"]["VkPhysicalDeviceProperties"]["limits"]
                        ["maxImageDimension2D"] = json!(8192)
                }),
            ),
            (
                "the device renamed",
                Box::new(|v| {
                    v["device"]["properties"]["VkPhysicalDeviceProperties"]["deviceName"] =
                        json!("Virtio-GPU Venus (llvmpipe)")
                }),
            ),
        ];
        for (what, edit) in cases {
            let mut v = ours();
            edit(&mut v);
            assert!(!unexpected(&v).is_empty(), "{what}: not reported");
        }
    }

    #[test]
    fn extension_set_is_exact() {
        let native = native();
        let mut hidden_exposed = ours();
        hidden_exposed["device"]["extensions"]["VK_KHR_external_memory_fd"] = json!(1);
        assert_eq!(
            extension_mismatches(&native, &hidden_exposed),
            vec!["VK_KHR_external_memory_fd exposed (should be hidden)".to_string()]
        );
        let mut missing = ours();
        missing["device"]["extensions"]
            .as_object_mut()
            .map(|m| m.remove("VK_KHR_maintenance4"));
        assert_eq!(extension_mismatches(&native, &missing).len(), 1);
        let mut extra = ours();
        extra["device"]["extensions"]["VK_KHR_swapchain"] = json!(70);
        assert_eq!(
            extension_mismatches(&native, &extra),
            vec!["VK_KHR_swapchain exposed (not in the protocol)".to_string()]
        );
    }

    #[test]
    fn cross_listing_explains_by_both_tables_and_flags_the_rest() {
        let native = native();
        let ours = ours();
        // "Mesa": the device renamed, which the venus table explains.
        let mut mesa = native.clone();
        mesa["device"]["properties"]["VkPhysicalDeviceProperties"]["deviceName"] =
            json!("Virtio-GPU Venus (llvmpipe)");
        let mesa_cmp = compare(&native, &mesa, vkinfo::EXPECTED_DIFFERENCES);
        let ours_cmp = compare(&native, &ours, OUR_EXPECTED_DIFFERENCES);
        let cross = ours_against_mesa(&native, &mesa, &ours, &mesa_cmp, &ours_cmp);
        assert!(cross.unexplained().is_empty(), "{}", cross.report());
        let name = cross
            .differences
            .iter()
            .find(|d| d.difference.path_string().ends_with("deviceName"))
            .expect("the name difference");
        assert!(name.mesa.is_some() && name.ours.is_none());
        let api = cross
            .differences
            .iter()
            .find(|d| d.difference.path_string().ends_with("apiVersion"))
            .expect("the apiVersion difference");
        assert!(api.mesa.is_none() && api.ours.is_some());

        // A difference neither comparison explains (both computed without it).
        let mut odd = ours.clone();
        odd["device"]["properties"]["VkPhysicalDeviceProperties"]["limits"]
            ["maxImageDimension2D"] = json!(1);
        let cross = ours_against_mesa(&native, &mesa, &odd, &mesa_cmp, &ours_cmp);
        assert_eq!(cross.unexplained().len(), 1, "{}", cross.report());
    }

    #[test]
    fn tables_name_real_protocol_extensions() {
        for e in OUR_HIDDEN_EXTENSIONS {
            assert!(
                protocol_spec_version(e).is_some(),
                "{e} is not in the protocol"
            );
        }
        assert_eq!(PROTOCOL_EXTENSIONS.len(), 118);
        assert_eq!(capped_api_version(V14), make_version(1, 3, 269));
        assert_eq!(capped_api_version(V13), V13);
        assert_eq!(
            capped_api_version(make_version(1, 2, 7)),
            make_version(1, 2, 7)
        );
    }
}
