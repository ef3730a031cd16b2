#!/usr/bin/env bash
# What ansible-core alone costs a run_once role over many hosts (the "50 hosts" floor in README's Speed section):
# times a stand-in role with roles/redis's argument spec and defaults and the re-run's shape (RUN run_once tasks
# that run and SKIP that are skipped, in one block delegated to localhost) and nothing else, over 1 and 50 local
# hosts, 3 times each. No cluster needed.
#   bash tests/bench/hosts_floor.sh [RUN [SKIP]]    (defaults 12 26: the re-run's ok=12 skipped=26)
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD run="${1:-12}" skip="${2:-26}" work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export PATH=$repo/.venv/bin:$PATH
role=$work/roles/standin
mkdir -p "$role/meta" "$role/tasks" "$role/defaults"
cp roles/redis/meta/argument_specs.yml "$role/meta/"
cp roles/redis/defaults/main.yml "$role/defaults/"
{
  printf -- '---\n- name: Like the real role, once from the controller\n  run_once: true\n  delegate_to: localhost\n  block:\n'
  for i in $(seq 1 "$run"); do
    printf '    - name: Run %d\n      ansible.builtin.set_fact:\n        _standin_%d: %d\n' "$i" "$i" "$i"
  done
  for i in $(seq 1 "$skip"); do
    printf '    - name: Skip %d\n      ansible.builtin.set_fact:\n        _standin_skip: %d\n      when: _standin_1 == 0\n' \
      "$i" "$i"
  done
} >"$role/tasks/main.yml"
printf -- '- name: Stand-in\n  hosts: all\n  gather_facts: false\n  roles: [standin]\n' >"$work/site.yml"
for n in 1 50; do
  for i in $(seq 1 "$n"); do
    echo "h$i ansible_connection=local ansible_python_interpreter=$repo/.venv/bin/python"
  done >"$work/hosts$n"
done
seconds() {
  local began=$EPOCHREALTIME
  ansible-playbook -i "$work/hosts$1" "$work/site.yml" >"$work/out.log" || { cat "$work/out.log"; exit 1; }
  python3 -c 'import sys; print(float(sys.argv[2]) - float(sys.argv[1]))' "$began" "$EPOCHREALTIME"
}
for round in 1 2 3; do
  printf 'round %d: 1 host %.2f s, 50 hosts %.2f s\n' "$round" "$(seconds 1)" "$(seconds 50)"
done
