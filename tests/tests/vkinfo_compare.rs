//! The vulkaninfo comparison (`venus_tests::vkinfo`): native runs on lavapipe, and the
//! comparator and its expected-difference table on synthetic documents.
//!
//! Needs the Debian packages `vulkan-tools` (vulkaninfo 1.3.239), `libvulkan1` and
//! `mesa-vulkan-drivers` (lavapipe); a missing one is a failure, not a skip.

use serde_json::{json, Value};
use venus_tests::vkinfo::{
    self, compare, diff, make_version, native_lavapipe_env, parse_memory_properties, sha1,
    venus_memory_type_flags, Difference, ExpectedDifference, Rule, EXPECTED_DIFFERENCES,
};

fn native() -> vkinfo::VulkanInfo {
    vkinfo::run_vulkaninfo(&native_lavapipe_env()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn plain_vulkaninfo_runs_on_lavapipe() {
    let text =
        vkinfo::run_vulkaninfo_text(&native_lavapipe_env()).unwrap_or_else(|e| panic!("{e}"));
    assert!(text.contains("llvmpipe"), "{text}");
}

#[test]
fn native_json_has_every_section() {
    let info = native();
    let name = info.device_name().unwrap_or_default();
    assert!(name.starts_with("llvmpipe"), "device {name:?}");
    let dev = &info.device;
    // Sizes seen with Mesa 25.0.7 lavapipe; lower bounds so a driver update that adds
    // things does not break the test, while a parsing regression (empty maps) does.
    for (key, min) in [
        ("extensions", 100),
        ("features", 50),
        ("properties", 30),
        ("formats", 100),
        ("queueFamiliesProperties", 1),
    ] {
        let len = match &dev[key] {
            Value::Object(m) => m.len(),
            Value::Array(a) => a.len(),
            _ => 0,
        };
        assert!(len >= min, "{key}: {len} entries, expected at least {min}");
    }
    for path in [
        "/properties/VkPhysicalDeviceProperties/limits/maxComputeWorkGroupCount",
        "/properties/VkPhysicalDeviceProperties/sparseProperties",
        "/properties/VkPhysicalDeviceSubgroupProperties/subgroupSize",
        "/features/VkPhysicalDeviceFeatures/robustBufferAccess",
        "/features/VkPhysicalDeviceVulkan12Features/timelineSemaphore",
        "/formats/VK_FORMAT_R8G8B8A8_UNORM/VkFormatProperties/optimalTilingFeatures",
        "/queueFamiliesProperties/0/VkQueueFamilyProperties/queueFlags",
    ] {
        assert!(dev.pointer(path).is_some(), "missing {path}");
    }
    // Memory from the text output: lavapipe has one heap and one type.
    let heaps = info.memory["memoryHeaps"].as_array().expect("heaps");
    let types = info.memory["memoryTypes"].as_array().expect("types");
    assert!(!heaps.is_empty() && !types.is_empty(), "{}", info.memory);
    assert!(
        heaps[0]["size"].as_u64().unwrap_or(0) > 0,
        "{}",
        info.memory
    );
    assert!(
        types[0]["propertyFlags"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f == "MEMORY_PROPERTY_HOST_VISIBLE_BIT")),
        "{}",
        info.memory
    );
}

#[test]
fn native_against_native_has_no_difference() {
    // Two separate runs: proves the documents are reproducible (no dates, budgets...).
    let a = native().comparable();
    let b = native().comparable();
    let d = diff(&a, &b);
    assert!(d.is_empty(), "{d:#?}");
    let c = compare(&a, &b, EXPECTED_DIFFERENCES);
    assert!(c.is_clean() && c.expected.is_empty(), "{}", c.report());
}

#[test]
fn a_changed_native_document_is_reported() {
    // The comparator finds a difference in real data (not just in synthetic JSON).
    let a = native().comparable();
    let mut b = a.clone();
    let limit = b
        .pointer_mut("/device/properties/VkPhysicalDeviceProperties/limits/maxPushConstantsSize")
        .expect("limit");
    *limit = json!(limit.as_u64().unwrap_or(0) / 2);
    let c = compare(&a, &b, EXPECTED_DIFFERENCES);
    assert_eq!(c.unexpected.len(), 1, "{}", c.report());
    assert_eq!(
        c.unexpected[0].difference.path_string(),
        "device.properties.VkPhysicalDeviceProperties.limits.maxPushConstantsSize"
    );
}

/// A small native document in the shape of `VulkanInfo::comparable`.
fn synthetic_native() -> Value {
    json!({
        "device": {
            "extensions": {
                "VK_KHR_maintenance4": 2,
                "VK_KHR_synchronization2": 1,
                "VK_EXT_mesh_shader": 1,
                "VK_EXT_memory_budget": 1,
                "VK_EXT_transform_feedback": 1
            },
            "features": {
                "VkPhysicalDeviceFeatures": {"sparseBinding": true, "robustBufferAccess": true},
                "VkPhysicalDeviceMeshShaderFeaturesEXT": {"meshShader": true},
                "VkPhysicalDeviceTransformFeedbackFeaturesEXT": {"transformFeedback": true}
            },
            "properties": {
                "VkPhysicalDeviceProperties": {
                    "apiVersion": make_version(1, 4, 305),
                    "deviceName": "llvmpipe (LLVM 15.0.6, 256 bits)",
                    "driverVersion": 1,
                    "vendorID": 65541,
                    "deviceID": 0,
                    "pipelineCacheUUID": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
                    "limits": {"maxPushConstantsSize": 256, "sparseAddressSpaceSize": 2147483648u64},
                    "sparseProperties": {"residencyStandard2DBlockShape": true}
                },
                "VkPhysicalDeviceDriverProperties": {
                    "driverID": "VK_DRIVER_ID_MESA_LLVMPIPE",
                    "driverName": "llvmpipe",
                    "driverInfo": "Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6)",
                    "conformanceVersion": {"major": 1, "minor": 3, "subminor": 1, "patch": 1}
                },
                "VkPhysicalDeviceIDProperties": {
                    "deviceUUID": vec![0u8; 16],
                    "driverUUID": vec![0u8; 16]
                }
            },
            "formats": {
                "VK_FORMAT_R8_UNORM": {
                    "VkFormatProperties": {"bufferFeatures": ["VK_FORMAT_FEATURE_VERTEX_BUFFER_BIT"]},
                    "VkSubpassResolvePerformanceQueryEXT": {"optimal": false}
                }
            },
            "queueFamiliesProperties": [
                {
                    "VkQueueFamilyProperties": {"queueCount": 1, "queueFlags": ["VK_QUEUE_COMPUTE_BIT"]},
                    "VkQueueFamilyGlobalPriorityPropertiesKHR": {"priorityCount": 4}
                }
            ]
        },
        "memory": {
            "memoryHeaps": [{"size": 1000, "flags": ["MEMORY_HEAP_DEVICE_LOCAL_BIT"]}],
            "memoryTypes": [{"heapIndex": 0, "propertyFlags": [
                "MEMORY_PROPERTY_HOST_VISIBLE_BIT", "MEMORY_PROPERTY_HOST_COHERENT_BIT"
            ]}]
        }
    })
}

fn uuid(digest: [u8; 20]) -> Value {
    json!(digest[..16].to_vec())
}

/// What Mesa's venus would make of `synthetic_native()` (by vn_physical_device.c).
fn synthetic_venus() -> Value {
    let mut v = synthetic_native();
    let dev = &mut v["device"];
    let ext = dev["extensions"].as_object_mut().expect("extensions");
    ext.remove("VK_EXT_mesh_shader"); // not passed through
    ext.remove("VK_EXT_memory_budget"); // explicitly disabled
    ext.insert("VK_EXT_tooling_info".into(), json!(1)); // native
    ext.insert("VK_KHR_maintenance4".into(), json!(1)); // lower spec version is allowed
    dev["features"]
        .as_object_mut()
        .expect("features")
        .remove("VkPhysicalDeviceMeshShaderFeaturesEXT");
    dev["features"]["VkPhysicalDeviceFeatures"]["sparseBinding"] = json!(false);
    dev["features"]["VkPhysicalDeviceDeviceMemoryReportFeaturesEXT"] =
        json!({"deviceMemoryReport": true});
    let p = &mut dev["properties"];
    p["VkPhysicalDeviceProperties"]["apiVersion"] = json!(make_version(1, 3, 269));
    p["VkPhysicalDeviceProperties"]["deviceName"] =
        json!("Virtio-GPU Venus (llvmpipe (LLVM 15.0.6, 256 bits))");
    p["VkPhysicalDeviceProperties"]["driverVersion"] = json!(make_version(25, 0, 7));
    p["VkPhysicalDeviceProperties"]["pipelineCacheUUID"] =
        uuid(sha1(&(1u8..=16).collect::<Vec<_>>()));
    p["VkPhysicalDeviceProperties"]["limits"]["sparseAddressSpaceSize"] = json!(0);
    p["VkPhysicalDeviceProperties"]["sparseProperties"]["residencyStandard2DBlockShape"] =
        json!(false);
    let info = "Mesa 25.0.7-2~bpo12+1";
    p["VkPhysicalDeviceDriverProperties"] = json!({
        "driverID": "VK_DRIVER_ID_MESA_VENUS",
        "driverName": "venus",
        "driverInfo": info,
        "conformanceVersion": {"major": 1, "minor": 3, "subminor": 0, "patch": 0}
    });
    let mut ids = 65541u32.to_le_bytes().to_vec();
    ids.extend_from_slice(&0u32.to_le_bytes());
    p["VkPhysicalDeviceIDProperties"]["deviceUUID"] = uuid(sha1(&ids));
    p["VkPhysicalDeviceIDProperties"]["driverUUID"] = uuid(sha1(format!("venus{info}").as_bytes()));
    p["VkPhysicalDeviceDrmPropertiesEXT"] = json!({"hasPrimary": false});
    dev["formats"]["VK_FORMAT_R8_UNORM"]
        .as_object_mut()
        .expect("format")
        .remove("VkSubpassResolvePerformanceQueryEXT");
    dev["queueFamiliesProperties"][0]
        .as_object_mut()
        .expect("family")
        .remove("VkQueueFamilyGlobalPriorityPropertiesKHR");
    // No coherent+cached type: venus adds HOST_CACHED to the first coherent one.
    v["memory"]["memoryTypes"][0]["propertyFlags"] = json!([
        "MEMORY_PROPERTY_HOST_VISIBLE_BIT",
        "MEMORY_PROPERTY_HOST_COHERENT_BIT",
        "MEMORY_PROPERTY_HOST_CACHED_BIT"
    ]);
    v
}

#[test]
fn everything_venus_does_by_design_is_expected() {
    let c = compare(
        &synthetic_native(),
        &synthetic_venus(),
        EXPECTED_DIFFERENCES,
    );
    assert!(c.is_clean(), "{}", c.report());
    // Each of those changes was seen as a difference and explained.
    assert!(c.expected.len() >= 20, "{}", c.report());
    for e in &c.expected {
        assert!(!e.reason.is_empty());
    }
}

/// Applies `edit` to the venus document and returns the unexpected paths.
fn unexpected_after(edit: impl FnOnce(&mut Value)) -> Vec<String> {
    let mut venus = synthetic_venus();
    edit(&mut venus);
    compare(&synthetic_native(), &venus, EXPECTED_DIFFERENCES)
        .unexpected
        .iter()
        .map(|u| u.difference.path_string())
        .collect()
}

#[test]
fn a_changed_limit_is_reported() {
    let bad = unexpected_after(|v| {
        v["device"]["properties"]["VkPhysicalDeviceProperties"]["limits"]["maxPushConstantsSize"] =
            json!(128)
    });
    assert_eq!(
        bad,
        ["device.properties.VkPhysicalDeviceProperties.limits.maxPushConstantsSize"]
    );
}

#[test]
fn expected_differences_with_wrong_values_are_reported() {
    let p = "device.properties.VkPhysicalDeviceProperties";
    type Edit = Box<dyn FnOnce(&mut Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "deviceName",
            Box::new(|v| {
                v["device"]["properties"]["VkPhysicalDeviceProperties"]["deviceName"] =
                    json!("Virtio-GPU Venus (other)")
            }),
        ),
        (
            "apiVersion",
            // 1.3 without synchronization2 is impossible through venus.
            Box::new(|v| {
                v["device"]["extensions"]
                    .as_object_mut()
                    .expect("extensions")
                    .remove("VK_KHR_synchronization2");
            }),
        ),
        (
            "pipelineCacheUUID",
            Box::new(|v| {
                v["device"]["properties"]["VkPhysicalDeviceProperties"]["pipelineCacheUUID"] =
                    json!(vec![0u8; 16])
            }),
        ),
        (
            "driverVersion",
            Box::new(|v| {
                v["device"]["properties"]["VkPhysicalDeviceProperties"]["driverVersion"] =
                    json!(make_version(24, 0, 0))
            }),
        ),
    ];
    for (field, edit) in cases {
        let bad = unexpected_after(edit);
        assert!(
            bad.iter().any(|b| b == &format!("{p}.{field}")),
            "{field}: {bad:?}"
        );
    }
}

