#!/usr/bin/env bash
# Debian packages the project needs: espeak-ng and sox (demo clips), ffmpeg (decoding
# formats libsndfile lacks), chromium (browser tests). Installs only what is missing.
set -euo pipefail
PKGS=(espeak-ng sox ffmpeg chromium)
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
