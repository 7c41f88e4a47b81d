#!/usr/bin/env bash
# The browser test's dependencies: Debian's chromium and chromium-driver
# (/usr/bin/chromium, /usr/bin/chromedriver). Installed when missing; needs root.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "[browser] chromium / chromium-driver missing: run 'sudo apt-get install chromium chromium-driver'" >&2
  exit 1
fi
echo "[browser] installing chromium and chromium-driver (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || {
  apt-get update -q >/dev/null
  apt-get install -y -q chromium chromium-driver >/dev/null
}
echo "[browser] $(/usr/bin/chromium --version 2>/dev/null || echo chromium installed)"
