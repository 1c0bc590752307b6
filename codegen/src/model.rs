//! The registry as the generator sees it: structs, commands, handles and scalar
//! types from vk.xml, merged with the protocol-private part described in
//! `codegen/venus/private.toml`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use vk_parse::{
    CommandDefinition, EnumSpec, EnumsChild, ExtensionChild, InterfaceItem, RegistryChild,
    TypeMember, TypeMemberMarkup, TypeSpec, TypesChild,
};

/// How a scalar is carried on the wire and spelled in Rust.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scalar {
    U32,
    I32,
    F32,
    U64,
    Usize,
    U8,
    U16,
    /// `VkBool32`, `VkSampleMask`, `VkFlags`: plain u32 aliases in ash.
    U32Alias(String),
    /// `VkDeviceSize`, `VkDeviceAddress`, `VkFlags64`: plain u64 aliases in ash.
    U64Alias(String),
    /// An ash enum newtype over i32.
    Enum(String),
    /// An ash bitmask newtype over u32.
    Flags(String),
    /// An ash bitmask newtype over u64.
    Flags64(String),
}

/// The element type of a member or parameter, before pointers and arrays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Base {
    Scalar(Scalar),
    Char,
    Void,
    Handle { name: String, dispatchable: bool },
    Struct(String),
    Union(String),
}

/// One parsed C declaration (struct member or command parameter).
#[derive(Clone, Debug)]
#[allow(dead_code)] // complete description; not every field drives emission yet
pub struct Decl {
    pub name: String,
    pub c_type: String,
    pub base: Base,
    /// Number of `*`.
    pub pointers: usize,
    /// `const` applies to the pointee (first level).
    pub is_const: bool,
    /// `T x[N]`, already resolved to a number.
    pub fixed: Option<usize>,
    pub len: Option<String>,
    pub altlen: Option<String>,
    pub optional: bool,
    pub noautovalidity: bool,
    /// For `sType` members: the structure type constant name.
    pub stype_value: Option<String>,
    /// For array parameters walked with a byte stride: the stride parameter.
    pub stride: Option<String>,
}

#[derive(Clone, Debug)]
#[allow(dead_code)] // complete description; not every field drives emission yet
pub struct StructDef {
    pub name: String,
    pub members: Vec<Decl>,
    pub is_union: bool,
    pub structextends: Vec<String>,
    pub private: bool,
    pub returnedonly: bool,
}

impl StructDef {
    pub fn stype(&self) -> Option<&str> {
        self.members
            .first()
            .filter(|m| m.name == "sType")
            .and_then(|m| m.stype_value.as_deref())
    }
}

#[derive(Clone, Debug)]
#[allow(dead_code)] // complete description; not every field drives emission yet
pub struct CommandDef {
    pub name: String,
    pub ret: Option<String>,
    pub params: Vec<Decl>,
}

/// Where a type or command is required: a core version or an extension, plus `depends`.
#[derive(Clone, Debug)]
pub struct Requirement {
    pub feature: Option<String>,
    pub extension: Option<String>,
    pub depends: Option<String>,
}

#[allow(dead_code)] // complete description; not every field drives emission yet
pub struct Model {
    pub structs: BTreeMap<String, StructDef>,
    pub commands: BTreeMap<String, CommandDef>,
    pub type_alias: BTreeMap<String, String>,
    /// command alias -> the command it aliases (ash names PFN types after the latter).
    pub command_alias: BTreeMap<String, String>,
    pub stype_values: BTreeMap<String, i64>,
    pub extension_numbers: BTreeMap<String, i64>,
    /// type name -> where it is required.
    pub type_requirements: BTreeMap<String, Vec<Requirement>>,
    pub constants: BTreeMap<String, usize>,
}

#[derive(Deserialize)]
pub struct PrivateToml {
    pub flags: Vec<String>,
    #[serde(rename = "struct")]
    pub structs: Vec<PrivateStruct>,
    #[serde(rename = "command")]
    pub commands: Vec<PrivateCommand>,
}

#[derive(Deserialize)]
pub struct PrivateStruct {
    pub name: String,
    pub stype: Option<i64>,
    #[serde(default)]
    pub extends: Vec<String>,
    pub members: Vec<String>,
}

#[derive(Deserialize)]
pub struct PrivateCommand {
    pub name: String,
    pub params: Vec<String>,
    #[serde(default)]
    pub len: BTreeMap<String, String>,
    #[serde(default)]
    pub optional: Vec<String>,
    pub returns: Option<String>,
}

