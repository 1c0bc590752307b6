//! Queries and object lifecycles around the images and buffers of the run, each with a
//! check of its answer: subresource layout of a linear image, sparse requirements of
//! non-sparse images, memory requirements without an object (maintenance4) against
//! those of an object, descriptor set layout support, a texel buffer view, private
//! data, a sampler Y′CbCr conversion, a buffer device address, external memory, fence
//! and semaphore properties; at the end, command and descriptor pool resets.

use ash::vk;

use crate::device::Gpu;
use crate::pipeline::set_bindings;
use crate::report::{Fail, Report, VkContext};
use crate::resources::Resources;
use crate::scene::{HEIGHT, WIDTH};
use crate::vulkan::{Obj, Vulkan};

/// The create info of the 256×256 color attachments.
fn color_image_info() -> vk::ImageCreateInfo<'static> {
    vk::ImageCreateInfo::default()
        .image_type(vk::ImageType::TYPE_2D)
        .format(vk::Format::R8G8B8A8_UNORM)
        .extent(vk::Extent3D {
            width: WIDTH,
            height: HEIGHT,
            depth: 1,
        })
        .mip_levels(1)
        .array_layers(1)
        .samples(vk::SampleCountFlags::TYPE_1)
        .tiling(vk::ImageTiling::OPTIMAL)
        .usage(vk::ImageUsageFlags::COLOR_ATTACHMENT | vk::ImageUsageFlags::TRANSFER_SRC)
}

pub(crate) fn run(
    vk_: &mut Vulkan,
    gpu: &Gpu,
    res: &Resources,
    report: &mut Report,
) -> Result<(), Fail> {
    let device = &gpu.device;
    let instance = vk_.instance()?.clone();

    // A linear image's row pitch and size.
    let linear_info = color_image_info()
        .extent(vk::Extent3D {
            width: 16,
            height: 16,
            depth: 1,
        })
        .tiling(vk::ImageTiling::LINEAR)
        .usage(vk::ImageUsageFlags::TRANSFER_DST);
    // SAFETY: valid device; linear RGBA8 2D transfer-destination images are mandatory;
    // tracked for destruction.
    let linear =
        unsafe { device.create_image(&linear_info, None) }.ctx("vkCreateImage (linear)")?;
    vk_.track(Obj::Image(linear));
    let subresource = vk::ImageSubresource {
        aspect_mask: vk::ImageAspectFlags::COLOR,
        mip_level: 0,
        array_layer: 0,
    };
    // SAFETY: a linear image of this device; its only subresource.
    let layout = unsafe { device.get_image_subresource_layout(linear, subresource) };
    report.check(
        layout.row_pitch >= 64 && layout.size >= layout.row_pitch * 15 + 64,
        format!(
            "vkGetImageSubresourceLayout (16x16 linear RGBA8): offset {}, row pitch {}, size {}",
            layout.offset, layout.row_pitch, layout.size
        ),
    );

    // Sparse queries on images that are not sparse: no requirements.
    let image = res.color_1.image;
    // SAFETY: a live, non-sparse image.
    let sparse = unsafe { device.get_image_sparse_memory_requirements(image) };
    let info2 = vk::ImageSparseMemoryRequirementsInfo2::default().image(image);
    // SAFETY: as above.
    let sparse2 = unsafe { device.get_image_sparse_memory_requirements2_len(&info2) };
    report.check(
        sparse.is_empty() && sparse2 == 0,
        format!(
            "vkGetImageSparseMemoryRequirements(2) of a non-sparse image: {} and {sparse2} \
             requirements",
            sparse.len()
        ),
    );
    // SAFETY: a valid format / type / usage combination of this physical device.
    let formats = unsafe {
        instance.get_physical_device_sparse_image_format_properties(
            gpu.physical,
            vk::Format::R8G8B8A8_UNORM,
            vk::ImageType::TYPE_2D,
            vk::SampleCountFlags::TYPE_1,
            vk::ImageUsageFlags::SAMPLED,
            vk::ImageTiling::OPTIMAL,
        )
    };
    let format_info = vk::PhysicalDeviceSparseImageFormatInfo2::default()
        .format(vk::Format::R8G8B8A8_UNORM)
        .ty(vk::ImageType::TYPE_2D)
        .samples(vk::SampleCountFlags::TYPE_1)
        .usage(vk::ImageUsageFlags::SAMPLED)
        .tiling(vk::ImageTiling::OPTIMAL);
    // SAFETY: as above.
    let formats2 = unsafe {
        instance.get_physical_device_sparse_image_format_properties2_len(gpu.physical, &format_info)
    };
    report.check(
        formats.len() == formats2,
        format!(
            "vkGetPhysicalDeviceSparseImageFormatProperties and ...2 agree: {} and {formats2} \
             (RGBA8 2D sampled)",
            formats.len()
        ),
    );

    memory_requirements(vk_, gpu, res, report)?;

    let samplers = [res.sampler];
    let bindings = set_bindings(&samplers);
    let set_info = vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings);
    let mut support = vk::DescriptorSetLayoutSupport::default();
    // SAFETY: valid device and create info.
    unsafe { device.get_descriptor_set_layout_support(&set_info, &mut support) };
    report.check(
        support.supported == vk::TRUE,
        format!(
            "vkGetDescriptorSetLayoutSupport: supported {}",
            support.supported
        ),
    );

    texel_buffer_view(vk_, gpu, report)?;
    private_data(gpu, res, report)?;
    ycbcr_conversion(vk_, gpu, report)?;
    device_address(vk_, gpu, report)?;
    calibrated_timestamps(vk_, gpu, report)?;
    external_properties(vk_, gpu, report)
}

