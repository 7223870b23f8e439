#!/usr/bin/env bash
# Installs the Debian 12 packages gliomagrade needs to build, test and run. Idempotent and
# non-interactive; run as root (or with sudo). Safe to re-run: apt skips what is present.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libtorch-dev                                    # tensors, autograd, oneDNN kernels
  libgloo-dev                                     # headers of c10d's Gloo process group (data-parallel training)
  libgoogle-glog-dev                              # c10d logs through glog; we quieten it
  libopenblas0-openmp                             # fast BLAS for libtorch (Debian's default is the reference BLAS)
  libinsighttoolkit5-dev                          # NIfTI / NRRD / MHA IO and geometry
  libgdcm-dev                                     # DICOM series (ITKIOGDCM; ITK depends on it too)
  libopencv-imgproc-dev libopencv-imgcodecs-dev   # 2-D resize, PNG
  libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libcairo2-dev                                   # plots (PNG, SVG)
  libcurl4-openssl-dev libssl-dev zlib1g-dev      # weights fetch, sha256, gzip
  libgtest-dev libgmock-dev libbenchmark-dev
  python3                                         # tests' local HTTP server
  python3-torch                                   # torchrun, the launcher of data-parallel runs (and their tests)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
