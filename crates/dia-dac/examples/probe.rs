use burn::prelude::*;
use burn_store::{ModuleStore, SafetensorsStore};
#[derive(serde::Deserialize, Debug)]
struct K {
    sample_rate: u32,
}
#[derive(serde::Deserialize, Debug)]
struct M {
    kwargs: K,
}
fn audio<B: Backend>(d: &B::Device) -> Vec<f32> {
    let root = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../assets/fixtures/dac-tiny/"
    );
    let dac = dia_dac::Dac::<B>::load(format!("{root}weights.safetensors"), d).unwrap();
    let mut st = SafetensorsStore::from_file(format!("{root}golden.safetensors"));
    let g = st.get_all_snapshots().unwrap();
    let codes =
        Tensor::<B, 3, Int>::from_data(g["decode_codes"].to_data().unwrap().convert::<i64>(), d);
    dac.decode(codes).unwrap().into_data().to_vec().unwrap()
}
fn main() {
    type N = burn_ndarray::NdArray<f32>;
    let base = audio::<N>(&Default::default());
    for round in 0..5 {
        let mut hs = vec![];
        for _ in 0..2 {
            hs.push(std::thread::spawn(|| {
                let p = concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../assets/fixtures/dac-tiny/weights.pth"
                );
                let _ = dia_dac::Dac::<N>::load(p, &Default::default());
                burn_store::pytorch::PytorchReader::load_config::<M, _>(p, Some("metadata")).ok();
            }));
        }
        for _ in 0..2 {
            hs.push(std::thread::spawn(|| {
                audio::<burn_flex::Flex>(&Default::default());
            }));
        }
        let nd: Vec<_> = (0..2)
            .map(|_| std::thread::spawn(|| audio::<N>(&Default::default())))
            .collect();
        for h in hs {
            let _ = h.join();
        }
        for h in nd {
            let b = h.join().unwrap();
            let m = b
                .iter()
                .zip(&base)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            println!("round {round}: diff {m:e}");
        }
    }
}
