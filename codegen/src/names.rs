//! Rust spellings of registry names, matching ash 0.38.

use heck::ToSnakeCase;

use crate::model::{Model, Scalar};
use crate::plan::Kind;

/// `VkBufferCreateInfo` -> `buffer_create_info`.
pub fn fn_suffix(c_name: &str) -> String {
    c_name.strip_prefix("Vk").unwrap_or(c_name).to_snake_case()
}

/// `vkCreateBuffer` -> `vk_create_buffer`.
pub fn cmd_fn(c_name: &str) -> String {
    c_name.to_snake_case()
}

/// `vkCreateBuffer` -> `CreateBufferArgs`.
pub fn args_struct(c_name: &str) -> String {
    format!("{}Args", c_name.strip_prefix("vk").unwrap_or(c_name))
}

/// `vkCreateBuffer` -> `CreateBuffer`.
pub fn variant(c_name: &str) -> String {
    c_name.strip_prefix("vk").unwrap_or(c_name).to_string()
}

/// A struct member or parameter name as ash spells fields.
pub fn field(c_name: &str) -> String {
    let s = c_name.to_snake_case();
    if s == "type" {
        "ty".into()
    } else {
        s
    }
}

pub fn type_path(model: &Model, c_name: &str) -> String {
    let stripped = c_name.strip_prefix("Vk").unwrap_or(c_name);
    if model.structs.get(c_name).is_some_and(|s| s.private) {
        format!("crate::mesa::{stripped}")
    } else {
        format!("vk::{stripped}")
    }
}

/// Whether the ash (or our private) struct carries a lifetime parameter.
pub fn has_lifetime(model: &Model, c_name: &str) -> bool {
    let Some(s) = model.structs.get(c_name) else {
        return false;
    };
    if s.private {
        return false;
    }
    s.members.iter().any(|m| {
        m.pointers > 0
            || matches!(&m.base, crate::model::Base::Struct(n) | crate::model::Base::Union(n) if n != c_name && has_lifetime(model, model.canonical_type(n)))
    })
}

pub fn struct_ty(model: &Model, c_name: &str, lt: &str) -> String {
    if has_lifetime(model, c_name) {
        format!("{}<{lt}>", type_path(model, c_name))
    } else {
        type_path(model, c_name)
    }
}

pub fn scalar_ty(s: &Scalar) -> String {
    match s {
        Scalar::U32 => "u32".into(),
        Scalar::I32 => "i32".into(),
        Scalar::F32 => "f32".into(),
        Scalar::U64 => "u64".into(),
        Scalar::Usize => "usize".into(),
        Scalar::U8 => "u8".into(),
        Scalar::U16 => "u16".into(),
        Scalar::U32Alias(n)
        | Scalar::U64Alias(n)
        | Scalar::Enum(n)
        | Scalar::Flags(n)
        | Scalar::Flags64(n) => {
            format!("vk::{}", n.strip_prefix("Vk").unwrap_or(n))
        }
    }
}

pub fn scalar_wire(s: &Scalar) -> usize {
    match s {
        Scalar::U64 | Scalar::Usize | Scalar::U64Alias(_) | Scalar::Flags64(_) => 8,
        _ => 4,
    }
}

/// Expression encoding scalar value `x` (by value).
pub fn enc_scalar(s: &Scalar, x: &str) -> String {
    match s {
        Scalar::U32 | Scalar::U32Alias(_) => format!("e.u32({x});"),
        Scalar::I32 => format!("e.i32({x});"),
        Scalar::F32 => format!("e.f32({x});"),
        Scalar::U64 | Scalar::U64Alias(_) => format!("e.u64({x});"),
        Scalar::Usize => format!("e.u64({x} as u64);"),
        Scalar::U8 | Scalar::U16 => format!("e.u32(u32::from({x}));"),
        Scalar::Enum(_) => format!("e.i32({x}.as_raw());"),
        Scalar::Flags(_) => format!("e.u32({x}.as_raw());"),
        Scalar::Flags64(_) => format!("e.u64({x}.as_raw());"),
    }
}

/// Expression decoding a scalar.
pub fn dec_scalar(s: &Scalar) -> String {
    match s {
        Scalar::U32 | Scalar::U32Alias(_) => "d.u32()".into(),
        Scalar::I32 => "d.i32()".into(),
        Scalar::F32 => "d.f32()".into(),
        Scalar::U64 | Scalar::U64Alias(_) => "d.u64()".into(),
        Scalar::Usize => "d.usize()".into(),
        Scalar::U8 => "d.u32() as u8".into(),
        Scalar::U16 => "d.u32() as u16".into(),
        Scalar::Enum(_) | Scalar::Flags(_) | Scalar::Flags64(_) => {
            let raw = match s {
                Scalar::Enum(_) => "d.i32()",
                Scalar::Flags(_) => "d.u32()",
                _ => "d.u64()",
            };
            format!("{}::from_raw({raw})", scalar_ty(s))
        }
    }
}

/// Rust element type of an array or pointer of `k`.
pub fn elem_ty(model: &Model, k: &Kind, lt: &str) -> String {
    match k {
        Kind::Scalar(s) => scalar_ty(s),
        Kind::Handle { name, .. } => type_path(model, name),
        Kind::Struct(s) | Kind::Union(s) => struct_ty(model, s, lt),
        Kind::String => "*const core::ffi::c_char".into(),
        _ => "u8".into(),
    }
}

/// The `vk::ObjectType` constant of handle type `c_name` (e.g. `vk::ObjectType::DEVICE_MEMORY`).
pub fn object_type(c_name: &str) -> String {
    use heck::ToShoutySnakeCase;
    let stripped = c_name.strip_prefix("Vk").unwrap_or(c_name);
    format!("vk::ObjectType::{}", stripped.to_shouty_snake_case())
}
