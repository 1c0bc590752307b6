//! The global resource table (resource ids are global across contexts):
//!
//! * plain resources (`virgl_renderer_resource_create`): images kept in host
//!   memory, filled and read by transfers from/to their iovec backing;
//! * guest blobs (`BLOB_MEM_GUEST`): only their iovecs;
//! * host blobs (`BLOB_MEM_HOST3D`): a Venus context's shared memory (blob id 0)
//!   or host-visible device memory (blob id = the VkDeviceMemory's id), mapped
//!   here once at creation when mappable, so the VMM can map it into the guest.

use std::ffi::c_int;
use std::os::fd::AsFd;
use std::sync::Arc;

use venus_host::Context;

use crate::abi::{
    CreateBlobArgs, ResourceCreateArgs, ResourceInfo, BLOB_FLAG_USE_MAPPABLE, BLOB_MEM_GUEST,
    BLOB_MEM_HOST3D, MAP_CACHE_CACHED,
};
use crate::error::{invalid, AbiError, AbiResult};
use crate::iov::IovList;
use crate::library::{self, Library};
use crate::mapping::HostMapping;
use crate::pixels::{Pixels, Transfer};

/// Most resources alive at once.
pub const MAX_RESOURCES: usize = 1 << 18;
/// Most host memory all plain resources together may hold.
pub const MAX_PIXEL_BYTES_TOTAL: u64 = 1 << 30;

/// An iovec array the VMM attached, kept as given (detach hands the same
/// pointer back so the VMM can free it) and as a checked copy.
#[derive(Debug)]
pub struct Attached {
    raw: usize,
    count: c_int,
    list: IovList,
}

/// Where a host blob's memory is for the VMM.
#[derive(Debug)]
enum BlobMemory {
    /// Our own mapping of the blob's shared memory.
    Own(HostMapping),
    /// The driver's mapping of device memory (map-ptr strategy): valid while the
    /// guest keeps the memory allocated.
    Driver { addr: usize, len: u64 },
    /// Not mappable (created without `USE_MAPPABLE`).
    None,
}

/// A blob of a Venus context.
#[derive(Debug)]
pub struct HostBlob {
    owner: u32,
    owner_serial: u64,
    blob_id: u64,
    memory: BlobMemory,
    /// Between `resource_map` and `resource_unmap`.
    vmm_mapped: bool,
}

/// What a resource is.
#[derive(Debug)]
pub enum Kind {
    /// A plain resource in host memory.
    Pixels(Pixels),
    /// Guest memory only.
    GuestBlob,
    /// Host memory of a Venus context.
    HostBlob(HostBlob),
}

/// One resource.
#[derive(Debug)]
pub struct Resource {
    kind: Kind,
    iov: Option<Attached>,
}

impl Resource {
    /// Releases the resource's memory (after it left the table, without the lock).
    pub fn release(self) {
        if let Kind::HostBlob(b) = self.kind {
            match b.memory {
                BlobMemory::Own(m) if !b.vmm_mapped => m.unmap(),
                // Still mapped by the VMM: dropping keeps the range valid.
                BlobMemory::Own(m) => drop(m),
                BlobMemory::Driver { .. } | BlobMemory::None => {}
            }
        }
    }

    fn pixel_bytes(&self) -> u64 {
        match &self.kind {
            Kind::Pixels(p) => p.size(),
            _ => 0,
        }
    }
}

impl Library {
    fn check_new_id(&self, res_id: u32) -> AbiResult<()> {
        self.require_init()?;
        if res_id == 0 {
            return Err(invalid!("resource id 0"));
        }
        if self.resources.contains_key(&res_id) {
            return Err(invalid!("resource {res_id} exists"));
        }
        if self.resources.len() >= MAX_RESOURCES {
            return Err(AbiError::TooLarge(format!(
                "more than {MAX_RESOURCES} resources"
            )));
        }
        Ok(())
    }

    fn resource(&self, res_id: u32) -> AbiResult<&Resource> {
        self.require_init()?;
        self.resources
            .get(&res_id)
            .ok_or_else(|| AbiError::Unknown(format!("resource {res_id}")))
    }

    fn resource_mut(&mut self, res_id: u32) -> AbiResult<&mut Resource> {
        self.require_init()?;
        self.resources
            .get_mut(&res_id)
            .ok_or_else(|| AbiError::Unknown(format!("resource {res_id}")))
    }

