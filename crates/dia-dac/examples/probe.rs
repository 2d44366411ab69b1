use burn_store::pytorch::PytorchReader;
fn main() {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../assets/fixtures/dac-tiny/weights.pth"
    );
    let r = PytorchReader::with_top_level_key(p, "state_dict").unwrap();
    let mut k = r.keys();
    k.sort();
    println!("{} {:?}", k.len(), &k[..5]);
    let s = r.get(&k[0]).unwrap();
    println!("{:?} {:?}", s.dtype, s.shape);
    let v = PytorchReader::read_pickle_data(p, Some("metadata"));
    println!("{:?}", v);
}
