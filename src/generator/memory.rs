//! Memory: stack slots, incoming `sarg` copies and pointer regions, always accessed in bounds.
//!
//! * Every stack slot is fully written in the entry block before anything can read it: native
//!   stack memory starts with garbage, the interpreter's with zeros.
//! * Memory flags (`Config::memory_flags`), each only where it is true in every engine, so that
//!   alias analysis and the mid-end's memory rules have something to use:
//!   - an alias region (one of three it declares) per stack slot, on every access of it: a slot
//!     is reachable only through its own `stack_addr`, so regions never overlap (pointer
//!     parameters and data objects, which other pointers may reach, get none);
//!   - `readonly` and `can_move` on loads from read-only data objects, which nothing writes and
//!     which are valid wherever their address is;
//!   - `aligned` where the address is a multiple of the access size in every engine: in data
//!     objects (the interpreter packs stack slots without padding, so there an `aligned` access
//!     may trap in the interpreter and not natively).
//!
//!   `facts::memory` checks the same rules, so a reduction cannot break them.
//! * Float stores are canonicalised first: the bytes may be re-read as integers.
//! * Byte order varies: native, or explicitly little-endian (and, on big-endian targets,
//!   explicitly big-endian too; little-endian backends do not lower `big`). The interpreter lays
//!   memory out in the target's byte order, so mixed widths and orders compare exactly.

use super::body::{Base, FuncGen, Region, RegionKind};
use arbitrary::Result;
use cranelift_codegen::ir::Endianness;
use cranelift_codegen::ir::immediates::Offset32;
use cranelift_codegen::ir::{
    AliasRegion, AliasRegionData, InstBuilder, MemFlagsData, Opcode, StackSlotData, StackSlotKind,
    Type, Value, types,
};

/// The alias regions stack slots are put in: (user id, description). The same ids in every
/// function, so that inlining (the reducer's) merges them rather than making more; merging
/// only ever makes the categories coarser, which is always sound.
const SLOT_ALIAS_REGIONS: [(u32, &str); 3] = [(1, "slots a"), (2, "slots b"), (3, "slots c")];

impl FuncGen<'_, '_> {
    /// Creates this function's stack slots, large enough for any region a callee may ask for,
    /// and fills them.
    pub fn create_slots(&mut self) -> Result<()> {
        let need = self.plan.funcs[self.me + 1..]
            .iter()
            .flat_map(|f| f.params.iter().filter_map(|p| p.region_size()))
            .max()
            .unwrap_or(0);
        let count = self.u.int_in_range(0..=self.cfg.max_stack_slots)?;
        let mut sizes = Vec::new();
        for _ in 0..count {
            sizes.push(self.u.int_in_range(1..=self.cfg.max_slot_size)?);
        }
        if need > 0 && !sizes.iter().any(|&s| s >= need) {
            sizes.push(
                self.u
                    .int_in_range(need..=self.cfg.max_slot_size.max(need))?,
            );
        }
        for size in sizes {
            let align = self.u.int_in_range(0..=4)?;
            let slot = self.func.create_sized_stack_slot(StackSlotData::new(
                StackSlotKind::ExplicitSlot,
                size,
                align,
            ));
            let alias = if self.cfg.memory_flags {
                match self.u.int_in_range(0..=SLOT_ALIAS_REGIONS.len())? {
                    0 => None,
                    k => Some(self.alias_region(k - 1)),
                }
            } else {
                None
            };
            self.regions.push(Region {
                base: Base::Slot(slot),
                size,
                kind: RegionKind::Slot,
                writable: true,
                alias,
                align: 1,
            });
        }
        for r in 0..self.regions.len() {
            if self.regions[r].kind == RegionKind::Slot {
                self.fill(r)?;
            }
        }
        Ok(())
    }

    /// Writes every byte of region `r`.
    fn fill(&mut self, r: usize) -> Result<()> {
        let size = self.regions[r].size;
        let mut off = 0;
        while off < size {
            let ty = crate::value::word_within(size - off);
            let v = self.value(ty)?;
            let (p, imm) = self.address(r, off)?;
            let flags = self.store_flags(r)?;
            self.ins().store(flags, v, p, imm);
            off += ty.bytes();
        }
        Ok(())
    }

    /// The function's alias region `k` of [`SLOT_ALIAS_REGIONS`], declared on first use.
    fn alias_region(&mut self, k: usize) -> AliasRegion {
        let (user_id, description) = SLOT_ALIAS_REGIONS[k];
        self.func.dfg.alias_regions.insert(AliasRegionData {
            user_id,
            description: description.into(),
        })
    }