#[test]
fn missing_passthrough_extension_or_struct_is_reported() {
    // VK_EXT_transform_feedback is in venus's passthrough list: losing it is a bug of
    // the host side, and so is losing its feature struct.
    let bad = unexpected_after(|v| {
        v["device"]["extensions"]
            .as_object_mut()
            .expect("extensions")
            .remove("VK_EXT_transform_feedback");
        v["device"]["features"]
            .as_object_mut()
            .expect("features")
            .remove("VkPhysicalDeviceTransformFeedbackFeaturesEXT");
    });
    assert_eq!(
        bad,
        [
            "device.extensions.VK_EXT_transform_feedback",
            "device.features.VkPhysicalDeviceTransformFeedbackFeatures"
        ]
    );
    // A spec version above the host's, an extension venus cannot add, a lost feature.
    let bad = unexpected_after(|v| {
        v["device"]["extensions"]["VK_KHR_maintenance4"] = json!(3);
        v["device"]["extensions"]["VK_KHR_ray_query"] = json!(1);
        v["device"]["features"]["VkPhysicalDeviceFeatures"]["robustBufferAccess"] = json!(false);
    });
    assert_eq!(
        bad,
        [
            "device.extensions.VK_KHR_maintenance4",
            "device.extensions.VK_KHR_ray_query",
            "device.features.VkPhysicalDeviceFeatures.robustBufferAccess"
        ]
    );
}

