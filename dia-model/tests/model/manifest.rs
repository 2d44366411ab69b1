//! The loader, built for the full-size config, expects exactly the real checkpoint's tensors.

use std::collections::BTreeMap;

use dia_model::DiaConfig;
use dia_model::checkpoint::names::{CheckpointFormat, ModelParam};

fn manifest() -> serde_json::Value {
    dia_test_support::fixture_json("manifests/dia-1.6b-keys.json")
}

#[test]
fn manifest_config_is_the_full_size_preset() {
    let parsed = DiaConfig::from_json_str(&manifest()["config"].to_string()).unwrap();
    assert_eq!(parsed, DiaConfig::dia_1_6b());
}

#[test]
fn nari_layout_expects_exactly_the_manifest_tensors() {
    let want: BTreeMap<String, Vec<usize>> = manifest()["tensors"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::from_value(v.clone()).unwrap()))
        .collect();
    let got: BTreeMap<String, Vec<usize>> = CheckpointFormat::Nari
        .expected_tensors(&DiaConfig::dia_1_6b())
        .into_iter()
        .collect();
    assert_eq!(got.len(), 343);
    assert_eq!(got, want);
    let params: usize = got.values().map(|s| s.iter().product::<usize>()).sum();
    assert_eq!(
        params.to_string(),
        manifest()["parameters"]
            .as_str()
            .map_or_else(|| manifest()["parameters"].to_string(), str::to_string)
    );
}

#[test]
fn transformers_names_convert_to_the_nari_tensors() {
    let config = DiaConfig::dia_1_6b();
    let hf = CheckpointFormat::Transformers.expected_tensors(&config);
    assert_eq!(hf.len(), 335);
    for param in ModelParam::all(&config) {
        let nari = CheckpointFormat::Nari.stored(param, &config);
        let src = CheckpointFormat::Transformers.stored(param, &config);
        let nari_elems: usize = nari.shape.iter().product();
        let hf_elems: usize = src.shape.iter().product();
        match param {
            // Nine nari tables are row blocks of the one transformers table.
            ModelParam::AudioEmbedding(_) => assert_eq!(hf_elems, 9 * nari_elems),
            _ => assert_eq!(hf_elems, nari_elems, "{param:?}"),
        }
        if src.shape.len() == 2
            && !matches!(
                param,
                ModelParam::AudioEmbedding(_) | ModelParam::TextEmbedding
            )
        {
            // [out, in] of transformers is the transpose of the flattened [in, out] kernel.
            let model = param.spec(&config).shape;
            assert_eq!(src.shape, vec![model[1], model[0]], "{param:?}");
        }
        let stripped = src.key.trim_start_matches("model.");
        let expected_nari = stripped
            .replace("gate_up_proj", "wi_fused")
            .replace("down_proj", "wo")
            .replace(
                "embeddings.embed",
                &format!(
                    "embeddings.{}",
                    match param {
                        ModelParam::AudioEmbedding(c) => c,
                        _ => 0,
                    }
                ),
            );
        let expected_nari = if expected_nari == "logits_dense.weight" {
            "decoder.logits_dense.weight".to_string()
        } else {
            expected_nari
        };
        assert_eq!(expected_nari, nari.key, "{param:?}");
    }
}
