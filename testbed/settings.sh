#!/usr/bin/env bash
# Prints the testbed's settings as one JSON object: the build cache (RAIBID_CACHE) and what images.env sets (image
# refs, their directory), evaluated as the testbed's own scripts evaluate them. The one reader for Python
# (tests/utils/harness.py) and Ansible (testbed/ansible/local-testbed.yml); bash scripts source lib.sh instead.
set -euo pipefail
# shellcheck source=testbed/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
load_images_env
# shellcheck disable=SC2163 # exports the variables named
export RAIBID_CACHE "${!RAIBID_@}"
exec python3 -c 'import json, os; print(json.dumps({k: v for k, v in os.environ.items() if k.startswith("RAIBID_")}))'