#[test]
fn memory_queue_and_format_changes_are_reported() {
    let bad = unexpected_after(|v| {
        v["memory"]["memoryHeaps"][0]["size"] = json!(500);
        v["memory"]["memoryTypes"][0]["propertyFlags"] =
            json!(["MEMORY_PROPERTY_HOST_VISIBLE_BIT"]);
        v["device"]["queueFamiliesProperties"][0]["VkQueueFamilyProperties"]["queueCount"] =
            json!(2);
        v["device"]["formats"]["VK_FORMAT_R8_UNORM"]["VkFormatProperties"]["bufferFeatures"] =
            json!([]);
    });
    assert_eq!(
        bad,
        [
            "device.formats.VK_FORMAT_R8_UNORM.VkFormatProperties.bufferFeatures",
            "device.queueFamiliesProperties.0.VkQueueFamilyProperties.queueCount",
            "memory.memoryHeaps.0.size",
            "memory.memoryTypes.0.propertyFlags"
        ]
    );
}

#[test]
fn diff_shapes() {
    let a = json!({"x": [1, 2], "o": [{"k": 1}, {"k": 2}], "gone": 1, "same": "s"});
    let b = json!({"x": [2, 1], "o": [{"k": 1}, {"k": 3}], "new": 1, "same": "s"});
    let d = diff(&a, &b);
    let paths: Vec<String> = d.iter().map(Difference::path_string).collect();
    // Scalar arrays compare whole; object arrays element by element; absence is None.
    assert_eq!(paths, ["gone", "new", "o.1.k", "x"]);
    assert_eq!(d[0].venus, None);
    assert_eq!(d[1].native, None);
    assert_eq!(d[3].native, Some(json!([1, 2])));
}

