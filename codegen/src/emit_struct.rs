//! Emits the per-struct functions: full and partial encoders, host decoders into
//! an arena, guest decoders into caller memory, and (feature `synth`) random valid
//! encodings for tests.

use std::fmt::Write;

use anyhow::{anyhow, Result};

use crate::model::{Decl, Model, Scalar, StructDef};
use crate::names::*;
use crate::plan::{kind_of, Kind, Len, Plan};

pub const SAFETY: &str = "// SAFETY: the caller guarantees that every pointer reachable from the value is valid for the counts it states.";

/// Where the members live and how to name them.
pub struct Scope<'a> {
    pub decls: &'a [Decl],
    /// `v.` / `out.` / `a.` or "" for command locals.
    pub prefix: &'a str,
    pub owner: &'a str,
}

impl Scope<'_> {
    pub fn val(&self, name: &str) -> String {
        format!("{}{}", self.prefix, field(name))
    }
    fn decl(&self, name: &str) -> Option<&Decl> {
        self.decls.iter().find(|d| d.name == name)
    }
    /// Length as a `usize` expression, read from already-known values.
    pub fn len(&self, l: &Len) -> String {
        match l {
            Len::Member(m) | Len::Deref(m) => {
                let v = self.val(m);
                if self.decl(m).is_some_and(|d| d.pointers > 0) {
                    format!("(if {v}.is_null() {{ 0 }} else {{\n// SAFETY: non-null output counts point at the caller's u32.\nunsafe {{ *{v} as usize }} }})")
                } else {
                    format!("({v} as usize)")
                }
            }
            Len::Field(p, f) => {
                let v = self.val(p);
                format!("(if {v}.is_null() {{ 0 }} else {{\n// SAFETY: a non-null info pointer is valid per the caller's contract.\nunsafe {{ (*{v}).{} as usize }} }})", field(f))
            }
            Len::Div4(m) => format!("({} / 4)", self.val(m)),
            Len::SampleWords(m) => format!("(({}.as_raw() as usize + 31) / 32)", self.val(m)),
        }
    }
    /// Members that are the length of some array member.
    pub fn is_counter(&self, model: &Model, name: &str) -> bool {
        self.decls.iter().any(|d| {
            kind_of(model, self.owner, d).ok().is_some_and(|k| match k {
                Kind::Array(_, l) | Kind::Blob(l) | Kind::StringArray(l) => {
                    l.counter() == Some(name)
                }
                _ => false,
            })
        })
    }
}

pub fn min_wire(model: &Model, k: &Kind, depth: usize) -> usize {
    if depth > 8 {
        return 4;
    }
    match k {
        Kind::Scalar(s) => scalar_wire(s),
        Kind::Handle { .. } => 8,
        Kind::Struct(s) => model
            .structs
            .get(s)
            .map(|d| {
                d.members
                    .iter()
                    .map(|m| match kind_of(model, s, m) {
                        Ok(Kind::Chain) => 8,
                        Ok(k) => min_wire(model, &k, depth + 1),
                        Err(_) => 0,
                    })
                    .sum::<usize>()
            })
            .unwrap_or(4)
            .max(4),
        Kind::Union(_) => 8,
        Kind::FixedBytes(n) => 8 + n.div_ceil(4) * 4,
        Kind::FixedScalars(s, n) => 8 + n * scalar_wire(s).max(4),
        Kind::FixedStructs(s, n) => 8 + n * min_wire(model, &Kind::Struct(s.clone()), depth + 1),
        Kind::FixedHandles(_, _, n) => 8 + n * 8,
        _ => 8,
    }
}

fn chain_const(owner: &str) -> String {
    format!(
        "super::chain_tables::CHAIN_{}",
        fn_suffix(owner).to_uppercase()
    )
}

/// Encodes one value of kind `k` held in expression `x` (full form).
pub fn enc_value(_model: &Model, k: &Kind, x: &str, out: &mut String) -> Result<()> {
    match k {
        Kind::Scalar(s) => writeln!(out, "{}", enc_scalar(s, x))?,
        Kind::Handle {
            dispatchable: true, ..
        } => writeln!(out, "e.dispatchable({x}.as_raw());")?,
        Kind::Handle { .. } => writeln!(out, "e.u64({x}.as_raw());")?,
        Kind::Struct(s) | Kind::Union(s) => writeln!(
            out,
            "{SAFETY}\nunsafe {{ encode_{}(e, &{x}) }};",
            fn_suffix(s)
        )?,
        _ => return Err(anyhow!("cannot encode element {k:?}")),
    }
    Ok(())
}

