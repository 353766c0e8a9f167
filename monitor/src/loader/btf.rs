//! Just enough of the kernel's BTF (/sys/kernel/btf/vmlinux) to read an
//! enum's values and a struct member's byte offset by name, for the drop
//! program (see `monitor_common::drop`): the reasons are renumbered between
//! kernels and the struct layouts move, so both are read at load time.
//!
//! Hand-written, about a page: aya's `Btf` keeps its types' members
//! private, and the one maintained BTF crate (btf-rs) is LGPL-2.1, which
//! this MIT/Apache project does not link. The format is the kernel's
//! (Documentation/bpf/btf.rst): a header, a type section of fixed-size
//! records each followed by kind-specific data, and a string section.

use std::{collections::HashMap, path::Path};

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("not BTF in the host's byte order (magic {0:#06x})")]
    Magic(u16),
    #[error("BTF truncated or malformed: {0}")]
    Malformed(&'static str),
    #[error("unknown BTF type kind {0}")]
    Kind(u32),
}

const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

#[derive(Clone, Copy, Debug)]
struct Ty {
    name_off: u32,
    kind: u32,
    kflag: bool,
    vlen: usize,
    /// Size, or the referenced type id, by kind.
    size_or_type: u32,
    /// Where the kind-specific data starts in the type section.
    extra: usize,
}

/// A parsed BTF blob.
pub struct Btf {
    types: Vec<Ty>,
    type_data: Vec<u8>,
    strings: Vec<u8>,
    /// Named types by (kind, name), the first of each.
    by_name: HashMap<(u32, String), u32>,
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, BtfError> {
    b.get(at..at + 4)
        .map(|s| u32::from_ne_bytes(s.try_into().expect("4 bytes")))
        .ok_or(BtfError::Malformed("record past the end"))
}

impl Btf {
    /// The running kernel's.
    pub fn from_sys_fs() -> Result<Self, BtfError> {
        Self::from_file(Path::new("/sys/kernel/btf/vmlinux"))
    }

    pub fn from_file(path: &Path) -> Result<Self, BtfError> {
        let data = std::fs::read(path).map_err(|source| BtfError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&data)
    }

    pub fn parse(data: &[u8]) -> Result<Self, BtfError> {
        let magic = u16::from_ne_bytes(
            data.get(0..2)
                .ok_or(BtfError::Malformed("no header"))?
                .try_into()
                .expect("2 bytes"),
        );
        if magic != 0xeb9f {
            return Err(BtfError::Magic(magic));
        }
        let hdr_len = u32_at(data, 4)? as usize;
        let (type_off, type_len) = (u32_at(data, 8)? as usize, u32_at(data, 12)? as usize);
        let (str_off, str_len) = (u32_at(data, 16)? as usize, u32_at(data, 20)? as usize);
        let section = |off: usize, len: usize| {
            data.get(hdr_len + off..hdr_len + off + len)
                .ok_or(BtfError::Malformed("section past the end"))
        };
        let type_data = section(type_off, type_len)?.to_vec();
        let strings = section(str_off, str_len)?.to_vec();
        // Type id 0 is void.
        let mut types = vec![Ty {
            name_off: 0,
            kind: 0,
            kflag: false,
            vlen: 0,
            size_or_type: 0,
            extra: 0,
        }];
        let mut at = 0;
        while at < type_data.len() {
            let name_off = u32_at(&type_data, at)?;
            let info = u32_at(&type_data, at + 4)?;
            let size_or_type = u32_at(&type_data, at + 8)?;
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            let extra = at + 12;
            let extra_len = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
                KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen,
                2 | 7 | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | 12 | 16
                | KIND_TYPE_TAG => 0,
                k => return Err(BtfError::Kind(k)),
            };
            types.push(Ty {
                name_off,
                kind,
                kflag: info >> 31 != 0,
                vlen,
                size_or_type,
                extra,
            });
            at = extra + extra_len;
        }
        let mut btf = Self {
            types,
            type_data,
            strings,
            by_name: HashMap::new(),
        };
        for id in 1..btf.types.len() {
            let t = btf.types[id];
            if t.name_off != 0 {
                let name = btf.string(t.name_off).to_string();
                btf.by_name.entry((t.kind, name)).or_insert(id as u32);
            }
        }
        Ok(btf)
    }

