#!/usr/bin/env bash
# Minimal logging helpers with the function names the bitnami/redis chart's scripts call
# (info, warn, error, debug). Written for the raibid testbed; messages go to stderr.

_raibid_log() {
    printf '%s %s %s\n' "$(date '+%H:%M:%S.%2N' 2>/dev/null || date)" "$1" "$2" >&2
}
info() { _raibid_log "INFO " "==> $*"; }
warn() { _raibid_log "WARN " "==> $*"; }
error() { _raibid_log "ERROR" "==> $*"; }
# debug prints only when BITNAMI_DEBUG is true, as the chart's env var suggests.
debug() {
    case "${BITNAMI_DEBUG:-false}" in
        true | yes | 1) _raibid_log "DEBUG" "==> $*" ;;
    esac
    return 0
}