#[test]
fn pattern_matching() {
    let e = |pattern| ExpectedDifference {
        pattern,
        rule: Rule::Any,
        reason: "test",
    };
    let path = |p: &str| p.split('.').map(String::from).collect::<Vec<_>>();
    assert!(e("a.*.c").matches(&path("a.b.c")));
    assert!(!e("a.*.c").matches(&path("a.b.c.d")));
    assert!(!e("a.*").matches(&path("a")));
    assert!(e("a.sparse*").matches(&path("a.sparseBinding")));
    assert!(!e("a.sparse*").matches(&path("a.robustBufferAccess")));
    assert!(e("a.*Bit").matches(&path("a.someBit")));
}

#[test]
fn table_is_well_formed() {
    for e in EXPECTED_DIFFERENCES {
        assert!(e.reason.len() > 20, "{}: reason too short", e.pattern);
        if let Rule::VenusIs(json) = e.rule {
            assert!(
                serde_json::from_str::<Value>(json).is_ok(),
                "{}: {json} is not JSON",
                e.pattern
            );
        }
    }
}

#[test]
fn memory_text_parser() {
    let text = "\
VkPhysicalDeviceMemoryProperties:
=================================
memoryHeaps: count = 2
\tmemoryHeaps[0]:
\t\tsize   = 1024 (0x400) (1.00 KiB)
\t\tbudget = 10 (0xa) (10.00 B)
\t\tusage  = 0 (0x0) (0.00 B)
\t\tflags: count = 1
\t\t\tMEMORY_HEAP_DEVICE_LOCAL_BIT
\tmemoryHeaps[1]:
\t\tsize   = 2048 (0x800) (2.00 KiB)
\t\tflags:
\t\t\tNone
memoryTypes: count = 1
\tmemoryTypes[0]:
\t\theapIndex     = 1
\t\tpropertyFlags = 0x0006: count = 2
\t\t\tMEMORY_PROPERTY_HOST_VISIBLE_BIT
\t\t\tMEMORY_PROPERTY_HOST_COHERENT_BIT
\t\tusable for:
\t\t\tIMAGE_TILING_OPTIMAL:
\t\t\t\tNone
\t\t\tIMAGE_TILING_LINEAR:
\t\t\t\tcolor images

VkPhysicalDeviceFeatures:
";
    let m = parse_memory_properties(text).expect("parses");
    assert_eq!(
        m,
        json!({
            "memoryHeaps": [
                {"size": 1024, "flags": ["MEMORY_HEAP_DEVICE_LOCAL_BIT"]},
                {"size": 2048, "flags": []}
            ],
            "memoryTypes": [{
                "heapIndex": 1,
                "propertyFlags": ["MEMORY_PROPERTY_HOST_VISIBLE_BIT", "MEMORY_PROPERTY_HOST_COHERENT_BIT"],
                "usableFor": {"IMAGE_TILING_OPTIMAL": [], "IMAGE_TILING_LINEAR": ["color images"]}
            }]
        })
    );
    // A count that does not match the entries is an error, as is a missing section.
    assert!(parse_memory_properties(&text.replace("count = 2", "count = 3")).is_err());
    assert!(parse_memory_properties("nothing here").is_err());
}

