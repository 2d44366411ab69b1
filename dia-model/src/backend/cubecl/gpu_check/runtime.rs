//! A CubeCL runtime that compiles to CUDA C++ and runs nothing: its server takes each launch,
//! generates the kernel's source with CubeCL's CUDA compiler (the code `CudaRuntime` hands to
//! NVRTC) and keeps it. Buffers have a size and no memory, since no kernel runs. Its device
//! properties are CUDA's for the architecture it stands for, so the launch code makes the
//! choices (vector widths, types) it makes on that GPU; a `CudaRuntime` client needs the driver.

use std::sync::{Arc, Mutex};

use cubecl::bytes::Bytes;
use cubecl::device::{Device, DeviceId, DeviceService};
use cubecl::future::DynFut;
use cubecl::ir::{
    ContiguousElements, DeviceProperties, HardwareProperties, MatrixLayout, MemoryDeviceProperties,
    MmaProperties, TargetProperties, VectorSize, features::Plane,
};
use cubecl::profile::{ProfileDuration, TimingMethod};
use cubecl::server::{
    Binding, ComputeServer, CopyDescriptor, CubeCount, ExecutionMode, KernelArguments,
    ProfileError, ProfilingToken, ServerCommunication, ServerError, ServerUtilities,
};
use cubecl::stream_id::StreamId;
use cubecl::zspace::{Shape, Strides};
use cubecl::{CubeTask, MemoryConfiguration, MemoryUsage, Runtime, client::ComputeClient};
use cubecl_cpp::cuda::CudaDialect;
use cubecl_cpp::cuda::mma::{CudaWmmaCompiler, contiguous_elements_cuda};
use cubecl_cpp::register_supported_types;
use cubecl_cpp::shared::{CompilationOptions, CppCompiler, CppSupportedFeatures};
use cubecl_runtime::allocator::PitchedMemoryLayoutPolicy;
use cubecl_runtime::logging::ServerLogger;
use cubecl_runtime::memory_management::{
    ManagedMemoryHandle, MemoryAllocationMode, MemoryManagement, MemoryManagementOptions,
};
use cubecl_runtime::server::IoError;
use cubecl_runtime::storage::{
    ComputeStorage, ManagedResource, StorageHandle, StorageId, StorageUtilization,
};
use cubecl_runtime::timestamp_profiler::TimestampProfiler;

use super::cuda::CudaKernel;

/// CubeCL's CUDA compiler, as `CudaRuntime` builds it (without the `ptx-wmma` feature).
type CudaCompiler = CppCompiler<CudaDialect<CudaWmmaCompiler>>;

/// Shared memory a block may use without opting in, on every architecture since sm_70.
const STATIC_SHARED_BYTES: usize = 48 * 1024;

/// The runtime whose launches become CUDA sources (see the module doc).
#[derive(Debug, Clone)]
pub struct CudaSource;

/// A CUDA architecture the sources are generated for: `sm_{arch}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CudaSourceDevice {
    pub arch: u32,
}

impl Device for CudaSourceDevice {
    fn from_id(id: DeviceId) -> Self {
        Self {
            arch: u32::from(id.index_id),
        }
    }

    fn to_id(&self) -> DeviceId {
        DeviceId {
            type_id: 0,
            index_id: self.arch as u16,
        }
    }
}

impl burn::tensor::backend::DeviceOps for CudaSourceDevice {}

/// The sources a server generated, in launch order (one per launch; duplicates included).
pub type Sources = Arc<Mutex<Vec<CudaKernel>>>;

/// Keeps each launch's CUDA source; its buffers have no memory.
#[derive(Debug)]
pub struct SourceServer {
    memory: MemoryManagement<NoStorage>,
    options: CompilationOptions,
    timestamps: TimestampProfiler,
    utilities: Arc<ServerUtilities<Self>>,
}

impl ServerCommunication for SourceServer {
    const SERVER_COMM_ENABLED: bool = false;
}

