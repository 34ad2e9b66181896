//! Compiles every CUDA kernel source of conad-kernels to PTX with NVRTC for compute_80 and
//! compute_90, and (with `--ptxas`) assembles each PTX for sm_80 / sm_90 — a GPU-less check that
//! the hand-written kernels build. Used by `cargo xtask check-cuda`.
//!
//! ```text
//! LD_LIBRARY_PATH=<dir of libnvrtc.so.12> cargo run -p conad-kernels \
//!     --features cuda-nvrtc --example compile_ptx -- --out-dir target/cuda-ptx [--ptxas PATH]
//! ```
//!
//! Last line: `cuda_kernels_compiled N/M` (N succeeded of M source × arch pairs; a pair counts
//! when NVRTC compiles it and, with `--ptxas`, ptxas assembles it). Exit status 1 if N < M.

use std::path::PathBuf;
use std::process::Command;

use conad_kernels::cuda::{CHECK_ARCHS, KERNEL_SOURCES, compile_ptx, nvrtc_available};

fn main() {
    let mut out_dir = PathBuf::from("target/cuda-ptx");
    let mut ptxas: Option<PathBuf> = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match (a.as_str(), it.next()) {
            ("--out-dir", Some(v)) => out_dir = PathBuf::from(v),
            ("--ptxas", Some(v)) => ptxas = Some(PathBuf::from(v)),
            (other, _) => {
                eprintln!("compile_ptx: unknown or incomplete argument {other:?}");
                eprintln!("usage: compile_ptx [--out-dir DIR] [--ptxas PATH]");
                std::process::exit(2);
            }
        }
    }
    let total = KERNEL_SOURCES.len() * CHECK_ARCHS.len();
    if !nvrtc_available() {
        eprintln!(
            "libnvrtc not found: install nvidia-cuda-nvrtc-cu12 and put its lib directory on \
             LD_LIBRARY_PATH (cargo xtask check-cuda does both)"
        );
        println!("cuda_kernels_compiled 0/{total}");
        std::process::exit(1);
    }
    if let Err(e) = std::fs::create_dir_all(&out_dir) {
        eprintln!("cannot create {}: {e}", out_dir.display());
        std::process::exit(1);
    }
    let mut ok = 0;
    for src in KERNEL_SOURCES {
        for arch in CHECK_ARCHS {
            let sm = arch.replace("compute_", "sm_");
            let ptx = match compile_ptx(&src, Some(arch)) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("FAIL nvrtc {} {arch}: {e}", src.name);
                    continue;
                }
            };
            let missing: Vec<&str> = src
                .functions
                .iter()
                .copied()
                .filter(|f| !ptx.contains(&format!(".entry {f}(")))
                .collect();
            if !missing.is_empty() {
                eprintln!("FAIL {} {arch}: PTX lacks entries {missing:?}", src.name);
                continue;
            }
            let ptx_path = out_dir.join(format!("{}.{arch}.ptx", src.name));
            if let Err(e) = std::fs::write(&ptx_path, &ptx) {
                eprintln!("FAIL writing {}: {e}", ptx_path.display());
                continue;
            }
            if let Some(ptxas) = &ptxas {
                let cubin = out_dir.join(format!("{}.{sm}.cubin", src.name));
                let out = Command::new(ptxas)
                    .arg(format!("-arch={sm}"))
                    .arg("-v")
                    .arg(&ptx_path)
                    .arg("-o")
                    .arg(&cubin)
                    .output();
                match out {
                    Ok(o) if o.status.success() => {
                        // ptxas -v reports registers and spills per kernel on stderr.
                        for line in String::from_utf8_lossy(&o.stderr).lines() {
                            if line.contains("Used") || line.contains("spill") {
                                eprintln!("  {} {sm}: {}", src.name, line.trim());
                            }
                        }
                    }
                    Ok(o) => {
                        eprintln!(
                            "FAIL ptxas {} {sm}: {}\n{}",
                            src.name,
                            o.status,
                            String::from_utf8_lossy(&o.stderr)
                        );
                        continue;
                    }
                    Err(e) => {
                        eprintln!("FAIL cannot run {}: {e}", ptxas.display());
                        continue;
                    }
                }
            }
            eprintln!(
                "ok {} {arch}{} ({} bytes of PTX, kernels {:?})",
                src.name,
                if ptxas.is_some() {
                    format!(" + ptxas {sm}")
                } else {
                    String::new()
                },
                ptx.len(),
                src.functions
            );
            ok += 1;
        }
    }
    println!("cuda_kernels_compiled {ok}/{total}");
    if ok < total {
        std::process::exit(1);
    }
}
