//! What to generate: the Venus commands, the structs they reach (and in which
//! direction), the pNext chains each parent accepts and the gate of every chain
//! member.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{anyhow, Result};
use serde::Deserialize;

use crate::model::{Base, Decl, Model, Scalar, StructDef};

#[derive(Deserialize)]
pub struct CommandsToml {
    #[serde(rename = "command")]
    pub commands: Vec<CommandEntry>,
}

#[derive(Deserialize, Clone)]
pub struct CommandEntry {
    pub name: String,
    pub number: u32,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub group: Option<String>,
    #[serde(default)]
    pub never_sent: bool,
}

#[derive(Deserialize)]
pub struct ExtensionsToml {
    pub wire_format_version: u32,
    pub vk_xml_version: [u32; 3],
    #[serde(rename = "extension")]
    pub extensions: Vec<ExtensionEntry>,
}

#[derive(Deserialize, Clone)]
pub struct ExtensionEntry {
    pub name: String,
    pub number: u32,
    pub spec_version: u32,
}

/// When a chain member may be encoded, given the renderer's protocol info.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Gate {
    Always,
    Api13,
    Ext(u32),
    All(Vec<Gate>),
    Any(Vec<Gate>),
}

/// How one member or parameter is carried on the wire.
#[derive(Clone, Debug)]
pub enum Kind {
    Scalar(Scalar),
    Handle {
        name: String,
        dispatchable: bool,
    },
    Struct(String),
    Union(String),
    /// `char x[N]` / `uint8_t x[N]`.
    FixedBytes(usize),
    FixedScalars(Scalar, usize),
    FixedStructs(String, usize),
    FixedHandles(String, bool, usize),
    Chain,
    String,
    StringArray(Len),
    /// `void*` with a byte length.
    Blob(Len),
    Array(Box<Kind>, Len),
    Pointer(Box<Kind>),
    /// `pAllocator`: always `u64 0`.
    Allocator,
}

/// The length of an array, as a Rust expression builder.
#[derive(Clone, Debug)]
#[allow(dead_code)] // complete description; not every field drives emission yet
pub enum Len {
    /// Another member or parameter (a u32 count or a size_t).
    Member(String),
    /// `*pCount` of an output count parameter.
    Deref(String),
    /// `pInfo->count`.
    Field(String, String),
    /// `codeSize / 4`.
    Div4(String),
    /// `(samples + 31) / 32` of a VkSampleCountFlagBits member.
    SampleWords(String),
}

impl Len {
    pub fn counter(&self) -> Option<&str> {
        match self {
            Len::Member(m) | Len::Deref(m) | Len::Div4(m) | Len::SampleWords(m) => Some(m),
            Len::Field(_, _) => None,
        }
    }
}

pub struct Plan {
    pub commands: Vec<(CommandEntry, Vec<Param>, Option<String>)>,
    /// struct name -> (needs input/full forms, needs output/partial forms)
    pub structs: BTreeMap<String, Usage>,
    pub chains: BTreeMap<String, Vec<String>>,
    pub gates: BTreeMap<String, Gate>,
    pub group_of_struct: BTreeMap<String, String>,
    pub extensions: Vec<ExtensionEntry>,
    pub wire_format_version: u32,
    pub vk_xml_version: [u32; 3],
}

#[derive(Clone, Copy, Default, Debug)]
pub struct Usage {
    pub input: bool,
    pub output: bool,
}

#[derive(Clone, Debug)]
#[allow(dead_code)] // complete description; not every field drives emission yet
pub struct Param {
    pub name: String,
    pub kind: Kind,
    pub output: bool,
    pub optional: bool,
    pub decl: Decl,
}