impl DeviceService for SourceServer {
    fn init(id: DeviceId) -> Self {
        let arch = CudaSourceDevice::from_id(id).arch;
        let memory_props = MemoryDeviceProperties {
            max_page_size: 1 << 30,
            alignment: 512,
        };
        let logger = Arc::new(ServerLogger::default());
        let memory = MemoryManagement::from_configuration(
            NoStorage,
            &memory_props,
            MemoryConfiguration::default(),
            logger.clone(),
            MemoryManagementOptions::new("CUDA source"),
        );
        let props = cuda_properties(arch, memory_props);
        let policy = PitchedMemoryLayoutPolicy::new(props.memory.alignment as usize);
        let sources = Sources::default();
        Self {
            memory,
            options: compilation_options(arch),
            timestamps: TimestampProfiler::default(),
            utilities: Arc::new(ServerUtilities::new(props, logger, sources, policy)),
        }
    }

    fn utilities(&self) -> Arc<dyn std::any::Any + Send + Sync> {
        ComputeServer::utilities(self) as Arc<dyn std::any::Any + Send + Sync>
    }
}

/// What `CudaRuntime` derives from the architecture for code generation.
fn compilation_options(arch: u32) -> CompilationOptions {
    CompilationOptions {
        warp_size: 32,
        supports_features: CppSupportedFeatures {
            fast_math: true,
            grid_constants: arch >= 70,
            // The PyPI wheels are CUDA 12.9 (fast tanh needs 12.8).
            fast_tanh: arch >= 75,
            clusters: arch >= 90,
            elect_sync: arch >= 90,
        },
    }
}

/// CUDA's device properties for `arch` as far as kernel code generation reads them (types,
/// plane operations, 32-wide warps, 128-bit loads); the matrix-unit features, which Burn's
/// matmul reads and our kernels do not, are left out.
fn cuda_properties(arch: u32, memory: MemoryDeviceProperties) -> DeviceProperties {
    let hardware = HardwareProperties {
        load_width: 128,
        plane_size_min: 32,
        plane_size_max: 32,
        max_bindings: 1024,
        max_shared_memory_size: STATIC_SHARED_BYTES,
        max_cube_count: CudaSource::max_cube_count(),
        max_units_per_cube: 1024,
        max_cube_dim: (1024, 1024, 64),
        num_streaming_multiprocessors: Some(132),
        num_tensor_cores: None,
        min_tensor_cores_dim: None,
        num_cpu_cores: None,
        max_vector_size: VectorSize::MAX,
    };
    let mut props =
        DeviceProperties::new(Default::default(), memory, hardware, TimingMethod::System);
    register_supported_types(&mut props);
    if arch >= 70 {
        props.features.plane.insert(Plane::Sync);
    }
    props.features.memory_reinterpret = true;
    props.features.alignment = true;
    props.features.plane.insert(Plane::Ops);
    props.features.plane.insert(Plane::NonUniformControlFlow);
    props
}

impl ComputeServer for SourceServer {
    type Kernel = Box<dyn CubeTask<CudaCompiler>>;
    type Info = Sources;
    type MemoryLayoutPolicy = PitchedMemoryLayoutPolicy;
    type Storage = NoStorage;

    fn initialize_memory(&mut self, memory: ManagedMemoryHandle, size: u64, _: StreamId) {
        let reserved = self.memory.reserve(size).expect("host memory for a buffer");
        self.memory
            .bind(reserved, memory, 0)
            .expect("a buffer bound to its memory");
    }

    fn logger(&self) -> Arc<ServerLogger> {
        self.utilities.logger.clone()
    }

    fn utilities(&self) -> Arc<ServerUtilities<Self>> {
        self.utilities.clone()
    }

    fn read(
        &mut self,
        descriptors: Vec<CopyDescriptor>,
        _: StreamId,
    ) -> DynFut<Result<Vec<Bytes>, ServerError>> {
        // No kernel runs, so there is nothing worth reading: zeros of the right sizes.
        let sizes: Vec<_> = descriptors
            .iter()
            .map(|d| d.handle.size_in_used() as usize)
            .collect();
        Box::pin(async move {
            Ok(sizes
                .into_iter()
                .map(|n| Bytes::from_bytes_vec(vec![0; n]))
                .collect())
        })
    }

    fn write(&mut self, _: Vec<(CopyDescriptor, Bytes)>, _: StreamId) {}

    fn sync(&mut self, _: StreamId) -> DynFut<Result<(), ServerError>> {
        Box::pin(async { Ok(()) })
    }

