//! Emits `guest_calls.rs`: one generic `extern "system"` entry point per command
//! for a guest ICD. Each assigns ids to the objects it creates, hands the encoder
//! and the reply decoder to the ICD's runtime (a [`GuestRuntime`] type parameter),
//! and returns what the reply said. The ICD overrides the entry points that need
//! guest-side state (dispatchable objects, memory mapping, command recording).

use std::fmt::Write;

use anyhow::Result;

use crate::emit_cmd::param_ty;
use crate::emit_struct::Scope;
use crate::model::{Decl, Model};
use crate::names::*;
use crate::plan::{Kind, Plan};

pub fn guest_calls(model: &Model, plan: &Plan) -> Result<String> {
    let mut s = String::from("//! Guest-side entry points: a generic `extern \"system\"` function per command,\n//! parameterized by the ICD's [`GuestRuntime`].\n#![allow(clippy::all, unused_variables, unused_mut, unused_unsafe, non_snake_case)]\nuse super::*;\nuse crate::decoder::Decoder;\nuse crate::encoder::Encoder;\nuse ash::vk;\nuse ash::vk::Handle;\nuse core::ffi::CStr;\n\n");
    s.push_str("/// What the caller needs back from the host.\n#[derive(Clone, Copy, Debug, PartialEq, Eq)]\npub enum ReplyKind {\n/// Nothing: `void` and no outputs.\nNone,\n/// Only a `VkResult` (the runtime decides whether it is worth a round trip).\nResult,\n/// Output data or a returned value: always a round trip.\nOutputs,\n}\n/// Static facts about a command, for the runtime.\n#[derive(Clone, Copy, Debug)]\npub struct CallInfo {\n/// The command type.\npub number: u32,\n/// The command name.\npub name: &'static str,\n/// What the caller needs back.\npub kind: ReplyKind,\n}\n/// The ICD side of the generated entry points.\npub trait GuestRuntime {\n/// A fresh object id (never 0, never reused).\nfn next_id() -> u64;\n/// Sends one command. `first` is the raw value of the command's first parameter\n/// when it is a dispatchable handle (0 otherwise). `encode(e, flags)` writes the\n/// command; when the runtime waits for a reply it calls `decode` on it and returns\n/// `Ok(true)`; `Ok(false)` means sent without waiting; `Err` is the failure to\n/// report (e.g. `ERROR_DEVICE_LOST`).\nfn submit(info: &CallInfo, first: u64, encode: &mut dyn FnMut(&mut Encoder<'_>, u32), decode: &mut dyn FnMut(&mut Decoder<'_>)) -> Result<bool, vk::Result>;\n}\n\n");
    let mut table = String::new();
    for (e, params, ret) in &plan.commands {
        if e.name.ends_with("MESA") {
            continue;
        }
        let f = cmd_fn(&e.name);
        let decls: Vec<Decl> = params.iter().map(|p| p.decl.clone()).collect();
        let sc = Scope {
            decls: &decls,
            prefix: "",
            owner: &e.name,
        };
        let mut sig = Vec::new();
        let mut call_args = Vec::new();
        for p in params {
            let x = field(&p.name);
            match &p.kind {
                Kind::FixedScalars(sc_, n) => {
                    sig.push(format!("{x}: *const [{}; {n}]", scalar_ty(sc_)));
                    call_args.push(format!("{{\n// SAFETY: the caller passes a pointer to {n} values.\nunsafe {{ *{x} }} }}"));
                }
                _ => {
                    sig.push(format!("{x}: {}", param_ty(model, p, "'_")));
                    call_args.push(x);
                }
            }
        }
        let data_outputs = params.iter().any(|p| {
            p.output
                && !matches!(&p.kind, Kind::Pointer(el) | Kind::Array(el, _) if matches!(**el, Kind::Handle { .. }))
        });
        let (ret_ty, ret_init, ret_ok, ret_err, kind) = match ret.as_deref() {
            None => (
                "",
                "()",
                "()",
                "()",
                if data_outputs { "Outputs" } else { "None" },
            ),
            Some("VkResult") => (
                " -> vk::Result",
                "vk::Result::SUCCESS",
                "vk::Result::SUCCESS",
                "e",
                if data_outputs { "Outputs" } else { "Result" },
            ),
            Some(_) => (" -> u64", "0", "0", "0", "Outputs"),
        };
        let first = match params.first() {
            Some(p)
                if matches!(
                    p.kind,
                    Kind::Handle {
                        dispatchable: true,
                        ..
                    }
                ) && !p.output =>
            {
                format!("{}.as_raw() as u64", field(&p.name))
            }
            _ => "0".into(),
        };
        let mut fill = String::new();
        for p in params.iter().filter(|p| p.output) {
            let x = field(&p.name);
            match &p.kind {
                Kind::Pointer(el) => {
                    if let Kind::Handle {
                        name,
                        dispatchable: false,
                    } = &**el
                    {
                        writeln!(fill, "if !{x}.is_null() {{\n// SAFETY: valid pointers per the Vulkan valid-usage rules the caller follows.\nunsafe {{ *{x} = {}::from_raw(R::next_id()) }}; }}", type_path(model, name))?;
                    }
                }
                Kind::Array(el, l) => {
                    if let Kind::Handle {
                        name,
                        dispatchable: false,
                    } = &**el
                    {
                        writeln!(fill, "if !{x}.is_null() {{ for i in 0..{} {{\n// SAFETY: valid pointers per the Vulkan valid-usage rules the caller follows.\nunsafe {{ *{x}.add(i) = {}::from_raw(R::next_id()) }}; }} }}", sc.len(l), type_path(model, name))?;
                    }
                }
                _ => {}
            }
        }
        let args = call_args.join(", ");
        let dec = if ret.is_some() {
            format!("// SAFETY: the caller's output pointers are valid for its counts.\nret = unsafe {{ decode_reply_{f}(d_, {args}) }};")
        } else {
            format!("// SAFETY: the caller's output pointers are valid for its counts.\nunsafe {{ decode_reply_{f}(d_, {args}) }};")
        };
        writeln!(s, "/// `{}` through the runtime.\n///\n/// # Safety\n/// The Vulkan valid-usage rules for `{}`.\npub unsafe extern \"system\" fn {f}<R: GuestRuntime>({}){ret_ty} {{\nconst INFO: CallInfo = CallInfo {{ number: {}, name: \"{}\", kind: ReplyKind::{kind} }};\n{fill}let mut ret = {ret_init};\nlet r = R::submit(&INFO, {first}, &mut |e_: &mut Encoder<'_>, cmd_flags_: u32| {{\n// SAFETY: the caller's pointers are valid per the Vulkan valid-usage rules.\nunsafe {{ encode_{f}(e_, cmd_flags_, {args}) }} }}, &mut |d_: &mut Decoder<'_>| {{ {dec} }});\nmatch r {{ Ok(true) => ret, Ok(false) => {ret_ok}, Err(e) => {{ let _ = e; {ret_err} }} }}\n}}", e.name, e.name, sig.join(", "), e.number, e.name)?;
        let pfn = model.command_alias.get(&e.name).unwrap_or(&e.name);
        let mut names = vec![format!("b\"{}\"", e.name)];
        for al in &e.aliases {
            names.push(format!("b\"{al}\""));
        }
        writeln!(table, "{} => Some(\n// SAFETY: same ABI and parameters as the PFN type; the loader calls it as such.\nunsafe {{ core::mem::transmute::<vk::PFN_{pfn}, unsafe extern \"system\" fn()>({f}::<R>) }}),", names.join(" | "))?;
    }
    writeln!(s, "/// The generated entry point named `name` (aliases included), or `None`.\npub fn entry_point<R: GuestRuntime>(name: &CStr) -> vk::PFN_vkVoidFunction {{\nmatch name.to_bytes() {{\n{table}_ => None,\n}}\n}}")?;
    Ok(s)
}
