//! Text to WAV with the library: load a Dia checkpoint and a DAC codec, generate codes, decode
//! them to audio and write a 44.1 kHz WAV, on the backend named by `DIA_BACKEND` (default:
//! the best one compiled in).
//!
//! ```sh
//! cargo run --release --example text_to_wav -- MODEL_DIR DAC_PATH OUT.wav "[S1] Hello there."
//! ```

use std::error::Error;
use std::ops::ControlFlow;
use std::path::PathBuf;

use dia_burn::dia_dac::Dac;
use dia_burn::dia_model::{
    BackendKind, DiaBackend, DiaModel, GenerationConfig, GenerationRequest, ModelOptions,
    OnBackend, generate,
};

/// What to speak and where the files are.
struct Speak {
    model_dir: PathBuf,
    dac_path: PathBuf,
    output: PathBuf,
    text: String,
}

impl OnBackend for Speak {
    type Output = Result<usize, Box<dyn Error>>;

    /// Generates and writes the WAV; returns the number of samples written.
    fn run<B: DiaBackend>(self, device: B::Device) -> Self::Output {
        let model = DiaModel::<B>::load(&self.model_dir, ModelOptions::default(), &device)?;
        let dac = Dac::<B>::load(&self.dac_path, &device)?;
        let request = GenerationRequest {
            text: self.text,
            audio_prompt: None,
        };
        let config = GenerationConfig {
            max_tokens: model.config.decoder.max_position_embeddings,
            ..GenerationConfig::default()
        };
        let out = generate(&model, &[request], &config, |_| ControlFlow::Continue(()))?;
        let samples = dac.decode_frames(&out[0].codes)?;
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: dac.config().sample_rate,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut wav = hound::WavWriter::create(&self.output, spec)?;
        for &s in &samples {
            wav.write_sample(s)?;
        }
        wav.finalize()?;
        Ok(samples.len())
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model_dir, dac_path, output, text] = args.as_slice() else {
        return Err("usage: text_to_wav MODEL_DIR DAC_PATH OUTPUT.wav TEXT".into());
    };
    let backend: BackendKind = std::env::var("DIA_BACKEND")
        .unwrap_or_else(|_| "auto".into())
        .parse()?;
    let speak = Speak {
        model_dir: model_dir.into(),
        dac_path: dac_path.into(),
        output: output.into(),
        text: text.clone(),
    };
    let samples = backend.run(speak)??;
    println!("wrote {samples} samples to {output} on {backend}");
    Ok(())
}
