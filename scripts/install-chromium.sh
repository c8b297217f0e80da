#!/usr/bin/env bash
# The browser tests (tests/web/test_browser.py) and scripts/screenshots.py drive Debian's Chromium
# through Playwright (executable_path=/usr/bin/chromium; `playwright install` is never used).
# Installs Debian's chromium package when /usr/bin/chromium is missing; does nothing otherwise.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
/usr/bin/chromium --version
