//! Same input → bit-identical loss and gradients for any rayon pool size.

use candle_core::{DType, Device, Tensor, Var};
use conad_kernels::{
    FusedInfoNceConfig, PositiveReduction, RowIds, fused_info_nce, fused_info_nce_qk,
};
use conad_rng::SeedTree;
use rand::Rng;
use rand_distr::StandardNormal;

fn input(n: usize, d: usize, name: &str) -> Tensor {
    let mut rng = SeedTree::new(11).child(name).rng();
    let v: Vec<f32> = (0..n * d)
        .map(|_| rng.sample::<f32, _>(StandardNormal) * 0.3)
        .collect();
    Tensor::from_vec(v, (n, d), &Device::Cpu).unwrap()
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .map(|x| x.to_bits())
        .collect()
}

fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn shared_op_is_bit_identical_for_1_2_and_3_threads() {
    // 600 rows: 5 row blocks of 128 (last ragged) × 3 key tiles of 256 (last ragged).
    let z = input(600, 40, "shared");
    let labels: Vec<i64> = (0..300).map(|i| i % 13).collect();
    let ids = RowIds::view_major_labelled(&labels, 2).unwrap();
    let run = |reduction| {
        let config = FusedInfoNceConfig {
            reduction,
            ..FusedInfoNceConfig::supcon(0.1)
        };
        let zv = Var::from_tensor(&z).unwrap();
        let loss = fused_info_nce(zv.as_tensor(), &ids, &config).unwrap();
        let grad = loss
            .backward()
            .unwrap()
            .get(zv.as_tensor())
            .unwrap()
            .clone();
        (bits(&loss), bits(&grad))
    };
    for reduction in [
        PositiveReduction::MeanLogProb,
        PositiveReduction::LogSumProb,
    ] {
        let one = in_pool(1, || run(reduction));
        assert!(one.1.iter().any(|&b| b != 0));
        assert_eq!(
            one,
            in_pool(2, || run(reduction)),
            "{reduction:?}: 1 vs 2 threads"
        );
        assert_eq!(
            one,
            in_pool(3, || run(reduction)),
            "{reduction:?}: 1 vs 3 threads"
        );
    }
}

#[test]
fn pair_op_is_bit_identical_for_1_and_2_threads() {
    let (q, k) = (input(200, 24, "q"), input(333, 24, "k"));
    let q_ids = RowIds::new((0..200).collect());
    let k_ids = RowIds::new((0..333).collect());
    let run = || {
        let (qv, kv) = (Var::from_tensor(&q).unwrap(), Var::from_tensor(&k).unwrap());
        let loss = fused_info_nce_qk(
            qv.as_tensor(),
            kv.as_tensor(),
            &q_ids,
            &k_ids,
            &FusedInfoNceConfig::nt_xent(0.2),
        )
        .unwrap();
        let g = loss.backward().unwrap();
        (
            bits(&loss),
            bits(g.get(qv.as_tensor()).unwrap()),
            bits(g.get(kv.as_tensor()).unwrap()),
        )
    };
    assert_eq!(in_pool(1, run), in_pool(2, run));
}