/// VK_EXT_calibrated_timestamps: the time domains include the device's, and two
/// calibrated readings of the device (and CLOCK_MONOTONIC) domains do not go back.
fn calibrated_timestamps(vk_: &mut Vulkan, gpu: &Gpu, report: &mut Report) -> Result<(), Fail> {
    let Some(device) = gpu.loaded.calibrated.as_ref() else {
        report.info("calibrated timestamps skipped: no VK_EXT_calibrated_timestamps");
        return Ok(());
    };
    let instance = ash::ext::calibrated_timestamps::Instance::new(&vk_.entry, vk_.instance()?);
    // SAFETY: the device has the extension (enabled); `physical` is its physical device.
    let domains = unsafe { instance.get_physical_device_calibrateable_time_domains(gpu.physical) }
        .ctx("vkGetPhysicalDeviceCalibrateableTimeDomainsEXT")?;
    let mut wanted = vec![vk::TimeDomainEXT::DEVICE];
    if domains.contains(&vk::TimeDomainEXT::CLOCK_MONOTONIC) {
        wanted.push(vk::TimeDomainEXT::CLOCK_MONOTONIC);
    }
    let infos: Vec<vk::CalibratedTimestampInfoEXT<'_>> = wanted
        .iter()
        .map(|&d| vk::CalibratedTimestampInfoEXT::default().time_domain(d))
        .collect();
    let before = monotonic_ns();
    // SAFETY: as above; the domains are calibrateable (DEVICE is checked below).
    let (first, second) = unsafe {
        (
            device.get_calibrated_timestamps(&infos),
            device.get_calibrated_timestamps(&infos),
        )
    };
    let after = monotonic_ns();
    let ok = domains.contains(&vk::TimeDomainEXT::DEVICE)
        && matches!((&first, &second), (Ok((a, _)), Ok((b, _))) if a.len() == wanted.len()
            && a.iter().zip(b).all(|(x, y)| y >= x));
    report.check(
        ok,
        format!("calibrated timestamps: domains {domains:?}; readings {first:?} then {second:?}"),
    );
    // CLOCK_MONOTONIC is this program's clock: the readings lie between the program's
    // own readings around the calls (a guest driver must not pass the host's on: in a
    // VM the two clocks differ).
    if let (Ok((a, _)), Ok((b, _)), true) = (&first, &second, wanted.len() == 2) {
        report.check(
            (before..=after).contains(&a[1]) && (before..=after).contains(&b[1]),
            format!(
                "calibrated CLOCK_MONOTONIC readings {} and {} lie in this program's \
                 {before}..={after}",
                a[1], b[1]
            ),
        );
    }
    Ok(())
}

/// This process's CLOCK_MONOTONIC in nanoseconds.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return 0;
    }
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

