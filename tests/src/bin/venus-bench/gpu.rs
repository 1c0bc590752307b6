//! The Vulkan objects the measurements use: instance, device, compute queue, the
//! `tests/shaders/compute.spv` pipeline, its storage buffers, command buffers, a fence,
//! and a 64 MiB host-visible allocation. Everything is destroyed on drop.

use std::io::Cursor;

use ash::vk;

/// The compute shader of `venus-compute` (`out[i] = in[i] * a + b + i`).
const SPIRV: &[u8] = include_bytes!("../../../shaders/compute.spv");
/// Workgroup width (specialization constant 0).
pub(crate) const LOCAL_SIZE: u32 = 64;
/// The `b` of `in[i] * a + b + i` (specialization constant 1).
pub(crate) const SPEC_B: u32 = 1_000_003;
/// The `a` pushed as a push constant.
pub(crate) const PUSH_A: u32 = 7;

/// A failure that stops the measurement program.
pub(crate) type Fail = String;

pub(crate) trait VkContext<T> {
    fn ctx(self, what: &str) -> Result<T, Fail>;
}

impl<T> VkContext<T> for Result<T, vk::Result> {
    fn ctx(self, what: &str) -> Result<T, Fail> {
        self.map_err(|e| format!("{what} failed: {e}"))
    }
}

/// A buffer with its own memory, persistently mapped.
pub(crate) struct MappedBuffer {
    pub(crate) buffer: vk::Buffer,
    pub(crate) memory: vk::DeviceMemory,
    pub(crate) ptr: *mut u8,
    pub(crate) size: usize,
}

/// The device and the objects every measurement shares.
pub(crate) struct Gpu {
    /// Keeps the loader loaded for as long as the instance lives.
    _entry: ash::Entry,
    pub(crate) instance: ash::Instance,
    pub(crate) device: ash::Device,
    pub(crate) device_name: String,
    pub(crate) driver_info: String,
    pub(crate) api_version: u32,
    pub(crate) queue: vk::Queue,
    family: u32,
    memory_props: vk::PhysicalDeviceMemoryProperties,
    /// `bufferDeviceAddress` was supported and enabled.
    pub(crate) device_address: bool,
    pub(crate) set_layout: vk::DescriptorSetLayout,
    pub(crate) descriptor_pool: vk::DescriptorPool,
    pub(crate) descriptor_set: vk::DescriptorSet,
    pub(crate) pipeline_layout: vk::PipelineLayout,
    pub(crate) module: vk::ShaderModule,
    pub(crate) pipeline: vk::Pipeline,
    pub(crate) command_pool: vk::CommandPool,
    /// [0]: re-recorded before every dispatch; [1]: recorded once, simultaneous use.
    pub(crate) command_buffers: [vk::CommandBuffer; 2],
    pub(crate) fence: vk::Fence,
    /// Never submitted: the query row asks its status.
    pub(crate) idle_fence: vk::Fence,
    /// Never set: the event query row asks its status.
    pub(crate) event: vk::Event,
    /// A timeline semaphore nothing signals: the host round trip rows ask its value.
    pub(crate) timeline: vk::Semaphore,
    pub(crate) input: MappedBuffer,
    pub(crate) output: MappedBuffer,
    /// Largest element count the storage buffers hold.
    pub(crate) max_elements: u32,
    /// Buffers and memory made for single rows (destroyed on drop).
    pub(crate) extra: Vec<MappedBuffer>,
    /// The buffer whose device address the query rows ask for (made on first use).
    pub(crate) address_buffer: Option<vk::Buffer>,
}

/// What `pick_and_create` learnt about the device.
struct DeviceInfo {
    device_name: String,
    driver_info: String,
    api_version: u32,
    queue: vk::Queue,
    family: u32,
    memory_props: vk::PhysicalDeviceMemoryProperties,
    device_address: bool,
}

