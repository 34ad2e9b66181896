#!/usr/bin/env bash
# Writes BreastMNIST (the official MedMNIST npz) as PNG files in the `folder:` layout that
# `conad fit` / `conad score` read:
#   OUT/train/good/      the 399 normal ("normal, benign") training images
#   OUT/test/good/       the 114 normal test images
#   OUT/test/malignant/  the 42 malignant test images
# Usage: xtask/scripts/breastmnist_folder.sh [NPZ] [OUT]
#   NPZ defaults to ../shared/data/medmnist/breastmnist.npz, OUT to target/breastmnist-folder
#   (outside version control: never copy data into the repository).
set -euo pipefail
cd "$(dirname "$0")/../.."
npz="${1:-../shared/data/medmnist/breastmnist.npz}"
out="${2:-target/breastmnist-folder}"
cargo run --release --locked -q -p conad-cli -- data export "medmnist:$npz" --out "$out"
