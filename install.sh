#!/usr/bin/env bash
# Install everything femdc-bench needs on a Debian 12 machine, as root:
# distribution packages (iproute2, sshd, MariaDB + Galera, memcached, RabbitMQ, OVN,
# InfluxDB, ping, ...),
# a virtualenv in .venv with the project (editable) and its pinned dependencies.
# Idempotent: a second run only checks. OpenStack's own venvs are built (by uv, a pinned
# dependency) by the deployment itself (cached under /var/cache/femdc-bench/venvs, keyed
# by lock hash).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

if [ "$(id -u)" != 0 ]; then
  echo "install.sh: must run as root (apt, network namespaces, sshd)" >&2
  exit 1
fi

packages=(
  python3 python3-venv python3-dev gcc libffi-dev libssl-dev
  iproute2 iptables iputils-ping procps util-linux ca-certificates
  openssh-server openssh-client
  mariadb-server mariadb-client memcached influxdb
  libnetfilter-queue-dev pkg-config
  rabbitmq-server ovn-central ovn-common galera-4 rsync stunnel4
  chromium  # the HTML report's check: rendered headless, offline
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The tool's venv, on the distribution's Python (3.11 on Debian 12).
if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv .venv
fi
stamp=".venv/.femdc-install-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  # uv (pinned in pyproject.toml, which installs it again, same version) installs the
  # rest several times faster than pip; it also builds the deployments' locked venvs.
  uv_pin=$(grep -o '"uv==[0-9.]*"' pyproject.toml | tr -d '"')
  .venv/bin/pip install -q --disable-pip-version-check "$uv_pin"
  # --compile-bytecode as pip does: without it each CLI start compiles its imports again
  .venv/bin/uv pip install -q --native-tls --compile-bytecode --python .venv/bin/python \
    -e '.[test]' tox==4.67.13
  rm -f .venv/.femdc-install-*
  touch "$stamp"
fi
.venv/bin/femdc-bench --version
