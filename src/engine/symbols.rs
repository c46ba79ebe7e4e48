//! The interpreter's model of data objects and symbols, which `cranelift-interpreter` lacks.
//!
//! Upstream's interpreter knows stack memory only, and panics (`unimplemented!`) when a global
//! value names a symbol. The reference engine must give a case's data objects the meaning the
//! JIT and the object program give them, so it runs the interpreter's own `step` over a state
//! of ours ([`DataState`]): upstream's `InterpreterState` for frames, the stack and functions,
//! plus the case's data objects as a memory region of their own.
//!
//! * A data object lives in the interpreter's `GlobalValue` address region, entry = its index,
//!   offset = the byte within it. `symbol_value`/`global_value` of `%d0+8` is that address; of a
//!   function, the function's interpreter address (as `func_addr` gives).
//! * Relocated pointers in data (`fn@OFF`, `data@OFF`) hold those same encoded addresses, in
//!   the target's byte order: a `load.i64` of one and a `call_indirect` through it, or a load
//!   through it, work as natively. Their *value* differs from a native address, which is why
//!   the generator and the reducer never let an address be observed.
//! * A store to a read-only object, or an access outside an object, is a heap-out-of-bounds
//!   trap, as the interpreter treats the stack.
//!
//! The interpreter's `Interpreter` is tied to `InterpreterState`, so [`Machine`] drives `step`
//! itself: frames, block arguments, calls, tail calls and fuel, and the memory libcalls, which
//! need memory a libcall handler never sees (`super::libcalls::memory_call`).

use crate::case::TestCase;
use crate::data::Target;
use cranelift_codegen::data_value::DataValue;
use cranelift_codegen::ir::{
    ArgumentPurpose, Endianness, ExternalName, FuncRef, Function, GlobalValue, GlobalValueData,
    InstructionData, MemFlagsData, StackSlot, Type,
};
use cranelift_interpreter::address::{Address, AddressFunctionEntry, AddressRegion, AddressSize};
use cranelift_interpreter::frame::Frame;
use cranelift_interpreter::instruction::DfgInstructionContext;
use cranelift_interpreter::interpreter::{InterpreterError, InterpreterState, LibCallHandler};
use cranelift_interpreter::state::{InterpreterFunctionRef, MemoryError, State};
use cranelift_interpreter::step::{ControlFlow, step};

/// Why a case's symbols are beyond the model, if they are: the engine reports it `unsupported`.
pub fn unmodelled(case: &TestCase) -> Option<String> {
    for f in &case.functions {
        // Symbols an instruction uses: a declaration alone has no meaning to model.
        for i in crate::facts::insts(f) {
            let InstructionData::UnaryGlobalValue { global_value, .. } = f.dfg.insts[i] else {
                continue;
            };
            let GlobalValueData::Symbol { name, tls, .. } = &f.global_values[global_value] else {
                continue;
            };
            let Some(n) = crate::facts::name_of(f, name) else {
                return Some(format!(
                    "symbol {name:?} is not a case function or data object"
                ));
            };
            // Run lines are single-threaded: a thread-local object has one instance, modelled
            // like any object. A `tls` symbol of anything else has no meaning to model.
            if *tls != case.data_object(&n).is_some_and(|d| d.tls) {
                return Some(format!(
                    "symbol %{n} is {}thread-local where the case's data says otherwise",
                    if *tls { "" } else { "not " }
                ));
            }
            if case.data_object(&n).is_none() && case.function(&n).is_none() {
                return Some(format!(
                    "symbol %{n} is neither a function nor a data object of the case"
                ));
            }
        }
    }
    None
}

/// Upstream's state plus the case's data objects.
pub struct DataState<'a> {
    pub inner: InterpreterState<'a>,
    case: &'a TestCase,
    /// Contents of each data object, indexed like `case.data`.
    mem: Vec<Vec<u8>>,
}

