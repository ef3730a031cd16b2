#!/usr/bin/env bash
# Minimal file helpers used by the bitnami/redis chart's sentinel script. Raibid testbed.

# replace_in_file FILE MATCH_REGEX SUBSTITUTE [POSIX_REGEX=true]
# Replaces lines matching MATCH_REGEX with SUBSTITUTE using sed (-E when POSIX_REGEX is false).
replace_in_file() {
    local file="${1:?filename is missing}"
    local match="${2:?match regex is missing}"
    local subst="${3:?substitute regex is missing}"
    local posix="${4:-true}"
    local del=$'\001'
    local content
    if [[ "$posix" == "true" ]]; then
        content="$(sed "s${del}${match}${del}${subst}${del}g" "$file")"
    else
        content="$(sed -E "s${del}${match}${del}${subst}${del}g" "$file")"
    fi
    # Write in place without replacing the inode (the file may be a mount).
    printf '%s\n' "$content" >"$file"
}
