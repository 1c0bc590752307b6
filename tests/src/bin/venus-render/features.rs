//! The optional features the run uses: what the device offers (core 1.3, or extensions
//! on a 1.2 device such as stock Mesa venus), the device extensions and feature structs
//! that enable them, and the loaded extension entry points.

use std::ffi::{c_char, CStr};

use ash::vk;

/// What the device supports and the run enables.
#[derive(Default, Clone, Copy, Debug)]
pub(crate) struct Features {
    /// Instance and device are Vulkan 1.3: the 1.3 commands are core.
    pub(crate) core13: bool,
    pub(crate) dynamic_rendering: bool,
    pub(crate) sync2: bool,
    pub(crate) occlusion_precise: bool,
    /// Vulkan 1.2 features.
    pub(crate) imageless_framebuffer: bool,
    pub(crate) host_query_reset: bool,
    pub(crate) draw_indirect_count: bool,
    /// VK_RESOLVE_MODE_SAMPLE_ZERO_BIT for depth (Vulkan 1.2 depth/stencil resolve).
    pub(crate) depth_resolve: bool,
    /// 4 samples for color and depth attachments.
    pub(crate) msaa4: bool,
    /// Extended dynamic state 1 and 2 (core 1.3, else VK_EXT_extended_dynamic_state{,2}).
    pub(crate) eds: bool,
    /// vkCmdSetLogicOpEXT (VK_EXT_extended_dynamic_state2, extendedDynamicState2LogicOp).
    pub(crate) eds2_logic_op: bool,
    /// The VK_EXT_extended_dynamic_state3 states the run sets (`EDS3_STATES`).
    pub(crate) eds3: bool,
    pub(crate) multi_draw: bool,
    pub(crate) push_descriptor: bool,
    pub(crate) conditional_rendering: bool,
    pub(crate) color_write_enable: bool,
    /// vkCmdCopy*2 / vkCmdBlitImage2 / vkCmdResolveImage2 (core 1.3 or
    /// VK_KHR_copy_commands2).
    pub(crate) copy2: bool,
    /// vkGetDevice{Buffer,Image}MemoryRequirements (core 1.3 or VK_KHR_maintenance4).
    pub(crate) maintenance4: bool,
    /// Private data slots (core 1.3 or VK_EXT_private_data).
    pub(crate) private_data: bool,
    pub(crate) transform_feedback: bool,
    pub(crate) vertex_input_dynamic_state: bool,
    pub(crate) buffer_device_address: bool,
    pub(crate) sampler_ycbcr_conversion: bool,
    /// VK_EXT_calibrated_timestamps.
    pub(crate) calibrated_timestamps: bool,
}

impl Features {
    /// Whether pass 3 (render pass 2, multisampling, dynamic everything) can run.
    pub(crate) fn pass3(&self) -> bool {
        self.imageless_framebuffer
            && self.depth_resolve
            && self.msaa4
            && self.eds
            && self.multi_draw
            && self.push_descriptor
            && self.conditional_rendering
            && self.color_write_enable
    }
}

fn has(exts: &[vk::ExtensionProperties], name: &CStr) -> bool {
    exts.iter()
        .any(|e| e.extension_name_as_c_str().is_ok_and(|n| n == name))
}

