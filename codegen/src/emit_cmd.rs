//! Emits the per-command functions: the guest's command encoder and reply decoder,
//! the host's command decoder (into an args struct) and reply encoder, and the
//! test-only synthesizer.

use std::fmt::Write;

use anyhow::{anyhow, Result};

use crate::emit_struct::*;
use crate::model::{Decl, Model};
use crate::names::*;
use crate::plan::{CommandEntry, Kind, Len, Param};

pub fn param_ty(model: &Model, p: &Param, lt: &str) -> String {
    let d = &p.decl;
    let ptr = if d.is_const { "*const" } else { "*mut" };
    match &p.kind {
        Kind::Scalar(s) => scalar_ty(s),
        Kind::Handle { name, .. } => type_path(model, name),
        Kind::Struct(s) | Kind::Union(s) => struct_ty(model, s, lt),
        Kind::String => "*const core::ffi::c_char".into(),
        Kind::StringArray(_) => "*const *const core::ffi::c_char".into(),
        Kind::Blob(_) => format!("{ptr} core::ffi::c_void"),
        Kind::Array(el, _) | Kind::Pointer(el) => format!("{ptr} {}", elem_ty(model, el, lt)),
        Kind::Allocator => format!("*const vk::AllocationCallbacks<{lt}>"),
        Kind::FixedScalars(s, n) => format!("[{}; {n}]", scalar_ty(s)),
        k => format!("/* unsupported {k:?} */ u32"),
    }
}

fn is_counter(params: &[Param], name: &str) -> bool {
    params.iter().any(|q| match &q.kind {
        Kind::Array(_, l) | Kind::Blob(l) | Kind::StringArray(l) => l.counter() == Some(name),
        _ => false,
    })
}

/// If `stride_param` is the byte stride of an array parameter, that array's element type.
fn strided_elem(model: &Model, params: &[Param], stride_param: &str) -> Option<String> {
    params
        .iter()
        .find(|q| q.decl.stride.as_deref() == Some(stride_param))
        .and_then(|q| match &q.kind {
            Kind::Array(el, _) => Some(elem_ty(model, el, "'_")),
            _ => None,
        })
}

