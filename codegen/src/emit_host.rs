//! Emits `host_calls.rs`: what the host needs to run a decoded command against its
//! driver — a table of driver entry points, one call per command, the reply
//! encoder by command, and the handle slots a command creates or destroys.

use std::fmt::Write;

use anyhow::Result;

use crate::emit_cmd::emit_param_call_list;
use crate::emit_struct::Scope;
use crate::model::{Decl, Model};
use crate::names::*;
use crate::plan::{Kind, Param, Plan};

/// Commands that only exist in the Venus private protocol (no driver entry point).
fn is_private(name: &str) -> bool {
    name.ends_with("MESA")
}

pub fn host_calls(model: &Model, plan: &Plan) -> Result<String> {
    let mut s = String::from("//! Host-side helpers: driver entry points by command type, one driver call per\n//! command, the reply encoder by command, and created/destroyed handle slots.\n#![allow(clippy::all, unused_variables, unused_unsafe)]\nuse super::*;\nuse crate::encoder::Encoder;\nuse ash::vk;\nuse ash::vk::Handle;\nuse core::ffi::CStr;\n\n");
    let max = plan
        .commands
        .iter()
        .map(|(e, _, _)| e.number)
        .max()
        .unwrap_or(0)
        + 1;
    writeln!(
        s,
        "/// One past the highest command type.\npub const COMMAND_TYPE_COUNT: usize = {max};"
    )?;
    writeln!(s, "/// (entry point name, command type) of every command the driver implements, aliases included.\npub const DRIVER_ENTRY_POINTS: &[(&CStr, u32)] = &[")?;
    for (e, _, _) in &plan.commands {
        if is_private(&e.name) {
            continue;
        }
        writeln!(s, "(c\"{}\", {}),", e.name, e.number)?;
        for al in &e.aliases {
            writeln!(s, "(c\"{al}\", {}),", e.number)?;
        }
    }
    writeln!(s, "];")?;
    s.push_str("/// What a driver call returned.\n#[derive(Clone, Copy, Debug, PartialEq, Eq)]\npub enum CallRet {\n/// `void` commands.\nVoid,\n/// A `VkResult`.\nResult(vk::Result),\n/// A `uint64_t` / `VkDeviceAddress`.\nU64(u64),\n}\nimpl CallRet {\n/// The VkResult (SUCCESS for other kinds).\npub fn result(self) -> vk::Result { match self { CallRet::Result(r) => r, _ => vk::Result::SUCCESS } }\n/// The u64 (0 for other kinds).\npub fn u64(self) -> u64 { match self { CallRet::U64(v) => v, _ => 0 } }\n}\n");
    s.push_str("/// Driver entry points indexed by command type.\npub struct DispatchTable {\nfns: Vec<vk::PFN_vkVoidFunction>,\n}\nimpl DispatchTable {\n/// Looks every entry point up with `get` (a `vkGet*ProcAddr`), trying aliases in turn.\npub fn load(mut get: impl FnMut(&CStr) -> vk::PFN_vkVoidFunction) -> Self {\nlet mut fns: Vec<vk::PFN_vkVoidFunction> = vec![None; COMMAND_TYPE_COUNT];\nfor (name, number) in DRIVER_ENTRY_POINTS {\nif let Some(slot) = fns.get_mut(*number as usize) { if slot.is_none() { *slot = get(name); } }\n}\nDispatchTable { fns }\n}\n/// Whether the driver has command `number`.\npub fn has(&self, number: u32) -> bool { self.get(number).is_some() }\n/// The raw entry point of command `number`.\npub fn get(&self, number: u32) -> vk::PFN_vkVoidFunction { self.fns.get(number as usize).copied().flatten() }\n}\n");

    let mut calls = String::new();
    let mut replies = String::new();
    let mut outs = String::new();
    let mut firsts = String::new();
    let mut destroys = String::new();
    let mut required = String::new();
    for (e, params, ret) in &plan.commands {
        let v = variant(&e.name);
        let f = cmd_fn(&e.name);
        let decls: Vec<Decl> = params.iter().map(|p| p.decl.clone()).collect();
        let sc = Scope {
            decls: &decls,
            prefix: "x.",
            owner: &e.name,
        };
        // reply
        let ret_arg = match ret.as_deref() {
            None => "",
            Some("VkResult") => ", ret.result()",
            Some(_) => ", ret.u64()",
        };
        writeln!(
            replies,
            "Command::{v}(x) => encode_reply_{f}(e, x{ret_arg}),"
        )?;
        // first dispatchable handle
        if let Some(Param {
            kind:
                Kind::Handle {
                    name,
                    dispatchable: true,
                },
            output: false,
            ..
        }) = params.first()
        {
            writeln!(
                firsts,
                "Command::{v}(x) => Some(({}, x.{}.as_raw())),",
                object_type(name),
                field(&params[0].name)
            )?;
        }
        // destroyed handle
        if e.name.starts_with("vkDestroy") || e.name == "vkFreeMemory" {
            let hs: Vec<&Param> = params
                .iter()
                .filter(|p| !p.output && matches!(p.kind, Kind::Handle { .. }))
                .collect();
            if let Some(p) = hs.last() {
                if let Kind::Handle { name, .. } = &p.kind {
                    writeln!(
                        destroys,
                        "Command::{v}(x) => Some(({}, x.{}.as_raw())),",
                        object_type(name),
                        field(&p.name)
                    )?;
                }
            }
        }
        // required pointers: the driver may dereference them unconditionally
        let mut req = String::new();
        for p in params.iter().filter(|p| !p.optional) {
            let x = format!("x.{}", field(&p.name));
            match &p.kind {
                Kind::Handle { .. } => {
                    writeln!(
                        req,
                        "if {x}.as_raw() == 0 {{ return Some(\"{}\"); }}",
                        p.name
                    )?;
                }
                Kind::Pointer(_) | Kind::String => {
                    writeln!(req, "if {x}.is_null() {{ return Some(\"{}\"); }}", p.name)?;
                }
                Kind::Array(_, l) | Kind::Blob(l) | Kind::StringArray(l) => {
                    writeln!(
                        req,
                        "if {x}.is_null() && {} != 0 {{ return Some(\"{}\"); }}",
                        sc.len(l),
                        p.name
                    )?;
                }
                _ => {}
            }
        }
        if !req.is_empty() {
            writeln!(required, "Command::{v}(x) => {{ {req} None }}")?;
        }
        // output handle slots
        let mut body = String::new();
        for p in params.iter().filter(|p| p.output) {
            let x = format!("x.{}", field(&p.name));
            match &p.kind {
                Kind::Pointer(el) => {
                    if let Kind::Handle { name, .. } = &**el {
                        writeln!(
                            body,
                            "if !{x}.is_null() {{ f({}, {x}.cast()); }}",
                            object_type(name)
                        )?;
                    }
                }
                Kind::Array(el, l) => {
                    if let Kind::Handle { name, .. } = &**el {
                        writeln!(body, "if !{x}.is_null() {{ for i in 0..{} {{ f({}, {x}.add(i).cast()); }} }}", sc.len(l), object_type(name))?;
                    }
                }
                _ => {}
            }
        }
        if !body.is_empty() {
            writeln!(outs, "Command::{v}(x) => {{ {body} }}")?;
        }
        // driver call
        if is_private(&e.name) {
            continue;
        }
        let args: Vec<String> = params
            .iter()
            .map(|p| match &p.kind {
                Kind::FixedScalars(..) => format!("&x.{}", field(&p.name)),
                _ => format!("x.{}", field(&p.name)),
            })
            .collect();
        let _ = emit_param_call_list;
        let wrap = match ret.as_deref() {
            None => "CallRet::Void",
            Some("VkResult") => "CallRet::Result(r)",
            Some(_) => "CallRet::U64(r)",
        };
        let bind = if ret.is_none() { "let () =" } else { "let r =" };
        writeln!(calls, "Command::{v}(x) => {{ let p = t.get({})?;\n// SAFETY: the table holds the driver's `{}` under this number.\nlet fp: vk::PFN_{} = unsafe {{ core::mem::transmute(p) }};\n// SAFETY: the caller guarantees the arguments are valid for the driver.\n{bind} unsafe {{ fp({}) }};\nSome({wrap}) }}", e.number, e.name, model.command_alias.get(&e.name).unwrap_or(&e.name), args.join(", "))?;
    }
    writeln!(s, "/// Calls the driver's entry point for `cmd`; `None` if the table lacks it or the\n/// command is private to Venus.\n///\n/// # Safety\n/// Every handle in `cmd` must be a live host handle of the table's instance/device\n/// and every pointer valid, as a decoder with a resolver leaves them.\npub unsafe fn call_command(t: &DispatchTable, cmd: &Command<'_>) -> Option<CallRet> {{\nmatch cmd {{\n{calls}_ => None,\n}}\n}}")?;
    writeln!(s, "/// Encodes the reply of `cmd` from its (driver-filled) output parameters.\n///\n/// # Safety\n/// Output pointers in `cmd` must be valid (as the decoder leaves them).\npub unsafe fn encode_reply_command(e: &mut Encoder<'_>, cmd: &Command<'_>, ret: CallRet) {{\n// SAFETY: forwarded caller contract.\nunsafe {{\nmatch cmd {{\n{replies}}}\n}}\n}}")?;
    writeln!(s, "impl Command<'_> {{\n/// The first parameter when it is a dispatchable handle: it selects the driver's dispatch table.\npub fn dispatch_handle(&self) -> Option<(vk::ObjectType, u64)> {{\nmatch self {{\n{firsts}_ => None,\n}}\n}}\n/// The first required (non-optional) pointer or handle parameter that is NULL
/// although the driver would dereference it (arrays only when their count is
/// nonzero). Handles inside structs are not checked here.
pub fn missing_required_pointer(&self) -> Option<&'static str> {{
// SAFETY: pointers in `self` are valid or null (as the decoder leaves them).
unsafe {{
match self {{
{required}_ => None,
}}
}}
}}
/// For `vkDestroy*` and `vkFreeMemory`: the handle being destroyed.\npub fn destroyed_handle(&self) -> Option<(vk::ObjectType, u64)> {{\nmatch self {{\n{destroys}_ => None,\n}}\n}}\n/// Visits every output handle slot (the ids of objects the command creates), as a\n/// pointer to the 8-byte slot.\n///\n/// # Safety\n/// Pointers in `self` must be valid (as the decoder leaves them).\npub unsafe fn output_handles(&self, f: &mut dyn FnMut(vk::ObjectType, *mut u64)) {{\n// SAFETY: forwarded caller contract.\nunsafe {{\nmatch self {{\n{outs}_ => {{}}\n}}\n}}\n}}\n}}")?;
    Ok(s)
}