pub fn kind_of(model: &Model, owner: &str, d: &Decl) -> Result<Kind> {
    let len = parse_len(d)?;
    if d.name == "pAllocator" {
        return Ok(Kind::Allocator);
    }
    if d.name == "pNext" {
        return Ok(Kind::Chain);
    }
    let elem = |b: &Base| -> Result<Kind> {
        Ok(match b {
            Base::Scalar(s) => Kind::Scalar(s.clone()),
            Base::Handle { name, dispatchable } => Kind::Handle {
                name: name.clone(),
                dispatchable: *dispatchable,
            },
            Base::Struct(s) => Kind::Struct(model.canonical_type(s).to_string()),
            Base::Union(s) => Kind::Union(s.clone()),
            Base::Char => Kind::Scalar(Scalar::U8),
            Base::Void => return Err(anyhow!("void element in {owner}.{}", d.name)),
        })
    };
    if let Some(n) = d.fixed {
        return Ok(match &d.base {
            Base::Char | Base::Scalar(Scalar::U8) => Kind::FixedBytes(n),
            Base::Scalar(s) => Kind::FixedScalars(s.clone(), n),
            Base::Struct(s) => Kind::FixedStructs(model.canonical_type(s).to_string(), n),
            Base::Handle { name, dispatchable } => {
                Kind::FixedHandles(name.clone(), *dispatchable, n)
            }
            _ => return Err(anyhow!("fixed array of {:?} in {owner}", d.base)),
        });
    }
    match d.pointers {
        0 => elem(&d.base),
        1 => match (&d.base, len) {
            (Base::Char, _) => Ok(Kind::String),
            (Base::Void, Some(l)) => Ok(Kind::Blob(l)),
            (Base::Void, None) => Err(anyhow!("untyped pointer {owner}.{}", d.name)),
            (b, Some(l)) => Ok(Kind::Array(Box::new(elem(b)?), l)),
            (b, None) => Ok(Kind::Pointer(Box::new(elem(b)?))),
        },
        2 if d.base == Base::Char => match len {
            Some(l) => Ok(Kind::StringArray(l)),
            None => Err(anyhow!("string array without length {owner}.{}", d.name)),
        },
        _ => Err(anyhow!("unsupported declaration {owner}.{}", d.name)),
    }
}

fn parse_len(d: &Decl) -> Result<Option<Len>> {
    let Some(len) = d.len.as_deref() else {
        return Ok(None);
    };
    let first = len.split(',').next().unwrap_or("");
    if first == "null-terminated" {
        return Ok(None);
    }
    if first.starts_with("latexmath") {
        let alt = d.altlen.as_deref().unwrap_or("");
        if let Some(m) = alt.strip_suffix(" / 4") {
            return Ok(Some(Len::Div4(m.trim().to_string())));
        }
        if let Some(rest) = alt.strip_prefix('(') {
            if let Some(m) = rest.strip_suffix(" + 31) / 32") {
                return Ok(Some(Len::SampleWords(m.trim().to_string())));
            }
        }
        return Err(anyhow!("unsupported length {alt} of {}", d.name));
    }
    if let Some((p, f)) = first.split_once("->") {
        return Ok(Some(Len::Field(p.to_string(), f.to_string())));
    }
    Ok(Some(Len::Member(first.to_string())))
}