/// Queries the features (the chain holds only structs the device knows).
pub(crate) fn query(
    instance: &ash::Instance,
    physical: vk::PhysicalDevice,
    exts: &[vk::ExtensionProperties],
    core13: bool,
    props: &vk::PhysicalDeviceProperties,
) -> Features {
    let mut f12 = vk::PhysicalDeviceVulkan12Features::default();
    let mut f13 = vk::PhysicalDeviceVulkan13Features::default();
    let mut dr = vk::PhysicalDeviceDynamicRenderingFeatures::default();
    let mut s2 = vk::PhysicalDeviceSynchronization2Features::default();
    let mut eds1 = vk::PhysicalDeviceExtendedDynamicStateFeaturesEXT::default();
    let mut eds2 = vk::PhysicalDeviceExtendedDynamicState2FeaturesEXT::default();
    let mut eds3 = vk::PhysicalDeviceExtendedDynamicState3FeaturesEXT::default();
    let mut multi = vk::PhysicalDeviceMultiDrawFeaturesEXT::default();
    let mut cond = vk::PhysicalDeviceConditionalRenderingFeaturesEXT::default();
    let mut cwe = vk::PhysicalDeviceColorWriteEnableFeaturesEXT::default();
    let mut f11 = vk::PhysicalDeviceVulkan11Features::default();
    let mut m4 = vk::PhysicalDeviceMaintenance4Features::default();
    let mut pd = vk::PhysicalDevicePrivateDataFeatures::default();
    let mut tf = vk::PhysicalDeviceTransformFeedbackFeaturesEXT::default();
    let mut vid = vk::PhysicalDeviceVertexInputDynamicStateFeaturesEXT::default();
    let has_m4 = has(exts, ash::khr::maintenance4::NAME);
    let has_pd = has(exts, ash::ext::private_data::NAME);
    let has_tf = has(exts, ash::ext::transform_feedback::NAME);
    let has_vid = has(exts, ash::ext::vertex_input_dynamic_state::NAME);
    let has_dr = has(exts, ash::khr::dynamic_rendering::NAME);
    let has_s2 = has(exts, ash::khr::synchronization2::NAME);
    let has_eds1 = has(exts, ash::ext::extended_dynamic_state::NAME);
    let has_eds2 = has(exts, ash::ext::extended_dynamic_state2::NAME);
    let has_eds3 = has(exts, ash::ext::extended_dynamic_state3::NAME);
    let has_multi = has(exts, ash::ext::multi_draw::NAME);
    let has_cond = has(exts, ash::ext::conditional_rendering::NAME);
    let has_cwe = has(exts, ash::ext::color_write_enable::NAME);
    let mut feats2 = vk::PhysicalDeviceFeatures2::default()
        .push_next(&mut f12)
        .push_next(&mut f11);
    if core13 {
        feats2 = feats2.push_next(&mut f13);
    } else {
        if has_m4 {
            feats2 = feats2.push_next(&mut m4);
        }
        if has_pd {
            feats2 = feats2.push_next(&mut pd);
        }
        if has_dr {
            feats2 = feats2.push_next(&mut dr);
        }
        if has_s2 {
            feats2 = feats2.push_next(&mut s2);
        }
        if has_eds1 {
            feats2 = feats2.push_next(&mut eds1);
        }
    }
    if has_eds2 {
        feats2 = feats2.push_next(&mut eds2);
    }
    if has_eds3 {
        feats2 = feats2.push_next(&mut eds3);
    }
    if has_multi {
        feats2 = feats2.push_next(&mut multi);
    }
    if has_cond {
        feats2 = feats2.push_next(&mut cond);
    }
    if has_cwe {
        feats2 = feats2.push_next(&mut cwe);
    }
    if has_tf {
        feats2 = feats2.push_next(&mut tf);
    }
    if has_vid {
        feats2 = feats2.push_next(&mut vid);
    }
    // SAFETY: `physical` belongs to `instance` (1.2+); the chain holds only structs of
    // the device's core version or of extensions it lists.
    unsafe { instance.get_physical_device_features2(physical, &mut feats2) };
    let base = feats2.features;

    let mut resolve = vk::PhysicalDeviceDepthStencilResolveProperties::default();
    let mut props2 = vk::PhysicalDeviceProperties2::default().push_next(&mut resolve);
    // SAFETY: as above; the depth/stencil resolve properties are core 1.2.
    unsafe { instance.get_physical_device_properties2(physical, &mut props2) };

    let t = |b: vk::Bool32| b == vk::TRUE;
    let limits = &props.limits;
    let four = vk::SampleCountFlags::TYPE_4;
    Features {
        core13,
        dynamic_rendering: if core13 {
            t(f13.dynamic_rendering)
        } else {
            has_dr && t(dr.dynamic_rendering)
        },
        sync2: if core13 {
            t(f13.synchronization2)
        } else {
            has_s2 && t(s2.synchronization2)
        },
        occlusion_precise: t(base.occlusion_query_precise),
        imageless_framebuffer: t(f12.imageless_framebuffer),
        host_query_reset: t(f12.host_query_reset),
        draw_indirect_count: t(f12.draw_indirect_count),
        depth_resolve: resolve
            .supported_depth_resolve_modes
            .contains(vk::ResolveModeFlags::SAMPLE_ZERO),
        msaa4: limits.framebuffer_color_sample_counts.contains(four)
            && limits.framebuffer_depth_sample_counts.contains(four),
        eds: if core13 {
            true
        } else {
            has_eds1
                && t(eds1.extended_dynamic_state)
                && has_eds2
                && t(eds2.extended_dynamic_state2)
        },
        eds2_logic_op: has_eds2 && t(eds2.extended_dynamic_state2_logic_op),
        eds3: has_eds3
            && [
                eds3.extended_dynamic_state3_polygon_mode,
                eds3.extended_dynamic_state3_rasterization_samples,
                eds3.extended_dynamic_state3_sample_mask,
                eds3.extended_dynamic_state3_alpha_to_coverage_enable,
                eds3.extended_dynamic_state3_alpha_to_one_enable,
                eds3.extended_dynamic_state3_logic_op_enable,
                eds3.extended_dynamic_state3_color_blend_enable,
                eds3.extended_dynamic_state3_color_blend_equation,
                eds3.extended_dynamic_state3_color_write_mask,
                eds3.extended_dynamic_state3_depth_clamp_enable,
            ]
            .into_iter()
            .all(t),
        multi_draw: has_multi && t(multi.multi_draw),
        push_descriptor: has(exts, ash::khr::push_descriptor::NAME),
        conditional_rendering: has_cond && t(cond.conditional_rendering),
        color_write_enable: has_cwe && t(cwe.color_write_enable),
        copy2: core13 || has(exts, ash::khr::copy_commands2::NAME),
        maintenance4: if core13 {
            t(f13.maintenance4)
        } else {
            has_m4 && t(m4.maintenance4)
        },
        private_data: if core13 {
            t(f13.private_data)
        } else {
            has_pd && t(pd.private_data)
        },
        transform_feedback: has_tf && t(tf.transform_feedback),
        vertex_input_dynamic_state: has_vid && t(vid.vertex_input_dynamic_state),
        buffer_device_address: t(f12.buffer_device_address),
        sampler_ycbcr_conversion: t(f11.sampler_ycbcr_conversion),
        calibrated_timestamps: has(exts, ash::ext::calibrated_timestamps::NAME),
    }
}