impl<'a> DataState<'a> {
    /// `inner` with every data object of `case` at its initial contents.
    pub fn new(inner: InterpreterState<'a>, case: &'a TestCase) -> Result<Self, MemoryError> {
        let big = inner.native_endianness == Endianness::Big;
        let mut mem = Vec::with_capacity(case.data.len());
        for obj in &case.data {
            let mut bytes = obj.bytes.clone();
            for (off, target) in &obj.relocs {
                let addr = match target {
                    Target::Func(n) => function_address(&inner, n)?,
                    Target::Data(n, addend) => data_address(case, n, *addend)?,
                };
                let bits = match DataValue::try_from(addr)? {
                    DataValue::I64(x) => x as u64,
                    other => return Err(MemoryError::InvalidAddress(other)),
                };
                let word = if big {
                    bits.to_be_bytes()
                } else {
                    bits.to_le_bytes()
                };
                let at = *off as usize;
                bytes[at..at + word.len()].copy_from_slice(&word);
            }
            mem.push(bytes);
        }
        Ok(DataState { inner, case, mem })
    }

    /// The bytes `addr..addr+n` of a data object, if they are inside it.
    fn span(&self, addr: &Address, n: usize) -> Option<(usize, usize)> {
        let obj = usize::try_from(addr.entry).ok()?;
        let lo = usize::try_from(addr.offset).ok()?;
        let hi = lo.checked_add(n)?;
        (hi <= self.mem.get(obj)?.len()).then_some((obj, lo))
    }

    fn symbol_address(&self, f: &Function, name: &ExternalName) -> Result<Address, MemoryError> {
        let n =
            crate::facts::name_of(f, name).ok_or(MemoryError::InvalidEntry { entry: 0, max: 0 })?;
        if self.case.data_object(&n).is_some() {
            data_address(self.case, &n, 0)
        } else {
            function_address(&self.inner, &n)
        }
    }
}

fn function_address(state: &InterpreterState, name: &str) -> Result<Address, MemoryError> {
    let index = state
        .functions
        .index_of(&format!("%{name}"))
        .ok_or(MemoryError::InvalidEntry { entry: 0, max: 0 })?;
    Address::from_parts(
        AddressSize::_64,
        AddressRegion::Function,
        AddressFunctionEntry::UserFunction as u64,
        u64::from(index.as_u32()),
    )
}

fn data_address(case: &TestCase, name: &str, addend: i64) -> Result<Address, MemoryError> {
    let index = case
        .data
        .iter()
        .position(|d| d.name == name)
        .ok_or(MemoryError::InvalidEntry { entry: 0, max: 0 })?;
    Address::from_parts(
        AddressSize::_64,
        AddressRegion::GlobalValue,
        index as u64,
        addend as u64,
    )
}

