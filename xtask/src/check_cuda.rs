//! `cargo xtask check-cuda`: builds every hand-written CUDA kernel of conad-kernels without a GPU.
//!
//! 1. Makes sure a Python venv at `target/cuda-tools/venv` holds the pinned NVIDIA wheels
//!    `nvidia-cuda-nvrtc-cu12` (libnvrtc.so.12, which cudarc opens at run time) and
//!    `nvidia-cuda-nvcc-cu12` (ptxas) — created and installed on first use, reused afterwards.
//! 2. Runs `conad-kernels`' `compile_ptx` example (feature `cuda-nvrtc`) with the NVRTC library on
//!    `LD_LIBRARY_PATH`: NVRTC compiles each `.cu` source for compute_80 and compute_90, and
//!    ptxas assembles each PTX for sm_80 and sm_90.
//! 3. Ends with the example's line `cuda_kernels_compiled N/M`; fails unless N = M.
use crate::util::{cargo, run_status};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Pinned wheels (CUDA 12.9: cudarc's `cuda-12090` looks for `libnvrtc.so.12`).
const WHEELS: [&str; 2] = [
    "nvidia-cuda-nvrtc-cu12==12.9.86",
    "nvidia-cuda-nvcc-cu12==12.9.86",
];

fn venv_python(venv: &Path) -> PathBuf {
    venv.join("bin/python")
}

/// Creates the venv with Debian's python3 (or the one on PATH).
fn create_venv(venv: &Path) -> Result<()> {
    std::fs::create_dir_all(venv.parent().context("venv path has a parent")?)?;
    for python in ["/usr/bin/python3", "python3"] {
        let status = Command::new(python).args(["-m", "venv"]).arg(venv).status();
        if matches!(status, Ok(s) if s.success()) {
            return Ok(());
        }
        eprintln!("check-cuda: `{python} -m venv` failed; trying the next interpreter");
    }
    bail!(
        "could not create a Python venv at {} (install python3-venv)",
        venv.display()
    )
}

fn site_packages(python: &Path) -> Result<PathBuf> {
    let out = Command::new(python)
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !out.status.success() {
        bail!("{} could not report its site-packages", python.display());
    }
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

pub fn run(root: &Path) -> Result<()> {
    let venv = root.join("target/cuda-tools/venv");
    if !venv_python(&venv).exists() {
        eprintln!("check-cuda: creating {}", venv.display());
        create_venv(&venv)?;
    }
    let python = venv_python(&venv);
    let site = site_packages(&python)?;
    let nvrtc_lib = site.join("nvidia/cuda_nvrtc/lib");
    let ptxas = site.join("nvidia/cuda_nvcc/bin/ptxas");
    if !nvrtc_lib.join("libnvrtc.so.12").exists() || !ptxas.exists() {
        eprintln!("check-cuda: installing {}", WHEELS.join(" "));
        run_status(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--quiet",
                ])
                .args(WHEELS),
        )?;
    }
    if !nvrtc_lib.join("libnvrtc.so.12").exists() {
        bail!(
            "{} lacks libnvrtc.so.12 after installing",
            nvrtc_lib.display()
        );
    }
    if !ptxas.exists() {
        bail!("{} missing after installing", ptxas.display());
    }

    let ld_path = match std::env::var_os("LD_LIBRARY_PATH") {
        Some(old) if !old.is_empty() => {
            let mut p = nvrtc_lib.clone().into_os_string();
            p.push(":");
            p.push(old);
            p
        }
        _ => nvrtc_lib.clone().into_os_string(),
    };
    let out_dir = root.join("target/cuda-ptx");
    let mut cmd = cargo();
    cmd.args([
        // The dev profile (dependencies at opt-level 3) reuses the artifacts of `cargo test`.
        "run",
        "--quiet",
        "-p",
        "conad-kernels",
        "--features",
        "cuda-nvrtc",
        "--example",
        "compile_ptx",
        "--",
        "--out-dir",
    ])
    .arg(&out_dir)
    .arg("--ptxas")
    .arg(&ptxas)
    .env("LD_LIBRARY_PATH", ld_path)
    .stderr(Stdio::inherit());
    let out = cmd
        .output()
        .with_context(|| format!("could not start {cmd:?}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    let Some(line) = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("cuda_kernels_compiled "))
    else {
        bail!(
            "compile_ptx printed no `cuda_kernels_compiled` line ({})",
            out.status
        );
    };
    let counts = line.trim_start_matches("cuda_kernels_compiled ");
    let (ok, total) = counts
        .split_once('/')
        .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)))
        .with_context(|| format!("malformed line {line:?}"))?;
    if !out.status.success() || ok < total || total == 0 {
        bail!(
            "CUDA kernels: only {ok} of {total} source × arch pairs compiled ({})",
            out.status
        );
    }
    Ok(())
}