/// Encodes member `m` of kind `k`, full form.
pub fn enc_member(model: &Model, sc: &Scope, m: &Decl, k: &Kind, out: &mut String) -> Result<()> {
    let x = sc.val(&m.name);
    match k {
        Kind::Scalar(_) | Kind::Handle { .. } | Kind::Struct(_) | Kind::Union(_) => enc_value(model, k, &x, out)?,
        Kind::FixedBytes(n) => {
            writeln!(out, "e.size({n});\ne.fixed_bytes(&{x});")?;
        }
        Kind::FixedScalars(s, n) => {
            writeln!(out, "e.size({n});\nfor el in {x}.iter() {{ {} }}", enc_scalar(s, "(*el)"))?;
        }
        Kind::FixedStructs(s, n) => {
            writeln!(out, "e.size({n});\nfor el in {x}.iter() {{ {SAFETY}\nunsafe {{ encode_{}(e, el) }}; }}", fn_suffix(s))?;
        }
        Kind::FixedHandles(_, disp, n) => {
            let f = if *disp { "dispatchable" } else { "u64" };
            writeln!(out, "e.size({n});\nfor el in {x}.iter() {{ e.{f}(el.as_raw()); }}")?;
        }
        Kind::Chain => writeln!(out, "{SAFETY}\nunsafe {{ crate::chain::encode(e, {x} as *const core::ffi::c_void, {}, false) }};", chain_const(sc.owner))?,
        Kind::String => writeln!(out, "{SAFETY}\nunsafe {{ e.string({x}) }};")?,
        Kind::StringArray(l) => {
            writeln!(out, "if {x}.is_null() {{ e.size(0); }} else {{ let n = {};\ne.size(n);\n{SAFETY}\nfor p in unsafe {{ crate::slice({x}, n) }} {{ {SAFETY}\nunsafe {{ e.string(*p) }}; }} }}", sc.len(l))?;
        }
        Kind::Blob(l) => {
            writeln!(out, "if {x}.is_null() {{ e.size(0); }} else {{ let n = {};\ne.size(n);\n{SAFETY}\ne.bytes(unsafe {{ crate::slice({x} as *const u8, n) }}); }}", sc.len(l))?;
        }
        Kind::Array(el, l) => {
            let cond = if sharing_rule(sc.owner, &m.name) {
                format!("{x}.is_null() || {} != vk::SharingMode::CONCURRENT", sc.val("sharingMode"))
            } else if imageless_rule(sc.owner, &m.name) {
                format!("{x}.is_null() || {}.contains(vk::FramebufferCreateFlags::IMAGELESS)", sc.val("flags"))
            } else {
                format!("{x}.is_null()")
            };
            let mut body = String::new();
            enc_value(model, el, "(*el)", &mut body)?;
            writeln!(out, "if {cond} {{ e.size(0); }} else {{ let n = {};\ne.size(n);\n{SAFETY}\nfor el in unsafe {{ crate::slice({x}, n) }} {{ {body} }} }}", sc.len(l))?;
        }
        Kind::Pointer(el) => {
            let mut body = String::new();
            enc_value(model, el, "(*p)", &mut body)?;
            writeln!(out, "{SAFETY}\nmatch unsafe {{ {x}.as_ref() }} {{ None => e.present(false), Some(p) => {{ e.present(true); {body} }} }}")?;
        }
        Kind::Allocator => writeln!(out, "e.size(0);")?,
    }
    Ok(())
}

/// `pAttachments` of an imageless framebuffer is never sent.
pub fn imageless_rule(owner: &str, member: &str) -> bool {
    owner == "VkFramebufferCreateInfo" && member == "pAttachments"
}

pub fn sharing_rule(owner: &str, member: &str) -> bool {
    member == "pQueueFamilyIndices"
        && matches!(
            owner,
            "VkBufferCreateInfo"
                | "VkImageCreateInfo"
                | "VkPhysicalDeviceImageDrmFormatModifierInfoEXT"
        )
}

/// Partial encoding of an output member.
pub fn enc_member_partial(
    model: &Model,
    sc: &Scope,
    m: &Decl,
    k: &Kind,
    out: &mut String,
) -> Result<()> {
    let x = sc.val(&m.name);
    match k {
        Kind::Scalar(s) if sc.is_counter(model, &m.name) => writeln!(out, "{}", enc_scalar(s, &x))?,
        Kind::Struct(s) => writeln!(out, "{SAFETY}\nunsafe {{ encode_{}_partial(e, &{x}) }};", fn_suffix(s))?,
        Kind::FixedStructs(s, n) => {
            writeln!(out, "e.size({n});\nfor el in {x}.iter() {{ {SAFETY}\nunsafe {{ encode_{}_partial(e, el) }}; }}", fn_suffix(s))?;
        }
        Kind::FixedHandles(_, disp, n) => {
            let f = if *disp { "dispatchable" } else { "u64" };
            writeln!(out, "e.size({n});\nfor el in {x}.iter() {{ e.{f}(el.as_raw()); }}")?;
        }
        Kind::Chain => writeln!(out, "{SAFETY}\nunsafe {{ crate::chain::encode(e, {x} as *const core::ffi::c_void, {}, true) }};", chain_const(sc.owner))?,
        Kind::Array(el, l) => {
            let body = match &**el {
                Kind::Struct(s) => format!("{SAFETY}\nfor el in unsafe {{ crate::slice({x}, n) }} {{ {SAFETY}\nunsafe {{ encode_{}_partial(e, el) }}; }}", fn_suffix(s)),
                Kind::Handle { .. } => format!("{SAFETY}\nfor el in unsafe {{ crate::slice({x}, n) }} {{ e.u64(el.as_raw()); }}"),
                _ => String::new(),
            };
            writeln!(out, "if {x}.is_null() {{ e.size(0); }} else {{ let n = {};\ne.size(n);\n{body} }}", sc.len(l))?;
        }
        _ => {}
    }
    Ok(())
}