/// vkGetDevice{Buffer,Image}MemoryRequirements (and the sparse one) for create infos
/// of live objects, compared with the objects' requirements.
fn memory_requirements(
    vk_: &mut Vulkan,
    gpu: &Gpu,
    res: &Resources,
    report: &mut Report,
) -> Result<(), Fail> {
    if !gpu.features.maintenance4 {
        report.info("maintenance4 queries skipped: neither Vulkan 1.3 nor VK_KHR_maintenance4");
        return Ok(());
    }
    let device = &gpu.device;
    let buffer_info = vk::BufferCreateInfo::default()
        .size(res.readback.size)
        .usage(vk::BufferUsageFlags::TRANSFER_DST)
        .sharing_mode(vk::SharingMode::EXCLUSIVE);
    let image_info = color_image_info();
    let buffer_query = vk::DeviceBufferMemoryRequirements::default().create_info(&buffer_info);
    let image_query = vk::DeviceImageMemoryRequirements::default().create_info(&image_info);
    let mut buffer_req = vk::MemoryRequirements2::default();
    let mut image_req = vk::MemoryRequirements2::default();
    // SAFETY: maintenance4 is enabled (core or KHR, whose entry points are loaded);
    // the create infos are valid.
    let sparse = unsafe {
        match gpu.loaded.maintenance4_khr.as_ref() {
            Some(m4) => {
                m4.get_device_buffer_memory_requirements(&buffer_query, &mut buffer_req);
                m4.get_device_image_memory_requirements(&image_query, &mut image_req);
                m4.get_device_image_sparse_memory_requirements_len(&image_query)
            }
            None => {
                device.get_device_buffer_memory_requirements(&buffer_query, &mut buffer_req);
                device.get_device_image_memory_requirements(&image_query, &mut image_req);
                device.get_device_image_sparse_memory_requirements_len(&image_query)
            }
        }
    };
    // SAFETY: live objects made with the same create infos.
    let (of_buffer, of_image) = unsafe {
        (
            device.get_buffer_memory_requirements(res.readback.buffer),
            device.get_image_memory_requirements(res.color_1.image),
        )
    };
    let same = |a: vk::MemoryRequirements, b: vk::MemoryRequirements| {
        a.size == b.size && a.alignment == b.alignment && a.memory_type_bits == b.memory_type_bits
    };
    report.check(
        same(buffer_req.memory_requirements, of_buffer)
            && same(image_req.memory_requirements, of_image)
            && sparse == 0,
        format!(
            "vkGetDeviceBufferMemoryRequirements / vkGetDeviceImageMemoryRequirements match \
             the objects' (buffer {} bytes, image {} bytes); sparse: {sparse}",
            of_buffer.size, of_image.size
        ),
    );
    let _ = vk_;
    Ok(())
}

fn texel_buffer_view(vk_: &mut Vulkan, gpu: &Gpu, report: &mut Report) -> Result<(), Fail> {
    let buffer = crate::memory::create_buffer(
        vk_,
        gpu,
        256,
        vk::BufferUsageFlags::UNIFORM_TEXEL_BUFFER,
        false,
    )?;
    // SAFETY: R32_SFLOAT uniform texel buffers are mandatory; the view covers the bound
    // buffer and is destroyed right away.
    let view = unsafe {
        gpu.device.create_buffer_view(
            &vk::BufferViewCreateInfo::default()
                .buffer(buffer.buffer)
                .format(vk::Format::R32_SFLOAT)
                .range(vk::WHOLE_SIZE),
            None,
        )
    }
    .ctx("vkCreateBufferView")?;
    // SAFETY: unused view.
    unsafe { gpu.device.destroy_buffer_view(view, None) };
    report.check(
        true,
        "vkCreateBufferView / vkDestroyBufferView (R32_SFLOAT)",
    );
    Ok(())
}