    fn get_resource(
        &mut self,
        binding: Binding,
        _: StreamId,
    ) -> Result<ManagedResource<()>, ServerError> {
        // Checks the binding; the resource itself is `()`.
        self.memory.get_resource(
            binding.memory.clone(),
            binding.offset_start,
            binding.offset_end,
        )?;
        Ok(ManagedResource::new(binding.memory, ()))
    }

    unsafe fn launch(
        &mut self,
        kernel: Self::Kernel,
        _: CubeCount,
        _: KernelArguments,
        mode: ExecutionMode,
        _: StreamId,
    ) {
        let (name, id) = (kernel.name().to_string(), kernel.id().to_string());
        let compiled = kernel.compile(
            &mut CudaCompiler::default(),
            &self.options,
            mode,
            kernel.address_type(),
        );
        let source = match compiled {
            Ok(compiled) => {
                let shared = compiled.repr.as_ref().map_or(0, |r| r.shared_memory_size());
                let error = (shared > STATIC_SHARED_BYTES).then(|| {
                    format!("{shared} bytes of shared memory, over {STATIC_SHARED_BYTES}")
                });
                CudaKernel {
                    name,
                    id,
                    entrypoint: compiled.entrypoint_name,
                    source: compiled.source,
                    shared_bytes: shared,
                    error,
                }
            }
            Err(e) => CudaKernel {
                name,
                id,
                entrypoint: String::new(),
                source: String::new(),
                shared_bytes: 0,
                error: Some(format!("CubeCL's CUDA code generation failed: {e}")),
            },
        };
        self.utilities.info.lock().expect("sources").push(source);
    }

    fn flush(&mut self, _: StreamId) -> Result<(), ServerError> {
        Ok(())
    }

    fn memory_usage(&mut self, _: StreamId) -> Result<MemoryUsage, ServerError> {
        Ok(self.memory.memory_usage())
    }

    fn memory_cleanup(&mut self, _: StreamId) {
        self.memory.cleanup(true);
    }

    fn start_profile(&mut self, _: StreamId) -> Result<ProfilingToken, ServerError> {
        Ok(self.timestamps.start())
    }

    fn end_profile(
        &mut self,
        _: StreamId,
        token: ProfilingToken,
    ) -> Result<ProfileDuration, ProfileError> {
        self.timestamps.stop(token)
    }

    fn allocation_mode(&mut self, mode: MemoryAllocationMode, _: StreamId) {
        self.memory.mode(mode);
    }
}

impl Runtime for CudaSource {
    type Compiler = CudaCompiler;
    type Server = SourceServer;
    type Device = CudaSourceDevice;

    fn client(device: &Self::Device) -> ComputeClient<Self> {
        ComputeClient::load(device)
    }

    fn name(_: &ComputeClient<Self>) -> &'static str {
        "cuda-source"
    }

    fn require_array_lengths() -> bool {
        true
    }

    fn max_cube_count() -> (u32, u32, u32) {
        (i32::MAX as u32, u16::MAX as u32, u16::MAX as u32)
    }

    fn can_read_tensor(_: &Shape, _: &Strides) -> bool {
        true
    }

    /// `CudaRuntime`'s: its matrix units' register layouts.
    fn target_properties() -> TargetProperties {
        TargetProperties {
            mma: MmaProperties {
                register_size_bits: 32,
                const_plane_size: 32,
                register_layout_a: MatrixLayout::RowMajor,
                register_layout_b: MatrixLayout::ColMajor,
                register_layout_acc: MatrixLayout::RowMajor,
                register_duplication_a: 1,
                register_duplication_b: 1,
                register_duplication_acc: 1,
                contiguous_elements: ContiguousElements::new(contiguous_elements_cuda),
            },
        }
    }

    fn enumerate_devices(_: u16, _: &Sources) -> Vec<DeviceId> {
        Vec::new()
    }
}

/// Buffers with a size and no memory: no kernel runs to use them.
#[derive(Debug)]
pub struct NoStorage;

impl ComputeStorage for NoStorage {
    type Resource = ();

    fn alignment(&self) -> usize {
        512
    }

    fn get(&mut self, _: &StorageHandle) {}

    fn alloc(&mut self, size: u64) -> Result<StorageHandle, IoError> {
        let utilization = StorageUtilization { offset: 0, size };
        Ok(StorageHandle::new(StorageId::new(), utilization))
    }

    fn dealloc(&mut self, _: StorageId) {}

    fn flush(&mut self) {}
}
