//! WGSL modules through naga's Metal and DX12 writers: what wgpu does with our WGSL on macOS
//! (MSL) and Windows (HLSL), short of the vendors' own shader compilers.

use naga::back::{hlsl, msl};
use naga::valid::{Capabilities, ModuleInfo, ValidationFlags, Validator};

/// A shader naga's MSL path must refuse (Metal has no f64) and its HLSL path accept: proof
/// that the validation each translation goes through is on.
pub const F64_CANARY: &str = "@group(0) @binding(0) var<storage, read_write> out: array<f64>;
@compute @workgroup_size(1) fn main() { out[0] = out[0] * 2.0lf; }";

/// A compiled module as CubeCL's compilation log holds it: its kernel name and WGSL source.
#[derive(Debug, Clone)]
pub struct LoggedModule {
    pub name: String,
    pub source: String,
}

/// What became of one module: `Err` holds the failing stage's message.
#[derive(Debug, Clone)]
pub struct Translation {
    pub msl: Result<(), String>,
    pub hlsl: Result<(), String>,
}

/// The WGSL modules in CubeCL compilation logs (`[compilation.logger] level = "full"`; several
/// may be joined), each source once, in order of first compilation.
pub fn logged_modules(log: &str) -> Vec<LoggedModule> {
    let mut modules: Vec<LoggedModule> = Vec::new();
    for entry in log.split("[START_KERNEL_COMPILATION]").skip(1) {
        let Some(entry) = entry.split("[END_KERNEL_COMPILATION]").next() else {
            continue;
        };
        let name = entry
            .lines()
            .find_map(|l| l.strip_prefix("name: "))
            .unwrap_or("unnamed")
            .to_string();
        let Some(source) = entry.split_once("```wgsl\n").map(|(_, rest)| rest) else {
            continue;
        };
        let source = source
            .rsplit_once("```")
            .map_or(source, |(s, _)| s)
            .to_string();
        if !modules.iter().any(|m| m.source == source) {
            modules.push(LoggedModule { name, source });
        }
    }
    modules
}

/// `wgsl` parsed, validated against each writer's capabilities and written as MSL 2.4 and as
/// HLSL for shader model 6.2 (f16 and wave operations), with the options wgpu gives CubeCL's
/// modules (no bounds checks: CubeCL checks its own; loops bounded).
pub fn translate(wgsl: &str) -> Translation {
    let module = match naga::front::wgsl::parse_str(wgsl) {
        Ok(module) => module,
        Err(e) => {
            let message = format!("WGSL parse: {}", e.emit_to_string(wgsl));
            return Translation {
                msl: Err(message.clone()),
                hlsl: Err(message),
            };
        }
    };
    let msl = validate(&module, wgsl, msl::supported_capabilities()).and_then(|info| {
        let options = msl::Options {
            lang_version: (2, 4),
            force_loop_bounding: true,
            ..Default::default()
        };
        let pipeline = msl::PipelineOptions::default();
        msl::write_string(&module, &info, &options, &pipeline)
            .map(drop)
            .map_err(|e| format!("MSL writer: {e}"))
    });
    let hlsl = validate(&module, wgsl, hlsl::supported_capabilities()).and_then(|info| {
        let options = hlsl::Options {
            shader_model: hlsl::ShaderModel::V6_2,
            force_loop_bounding: true,
            ..Default::default()
        };
        let pipeline = hlsl::PipelineOptions::default();
        let mut out = String::new();
        hlsl::Writer::new(&mut out, &options, &pipeline)
            .write(&module, &info, None)
            .map(drop)
            .map_err(|e| format!("HLSL writer: {e}"))
    });
    Translation { msl, hlsl }
}

/// naga's validation of `module` (parsed from `wgsl`) with a writer's `capabilities`.
fn validate(
    module: &naga::Module,
    wgsl: &str,
    capabilities: Capabilities,
) -> Result<ModuleInfo, String> {
    Validator::new(ValidationFlags::all(), capabilities)
        .validate(module)
        .map_err(|e| format!("validation: {}", e.emit_to_string(wgsl)))
}
