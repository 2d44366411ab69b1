//! [`AnyDia`]: a [`Dia`] on the backend named at run time ([`LoadOptions::backend`]), for
//! applications and bindings that cannot be generic over the backend (a Python class, a
//! server choosing by flag). Each method runs the backend's own [`Dia`].

use std::ops::ControlFlow;
use std::path::Path;

use dia_model::runtime::ensure_dtype;
use dia_model::{BackendKind, DiaBackend, DiaError, LongFormOutput, VoicePrompt};

use crate::dia::{Dia, Speech, Spoken};
use crate::error::Result;
use crate::options::LoadOptions;

/// A [`Dia`] on whichever backend the options named; compiled-in backends only.
// One per process, holding gigabytes of weights behind handles: the variants' sizes differ by
// a few hundred bytes of backend state, and a box would only add an indirection.
#[allow(clippy::large_enum_variant)]
pub enum AnyDia {
    #[cfg(feature = "flex")]
    Flex(Dia<crate::backends::Flex>),
    #[cfg(feature = "ndarray")]
    NdArray(Dia<crate::backends::NdArray>),
    #[cfg(feature = "wgpu")]
    Wgpu(Dia<crate::backends::Wgpu>),
    #[cfg(feature = "cuda")]
    Cuda(Dia<crate::backends::Cuda>),
}

/// Runs `$body` with `$dia` bound to the variant's [`Dia`], whatever its backend.
macro_rules! each {
    ($any:expr, $dia:ident => $body:expr) => {
        match $any {
            #[cfg(feature = "flex")]
            AnyDia::Flex($dia) => $body,
            #[cfg(feature = "ndarray")]
            AnyDia::NdArray($dia) => $body,
            #[cfg(feature = "wgpu")]
            AnyDia::Wgpu($dia) => $body,
            #[cfg(feature = "cuda")]
            AnyDia::Cuda($dia) => $body,
        }
    };
}

impl AnyDia {
    /// Loads on `options.backend` (`auto` resolved when the options were made) on its default
    /// device, in `options.dtype` or the backend's default, after checking that the backend
    /// computes in it.
    pub fn load(options: &LoadOptions) -> Result<Self> {
        let files = options.files()?;
        let dtype = options.compute_dtype();
        let model_options = options.model_options(dtype);
        let kind = options.backend;
        fn on<B: DiaBackend>(
            kind: BackendKind,
            files: &crate::DiaFiles,
            options: dia_model::ModelOptions,
        ) -> Result<Dia<B>> {
            let device = B::Device::default();
            ensure_dtype::<B>(kind, &device, options.dtype)?;
            Dia::load_files(files, options, &device)
        }
        match kind {
            #[cfg(feature = "flex")]
            BackendKind::Flex => Ok(Self::Flex(on(kind, &files, model_options)?)),
            #[cfg(feature = "ndarray")]
            BackendKind::NdArray => Ok(Self::NdArray(on(kind, &files, model_options)?)),
            #[cfg(feature = "wgpu")]
            BackendKind::Wgpu => Ok(Self::Wgpu(on(kind, &files, model_options)?)),
            #[cfg(feature = "cuda")]
            BackendKind::Cuda => Ok(Self::Cuda(on(kind, &files, model_options)?)),
            #[allow(unreachable_patterns)]
            other => Err(DiaError::Unavailable(format!(
                "AnyDia does not run on the {other} backend in this build (compiled: {})",
                compiled()
            ))
            .into()),
        }
    }

    /// The backend it runs on.
    pub fn backend(&self) -> BackendKind {
        match self {
            #[cfg(feature = "flex")]
            Self::Flex(_) => BackendKind::Flex,
            #[cfg(feature = "ndarray")]
            Self::NdArray(_) => BackendKind::NdArray,
            #[cfg(feature = "wgpu")]
            Self::Wgpu(_) => BackendKind::Wgpu,
            #[cfg(feature = "cuda")]
            Self::Cuda(_) => BackendKind::Cuda,
        }
    }

    /// See [`Dia::sample_rate`].
    pub fn sample_rate(&self) -> u32 {
        each!(self, dia => dia.sample_rate())
    }

    /// See [`Dia::speech`].
    pub fn speech(&self, text: impl Into<String>) -> Speech {
        each!(self, dia => dia.speech(text))
    }

    /// See [`Dia::speak`].
    pub fn speak(&self, text: &str) -> Result<Vec<f32>> {
        each!(self, dia => dia.speak(text))
    }

    /// See [`Dia::generate`].
    pub fn generate(&self, speech: &Speech) -> Result<Spoken> {
        each!(self, dia => dia.generate(speech))
    }

    /// See [`Dia::stream`].
    pub fn stream(
        &self,
        speech: &Speech,
        on_audio: impl FnMut(&[f32]) -> ControlFlow<()>,
    ) -> Result<LongFormOutput> {
        each!(self, dia => dia.stream(speech, on_audio))
    }

    /// See [`Dia::voice_from_file`].
    pub fn voice_from_file(&self, path: &Path, transcript: &str) -> Result<VoicePrompt> {
        each!(self, dia => dia.voice_from_file(path, transcript))
    }

    /// See [`Dia::voice_from_codes`].
    pub fn voice_from_codes(&self, codes: Vec<Vec<u32>>, transcript: &str) -> Result<VoicePrompt> {
        each!(self, dia => dia.voice_from_codes(codes, transcript))
    }

    /// See [`Dia::encode`].
    pub fn encode(&self, samples: &[f32]) -> Result<Vec<Vec<u32>>> {
        each!(self, dia => dia.encode(samples))
    }

    /// See [`Dia::decode`].
    pub fn decode(&self, codes: &[Vec<u32>]) -> Result<Vec<f32>> {
        each!(self, dia => dia.decode(codes))
    }
}

/// The backends this build can load, by name.
fn compiled() -> String {
    let names: Vec<&str> = BackendKind::compiled()
        .into_iter()
        .filter(|k| *k != BackendKind::WgpuNoFusion)
        .map(BackendKind::name)
        .collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use dia_model::BackendKind;

    use super::AnyDia;
    use crate::LoadOptions;
    use crate::backends::Flex;
    use crate::dia::Dia;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("assets/fixtures")
            .join(name)
    }

    fn options(backend: BackendKind) -> LoadOptions {
        LoadOptions::default()
            .model(fixture("dia-tiny").as_path())
            .codec(fixture("dac-tiny-hf").as_path())
            .backend(backend)
    }

    /// Loaded by name, it speaks what the typed `Dia` speaks; a backend this build lacks is a
    /// clear error, not a panic.
    #[test]
    fn by_name_speaks_as_by_type() {
        let any = AnyDia::load(&options(BackendKind::Flex)).unwrap();
        assert_eq!(any.backend(), BackendKind::Flex);
        let typed = Dia::<Flex>::load(&options(BackendKind::Flex), &Default::default()).unwrap();
        let speech = any.speech("[S1] Hello. [S2] Hi.").seed(7);
        let got = any.generate(&speech).unwrap();
        let want = typed.generate(&speech).unwrap();
        assert!(!got.samples.is_empty() && got.samples.iter().all(|s| s.is_finite()));
        assert_eq!(got.samples, want.samples);
        assert_eq!(got.output, want.output);
        assert_eq!(any.sample_rate(), typed.sample_rate());
        if !BackendKind::Cuda.is_compiled() {
            let Err(err) = AnyDia::load(&options(BackendKind::Cuda)) else {
                panic!("cuda is not compiled in");
            };
            assert!(err.to_string().contains("cuda"), "{err}");
        }
    }
}