    /// `virgl_renderer_resource_create`: a plain resource, optionally with backing.
    ///
    /// # Safety
    ///
    /// As [`IovList::from_raw`] for `iov`/`num_iovs`, valid until detached.
    pub unsafe fn create_pixels(
        &mut self,
        args: &ResourceCreateArgs,
        iov: *mut libc::iovec,
        num_iovs: u32,
    ) -> AbiResult<()> {
        self.check_new_id(args.handle)?;
        let attached = if num_iovs > 0 {
            // SAFETY: forwarded caller contract.
            Some(unsafe { attach(iov, num_iovs as usize) }?)
        } else {
            None
        };
        let pixels = Pixels::new(args)?;
        let total = self
            .pixel_bytes
            .checked_add(pixels.size())
            .filter(|&t| t <= MAX_PIXEL_BYTES_TOTAL)
            .ok_or_else(|| {
                AbiError::TooLarge(format!(
                    "plain resources would hold more than {MAX_PIXEL_BYTES_TOTAL} bytes"
                ))
            })?;
        self.pixel_bytes = total;
        tracing::debug!(res_id = args.handle, ?args, "plain resource created");
        self.resources.insert(
            args.handle,
            Resource {
                kind: Kind::Pixels(pixels),
                iov: attached,
            },
        );
        Ok(())
    }

    /// `virgl_renderer_resource_attach_iov`.
    ///
    /// # Safety
    ///
    /// As [`IovList::from_raw`], valid until detached.
    pub unsafe fn attach_iov(
        &mut self,
        res_id: u32,
        iov: *mut libc::iovec,
        num_iovs: c_int,
    ) -> AbiResult<()> {
        let count = usize::try_from(num_iovs).map_err(|_| invalid!("{num_iovs} iovecs"))?;
        let res = self.resource_mut(res_id)?;
        if res.iov.is_some() {
            return Err(invalid!("resource {res_id} already has a backing"));
        }
        // SAFETY: forwarded caller contract.
        res.iov = Some(unsafe { attach(iov, count) }?);
        Ok(())
    }

    /// `virgl_renderer_resource_detach_iov`: the array the VMM attached, to free.
    pub fn detach_iov(&mut self, res_id: u32) -> AbiResult<Option<(*mut libc::iovec, c_int)>> {
        let res = self.resource_mut(res_id)?;
        Ok(res.iov.take().map(|a| (a.raw as *mut libc::iovec, a.count)))
    }

    /// `virgl_renderer_resource_unref`, first half: takes the resource out; the
    /// caller tells its context and releases it after unlocking.
    pub fn take_resource(&mut self, res_id: u32) -> AbiResult<(Resource, Option<Arc<Context>>)> {
        self.require_init()?;
        let res = self
            .resources
            .remove(&res_id)
            .ok_or_else(|| AbiError::Unknown(format!("resource {res_id}")))?;
        self.pixel_bytes = self.pixel_bytes.saturating_sub(res.pixel_bytes());
        let owner = match &res.kind {
            Kind::HostBlob(b) => self
                .contexts
                .get(&b.owner)
                .filter(|c| c.serial == b.owner_serial)
                .and_then(|c| c.venus.clone()),
            _ => None,
        };
        Ok((res, owner))
    }

    /// `virgl_renderer_resource_get_info`: plain resources report their image;
    /// blobs only their id. Never a texture or an fd.
    pub fn info(&self, res_id: u32) -> AbiResult<ResourceInfo> {
        Ok(match &self.resource(res_id)?.kind {
            Kind::Pixels(p) => p.info(),
            Kind::GuestBlob | Kind::HostBlob(_) => ResourceInfo {
                handle: res_id,
                fd: -1,
                ..Default::default()
            },
        })
    }

    fn mappable(&mut self, res_id: u32) -> AbiResult<&mut HostBlob> {
        match &mut self.resource_mut(res_id)?.kind {
            Kind::HostBlob(b) if !matches!(b.memory, BlobMemory::None) => Ok(b),
            _ => Err(invalid!("resource {res_id} is not a mappable host blob")),
        }
    }

    /// `virgl_renderer_resource_get_map_info`.
    pub fn map_info(&mut self, res_id: u32) -> AbiResult<u32> {
        self.mappable(res_id).map(|_| MAP_CACHE_CACHED)
    }

