//! Speech streamed to stdout as raw 16-bit PCM while it is generated, for a player:
//! `cargo run --release --example stream_to_stdout -- MODEL CODEC "[S1] Hello." | aplay -f S16_LE -r 44100 -c 1`

use std::io::Write;
use std::ops::ControlFlow;

use dia_burn::{Dia, LoadOptions, audio::to_i16, backends::Flex};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, codec, text] = args.as_slice() else {
        return Err("usage: stream_to_stdout MODEL CODEC TEXT".into());
    };
    let options = LoadOptions::default()
        .model(model.as_str())
        .codec(codec.as_str());
    let dia = Dia::<Flex>::load(&options, &Default::default())?;
    let mut out = std::io::stdout().lock();
    dia.stream(&dia.speech(text.as_str()), |samples| {
        let bytes: Vec<u8> = samples
            .iter()
            .flat_map(|&s| to_i16(s).to_le_bytes())
            .collect();
        // A closed pipe (the player quit) stops the generation.
        match out.write_all(&bytes).and_then(|()| out.flush()) {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        }
    })?;
    Ok(())
}
