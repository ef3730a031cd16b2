#!/usr/bin/env bash
# Minimal validation helpers used by the bitnami/redis chart's sentinel scripts. Raibid testbed.

# is_boolean_yes VALUE: true for yes/true/1 (any case).
is_boolean_yes() {
    local v="${1:-}"
    v="${v,,}"
    [[ "$v" == "yes" || "$v" == "true" || "$v" == "1" ]]
}

# is_empty_value VALUE: true when VALUE is empty.
is_empty_value() {
    [[ -z "${1:-}" ]]
}
