#!/bin/sh
# A stand-in for nvcc that lets `cargo check` / `cargo clippy` type-check conad-kernels' `cuda`
# feature (candle's CUDA backend) on a machine without the CUDA toolkit. candle-kernels' build
# script runs nvcc to make PTX and a static library; this writes empty files instead. Nothing it
# produces can be linked or run — use it for type-checking only:
#
#   NVCC=$PWD/xtask/scripts/fake_nvcc.sh CUDARC_CUDA_VERSION=12090 CUDA_COMPUTE_CAP=90 \
#     CARGO_TARGET_DIR=target/cuda-check \
#     cargo clippy -p conad-kernels --features cuda --all-targets -- -D warnings
#
# (CUDARC_CUDA_VERSION stops cudarc's build script from asking nvcc for the version; a separate
# target directory keeps the fake artifacts away from real builds.)
case "$*" in
  *--version*)
    printf 'nvcc: NVIDIA (R) Cuda compiler driver\nfake nvcc for type-checking\nBuilt on -\nCuda compilation tools, release 12.9, V12.9.86\nBuild -\n'
    exit 0 ;;
  *--list-gpu-code*) echo "sm_80 sm_90"; exit 0 ;;
esac
out=""; outdir=""; lib=0; ptx=0; last=""
while [ $# -gt 0 ]; do
  case "$1" in
    -o) out="$2"; shift ;;
    --output-directory) outdir="$2"; shift ;;
    --lib) lib=1 ;;
    --ptx) ptx=1 ;;
  esac
  last="$1"; shift
done
if [ "$ptx" = 1 ]; then
  echo "// fake PTX (type-checking only)" > "$outdir/$(basename "$last" .cu).ptx"
  exit 0
fi
if [ "$lib" = 1 ]; then rm -f "$out"; ar rcs "$out"; exit $?; fi
[ -n "$out" ] && : > "$out"
exit 0