    /// `virgl_renderer_resource_map`: the host address and size (both multiples
    /// of the sharing granularity) the VMM may map into the guest.
    pub fn map(&mut self, res_id: u32) -> AbiResult<(*mut u8, u64)> {
        let blob = self.mappable(res_id)?;
        if blob.vmm_mapped {
            return Err(invalid!("resource {res_id} is already mapped"));
        }
        let (ptr, len) = match &blob.memory {
            BlobMemory::Own(m) => (m.ptr(), m.size()),
            BlobMemory::Driver { addr, len } => (*addr as *mut u8, *len),
            BlobMemory::None => return Err(invalid!("resource {res_id} is not mappable")),
        };
        blob.vmm_mapped = true;
        tracing::debug!(res_id, blob_id = blob.blob_id, len, "blob mapped");
        Ok((ptr, len))
    }

    /// `virgl_renderer_resource_unmap`. Our mapping stays until unref.
    pub fn unmap(&mut self, res_id: u32) -> AbiResult<()> {
        let blob = self.mappable(res_id)?;
        if !blob.vmm_mapped {
            return Err(invalid!("resource {res_id} is not mapped"));
        }
        blob.vmm_mapped = false;
        Ok(())
    }

    /// `virgl_renderer_transfer_{write,read}_iov` on a plain resource: through
    /// `iov` when given, else the attached backing.
    pub fn transfer(
        &mut self,
        res_id: u32,
        to_host: bool,
        t: &Transfer,
        iov: Option<&IovList>,
    ) -> AbiResult<()> {
        let res = self.resource_mut(res_id)?;
        let Kind::Pixels(pixels) = &mut res.kind else {
            return Err(invalid!(
                "transfers need a plain resource; {res_id} is a blob"
            ));
        };
        let list = match (iov, &res.iov) {
            (Some(l), _) => l,
            (None, Some(a)) => &a.list,
            (None, None) => return Err(invalid!("resource {res_id} has no backing")),
        };
        if to_host {
            pixels.write_from(list, t)
        } else {
            pixels.read_into(list, t)
        }
    }

    /// `virgl_renderer_get_cursor_data`: a copy of a 32-bit image (bytes, width, height).
    pub fn cursor(&self, res_id: u32) -> AbiResult<(Vec<u8>, u32, u32)> {
        match &self.resource(res_id)?.kind {
            Kind::Pixels(p) => p
                .cursor_image()
                .map(|(bytes, w, h)| (bytes.to_vec(), w, h))
                .ok_or_else(|| invalid!("resource {res_id} is not a 32-bit image")),
            _ => Err(invalid!("resource {res_id} is a blob")),
        }
    }

    /// `virgl_renderer_ctx_attach_resource`: nothing to do for plain resources and
    /// guest blobs; a host blob of another context cannot be imported, which is
    /// accepted and logged.
    pub fn attach_to_context(&self, ctx_id: u32, res_id: u32) -> AbiResult<()> {
        let ctx = self
            .contexts
            .get(&ctx_id)
            .ok_or_else(|| AbiError::Unknown(format!("context {ctx_id}")))?;
        if let Kind::HostBlob(b) = &self.resource(res_id)?.kind {
            if b.owner != ctx_id || b.owner_serial != ctx.serial {
                tracing::info!(
                    ctx_id,
                    res_id,
                    owner = b.owner,
                    "blob of another context attached; it is not imported into this one"
                );
            }
        }
        Ok(())
    }

    /// `virgl_renderer_ctx_detach_resource`: contexts keep what they use until the
    /// resource is unreferenced, so this only checks the ids.
    pub fn detach_from_context(&self, ctx_id: u32, res_id: u32) -> AbiResult<()> {
        self.resource(res_id)?;
        if !self.contexts.contains_key(&ctx_id) {
            return Err(AbiError::Unknown(format!("context {ctx_id}")));
        }
        Ok(())
    }
}

/// Copies an iovec array for attaching.
///
/// # Safety
///
/// As [`IovList::from_raw`].
unsafe fn attach(iov: *mut libc::iovec, count: usize) -> AbiResult<Attached> {
    // SAFETY: forwarded caller contract.
    let list = unsafe { IovList::from_raw(iov, count) }?;
    let count = c_int::try_from(count).map_err(|_| invalid!("{count} iovecs"))?;
    Ok(Attached {
        raw: iov as usize,
        count,
        list,
    })
}

