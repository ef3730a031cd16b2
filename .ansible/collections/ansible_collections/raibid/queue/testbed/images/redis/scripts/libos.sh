#!/usr/bin/env bash
# Minimal OS helpers used by the bitnami/redis chart's scripts. Raibid testbed.
# shellcheck source=SCRIPTDIR/liblog.sh
. /opt/bitnami/scripts/liblog.sh

# retry_while CMD [RETRIES=12] [SLEEP=5]: run CMD (a string, word-split) until it succeeds.
retry_while() {
    local cmd="${1:?cmd is missing}"
    local retries="${2:-12}"
    local sleep_time="${3:-5}"
    local i
    local -a argv
    read -r -a argv <<<"$cmd"
    for ((i = 1; i <= retries; i++)); do
        if "${argv[@]}"; then
            return 0
        fi
        sleep "$sleep_time"
    done
    return 1
}

# am_i_root: true when running as uid 0.
am_i_root() {
    [[ "$(id -u)" == "0" ]]
}
