//! Data objects of a case: what an embedder's JIT or object file links beside code.
//!
//! CLIF text has no syntax for data, so a case defines its data objects in directives, one per
//! object, and its functions refer to them by name (`gv0 = symbol colocated %d0`):
//!
//! ```text
//! ; clif-diff: data = %d0 writable align=8 bytes=0123456789abcdef
//! ; clif-diff: data = %t0 readonly align=8 bytes=00000000000000000000000000000000 fn@0=%f1 data@8=%d0+4
//! ```
//!
//! A writable object may be thread-local (`%d1 writable tls align=8 bytes=…`): functions reach it
//! with `gv = symbol tls %d1` and `tls_value`, the object program through `tls_model=elf_gd`
//! relocations and `__tls_get_addr`; run lines are single-threaded, so the interpreter gives it
//! one instance like any object, and `cranelift-jit` has no TLS at all (it is unsupported there).
//! A thread-local object holds no relocated pointers and no pointer points at it: its address
//! differs per thread, which no link-time constant can express.
//!
//! `fn@OFF=%f` and `data@OFF=%d+A` are 8-byte absolute relocations: the address of a function,
//! or of a data object plus an addend, written at that offset when the module is linked (the
//! bytes under a relocation are ignored). Each engine gives an object the same contents at the
//! start of every run line: the JIT and object programs copy writable objects back from a
//! read-only twin before each call (see `engine::program`), the interpreter starts afresh.

use std::fmt;

/// Bytes of a relocated pointer: every target clif-diff runs is 64-bit.
pub const POINTER_BYTES: u32 = 8;

/// One data object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataObject {
    /// Test-case name, without `%`.
    pub name: String,
    pub writable: bool,
    /// Thread-local (`tls`): writable, without relocations, never a relocation's target.
    pub tls: bool,
    /// Alignment in bytes (a power of two).
    pub align: u64,
    pub bytes: Vec<u8>,
    /// Pointers written at link time, by offset.
    pub relocs: Vec<(u32, Target)>,
}

/// What a relocated pointer points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A function of the case (test-case name).
    Func(String),
    /// A data object of the case, plus an addend.
    Data(String, i64),
}

impl DataObject {
    pub fn size(&self) -> u32 {
        self.bytes.len() as u32
    }

    /// The relocation starting exactly at `offset`.
    pub fn reloc_at(&self, offset: i64) -> Option<&Target> {
        self.relocs
            .iter()
            .find(|(o, _)| i64::from(*o) == offset)
            .map(|(_, t)| t)
    }

    /// Does any relocated pointer overlap bytes `lo..hi`?
    pub fn overlaps_reloc(&self, lo: i64, hi: i64) -> bool {
        self.relocs.iter().any(|(o, _)| {
            let o = i64::from(*o);
            o < hi && lo < o + i64::from(POINTER_BYTES)
        })
    }

    /// Parses the value of a `data` directive.
    pub fn parse(text: &str) -> Result<DataObject, String> {
        let mut words = text.split_whitespace();
        let name = words
            .next()
            .and_then(|w| w.strip_prefix('%'))
            .filter(|n| !n.is_empty())
            .ok_or("`data` needs `%name writable|readonly align=N bytes=HEX …`")?
            .to_string();
        let writable = match words.next() {
            Some("writable") => true,
            Some("readonly") => false,
            other => {
                return Err(format!(
                    "data %{name}: expected `writable` or `readonly`, got `{}`",
                    other.unwrap_or("")
                ));
            }
        };
        let mut obj = DataObject {
            name,
            writable,
            tls: false,
            align: 1,
            bytes: Vec::new(),
            relocs: Vec::new(),
        };
        let mut words = words.peekable();
        if words.next_if_eq(&"tls").is_some() {
            if !writable {
                return Err(format!(
                    "data %{}: a thread-local object is writable (`writable tls`)",
                    obj.name
                ));
            }
            obj.tls = true;
        }
        let bad = |w: &str, why: &str| format!("data %{}: `{w}`: {why}", obj.name);
        for w in words {
            let (key, value) = w
                .split_once('=')
                .ok_or_else(|| bad(w, "expected key=value"))?;
            match key {
                "align" => {
                    obj.align = value
                        .parse::<u64>()
                        .ok()
                        .filter(|a| a.is_power_of_two() && *a <= 4096)
                        .ok_or_else(|| bad(w, "alignment must be a power of two up to 4096"))?;
                }
                "bytes" => {
                    obj.bytes = hex(value).ok_or_else(|| bad(w, "bytes must be hex pairs"))?;
                }
                _ => {
                    let (kind, off) = key
                        .split_once('@')
                        .ok_or_else(|| bad(w, "unknown key (align, bytes, fn@OFF, data@OFF)"))?;
                    let off: u32 = off.parse().map_err(|_| bad(w, "bad offset"))?;
                    let sym = value
                        .strip_prefix('%')
                        .ok_or_else(|| bad(w, "a relocation names `%symbol`"))?;
                    let target = match kind {
                        "fn" => Target::Func(sym.to_string()),
                        "data" => {
                            let (n, a) = match sym.split_once(['+', '-']) {
                                Some((n, a)) => {
                                    let a: i64 = a.parse().map_err(|_| bad(w, "bad addend"))?;
                                    (n, if sym.contains('-') { -a } else { a })
                                }
                                None => (sym, 0),
                            };
                            Target::Data(n.to_string(), a)
                        }
                        _ => return Err(bad(w, "relocations are `fn@OFF` or `data@OFF`")),
                    };
                    obj.relocs.push((off, target));
                }
            }
        }
        if obj.bytes.is_empty() {
            return Err(format!("data %{}: needs `bytes=` (at least one)", obj.name));
        }
        if obj.tls && !obj.relocs.is_empty() {
            return Err(format!(
                "data %{}: a thread-local object holds no relocations",
                obj.name
            ));
        }
        for (off, _) in &obj.relocs {
            if off + POINTER_BYTES > obj.size() {
                return Err(format!(
                    "data %{}: a relocation at {off} runs past its {} bytes",
                    obj.name,
                    obj.size()
                ));
            }
        }
        obj.relocs.sort_by_key(|(o, _)| *o);
        if obj
            .relocs
            .windows(2)
            .any(|w| w[0].0 + POINTER_BYTES > w[1].0)
        {
            return Err(format!("data %{}: relocations overlap", obj.name));
        }
        Ok(obj)
    }
}