/// Decodes one element of kind `k` into place `p` (a `&mut T`), arena form.
pub fn dec_value(model: &Model, k: &Kind, p: &str, partial: bool, out: &mut String) -> Result<()> {
    match k {
        Kind::Scalar(s) => writeln!(out, "*{p} = {};", dec_scalar(s))?,
        Kind::Handle { name, .. } => writeln!(
            out,
            "*{p} = {}::from_raw(d.handle({}));",
            type_path(model, name),
            object_type(name)
        )?,
        Kind::Struct(s) | Kind::Union(s) => {
            let suffix = if partial { "_partial" } else { "" };
            writeln!(out, "decode_{}{suffix}(d, a, {p});", fn_suffix(s))?
        }
        Kind::String => writeln!(out, "*{p} = d.string(a);")?,
        _ => return Err(anyhow!("cannot decode element {k:?}")),
    }
    Ok(())
}

pub fn required(m: &Decl) -> bool {
    !(m.optional || m.noautovalidity)
}

/// Host decode of member `m` into the arena (full form).
pub fn dec_member(model: &Model, sc: &Scope, m: &Decl, k: &Kind, out: &mut String) -> Result<()> {
    let x = sc.val(&m.name);
    match k {
        Kind::Scalar(s) => writeln!(out, "{x} = {};", dec_scalar(s))?,
        Kind::Handle { name, .. } => writeln!(
            out,
            "{x} = {}::from_raw(d.{}({}));",
            type_path(model, name),
            if required(m) {
                "required_handle"
            } else {
                "handle"
            },
            object_type(name)
        )?,
        Kind::Struct(_) | Kind::Union(_) => dec_value(model, k, &format!("&mut {x}"), false, out)?,
        Kind::FixedBytes(n) => writeln!(out, "d.fixed_size({n});\nd.fixed_bytes(&mut {x});")?,
        Kind::FixedScalars(s, n) => writeln!(
            out,
            "d.fixed_size({n});\nfor el in {x}.iter_mut() {{ *el = {}; }}",
            dec_scalar(s)
        )?,
        Kind::FixedStructs(s, n) => writeln!(
            out,
            "d.fixed_size({n});\nfor el in {x}.iter_mut() {{ decode_{}(d, a, el); }}",
            fn_suffix(s)
        )?,
        Kind::FixedHandles(name, _, n) => writeln!(
            out,
            "d.fixed_size({n});\nfor el in {x}.iter_mut() {{ *el = {}::from_raw(d.handle({})); }}",
            type_path(model, name),
            object_type(name)
        )?,
        Kind::Chain => writeln!(
            out,
            "{x} = crate::chain::decode(d, a, {}, false) as _;",
            chain_const(sc.owner)
        )?,
        Kind::String => writeln!(out, "{x} = d.string(a);")?,
        Kind::StringArray(l) => {
            writeln!(out, "{{ let n = d.array_len({} as u64, {});\nif n != 0 {{ let arr = d.alloc_slice(a, n, 8, core::ptr::null());\nfor el in arr.iter_mut() {{ *el = d.string(a); }}\nif !arr.is_empty() {{ {x} = arr.as_ptr(); }} }} }}", sc.len(l), required(m))?;
        }
        Kind::Blob(l) => {
            writeln!(
                out,
                "{{ let n = d.array_len({} as u64, {});\n{x} = d.blob(a, n) as _; }}",
                sc.len(l),
                required(m)
            )?;
        }
        Kind::Array(el, l) => {
            let mut body = String::new();
            dec_value(model, el, "el", false, &mut body)?;
            let init = init_of(model, el);
            writeln!(out, "{{ let n = d.array_len({} as u64, {});\nif n != 0 {{ let arr = d.alloc_slice(a, n, {}, {init});\nfor el in arr.iter_mut() {{ {body} }}\nif !arr.is_empty() {{ {x} = arr.as_ptr() as _; }} }} }}", sc.len(l), required(m), min_wire(model, el, 0))?;
        }
        Kind::Pointer(el) => {
            let mut body = String::new();
            dec_value(model, el, "el", false, &mut body)?;
            let init = init_of(model, el);
            writeln!(out, "if d.present() {{ let arr = d.alloc_slice(a, 1, {}, {init});\nif let Some(el) = arr.first_mut() {{ {body} }}\nif !arr.is_empty() {{ {x} = arr.as_ptr() as _; }} }}", min_wire(model, el, 0))?;
        }
        Kind::Allocator => writeln!(out, "d.expect_null();")?,
    }
    Ok(())
}

