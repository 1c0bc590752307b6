//! The instance, the device and every object created on it, destroyed newest first.

use ash::vk;

use crate::report::{Fail, Report};

/// Everything created on the device, destroyed in reverse order.
#[derive(Clone)]
pub(crate) enum Obj {
    Buffer(vk::Buffer),
    Image(vk::Image),
    Memory(vk::DeviceMemory),
    Mapped(vk::DeviceMemory),
    ImageView(vk::ImageView),
    Sampler(vk::Sampler),
    ShaderModule(vk::ShaderModule),
    SetLayout(vk::DescriptorSetLayout),
    DescriptorPool(vk::DescriptorPool),
    PipelineLayout(vk::PipelineLayout),
    Pipeline(vk::Pipeline),
    RenderPass(vk::RenderPass),
    Framebuffer(vk::Framebuffer),
    CommandPool(vk::CommandPool),
    CommandBuffers(vk::CommandPool, Vec<vk::CommandBuffer>),
    Fence(vk::Fence),
    QueryPool(vk::QueryPool),
    Event(vk::Event),
    UpdateTemplate(vk::DescriptorUpdateTemplate),
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
    pub(crate) fn new(entry: ash::Entry) -> Vulkan {
        Vulkan {
            entry,
            instance: None,
            debug: None,
            device: None,
            objects: Vec::new(),
            validation_active: false,
        }
    }

    pub(crate) fn instance(&self) -> Result<&ash::Instance, Fail> {
        self.instance
            .as_ref()
            .ok_or_else(|| "no instance".to_string())
    }

    pub(crate) fn device(&self) -> Result<&ash::Device, Fail> {
        self.device.as_ref().ok_or_else(|| "no device".to_string())
    }

    pub(crate) fn track(&mut self, obj: Obj) {
        self.objects.push(obj);
    }

    /// Tracks `memory` bound to the object tracked last, so that the object is
    /// destroyed before its memory is freed.
    pub(crate) fn track_memory_under_last(&mut self, memory: vk::DeviceMemory) {
        let object = self.objects.pop();
        self.objects.push(Obj::Memory(memory));
        if let Some(object) = object {
            self.objects.push(object);
        }
    }

    /// Destroys everything, newest first.
    fn release_all(&mut self, report: &mut Report) {
        let Some(device) = self.device.as_ref() else {
            self.objects.clear();
            return;
        };
        let mut freed_command_buffers = 0;
        while let Some(obj) = self.objects.pop() {
            // SAFETY: every tracked object was created on `device`, is destroyed once
            // (it is popped), children before parents (newest first), and the device
            // is idle (destroy_all waits first).
            unsafe {
                match obj {
                    Obj::Buffer(b) => device.destroy_buffer(b, None),
                    Obj::Image(i) => device.destroy_image(i, None),
                    Obj::Memory(m) => device.free_memory(m, None),
                    Obj::Mapped(m) => device.unmap_memory(m),
                    Obj::ImageView(v) => device.destroy_image_view(v, None),
                    Obj::Sampler(s) => device.destroy_sampler(s, None),
                    Obj::ShaderModule(s) => device.destroy_shader_module(s, None),
                    Obj::SetLayout(l) => device.destroy_descriptor_set_layout(l, None),
                    Obj::DescriptorPool(p) => device.destroy_descriptor_pool(p, None),
                    Obj::PipelineLayout(l) => device.destroy_pipeline_layout(l, None),
                    Obj::Pipeline(p) => device.destroy_pipeline(p, None),
                    Obj::RenderPass(r) => device.destroy_render_pass(r, None),
                    Obj::Framebuffer(f) => device.destroy_framebuffer(f, None),
                    Obj::CommandPool(p) => device.destroy_command_pool(p, None),
                    Obj::CommandBuffers(p, b) => {
                        freed_command_buffers += b.len();
                        device.free_command_buffers(p, &b);
                    }
                    Obj::Fence(f) => device.destroy_fence(f, None),
                    Obj::QueryPool(q) => device.destroy_query_pool(q, None),
                    Obj::Event(e) => device.destroy_event(e, None),
                    Obj::UpdateTemplate(t) => device.destroy_descriptor_update_template(t, None),
                }
            }
        }
        report.info(format!(
            "destroyed every object ({freed_command_buffers} command buffers freed)"
        ));
    }

    /// Waits for the device, destroys everything, then the device and the instance.
    pub(crate) fn destroy_all(&mut self, report: &mut Report) {
        if let Some(device) = self.device.as_ref() {
            // SAFETY: the device is valid; no other thread uses it.
            let idle = unsafe { device.device_wait_idle() };
            report.check(idle.is_ok(), format!("vkDeviceWaitIdle: {idle:?}"));
        }
        self.release_all(report);
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