/// The feature structs and extension names that enable `f` at device creation; the
/// structs live here while the create info points to them.
pub(crate) struct Enable {
    pub(crate) base: vk::PhysicalDeviceFeatures,
    f12: vk::PhysicalDeviceVulkan12Features<'static>,
    f13: vk::PhysicalDeviceVulkan13Features<'static>,
    dr: vk::PhysicalDeviceDynamicRenderingFeatures<'static>,
    s2: vk::PhysicalDeviceSynchronization2Features<'static>,
    eds1: vk::PhysicalDeviceExtendedDynamicStateFeaturesEXT<'static>,
    eds2: vk::PhysicalDeviceExtendedDynamicState2FeaturesEXT<'static>,
    eds3: vk::PhysicalDeviceExtendedDynamicState3FeaturesEXT<'static>,
    multi: vk::PhysicalDeviceMultiDrawFeaturesEXT<'static>,
    cond: vk::PhysicalDeviceConditionalRenderingFeaturesEXT<'static>,
    cwe: vk::PhysicalDeviceColorWriteEnableFeaturesEXT<'static>,
    f11: vk::PhysicalDeviceVulkan11Features<'static>,
    m4: vk::PhysicalDeviceMaintenance4Features<'static>,
    pd: vk::PhysicalDevicePrivateDataFeatures<'static>,
    tf: vk::PhysicalDeviceTransformFeedbackFeaturesEXT<'static>,
    vid: vk::PhysicalDeviceVertexInputDynamicStateFeaturesEXT<'static>,
    pub(crate) extensions: Vec<*const c_char>,
}

