# Sourced by the scripts that install Debian packages (demo.sh, test.sh,
# e2e-deps.sh). Not a script of its own.
#
#   install_missing WHO PKG...
#
# installs those of PKG that are not installed yet (nothing at all when every
# one is, so a warm machine never touches apt), as root, and leaves the host's
# services as they were: Debian starts and enables a package's service at
# install (kamailio on 5060, postgresql on 5432, mariadb on 3306), which a
# test run must not do. So, while apt runs, /usr/sbin/policy-rc.d answers 101
# ("action forbidden") to every start request (an existing policy-rc.d is put
# back byte for byte afterwards), and every systemd unit the install enabled
# that was not enabled before is disabled again (`systemctl disable` works
# without a running systemd, in a chroot too).

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q ' installed$'
}

# Symlinks that enable units: NAME.target.wants/UNIT and NAME.target.requires/UNIT.
enabled_links() {
    find /etc/systemd/system -mindepth 2 -maxdepth 2 -type l \
        \( -path '*.wants/*' -o -path '*.requires/*' \) -printf '%P\n' 2>/dev/null | sort
}

# Runs "$@" with a policy-rc.d that forbids starting services, then restores
# the previous one (or removes ours). A subshell, so its traps are its own.
without_service_starts() (
    policy=/usr/sbin/policy-rc.d
    saved=$(mktemp -d /tmp/pbxbridge-policy.XXXXXX)
    had_policy=false
    if [ -e "$policy" ] || [ -L "$policy" ]; then
        cp -a "$policy" "$saved/policy-rc.d"
        had_policy=true
    fi
    restore() {
        if $had_policy; then
            cp -a "$saved/policy-rc.d" "$policy"
        else
            rm -f "$policy"
        fi
        rm -rf "$saved"
    }
    trap restore EXIT
    trap 'exit 130' INT TERM
    printf '#!/bin/sh\n# Written by pbxbridge scripts/lib/debian.sh while it installs packages: start no service.\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    "$@"
)

# Disables the units behind links that are in $2 (after) but not in $1
# (before). A unit that had other links before loses only its new ones.
disable_new_units() {
    local who=$1 before=$2 after=$3 link unit
    for link in $(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after")); do
        unit=${link#*/}
        if ! awk -F/ -v u="$unit" '$2 == u { f = 1 } END { exit !f }' <<<"$before" &&
            command -v systemctl >/dev/null 2>&1; then
            systemctl --no-reload disable "$unit" >/dev/null 2>&1 || true
        fi
        # Whatever systemctl did not remove (or with no systemctl at all).
        rm -f "/etc/systemd/system/$link"
        echo "$who: $unit was enabled by its package; disabled again (it was not enabled before)" >&2
    done
}

install_missing() {
    local who=$1 need=() p before after
    shift
    for p in "$@"; do
        installed "$p" || need+=("$p")
    done
    [ "${#need[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "$who: missing Debian packages: ${need[*]} (run as root, or install them)" >&2
        return 1
    fi
    echo "$who: installing ${need[*]} (no service is started or enabled)" >&2
    before=$(enabled_links)
    export DEBIAN_FRONTEND=noninteractive
    without_service_starts sh -c 'apt-get update -q && apt-get install -y -q --no-install-recommends "$@"' \
        apt-get "${need[@]}" >&2
    after=$(enabled_links)
    disable_new_units "$who" "$before" "$after"
}

# Puts rustup's cargo on PATH when the shell has not (a shell started before
# rustup ran, or a non-login one: rustup adds it in ~/.profile).
cargo_on_path() {
    if ! command -v cargo >/dev/null 2>&1 && [ -f "${CARGO_HOME:-$HOME/.cargo}/env" ]; then
        . "${CARGO_HOME:-$HOME/.cargo}/env"
    fi
    command -v cargo >/dev/null 2>&1
}
