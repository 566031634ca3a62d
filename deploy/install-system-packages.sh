#!/usr/bin/env bash
# Debian/Ubuntu packages the test suite needs: a real redis-server, ffmpeg (RTP sender) and
# GStreamer's RTSP server (with python3-gi, driven by tests/support/rtsp_server.py), and
# Chromium with its WebDriver (the operator pages' browser tests, tests/support/browser.py).
set -euo pipefail
packages=(redis-server ffmpeg python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav chromium chromium-driver openssl)

have_all() {
  command -v redis-server >/dev/null && command -v ffmpeg >/dev/null &&
    command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v openssl >/dev/null &&
    /usr/bin/python3 -c 'import gi; gi.require_version("GstRtspServer", "1.0")' 2>/dev/null
}
if have_all; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "install-system-packages.sh: no apt-get; install the equivalents of: ${packages[*]}" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${packages[*]}" >&2; exit 1; }
  sudo=sudo
fi
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${packages[@]}"