    fn string(&self, off: u32) -> &str {
        let rest = self.strings.get(off as usize..).unwrap_or_default();
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        std::str::from_utf8(&rest[..end]).unwrap_or("")
    }

    fn word(&self, at: usize) -> u32 {
        u32_at(&self.type_data, at).unwrap_or(0)
    }

    /// The values of `enum name`'s members, by member name (ENUM or ENUM64).
    pub fn enum_values(&self, name: &str) -> Option<HashMap<String, i64>> {
        let id = self
            .by_name
            .get(&(KIND_ENUM, name.to_string()))
            .or_else(|| self.by_name.get(&(KIND_ENUM64, name.to_string())))?;
        let t = self.types[*id as usize];
        let mut out = HashMap::new();
        for i in 0..t.vlen {
            let (name_off, value) = if t.kind == KIND_ENUM {
                let at = t.extra + 8 * i;
                let raw = self.word(at + 4);
                let v = if t.kflag {
                    i64::from(raw as i32)
                } else {
                    i64::from(raw)
                };
                (self.word(at), v)
            } else {
                let at = t.extra + 12 * i;
                let v = u64::from(self.word(at + 4)) | u64::from(self.word(at + 8)) << 32;
                (self.word(at), v as i64)
            };
            out.insert(self.string(name_off).to_string(), value);
        }
        Some(out)
    }

    /// The byte offset of `path` (a member, then members of its type...)
    /// in `struct name`. Members of anonymous structs and unions count as
    /// their parent's, at their parent's offset plus theirs, as in C.
    pub fn member_offset(&self, name: &str, path: &[&str]) -> Option<u32> {
        let mut id = *self.by_name.get(&(KIND_STRUCT, name.to_string()))?;
        let mut bits = 0u32;
        for field in path {
            let (off, member_type) = self.find_member(id, field, 0)?;
            bits += off;
            id = self.skip_modifiers(member_type);
        }
        bits.is_multiple_of(8).then_some(bits / 8)
    }

    /// `field` in struct/union `id`: its bit offset and type, looked for in
    /// anonymous members too. `depth` bounds the walk.
    fn find_member(&self, id: u32, field: &str, depth: u32) -> Option<(u32, u32)> {
        let t = self.types.get(id as usize)?;
        if !matches!(t.kind, KIND_STRUCT | KIND_UNION) || depth > 16 {
            return None;
        }
        for i in 0..t.vlen {
            let at = t.extra + 12 * i;
            let (name_off, ty, raw) = (self.word(at), self.word(at + 4), self.word(at + 8));
            let off = if t.kflag { raw & 0x00ff_ffff } else { raw };
            if name_off == 0 {
                if let Some((inner, ty)) =
                    self.find_member(self.skip_modifiers(ty), field, depth + 1)
                {
                    return Some((off + inner, ty));
                }
            } else if self.string(name_off) == field {
                return Some((off, ty));
            }
        }
        None
    }

