//! The GPU compile check's own pieces (`scripts/gpu-compile-check.sh` runs these tests with
//! the wgpu ones): the CUDA sources cover every kernel of ours, and naga's translation refuses
//! what a target lacks.

use dia_model::backend::gpu_check::{F64_CANARY, cuda_kernels, logged_modules, translate};

/// Each family of our kernels, by CubeCL's name for its kernel type.
const FAMILIES: [&str; 10] = [
    "ProjectKernel",
    "ProjectInt8Kernel",
    "SumSplitsKernel",
    "DequantizeKernel",
    "AttendOneKernel",
    "JoinSplitsKernel",
    "RmsNormKernel",
    "RopeKernel",
    "RopeCacheWriteKernel",
    "ChooseKernel",
];

/// Every family is generated, each variant without error, every projection row count and all
/// six sampling rules distinct; the source holds its entry point.
#[test]
fn cuda_sources_cover_every_kernel() {
    let kernels = cuda_kernels(80);
    let of = |family: &str| {
        kernels
            .iter()
            .filter(|k| k.name.contains(&format!("::{family}<")))
            .count()
    };
    for family in FAMILIES {
        assert!(of(family) > 0, "no {family} generated");
    }
    // 3 float storages × 8 rows, for f16 and bf16 activations twice (split sums in f32, a whole
    // product in the activation's dtype), for f32 once (both write f32).
    assert_eq!(of("ProjectKernel"), 3 * 8 * (2 + 2 + 1));
    assert_eq!(of("ChooseKernel"), 6);
    for kernel in &kernels {
        assert_eq!(kernel.error, None, "{}", kernel.name);
        assert!(
            kernel.source.contains(&kernel.entrypoint),
            "{}",
            kernel.name
        );
        assert!(kernel.source.contains("__global__"), "{}", kernel.name);
    }
}

/// A valid compute shader translates for both; f64, which Metal lacks, is refused for MSL only.
#[test]
fn naga_translates_and_refuses_what_a_target_lacks() {
    let ok = "@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    out[id.x] = out[id.x] * 2.0;
}";
    let t = translate(ok);
    assert_eq!((t.msl, t.hlsl), (Ok(()), Ok(())));
    let t = translate(F64_CANARY);
    assert!(t.msl.is_err() && t.hlsl.is_ok(), "{t:?}");
    assert!(translate("fn broken(").msl.is_err());
}

/// Modules are read from CubeCL's log format, each source once.
#[test]
fn logged_modules_are_read_once_each() {
    let entry = |name: &str, body: &str| {
        format!(
            "[START_KERNEL_COMPILATION]\nname: {name}\nid: x\nsource:\n```wgsl\n{body}\n```\n[END_KERNEL_COMPILATION]\n"
        )
    };
    let log = [
        entry("a", "fn a() {}"),
        entry("b", "fn b() {}"),
        entry("a2", "fn a() {}"),
    ]
    .concat();
    let modules = logged_modules(&log);
    let names: Vec<_> = modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(modules[1].source, "fn b() {}\n");
}
