#!/usr/bin/env bash
# Spark (the cohort engine for large data, and its equality test) needs a Java runtime (17+).
# Installs Debian's headless JRE when no java is on PATH; does nothing otherwise.
set -euo pipefail
if command -v java >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq openjdk-17-jre-headless >/dev/null
java -version
