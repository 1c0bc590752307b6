//! Plain (non-blob) resources kept in host memory: the guest console's 2D
//! framebuffers, cursor images, and small buffers. There is no GL here, so they
//! have no texture (`tex_id` 0): the VMM gets their contents through transfers
//! and `virgl_renderer_get_cursor_data` only.

use crate::abi::{ResourceCreateArgs, ResourceInfo, VirglBox};
use crate::error::{invalid, AbiError, AbiResult};
use crate::iov::IovList;

/// Largest width or height of an image.
pub const MAX_DIMENSION: u32 = 16384;
/// Most layers (depth × array size) of an image.
pub const MAX_LAYERS: u32 = 256;
/// Largest single resource in bytes.
pub const MAX_RESOURCE_BYTES: u64 = 256 << 20;

/// Gallium target `PIPE_BUFFER`: `width` bytes, one row.
const TARGET_BUFFER: u32 = 0;
/// Texture targets with plain rows and layers: 1D, 2D, 3D, rect, 1D array, 2D array.
const IMAGE_TARGETS: [u32; 6] = [1, 2, 3, 5, 6, 7];

/// Bytes per pixel of the virgl formats this host stores (the ones a console or
/// cursor uses): 32-bit RGBA/BGRA variants, 16-bit B5G6R5, 8-bit R8.
fn bytes_per_pixel(format: u32) -> Option<u32> {
    match format {
        // B8G8R8A8, B8G8R8X8, A8R8G8B8, X8R8G8B8, R8G8B8A8, X8B8G8R8, B8G8R8A8_SRGB,
        // R8G8B8A8_SRGB, A8B8G8R8, R8G8B8X8 (UNORM unless noted).
        1 | 2 | 3 | 4 | 67 | 68 | 100 | 104 | 121 | 134 => Some(4),
        7 => Some(2),  // B5G6R5_UNORM
        64 => Some(1), // R8_UNORM
        _ => None,
    }
}

/// One transfer request: mip level, the guest-side row and layer strides (0: the
/// resource's own), the box, and where the box's first byte is in the iovecs.
#[derive(Clone, Copy, Debug)]
pub struct Transfer {
    /// Mip level (only 0 is stored).
    pub level: u32,
    /// Guest bytes per row (0: the resource's stride).
    pub stride: u32,
    /// Guest bytes per layer (0: stride × resource height).
    pub layer_stride: u32,
    /// The region.
    pub bx: VirglBox,
    /// Byte offset of the region's first row in the iovecs.
    pub offset: u64,
}

/// A plain resource and its contents.
#[derive(Debug)]
pub struct Pixels {
    args: ResourceCreateArgs,
    bpp: u32,
    layers: u32,
    /// Bytes per row.
    stride: u32,
    data: Vec<u8>,
}

/// (guest offset, host offset, bytes) of each row a transfer copies.
type Rows = Vec<(u64, usize, usize)>;

impl Pixels {
    /// Validates `args` and allocates zeroed storage.
    pub fn new(args: &ResourceCreateArgs) -> AbiResult<Pixels> {
        let bpp = if args.target == TARGET_BUFFER {
            1
        } else if IMAGE_TARGETS.contains(&args.target) {
            bytes_per_pixel(args.format).ok_or_else(|| {
                invalid!("format {} is not stored by this host (no GL)", args.format)
            })?
        } else {
            return Err(invalid!("texture target {} is not supported", args.target));
        };
        if args.width == 0 || args.height == 0 {
            return Err(invalid!("empty resource {}x{}", args.width, args.height));
        }
        let layers = args.depth.max(1).checked_mul(args.array_size.max(1));
        let layers = layers.filter(|&l| l <= MAX_LAYERS).ok_or_else(|| {
            AbiError::TooLarge(format!(
                "depth {} x array size {} (at most {MAX_LAYERS} layers)",
                args.depth, args.array_size
            ))
        })?;
        if args.target == TARGET_BUFFER {
            if args.height != 1 || layers != 1 {
                return Err(invalid!("a buffer has one row and one layer"));
            }
        } else if args.width > MAX_DIMENSION || args.height > MAX_DIMENSION {
            return Err(AbiError::TooLarge(format!(
                "{}x{} (at most {MAX_DIMENSION} per side)",
                args.width, args.height
            )));
        }
        let stride = args
            .width
            .checked_mul(bpp)
            .ok_or_else(|| AbiError::TooLarge(format!("width {}", args.width)))?;
        let bytes = u64::from(stride)
            .checked_mul(u64::from(args.height))
            .and_then(|v| v.checked_mul(u64::from(layers)))
            .filter(|&v| v <= MAX_RESOURCE_BYTES)
            .ok_or_else(|| {
                AbiError::TooLarge(format!(
                    "{}x{}x{layers} at {bpp} bytes per pixel (at most {MAX_RESOURCE_BYTES} bytes)",
                    args.width, args.height
                ))
            })?;
        let len =
            usize::try_from(bytes).map_err(|_| AbiError::TooLarge(format!("{bytes} bytes")))?;
        let mut data = Vec::new();
        data.try_reserve_exact(len)
            .map_err(|_| AbiError::TooLarge(format!("cannot allocate {len} bytes")))?;
        data.resize(len, 0);
        Ok(Pixels {
            args: *args,
            bpp,
            layers,
            stride,
            data,
        })
    }