impl Enable {
    pub(crate) fn new(f: &Features) -> Enable {
        let mut e = Enable {
            base: vk::PhysicalDeviceFeatures::default()
                .occlusion_query_precise(f.occlusion_precise),
            f12: vk::PhysicalDeviceVulkan12Features::default()
                .imageless_framebuffer(f.imageless_framebuffer)
                .host_query_reset(f.host_query_reset)
                .draw_indirect_count(f.draw_indirect_count)
                .buffer_device_address(f.buffer_device_address),
            f13: vk::PhysicalDeviceVulkan13Features::default()
                .dynamic_rendering(f.dynamic_rendering)
                .synchronization2(f.sync2)
                .maintenance4(f.maintenance4)
                .private_data(f.private_data),
            dr: vk::PhysicalDeviceDynamicRenderingFeatures::default().dynamic_rendering(true),
            s2: vk::PhysicalDeviceSynchronization2Features::default().synchronization2(true),
            eds1: vk::PhysicalDeviceExtendedDynamicStateFeaturesEXT::default()
                .extended_dynamic_state(true),
            eds2: vk::PhysicalDeviceExtendedDynamicState2FeaturesEXT::default()
                .extended_dynamic_state2(!f.core13)
                .extended_dynamic_state2_logic_op(f.eds2_logic_op),
            eds3: vk::PhysicalDeviceExtendedDynamicState3FeaturesEXT::default()
                .extended_dynamic_state3_polygon_mode(true)
                .extended_dynamic_state3_rasterization_samples(true)
                .extended_dynamic_state3_sample_mask(true)
                .extended_dynamic_state3_alpha_to_coverage_enable(true)
                .extended_dynamic_state3_alpha_to_one_enable(true)
                .extended_dynamic_state3_logic_op_enable(true)
                .extended_dynamic_state3_color_blend_enable(true)
                .extended_dynamic_state3_color_blend_equation(true)
                .extended_dynamic_state3_color_write_mask(true)
                .extended_dynamic_state3_depth_clamp_enable(true),
            multi: vk::PhysicalDeviceMultiDrawFeaturesEXT::default().multi_draw(true),
            cond: vk::PhysicalDeviceConditionalRenderingFeaturesEXT::default()
                .conditional_rendering(true),
            cwe: vk::PhysicalDeviceColorWriteEnableFeaturesEXT::default().color_write_enable(true),
            f11: vk::PhysicalDeviceVulkan11Features::default()
                .sampler_ycbcr_conversion(f.sampler_ycbcr_conversion),
            m4: vk::PhysicalDeviceMaintenance4Features::default().maintenance4(true),
            pd: vk::PhysicalDevicePrivateDataFeatures::default().private_data(true),
            tf: vk::PhysicalDeviceTransformFeedbackFeaturesEXT::default().transform_feedback(true),
            vid: vk::PhysicalDeviceVertexInputDynamicStateFeaturesEXT::default()
                .vertex_input_dynamic_state(true),
            extensions: Vec::new(),
        };
        let mut add = |on: bool, name: &'static CStr| {
            if on {
                e.extensions.push(name.as_ptr());
            }
        };
        add(
            !f.core13 && f.dynamic_rendering,
            ash::khr::dynamic_rendering::NAME,
        );
        add(!f.core13 && f.sync2, ash::khr::synchronization2::NAME);
        add(!f.core13 && f.eds, ash::ext::extended_dynamic_state::NAME);
        add(
            (!f.core13 && f.eds) || f.eds2_logic_op,
            ash::ext::extended_dynamic_state2::NAME,
        );
        add(f.eds3, ash::ext::extended_dynamic_state3::NAME);
        add(f.multi_draw, ash::ext::multi_draw::NAME);
        add(f.push_descriptor, ash::khr::push_descriptor::NAME);
        add(
            f.conditional_rendering,
            ash::ext::conditional_rendering::NAME,
        );
        add(f.color_write_enable, ash::ext::color_write_enable::NAME);
        add(!f.core13 && f.copy2, ash::khr::copy_commands2::NAME);
        add(!f.core13 && f.maintenance4, ash::khr::maintenance4::NAME);
        add(!f.core13 && f.private_data, ash::ext::private_data::NAME);
        add(f.transform_feedback, ash::ext::transform_feedback::NAME);
        add(
            f.calibrated_timestamps,
            ash::ext::calibrated_timestamps::NAME,
        );
        add(
            f.vertex_input_dynamic_state,
            ash::ext::vertex_input_dynamic_state::NAME,
        );
        e
    }

    /// Chains the feature structs of `f` onto `info`.
    pub(crate) fn chain<'a>(
        &'a mut self,
        f: &Features,
        mut info: vk::DeviceCreateInfo<'a>,
    ) -> vk::DeviceCreateInfo<'a> {
        info = info
            .enabled_features(&self.base)
            .enabled_extension_names(&self.extensions)
            .push_next(&mut self.f12)
            .push_next(&mut self.f11);
        if f.core13 {
            info = info.push_next(&mut self.f13);
        } else {
            if f.maintenance4 {
                info = info.push_next(&mut self.m4);
            }
            if f.private_data {
                info = info.push_next(&mut self.pd);
            }
            if f.dynamic_rendering {
                info = info.push_next(&mut self.dr);
            }
            if f.sync2 {
                info = info.push_next(&mut self.s2);
            }
            if f.eds {
                info = info.push_next(&mut self.eds1);
            }
        }
        if (!f.core13 && f.eds) || f.eds2_logic_op {
            info = info.push_next(&mut self.eds2);
        }
        if f.eds3 {
            info = info.push_next(&mut self.eds3);
        }
        if f.multi_draw {
            info = info.push_next(&mut self.multi);
        }
        if f.conditional_rendering {
            info = info.push_next(&mut self.cond);
        }
        if f.color_write_enable {
            info = info.push_next(&mut self.cwe);
        }
        if f.transform_feedback {
            info = info.push_next(&mut self.tf);
        }
        if f.vertex_input_dynamic_state {
            info = info.push_next(&mut self.vid);
        }
        info
    }
}

