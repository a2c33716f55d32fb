#!/usr/bin/env bash
# Installs what attncheck needs on a fresh Debian 12 machine (root, or sudo).
# Skips the package manager when everything is already there.
set -euo pipefail
pkgs=(cmake make gcc g++ pkg-config libcriterion-dev libmpfr-dev libgmp-dev
      libpng-dev zlib1g-dev libcjson-dev
      clang-14 libclang-rt-14-dev python3 python3-mpmath
      python3-numpy python3-pytest)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all packages present"
fi