    /// Bytes of host memory held.
    pub fn size(&self) -> u64 {
        self.data.len() as u64
    }

    /// The resource info a VMM asks for (no texture, no fd).
    pub fn info(&self) -> ResourceInfo {
        ResourceInfo {
            handle: self.args.handle,
            virgl_format: self.args.format,
            width: self.args.width,
            height: self.args.height,
            depth: self.args.depth,
            flags: self.args.flags,
            tex_id: 0,
            stride: self.stride,
            drm_fourcc: 0,
            fd: -1,
        }
    }

    /// The rows `t` copies, validated against this resource and `iov_total` guest bytes.
    fn rows(&self, t: &Transfer, iov_total: u64) -> AbiResult<Rows> {
        if t.level != 0 {
            return Err(invalid!("mip level {} (only level 0 is stored)", t.level));
        }
        let b = t.bx;
        let fits = |origin: u32, extent: u32, limit: u32| {
            u64::from(origin) + u64::from(extent) <= u64::from(limit)
        };
        if !fits(b.x, b.w, self.args.width)
            || !fits(b.y, b.h, self.args.height)
            || !fits(b.z, b.d, self.layers)
        {
            return Err(invalid!(
                "box {b:?} outside {}x{}x{}",
                self.args.width,
                self.args.height,
                self.layers
            ));
        }
        if b.w == 0 || b.h == 0 || b.d == 0 {
            return Ok(Vec::new());
        }
        let bpp = u64::from(self.bpp);
        let row = u64::from(b.w) * bpp;
        let res_stride = u64::from(self.stride);
        let res_layer = res_stride * u64::from(self.args.height);
        let src_stride = if t.stride == 0 {
            res_stride
        } else {
            u64::from(t.stride)
        };
        let src_layer = if t.layer_stride == 0 {
            src_stride * u64::from(self.args.height)
        } else {
            u64::from(t.layer_stride)
        };
        // The last guest byte touched must be inside the iovecs.
        let last_end = u64::from(b.d - 1)
            .checked_mul(src_layer)
            .and_then(|v| v.checked_add(u64::from(b.h - 1).checked_mul(src_stride)?))
            .and_then(|v| v.checked_add(row))
            .and_then(|v| v.checked_add(t.offset));
        if last_end.is_none_or(|end| end > iov_total) {
            return Err(invalid!(
                "transfer of {b:?} at offset {} with strides {src_stride}/{src_layer} exceeds the {iov_total}-byte backing",
                t.offset
            ));
        }
        let row_len = usize::try_from(row).map_err(|_| invalid!("row of {row} bytes"))?;
        let mut rows = Vec::with_capacity((b.h as usize).saturating_mul(b.d as usize));
        for z in 0..u64::from(b.d) {
            for y in 0..u64::from(b.h) {
                // Bounded by `last_end` and by the box check against the storage.
                let src = t.offset + z * src_layer + y * src_stride;
                let dst = (u64::from(b.z) + z) * res_layer
                    + (u64::from(b.y) + y) * res_stride
                    + u64::from(b.x) * bpp;
                let dst = usize::try_from(dst).map_err(|_| invalid!("offset {dst}"))?;
                rows.push((src, dst, row_len));
            }
        }
        Ok(rows)
    }

    /// Guest → host: copies the box from `iov` into the resource.
    pub fn write_from(&mut self, iov: &IovList, t: &Transfer) -> AbiResult<()> {
        for (src, dst, len) in self.rows(t, iov.total())? {
            let end = dst.checked_add(len).ok_or_else(|| invalid!("row end"))?;
            let slot = self
                .data
                .get_mut(dst..end)
                .ok_or_else(|| invalid!("row {dst}..{end} outside the storage"))?;
            if !iov.read(src, slot) {
                return Err(invalid!("row at {src} outside the backing"));
            }
        }
        Ok(())
    }

    /// Host → guest: copies the box of the resource into `iov`.
    pub fn read_into(&self, iov: &IovList, t: &Transfer) -> AbiResult<()> {
        for (dst_guest, src, len) in self.rows(t, iov.total())? {
            let end = src.checked_add(len).ok_or_else(|| invalid!("row end"))?;
            let row = self
                .data
                .get(src..end)
                .ok_or_else(|| invalid!("row {src}..{end} outside the storage"))?;
            if !iov.write(dst_guest, row) {
                return Err(invalid!("row at {dst_guest} outside the backing"));
            }
        }
        Ok(())
    }

