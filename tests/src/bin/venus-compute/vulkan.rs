//! The instance, the device and every object created on it, destroyed newest first.

use ash::vk;

use crate::report::{Fail, Report};

/// Everything created on the device, destroyed in reverse order.
#[derive(Clone)]
pub(crate) enum Obj {
    Buffer(vk::Buffer),
    Memory(vk::DeviceMemory),
    Mapped(vk::DeviceMemory),
    ShaderModule(vk::ShaderModule),
    SetLayout(vk::DescriptorSetLayout),
    DescriptorPool(vk::DescriptorPool),
    DescriptorSet(vk::DescriptorPool, vk::DescriptorSet),
    PipelineLayout(vk::PipelineLayout),
    PipelineCache(vk::PipelineCache),
    Pipeline(vk::Pipeline),
    CommandPool(vk::CommandPool),
    CommandBuffers(vk::CommandPool, Vec<vk::CommandBuffer>),
    Fence(vk::Fence),
    Semaphore(vk::Semaphore),
    Event(vk::Event),
    QueryPool(vk::QueryPool),
}

/// The instance, the device and the objects to destroy.
pub(crate) struct Vulkan {
    pub(crate) entry: ash::Entry,
    pub(crate) instance: Option<ash::Instance>,
    pub(crate) debug: Option<(ash::ext::debug_utils::Instance, vk::DebugUtilsMessengerEXT)>,
    pub(crate) device: Option<ash::Device>,
    pub(crate) objects: Vec<Obj>,
    /// The Khronos validation layer reported itself as an active tool.
    pub(crate) validation_active: bool,
}

impl Vulkan {
    pub(crate) fn device(&self) -> Result<&ash::Device, Fail> {
        self.device.as_ref().ok_or_else(|| "no device".to_string())
    }

    pub(crate) fn track(&mut self, obj: Obj) {
        self.objects.push(obj);
    }

    /// Destroys, newest first, the objects created since `mark` (a length of `objects`).
    pub(crate) fn release_to(&mut self, mark: usize, report: &mut Report) {
        let Some(device) = self.device.as_ref() else {
            self.objects.truncate(mark);
            return;
        };
        while self.objects.len() > mark {
            let Some(obj) = self.objects.pop() else {
                break;
            };
            // SAFETY: every tracked object was created on `device`, is destroyed once
            // (it is popped), and the device is idle (callers wait before releasing).
            unsafe {
                match obj {
                    Obj::Buffer(b) => device.destroy_buffer(b, None),
                    Obj::Memory(m) => device.free_memory(m, None),
                    Obj::Mapped(m) => device.unmap_memory(m),
                    Obj::ShaderModule(s) => device.destroy_shader_module(s, None),
                    Obj::SetLayout(l) => device.destroy_descriptor_set_layout(l, None),
                    Obj::DescriptorPool(p) => device.destroy_descriptor_pool(p, None),
                    Obj::DescriptorSet(p, s) => {
                        let r = device.free_descriptor_sets(p, &[s]);
                        report.check(r.is_ok(), format!("vkFreeDescriptorSets: {r:?}"));
                    }
                    Obj::PipelineLayout(l) => device.destroy_pipeline_layout(l, None),
                    Obj::PipelineCache(c) => device.destroy_pipeline_cache(c, None),
                    Obj::Pipeline(p) => device.destroy_pipeline(p, None),
                    Obj::CommandPool(p) => device.destroy_command_pool(p, None),
                    Obj::CommandBuffers(p, b) => device.free_command_buffers(p, &b),
                    Obj::Fence(f) => device.destroy_fence(f, None),
                    Obj::Semaphore(s) => device.destroy_semaphore(s, None),
                    Obj::Event(e) => device.destroy_event(e, None),
                    Obj::QueryPool(q) => device.destroy_query_pool(q, None),
                }
            }
        }
    }

    /// Waits for the device, destroys everything, then the device and the instance.
    pub(crate) fn destroy_all(&mut self, report: &mut Report) {
        if let Some(device) = self.device.as_ref() {
            // SAFETY: the device is valid; no other thread uses it.
            let idle = unsafe { device.device_wait_idle() };
            report.check(idle.is_ok(), format!("vkDeviceWaitIdle: {idle:?}"));
        }
        self.release_to(0, report);
        if let Some(device) = self.device.take() {
            // SAFETY: all its children were destroyed above; it is idle.
            unsafe { device.destroy_device(None) };
        }
        if let Some((debug_utils, messenger)) = self.debug.take() {
            // SAFETY: the messenger was created on this instance, which is still alive.
            unsafe { debug_utils.destroy_debug_utils_messenger(messenger, None) };
        }
        if let Some(instance) = self.instance.take() {
            // SAFETY: the device and the messenger, its only children, are destroyed.
            unsafe { instance.destroy_instance(None) };
        }
    }
}