fn private_data(gpu: &Gpu, res: &Resources, report: &mut Report) -> Result<(), Fail> {
    if !gpu.features.private_data {
        report.info("private data skipped: neither Vulkan 1.3 nor VK_EXT_private_data");
        return Ok(());
    }
    let d = &gpu.device;
    let info = vk::PrivateDataSlotCreateInfo::default();
    const VALUE: u64 = 0x0123_4567_89ab_cdef;
    let ext = gpu.loaded.private_data_ext.as_ref();
    // SAFETY: private data is enabled (core or EXT, loaded); the slot is used on a live
    // sampler of this device and destroyed at the end.
    let (set, got) = unsafe {
        let slot = match ext {
            Some(e) => e.create_private_data_slot(&info, None),
            None => d.create_private_data_slot(&info, None),
        }
        .ctx("vkCreatePrivateDataSlot")?;
        let set = match ext {
            Some(e) => e.set_private_data(res.sampler, slot, VALUE),
            None => d.set_private_data(res.sampler, slot, VALUE),
        };
        let got = match ext {
            Some(e) => e.get_private_data(res.sampler, slot),
            None => d.get_private_data(res.sampler, slot),
        };
        match ext {
            Some(e) => e.destroy_private_data_slot(slot, None),
            None => d.destroy_private_data_slot(slot, None),
        }
        (set, got)
    };
    report.check(
        set.is_ok() && got == VALUE,
        format!(
            "private data on the sampler: vkSetPrivateData {set:?}, vkGetPrivateData 0x{got:x}"
        ),
    );
    Ok(())
}

fn ycbcr_conversion(vk_: &mut Vulkan, gpu: &Gpu, report: &mut Report) -> Result<(), Fail> {
    let format = vk::Format::G8_B8R8_2PLANE_420_UNORM;
    let instance = vk_.instance()?;
    // SAFETY: `physical` belongs to this instance.
    let props = unsafe { instance.get_physical_device_format_properties(gpu.physical, format) };
    let features = props.optimal_tiling_features;
    let location = if features.contains(vk::FormatFeatureFlags::MIDPOINT_CHROMA_SAMPLES) {
        vk::ChromaLocation::MIDPOINT
    } else if features.contains(vk::FormatFeatureFlags::COSITED_CHROMA_SAMPLES) {
        vk::ChromaLocation::COSITED_EVEN
    } else {
        report.info(
            "sampler Y'CbCr conversion skipped: G8_B8R8_2PLANE_420_UNORM has no chroma samples",
        );
        return Ok(());
    };
    if !gpu.features.sampler_ycbcr_conversion {
        report.info("sampler Y'CbCr conversion skipped: feature not supported");
        return Ok(());
    }
    // SAFETY: samplerYcbcrConversion is enabled; the format supports the chroma
    // location; destroyed right away.
    let conversion = unsafe {
        gpu.device.create_sampler_ycbcr_conversion(
            &vk::SamplerYcbcrConversionCreateInfo::default()
                .format(format)
                .ycbcr_model(vk::SamplerYcbcrModelConversion::YCBCR_709)
                .ycbcr_range(vk::SamplerYcbcrRange::ITU_NARROW)
                .x_chroma_offset(location)
                .y_chroma_offset(location)
                .chroma_filter(vk::Filter::NEAREST),
            None,
        )
    }
    .ctx("vkCreateSamplerYcbcrConversion")?;
    // SAFETY: unused conversion.
    unsafe {
        gpu.device
            .destroy_sampler_ycbcr_conversion(conversion, None)
    };
    report.check(
        true,
        "vkCreateSamplerYcbcrConversion / vkDestroySamplerYcbcrConversion (G8_B8R8_2PLANE_420)",
    );
    Ok(())
}

fn device_address(vk_: &mut Vulkan, gpu: &Gpu, report: &mut Report) -> Result<(), Fail> {
    if !gpu.features.buffer_device_address {
        report.info("buffer device address skipped: feature not supported");
        return Ok(());
    }
    let device = &gpu.device;
    // SAFETY: valid device; tracked for destruction.
    let buffer = unsafe {
        device.create_buffer(
            &vk::BufferCreateInfo::default()
                .size(1024)
                .usage(
                    vk::BufferUsageFlags::STORAGE_BUFFER
                        | vk::BufferUsageFlags::SHADER_DEVICE_ADDRESS,
                )
                .sharing_mode(vk::SharingMode::EXCLUSIVE),
            None,
        )
    }
    .ctx("vkCreateBuffer (device address)")?;
    vk_.track(Obj::Buffer(buffer));
    // SAFETY: valid buffer.
    let req = unsafe { device.get_buffer_memory_requirements(buffer) };
    let Some(index) =
        (0..gpu.memory.memory_type_count).find(|&i| req.memory_type_bits & (1 << i) != 0)
    else {
        return Err("no memory type for the device-address buffer".into());
    };
    let mut flags =
        vk::MemoryAllocateFlagsInfo::default().flags(vk::MemoryAllocateFlags::DEVICE_ADDRESS);
    // SAFETY: bufferDeviceAddress is enabled; tracked (freed after the buffer).
    let memory = unsafe {
        device.allocate_memory(
            &vk::MemoryAllocateInfo::default()
                .allocation_size(req.size)
                .memory_type_index(index)
                .push_next(&mut flags),
            None,
        )
    }
    .ctx("vkAllocateMemory (device address)")?;
    vk_.track_memory_under_last(memory);
    // SAFETY: unbound buffer, allowed memory type, offset 0.
    unsafe { device.bind_buffer_memory(buffer, memory, 0) }.ctx("vkBindBufferMemory")?;
    // SAFETY: the buffer has SHADER_DEVICE_ADDRESS usage and bound memory.
    let address = unsafe {
        device.get_buffer_device_address(&vk::BufferDeviceAddressInfo::default().buffer(buffer))
    };
    report.check(
        address != 0 && address % req.alignment.max(1) == 0,
        format!(
            "vkGetBufferDeviceAddress: 0x{address:x} (alignment {})",
            req.alignment
        ),
    );
    Ok(())
}

