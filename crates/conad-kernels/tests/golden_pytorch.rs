//! Fused InfoNCE values and gradients against PyTorch (float64 references).
//!
//! The constants below are printed by `xtask/scripts/golden_fused_infonce.py` (run it with
//! `/usr/bin/python3`; torch 1.13): HobbitLong/SupContrast `SupConLoss` semantics generalised to
//! explicit positive/valid masks — self excluded from numerator and denominator, mean of
//! log-prob over positives (`L_out`) or `−log Σ_p p_ip` (`L_in`), anchors without positives
//! contribute 0 and count in the mean. Inputs: `z_raw[i, j] = sin(0.9 i + 1.7 j + 0.3) + 0.1 j`,
//! rows L2-normalised; gradients are with respect to the normalised `z`.
//!
//! The core of the generating snippet:
//! ```text
//! logits = q @ k.T / tau
//! logits = logits - logits.detach().masked_fill(~valid, -1e300).max(1, keepdim=True).values
//! log_prob = logits - log((exp(logits) * valid).sum(1, keepdim=True))
//! per = -(pos * log_prob).sum(1) / pos.sum(1).clamp(min=1)        # L_out
//! per = where(pos.sum(1) > 0, -logsumexp(log_prob[pos]), 0)       # L_in
//! loss = per.mean(); loss.backward()
//! ```

use candle_core::{DType, Device, Tensor, Var};
use conad_kernels::{
    AnchorRows, Denominator, FusedInfoNceConfig, MaskRules, PositiveReduction, PositiveRule,
    RowIds, fused_info_nce, fused_info_nce_qk,
};