/// Evaluates a vk.xml `depends` expression: `,` is OR, `+` is AND, parentheses group.
fn eval_depends(expr: &str, atom: &dyn Fn(&str) -> Option<Gate>) -> Option<Gate> {
    fn parse(
        s: &[u8],
        i: &mut usize,
        atom: &dyn Fn(&str) -> Option<Gate>,
    ) -> Vec<Vec<Option<Gate>>> {
        // returns OR of ANDs
        let mut ors = vec![vec![]];
        while *i < s.len() {
            match s[*i] {
                b'(' => {
                    *i += 1;
                    let inner = parse(s, i, atom);
                    if let Some(v) = ors.last_mut() {
                        v.push(combine(inner));
                    }
                }
                b')' => {
                    *i += 1;
                    return ors;
                }
                b',' => {
                    *i += 1;
                    ors.push(vec![]);
                }
                b'+' => *i += 1,
                _ => {
                    let start = *i;
                    while *i < s.len() && !b"(),+".contains(&s[*i]) {
                        *i += 1;
                    }
                    let name = String::from_utf8_lossy(&s[start..*i]).to_string();
                    if let Some(v) = ors.last_mut() {
                        v.push(atom(&name));
                    }
                }
            }
        }
        ors
    }
    fn combine(ors: Vec<Vec<Option<Gate>>>) -> Option<Gate> {
        let mut any = Vec::new();
        let mut any_true = false;
        for and in ors {
            let terms: Vec<Gate> = and.into_iter().flatten().collect();
            match terms.len() {
                0 => any_true = true,
                1 => any.extend(terms),
                _ => any.push(Gate::All(terms)),
            }
        }
        if any.is_empty() {
            return if any_true {
                None
            } else {
                Some(Gate::Any(vec![]))
            };
        }
        if any.len() == 1 {
            return any.pop();
        }
        Some(Gate::Any(any))
    }
    let mut i = 0;
    combine(parse(expr.as_bytes(), &mut i, atom))
}

pub fn build(model: &Model, cmds: &CommandsToml, exts: &ExtensionsToml) -> Result<Plan> {
    let supported: BTreeMap<String, u32> = exts
        .extensions
        .iter()
        .map(|e| (e.name.clone(), e.number))
        .collect();
    let version_ok = |f: &str| {
        matches!(
            f,
            "VK_VERSION_1_0" | "VK_VERSION_1_1" | "VK_VERSION_1_2" | "VK_VERSION_1_3"
        )
    };
    let satisfied = |dep: &Option<String>| -> bool {
        match dep {
            None => true,
            Some(d) => {
                // satisfaction: versions up to 1.3 and supported extensions are true
                let g = eval_depends(d, &|a| {
                    if version_ok(a) || supported.contains_key(a) {
                        None
                    } else {
                        Some(Gate::Any(vec![]))
                    }
                });
                g.is_none()
            }
        }
    };
    // Gate of every type that is part of the protocol level.
    let mut gates: BTreeMap<String, Gate> = BTreeMap::new();
    for (ty, reqs) in &model.type_requirements {
        let mut core_old = false;
        let mut core13 = false;
        let mut ext_gates = Vec::new();
        for r in reqs {
            if let Some(f) = &r.feature {
                if !satisfied(&r.depends) {
                    continue;
                }
                match f.as_str() {
                    "VK_VERSION_1_0" | "VK_VERSION_1_1" | "VK_VERSION_1_2" => core_old = true,
                    "VK_VERSION_1_3" => core13 = true,
                    _ => {}
                }
            } else if let Some(x) = &r.extension {
                let Some(&n) = supported.get(x) else { continue };
                if !satisfied(&r.depends) {
                    continue;
                }
                let dep = r
                    .depends
                    .as_deref()
                    .and_then(|d| eval_depends(d, &|a| supported.get(a).map(|&n| Gate::Ext(n))));
                ext_gates.push(match dep {
                    None => Gate::Ext(n),
                    Some(g) => Gate::All(vec![Gate::Ext(n), g]),
                });
            }
        }
        let g = if core_old {
            Gate::Always
        } else if !ext_gates.is_empty() {
            ext_gates.sort();
            ext_gates.dedup();
            if ext_gates.len() == 1 {
                ext_gates.remove(0)
            } else {
                Gate::Any(ext_gates)
            }
        } else if core13 {
            Gate::Api13
        } else {
            continue;
        };
        // A type required under an alias name (e.g. an EXT struct promoted to KHR
        // after the protocol level) gates its canonical struct.
        let key = model.canonical_type(ty).to_string();
        let merged = match gates.remove(&key) {
            None => g,
            Some(Gate::Always) => Gate::Always,
            Some(_) if g == Gate::Always => Gate::Always,
            Some(old) if old == g => g,
            Some(Gate::Any(mut v)) => {
                v.push(g);
                v.sort();
                v.dedup();
                Gate::Any(v)
            }
            Some(old) => {
                let mut v = vec![old, g];
                v.sort();
                Gate::Any(v)
            }
        };
        gates.insert(key, merged);
    }
    for s in model.structs.values().filter(|s| s.private) {
        gates.insert(s.name.clone(), Gate::Always);
    }

    // Chains: parent -> allowed members.
    let mut chains: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in model.structs.values() {
        if !gates.contains_key(&s.name) || s.name == "VkImportMemoryFdInfoKHR" {
            continue;
        }
        for p in &s.structextends {
            chains
                .entry(model.canonical_type(p).to_string())
                .or_default()
                .push(s.name.clone());
        }
    }

    let mut plan = Plan {
        commands: Vec::new(),
        structs: BTreeMap::new(),
        chains: BTreeMap::new(),
        gates: BTreeMap::new(),
        group_of_struct: BTreeMap::new(),
        extensions: exts.extensions.clone(),
        wire_format_version: exts.wire_format_version,
        vk_xml_version: exts.vk_xml_version,
    };
    let mut group_sets: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in cmds.commands.iter().filter(|c| !c.never_sent) {
        let def = model
            .commands
            .get(&c.name)
            .ok_or_else(|| anyhow!("command {} not in vk.xml", c.name))?;
        let group = c.group.clone().unwrap_or_else(|| "misc".into());
        let mut params = Vec::new();
        // output counts: a non-const scalar pointer that is the len of another param
        for p in &def.params {
            let kind = kind_of(model, &c.name, p)?;
            let output = p.pointers > 0 && !p.is_const;
            params.push(Param {
                name: p.name.clone(),
                kind,
                output,
                optional: p.optional || p.noautovalidity,
                decl: p.clone(),
            });
        }
        for p in &params {
            walk(
                model,
                &chains,
                &mut plan,
                &group,
                &mut group_sets,
                &p.kind,
                p.output,
            );
        }
        plan.commands.push((c.clone(), params, def.ret.clone()));
    }
    for (s, groups) in group_sets {
        let g = if groups.len() == 1 {
            groups.into_iter().next().unwrap_or_default()
        } else {
            "structs".into()
        };
        plan.group_of_struct.insert(s, g);
    }
    for (p, members) in chains {
        if plan.structs.contains_key(&p) {
            plan.chains.insert(p, members);
        }
    }
    for s in plan.structs.keys() {
        if let Some(g) = gates.get(s) {
            plan.gates.insert(s.clone(), g.clone());
        }
    }
    Ok(plan)
}

