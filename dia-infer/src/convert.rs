//! `dia-infer convert`: a checkpoint stored as the CPU kernels read it, which loads in seconds.

use anyhow::{Context, Result, bail};
use burn::tensor::DType;
use dia_burn::backends::{self, OnDevice};
use dia_burn::dia_model::checkpoint::converted;
use dia_burn::dia_model::runtime::BackendKind;
use dia_burn::dia_model::{CheckpointFiles, DiaBackend, ModelOptions};
use dia_burn::hub;

use crate::cli::ConvertArgs;

/// Finds (or downloads) the source checkpoint and writes the converted one on Flex, the
/// backend whose layout it stores.
pub fn run(args: &ConvertArgs) -> Result<()> {
    let (files, source) = match &args.model.model_dir {
        Some(dir) => (CheckpointFiles::in_dir(dir)?, dir.display().to_string()),
        None => (
            hub::model_files(&args.model.model, args.quiet)?,
            args.model.model.clone(),
        ),
    };
    if !BackendKind::Flex.is_compiled() {
        bail!("convert lays weights out for the Flex CPU backend, which this build lacks");
    }
    let dtype = args.dtype.unwrap_or(DType::F32);
    backends::run(
        BackendKind::Flex,
        Some(dtype),
        Convert {
            args,
            files,
            source,
        },
    )?
}

struct Convert<'a> {
    args: &'a ConvertArgs,
    files: CheckpointFiles,
    source: String,
}

impl OnDevice for Convert<'_> {
    type Output = Result<()>;

    fn run<B: DiaBackend>(self, device: B::Device, dtype: DType) -> Result<()> {
        let options = ModelOptions {
            dtype,
            weights: self.args.model.weight_storage(),
            ..ModelOptions::default()
        };
        let out = &self.args.output;
        let summary = converted::convert::<B>(&self.files, options, &self.source, out, &device)
            .with_context(|| format!("cannot convert {} into {}", self.source, out.display()))?;
        if !self.args.quiet {
            eprintln!(
                "wrote {} ({:.2} GB, {} weights, layout {}) from {}",
                summary.weights.display(),
                summary.bytes as f64 / 1e9,
                summary.converted.storage,
                converted::LAYOUT_VERSION,
                summary.converted.source,
            );
        }
        Ok(())
    }
}