    /// A 32-bit image's first layer as (bytes, width, height), for cursors.
    pub fn cursor_image(&self) -> Option<(&[u8], u32, u32)> {
        if self.bpp != 4 || self.args.target == TARGET_BUFFER {
            return None;
        }
        let len = (self.stride as usize).checked_mul(self.args.height as usize)?;
        Some((self.data.get(..len)?, self.args.width, self.args.height))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(width: u32, height: u32) -> ResourceCreateArgs {
        ResourceCreateArgs {
            handle: 1,
            target: 2,
            format: 1,
            width,
            height,
            depth: 1,
            array_size: 1,
            ..Default::default()
        }
    }

    fn iov_of(buf: &mut [u8]) -> IovList {
        let v = [libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        }];
        // SAFETY: `buf` outlives every use of the list in these tests.
        unsafe { IovList::from_raw(v.as_ptr(), 1) }.unwrap()
    }

    #[test]
    fn a_box_round_trips_with_guest_strides() {
        let mut p = Pixels::new(&args(4, 3)).unwrap();
        // Guest image with the resource's stride (16 bytes): fill rows 1..3, cols 1..3.
        let mut guest: Vec<u8> = (0..48).collect();
        let iov = iov_of(&mut guest);
        let bx = VirglBox {
            x: 1,
            y: 1,
            z: 0,
            w: 2,
            h: 2,
            d: 1,
        };
        let t = Transfer {
            level: 0,
            stride: 0,
            layer_stride: 0,
            bx,
            offset: 16 + 4,
        };
        p.write_from(&iov, &t).unwrap();
        assert_eq!(&p.data[20..28], &guest[20..28]);
        assert_eq!(&p.data[36..44], &guest[36..44]);
        assert_eq!(&p.data[..20], &[0u8; 20][..]);
        // Read back into a tightly packed guest buffer (stride 8).
        let mut out = vec![0u8; 16];
        let iov2 = iov_of(&mut out);
        let t2 = Transfer {
            stride: 8,
            offset: 0,
            ..t
        };
        p.read_into(&iov2, &t2).unwrap();
        drop(iov2);
        assert_eq!(&out[..8], &guest[20..28]);
        assert_eq!(&out[8..], &guest[36..44]);
    }

    #[test]
    fn hostile_boxes_and_sizes_are_refused() {
        let mut p = Pixels::new(&args(4, 3)).unwrap();
        let mut guest = vec![0u8; 48];
        let iov = iov_of(&mut guest);
        let bad = [
            VirglBox {
                x: 3,
                y: 0,
                z: 0,
                w: 2,
                h: 1,
                d: 1,
            },
            VirglBox {
                x: u32::MAX,
                y: 0,
                z: 0,
                w: 2,
                h: 1,
                d: 1,
            },
            VirglBox {
                x: 0,
                y: 0,
                z: 1,
                w: 1,
                h: 1,
                d: 1,
            },
            VirglBox {
                x: 0,
                y: 0,
                z: 0,
                w: 4,
                h: 3,
                d: u32::MAX,
            },
        ];
        for bx in bad {
            let t = Transfer {
                level: 0,
                stride: 0,
                layer_stride: 0,
                bx,
                offset: 0,
            };
            assert!(p.write_from(&iov, &t).is_err(), "{bx:?}");
        }
        let whole = VirglBox {
            x: 0,
            y: 0,
            z: 0,
            w: 4,
            h: 3,
            d: 1,
        };
        let t = Transfer {
            level: 0,
            stride: 0,
            layer_stride: 0,
            bx: whole,
            offset: 1,
        };
        assert!(p.write_from(&iov, &t).is_err(), "one byte past the backing");
        let t = Transfer {
            offset: u64::MAX,
            ..t
        };
        assert!(p.write_from(&iov, &t).is_err(), "offset overflow");
        let t = Transfer {
            offset: 0,
            stride: u32::MAX,
            ..t
        };
        assert!(p.write_from(&iov, &t).is_err(), "huge stride");
        let t = Transfer {
            stride: 0,
            level: 1,
            ..t
        };
        assert!(p.write_from(&iov, &t).is_err(), "mip level 1");
        assert!(Pixels::new(&args(0, 1)).is_err());
        assert!(Pixels::new(&args(MAX_DIMENSION + 1, 1)).is_err());
        assert!(
            Pixels::new(&args(MAX_DIMENSION, MAX_DIMENSION)).is_err(),
            "1 GiB"
        );
        assert!(Pixels::new(&ResourceCreateArgs {
            format: 9999,
            ..args(1, 1)
        })
        .is_err());
        assert!(Pixels::new(&ResourceCreateArgs {
            array_size: u32::MAX,
            ..args(1, 1)
        })
        .is_err());
        assert!(Pixels::new(&ResourceCreateArgs {
            target: 42,
            ..args(1, 1)
        })
        .is_err());
    }
}