pub fn init_of(model: &Model, k: &Kind) -> String {
    match k {
        Kind::String => "core::ptr::null()".into(),
        Kind::Scalar(s) => format!("<{}>::default()", scalar_ty(s)),
        _ => format!("<{}>::default()", elem_ty(model, k, "'_")),
    }
}

/// Host decode of the partial form of an output member.
pub fn dec_member_partial(
    model: &Model,
    sc: &Scope,
    m: &Decl,
    k: &Kind,
    out: &mut String,
) -> Result<()> {
    let x = sc.val(&m.name);
    match k {
        Kind::Scalar(s) if sc.is_counter(model, &m.name) => {
            writeln!(out, "{x} = {};", dec_scalar(s))?
        }
        Kind::Struct(_) => dec_value(model, k, &format!("&mut {x}"), true, out)?,
        Kind::FixedStructs(s, n) => writeln!(
            out,
            "d.fixed_size({n});\nfor el in {x}.iter_mut() {{ decode_{}_partial(d, a, el); }}",
            fn_suffix(s)
        )?,
        Kind::FixedHandles(name, _, n) => writeln!(
            out,
            "d.fixed_size({n});\nfor el in {x}.iter_mut() {{ *el = {}::from_raw(d.u64()); }}",
            type_path(model, name)
        )?,
        Kind::Chain => writeln!(
            out,
            "{x} = crate::chain::decode(d, a, {}, true) as _;",
            chain_const(sc.owner)
        )?,
        Kind::Array(el, l) => {
            let body = match &**el {
                Kind::Struct(s) => format!(
                    "for el in arr.iter_mut() {{ decode_{}_partial(d, a, el); }}",
                    fn_suffix(s)
                ),
                Kind::Handle { name, .. } => format!(
                    "for el in arr.iter_mut() {{ *el = {}::from_raw(d.u64()); }}",
                    type_path(model, name)
                ),
                _ => String::new(),
            };
            let init = init_of(model, el);
            writeln!(out, "{{ let n = d.array_len({} as u64, false);\nif n != 0 {{ let arr = d.alloc_output(a, n, {init});\n{body}\nif !arr.is_empty() {{ {x} = arr.as_mut_ptr() as _; }} }} }}", sc.len(l))?;
        }
        _ => {}
    }
    Ok(())
}

/// Guest decode of a reply member into caller memory.
pub fn dec_member_into(
    model: &Model,
    sc: &Scope,
    m: &Decl,
    k: &Kind,
    out: &mut String,
) -> Result<()> {
    let x = sc.val(&m.name);
    match k {
        Kind::Scalar(s) => {
            if sc.is_counter(model, &m.name) {
                writeln!(out, "let cap_{} = {x} as usize;", field(&m.name))?;
            }
            writeln!(out, "{x} = {};", dec_scalar(s))?
        }
        Kind::Handle { .. } => writeln!(out, "d.u64();")?,
        Kind::Struct(s) => writeln!(out, "{SAFETY}\nunsafe {{ decode_into_{}(d, &mut {x}) }};", fn_suffix(s))?,
        Kind::FixedBytes(n) => writeln!(out, "d.fixed_size({n});\nd.fixed_bytes(&mut {x});")?,
        Kind::FixedScalars(s, n) => writeln!(out, "d.fixed_size({n});\nfor el in {x}.iter_mut() {{ *el = {}; }}", dec_scalar(s))?,
        Kind::FixedStructs(s, n) => writeln!(out, "d.fixed_size({n});\nfor el in {x}.iter_mut() {{ {SAFETY}\nunsafe {{ decode_into_{}(d, el) }}; }}", fn_suffix(s))?,
        Kind::FixedHandles(_, _, n) => writeln!(out, "d.fixed_size({n});\nfor _ in 0..{n} {{ d.u64(); }}")?,
        Kind::Chain => writeln!(out, "{SAFETY}\nunsafe {{ crate::chain::decode_into(d, {x} as *mut core::ffi::c_void) }};")?,
        Kind::Array(el, l) => {
            let cap = format!("cap_{}", field(l.counter().unwrap_or("")));
            let body = match &**el {
                Kind::Struct(s) => format!("{SAFETY}\nunsafe {{ decode_into_{}(d, el) }};", fn_suffix(s)),
                Kind::Scalar(s) => format!("*el = {};", dec_scalar(s)),
                Kind::Handle { .. } => "let _ = el; d.u64();".into(),
                _ => return Err(anyhow!("reply array of {el:?}")),
            };
            writeln!(out, "if d.peek_u64() != 0 {{ let n = d.array_len({} as u64, false);\nif n > {cap} || {x}.is_null() {{ d.fail(crate::DecodeError::ReplyOverflow); }} else {{ {SAFETY}\nfor el in unsafe {{ crate::slice_mut({x}, n) }} {{ {body} }} }} }} else {{ d.u64(); }}", sc.len(l))?;
        }
        _ => return Err(anyhow!("reply member {} of kind {k:?} in {}", m.name, sc.owner)),
    }
    Ok(())
}

