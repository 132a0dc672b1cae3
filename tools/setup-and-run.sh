#!/usr/bin/env bash
# One command for a fresh Debian machine: install mqan's system packages, build it in release
# mode, compile MQAN's default plan and check parity with decaNLP on the bundled fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y libopenblas-dev libomp-dev pkg-config libopenmpi-dev openmpi-bin
swift build -c release --product mqan
.build/release/mqan compile --preset default --plan all --emit summary
.build/release/mqan verify Tests/MQANTests/Fixtures/tiny.safetensors Tests/MQANTests/Fixtures/small.safetensors
