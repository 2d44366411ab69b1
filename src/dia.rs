//! [`Dia`]: the model and its codec together, the one entry point for applications. Text in,
//! 44.1 kHz samples out; scripts of any length; audio streamed as it becomes final; many
//! requests at once. Every request decodes exactly as it would alone.

use std::ops::ControlFlow;
use std::path::Path;

use dia_dac::Dac;
use dia_model::{
    DiaBackend, DiaModel, GenerationConfig, LongFormOptions, LongFormOutput, LongFormRequest,
    ModelOptions, VoicePrompt,
};

use crate::error::{Error, Result};
use crate::options::{DiaFiles, LoadOptions};
use crate::schedule::{SpeechEvent, SpeechJob, SpeechScheduler};
use crate::voice::{VoiceSource, load_voice, voice_from_codes};

/// Dia and its codec, loaded together and checked to speak the same channels.
pub struct Dia<B: DiaBackend> {
    model: DiaModel<B>,
    codec: Dac<B>,
    long_form: LongFormOptions,
}

/// What to say: a script (`[S1]`/`[S2]` turns, any length), an optional voice to continue, and
/// the generation parameters.
#[derive(Debug, Clone)]
pub struct Speech {
    pub text: String,
    pub voice: Option<VoicePrompt>,
    /// The parameters; [`Dia::speech`] starts from the defaults with the model's frame limit.
    pub config: GenerationConfig,
}

impl Speech {
    /// This speech continuing `voice`.
    pub fn voice(mut self, voice: VoicePrompt) -> Self {
        self.voice = Some(voice);
        self
    }

    /// This speech sampled with `seed`.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }
}

/// What [`Dia::generate`] returns: the samples and the codes of every pass.
#[derive(Debug, Clone)]
pub struct Spoken {
    /// Mono samples at [`Dia::sample_rate`].
    pub samples: Vec<f32>,
    pub output: LongFormOutput,
}

impl<B: DiaBackend> Dia<B> {
    /// Model and codec as [`LoadOptions`] names them (downloading from the hub if needed), in
    /// the options' dtype (f32 when none is set) on `device`.
    pub fn load(options: &LoadOptions, device: &B::Device) -> Result<Self> {
        let dtype = options.dtype.unwrap_or(burn::tensor::DType::F32);
        Self::load_files(&options.files()?, options.model_options(dtype), device)
    }

    /// Model and codec from files already found; a failure names the file.
    pub fn load_files(files: &DiaFiles, options: ModelOptions, device: &B::Device) -> Result<Self> {
        let failed = |what, path: &Path| {
            let path = path.to_path_buf();
            move |e: Error| Error::Load {
                what,
                path,
                cause: Box::new(e),
            }
        };
        let model = DiaModel::<B>::load_files(&files.model, options, device)
            .map_err(|e| failed("model", &files.model.weights)(e.into()))?;
        let codec = Dac::<B>::load(&files.codec, device)
            .map_err(|e| failed("codec", &files.codec)(e.into()))?;
        Self::new(model, codec)
    }

    /// A model and a codec that speak the same channels.
    pub fn new(model: DiaModel<B>, codec: Dac<B>) -> Result<Self> {
        let channels = model.config.decoder.num_channels;
        if codec.config().n_codebooks != channels {
            return Err(Error::Invalid(format!(
                "the codec has {} codebooks but the model speaks {channels} channels",
                codec.config().n_codebooks
            )));
        }
        Ok(Self {
            model,
            codec,
            long_form: LongFormOptions::default(),
        })
    }

    /// How scripts longer than one pass are cut and carried (see [`LongFormOptions`]).
    pub fn with_long_form(mut self, options: LongFormOptions) -> Result<Self> {
        options.check()?;
        self.long_form = options;
        Ok(self)
    }

    pub fn model(&self) -> &DiaModel<B> {
        &self.model
    }

    pub fn codec(&self) -> &Dac<B> {
        &self.codec
    }

    /// Samples per second of the audio this speaks.
    pub fn sample_rate(&self) -> u32 {
        self.codec.config().sample_rate
    }