/// Synthesizes a random valid encoding of a member (tests only).
pub fn synth_member(
    model: &Model,
    sc: &Scope,
    m: &Decl,
    k: &Kind,
    partial: bool,
    out: &mut String,
) -> Result<()> {
    let local = format!("c_{}", field(&m.name));
    let counter = sc.is_counter(model, &m.name);
    let slen = |l: &Len| -> String {
        match l {
            Len::Member(c) | Len::Deref(c) => format!("(c_{} as usize)", field(c)),
            Len::Field(_, f) => format!("(s.last(\"{f}\") as usize)"),
            Len::Div4(c) => format!("(c_{} as usize / 4)", field(c)),
            Len::SampleWords(c) => format!("((c_{} as usize + 31) / 32)", field(c)),
        }
    };
    if partial {
        match k {
            Kind::Scalar(s) if counter => writeln!(
                out,
                "let {local} = s.count(\"{}\"); {}",
                m.name,
                synth_scalar_write(s, &local)
            )?,
            Kind::Struct(s) => writeln!(out, "synth_{}_partial(s);", fn_suffix(s))?,
            Kind::FixedStructs(s, n) => writeln!(
                out,
                "s.size({n});\nfor _ in 0..{n} {{ synth_{}_partial(s); }}",
                fn_suffix(s)
            )?,
            Kind::FixedHandles(_, _, n) => {
                writeln!(out, "s.size({n});\nfor _ in 0..{n} {{ s.id(); }}")?
            }
            Kind::Chain => writeln!(
                out,
                "crate::chain::synth(s, {}, true);",
                chain_const(sc.owner)
            )?,
            Kind::Array(el, l) => {
                let body = match &**el {
                    Kind::Struct(s) => {
                        format!("for _ in 0..n {{ synth_{}_partial(s); }}", fn_suffix(s))
                    }
                    Kind::Handle { .. } => "for _ in 0..n { s.id(); }".into(),
                    _ => String::new(),
                };
                writeln!(out, "{{ let n = {};\nif n == 0 || s.coin() {{ s.size(0); }} else {{ s.size(n); {body} }} }}", slen(l))?;
            }
            _ => {}
        }
        return Ok(());
    }
    match k {
        Kind::Scalar(s) => {
            if counter {
                let v = match &m.name[..] {
                    "codeSize" => format!("s.count(\"{}\") * 4", m.name),
                    "rasterizationSamples" | "samples" => "s.sample_count()".into(),
                    _ => format!("s.count(\"{}\")", m.name),
                };
                writeln!(out, "let {local} = {v}; {}", synth_scalar_write(s, &local))?
            } else if m.name == "flags" && sc.owner == "VkFramebufferCreateInfo" {
                writeln!(out, "let c_flags = s.below(2); s.u32(c_flags as u32);")?
            } else if m.name == "sharingMode" {
                writeln!(out, "let c_sharing_mode = s.below(2); s.u32(c_sharing_mode as u32);")?
            } else {
                writeln!(out, "{}", synth_scalar_random(s))?
            }
        }
        Kind::Handle { .. } => writeln!(out, "s.id();")?,
        Kind::Struct(s) | Kind::Union(s) => writeln!(out, "synth_{}(s);", fn_suffix(s))?,
        Kind::FixedBytes(n) => writeln!(out, "s.size({n}); s.random_bytes({n});")?,
        Kind::FixedScalars(sc2, n) => writeln!(out, "s.size({n}); for _ in 0..{n} {{ {} }}", synth_scalar_random(sc2))?,
        Kind::FixedStructs(st, n) => writeln!(out, "s.size({n}); for _ in 0..{n} {{ synth_{}(s); }}", fn_suffix(st))?,
        Kind::FixedHandles(_, _, n) => writeln!(out, "s.size({n}); for _ in 0..{n} {{ s.id(); }}")?,
        Kind::Chain => writeln!(out, "crate::chain::synth(s, {}, false);", chain_const(sc.owner))?,
        Kind::String => writeln!(out, "s.string();")?,
        Kind::StringArray(l) => writeln!(out, "{{ let n = {}; if n == 0 {{ s.size(0); }} else {{ s.size(n); for _ in 0..n {{ s.string(); }} }} }}", slen(l))?,
        Kind::Blob(l) => writeln!(out, "{{ let n = {}; if n == 0 {{ s.size(0); }} else {{ s.size(n); s.random_bytes(n); }} }}", slen(l))?,
        Kind::Array(el, l) => {
            let mut body = String::new();
            synth_elem(el, &mut body)?;
            let null_ok = if required(m) { "false" } else { "s.coin()" };
            let cond = if sharing_rule(sc.owner, &m.name) {
                "n == 0 || c_sharing_mode != 1".to_string()
            } else if imageless_rule(sc.owner, &m.name) {
                "n == 0 || c_flags & 1 != 0".to_string()
            } else {
                format!("n == 0 || {null_ok}")
            };
            writeln!(out, "{{ let n = {}; if {cond} {{ s.size(0); }} else {{ s.size(n); for _ in 0..n {{ {body} }} }} }}", slen(l))?;
        }
        Kind::Pointer(el) => {
            let mut body = String::new();
            synth_elem(el, &mut body)?;
            let present = if required(m) { "true" } else { "s.coin()" };
            writeln!(out, "if {present} {{ s.present(true); {body} }} else {{ s.present(false); }}")?;
        }
        Kind::Allocator => writeln!(out, "s.size(0);")?,
    }
    Ok(())
}

