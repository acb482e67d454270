#!/usr/bin/env bash
# Installs plantgate as a systemd service on an edge PC (x86-64 or ARM64, Debian/Ubuntu).
# Run from a checkout as root: sudo scripts/install.sh
# Needs Node.js 22 LTS (or 20) as /usr/bin/node.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "run as root (sudo $0)" >&2; exit 1; }
command -v node >/dev/null || { echo "Node.js 22 LTS is required (/usr/bin/node)" >&2; exit 1; }

id plantgate >/dev/null 2>&1 || useradd --system --home /var/lib/plantgate --shell /usr/sbin/nologin plantgate
install -d -o root -g root /opt/plantgate
cp -a package.json package-lock.json tsconfig.json src scripts config systemd README.md /opt/plantgate/
(cd /opt/plantgate && npm ci --no-audit --no-fund && npm run build && npm prune --omit=dev --no-audit --no-fund)

install -d -o root -g plantgate -m 0750 /etc/plantgate
if [ ! -f /etc/plantgate/gateway.yaml ]; then
  sed 's#dataDir: ./data#dataDir: /var/lib/plantgate#' config/gateway.yaml > /etc/plantgate/gateway.yaml
  chgrp plantgate /etc/plantgate/gateway.yaml && chmod 0640 /etc/plantgate/gateway.yaml
fi
node /opt/plantgate/dist/src/main.js check-config --config /etc/plantgate/gateway.yaml

install -m 0644 systemd/plantgate.service /etc/systemd/system/plantgate.service
systemctl daemon-reload
systemctl enable --now plantgate
systemctl --no-pager status plantgate || true
echo "plantgate installed: config /etc/plantgate/gateway.yaml, data /var/lib/plantgate, logs: journalctl -u plantgate -f"
