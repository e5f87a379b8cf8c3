#!/usr/bin/env bash
# Tools for the Ansible tests (tests/ansible): called by .ci/run before pytest.
# ansible (the PyPI package bundles community.general's chroot connection,
# community.crypto and ansible.posix; Galaxy is not reachable) and
# ansible-lint go into their own venv so their pins never touch the project's.
set -euo pipefail
VENV=${TIENGMO_ANSIBLE_VENV:-/opt/tiengmo-ci/ansible}

need_apt=()
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v mosquitto_ctrl >/dev/null || need_apt+=(mosquitto-clients)
command -v openssl >/dev/null || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! { [ -x "$VENV/bin/ansible-playbook" ] && [ -x "$VENV/bin/ansible-lint" ]; }; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "ansible>=11,<13" "ansible-lint>=25"
fi
"$VENV/bin/ansible-doc" -t connection community.general.chroot >/dev/null
"$VENV/bin/ansible-doc" community.crypto.x509_certificate >/dev/null
echo "ansible tools ready: $("$VENV/bin/ansible" --version | sed -n 1p)"