impl<'a> State<'a> for DataState<'a> {
    fn get_function(&self, func_ref: FuncRef) -> Option<&'a Function> {
        self.inner.get_function(func_ref)
    }
    fn get_current_function(&self) -> &'a Function {
        self.inner.get_current_function()
    }
    fn get_libcall_handler(&self) -> LibCallHandler {
        self.inner.get_libcall_handler()
    }
    fn push_frame(&mut self, function: &'a Function) {
        self.inner.push_frame(function)
    }
    fn pop_frame(&mut self) {
        self.inner.pop_frame()
    }
    fn current_frame_mut(&mut self) -> &mut Frame<'a> {
        self.inner.current_frame_mut()
    }
    fn current_frame(&self) -> &Frame<'a> {
        self.inner.current_frame()
    }
    fn stack_address(
        &self,
        size: AddressSize,
        slot: StackSlot,
        offset: u64,
    ) -> Result<Address, MemoryError> {
        self.inner.stack_address(size, slot, offset)
    }

    fn checked_load(
        &self,
        addr: Address,
        ty: Type,
        mem_flags: MemFlagsData,
    ) -> Result<DataValue, MemoryError> {
        if addr.region != AddressRegion::GlobalValue {
            return self.inner.checked_load(addr, ty, mem_flags);
        }
        let n = ty.bytes() as usize;
        let Some((obj, lo)) = self.span(&addr, n) else {
            return Err(MemoryError::OutOfBoundsLoad {
                addr,
                load_size: n,
                mem_flags,
            });
        };
        if mem_flags.aligned() && !lo.is_multiple_of(n) {
            return Err(MemoryError::MisalignedLoad { addr, load_size: n });
        }
        let src = &self.mem[obj][lo..lo + n];
        Ok(match mem_flags.endianness(self.inner.native_endianness) {
            Endianness::Big => DataValue::read_from_slice_be(src, ty),
            Endianness::Little => DataValue::read_from_slice_le(src, ty),
        })
    }

    fn checked_store(
        &mut self,
        addr: Address,
        v: DataValue,
        mem_flags: MemFlagsData,
    ) -> Result<(), MemoryError> {
        if addr.region != AddressRegion::GlobalValue {
            return self.inner.checked_store(addr, v, mem_flags);
        }
        let n = v.ty().bytes() as usize;
        let writable = |obj: usize| self.case.data.get(obj).is_some_and(|d| d.writable);
        let Some((obj, lo)) = self.span(&addr, n).filter(|(obj, _)| writable(*obj)) else {
            return Err(MemoryError::OutOfBoundsStore {
                addr,
                store_size: n,
                mem_flags,
            });
        };
        if mem_flags.aligned() && !lo.is_multiple_of(n) {
            return Err(MemoryError::MisalignedStore {
                addr,
                store_size: n,
            });
        }
        let order = mem_flags.endianness(self.inner.native_endianness);
        let dst = &mut self.mem[obj][lo..lo + n];
        match order {
            Endianness::Big => v.write_to_slice_be(dst),
            Endianness::Little => v.write_to_slice_le(dst),
        }
        Ok(())
    }

    fn function_address(
        &self,
        size: AddressSize,
        name: &ExternalName,
    ) -> Result<Address, MemoryError> {
        self.inner.function_address(size, name)
    }

    fn get_function_from_address(&self, address: Address) -> Option<InterpreterFunctionRef<'a>> {
        self.inner.get_function_from_address(address)
    }

    /// Global values as the native engines compute them: symbols are data objects or functions,
    /// `load` reads through [`State::checked_load`] (so through data), `iadd_imm` adds.
    fn resolve_global_value(&self, gv: GlobalValue) -> Result<DataValue, MemoryError> {
        let f = self.get_current_function();
        // The chain from `gv` down to its root, resolved root first.
        let mut chain = vec![gv];
        while let GlobalValueData::Load { base, .. } | GlobalValueData::IAddImm { base, .. } =
            f.global_values[*chain.last().unwrap()]
        {
            chain.push(base);
        }
        let mut value = DataValue::I64(0);
        for &g in chain.iter().rev() {
            value = match f.global_values[g] {
                GlobalValueData::VMContext => {
                    let k = f
                        .signature
                        .params
                        .iter()
                        .position(|p| p.purpose == ArgumentPurpose::VMContext)
                        .ok_or(MemoryError::InvalidEntry { entry: 0, max: 0 })?;
                    let entry = f
                        .layout
                        .entry_block()
                        .expect("a function has an entry block");
                    self.current_frame()
                        .get(f.dfg.block_params(entry)[k])
                        .clone()
                }
                GlobalValueData::Symbol {
                    ref name, offset, ..
                } => {
                    let mut addr = self.symbol_address(f, name)?;
                    addr.offset = addr.offset.wrapping_add(i64::from(offset) as u64);
                    DataValue::try_from(addr)?
                }
                GlobalValueData::IAddImm {
                    offset,
                    global_type,
                    ..
                } => {
                    let k = DataValue::from_integer(i128::from(i64::from(offset)), global_type)
                        .map_err(|_| MemoryError::InvalidAddressType(global_type))?;
                    add(&value, &k)?
                }
                GlobalValueData::Load {
                    offset,
                    global_type,
                    flags,
                    ..
                } => {
                    let mut addr = Address::try_from(value)?;
                    addr.offset = addr
                        .offset
                        .wrapping_add(i64::from(i32::from(offset)) as u64);
                    self.checked_load(addr, global_type, f.dfg.mem_flags[flags])?
                }
                GlobalValueData::DynScaleTargetConst { .. } => {
                    return Err(MemoryError::InvalidEntry { entry: 0, max: 0 });
                }
            };
        }
        Ok(value)
    }

    fn get_pinned_reg(&self) -> DataValue {
        self.inner.get_pinned_reg()
    }
    fn set_pinned_reg(&mut self, v: DataValue) {
        self.inner.set_pinned_reg(v)
    }
}