fn external_properties(vk_: &mut Vulkan, gpu: &Gpu, report: &mut Report) -> Result<(), Fail> {
    let instance = vk_.instance()?;
    let fd = vk::ExternalMemoryHandleTypeFlags::OPAQUE_FD;
    let buffer_info = vk::PhysicalDeviceExternalBufferInfo::default()
        .usage(vk::BufferUsageFlags::TRANSFER_SRC)
        .handle_type(fd);
    let mut buffer = vk::ExternalBufferProperties::default();
    let fence_info = vk::PhysicalDeviceExternalFenceInfo::default()
        .handle_type(vk::ExternalFenceHandleTypeFlags::SYNC_FD);
    let mut fence = vk::ExternalFenceProperties::default();
    let semaphore_info = vk::PhysicalDeviceExternalSemaphoreInfo::default()
        .handle_type(vk::ExternalSemaphoreHandleTypeFlags::SYNC_FD);
    let mut semaphore = vk::ExternalSemaphoreProperties::default();
    // SAFETY: core 1.1 physical-device queries with valid infos.
    unsafe {
        instance.get_physical_device_external_buffer_properties(
            gpu.physical,
            &buffer_info,
            &mut buffer,
        );
        instance.get_physical_device_external_fence_properties(
            gpu.physical,
            &fence_info,
            &mut fence,
        );
        instance.get_physical_device_external_semaphore_properties(
            gpu.physical,
            &semaphore_info,
            &mut semaphore,
        );
    }
    let memory = buffer.external_memory_properties;
    // An exportable or importable type is compatible with itself.
    let consistent =
        memory.external_memory_features.is_empty() || memory.compatible_handle_types.contains(fd);
    report.check(
        consistent,
        format!(
            "external properties: buffer OPAQUE_FD {:?} (compatible {:?}), fence SYNC_FD {:?}, \
             semaphore SYNC_FD {:?}",
            memory.external_memory_features,
            memory.compatible_handle_types,
            fence.external_fence_features,
            semaphore.external_semaphore_features
        ),
    );
    Ok(())
}

/// At the end of the run: vkResetCommandPool (releasing resources), vkTrimCommandPool,
/// vkResetDescriptorPool.
pub(crate) fn reset_pools(gpu: &Gpu, res: &Resources, report: &mut Report) -> Result<(), Fail> {
    let d = &gpu.device;
    // SAFETY: every submission of the pool's command buffers finished (each was waited
    // for); the descriptor set is not used by pending work; nothing uses them after.
    unsafe {
        d.reset_command_pool(
            gpu.command_pool,
            vk::CommandPoolResetFlags::RELEASE_RESOURCES,
        )
        .ctx("vkResetCommandPool")?;
        d.trim_command_pool(gpu.command_pool, vk::CommandPoolTrimFlags::empty());
        d.reset_descriptor_pool(res.descriptor_pool, vk::DescriptorPoolResetFlags::empty())
            .ctx("vkResetDescriptorPool")?;
    }
    report.check(
        true,
        "vkResetCommandPool, vkTrimCommandPool, vkResetDescriptorPool",
    );
    Ok(())
}