pub fn synth_elem(k: &Kind, out: &mut String) -> Result<()> {
    match k {
        Kind::Scalar(s) => writeln!(out, "{}", synth_scalar_random(s))?,
        Kind::Handle { .. } => writeln!(out, "s.id();")?,
        Kind::Struct(s) | Kind::Union(s) => writeln!(out, "synth_{}(s);", fn_suffix(s))?,
        Kind::String => writeln!(out, "s.string();")?,
        _ => return Err(anyhow!("synth element {k:?}")),
    }
    Ok(())
}

pub fn synth_scalar_write(s: &Scalar, v: &str) -> String {
    if scalar_wire(s) == 8 {
        format!("s.u64({v} as u64);")
    } else {
        format!("s.u32({v} as u32);")
    }
}

pub fn synth_scalar_random(s: &Scalar) -> String {
    match s {
        Scalar::U8 => "s.small(0xff);".into(),
        Scalar::U16 => "s.small(0xffff);".into(),
        _ if scalar_wire(s) == 8 => "s.random_u64();".into(),
        _ => "s.random_u32();".into(),
    }
}

/// Emits all functions of one struct.
pub fn emit_struct(
    model: &Model,
    plan: &Plan,
    def: &StructDef,
    union_tag: Option<u32>,
    out: &mut String,
) -> Result<()> {
    let usage = plan.structs.get(&def.name).copied().unwrap_or_default();
    let name = &def.name;
    let sfx = fn_suffix(name);
    let ty_any = struct_ty(model, name, "'_");
    let ty_a = struct_ty(model, name, "'a");
    let stype = def
        .stype()
        .map(|s| {
            model
                .stype_values
                .get(s)
                .copied()
                .ok_or_else(|| anyhow!("no value for {s}"))
        })
        .transpose()?;
    let members: Vec<(&Decl, Kind)> = def
        .members
        .iter()
        .filter(|m| m.name != "sType")
        .map(|m| kind_of(model, name, m).map(|k| (m, k)))
        .collect::<Result<_>>()?;
    let scope_v = Scope {
        decls: &def.members,
        prefix: "v.",
        owner: name,
    };
    let scope_out = Scope {
        decls: &def.members,
        prefix: "out.",
        owner: name,
    };

    if def.is_union {
        let tag = union_tag.ok_or_else(|| anyhow!("no default tag for union {name}"))?;
        let (m, k) = members
            .get(tag as usize)
            .ok_or_else(|| anyhow!("bad tag for {name}"))?;
        let mut enc = String::new();
        enc_member(
            model,
            &Scope {
                decls: &def.members,
                prefix: "u.",
                owner: name,
            },
            m,
            k,
            &mut enc,
        )?;
        let mut dec = String::new();
        dec_member(
            model,
            &Scope {
                decls: &def.members,
                prefix: "u.",
                owner: name,
            },
            m,
            k,
            &mut dec,
        )?;
        let mut syn = String::new();
        synth_member(model, &scope_v, m, k, false, &mut syn)?;
        let f = field(&m.name);
        writeln!(out, "/// Encodes `{name}` with its default tag {tag} (`{}`), as Mesa does.\n///\n/// # Safety\n/// Reads the `{}` member of the union.\npub unsafe fn encode_{sfx}(e: &mut Encoder<'_>, v: &{ty_any}) {{\ne.u32({tag});\n// SAFETY: the caller guarantees the tag's member is the one stored; every member is plain data.\nlet u = unsafe {{ V{sfx} {{ {f}: v.{f} }} }};\n{enc}}}", m.name, m.name)?;
        writeln!(
            out,
            "#[allow(non_camel_case_types)] struct V{sfx} {{ {f}: {} }}",
            member_rust_ty(model, m, k)
        )?;
        writeln!(out, "/// Decodes `{name}`; only the default tag {tag} is accepted.\npub fn decode_{sfx}(d: &mut Decoder<'_>, a: &Bump, out: &mut {ty_any}) {{\nlet _ = a;\nif d.u32() != {tag} {{ d.fail(crate::DecodeError::BadUnionTag); return; }}\nlet mut u = V{sfx} {{ {f}: Default::default() }};\n{dec}out.{f} = u.{f};\n}}")?;
        writeln!(out, "#[cfg(feature = \"synth\")]\npub fn synth_{sfx}(s: &mut Synth) {{ s.u32({tag}); {syn} }}")?;
        return Ok(());
    }

    // Full encoder (input structs and reply structs).
    let mut body = String::new();
    for (m, k) in &members {
        if matches!(k, Kind::Chain) {
            continue;
        }
        enc_member(model, &scope_v, m, k, &mut body)?;
    }
    let chain_member = members.iter().find(|(_, k)| matches!(k, Kind::Chain));
    let doc_safety = "///\n/// # Safety\n/// Every pointer reachable from `v` must be valid for the lengths its members state.";
    if let Some(st) = stype {
        let (cm, ck) = chain_member.ok_or_else(|| anyhow!("{name}: sType without pNext"))?;
        let mut ch = String::new();
        enc_member(model, &scope_v, cm, ck, &mut ch)?;
        writeln!(out, "/// Encodes the members of `{name}` after sType and pNext.\n{doc_safety}\npub unsafe fn encode_{sfx}_body(e: &mut Encoder<'_>, v: &{ty_any}) {{\nlet _ = &v;\n{body}}}")?;
        writeln!(out, "/// Encodes `{name}`: sType, chain, members.\n{doc_safety}\npub unsafe fn encode_{sfx}(e: &mut Encoder<'_>, v: &{ty_any}) {{\ne.i32({st});\n{ch}{SAFETY}\nunsafe {{ encode_{sfx}_body(e, v) }};\n}}")?;
    } else {
        writeln!(out, "/// Encodes `{name}`.\n{doc_safety}\npub unsafe fn encode_{sfx}(e: &mut Encoder<'_>, v: &{ty_any}) {{\nlet _ = (&e, &v);\n{body}}}")?;
    }

    if usage.input {
        let mut body = String::new();
        let mut syn = String::new();
        for (m, k) in &members {
            if matches!(k, Kind::Chain) {
                continue;
            }
            dec_member(model, &scope_out, m, k, &mut body)?;
            synth_member(model, &scope_v, m, k, false, &mut syn)?;
        }
        emit_dec_pair(
            model,
            name,
            &sfx,
            &ty_a,
            stype,
            chain_member,
            &scope_out,
            "",
            &body,
            false,
            out,
        )?;
        emit_synth_pair(
            model,
            &sfx,
            stype,
            chain_member,
            &scope_v,
            "",
            &syn,
            false,
            out,
        )?;
    }
    if usage.output {
        let mut enc = String::new();
        let mut dec = String::new();
        let mut into = String::new();
        let mut syn = String::new();
        for (m, k) in &members {
            if matches!(k, Kind::Chain) {
                continue;
            }
            enc_member_partial(model, &scope_v, m, k, &mut enc)?;
            dec_member_partial(model, &scope_out, m, k, &mut dec)?;
            dec_member_into(model, &scope_out, m, k, &mut into)?;
            synth_member(model, &scope_v, m, k, true, &mut syn)?;
        }
        if let Some(st) = stype {
            let (cm, ck) = chain_member.ok_or_else(|| anyhow!("{name}: no pNext"))?;
            let mut ch = String::new();
            enc_member_partial(model, &scope_v, cm, ck, &mut ch)?;
            let mut chi = String::new();
            dec_member_into(model, &scope_out, cm, ck, &mut chi)?;
            writeln!(out, "/// Encodes the partial (output) members of `{name}`.\n{doc_safety}\npub unsafe fn encode_{sfx}_partial_body(e: &mut Encoder<'_>, v: &{ty_any}) {{\nlet _ = (&e, &v);\n{enc}}}")?;
            writeln!(out, "/// Encodes `{name}` in its partial form (what the host must fill).\n{doc_safety}\npub unsafe fn encode_{sfx}_partial(e: &mut Encoder<'_>, v: &{ty_any}) {{\ne.i32({st});\n{ch}{SAFETY}\nunsafe {{ encode_{sfx}_partial_body(e, v) }};\n}}")?;
            writeln!(out, "/// Decodes the members of a `{name}` reply into caller memory.\n///\n/// # Safety\n/// Arrays reachable from `out` must hold as many elements as their counts say.\npub unsafe fn decode_into_{sfx}_body(d: &mut Decoder<'_>, out: &mut {ty_any}) {{\nlet _ = (&d, &out);\n{into}}}")?;
            writeln!(out, "/// Decodes a `{name}` reply into caller memory, following the caller's chain.\n///\n/// # Safety\n/// Arrays and chain structs reachable from `out` must be valid.\npub unsafe fn decode_into_{sfx}(d: &mut Decoder<'_>, out: &mut {ty_any}) {{\nd.stype({st});\n{chi}{SAFETY}\nunsafe {{ decode_into_{sfx}_body(d, out) }};\n}}")?;
        } else {
            writeln!(out, "/// Encodes `{name}` in its partial form.\n{doc_safety}\npub unsafe fn encode_{sfx}_partial(e: &mut Encoder<'_>, v: &{ty_any}) {{\nlet _ = (&e, &v);\n{enc}}}")?;
            writeln!(out, "/// Decodes a `{name}` reply into caller memory.\n///\n/// # Safety\n/// Arrays reachable from `out` must hold as many elements as their counts say.\npub unsafe fn decode_into_{sfx}(d: &mut Decoder<'_>, out: &mut {ty_any}) {{\nlet _ = (&d, &out);\n{into}}}")?;
        }
        emit_dec_pair(
            model,
            name,
            &sfx,
            &ty_a,
            stype,
            chain_member,
            &scope_out,
            "_partial",
            &dec,
            true,
            out,
        )?;
        emit_synth_pair(
            model,
            &sfx,
            stype,
            chain_member,
            &scope_v,
            "_partial",
            &syn,
            true,
            out,
        )?;
    }
    Ok(())
}

