#!/bin/sh
# Debian packages the tests and the demo use: Java 17 (TorchServe), Prometheus and Alertmanager (end-to-end
# alerting), Debian's own python3.11 with venv and a shared libpython (PyTriton). Installs only what is missing,
# and only as root; otherwise says what to install and carries on (the tests that need them skip).
#   sh scripts/system-deps.sh        everything the tests use
#   sh scripts/system-deps.sh demo   only Prometheus and Alertmanager (the demo shows pages with them)
set -eu
need=""
if [ "${1:-}" = demo ]; then
  command -v prometheus >/dev/null 2>&1 || need="$need prometheus"
  command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 || need="$need prometheus-alertmanager"
else
command -v java >/dev/null 2>&1 && java -version 2>&1 | grep -q '"17\|"21' || need="$need openjdk-17-jre-headless"
command -v prometheus >/dev/null 2>&1 || need="$need prometheus"
command -v promtool >/dev/null 2>&1 || case "$need" in *prometheus*) ;; *) need="$need prometheus";; esac
command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 || need="$need prometheus-alertmanager"
[ -x /usr/bin/python3.11 ] && /usr/bin/python3.11 -c 'import ensurepip' >/dev/null 2>&1 || need="$need python3.11 python3.11-venv"
[ -e /usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0 ] || [ -e /usr/lib/aarch64-linux-gnu/libpython3.11.so.1.0 ] || need="$need libpython3.11"
fi
[ -z "$need" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: installing$need"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $need >/dev/null
else
  echo "system-deps: missing$need (run as root to install them; tests that need them will skip)" >&2
fi