fn add(a: &DataValue, b: &DataValue) -> Result<DataValue, MemoryError> {
    match (a, b) {
        (DataValue::I64(x), DataValue::I64(y)) => Ok(DataValue::I64(x.wrapping_add(*y))),
        (DataValue::I32(x), DataValue::I32(y)) => Ok(DataValue::I32(x.wrapping_add(*y))),
        _ => Err(MemoryError::InvalidAddress(a.clone())),
    }
}

/// Runs functions over a [`DataState`] with an instruction budget.
pub struct Machine<'a> {
    pub state: DataState<'a>,
    fuel: u64,
}

impl<'a> Machine<'a> {
    pub fn new(state: DataState<'a>, fuel: u64) -> Self {
        Machine { state, fuel }
    }

    /// Calls `func` with `args`: its `Return` or `Trap`, or why interpretation failed.
    pub fn call(
        &mut self,
        func: &'a Function,
        args: &[DataValue],
    ) -> Result<ControlFlow<'a>, InterpreterError> {
        let entry = func
            .layout
            .entry_block()
            .ok_or(InterpreterError::Unreachable)?;
        self.state.push_frame(func);
        self.state
            .current_frame_mut()
            .set_all(func.dfg.block_params(entry), args.to_vec());
        let mut next = func.layout.first_inst(entry);
        while let Some(inst) = next {
            if self.fuel == 0 {
                return Err(InterpreterError::FuelExhausted);
            }
            self.fuel -= 1;
            let after = func.layout.next_inst(inst);
            let flow = match super::libcalls::memory_call(&mut self.state, func, inst) {
                Some(flow) => flow,
                None => step(&mut self.state, DfgInstructionContext::new(inst, &func.dfg))?,
            };
            match flow {
                ControlFlow::Assign(values) => {
                    let results = func.dfg.inst_results(inst);
                    self.state
                        .current_frame_mut()
                        .set_all(results, values.to_vec());
                    next = after;
                }
                ControlFlow::Continue => next = after,
                ControlFlow::ContinueAt(block, args) => {
                    let params = func.dfg.block_params(block);
                    self.state
                        .current_frame_mut()
                        .set_all(params, args.to_vec());
                    next = func.layout.first_inst(block);
                }
                ControlFlow::Call(callee, args) => match self.call(callee, &args)? {
                    ControlFlow::Return(values) => {
                        let results = func.dfg.inst_results(inst);
                        self.state
                            .current_frame_mut()
                            .set_all(results, values.to_vec());
                        next = after;
                    }
                    trap => return Ok(trap),
                },
                ControlFlow::ReturnCall(callee, args) => {
                    self.state.pop_frame();
                    return self.call(callee, &args);
                }
                ControlFlow::Return(values) => {
                    self.state.pop_frame();
                    return Ok(ControlFlow::Return(values));
                }
                trap @ ControlFlow::Trap(_) => return Ok(trap),
            }
        }
        Err(InterpreterError::Unreachable)
    }
}