fn member_rust_ty(model: &Model, m: &Decl, k: &Kind) -> String {
    match k {
        Kind::FixedScalars(s, n) => format!("[{}; {n}]", scalar_ty(s)),
        Kind::Union(s) | Kind::Struct(s) => struct_ty(model, s, "'static"),
        _ => format!("/* {} */ u32", m.name),
    }
}

#[allow(clippy::too_many_arguments)]
fn emit_dec_pair(
    model: &Model,
    name: &str,
    sfx: &str,
    ty_a: &str,
    stype: Option<i64>,
    chain_member: Option<&(&Decl, Kind)>,
    scope: &Scope,
    suffix: &str,
    body: &str,
    partial: bool,
    out: &mut String,
) -> Result<()> {
    let what = if partial {
        "partial (output) form"
    } else {
        "full form"
    };
    if let Some(st) = stype {
        let (cm, ck) = chain_member.ok_or_else(|| anyhow!("{name}: no pNext"))?;
        let mut ch = String::new();
        if partial {
            dec_member_partial(model, scope, cm, ck, &mut ch)?;
        } else {
            dec_member(model, scope, cm, ck, &mut ch)?;
        }
        writeln!(out, "/// Decodes the members of `{name}` ({what}) after sType and pNext.\npub fn decode_{sfx}{suffix}_body<'a>(d: &mut Decoder<'_>, a: &'a Bump, out: &mut {ty_a}) {{\nlet _ = (&d, &a, &out);\n{body}}}")?;
        writeln!(out, "/// Decodes `{name}` ({what}) into the arena.\npub fn decode_{sfx}{suffix}<'a>(d: &mut Decoder<'_>, a: &'a Bump, out: &mut {ty_a}) {{\nd.stype({st});\n{ch}decode_{sfx}{suffix}_body(d, a, out);\n}}")?;
    } else {
        writeln!(out, "/// Decodes `{name}` ({what}) into the arena.\npub fn decode_{sfx}{suffix}<'a>(d: &mut Decoder<'_>, a: &'a Bump, out: &mut {ty_a}) {{\nlet _ = (&d, &a, &out);\n{body}}}")?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn emit_synth_pair(
    model: &Model,
    sfx: &str,
    stype: Option<i64>,
    chain_member: Option<&(&Decl, Kind)>,
    scope: &Scope,
    suffix: &str,
    body: &str,
    partial: bool,
    out: &mut String,
) -> Result<()> {
    if let Some(st) = stype {
        let (cm, ck) = chain_member.ok_or_else(|| anyhow!("no pNext"))?;
        let mut ch = String::new();
        synth_member(model, scope, cm, ck, partial, &mut ch)?;
        writeln!(out, "#[cfg(feature = \"synth\")]\n#[allow(unused_variables)]\npub fn synth_{sfx}{suffix}_body(s: &mut Synth) {{\n{body}}}")?;
        writeln!(out, "#[cfg(feature = \"synth\")]\npub fn synth_{sfx}{suffix}(s: &mut Synth) {{\ns.i32({st});\n{ch}synth_{sfx}{suffix}_body(s);\n}}")?;
    } else {
        writeln!(out, "#[cfg(feature = \"synth\")]\n#[allow(unused_variables)]\npub fn synth_{sfx}{suffix}(s: &mut Synth) {{\nlet _ = &s;\n{body}}}")?;
    }
    Ok(())
}
