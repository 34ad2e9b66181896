//! Property tests: the parsers never panic on mutated or truncated fixture bytes, and truncation
//! of a plain file is always reported as an error (never silently accepted).

use conad_data::{cifar, idx, medmnist, npy, npz};
use proptest::prelude::*;
use std::path::Path;

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures")
            .join(rel),
    )
    .unwrap()
}

/// A mutation: truncate, overwrite a few bytes, or insert bytes.
#[derive(Clone, Debug)]
enum Mutation {
    Truncate(usize),
    Overwrite(Vec<(usize, u8)>),
    Insert(usize, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        prop::collection::vec((any::<usize>(), any::<u8>()), 1..8).prop_map(Mutation::Overwrite),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(p, b)| Mutation::Insert(p, b)),
    ]
}

/// Mutations biased to the header, where the interesting fields live.
fn header_mutation() -> impl Strategy<Value = Mutation> {
    prop::collection::vec((0usize..140, any::<u8>()), 1..6).prop_map(Mutation::Overwrite)
}

fn apply(bytes: &[u8], m: &Mutation) -> Vec<u8> {
    let mut b = bytes.to_vec();
    match m {
        Mutation::Truncate(k) => b.truncate(k % (bytes.len() + 1)),
        Mutation::Overwrite(edits) => {
            for &(p, v) in edits {
                let n = b.len();
                if n > 0 {
                    b[p % n] = v;
                }
            }
        }
        Mutation::Insert(p, extra) => {
            let at = p % (b.len() + 1);
            b.splice(at..at, extra.iter().copied());
        }
    }
    b
}

fn load_npz(bytes: &[u8]) {
    if let Ok(z) = npz::Npz::from_bytes(bytes, "fuzz.npz") {
        let _ = medmnist::load_from_npz(z, "breastmnist");
    }
}

proptest! {
    // CONAD_FUZZ_CASES=100000 for a longer run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("CONAD_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    #[test]
    fn idx_never_panics(m in mutation(), h in header_mutation()) {
        for f in ["idx/plain/train-images-idx3-ubyte", "idx/gz/train-images-idx3-ubyte.gz"] {
            let bytes = fixture(f);
            let _ = idx::parse_images(&apply(&bytes, &m), f);
            let _ = idx::parse_images(&apply(&bytes, &h), f);
        }
        for f in ["idx/plain/train-labels-idx1-ubyte", "idx/gz/train-labels-idx1-ubyte.gz"] {
            let bytes = fixture(f);
            let _ = idx::parse_labels(&apply(&bytes, &m), f);
            let _ = idx::parse_labels(&apply(&bytes, &h), f);
        }
    }

    #[test]
    fn cifar_never_panics(m in mutation()) {
        let _ = cifar::parse_cifar10(&apply(&fixture("cifar10/data_batch_1.bin"), &m), "c10");
        let _ = cifar::parse_cifar100(&apply(&fixture("cifar100/train.bin"), &m), "c100");
    }

    #[test]
    fn npy_never_panics(m in mutation(), h in header_mutation()) {
        for f in ["npy/f32_3x4.npy", "npy/f32_3x4_v2.npy", "npy/f32_3x4_v3.npy", "npy/i64_5.npy", "npy/u8_2x3x2.npy"] {
            let bytes = fixture(f);
            let _ = npy::parse_array(&apply(&bytes, &m), f);
            let _ = npy::parse_array(&apply(&bytes, &h), f);
            let _ = npy::parse_f32_matrix(&apply(&bytes, &h), f);
        }
    }

    #[test]
    fn npz_never_panics(m in mutation()) {
        for f in ["medmnist/breastmnist.npz", "medmnist/rgbmnist.npz"] {
            load_npz(&apply(&fixture(f), &m));
        }
    }

    #[test]
    fn npz_member_header_mutations_never_panic(edits in prop::collection::vec((0usize..200, any::<u8>()), 1..6)) {
        // rgbmnist.npz stores its members uncompressed: byte edits near a member start hit the npy
        // header inside the archive (the zip CRC then fails, or the header parser sees garbage).
        let bytes = fixture("medmnist/rgbmnist.npz");
        load_npz(&apply(&bytes, &Mutation::Overwrite(edits)));
    }

    #[test]
    fn truncated_plain_files_are_rejected(cut in 1usize..700) {
        let bytes = fixture("idx/plain/train-images-idx3-ubyte");
        let cut = cut.min(bytes.len() - 1);
        prop_assert!(idx::parse_images(&bytes[..cut], "t").is_err());
        let c10 = fixture("cifar10/data_batch_1.bin");
        prop_assert!(cifar::parse_cifar10(&c10[..cut * 13 % c10.len()], "t").is_err());
        let n = fixture("npy/f32_3x4.npy");
        prop_assert!(npy::parse_array(&n[..cut % n.len()], "t").is_err());
    }
}

#[test]
fn absurd_gzip_header_does_not_allocate() {
    // An IDX3 header declaring 2³²−1 images of 65535² pixels, gzip-compressed: must be rejected
    // from the size bound, not by trying to allocate ~18 EB.
    let mut raw = Vec::new();
    for x in [2051u32, u32::MAX, 65535, 65535] {
        raw.extend_from_slice(&x.to_be_bytes());
    }
    raw.extend_from_slice(&[0; 100]);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut enc, &raw).unwrap();
    let gz = enc.finish().unwrap();
    let e = idx::parse_images(&gz, "big.gz").unwrap_err();
    assert!(e.to_string().contains("header is corrupt"), "{e}");
}