fn c_name(bytes: &[std::ffi::c_char]) -> String {
    let bytes: Vec<u8> = bytes
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

impl Gpu {
    /// Loads the Vulkan loader and creates everything for `max_elements` elements.
    pub(crate) fn new(max_elements: u32) -> Result<Gpu, Fail> {
        // SAFETY: loads libvulkan.so.1 (the system Vulkan loader) and runs its
        // initialisers; nothing else in this process is loading it concurrently.
        let entry = unsafe { ash::Entry::load() }
            .map_err(|e| format!("load the Vulkan loader (libvulkan.so.1): {e}"))?;
        let app = vk::ApplicationInfo::default()
            .application_name(c"venus-bench")
            .api_version(vk::API_VERSION_1_2);
        // SAFETY: `app` and the create info live until the call returns.
        let instance = unsafe {
            entry.create_instance(
                &vk::InstanceCreateInfo::default().application_info(&app),
                None,
            )
        }
        .ctx("vkCreateInstance")?;
        match Self::pick_and_create(&instance) {
            Ok((device, info)) => {
                let mut gpu = Gpu::empty(entry, instance, device, info, max_elements);
                // On error `gpu` is dropped, which destroys what was made so far.
                gpu.create_objects()?;
                Ok(gpu)
            }
            Err(e) => {
                // SAFETY: nothing created on the instance survives a failed
                // `pick_and_create`.
                unsafe { instance.destroy_instance(None) };
                Err(e)
            }
        }
    }

    /// Picks physical device 0 and creates the device with one compute queue.
    fn pick_and_create(instance: &ash::Instance) -> Result<(ash::Device, DeviceInfo), Fail> {
        // SAFETY: valid instance.
        let physicals =
            unsafe { instance.enumerate_physical_devices() }.ctx("vkEnumeratePhysicalDevices")?;
        let Some(&physical) = physicals.first() else {
            return Err("no physical device".into());
        };
        let mut driver = vk::PhysicalDeviceDriverProperties::default();
        let mut props2 = vk::PhysicalDeviceProperties2::default().push_next(&mut driver);
        // SAFETY: `physical` belongs to the instance; core 1.1 query on a 1.2 instance
        // (every configuration measured is at least 1.2); `props2` chains a valid struct.
        unsafe { instance.get_physical_device_properties2(physical, &mut props2) };
        let props = props2.properties;
        let device_name = c_name(&props.device_name);
        let driver_info = format!(
            "{} ({})",
            c_name(&driver.driver_name),
            c_name(&driver.driver_info)
        );
        // SAFETY: `physical` belongs to the instance.
        let (memory_props, families) = unsafe {
            (
                instance.get_physical_device_memory_properties(physical),
                instance.get_physical_device_queue_family_properties(physical),
            )
        };
        let family = families
            .iter()
            .position(|f| f.queue_flags.contains(vk::QueueFlags::COMPUTE))
            .ok_or("no queue family with VK_QUEUE_COMPUTE_BIT")? as u32;

        let mut v12 = vk::PhysicalDeviceVulkan12Features::default();
        let mut feats2 = vk::PhysicalDeviceFeatures2::default().push_next(&mut v12);
        // SAFETY: core 1.1 query; `feats2` chains a valid struct.
        unsafe { instance.get_physical_device_features2(physical, &mut feats2) };
        let device_address = v12.buffer_device_address == vk::TRUE;
        if v12.timeline_semaphore != vk::TRUE {
            return Err(
                "timelineSemaphore is not supported (the host round trip rows need it)".into(),
            );
        }

        let priorities = [1.0f32];
        let queue_info = [vk::DeviceQueueCreateInfo::default()
            .queue_family_index(family)
            .queue_priorities(&priorities)];
        let mut enable12 = vk::PhysicalDeviceVulkan12Features::default()
            .buffer_device_address(device_address)
            .timeline_semaphore(true);
        let device_info = vk::DeviceCreateInfo::default()
            .queue_create_infos(&queue_info)
            .push_next(&mut enable12);
        // SAFETY: the create info and what it points to outlive the call; the one
        // feature enabled is supported.
        let device = unsafe { instance.create_device(physical, &device_info, None) }
            .ctx("vkCreateDevice")?;
        // SAFETY: one queue of `family` was requested.
        let queue = unsafe { device.get_device_queue(family, 0) };
        // From here on the device is destroyed by the caller's `Gpu`.

        Ok((
            device,
            DeviceInfo {
                device_name,
                driver_info,
                api_version: props.api_version,
                queue,
                family,
                memory_props,
                device_address,
            },
        ))
    }

    fn empty(
        entry: ash::Entry,
        instance: ash::Instance,
        device: ash::Device,
        info: DeviceInfo,
        max_elements: u32,
    ) -> Gpu {
        Gpu {
            _entry: entry,
            instance,
            device,
            device_name: info.device_name,
            driver_info: info.driver_info,
            api_version: info.api_version,
            queue: info.queue,
            family: info.family,
            memory_props: info.memory_props,
            device_address: info.device_address,
            set_layout: vk::DescriptorSetLayout::null(),
            descriptor_pool: vk::DescriptorPool::null(),
            descriptor_set: vk::DescriptorSet::null(),
            pipeline_layout: vk::PipelineLayout::null(),
            module: vk::ShaderModule::null(),
            pipeline: vk::Pipeline::null(),
            command_pool: vk::CommandPool::null(),
            command_buffers: [vk::CommandBuffer::null(); 2],
            fence: vk::Fence::null(),
            idle_fence: vk::Fence::null(),
            event: vk::Event::null(),
            timeline: vk::Semaphore::null(),
            input: MappedBuffer::null(),
            output: MappedBuffer::null(),
            max_elements,
            extra: Vec::new(),
            address_buffer: None,
        }
    }

    fn create_objects(&mut self) -> Result<(), Fail> {
        let family = self.family;
        let device = self.device.clone();
        let bindings = [0, 1].map(|b| {
            vk::DescriptorSetLayoutBinding::default()
                .binding(b)
                .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                .descriptor_count(1)
                .stage_flags(vk::ShaderStageFlags::COMPUTE)
        });
        // Every creation below: valid device, create infos that live until the call
        // returns; each object is stored in `self` at once, so drop destroys it.
        // SAFETY: as above.
        self.set_layout = unsafe {
            device.create_descriptor_set_layout(
                &vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings),
                None,
            )
        }
        .ctx("vkCreateDescriptorSetLayout")?;
        let pool_sizes = [vk::DescriptorPoolSize::default()
            .ty(vk::DescriptorType::STORAGE_BUFFER)
            .descriptor_count(2)];
        // SAFETY: see above.
        self.descriptor_pool = unsafe {
            device.create_descriptor_pool(
                &vk::DescriptorPoolCreateInfo::default()
                    .max_sets(1)
                    .pool_sizes(&pool_sizes),
                None,
            )
        }
        .ctx("vkCreateDescriptorPool")?;
        let layouts = [self.set_layout];
        // SAFETY: see above; the set is freed with its pool.
        self.descriptor_set = unsafe {
            device.allocate_descriptor_sets(
                &vk::DescriptorSetAllocateInfo::default()
                    .descriptor_pool(self.descriptor_pool)
                    .set_layouts(&layouts),
            )
        }
        .ctx("vkAllocateDescriptorSets")?[0];
        let push = [vk::PushConstantRange::default()
            .stage_flags(vk::ShaderStageFlags::COMPUTE)
            .size(12)];
        // SAFETY: see above.
        self.pipeline_layout = unsafe {
            device.create_pipeline_layout(
                &vk::PipelineLayoutCreateInfo::default()
                    .set_layouts(&layouts)
                    .push_constant_ranges(&push),
                None,
            )
        }
        .ctx("vkCreatePipelineLayout")?;
        let code = ash::util::read_spv(&mut Cursor::new(SPIRV))
            .map_err(|e| format!("embedded SPIR-V is malformed: {e}"))?;
        // SAFETY: see above; the SPIR-V is the one venus-compute validates.
        self.module = unsafe {
            device.create_shader_module(&vk::ShaderModuleCreateInfo::default().code(&code), None)
        }
        .ctx("vkCreateShaderModule")?;
        self.pipeline = self.create_pipeline()?;

        // SAFETY: see above.
        self.command_pool = unsafe {
            device.create_command_pool(
                &vk::CommandPoolCreateInfo::default()
                    .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER)
                    .queue_family_index(family),
                None,
            )
        }
        .ctx("vkCreateCommandPool")?;
        // SAFETY: see above; the buffers are freed with their pool.
        let cbs = unsafe {
            device.allocate_command_buffers(
                &vk::CommandBufferAllocateInfo::default()
                    .command_pool(self.command_pool)
                    .level(vk::CommandBufferLevel::PRIMARY)
                    .command_buffer_count(2),
            )
        }
        .ctx("vkAllocateCommandBuffers")?;
        self.command_buffers = [cbs[0], cbs[1]];
        // SAFETY: see above.
        self.fence = unsafe { device.create_fence(&vk::FenceCreateInfo::default(), None) }
            .ctx("vkCreateFence")?;
        // SAFETY: see above.
        self.idle_fence = unsafe { device.create_fence(&vk::FenceCreateInfo::default(), None) }
            .ctx("vkCreateFence")?;
        // SAFETY: see above.
        self.event = unsafe { device.create_event(&vk::EventCreateInfo::default(), None) }
            .ctx("vkCreateEvent")?;
        let mut type_info = vk::SemaphoreTypeCreateInfo::default()
            .semaphore_type(vk::SemaphoreType::TIMELINE)
            .initial_value(0);
        let sem_info = vk::SemaphoreCreateInfo::default().push_next(&mut type_info);
        // SAFETY: see above (timelineSemaphore is enabled).
        self.timeline = unsafe { device.create_semaphore(&sem_info, None) }
            .ctx("vkCreateSemaphore (timeline)")?;

        Ok(())
    }

    /// Creates the storage buffers and points the descriptor set at them, once. Not
    /// done at start so that the rows that need no memory also run where host-visible
    /// memory cannot be mapped.
    pub(crate) fn ensure_buffers(&mut self) -> Result<(), Fail> {
        if self.input.buffer != vk::Buffer::null() {
            return Ok(());
        }
        let bytes = u64::from(self.max_elements) * 4;
        let usage = vk::BufferUsageFlags::STORAGE_BUFFER;
        self.input = self.create_mapped(bytes, usage)?;
        self.output = self.create_mapped(bytes, usage)?;
        let infos = [self.input.buffer, self.output.buffer].map(|b| {
            [vk::DescriptorBufferInfo::default()
                .buffer(b)
                .range(vk::WHOLE_SIZE)]
        });
        let writes = [0usize, 1].map(|i| {
            vk::WriteDescriptorSet::default()
                .dst_set(self.descriptor_set)
                .dst_binding(i as u32)
                .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                .buffer_info(&infos[i])
        });
        // SAFETY: the set, buffers and infos are valid; the set is not in use (no
        // command buffer was recorded with it yet).
        unsafe { self.device.update_descriptor_sets(&writes, &[]) };
        Ok(())
    }

    fn create_pipeline(&self) -> Result<vk::Pipeline, Fail> {
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
        let mut data = Vec::with_capacity(8);
        data.extend_from_slice(&LOCAL_SIZE.to_ne_bytes());
        data.extend_from_slice(&SPEC_B.to_ne_bytes());
        let spec = vk::SpecializationInfo::default()
            .map_entries(&map)
            .data(&data);
        let stage = vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::COMPUTE)
            .module(self.module)
            .name(c"main")
            .specialization_info(&spec);
        let info = [vk::ComputePipelineCreateInfo::default()
            .stage(stage)
            .layout(self.pipeline_layout)];
        // SAFETY: valid device, module and layout; `info` lives until the call returns.
        match unsafe {
            self.device
                .create_compute_pipelines(vk::PipelineCache::null(), &info, None)
        } {
            Ok(p) if p.len() == 1 => Ok(p[0]),
            Ok(p) => Err(format!(
                "vkCreateComputePipelines returned {} pipelines",
                p.len()
            )),
            Err((_, e)) => Err(format!("vkCreateComputePipelines failed: {e}")),
        }
    }

    /// A buffer of `size` bytes bound to its own HOST_VISIBLE | HOST_COHERENT memory,
    /// mapped whole.
    pub(crate) fn create_mapped(
        &self,
        size: u64,
        usage: vk::BufferUsageFlags,
    ) -> Result<MappedBuffer, Fail> {
        self.create_bound(size, usage, false, true)
    }

    /// A buffer of `size` bytes bound to its own HOST_VISIBLE | HOST_COHERENT memory,
    /// mapped whole if `map`; `device_address` allocates the memory with
    /// VK_MEMORY_ALLOCATE_DEVICE_ADDRESS_BIT.
    pub(crate) fn create_bound(
        &self,
        size: u64,
        usage: vk::BufferUsageFlags,
        device_address: bool,
        map: bool,
    ) -> Result<MappedBuffer, Fail> {
        let device = &self.device;
        // SAFETY: valid device; the create info lives until the call returns.
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
        let mut out = MappedBuffer {
            buffer,
            memory: vk::DeviceMemory::null(),
            ptr: std::ptr::null_mut(),
            size: 0,
        };
        if let Err(e) = self.bind_memory(&mut out, size, device_address, map) {
            out.destroy(device);
            return Err(e);
        }
        Ok(out)
    }

    fn bind_memory(
        &self,
        out: &mut MappedBuffer,
        size: u64,
        device_address: bool,
        map: bool,
    ) -> Result<(), Fail> {
        let device = &self.device;
        // SAFETY: `out.buffer` is a valid buffer of this device.
        let req = unsafe { device.get_buffer_memory_requirements(out.buffer) };
        let wanted = vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT;
        let props = &self.memory_props;
        let type_index = (0..props.memory_type_count)
            .find(|&i| {
                req.memory_type_bits & (1 << i) != 0
                    && props.memory_types[i as usize]
                        .property_flags
                        .contains(wanted)
            })
            .ok_or("no HOST_VISIBLE | HOST_COHERENT memory type for the buffer")?;
        let mut flags =
            vk::MemoryAllocateFlagsInfo::default().flags(vk::MemoryAllocateFlags::DEVICE_ADDRESS);
        let mut info = vk::MemoryAllocateInfo::default()
            .allocation_size(req.size)
            .memory_type_index(type_index);
        if device_address {
            info = info.push_next(&mut flags);
        }
        // SAFETY: valid device; `info` and its chain live until the call returns.
        out.memory = unsafe { device.allocate_memory(&info, None) }.ctx("vkAllocateMemory")?;
        // SAFETY: fresh buffer and memory of this device, memory large enough.
        unsafe { device.bind_buffer_memory(out.buffer, out.memory, 0) }
            .ctx("vkBindBufferMemory")?;
        if !map {
            return Ok(());
        }
        // SAFETY: host-visible memory, not mapped yet; the whole range.
        let ptr = unsafe {
            device.map_memory(out.memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty())
        }
        .ctx("vkMapMemory")?;
        out.ptr = ptr.cast();
        out.size = size as usize;
        Ok(())
    }
}