    /// Flags for a load from region `r`: [`Self::flags`], the region's alias region, and, from
    /// a read-only data object, now and then `readonly` and `can_move`.
    pub fn load_flags(&mut self, r: usize) -> Result<MemFlagsData> {
        let mut f = self.store_flags(r)?;
        let region = self.regions[r];
        if self.cfg.memory_flags
            && region.kind == RegionKind::Data
            && !region.writable
            && self.u.ratio(1, 2)?
        {
            f = f.with_readonly().with_can_move();
        }
        Ok(f)
    }

    /// Flags for a store to region `r`: [`Self::flags`] and the region's alias region.
    pub fn store_flags(&mut self, r: usize) -> Result<MemFlagsData> {
        Ok(self.flags()?.with_alias_region(self.regions[r].alias))
    }

    /// `f` with `aligned` now and then, where an access of `bytes` at `off` into region `r` is
    /// at a multiple of `bytes` in every engine.
    pub fn maybe_aligned(
        &mut self,
        r: usize,
        off: u32,
        bytes: u32,
        f: MemFlagsData,
    ) -> Result<MemFlagsData> {
        let region = self.regions[r];
        let aligned = self.cfg.memory_flags
            && region.align.is_multiple_of(bytes)
            && off.is_multiple_of(bytes);
        Ok(if aligned && self.u.ratio(1, 2)? {
            f.with_aligned()
        } else {
            f
        })
    }

    pub fn flags(&mut self) -> Result<MemFlagsData> {
        let mut f = MemFlagsData::new();
        if self.u.ratio(3, 4)? {
            f = f.with_notrap();
        }
        let orders: &[Option<Endianness>] = if self.arch.big_endian() {
            &[None, Some(Endianness::Little), Some(Endianness::Big)]
        } else {
            &[None, None, None, Some(Endianness::Little)]
        };
        if let Some(e) = *self.u.choose(orders)? {
            f = f.with_endianness(e);
        }
        Ok(f)
    }

    /// A pointer and immediate offset addressing byte `off` of region `r`.
    pub fn address(&mut self, r: usize, off: u32) -> Result<(Value, Offset32)> {
        let region = self.regions[r];
        Ok(match region.base {
            Base::Slot(ss) => {
                if self.u.ratio(1, 2)? {
                    (self.ins().stack_addr(types::I64, ss, off as i32), 0.into())
                } else {
                    (
                        self.ins().stack_addr(types::I64, ss, 0),
                        (off as i32).into(),
                    )
                }
            }
            Base::Ptr(p) => (p, (off as i32).into()),
        })
    }

    /// A pointer to byte `off` of region `r` with nothing left in an immediate.
    pub fn pointer_to(&mut self, r: usize, off: u32) -> Result<Value> {
        let (p, imm) = self.address(r, off)?;
        let imm: i64 = imm.into();
        if imm == 0 {
            return Ok(p);
        }
        let k = self.ins().iconst(types::I64, imm);
        Ok(self.ins().iadd(p, k))
    }

    /// Regions with room for `bytes` (writable ones only if `write`).
    fn regions_fitting(&self, bytes: u32, write: bool) -> Vec<usize> {
        (0..self.regions.len())
            .filter(|&r| self.regions[r].size >= bytes && (self.regions[r].writable || !write))
            .collect()
    }

    /// Loads a random type from a random in-bounds place of region `r`.
    pub fn load_from(&mut self, r: usize) -> Result<Value> {
        let size = self.regions[r].size;
        let fits: Vec<Type> = self
            .types
            .clone()
            .into_iter()
            .filter(|t| t.bytes() <= size)
            .collect();
        let flags = self.load_flags(r)?;
        if fits.is_empty() || self.u.ratio(1, 4)? {
            // A narrow load extended into a wider integer.
            let (op, bytes) = *self.u.choose(&[
                (Opcode::Uload8, 1),
                (Opcode::Sload8, 1),
                (Opcode::Uload16, 2),
                (Opcode::Sload16, 2),
                (Opcode::Uload32, 4),
                (Opcode::Sload32, 4),
            ])?;
            let wide = self.ints_wider_than(bytes);
            if bytes <= size && !wide.is_empty() {
                let ty = *self.u.choose(&wide)?;
                let off = self.u.int_in_range(0..=size - bytes)?;
                let flags = self.maybe_aligned(r, off, bytes, flags)?;
                let (p, imm) = self.address(r, off)?;
                let b = self.ins();
                return Ok(match op {
                    Opcode::Uload8 => b.uload8(ty, flags, p, imm),
                    Opcode::Sload8 => b.sload8(ty, flags, p, imm),
                    Opcode::Uload16 => b.uload16(ty, flags, p, imm),
                    Opcode::Sload16 => b.sload16(ty, flags, p, imm),
                    Opcode::Uload32 => b.uload32(flags, p, imm),
                    _ => b.sload32(flags, p, imm),
                });
            }
            let off = self.u.int_in_range(0..=size - 1)?;
            let (p, imm) = self.address(r, off)?;
            return Ok(self.ins().load(types::I8, flags, p, imm));
        }
        let ty = *self.u.choose(&fits)?;
        let off = self.u.int_in_range(0..=size - ty.bytes())?;
        if self.u.ratio(1, 5)? {
            return self.load_dynamic(r, ty, off, flags);
        }
        let flags = self.maybe_aligned(r, off, ty.bytes(), flags)?;
        let (p, imm) = self.address(r, off)?;
        Ok(self.ins().load(ty, flags, p, imm))
    }