struct TypeInfo {
    category: String,
    dispatchable: bool,
    flags64: bool,
}

/// Splits a C declaration such as `const VkFoo* const* ppBar[4]` into its parts.
fn parse_c_decl(code: &str) -> Result<(String, usize, bool, String, Option<String>)> {
    let code = code
        .replace('*', " * ")
        .replace('[', " [ ")
        .replace(']', " ] ");
    let toks: Vec<&str> = code.split_whitespace().collect();
    let mut i = 0;
    let mut is_const = false;
    if toks.get(i) == Some(&"const") {
        is_const = true;
        i += 1;
    }
    if toks.get(i) == Some(&"struct") {
        i += 1;
    }
    let ty = toks
        .get(i)
        .ok_or_else(|| anyhow!("no type in {code}"))?
        .to_string();
    i += 1;
    let mut pointers = 0;
    while let Some(t) = toks.get(i) {
        match *t {
            "*" => pointers += 1,
            "const" => {}
            _ => break,
        }
        i += 1;
    }
    let name = toks
        .get(i)
        .ok_or_else(|| anyhow!("no name in {code}"))?
        .to_string();
    i += 1;
    let mut fixed = None;
    if toks.get(i) == Some(&"[") {
        fixed = toks.get(i + 1).map(|s| s.to_string());
    }
    Ok((ty, pointers, is_const, name, fixed))
}