/// Extended dynamic state 1 and 2 entry points: core 1.3 or the EXT extensions.
pub(crate) enum EdsApi {
    Core,
    Ext(
        ash::ext::extended_dynamic_state::Device,
        ash::ext::extended_dynamic_state2::Device,
    ),
}

/// Loaded extension entry points (present when the feature is enabled).
pub(crate) struct Loaded {
    pub(crate) eds: Option<EdsApi>,
    pub(crate) eds2: Option<ash::ext::extended_dynamic_state2::Device>,
    pub(crate) eds3: Option<ash::ext::extended_dynamic_state3::Device>,
    pub(crate) multi_draw: Option<ash::ext::multi_draw::Device>,
    pub(crate) push_descriptor: Option<ash::khr::push_descriptor::Device>,
    pub(crate) conditional: Option<ash::ext::conditional_rendering::Device>,
    pub(crate) color_write: Option<ash::ext::color_write_enable::Device>,
    /// Copy commands 2 through VK_KHR_copy_commands2 (None: core 1.3 or not at all).
    pub(crate) copy2_khr: Option<ash::khr::copy_commands2::Device>,
    pub(crate) maintenance4_khr: Option<ash::khr::maintenance4::Device>,
    pub(crate) private_data_ext: Option<ash::ext::private_data::Device>,
    pub(crate) transform_feedback: Option<ash::ext::transform_feedback::Device>,
    pub(crate) vertex_input: Option<ash::ext::vertex_input_dynamic_state::Device>,
    pub(crate) calibrated: Option<ash::ext::calibrated_timestamps::Device>,
}

impl Loaded {
    pub(crate) fn new(f: &Features, instance: &ash::Instance, device: &ash::Device) -> Loaded {
        let eds2 = ((!f.core13 && f.eds) || f.eds2_logic_op)
            .then(|| ash::ext::extended_dynamic_state2::Device::new(instance, device));
        Loaded {
            eds: match (f.eds, f.core13, &eds2) {
                (true, true, _) => Some(EdsApi::Core),
                (true, false, Some(e2)) => Some(EdsApi::Ext(
                    ash::ext::extended_dynamic_state::Device::new(instance, device),
                    e2.clone(),
                )),
                _ => None,
            },
            eds2,
            eds3: f
                .eds3
                .then(|| ash::ext::extended_dynamic_state3::Device::new(instance, device)),
            multi_draw: f
                .multi_draw
                .then(|| ash::ext::multi_draw::Device::new(instance, device)),
            push_descriptor: f
                .push_descriptor
                .then(|| ash::khr::push_descriptor::Device::new(instance, device)),
            conditional: f
                .conditional_rendering
                .then(|| ash::ext::conditional_rendering::Device::new(instance, device)),
            color_write: f
                .color_write_enable
                .then(|| ash::ext::color_write_enable::Device::new(instance, device)),
            copy2_khr: (!f.core13 && f.copy2)
                .then(|| ash::khr::copy_commands2::Device::new(instance, device)),
            maintenance4_khr: (!f.core13 && f.maintenance4)
                .then(|| ash::khr::maintenance4::Device::new(instance, device)),
            private_data_ext: (!f.core13 && f.private_data)
                .then(|| ash::ext::private_data::Device::new(instance, device)),
            transform_feedback: f
                .transform_feedback
                .then(|| ash::ext::transform_feedback::Device::new(instance, device)),
            vertex_input: f
                .vertex_input_dynamic_state
                .then(|| ash::ext::vertex_input_dynamic_state::Device::new(instance, device)),
            calibrated: f
                .calibrated_timestamps
                .then(|| ash::ext::calibrated_timestamps::Device::new(instance, device)),
        }
    }
}