    /// Through typedefs and qualifiers to the type they name.
    fn skip_modifiers(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.types.get(id as usize) {
                Some(t)
                    if matches!(
                        t.kind,
                        KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG
                    ) =>
                {
                    id = t.size_or_type;
                }
                _ => break,
            }
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob built by hand: `struct outer { int a; union { int b;
    /// struct { int c; int d; }; }; struct inner in; }`, `struct inner {
    /// long x; int y; }`, `enum e { E_ONE = 1, E_TWO = -2 }` (signed).
    fn blob() -> Vec<u8> {
        let mut strings = b"\0int\0outer\0a\0b\0c\0d\0in\0inner\0x\0y\0e\0E_ONE\0E_TWO\0".to_vec();
        let s = |name: &str, strings: &[u8]| -> u32 {
            let needle = [b"\0", name.as_bytes(), b"\0"].concat();
            strings
                .windows(needle.len())
                .position(|w| w == needle.as_slice())
                .unwrap() as u32
                + 1
        };
        let mut t = Vec::new();
        let mut rec = |words: &[u32]| {
            for w in words {
                t.extend_from_slice(&w.to_ne_bytes());
            }
        };
        let info =
            |kind: u32, vlen: u32, kflag: bool| (kind << 24) | vlen | (u32::from(kflag) << 31);
        // 1: int
        rec(&[s("int", &strings), info(KIND_INT, 0, false), 4, 32]);
        // 2: anonymous struct { int c; int d; }
        rec(&[0, info(KIND_STRUCT, 2, false), 8]);
        rec(&[s("c", &strings), 1, 0, s("d", &strings), 1, 32]);
        // 3: anonymous union { int b; struct 2; }
        rec(&[0, info(KIND_UNION, 2, false), 8]);
        rec(&[s("b", &strings), 1, 0, 0, 2, 0]);
        // 4: struct inner { long x; int y; } (x as int: only offsets matter)
        rec(&[s("inner", &strings), info(KIND_STRUCT, 2, false), 16]);
        rec(&[s("x", &strings), 1, 0, s("y", &strings), 1, 64]);
        // 5: typedef-free const inner, to be skipped
        rec(&[0, info(KIND_CONST, 0, false), 4]);
        // 6: struct outer { int a; union 3 at 64; const inner in at 128; }
        rec(&[s("outer", &strings), info(KIND_STRUCT, 3, false), 32]);
        rec(&[s("a", &strings), 1, 0, 0, 3, 64, s("in", &strings), 5, 128]);
        // 7: enum e (signed)
        rec(&[s("e", &strings), info(KIND_ENUM, 2, true), 4]);
        rec(&[
            s("E_ONE", &strings),
            1,
            s("E_TWO", &strings),
            (-2i32) as u32,
        ]);
        strings.push(0);
        let mut out = Vec::new();
        out.extend_from_slice(&0xeb9fu16.to_ne_bytes());
        out.extend_from_slice(&[1, 0]);
        for w in [
            24u32,
            0,
            t.len() as u32,
            t.len() as u32,
            strings.len() as u32,
        ] {
            out.extend_from_slice(&w.to_ne_bytes());
        }
        out.extend_from_slice(&t);
        out.extend_from_slice(&strings);
        out
    }

    #[test]
    fn members_of_anonymous_unions_and_structs_add_their_offsets() {
        let btf = Btf::parse(&blob()).unwrap();
        assert_eq!(btf.member_offset("outer", &["a"]), Some(0));
        assert_eq!(btf.member_offset("outer", &["b"]), Some(8));
        assert_eq!(btf.member_offset("outer", &["c"]), Some(8));
        assert_eq!(btf.member_offset("outer", &["d"]), Some(12));
        // Through a qualifier into a named member's own struct.
        assert_eq!(btf.member_offset("outer", &["in", "y"]), Some(24));
        assert_eq!(btf.member_offset("outer", &["nope"]), None);
        assert_eq!(btf.member_offset("nope", &["a"]), None);
    }

    #[test]
    fn enum_values_keep_their_sign() {
        let btf = Btf::parse(&blob()).unwrap();
        let e = btf.enum_values("e").unwrap();
        assert_eq!(e["E_ONE"], 1);
        assert_eq!(e["E_TWO"], -2);
        assert!(btf.enum_values("f").is_none());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(Btf::parse(b"\x01\x02"), Err(BtfError::Magic(_))));
        let mut b = blob();
        b.truncate(40);
        assert!(Btf::parse(&b).is_err());
    }

    #[test]
    fn the_running_kernel_s_sk_buff_has_what_the_drop_program_reads() {
        // Only where the host has BTF (every kernel this project tests on).
        let Ok(btf) = Btf::from_sys_fs() else { return };
        for f in [
            "head",
            "network_header",
            "tail",
            "skb_iif",
            "dev",
            "_skb_refdst",
        ] {
            assert!(btf.member_offset("sk_buff", &[f]).is_some(), "sk_buff.{f}");
        }
        assert!(btf.member_offset("net", &["ns", "inum"]).is_some());
    }
}