    /// A load at `off + (x & mask)` for a run-time `x`, with the mask keeping it in bounds.
    fn load_dynamic(&mut self, r: usize, ty: Type, off: u32, flags: MemFlagsData) -> Result<Value> {
        let room = self.regions[r].size - ty.bytes() - off;
        let mask = if room == 0 {
            0
        } else {
            (1u32 << (31 - room.leading_zeros())) - 1
        };
        let ity = self.int_type()?;
        let ity = if ity.bits() > 64 { types::I64 } else { ity };
        let x = self.value(ity)?;
        let x = if ity == types::I64 {
            x
        } else {
            self.ins().uextend(types::I64, x)
        };
        let m = self.ins().iconst(types::I64, mask as i64);
        let idx = self.ins().band(x, m);
        let base = self.pointer_to(r, off)?;
        let p = self.ins().iadd(base, idx);
        Ok(self.ins().load(ty, flags, p, 0))
    }

    /// Stores a random value to a random in-bounds place of region `r`.
    pub fn store_to(&mut self, r: usize) -> Result<()> {
        let size = self.regions[r].size;
        let fits: Vec<Type> = self
            .types
            .clone()
            .into_iter()
            .filter(|t| t.bytes() <= size)
            .collect();
        let flags = self.store_flags(r)?;
        let narrow = self.u.ratio(1, 4)?;
        if fits.is_empty() || narrow {
            // A wide integer stored through a narrow store.
            let (op, bytes) = *self.u.choose(&[
                (Opcode::Istore8, 1),
                (Opcode::Istore16, 2),
                (Opcode::Istore32, 4),
            ])?;
            let wide = self.ints_wider_than(bytes);
            if bytes <= size && !wide.is_empty() {
                let ty = *self.u.choose(&wide)?;
                let v = self.value(ty)?;
                let off = self.u.int_in_range(0..=size - bytes)?;
                let (p, imm) = self.address(r, off)?;
                let b = self.ins();
                match op {
                    Opcode::Istore8 => b.istore8(flags, v, p, imm),
                    Opcode::Istore16 => b.istore16(flags, v, p, imm),
                    _ => b.istore32(flags, v, p, imm),
                };
                return Ok(());
            }
            let v = self.value(types::I8)?;
            let off = self.u.int_in_range(0..=size - 1)?;
            let (p, imm) = self.address(r, off)?;
            self.ins().store(flags, v, p, imm);
            return Ok(());
        }
        let ty = *self.u.choose(&fits)?;
        let v = self.value(ty)?;
        let v = self.canon(v)?;
        let off = self.u.int_in_range(0..=size - ty.bytes())?;
        let flags = self.maybe_aligned(r, off, ty.bytes(), flags)?;
        let (p, imm) = self.address(r, off)?;
        self.ins().store(flags, v, p, imm);
        Ok(())
    }

    /// A load or a store somewhere, an atomic operation, or a memory libcall.
    pub fn memory_op(&mut self) -> Result<()> {
        if self.regions.is_empty() {
            return self.int_op();
        }
        if self.cfg.atomics && self.u.ratio(1, 4)? && self.atomic_op()? {
            return Ok(());
        }
        if self.cfg.memory_libcalls && self.u.ratio(1, 8)? && self.memory_libcall_op()? {
            return Ok(());
        }
        let r = self.u.choose_index(self.regions.len())?;
        if !self.regions[r].writable || self.u.ratio(1, 2)? {
            let v = self.load_from(r)?;
            self.add(v);
            Ok(())
        } else {
            self.store_to(r)
        }
    }