impl Model {
    pub fn load(vk_xml: &Path, private: &PrivateToml) -> Result<Model> {
        let (reg, _errors) = vk_parse::parse_file(vk_xml)
            .map_err(|e| anyhow!("parsing {}: {e:?}", vk_xml.display()))?;
        let mut infos: BTreeMap<String, TypeInfo> = BTreeMap::new();
        let mut type_alias = BTreeMap::new();
        let mut raw_structs = Vec::new();
        let mut raw_commands = Vec::new();
        let mut command_alias: BTreeMap<String, String> = BTreeMap::new();
        let mut stype_values = BTreeMap::new();
        let mut constants = BTreeMap::new();
        let mut extension_numbers = BTreeMap::new();
        let mut type_requirements: BTreeMap<String, Vec<Requirement>> = BTreeMap::new();
        let mut flagbits_to_flags: BTreeMap<String, String> = BTreeMap::new();
        let mut enum_ext_values: Vec<(String, EnumSpec, Option<i64>)> = Vec::new();

        for child in &reg.0 {
            match child {
                RegistryChild::Types(types) => {
                    for t in &types.children {
                        let TypesChild::Type(t) = t else { continue };
                        let category = t.category.clone().unwrap_or_default();
                        let name = match (&t.name, &t.spec) {
                            (Some(n), _) => n.clone(),
                            (None, TypeSpec::Code(c)) => c
                                .markup
                                .iter()
                                .find_map(|m| match m {
                                    vk_parse::TypeCodeMarkup::Name(n) => Some(n.clone()),
                                    _ => None,
                                })
                                .unwrap_or_default(),
                            _ => continue,
                        };
                        if t.api
                            .as_deref()
                            .is_some_and(|a| !a.split(',').any(|x| x == "vulkan"))
                        {
                            continue;
                        }
                        if let Some(a) = &t.alias {
                            type_alias.insert(name.clone(), a.clone());
                            continue;
                        }
                        let code = match &t.spec {
                            TypeSpec::Code(c) => c.code.clone(),
                            _ => String::new(),
                        };
                        if category == "bitmask" {
                            if let Some(bits) = t.bitvalues.as_ref().or(t.requires.as_ref()) {
                                flagbits_to_flags.insert(bits.clone(), name.clone());
                            }
                        }
                        infos.insert(
                            name.clone(),
                            TypeInfo {
                                category: category.clone(),
                                dispatchable: code.contains("VK_DEFINE_HANDLE"),
                                flags64: code.contains("VkFlags64"),
                            },
                        );
                        if category == "struct" || category == "union" {
                            raw_structs.push(t.clone());
                        }
                    }
                }
                RegistryChild::Enums(e) => {
                    let bitwidth64 = e.bitwidth == Some(64);
                    for c in &e.children {
                        let EnumsChild::Enum(en) = c else { continue };
                        if e.name.as_deref() == Some("API Constants") {
                            if let EnumSpec::Value { value, .. } = &en.spec {
                                if let Ok(v) = value.parse::<usize>() {
                                    constants.insert(en.name.clone(), v);
                                }
                            }
                        }
                        if e.name.as_deref() == Some("VkStructureType") {
                            if let EnumSpec::Value { value, .. } = &en.spec {
                                stype_values.insert(en.name.clone(), value.parse::<i64>()?);
                            }
                        }
                    }
                    if bitwidth64 {
                        if let Some(n) = &e.name {
                            infos.entry(n.clone()).and_modify(|i| i.flags64 = true);
                        }
                    }
                }
                RegistryChild::Commands(cmds) => {
                    for c in &cmds.children {
                        match c {
                            vk_parse::Command::Definition(d) => {
                                if d.api
                                    .as_deref()
                                    .is_some_and(|a| !a.split(',').any(|x| x == "vulkan"))
                                {
                                    continue;
                                }
                                if let Some(a) = &d.alias {
                                    command_alias.insert(d.proto.name.clone(), a.clone());
                                } else {
                                    raw_commands.push(d.clone());
                                }
                            }
                            vk_parse::Command::Alias { name, alias } => {
                                command_alias.insert(name.clone(), alias.clone());
                            }
                            _ => {}
                        }
                    }
                }
                RegistryChild::Feature(f) => {
                    if !f.api.split(',').any(|x| x == "vulkan") {
                        continue;
                    }
                    collect_requirements(
                        &f.children,
                        Some(&f.name),
                        None,
                        None,
                        &mut type_requirements,
                        &mut enum_ext_values,
                    );
                }
                RegistryChild::Extensions(exts) => {
                    for x in &exts.children {
                        if let Some(n) = x.number {
                            extension_numbers.insert(x.name.clone(), n);
                        }
                        collect_requirements(
                            &x.children,
                            None,
                            Some(&x.name),
                            x.number,
                            &mut type_requirements,
                            &mut enum_ext_values,
                        );
                    }
                }
                _ => {}
            }
        }
        // Structure type values added by features and extensions.
        for (name, spec, extnum) in &enum_ext_values {
            match spec {
                EnumSpec::Offset {
                    offset,
                    extends,
                    extnumber,
                    dir,
                } if extends == "VkStructureType" => {
                    let ext = extnumber
                        .or(*extnum)
                        .ok_or_else(|| anyhow!("no extnumber for {name}"))?;
                    let v = 1_000_000_000 + (ext - 1) * 1000 + offset;
                    stype_values.insert(name.clone(), if *dir { v } else { -v });
                }
                EnumSpec::Value {
                    value,
                    extends: Some(e),
                } if e == "VkStructureType" => {
                    stype_values.insert(name.clone(), value.parse::<i64>()?);
                }
                _ => {}
            }
        }
        for (name, spec, _) in &enum_ext_values {
            if let EnumSpec::Alias {
                alias,
                extends: Some(e),
            } = spec
            {
                if e == "VkStructureType" {
                    if let Some(v) = stype_values.get(alias).copied() {
                        stype_values.insert(name.clone(), v);
                    }
                }
            }
        }

        let mut model = Model {
            structs: BTreeMap::new(),
            commands: BTreeMap::new(),
            type_alias,
            command_alias: BTreeMap::new(),
            stype_values,
            extension_numbers,
            type_requirements,
            constants,
        };
        let private_flags: BTreeSet<String> = private.flags.iter().cloned().collect();
        let private_structs: BTreeSet<String> =
            private.structs.iter().map(|s| s.name.clone()).collect();
        let alias_copy = model.type_alias.clone();
        let resolver = Resolver {
            infos: &infos,
            type_alias: &alias_copy,
            flagbits_to_flags: &flagbits_to_flags,
            private_flags: &private_flags,
            private_structs: &private_structs,
        };

        for t in &raw_structs {
            let Some(name) = &t.name else { continue };
            let TypeSpec::Members(members) = &t.spec else {
                continue;
            };
            let mut decls = Vec::new();
            let mut unusable = false;
            for m in members {
                let TypeMember::Definition(def) = m else {
                    continue;
                };
                if def
                    .api
                    .as_deref()
                    .is_some_and(|a| !a.split(',').any(|x| x == "vulkan"))
                {
                    continue;
                }
                let code: String = def.code.clone();
                let (ty, pointers, is_const, mname, fixed) = parse_c_decl(&code)?;
                let enum_in_markup = def.markup.iter().find_map(|mk| match mk {
                    TypeMemberMarkup::Enum(e) => Some(e.clone()),
                    _ => None,
                });
                let fixed = match fixed {
                    None => None,
                    Some(f) => Some(resolve_const(
                        &model.constants,
                        enum_in_markup.as_deref().unwrap_or(&f),
                    )?),
                };
                let Ok(base) = resolver.base(&ty) else {
                    // function pointers, platform types: never part of Venus
                    unusable = true;
                    break;
                };
                decls.push(Decl {
                    name: mname,
                    base,
                    c_type: ty,
                    pointers,
                    is_const,
                    fixed,
                    len: def.len.clone(),
                    altlen: def.altlen.clone(),
                    optional: def
                        .optional
                        .as_deref()
                        .is_some_and(|o| o.starts_with("true")),
                    noautovalidity: def.noautovalidity.is_some(),
                    stype_value: def.values.clone(),
                    stride: None,
                });
            }
            if unusable {
                continue;
            }
            model.structs.insert(
                name.clone(),
                StructDef {
                    name: name.clone(),
                    members: decls,
                    is_union: t.category.as_deref() == Some("union"),
                    structextends: t
                        .structextends
                        .as_deref()
                        .map(|s| s.split(',').map(str::to_string).collect())
                        .unwrap_or_default(),
                    private: false,
                    returnedonly: t.returnedonly.is_some(),
                },
            );
        }
        for c in &raw_commands {
            if let Ok(cmd) = resolver.command(c) {
                model.commands.insert(c.proto.name.clone(), cmd);
            }
        }
        for (alias, target) in &command_alias {
            if let Some(c) = model.commands.get(target).cloned() {
                model.commands.entry(alias.clone()).or_insert(CommandDef {
                    name: alias.clone(),
                    ..c
                });
            }
        }
        model.command_alias = command_alias;

        // The private part.
        for s in &private.structs {
            let mut members = Vec::new();
            for m in &s.members {
                let (ty, pointers, is_const, name, _) = parse_c_decl(m)?;
                let stype_value =
                    (name == "sType").then(|| format!("VK_STRUCTURE_TYPE_{}", s.name));
                members.push(Decl {
                    name,
                    base: resolver.base(&ty)?,
                    c_type: ty,
                    pointers,
                    is_const,
                    fixed: None,
                    len: None,
                    altlen: None,
                    optional: false,
                    noautovalidity: false,
                    stype_value,
                    stride: None,
                });
            }
            if let Some(v) = s.stype {
                model
                    .stype_values
                    .insert(format!("VK_STRUCTURE_TYPE_{}", s.name), v);
            }
            model.structs.insert(
                s.name.clone(),
                StructDef {
                    name: s.name.clone(),
                    members,
                    is_union: false,
                    structextends: s.extends.clone(),
                    private: true,
                    returnedonly: false,
                },
            );
        }
        for c in &private.commands {
            let mut params = Vec::new();
            for p in &c.params {
                let (ty, pointers, is_const, name, _) = parse_c_decl(p)?;
                params.push(Decl {
                    len: c.len.get(&name).cloned(),
                    optional: c.optional.contains(&name),
                    name,
                    base: resolver.base(&ty)?,
                    c_type: ty,
                    pointers,
                    is_const,
                    fixed: None,
                    altlen: None,
                    noautovalidity: false,
                    stype_value: None,
                    stride: None,
                });
            }
            model.commands.insert(
                c.name.clone(),
                CommandDef {
                    name: c.name.clone(),
                    ret: c.returns.clone(),
                    params,
                },
            );
        }
        Ok(model)
    }

