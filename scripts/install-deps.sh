#!/usr/bin/env bash
# Installs the Debian 12 packages that building and testing fleetmedic need,
# skipping those already present. Run as root (or with sudo available).
set -euo pipefail

packages=(
  gcc libc6-dev pkg-config meson ninja-build     # toolchain and build
  libjson-c-dev                                   # event decoding
  libsystemd-dev                                  # sd-event loop, sd_notify, journal
  libmosquitto-dev                                # MQTT client
  libmicrohttpd-dev                               # /metrics, /healthz, /readyz, /status
  libyaml-dev                                     # configuration
  libcurl4-openssl-dev                            # status, kubernetes/mlflow/alertmanager clients
  libcmocka-dev valgrind                          # unit tests, leak checks
  mosquitto mosquitto-clients python3 openssl     # integration tests and the benchmark
  scdoc man-db                                    # the manual page
  debhelper dpkg-dev git dbus-daemon polkitd      # the package test: build, install, polkit rule
  python3-dbusmock python3-dbus python3-gi        # systemd actuator test: a mock systemd on a
                                                  #   private bus
  haproxy prometheus-alertmanager                 # haproxy and alertmanager actuator tests
  chromium fonts-dejavu-core                      # the simulator report, rendered headless
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

# The Kubernetes manifest test validates with npm packages: Debian's nodejs
# and npm, unless a node and npm (from any source) are already there.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  for p in nodejs npm; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
      missing+=("$p")
  done
fi

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then
    sudo=(sudo)
  else
    echo "install-deps: missing ${missing[*]}; run as root or install sudo" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