    /// An atomic read-modify-write, compare-and-swap, load, store or fence. Atomics fault on
    /// misaligned addresses on some ISAs, so the place is naturally aligned inside a stack slot
    /// aligned at least as much (pointer regions have no known alignment), addressed without
    /// an immediate (atomics take none). False when no slot fits.
    fn atomic_op(&mut self) -> Result<bool> {
        use cranelift_codegen::ir::AtomicRmwOp;
        let widths: Vec<Type> = self
            .int_types()
            .into_iter()
            .filter(|t| t.bits() <= 64)
            .collect();
        if widths.is_empty() {
            return Ok(false);
        }
        let ty = *self.u.choose(&widths)?;
        let bytes = ty.bytes();
        let slots: Vec<(usize, cranelift_codegen::ir::StackSlot, u32)> = self
            .regions
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match r.base {
                Base::Slot(ss)
                    if r.size >= bytes
                        && (1u32 << self.func.sized_stack_slots[ss].align_shift) >= bytes =>
                {
                    Some((i, ss, r.size))
                }
                _ => None,
            })
            .collect();
        if slots.is_empty() {
            return Ok(false);
        }
        let (r, ss, size) = *self.u.choose(&slots)?;
        let off = bytes * self.u.int_in_range(0..=(size - bytes) / bytes)?;
        let p = self.ins().stack_addr(types::I64, ss, off as i32);
        let flags = self.store_flags(r)?;
        match self.u.int_in_range(0..=4)? {
            0 => {
                let op = *self.u.choose(&[
                    AtomicRmwOp::Add,
                    AtomicRmwOp::Sub,
                    AtomicRmwOp::And,
                    AtomicRmwOp::Nand,
                    AtomicRmwOp::Or,
                    AtomicRmwOp::Xor,
                    AtomicRmwOp::Xchg,
                    AtomicRmwOp::Umin,
                    AtomicRmwOp::Umax,
                    AtomicRmwOp::Smin,
                    AtomicRmwOp::Smax,
                ])?;
                let v = self.value(ty)?;
                let old = self.ins().atomic_rmw(ty, flags, op, p, v);
                self.add(old);
            }
            1 => {
                // Expect what is there half of the time, so the swap happens.
                let expected = if self.u.ratio(1, 2)? {
                    self.ins().atomic_load(ty, flags, p)
                } else {
                    self.value(ty)?
                };
                let new = self.value(ty)?;
                let old = self.ins().atomic_cas(flags, p, expected, new);
                self.add(old);
            }
            2 => {
                let v = self.ins().atomic_load(ty, flags, p);
                self.add(v);
            }
            3 => {
                let v = self.value(ty)?;
                self.ins().atomic_store(flags, v, p);
            }
            _ => {
                self.ins().fence();
            }
        }
        Ok(true)
    }

    /// Mixes every byte of region `r` into the checksum, word by word.
    pub fn observe_region(&mut self, r: usize) -> Result<()> {
        let size = self.regions[r].size;
        let mut off = 0;
        while off < size {
            let ty = crate::value::word_within(size - off);
            let (p, imm) = self.address(r, off)?;
            let flags = self.load_flags(r)?;
            let v = self.ins().load(ty, flags, p, imm);
            self.mix(v)?;
            off += ty.bytes();
        }
        Ok(())
    }

    /// A pointer to `bytes` bytes of some region, at a random offset: the argument for a
    /// callee's `sarg` or (with `write`, since the callee writes it) pointer parameter.
    /// Returns the pointer and the region.
    pub fn region_arg(&mut self, bytes: u32, write: bool) -> Result<(Value, usize)> {
        let fits = self.regions_fitting(bytes, write);
        // `create_slots` made a slot big enough for every callee's regions.
        let r = *self.u.choose(&fits)?;
        let off = self.u.int_in_range(0..=self.regions[r].size - bytes)?;
        Ok((self.pointer_to(r, off)?, r))
    }

    /// Stores the checksum into the first pointer region (for functions observed through
    /// memory only).
    pub fn store_checksum(&mut self) -> Result<bool> {
        let Some(r) = (0..self.regions.len()).find(|&r| self.regions[r].kind == RegionKind::Ptr)
        else {
            return Ok(false);
        };
        let size = self.regions[r].size;
        let ty = crate::value::word_within(size);
        let v = self.checksum_as(ty)?;
        let off = self.u.int_in_range(0..=size - ty.bytes())?;
        let (p, imm) = self.address(r, off)?;
        let flags = self.store_flags(r)?;
        self.ins().store(flags, v, p, imm);
        Ok(true)
    }
}