    pub fn canonical_type<'a>(&'a self, name: &'a str) -> &'a str {
        let mut n = name;
        while let Some(a) = self.type_alias.get(n) {
            n = a;
        }
        n
    }
}

fn resolve_const(constants: &BTreeMap<String, usize>, s: &str) -> Result<usize> {
    if let Ok(v) = s.parse::<usize>() {
        return Ok(v);
    }
    constants
        .get(s)
        .copied()
        .ok_or_else(|| anyhow!("unknown array size {s}"))
}

fn collect_requirements(
    children: &[ExtensionChild],
    feature: Option<&String>,
    extension: Option<&String>,
    extnum: Option<i64>,
    reqs: &mut BTreeMap<String, Vec<Requirement>>,
    enum_values: &mut Vec<(String, EnumSpec, Option<i64>)>,
) {
    for ch in children {
        let ExtensionChild::Require {
            items,
            depends,
            api,
            ..
        } = ch
        else {
            continue;
        };
        if api
            .as_deref()
            .is_some_and(|a| !a.split(',').any(|x| x == "vulkan"))
        {
            continue;
        }
        for it in items {
            match it {
                InterfaceItem::Type { name, .. } => {
                    reqs.entry(name.clone()).or_default().push(Requirement {
                        feature: feature.cloned(),
                        extension: extension.cloned(),
                        depends: depends.clone(),
                    })
                }
                InterfaceItem::Enum(e) => {
                    enum_values.push((e.name.clone(), e.spec.clone(), extnum))
                }
                _ => {}
            }
        }
    }
}

