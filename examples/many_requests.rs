//! Several requests at once on one continuous batch, each written to its own WAV as it ends:
//! `cargo run --release --example many_requests -- MODEL CODEC OUT_DIR "[S1] One." "[S2] Two."`
//! Each request's audio is exactly what it would be alone.

use std::collections::HashMap;

use dia_burn::{Dia, LoadOptions, SpeechEvent, backends::Flex};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, codec, out_dir, texts @ ..] = args.as_slice() else {
        return Err("usage: many_requests MODEL CODEC OUT_DIR TEXT...".into());
    };
    let options = LoadOptions::default()
        .model(model.as_str())
        .codec(codec.as_str());
    let dia = Dia::<Flex>::load(&options, &Default::default())?;
    let mut scheduler = dia.scheduler(4)?;
    let mut audio = HashMap::new();
    for (n, text) in texts.iter().enumerate() {
        let speech = dia.speech(text.as_str()).seed(n as u64);
        audio.insert(scheduler.submit(dia.job(&speech, true))?, (n, Vec::new()));
    }
    let mut failure = None;
    while !scheduler.is_idle() {
        scheduler.step(|event| match event {
            SpeechEvent::Audio { job, samples } => audio
                .entry(job)
                .or_insert((0, Vec::new()))
                .1
                .extend(samples),
            SpeechEvent::Done { job, .. } => {
                let (n, samples) = &audio[&job];
                let path = std::path::Path::new(out_dir).join(format!("{n}.wav"));
                if let Err(e) = dia_burn::audio::write_wav(&path, samples, dia.sample_rate()) {
                    failure.get_or_insert(e);
                }
            }
            SpeechEvent::Failed { error, .. } => drop(failure.get_or_insert(error)),
            SpeechEvent::Started { .. } => {}
        })?;
    }
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