// NTXENT
const NTXENT_LOSS: f64 = 3.507376727260469;
const NTXENT_GRAD: [f64; 24] = [
    0.11972084520115356,
    0.436890596701227,
    -0.24328063672297937,
    -0.39615564654618957,
    0.5235430657581397,
    0.3492826639041879,
    -0.5946451522239482,
    -0.1582407362009302,
    0.633432900446775,
    -0.18981991476955684,
    -0.5656734625456629,
    0.3732776093051571,
    -0.11283828822806818,
    -0.6934327120297699,
    0.2738334515524982,
    0.5874792250678713,
    -0.6267070166230131,
    -0.24420472773729682,
    0.6824034513266461,
    0.053892003361605406,
    -0.47327413695980103,
    0.13386267387857226,
    0.43169122315116615,
    -0.2592807020895733,
];
// SUPCON_EMPTY
const SUPCON_EMPTY_LOSS: f64 = 9.298426432943623;
const SUPCON_EMPTY_GRAD: [f64; 20] = [
    -0.6185158889985548,
    1.8816573655281976,
    -0.058709753256222075,
    -2.251215026305006,
    3.721205380377816,
    2.430963933115509,
    -4.153771901477771,
    -0.9728504207339864,
    0.9150928476340537,
    -3.424817444448257,
    -0.17322294055612697,
    3.1881194162190813,
    -0.199547072113978,
    -1.1002227810813632,
    0.9577812294471262,
    1.8028508280765614,
    -2.6692789971925617,
    -2.1649525229045627,
    2.8206685388903923,
    0.6251075314131329,
];
// SUPCON_LIN
const SUPCON_LIN_LOSS: f64 = 5.853022531034103;
const SUPCON_LIN_GRAD: [f64; 24] = [
    0.425143507488624,
    0.5041046927707693,
    -0.5923851654781027,
    1.544853357654262,
    -0.14432713001957953,
    -1.426320698159222,
    0.4951023538786131,
    -0.5685801092246447,
    -0.2729004616721194,
    -0.413743530596857,
    -1.4622433361767844,
    0.6855149148912304,
    -0.2043286771941632,
    -0.8509699463441864,
    0.5314710704740675,
    -1.617219517321272,
    -0.15717193714735733,
    1.6984122315854941,
    -0.29165401812218583,
    -0.33031929651656616,
    0.1924427469195586,
    0.23233783467827554,
    2.25753821810242,
    -0.8264866557653803,
];
// FIRM_CONCAT
const FIRM_CONCAT_LOSS: f64 = 5.076874814896097;
// SUPCON_ONE
const SUPCON_ONE_LOSS: f64 = 4.72801990804384;
const SUPCON_ONE_GRAD: [f64; 40] = [
    0.6515864591994691,
    0.695158407203989,
    -0.7965600637049293,
    -0.42157152532084236,
    1.007677590756146,
    0.4741717348619967,
    0.11896795668301927,
    -0.4585203182415644,
    0.0918039784787414,
    0.5737878910372123,
    0.4201079692297092,
    -0.5125836601848519,
    -0.23673901891072816,
    0.6761522692432915,
    0.21634738058882624,
    0.026912914379656913,
    -0.7764766482359454,
    0.206449118310708,
    0.7898220848266974,
    -0.31015992089094624,
    -0.10871712111230479,
    -0.7134735134100615,
    0.23090387255198894,
    0.5306370947954693,
    -0.5526457586710969,
    -0.2619945283165595,
    0.014838436147224632,
    0.19663223477217062,
    -0.1885855817327383,
    -0.33265158277661955,
    -0.23812913139850067,
    0.09881039779499283,
    0.16373299295040739,
    -0.23887016110341333,
    -0.2489801436651547,
    0.16739476390491884,
    0.7934481169424216,
    -0.38484094949276093,
    -0.7202455275661673,
    0.5314902625280823,
];
// PAIRWISE
const PAIRWISE_LOSS: f64 = 6.9305106448384315;
const PAIRWISE_GRAD: [f64; 32] = [
    0.7920377843191607,
    1.456906105775105,
    -1.1195346606055705,
    -1.0725507822252287,
    1.1143054075494552,
    0.7866869047623366,
    -1.2633714078302176,
    -0.3538208993731837,
    0.09052702188576958,
    -0.9900413172777826,
    0.16043990562595054,
    0.9403860838655026,
    -0.8887517015004222,
    -1.4615142614798555,
    1.2131152929122455,
    1.0444027277243337,
    0.33326394343846494,
    -2.0552179065328797,
    0.2734096169406933,
    2.138896332293341,
    -0.8692383007591219,
    -0.3452635547672628,
    0.751615260824179,
    -0.2616067339246557,
    -0.6378126509471513,
    0.522198847833774,
    0.3534116631125909,
    -0.9129413316432661,
    1.1737870082678084,
    1.8782826134663688,
    -1.3784365408774633,
    -0.9643482667254191,
];

fn z_input(rows: usize, d: usize) -> Vec<f64> {
    let mut z = Vec::with_capacity(rows * d);
    for i in 0..rows {
        let row: Vec<f64> = (0..d)
            .map(|j| (0.9 * i as f64 + 1.7 * j as f64 + 0.3).sin() + 0.1 * j as f64)
            .collect();
        let norm = row.iter().map(|x| x * x).sum::<f64>().sqrt();
        z.extend(row.iter().map(|x| x / norm));
    }
    z
}

fn max_rel(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(1f64, |m, x| m.max(x.abs()));
    got.iter()
        .zip(want)
        .fold(0f64, |m, (a, b)| m.max((a - b).abs()))
        / scale
}

