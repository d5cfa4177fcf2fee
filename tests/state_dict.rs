//! A model's whole state — parameters and buffers — crosses to and from PyTorch's
//! `state_dict` names and dtypes: `nn.Sequential` names (`0.weight`), BatchNorm's running
//! statistics as float buffers and `num_batches_tracked` as an `I64` scalar.

use wengert::nn::prelude::*;
use wengert::nn::serialize::{load_module, save_module};
use wengert::nn::Error;

fn model() -> Sequential<f32> {
    Sequential::new().add(Linear::new(3, 4)).add(BatchNorm1d::new(4)).add(ReLU).add(Linear::new(4, 2))
}

/// A safetensors file from raw parts, as another library would write it: `(name, dtype,
/// shape, little-endian bytes)`.
fn write_raw<N: AsRef<str>, S: AsRef<[usize]>>(path: &std::path::Path, tensors: &[(N, &str, S, Vec<u8>)]) {
    let mut header = String::from("{");
    let mut data = Vec::new();
    for (i, (name, dtype, shape, bytes)) in tensors.iter().enumerate() {
        let name = name.as_ref();
        let dims: Vec<String> = shape.as_ref().iter().map(|d| d.to_string()).collect();
        header += &format!(
            "{}\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
            if i > 0 { "," } else { "" },
            dims.join(","),
            data.len(),
            data.len() + bytes.len()
        );
        data.extend_from_slice(bytes);
    }
    header += "}";
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(header.as_bytes());
    file.extend_from_slice(&data);
    std::fs::write(path, file).unwrap();
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The header of a safetensors file as text.
fn header(path: &std::path::Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    String::from_utf8(bytes[8..8 + n].to_vec()).unwrap()
}

#[test]
fn trained_batch_norm_statistics_survive_save_and_load() {
    wengert::nn::init::manual_seed(3);
    let mut trained = model();
    let x = Tensor::<f32>::from_fn([8, 3], |i| (i[0] as f32 * 0.7 - i[1] as f32).sin() * 3.0 + 1.0);
    for _ in 0..3 {
        let tape = Tape::new();
        let _ = trained.forward(tape.constant(x.clone())); // training mode: statistics move
    }
    let names: Vec<String> = trained.named_buffers().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["1.running_mean", "1.running_var", "1.num_batches_tracked"]);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bn.safetensors");
    save_module(&path, &trained).unwrap();
    let h = header(&path);
    assert!(h.contains(r#""1.num_batches_tracked":{"dtype":"I64","shape":[]"#), "{h}");
    assert!(h.contains(r#""1.running_var":{"dtype":"F32","shape":[4]"#), "{h}");
    assert!(h.contains(r#""0.weight":{"dtype":"F32","shape":[4,3]"#), "{h}");

    wengert::nn::init::manual_seed(99);
    let mut loaded = model();
    load_module(&path, &mut loaded).unwrap();
    assert_eq!(loaded.named_buffers(), trained.named_buffers());
    trained.eval();
    loaded.eval();
    let tape = Tape::new();
    let want = trained.forward(tape.constant(x.clone())).value();
    let got = loaded.forward(tape.constant(x)).value();
    assert_eq!(got, want, "eval predictions after reload use the saved statistics");
}

#[test]
fn a_torch_state_dict_loads_by_its_own_names_and_dtypes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("torch.safetensors");
    let w0: Vec<f32> = (0..12).map(|i| i as f32 / 10.0).collect();
    let w3: Vec<f32> = (0..8).map(|i| -(i as f32)).collect();
    let mean = [0.5f32, -1.0, 2.0, 0.0];
    let var = [1.5f32, 0.25, 4.0, 1.0];
    let tensors: Vec<(&str, &str, &[usize], Vec<u8>)> = vec![
        ("0.weight", "F32", &[4, 3], f32_bytes(&w0)),
        ("0.bias", "F32", &[4], f32_bytes(&[0.1, 0.2, 0.3, 0.4])),
        ("1.weight", "F32", &[4], f32_bytes(&[1.0, 2.0, 0.5, 1.0])),
        ("1.bias", "F32", &[4], f32_bytes(&[0.0, 0.0, 1.0, -1.0])),
        ("1.running_mean", "F32", &[4], f32_bytes(&mean)),
        ("1.running_var", "F32", &[4], f32_bytes(&var)),
        ("1.num_batches_tracked", "I64", &[], 42i64.to_le_bytes().to_vec()),
        ("3.weight", "F32", &[2, 4], f32_bytes(&w3)),
        ("3.bias", "F32", &[2], f32_bytes(&[0.0, 1.0])),
    ];
    write_raw(&path, &tensors);
    let mut m = model();
    load_module(&path, &mut m).unwrap();
    match &m.named_buffers()[..] {
        [(_, Buffer::Float(rm)), (_, Buffer::Float(rv)), (_, Buffer::Int(n))] => {
            assert_eq!(rm.to_vec(), mean);
            assert_eq!(rv.to_vec(), var);
            assert_eq!(n.item(), 42);
        }
        other => panic!("{other:?}"),
    }
    // eval output by hand for one row: BN(x) = (h - mean)/sqrt(var + eps)*γ + β
    m.eval();
    let x = Tensor::new(vec![1.0f32, -2.0, 0.5], [1, 3]);
    let tape = Tape::new();
    let y = m.forward(tape.constant(x)).value();
    let h: Vec<f32> = (0..4).map(|j| (0..3).map(|k| w0[j * 3 + k] * [1.0, -2.0, 0.5][k]).sum::<f32>() + [0.1, 0.2, 0.3, 0.4][j]).collect();
    let bn: Vec<f32> = (0..4)
        .map(|j| ((h[j] - mean[j]) / (var[j] + 1e-5).sqrt() * [1.0, 2.0, 0.5, 1.0][j] + [0.0, 0.0, 1.0, -1.0][j]).max(0.0))
        .collect();
    for (i, &yi) in y.as_slice().iter().enumerate() {
        let want = (0..4).map(|j| w3[i * 4 + j] * bn[j]).sum::<f32>() + [0.0, 1.0][i];
        assert!((yi - want).abs() < 1e-5, "{yi} vs {want}");
    }

    // torch writes some counters with other integer dtypes: any integer loads
    let mut tensors32 = tensors.clone();
    tensors32[6] = ("1.num_batches_tracked", "I32", &[], 7i32.to_le_bytes().to_vec());
    write_raw(&path, &tensors32);
    load_module(&path, &mut m).unwrap();
    assert_eq!(m.named_buffers()[2].1, Buffer::Int(Tensor::scalar(7)));
}

#[test]
fn a_bad_checkpoint_names_the_tensor_and_leaves_the_model_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.safetensors");
    let source = model();
    save_module(&path, &source).unwrap();
    let snapshot = |m: &Sequential<f32>| {
        let params: Vec<(String, Tensor<f32>)> = m.named_params().into_iter().map(|(n, p)| (n, p.value().clone())).collect();
        (m.named_buffers(), params)
    };
    let mut m = model();
    let before = snapshot(&m);

    // missing buffer: a file without the BatchNorm statistics (what save_module wrote before)
    let params: Vec<(String, Tensor<f32>)> = source.named_params().into_iter().map(|(n, p)| (n, p.value().clone())).collect();
    wengert::nn::serialize::save(&path, params.iter().map(|(n, t)| (n.as_str(), t))).unwrap();
    match load_module(&path, &mut m) {
        Err(Error::MissingTensor { name }) => assert_eq!(name, "1.running_mean"),
        e => panic!("{e:?}"),
    }
    assert_eq!(snapshot(&m), before);

    // a float where the integer counter goes, and an integer where a float goes
    let mut raw: Vec<(String, &str, Vec<usize>, Vec<u8>)> = params.iter().map(|(n, t)| (n.clone(), "F32", t.dims().to_vec(), f32_bytes(t.as_slice()))).collect();
    raw.push(("1.running_mean".into(), "F32", vec![4], f32_bytes(&[0.0; 4])));
    raw.push(("1.running_var".into(), "F32", vec![4], f32_bytes(&[1.0; 4])));
    raw.push(("1.num_batches_tracked".into(), "F32", vec![], f32_bytes(&[3.0])));
    let write = |raw: &[(String, &str, Vec<usize>, Vec<u8>)]| write_raw(&path, raw);
    write(&raw);
    match load_module(&path, &mut m) {
        Err(Error::TensorMismatch { name, reason, .. }) => {
            assert_eq!(name, "1.num_batches_tracked");
            assert!(reason.contains("an integer expected"), "{reason}");
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(snapshot(&m), before);
    let n = raw.len();
    raw[n - 1] = ("1.num_batches_tracked".into(), "I64", vec![], 5i64.to_le_bytes().to_vec());
    raw[n - 3] = ("1.running_mean".into(), "I64", vec![4], [0i64; 4].iter().flat_map(|x| x.to_le_bytes()).collect());
    write(&raw);
    match load_module(&path, &mut m) {
        Err(Error::TensorMismatch { name, .. }) => assert_eq!(name, "1.running_mean"),
        e => panic!("{e:?}"),
    }
    // a mis-shaped buffer, then an extra tensor
    raw[n - 3] = ("1.running_mean".into(), "F32", vec![5], f32_bytes(&[0.0; 5]));
    write(&raw);
    assert!(matches!(load_module(&path, &mut m), Err(Error::TensorMismatch { ref name, .. }) if name == "1.running_mean"));
    raw[n - 3] = ("1.running_mean".into(), "F32", vec![4], f32_bytes(&[0.0; 4]));
    raw.push(("2.running_mean".into(), "F32", vec![4], f32_bytes(&[0.0; 4])));
    write(&raw);
    assert!(matches!(load_module(&path, &mut m), Err(Error::UnexpectedTensor { ref name }) if name == "2.running_mean"));
    assert_eq!(snapshot(&m), before);
    raw.pop();
    write(&raw);
    load_module(&path, &mut m).unwrap();
    assert_eq!(m.named_buffers()[2].1, Buffer::Int(Tensor::scalar(5)));
}

/// Every dtype a PyTorch state dict holds besides floats loads and saves in its own type:
/// a file written byte by byte as torch writes it (F32 weight, I64 position ids, I32
/// indices, U8 pixels, BOOL mask) round-trips through `load_all`/`save_all`, the float
/// loader points at `load_all` for the integers, and dtypes outside the set are named.
#[test]
fn integer_and_bool_tensors_load_and_save() {
    use wengert::nn::serialize::{load, load_all, load_all_from_bytes, save_all, AnyTensor};
    let header = concat!(
        r#"{"weight":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#,
        r#""position_ids":{"dtype":"I64","shape":[1,3],"data_offsets":[8,32]},"#,
        r#""index":{"dtype":"I32","shape":[2],"data_offsets":[32,40]},"#,
        r#""pixels":{"dtype":"U8","shape":[3],"data_offsets":[40,43]},"#,
        r#""mask":{"dtype":"BOOL","shape":[2],"data_offsets":[43,45]}}"#
    );
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend([0.5f32, -1.0].iter().flat_map(|x| x.to_le_bytes()));
    bytes.extend([0i64, 1, 2].iter().flat_map(|x| x.to_le_bytes()));
    bytes.extend([-7i32, 9].iter().flat_map(|x| x.to_le_bytes()));
    bytes.extend([0u8, 128, 255]);
    bytes.extend([1u8, 0]);
    let all = load_all_from_bytes(&bytes, "<memory>").unwrap();
    assert_eq!(all["weight"], AnyTensor::F32(Tensor::new(vec![0.5, -1.0], [2])));
    assert_eq!(all["position_ids"], AnyTensor::I64(Tensor::new(vec![0, 1, 2], [1, 3])));
    assert_eq!(all["index"], AnyTensor::I32(Tensor::new(vec![-7, 9], [2])));
    assert_eq!(all["pixels"], AnyTensor::U8(Tensor::new(vec![0, 128, 255], [3])));
    assert_eq!(all["mask"], AnyTensor::Bool(Tensor::new(vec![true, false], [2])));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.safetensors");
    save_all(&path, all.iter().map(|(n, t)| (n.as_str(), t))).unwrap();
    assert_eq!(load_all(&path).unwrap(), all);
    let err = load::<f32>(&path).unwrap_err().to_string();
    assert!(err.contains("load_all"), "{err}");

    // a BOOL byte of 2, and an F16 tensor, are named errors
    let mut bad = bytes.clone();
    *bad.last_mut().unwrap() = 2;
    let err = load_all_from_bytes(&bad, "<memory>").unwrap_err().to_string();
    assert!(err.contains("`mask`") && err.contains("neither 0 nor 1"), "{err}");
    let header = r#"{"h":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}"#;
    let mut half = (header.len() as u64).to_le_bytes().to_vec();
    half.extend_from_slice(header.as_bytes());
    half.extend([0u8, 60]);
    let err = load_all_from_bytes(&half, "<memory>").unwrap_err().to_string();
    assert!(err.contains("`h`") && err.contains("F16"), "{err}");
}

/// An in-memory snapshot of the best weights, restored after training moved on: predictions
/// and BatchNorm statistics come back exactly; a snapshot of another structure is an error
/// naming the tensor, and the model is left as it was.
#[test]
fn state_dict_snapshots_and_restores_in_memory() {
    use wengert::nn::StateDict;
    wengert::nn::init::manual_seed(3);
    let mut model = Sequential::<f32>::new().add(Linear::new(3, 4)).add(BatchNorm1d::new(4)).add(Linear::new(4, 2));
    let x = Tensor::from_fn([8, 3], |i| ((i[0] * 5 + i[1] * 3) % 7) as f32 / 3.0 - 1.0);
    let y = Tensor::new((0..8).map(|i| i % 2).collect(), [8]);
    let mut opt = Adam::new(AdamConfig { lr: 0.05, ..Default::default() });
    let mut step = |m: &mut Sequential<f32>| {
        m.train();
        let tape = Tape::new();
        let loss = cross_entropy(m.forward(tape.constant(x.clone())), &y);
        let grads = loss.backward();
        opt.step(m, &grads).unwrap();
    };
    step(&mut model);
    let best: StateDict<f32> = model.state_dict();
    assert_eq!(best.buffers.keys().collect::<Vec<_>>(), ["1.num_batches_tracked", "1.running_mean", "1.running_var"]);
    let predict = |m: &mut Sequential<f32>| {
        m.eval();
        let tape = Tape::new();
        m.forward(tape.constant(x.clone())).value()
    };
    let best_out = predict(&mut model);
    for _ in 0..3 {
        step(&mut model);
    }
    assert_ne!(predict(&mut model), best_out);
    model.load_state_dict(&best).unwrap();
    assert_eq!(predict(&mut model), best_out);
    assert_eq!(model.state_dict(), best);

    let before = model.state_dict();
    let mut missing = best.clone();
    missing.params.remove("2.bias");
    assert!(matches!(model.load_state_dict(&missing), Err(Error::MissingTensor { name }) if name == "2.bias"));
    let mut extra = best.clone();
    extra.params.insert("3.weight".into(), Tensor::zeros([1]));
    assert!(matches!(model.load_state_dict(&extra), Err(Error::UnexpectedTensor { name }) if name == "3.weight"));
    let mut wrong = best.clone();
    wrong.params.insert("0.weight".into(), Tensor::zeros([4, 4]));
    assert!(matches!(model.load_state_dict(&wrong), Err(Error::TensorMismatch { name, .. }) if name == "0.weight"));
    let mut kind = best.clone();
    kind.buffers.insert("1.num_batches_tracked".into(), Buffer::Float(Tensor::zeros([])));
    match model.load_state_dict(&kind) {
        Err(e @ Error::TensorMismatch { .. }) => assert!(e.to_string().contains("a float buffer given for an integer one"), "{e}"),
        other => panic!("expected TensorMismatch, got {other:?}"),
    }
    assert_eq!(model.state_dict(), before, "failed loads change nothing");
}
