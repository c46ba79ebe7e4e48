//! The object files of a batch: one per case with its function table, and the directory.

use super::{CaseObject, batch_prefix};
use crate::engine::catch;
use crate::engine::program::{CodeInfo, Defined, Program};
use crate::outcome::{Outcome, Phase};
use cranelift_module::{DataDescription, Linkage, Module};
use cranelift_object::{ObjectBuilder, ObjectModule};

pub(super) fn table_symbol(k: usize) -> String {
    format!("clif_diff_table_{k}")
}

/// Compiles case `k` into its own object with its table.
pub(super) fn compile_case(
    isa: cranelift_codegen::isa::OwnedTargetIsa,
    k: usize,
    program: &Program,
) -> Result<CaseObject, Outcome> {
    catch(Phase::Compile, || -> Result<CaseObject, Outcome> {
        let builder =
            ObjectBuilder::new(isa, "clif_diff", cranelift_module::default_libcall_names())
                .map_err(|e| Outcome::Error {
                    phase: Phase::Setup,
                    message: crate::engine::program::module_error_text(&e),
                })?;
        let mut module = ObjectModule::new(builder);
        let defined = [program.define(&mut module, &batch_prefix(k))?];
        define_table(&mut module, &defined, &table_symbol(k))?;
        let code: Vec<CodeInfo> = table_order(&defined).map(|(_, c)| c.clone()).collect();
        let product = catch(Phase::Finalize, || module.finish())?;
        let bytes = product.emit().map_err(|e| Outcome::Error {
            phase: Phase::Finalize,
            message: e.to_string(),
        })?;
        Ok(CaseObject { bytes, code })
    })?
}

/// The object holding `clif_diff_tables = { n, &clif_diff_table_<k>... }` for the cases `keys`.
pub(super) fn directory_object(
    isa: cranelift_codegen::isa::OwnedTargetIsa,
    keys: &[usize],
) -> Result<Vec<u8>, Outcome> {
    let err = |e: cranelift_module::ModuleError| Outcome::Error {
        phase: Phase::Compile,
        message: crate::engine::program::module_error_text(&e),
    };
    let builder = ObjectBuilder::new(isa, "clif_diff", cranelift_module::default_libcall_names())
        .map_err(err)?;
    let mut module = ObjectModule::new(builder);
    let ptr = module.isa().pointer_bytes() as usize;
    let mut desc = DataDescription::new();
    let mut init = vec![0u8; ptr * (1 + keys.len())];
    init[..ptr].copy_from_slice(&pointer_word(&module, keys.len() as u64));
    desc.define(init.into_boxed_slice());
    desc.set_align(ptr as u64);
    for (g, &k) in keys.iter().enumerate() {
        let id = module
            .declare_data(&table_symbol(k), Linkage::Import, false, false)
            .map_err(err)?;
        let gv = module.declare_data_in_data(id, &mut desc);
        desc.write_data_addr(((1 + g) * ptr) as u32, gv, 0);
    }
    let dir = module
        .declare_data("clif_diff_tables", Linkage::Export, false, false)
        .map_err(err)?;
    module.define_data(dir, &desc).map_err(err)?;
    module.finish().emit().map_err(|e| Outcome::Error {
        phase: Phase::Finalize,
        message: e.to_string(),
    })
}

fn table_order(defined: &[Defined]) -> impl Iterator<Item = &(cranelift_module::FuncId, CodeInfo)> {
    // Case functions first, then trampolines: the driver's table layout.
    let funcs = defined
        .iter()
        .flat_map(|d| d.code.iter().filter(|(id, _)| !d.tramps.contains(id)));
    let tramps = defined
        .iter()
        .flat_map(|d| d.code.iter().filter(|(id, _)| d.tramps.contains(id)));
    funcs.chain(tramps)
}

fn pointer_word(module: &ObjectModule, v: u64) -> Vec<u8> {
    let ptr = module.isa().pointer_bytes() as usize;
    if module.isa().endianness() == cranelift_codegen::ir::Endianness::Big {
        v.to_be_bytes()[8 - ptr..].to_vec()
    } else {
        v.to_le_bytes()[..ptr].to_vec()
    }
}

/// `clif_diff_table_<g> = { nfuncs, ntramps, funcs..., tramps... }`.
fn define_table(
    module: &mut ObjectModule,
    defined: &[Defined],
    symbol: &str,
) -> Result<cranelift_module::DataId, Outcome> {
    let err = |e: cranelift_module::ModuleError| Outcome::Error {
        phase: Phase::Compile,
        message: crate::engine::program::module_error_text(&e),
    };
    let ptr = module.isa().pointer_bytes() as usize;
    let all: Vec<cranelift_module::FuncId> = table_order(defined).map(|(id, _)| *id).collect();
    let ntramps: usize = defined.iter().map(|d| d.tramps.len()).sum();
    let mut desc = DataDescription::new();
    let mut init = vec![0u8; ptr * (2 + all.len())];
    init[..ptr].copy_from_slice(&pointer_word(module, (all.len() - ntramps) as u64));
    init[ptr..2 * ptr].copy_from_slice(&pointer_word(module, ntramps as u64));
    desc.define(init.into_boxed_slice());
    desc.set_align(ptr as u64);
    for (i, id) in all.iter().enumerate() {
        let f = module.declare_func_in_data(*id, &mut desc);
        desc.write_function_addr(((2 + i) * ptr) as u32, f);
    }
    let table = module
        .declare_data(symbol, Linkage::Export, false, false)
        .map_err(err)?;
    module.define_data(table, &desc).map_err(err)?;
    Ok(table)
}