fn to_f64(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

/// Evaluates `f` on `z` in f64 (tolerance 1e-10) and f32 (1e-5); checks loss and gradient.
fn check(
    case: &str,
    rows: usize,
    d: usize,
    want_loss: f64,
    want_grad: Option<&[f64]>,
    f: impl Fn(&Tensor) -> Tensor,
) {
    for (dtype, tol) in [(DType::F64, 1e-10), (DType::F32, 1e-5)] {
        let z = Var::from_tensor(
            &Tensor::from_vec(z_input(rows, d), (rows, d), &Device::Cpu)
                .unwrap()
                .to_dtype(dtype)
                .unwrap(),
        )
        .unwrap();
        let loss = f(z.as_tensor());
        let got = loss
            .to_dtype(DType::F64)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let err = (got - want_loss).abs() / want_loss.abs().max(1.0);
        assert!(
            err < tol,
            "{case} {dtype:?}: loss {got} vs {want_loss} ({err})"
        );
        if let Some(want) = want_grad {
            let grads = loss.backward().unwrap();
            let g = to_f64(grads.get(z.as_tensor()).unwrap());
            let err = max_rel(&g, want);
            assert!(err < tol, "{case} {dtype:?}: gradient differs by {err}");
        }
    }
}

fn rules(positives: PositiveRule) -> MaskRules {
    MaskRules {
        positives,
        denominator: Denominator::AllOthers,
    }
}

#[test]
fn nt_xent_matches_pytorch() {
    let ids = RowIds::view_major(3, 2);
    check("nt-xent", 6, 4, NTXENT_LOSS, Some(&NTXENT_GRAD), |z| {
        fused_info_nce(z, &ids, &FusedInfoNceConfig::nt_xent(0.5)).unwrap()
    });
}

#[test]
fn supcon_with_an_anchor_without_positives_matches_pytorch() {
    let ids = RowIds::with_labels((0..5).collect(), vec![0, 1, 0, 2, 1]).unwrap();
    check(
        "supcon-empty",
        5,
        4,
        SUPCON_EMPTY_LOSS,
        Some(&SUPCON_EMPTY_GRAD),
        |z| fused_info_nce(z, &ids, &FusedInfoNceConfig::supcon(0.1)).unwrap(),
    );
}

#[test]
fn supcon_l_in_matches_pytorch() {
    let ids = RowIds::view_major_labelled(&[0, 1, 0, 2], 2).unwrap();
    let config = FusedInfoNceConfig {
        reduction: PositiveReduction::LogSumProb,
        ..FusedInfoNceConfig::supcon(0.2)
    };
    check(
        "supcon-lin",
        8,
        3,
        SUPCON_LIN_LOSS,
        Some(&SUPCON_LIN_GRAD),
        |z| fused_info_nce(z, &ids, &config).unwrap(),
    );
}

#[test]
fn firm_concat_matches_pytorch() {
    let ids = RowIds::view_major_labelled(&[1, 2, 2, -1, -1], 2).unwrap();
    let config = FusedInfoNceConfig {
        temperature: 0.2,
        rules: rules(PositiveRule::SameInstanceOrInlierLabel),
        ..Default::default()
    };
    check("firm-concat", 10, 4, FIRM_CONCAT_LOSS, None, |z| {
        fused_info_nce(z, &ids, &config).unwrap()
    });
}

#[test]
fn supcon_contrast_mode_one_matches_pytorch() {
    let ids = RowIds::view_major_labelled(&[0, 1, 1, 3], 2).unwrap();
    let config = FusedInfoNceConfig {
        anchors: AnchorRows::Leading(4),
        ..FusedInfoNceConfig::supcon(0.3)
    };
    check(
        "supcon-one",
        8,
        5,
        SUPCON_ONE_LOSS,
        Some(&SUPCON_ONE_GRAD),
        |z| fused_info_nce(z, &ids, &config).unwrap(),
    );
}

#[test]
fn firm_pairwise_matches_pytorch() {
    let ids = RowIds::new((0..4).collect());
    let config = FusedInfoNceConfig::nt_xent(0.2);
    check("pairwise", 8, 4, PAIRWISE_LOSS, Some(&PAIRWISE_GRAD), |z| {
        let (q, k) = (z.narrow(0, 0, 4).unwrap(), z.narrow(0, 4, 4).unwrap());
        fused_info_nce_qk(&q, &k, &ids, &ids, &config).unwrap()
    });
}