impl fmt::Display for DataObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.writable {
            "writable"
        } else {
            "readonly"
        };
        let tls = if self.tls { " tls" } else { "" };
        write!(f, "%{} {kind}{tls} align={} bytes=", self.name, self.align)?;
        for b in &self.bytes {
            write!(f, "{b:02x}")?;
        }
        for (off, t) in &self.relocs {
            match t {
                Target::Func(n) => write!(f, " fn@{off}=%{n}")?,
                Target::Data(n, 0) => write!(f, " data@{off}=%{n}")?,
                Target::Data(n, a) if *a < 0 => write!(f, " data@{off}=%{n}{a}")?,
                Target::Data(n, a) => write!(f, " data@{off}=%{n}+{a}")?,
            }
        }
        Ok(())
    }
}

/// The first object (index) of a module holding a pointer at a thread-local one, and why that
/// is refused.
pub fn pointer_at_thread_local(objs: &[DataObject]) -> Option<(usize, String)> {
    objs.iter().enumerate().find_map(|(k, o)| {
        o.relocs.iter().find_map(|(_, t)| match t {
            Target::Data(n, _) if objs.iter().any(|p| p.name == *n && p.tls) => Some((
                k,
                format!(
                    "data %{}: points at thread-local %{n} (no link-time constant is its address)",
                    o.name
                ),
            )),
            _ => None,
        })
    })
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directive_round_trips() {
        let text =
            "%t0 readonly align=8 bytes=000000000000000000000000000000001122 fn@0=%f1 data@8=%d0-4";
        let obj = DataObject::parse(text).unwrap();
        assert_eq!(obj.size(), 18);
        assert_eq!(obj.reloc_at(0), Some(&Target::Func("f1".into())));
        assert_eq!(obj.reloc_at(8), Some(&Target::Data("d0".into(), -4)));
        assert!(obj.overlaps_reloc(15, 16) && !obj.overlaps_reloc(16, 18));
        assert_eq!(obj.to_string(), text);
        let tls = DataObject::parse("%d1 writable tls align=4 bytes=0102").unwrap();
        assert!(tls.tls && tls.writable);
        assert_eq!(tls.to_string(), "%d1 writable tls align=4 bytes=0102");
    }

    #[test]
    fn malformed_objects_are_refused_with_a_reason() {
        for (text, why) in [
            ("d0 writable bytes=00", "needs `%name"),
            ("%d0 mutable bytes=00", "expected `writable`"),
            ("%d0 writable align=3 bytes=00", "power of two"),
            ("%d0 writable bytes=0", "hex pairs"),
            ("%d0 writable align=8", "needs `bytes="),
            ("%d0 writable bytes=0000 fn@0=%f", "runs past"),
            (
                "%d0 writable bytes=00000000000000000000000000 fn@0=%f fn@4=%g",
                "overlap",
            ),
            ("%d0 writable bytes=00 got@0=%f", "`fn@OFF` or `data@OFF`"),
            ("%d0 readonly tls bytes=00", "is writable"),
            (
                "%d0 writable tls bytes=0000000000000000 fn@0=%f",
                "holds no relocations",
            ),
        ] {
            let e = DataObject::parse(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
