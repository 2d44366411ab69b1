//! Text to WAV: `cargo run --release --example text_to_wav -- MODEL CODEC OUT.wav "[S1] Hello."`
//! (MODEL, CODEC: hub repositories or local paths).

use dia_burn::{Dia, LoadOptions, backends::Flex};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, codec, output, text] = args.as_slice() else {
        return Err("usage: text_to_wav MODEL CODEC OUTPUT.wav TEXT".into());
    };
    let options = LoadOptions::default()
        .model(model.as_str())
        .codec(codec.as_str());
    let dia = Dia::<Flex>::load(&options, &Default::default())?;
    let samples = dia.speak(text)?;
    dia_burn::audio::write_wav(output.as_ref(), &samples, dia.sample_rate())?;
    println!("wrote {} samples to {output}", samples.len());
    Ok(())
}