#[test]
fn venus_memory_type_rule() {
    let f = |s: &[&str]| {
        s.iter()
            .map(|x| format!("MEMORY_PROPERTY_{x}_BIT"))
            .collect::<Vec<_>>()
    };
    // A non-coherent cached type loses HOST_VISIBLE and HOST_CACHED; the first coherent
    // type gains HOST_CACHED when no coherent type is cached.
    let native = vec![
        f(&["DEVICE_LOCAL"]),
        f(&["HOST_VISIBLE", "HOST_CACHED"]),
        f(&["HOST_VISIBLE", "HOST_COHERENT"]),
        f(&["HOST_VISIBLE", "HOST_COHERENT"]),
    ];
    assert_eq!(
        venus_memory_type_flags(&native),
        vec![
            f(&["DEVICE_LOCAL"]),
            vec![],
            f(&["HOST_VISIBLE", "HOST_COHERENT", "HOST_CACHED"]),
            f(&["HOST_VISIBLE", "HOST_COHERENT"]),
        ]
    );
    // Lavapipe's single coherent cached type is unchanged.
    let lvp = vec![f(&[
        "DEVICE_LOCAL",
        "HOST_VISIBLE",
        "HOST_COHERENT",
        "HOST_CACHED",
    ])];
    assert_eq!(venus_memory_type_flags(&lvp), lvp);
}