    /// `text` to say with the default parameters and no voice.
    pub fn speech(&self, text: impl Into<String>) -> Speech {
        Speech {
            text: text.into(),
            voice: None,
            config: GenerationConfig::default(),
        }
    }

    /// Speaks `text` with the default parameters: mono samples at [`Dia::sample_rate`].
    pub fn speak(&self, text: &str) -> Result<Vec<f32>> {
        Ok(self.generate(&self.speech(text))?.samples)
    }

    /// Speaks `speech` whole: its samples and codes.
    pub fn generate(&self, speech: &Speech) -> Result<Spoken> {
        let mut samples = Vec::new();
        let output = self.stream(speech, |piece| {
            samples.extend_from_slice(piece);
            ControlFlow::Continue(())
        })?;
        Ok(Spoken { samples, output })
    }

    /// Speaks `speech`, handing `on_audio` each piece of samples as soon as no later frame can
    /// change it; the pieces joined are [`Dia::generate`]'s samples. `Break` stops (what was
    /// handed over stands). Returns the codes of every pass.
    pub fn stream(
        &self,
        speech: &Speech,
        mut on_audio: impl FnMut(&[f32]) -> ControlFlow<()>,
    ) -> Result<LongFormOutput> {
        let mut scheduler = self.scheduler(1)?;
        let job = scheduler.submit(self.job(speech, true))?;
        let (mut result, mut stop) = (None, false);
        while result.is_none() && !stop {
            scheduler.step(|event| match event {
                SpeechEvent::Audio { samples, .. } => stop |= on_audio(samples).is_break(),
                SpeechEvent::Done { output, .. } => result = Some(Ok(output)),
                SpeechEvent::Failed { error, .. } => result = Some(Err(error)),
                SpeechEvent::Started { .. } => {}
            })?;
        }
        match result {
            Some(done) => done,
            None => Ok(scheduler.cancel(job).unwrap_or_default()),
        }
    }

    /// A scheduler for many requests at once on one continuous batch of `max_batch` slots:
    /// each request's codes and audio are those of its solo run (see [`SpeechScheduler`]).
    pub fn scheduler(&self, max_batch: usize) -> Result<SpeechScheduler<'_, B>> {
        SpeechScheduler::new(&self.model, &self.codec, max_batch, self.long_form)
    }

    /// `speech` as a scheduler job, streamed or not.
    pub fn job(&self, speech: &Speech, stream: bool) -> SpeechJob {
        SpeechJob {
            script: LongFormRequest {
                script: speech.text.clone(),
                voice: speech.voice.clone(),
            },
            config: speech.config,
            stream,
        }
    }

    /// The voice an audio file (wav, mp3, flac, ogg) or codes JSON file (`*.json`) holds, with
    /// its transcript, checked to leave the model room to speak.
    pub fn voice_from_file(&self, path: &Path, transcript: &str) -> Result<VoicePrompt> {
        load_voice(
            &self.model,
            &self.codec,
            VoiceSource::of_file(path),
            transcript,
            self.max_tokens(),
        )
    }

    /// The voice `codes` `[frames][channels]` hold, with their transcript, checked likewise.
    pub fn voice_from_codes(&self, codes: Vec<Vec<u32>>, transcript: &str) -> Result<VoicePrompt> {
        voice_from_codes(&self.model, codes, transcript, self.max_tokens())
    }

    /// The model's frame limit, which a voice must leave room under.
    fn max_tokens(&self) -> usize {
        GenerationConfig::default().max_tokens_for(&self.model.config)
    }

    /// Codes `[frames][channels]` of mono `samples` at [`Dia::sample_rate`].
    pub fn encode(&self, samples: &[f32]) -> Result<Vec<Vec<u32>>> {
        Ok(self.codec.encode_samples(samples)?)
    }

    /// Samples of codes `[frames][channels]`, decoded window by window (bounded memory).
    pub fn decode(&self, codes: &[Vec<u32>]) -> Result<Vec<f32>> {
        Ok(self.codec.decode_frames(codes)?)
    }
}