struct Resolver<'a> {
    infos: &'a BTreeMap<String, TypeInfo>,
    type_alias: &'a BTreeMap<String, String>,
    flagbits_to_flags: &'a BTreeMap<String, String>,
    private_flags: &'a BTreeSet<String>,
    private_structs: &'a BTreeSet<String>,
}

impl Resolver<'_> {
    fn base(&self, ty: &str) -> Result<Base> {
        let s = |x: Scalar| Ok(Base::Scalar(x));
        match ty {
            "void" => return Ok(Base::Void),
            "char" => return Ok(Base::Char),
            "uint32_t" => return s(Scalar::U32),
            "int32_t" => return s(Scalar::I32),
            "float" => return s(Scalar::F32),
            "uint64_t" => return s(Scalar::U64),
            "size_t" => return s(Scalar::Usize),
            "uint8_t" => return s(Scalar::U8),
            "uint16_t" => return s(Scalar::U16),
            "VkBool32" | "VkSampleMask" | "VkFlags" => return s(Scalar::U32Alias(ty.into())),
            "VkDeviceSize" | "VkDeviceAddress" | "VkFlags64" => {
                return s(Scalar::U64Alias(ty.into()))
            }
            _ => {}
        }
        if self.private_flags.contains(ty) {
            return s(Scalar::U32Alias("VkFlags".into()));
        }
        if self.private_structs.contains(ty) {
            return Ok(Base::Struct(ty.into()));
        }
        let mut ty = ty;
        while let Some(a) = self.type_alias.get(ty) {
            ty = a;
        }
        let info = self
            .infos
            .get(ty)
            .ok_or_else(|| anyhow!("unknown type {ty}"))?;
        Ok(match info.category.as_str() {
            "struct" => Base::Struct(ty.into()),
            "union" => Base::Union(ty.into()),
            "handle" => Base::Handle {
                name: ty.into(),
                dispatchable: info.dispatchable,
            },
            "bitmask" => {
                if info.flags64 {
                    Base::Scalar(Scalar::Flags64(ty.into()))
                } else {
                    Base::Scalar(Scalar::Flags(ty.into()))
                }
            }
            "enum" => {
                if let Some(flags) = self.flagbits_to_flags.get(ty) {
                    let fi = self.infos.get(flags);
                    if fi.is_some_and(|f| f.flags64) || info.flags64 {
                        Base::Scalar(Scalar::Flags64(flags.clone()))
                    } else {
                        Base::Scalar(Scalar::Flags(flags.clone()))
                    }
                } else {
                    Base::Scalar(Scalar::Enum(ty.into()))
                }
            }
            "basetype" => bail!("unhandled basetype {ty}"),
            other => bail!("unhandled category {other} for {ty}"),
        })
    }

    fn command(&self, c: &CommandDefinition) -> Result<CommandDef> {
        let mut params = Vec::new();
        for p in &c.params {
            if p.api
                .as_deref()
                .is_some_and(|a| !a.split(',').any(|x| x == "vulkan"))
            {
                continue;
            }
            let (ty, pointers, is_const, name, fixed) = parse_c_decl(&p.definition.code)
                .with_context(|| format!("param of {}", c.proto.name))?;
            let fixed = fixed.map(|f| f.parse::<usize>()).transpose()?;
            params.push(Decl {
                name,
                base: self.base(&ty)?,
                c_type: ty,
                pointers,
                is_const,
                fixed,
                len: p.len.clone(),
                altlen: p.altlen.clone(),
                optional: p.optional.as_deref().is_some_and(|o| o.starts_with("true")),
                noautovalidity: p.noautovalidity.is_some(),
                stype_value: None,
                stride: p.stride.clone(),
            });
        }
        let ret = c.proto.type_name.clone().filter(|t| t != "void");
        Ok(CommandDef {
            name: c.proto.name.clone(),
            ret,
            params,
        })
    }
}