fn walk(
    model: &Model,
    chains: &BTreeMap<String, Vec<String>>,
    plan: &mut Plan,
    group: &str,
    groups: &mut BTreeMap<String, BTreeSet<String>>,
    kind: &Kind,
    output: bool,
) {
    match kind {
        Kind::Struct(s) | Kind::Union(s) | Kind::FixedStructs(s, _) => {
            let u = plan.structs.entry(s.clone()).or_default();
            let seen = if output { u.output } else { u.input };
            if output {
                u.output = true;
            } else {
                u.input = true;
            }
            groups
                .entry(s.clone())
                .or_default()
                .insert(group.to_string());
            if seen {
                return;
            }
            let Some(def) = model.structs.get(s) else {
                return;
            };
            for m in &def.members {
                if let Ok(k) = kind_of(model, s, m) {
                    walk(model, chains, plan, group, groups, &k, output);
                }
            }
            if let Some(members) = chains.get(s) {
                for c in members.clone() {
                    walk(model, chains, plan, group, groups, &Kind::Struct(c), output);
                }
            }
        }
        Kind::Array(k, _) | Kind::Pointer(k) => walk(model, chains, plan, group, groups, k, output),
        _ => {}
    }
}

pub fn struct_def<'a>(model: &'a Model, name: &str) -> Result<&'a StructDef> {
    model
        .structs
        .get(name)
        .ok_or_else(|| anyhow!("unknown struct {name}"))
}
