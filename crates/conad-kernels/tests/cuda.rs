//! CUDA kernels against the CPU implementation. Each test runs only where it can: with feature
//! `cuda-nvrtc`, the NVRTC test needs libnvrtc (on `LD_LIBRARY_PATH`) and the GPU tests need
//! libcuda and a device; with feature `cuda`, the candle test needs a device. Otherwise a test
//! prints why it skipped and passes — a missing GPU is not a failure.

#[cfg(any(feature = "cuda-nvrtc", feature = "cuda"))]
mod gpu {
    use candle_core::{Device, Tensor, Var};
    use conad_kernels::cuda::{
        CHECK_ARCHS, CudaKernels, KERNEL_SOURCES, compile_ptx, driver_available, nvrtc_available,
    };
    use conad_kernels::{FusedInfoNceConfig, PositiveReduction, RowIds, fused_info_nce};

    fn input(n: usize, d: usize, seed: u64) -> Vec<f32> {
        // A cheap deterministic generator is enough here (values in [−1, 1], rows normalised).
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut v = Vec::with_capacity(n * d);
        for _ in 0..n {
            let row: Vec<f32> = (0..d)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
                })
                .collect();
            let norm = row.iter().map(|a| a * a).sum::<f32>().sqrt();
            v.extend(row.iter().map(|a| a / norm));
        }
        v
    }

    fn kernels() -> Option<CudaKernels> {
        if !driver_available() {
            eprintln!("skipped: libcuda not found (no NVIDIA driver on this machine)");
            return None;
        }
        match CudaKernels::new(0) {
            Ok(k) => Some(k),
            Err(e) => {
                eprintln!("skipped: no usable CUDA device: {e}");
                None
            }
        }
    }

    #[test]
    fn nvrtc_compiles_every_kernel_source() {
        if !nvrtc_available() {
            eprintln!(
                "skipped: libnvrtc not found (run `cargo xtask check-cuda` for the full check)"
            );
            return;
        }
        for src in KERNEL_SOURCES {
            for arch in CHECK_ARCHS {
                let ptx = compile_ptx(&src, Some(arch)).unwrap();
                for f in src.functions {
                    assert!(
                        ptx.contains(&format!(".entry {f}(")),
                        "{} {arch}: no {f}",
                        src.name
                    );
                }
                assert!(ptx.contains(&format!(".target {}", arch.replace("compute_", "sm_"))));
            }
        }
    }

    #[test]
    fn cuda_info_nce_matches_cpu() {
        let Some(k) = kernels() else { return };
        // Ragged tiles: 330 rows (6 tiles of 64), d = 72 (3 slabs of 32).
        let (n, d) = (330, 72);
        let z = input(n, d, 1);
        let labels: Vec<i64> = (0..165)
            .map(|i| if i % 11 == 0 { 100 + i } else { i % 7 })
            .collect();
        for (ids, config) in [
            (RowIds::view_major(165, 2), FusedInfoNceConfig::nt_xent(0.5)),
            (
                RowIds::view_major_labelled(&labels, 2).unwrap(),
                FusedInfoNceConfig {
                    reduction: PositiveReduction::LogSumProb,
                    ..FusedInfoNceConfig::supcon(0.1)
                },
            ),
        ] {
            let (loss, dz) = k.info_nce(&z, d, &ids, &config).unwrap();
            let zv = Var::from_tensor(&Tensor::from_vec(z.clone(), (n, d), &Device::Cpu).unwrap())
                .unwrap();
            let cpu = fused_info_nce(zv.as_tensor(), &ids, &config).unwrap();
            let want = cpu.to_scalar::<f32>().unwrap();
            let g = cpu.backward().unwrap();
            let want_dz = g
                .get(zv.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            assert!(
                (loss - want).abs() < 1e-4 * want.abs().max(1.0),
                "{loss} vs {want}"
            );
            let scale = want_dz.iter().fold(1e-6f32, |m, x| m.max(x.abs()));
            let err = dz
                .iter()
                .zip(&want_dz)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()))
                / scale;
            assert!(err < 1e-4, "dz differs by {err} (relative to max |dz|)");
            // Deterministic: a second run gives the same bits.
            let again = k.info_nce(&z, d, &ids, &config).unwrap();
            assert_eq!(again.0.to_bits(), loss.to_bits());
            assert!(
                again
                    .1
                    .iter()
                    .zip(&dz)
                    .all(|(a, b)| a.to_bits() == b.to_bits())
            );
        }
    }

    #[test]
    fn cuda_knn_topk_matches_brute_force() {
        let Some(k) = kernels() else { return };
        let (nb, nq, d, top) = (1000, 77, 40, 10);
        let bank = input(nb, d, 2);
        let mut queries = input(nq, d, 3);
        // Query 0 duplicates bank rows 5 and 6 (a tie): the smaller index must come first.
        let mut bank = bank;
        let row5: Vec<f32> = bank[5 * d..6 * d].to_vec();
        bank[6 * d..7 * d].copy_from_slice(&row5);
        queries[..d].copy_from_slice(&row5);
        let got = k.knn_topk(&bank, &queries, d, top).unwrap();
        for q in 0..nq {
            let mut sims: Vec<(f32, u32)> = (0..nb)
                .map(|b| {
                    let s: f32 = (0..d).map(|j| queries[q * d + j] * bank[b * d + j]).sum();
                    (s, b as u32)
                })
                .collect();
            sims.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let row = &got.indices[q * top..(q + 1) * top];
            for t in 0..top {
                let (v, i) = (got.values[q * top + t], row[t] as usize);
                assert!(
                    (v - sims[t].0).abs() < 1e-5,
                    "query {q} rank {t}: {v} vs {}",
                    sims[t].0
                );
                // The returned index really has that similarity, and appears once.
                assert!((sims.iter().find(|s| s.1 as usize == i).unwrap().0 - v).abs() < 1e-5);
                assert_eq!(row.iter().filter(|&&j| j as usize == i).count(), 1);
            }
        }
        assert_eq!(&got.indices[..2], &[5, 6]);
        assert!(matches!(
            k.knn_topk(&bank, &queries, d, 0),
            Err(conad_kernels::Error::InvalidK { .. })
        ));
        assert!(matches!(
            k.knn_topk(&bank, &queries, d, 33),
            Err(conad_kernels::Error::InvalidK { .. })
        ));
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn candle_cuda_op_matches_cpu() {
        use candle_core::DType;
        let dev = match Device::new_cuda(0) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("skipped: no CUDA device for candle: {e}");
                return;
            }
        };
        let (n, d) = (200, 32);
        let z = Tensor::from_vec(input(n, d, 4), (n, d), &Device::Cpu).unwrap();
        let ids = RowIds::view_major(100, 2);
        let config = FusedInfoNceConfig::nt_xent(0.5);
        let run = |z: &Tensor| {
            let v = Var::from_tensor(z).unwrap();
            let loss = fused_info_nce(v.as_tensor(), &ids, &config).unwrap();
            let g = loss
                .backward()
                .unwrap()
                .get(v.as_tensor())
                .unwrap()
                .to_device(&Device::Cpu)
                .unwrap();
            (
                loss.to_dtype(DType::F32)
                    .unwrap()
                    .to_device(&Device::Cpu)
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap(),
                g.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            )
        };
        let (lc, gc) = run(&z);
        let (lg, gg) = run(&z.to_device(&dev).unwrap());
        assert!((lc - lg).abs() < 1e-4 * lc.abs().max(1.0), "{lc} vs {lg}");
        let scale = gc.iter().fold(1e-6f32, |m, x| m.max(x.abs()));
        let err = gc
            .iter()
            .zip(&gg)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()))
            / scale;
        assert!(err < 1e-4, "dz differs by {err}");
    }
}

#[cfg(not(any(feature = "cuda-nvrtc", feature = "cuda")))]
#[test]
fn cuda_tests_need_a_cuda_feature() {
    eprintln!(
        "skipped: built without `cuda-nvrtc` / `cuda`; run \
         `cargo test -p conad-kernels --features cuda-nvrtc --test cuda` on a GPU machine"
    );
}