pub fn emit_command(
    model: &Model,
    entry: &CommandEntry,
    params: &[Param],
    ret: Option<&str>,
) -> Result<String> {
    let mut out = String::new();
    let name = &entry.name;
    let num = entry.number;
    let f = cmd_fn(name);
    let args = args_struct(name);
    let decls: Vec<Decl> = params.iter().map(|p| p.decl.clone()).collect();
    let local = Scope {
        decls: &decls,
        prefix: "",
        owner: name,
    };
    let scope_a = Scope {
        decls: &decls,
        prefix: "args.",
        owner: name,
    };
    let ret_ty = match ret {
        None => None,
        Some("VkResult") => Some((
            "vk::Result",
            "e.i32(ret.as_raw());",
            "vk::Result::from_raw(d.i32())",
        )),
        Some("uint64_t") | Some("VkDeviceAddress") => Some(("u64", "e.u64(ret);", "d.u64()")),
        Some(other) => return Err(anyhow!("{name}: unsupported return type {other}")),
    };

    // ---- guest: command encoder
    let sig: Vec<String> = params
        .iter()
        .map(|p| format!("{}: {}", field(&p.name), param_ty(model, p, "'_")))
        .collect();
    let mut body = String::new();
    for p in params {
        let x = field(&p.name);
        if !p.output {
            if let (Some(_), Kind::Array(el, l)) = (&p.decl.stride, &p.kind) {
                // Walked with the caller's byte stride, sent packed.
                let stride = field(p.decl.stride.as_deref().unwrap_or(""));
                let mut inner = String::new();
                enc_value(model, el, "(*el)", &mut inner)?;
                writeln!(body, "if {x}.is_null() {{ e.size(0); }} else {{ let n = {};\ne.size(n);\nfor i in 0..n {{ {SAFETY}\nlet el = unsafe {{ &*({x}.cast::<u8>().add(i * {stride} as usize).cast::<{}>()) }};\n{inner} }} }}", local.len(l), elem_ty(model, el, "'_"))?;
                continue;
            }
            if let Some(el) = strided_elem(model, params, &p.name) {
                writeln!(body, "e.u32(core::mem::size_of::<{el}>() as u32);")?;
                continue;
            }
            enc_member(model, &local, &p.decl, &p.kind, &mut body)?;
            continue;
        }
        match &p.kind {
            Kind::Pointer(el) => match &**el {
                Kind::Scalar(s) => {
                    if is_counter(params, &p.name) {
                        writeln!(body, "{SAFETY}\nmatch unsafe {{ {x}.as_ref() }} {{ None => e.present(false), Some(v) => {{ e.present(true); {} }} }}", enc_scalar(s, "(*v)"))?;
                    } else {
                        writeln!(body, "e.present(!{x}.is_null());")?;
                    }
                }
                Kind::Handle { .. } => writeln!(body, "{SAFETY}\nmatch unsafe {{ {x}.as_ref() }} {{ None => e.present(false), Some(v) => {{ e.present(true); e.u64(v.as_raw()); }} }}")?,
                Kind::Struct(s) => writeln!(body, "{SAFETY}\nmatch unsafe {{ {x}.as_ref() }} {{ None => e.present(false), Some(v) => {{ e.present(true); {SAFETY}\nunsafe {{ encode_{}_partial(e, v) }}; }} }}", fn_suffix(s))?,
                k => return Err(anyhow!("{name}: output pointer {k:?}")),
            },
            Kind::Array(el, l) => {
                let inner = match &**el {
                    Kind::Handle { dispatchable, .. } => format!("{SAFETY}\nfor v in unsafe {{ crate::slice({x}, n) }} {{ e.{}(v.as_raw()); }}", if *dispatchable { "dispatchable" } else { "u64" }),
                    Kind::Struct(s) => format!("{SAFETY}\nfor v in unsafe {{ crate::slice({x}, n) }} {{ {SAFETY}\nunsafe {{ encode_{}_partial(e, v) }}; }}", fn_suffix(s)),
                    _ => String::new(),
                };
                writeln!(body, "if {x}.is_null() {{ e.size(0); }} else {{ let n = {};\ne.size(n);\n{inner} }}", local.len(l))?;
            }
            Kind::Blob(l) => writeln!(body, "e.size(if {x}.is_null() {{ 0 }} else {{ {} }});", local.len(l))?,
            k => return Err(anyhow!("{name}: output {k:?}")),
        }
    }
    writeln!(out, "/// Encodes `{name}` (command type {num}).\n///\n/// # Safety\n/// Pointer arguments must be valid as the Vulkan specification requires of `{name}`.\n#[allow(clippy::too_many_arguments, unused_variables)]\npub unsafe fn encode_{f}(e: &mut Encoder<'_>, cmd_flags: u32, {}) {{\ne.i32({num});\ne.u32(cmd_flags);\n{body}}}", sig.join(", "))?;

    // ---- args struct
    let fields: Vec<String> = params
        .iter()
        .map(|p| format!("pub {}: {},", field(&p.name), param_ty(model, p, "'a")))
        .collect();
    let defaults: Vec<String> = params
        .iter()
        .map(|p| {
            let v = match &p.kind {
                Kind::Scalar(_)
                | Kind::Handle { .. }
                | Kind::Struct(_)
                | Kind::Union(_)
                | Kind::FixedScalars(..) => "Default::default()".to_string(),
                _ => "core::ptr::null_mut()".to_string(),
            };
            format!("{}: {v},", field(&p.name))
        })
        .collect();
    writeln!(out, "/// The parameters of `{name}` as the host decoded them; pointers point into the decode arena.\n#[derive(Clone, Copy, Debug)]\npub struct {args}<'a> {{\n{}\npub _arena: core::marker::PhantomData<&'a ()>,\n}}", fields.join("\n"))?;
    writeln!(out, "impl Default for {args}<'_> {{\nfn default() -> Self {{\nSelf {{ {} _arena: core::marker::PhantomData }}\n}}\n}}", defaults.join(" "))?;

    // ---- host: command decoder
    let mut body = String::new();
    for p in params {
        let x = scope_a.val(&p.name);
        if !p.output {
            dec_member(model, &scope_a, &p.decl, &p.kind, &mut body)?;
            continue;
        }
        match &p.kind {
            Kind::Pointer(el) => {
                let init = init_of(model, el);
                let fill = match &**el {
                    Kind::Scalar(s) if is_counter(params, &p.name) => {
                        format!("*el = {};", dec_scalar(s))
                    }
                    Kind::Scalar(_) => String::new(),
                    Kind::Handle { name: h, .. } => {
                        format!("*el = {}::from_raw(d.u64());", type_path(model, h))
                    }
                    Kind::Struct(s) => format!("decode_{}_partial(d, a, el);", fn_suffix(s)),
                    k => return Err(anyhow!("{k:?}")),
                };
                writeln!(body, "if d.present() {{ let arr = d.alloc_output(a, 1, {init});\nif let Some(el) = arr.first_mut() {{ {fill} }}\nif !arr.is_empty() {{ {x} = arr.as_mut_ptr(); }} }}")?;
            }
            Kind::Array(el, l) => {
                let init = init_of(model, el);
                let fill = match &**el {
                    Kind::Handle { name: h, .. } => format!(
                        "for el in arr.iter_mut() {{ *el = {}::from_raw(d.u64()); }}",
                        type_path(model, h)
                    ),
                    Kind::Struct(s) => format!(
                        "for el in arr.iter_mut() {{ decode_{}_partial(d, a, el); }}",
                        fn_suffix(s)
                    ),
                    _ => String::new(),
                };
                writeln!(body, "{{ let n = d.array_len({} as u64, false);\nif n != 0 {{ let arr = d.alloc_output(a, n, {init});\n{fill}\nif !arr.is_empty() {{ {x} = arr.as_mut_ptr(); }} }} }}", scope_a.len(l))?;
            }
            Kind::Blob(l) => {
                writeln!(body, "{{ let n = d.array_len({} as u64, false);\nif n != 0 {{ let arr = d.alloc_output(a, n, 0u8);\nif !arr.is_empty() {{ {x} = arr.as_mut_ptr() as _; }} }} }}", scope_a.len(l))?;
            }
            k => return Err(anyhow!("{name}: output {k:?}")),
        }
    }
    writeln!(out, "/// Decodes the parameters of `{name}` (after the command header) into the arena.\npub fn decode_{f}<'a>(d: &mut Decoder<'_>, a: &'a Bump) -> {args}<'a> {{\nlet mut a_ = {args}::default();\n{{ let a_ref = &mut a_; decode_{f}_into_args(d, a, a_ref); }}\na_\n}}")?;
    writeln!(out, "fn decode_{f}_into_args<'a>(d: &mut Decoder<'_>, a: &'a Bump, args: &mut {args}<'a>) {{\nlet _ = (&d, &a);\n{body}}}")?;

    // ---- host: reply encoder
    let mut body = String::new();
    for p in params.iter().filter(|p| p.output) {
        let x = format!("args.{}", field(&p.name));
        let sc = Scope {
            decls: &decls,
            prefix: "args.",
            owner: name,
        };
        match &p.kind {
            Kind::Pointer(el) => {
                let mut inner = String::new();
                enc_value(model, el, "(*v)", &mut inner)?;
                writeln!(body, "{SAFETY}\nmatch unsafe {{ {x}.as_ref() }} {{ None => e.present(false), Some(v) => {{ e.present(true); {inner} }} }}")?;
            }
            Kind::Array(..) | Kind::Blob(_) => enc_member(model, &sc, &p.decl, &p.kind, &mut body)?,
            k => return Err(anyhow!("{k:?}")),
        }
    }
    let (ret_param, ret_enc) = match ret_ty {
        Some((t, enc, _)) => (format!(", ret: {t}"), enc.to_string()),
        None => (String::new(), String::new()),
    };
    writeln!(out, "/// Encodes the reply of `{name}` from the (driver-filled) output parameters.\n///\n/// # Safety\n/// Output pointers in `args` must be valid (as `decode_{f}` leaves them).\npub unsafe fn encode_reply_{f}(e: &mut Encoder<'_>, args: &{args}<'_>{ret_param}) {{\nlet _ = &args;\ne.i32({num});\n{ret_enc}\n{body}}}")?;

    // ---- guest: reply decoder
    let mut body = String::new();
    for p in params.iter().filter(|p| p.output) {
        let x = field(&p.name);
        if is_counter(params, &p.name) {
            writeln!(body, "let cap_{x}: usize = if {x}.is_null() {{ 0 }} else {{ {SAFETY}\nunsafe {{ *{x} as usize }} }};")?;
        }
    }
    for p in params.iter().filter(|p| p.output) {
        let x = field(&p.name);
        match &p.kind {
            Kind::Pointer(el) => {
                let fill = match &**el {
                    Kind::Scalar(s) => format!("{SAFETY}\nunsafe {{ *{x} = {} }};", dec_scalar(s)),
                    Kind::Handle { .. } => "d.u64();".into(),
                    Kind::Struct(s) => format!(
                        "{SAFETY}\nunsafe {{ decode_into_{}(d, &mut *{x}) }};",
                        fn_suffix(s)
                    ),
                    k => return Err(anyhow!("{k:?}")),
                };
                writeln!(body, "if d.present() {{ if {x}.is_null() {{ d.fail(crate::DecodeError::ReplyOverflow); }} else {{ {fill} }} }}")?;
            }
            Kind::Array(_, l) | Kind::Blob(l) => {
                let is_blob = matches!(p.kind, Kind::Blob(_));
                let el: &Kind = match &p.kind {
                    Kind::Array(el, _) => el,
                    _ => &Kind::Chain,
                };
                let cap = match l {
                    Len::Member(c) | Len::Deref(c)
                        if params.iter().any(|q| q.name == *c && q.output) =>
                    {
                        format!("cap_{}", field(c))
                    }
                    _ => local.len(l),
                };
                let fill = if is_blob {
                    format!(
                        "{SAFETY}\nd.read_bytes(unsafe {{ crate::slice_mut({x} as *mut u8, n) }});"
                    )
                } else {
                    match el {
                        Kind::Scalar(s) => format!("{SAFETY}\nfor el in unsafe {{ crate::slice_mut({x}, n) }} {{ *el = {}; }}", dec_scalar(s)),
                        Kind::Handle { .. } => "for _ in 0..n { d.u64(); }".into(),
                        Kind::Struct(s) => format!("{SAFETY}\nfor el in unsafe {{ crate::slice_mut({x}, n) }} {{ {SAFETY}\nunsafe {{ decode_into_{}(d, el) }}; }}", fn_suffix(s)),
                        k => return Err(anyhow!("{k:?}")),
                    }
                };
                writeln!(body, "if d.peek_u64() != 0 {{ let n = d.array_len({} as u64, false);\nif n > {cap} || {x}.is_null() {{ d.fail(crate::DecodeError::ReplyOverflow); }} else {{ {fill} }} }} else {{ d.u64(); }}", local.len(l))?;
            }
            k => return Err(anyhow!("{k:?}")),
        }
    }
    let (rt, rdec, rend) = match ret_ty {
        Some((t, _, dec)) => (
            format!(" -> {t}"),
            format!("let ret = {dec};"),
            "ret".to_string(),
        ),
        None => (String::new(), String::new(), String::new()),
    };
    writeln!(out, "/// Decodes the reply of `{name}` into the caller's output parameters.\n///\n/// # Safety\n/// Output pointers must be valid for the counts the caller passed.\n#[allow(clippy::too_many_arguments, unused_variables)]\npub unsafe fn decode_reply_{f}(d: &mut Decoder<'_>, {}){rt} {{\nd.reply_header({num});\n{rdec}\n{body}{rend}\n}}", sig.join(", "))?;

    // ---- synth
    let mut body = String::new();
    for p in params {
        if !p.output {
            if let Some(el) = strided_elem(model, params, &p.name) {
                writeln!(body, "s.u32(core::mem::size_of::<{el}>() as u32);")?;
                continue;
            }
            synth_member(model, &local, &p.decl, &p.kind, false, &mut body)?;
            continue;
        }
        let cx = format!("c_{}", field(&p.name));
        match &p.kind {
            Kind::Pointer(el) => match &**el {
                Kind::Scalar(s) if is_counter(params, &p.name) => writeln!(
                    body,
                    "s.present(true); let {cx} = s.count(\"{}\"); {}",
                    p.name,
                    synth_scalar_write(s, &cx)
                )?,
                Kind::Scalar(_) => writeln!(body, "s.present(true);")?,
                Kind::Handle { .. } => writeln!(body, "s.present(true); s.id();")?,
                Kind::Struct(s) => {
                    writeln!(body, "s.present(true); synth_{}_partial(s);", fn_suffix(s))?
                }
                _ => {}
            },
            Kind::Array(_, l) | Kind::Blob(l) => {
                let el: &Kind = match &p.kind {
                    Kind::Array(el, _) => el,
                    _ => &Kind::Chain,
                };
                let n = match l {
                    Len::Member(c) | Len::Deref(c) => format!("(c_{} as usize)", field(c)),
                    Len::Field(_, fl) => format!("(s.last(\"{fl}\") as usize)"),
                    _ => "0".into(),
                };
                let inner = match (&p.kind, el) {
                    (Kind::Array(..), Kind::Handle { .. }) => {
                        "for _ in 0..n { s.id(); }".to_string()
                    }
                    (Kind::Array(..), Kind::Struct(s)) => {
                        format!("for _ in 0..n {{ synth_{}_partial(s); }}", fn_suffix(s))
                    }
                    _ => String::new(),
                };
                writeln!(body, "{{ let n = {n}; s.size(n); {inner} }}")?;
            }
            _ => {}
        }
    }
    writeln!(out, "#[cfg(feature = \"synth\")]\n#[allow(unused_variables)]\npub fn synth_{f}(s: &mut Synth, cmd_flags: u32) {{\ns.i32({num});\ns.u32(cmd_flags);\n{body}}}")?;
    Ok(out)
}

pub fn emit_param_call_list(params: &[Param], prefix: &str) -> String {
    params
        .iter()
        .map(|p| format!("{prefix}{}", field(&p.name)))
        .collect::<Vec<_>>()
        .join(", ")
}