#[test]
fn sha1_known_answers() {
    let hex = |d: [u8; 20]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
    assert_eq!(hex(sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    assert_eq!(
        hex(sha1(b"abc")),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    assert_eq!(
        hex(sha1(
            b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
        )),
        "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
    );
}

#[test]
fn venus_capped_at_vulkan_1_2_is_expected() {
    // What the real run on this machine shows: lavapipe without a DRM device cannot
    // import sync-fd semaphores, so venus hides VK_KHR_synchronization2 and reports
    // apiVersion 1.2.0; vulkaninfo then drops the Vulkan 1.3 structs and names the
    // promoted ones after their extensions. Sparse is off, so memory types are
    // "(non-sparse)".
    let mut native = synthetic_native();
    native["device"]["features"]["VkPhysicalDeviceVulkan13Features"] =
        json!({"maintenance4": true});
    native["device"]["features"]["VkPhysicalDeviceMaintenance4Features"] =
        json!({"maintenance4": true});
    native["device"]["features"]["VkPhysicalDeviceSynchronization2Features"] =
        json!({"synchronization2": true});
    native["device"]["features"]["VkPhysicalDeviceTextureCompressionASTCHDRFeatures"] =
        json!({"textureCompressionASTC_HDR": false});
    native["memory"]["memoryTypes"][0]["usableFor"] =
        json!({"IMAGE_TILING_LINEAR": ["color images"]});
    let mut venus = synthetic_venus();
    let dev = &mut venus["device"];
    dev["extensions"]
        .as_object_mut()
        .expect("extensions")
        .remove("VK_KHR_synchronization2");
    dev["properties"]["VkPhysicalDeviceProperties"]["apiVersion"] = json!(make_version(1, 2, 0));
    dev["features"]["VkPhysicalDeviceMaintenance4FeaturesKHR"] = json!({"maintenance4": true});
    venus["memory"]["memoryTypes"][0]["usableFor"] =
        json!({"IMAGE_TILING_LINEAR": ["color images", "(non-sparse)"]});
    let c = compare(&native, &venus, EXPECTED_DIFFERENCES);
    assert!(c.is_clean(), "{}", c.report());
    let explained: Vec<String> = c
        .expected
        .iter()
        .map(|e| e.difference.path_string())
        .collect();
    for path in [
        "device.features.VkPhysicalDeviceVulkan13Features",
        "device.features.VkPhysicalDeviceSynchronization2Features",
        "device.features.VkPhysicalDeviceTextureCompressionASTCHDRFeatures",
        "device.extensions.VK_KHR_synchronization2",
        "memory.memoryTypes.0.usableFor.IMAGE_TILING_LINEAR",
    ] {
        assert!(
            explained.iter().any(|p| p == path),
            "{path} not seen: {}",
            c.report()
        );
    }

    // But 1.2 while synchronization2 is exposed, a lost promoted struct whose extension
    // is exposed, or a wrong memory note, are not expected.
    let mut bad = venus.clone();
    bad["device"]["extensions"]["VK_KHR_synchronization2"] = json!(1);
    bad["device"]["features"]
        .as_object_mut()
        .expect("features")
        .remove("VkPhysicalDeviceMaintenance4FeaturesKHR");
    bad["memory"]["memoryTypes"][0]["usableFor"] =
        json!({"IMAGE_TILING_LINEAR": ["color images", "(non-transient)"]});
    let c = compare(&native, &bad, EXPECTED_DIFFERENCES);
    let unexpected: Vec<String> = c
        .unexpected
        .iter()
        .map(|u| u.difference.path_string())
        .collect();
    assert_eq!(
        unexpected,
        [
            "device.features.VkPhysicalDeviceMaintenance4Features",
            // exposed extension, so its struct must be there too
            "device.features.VkPhysicalDeviceSynchronization2Features",
            "device.properties.VkPhysicalDeviceProperties.apiVersion",
            "memory.memoryTypes.0.usableFor.IMAGE_TILING_LINEAR"
        ],
        "{}",
        c.report()
    );
}