impl MappedBuffer {
    fn null() -> MappedBuffer {
        MappedBuffer {
            buffer: vk::Buffer::null(),
            memory: vk::DeviceMemory::null(),
            ptr: std::ptr::null_mut(),
            size: 0,
        }
    }

    /// The mapping as words (empty when not mapped).
    pub(crate) fn words(&mut self) -> &mut [u32] {
        if self.ptr.is_null() {
            return &mut [];
        }
        // SAFETY: `ptr` maps `size` bytes of host-coherent memory, 4-aligned (a mapping
        // is at least minMemoryMapAlignment-aligned), that nothing else references
        // while the device is idle, which callers ensure.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.cast::<u32>(), self.size / 4) }
    }

    fn destroy(&mut self, device: &ash::Device) {
        // SAFETY: the objects belong to `device`, are idle, and are destroyed once
        // (set to null afterwards); null handles are ignored by Vulkan.
        unsafe {
            if !self.ptr.is_null() {
                device.unmap_memory(self.memory);
            }
            device.destroy_buffer(self.buffer, None);
            device.free_memory(self.memory, None);
        }
        *self = MappedBuffer::null();
    }
}

impl Drop for Gpu {
    fn drop(&mut self) {
        let device = self.device.clone();
        // SAFETY: the device is valid; nothing else uses it.
        let _ = unsafe { device.device_wait_idle() };
        let mut buffers = std::mem::take(&mut self.extra);
        buffers.push(std::mem::replace(&mut self.input, MappedBuffer::null()));
        buffers.push(std::mem::replace(&mut self.output, MappedBuffer::null()));
        for mut b in buffers {
            b.destroy(&device);
        }
        // SAFETY: every object belongs to this device, is idle, and is destroyed once;
        // null handles (objects never made) are ignored; the device and instance go
        // last, after all their children.
        unsafe {
            device.destroy_event(self.event, None);
            device.destroy_semaphore(self.timeline, None);
            device.destroy_fence(self.idle_fence, None);
            device.destroy_fence(self.fence, None);
            device.destroy_command_pool(self.command_pool, None);
            device.destroy_pipeline(self.pipeline, None);
            device.destroy_shader_module(self.module, None);
            device.destroy_pipeline_layout(self.pipeline_layout, None);
            device.destroy_descriptor_pool(self.descriptor_pool, None);
            device.destroy_descriptor_set_layout(self.set_layout, None);
            device.destroy_device(None);
            self.instance.destroy_instance(None);
        }
    }
}