/// `virgl_renderer_resource_create_blob`. Creating a host blob runs in the Venus
/// context without the library lock held.
///
/// # Safety
///
/// `args.iovecs` as [`IovList::from_raw`] for `args.num_iovs` entries, valid
/// until detached or unreferenced.
pub unsafe fn create_blob(args: &CreateBlobArgs) -> AbiResult<()> {
    let res_id = args.res_handle;
    if args.size == 0 {
        return Err(invalid!("empty blob"));
    }
    match args.blob_mem {
        BLOB_MEM_GUEST => {
            let mut lib = library::lock();
            lib.check_new_id(res_id)?;
            // SAFETY: forwarded caller contract.
            let attached = unsafe { attach(args.iovecs.cast_mut(), args.num_iovs as usize) }?;
            if attached.list.total() < args.size {
                return Err(invalid!(
                    "guest blob of {} bytes backed by {} bytes",
                    args.size,
                    attached.list.total()
                ));
            }
            lib.resources.insert(
                res_id,
                Resource {
                    kind: Kind::GuestBlob,
                    iov: Some(attached),
                },
            );
            Ok(())
        }
        BLOB_MEM_HOST3D => {
            if args.num_iovs != 0 {
                return Err(invalid!("a host blob takes no iovecs"));
            }
            let (ctx, serial, granularity) = {
                let lib = library::lock();
                lib.check_new_id(res_id)?;
                let ctx = lib.venus_context(args.ctx_id)?;
                let serial = lib
                    .contexts
                    .get(&args.ctx_id)
                    .map(|c| c.serial)
                    .unwrap_or_default();
                (ctx, serial, lib.granularity()?)
            };
            let memory = host_blob_memory(&ctx, args, granularity)?;
            let blob = HostBlob {
                owner: args.ctx_id,
                owner_serial: serial,
                blob_id: args.blob_id,
                memory,
                vmm_mapped: false,
            };
            let res = Resource {
                kind: Kind::HostBlob(blob),
                iov: None,
            };
            let mut lib = library::lock();
            if let Err(e) = lib.check_new_id(res_id) {
                // Another thread took the id meanwhile.
                drop(lib);
                ctx.destroy_resource(res_id);
                res.release();
                return Err(e);
            }
            tracing::debug!(
                res_id,
                ctx_id = args.ctx_id,
                blob_id = args.blob_id,
                size = args.size,
                flags = args.blob_flags,
                "host blob created"
            );
            lib.resources.insert(res_id, res);
            Ok(())
        }
        other => Err(invalid!("blob memory type {other} is not supported")),
    }
}

/// Creates the blob in its Venus context and maps it when mappable.
fn host_blob_memory(
    ctx: &Context,
    args: &CreateBlobArgs,
    granularity: u64,
) -> AbiResult<BlobMemory> {
    let mappable = args.blob_flags & BLOB_FLAG_USE_MAPPABLE != 0;
    match ctx.create_blob(args.res_handle, args.blob_id, args.size, args.blob_flags) {
        Ok(blob) => {
            let memory = if blob.size < args.size {
                Err(invalid!(
                    "blob of {} bytes maps only {}",
                    args.size,
                    blob.size
                ))
            } else if mappable {
                HostMapping::map(blob.fd.as_fd(), blob.size, granularity).map(BlobMemory::Own)
            } else {
                Ok(BlobMemory::None)
            };
            if memory.is_err() {
                ctx.destroy_resource(args.res_handle);
            }
            memory
        }
        Err(e) if args.blob_id != 0 && mappable => {
            // Device memory without shared memory behind it (map-ptr strategy):
            // the driver's own mapping, if it is aligned for the VMM.
            let (addr, len) = ctx.map_blob(args.blob_id).map_err(|_| AbiError::Core(e))?;
            if !(addr as u64).is_multiple_of(granularity)
                || !len.is_multiple_of(granularity)
                || len < args.size
            {
                return Err(invalid!(
                    "device memory {} is mapped at {addr:#x} for {len} bytes, not aligned to {granularity}",
                    args.blob_id
                ));
            }
            Ok(BlobMemory::Driver { addr, len })
        }
        Err(e) => Err(AbiError::Core(e)),
    }
}
