#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Checks the packaging in packaging/:
#   a. security: systemd-analyze security --offline=true rates the unit's
#      overall exposure at most MAX_EXPOSURE (2.0).
#   b. verify: systemd-analyze verify has no complaint about the unit.
#   c. manpage: scdoc builds fleetmedic(8), man renders it without a warning,
#      and it names every command, option, configuration key and metric.
#   d. debian: the Debian package builds (dpkg-buildpackage from a copy of
#      the working tree), installs, runs (--version, check), its polkit rule
#      grants what it should and nothing more (real polkitd on a private
#      bus), and removing and purging it leaves nothing behind.
#
# a-c run as any user; d needs root and a machine with no fleetmedic
# package, /etc/fleetmedic or /var/lib/fleetmedic (purging removes them):
# otherwise d is skipped, and the script exits 77 (a skip for meson) once
# a-c have passed. d builds what the working tree holds, new files included. Every temporary file, process,
# package and user it made is removed on exit, whatever happens.
#
# Needs: systemd (systemd-analyze), scdoc, man-db, git, and for d dpkg-dev,
# debhelper, the build dependencies in packaging/debian/control, dbus-daemon,
# polkitd (with pkcheck) and util-linux (setpriv).
# shellcheck disable=SC2317 # the checks are called through run()
set -euo pipefail

MAX_EXPOSURE=2.0

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
unit=$src/packaging/systemd/fleetmedic.service
scd=$src/packaging/man/fleetmedic.8.scd

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fleetmedic-packaging.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Each check runs in a subshell whose EXIT trap undoes what it did, on
# every path out: the processes it started, the package it installed, the
# user that the package created.
pids=()            # processes the check started
installed_pkg=no   # whether the check installed the fleetmedic package
created_user=no    # whether the fleetmedic user appeared with the package

check_cleanup() {
        local rc=$? pid st
        set +e
        for pid in "${pids[@]}"; do
                kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
        done
        if [ "$installed_pkg" = yes ]; then
                st=$(dpkg-query -W -f='${Status}' fleetmedic 2>/dev/null)
                case $st in
                *not-installed* | "") ;;
                *)
                        echo "cleanup: purging the fleetmedic package"
                        dpkg -P fleetmedic >/dev/null 2>&1
                        ;;
                esac
        fi
        if [ "$created_user" = yes ] && getent passwd fleetmedic >/dev/null; then
                userdel fleetmedic 2>/dev/null
                getent group fleetmedic >/dev/null && groupdel fleetmedic 2>/dev/null
        fi
        exit "$rc"
}

log() { printf '%s\n' "$*"; }
die() { printf 'FAIL: %s\n' "$*"; exit 1; }

need() { # command, Debian package
        command -v "$1" >/dev/null || die "$1 not found (apt-get install $2)"
}

# ---- a. security --------------------------------------------------------------------------------

check_security() {
        need systemd-analyze systemd
        local out level
        out=$(systemd-analyze security --offline=true --no-pager "$unit" 2>&1) ||
                die "systemd-analyze security failed: $out"
        level=$(printf '%s\n' "$out" |
                sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9.]*\).*/\1/p')
        [ -n "$level" ] || die "no 'Overall exposure level' in: $out"
        log "overall exposure level: $level (at most $MAX_EXPOSURE)"
        printf '%s\n' "$out" | grep '✗' | sed 's/^/  /' || true
        awk -v l="$level" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(l + 0 <= m + 0) }' ||
                die "exposure $level is above $MAX_EXPOSURE"
}

# ---- c. manual page (built first: b looks it up) ------------------------------------------------

build_manpage() { # -> $tmp/man/man8/fleetmedic.8
        need scdoc scdoc
        mkdir -p "$tmp/man/man8"
        scdoc <"$scd" >"$tmp/man/man8/fleetmedic.8" || die "scdoc failed on $scd"
}

check_manpage() {
        need man man-db
        build_manpage
        local page=$tmp/man/man8/fleetmedic.8 warnings missing=() key name line opt
        local -a path=()

        warnings=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
        [ -z "$warnings" ] || die "man --warnings: $warnings"
        MANWIDTH=80 man -l "$page" 2>/dev/null | grep -q 'EXIT STATUS' ||
                die "the rendered page has no EXIT STATUS section"

        # Every command, every option of main.c, every key of the example
        # configuration and every metric of daemon.c is described.
        for name in run check status demo; do
                grep -qF "*$name*" "$scd" || missing+=("command $name")
        done
        while IFS= read -r opt; do
                grep -qF -- "*--$opt*" "$scd" || missing+=("option --$opt")
        done < <(sed -n 's/^ *{"\([a-z-]*\)", \(no\|required\)_argument.*/\1/p' \
                "$src/controller/main.c" | sort -u)
        while IFS= read -r line; do
                [[ $line =~ ^(\ *)([a-z_]+): ]] || continue
                local depth=$((${#BASH_REMATCH[1]} / 2))
                path=("${path[@]:0:depth}" "${BASH_REMATCH[2]}")
                [[ $line =~ ^\ *[a-z_]+:[[:space:]]*[^[:space:]#] ]] || continue # a section
                key=$(IFS=.; printf '%s' "${path[*]}")
                grep -qF "*$key*" "$scd" || missing+=("key $key")
        done <"$src/packaging/fleetmedic.example.yaml"
        while IFS= read -r name; do
                grep -qF "*$name" "$scd" || missing+=("metric $name")
        done < <(sed -n 's/.*fm_prom_family(b, "\([a-z_]*\)".*/\1/p' "$src/controller/daemon.c")
        [ "${#missing[@]}" -eq 0 ] || die "not in the manual page: ${missing[*]}"
}

# ---- b. verify ----------------------------------------------------------------------------------

# systemd-analyze verify loads the unit into a manager that runs nothing:
# it reports unknown sections and keys and bad values (as warnings, with
# exit status 0, so any output counts as a failure here), Exec= binaries
# that do not exist or are not executable, a Documentation= man page that
# "man" cannot find, and dependencies or ordering cycles that make the
# start transaction fail. It does not check that User= exists or that the
# sandbox lets the daemon run. /usr/bin/fleetmedic is not installed here,
# so a copy of the unit points at a stand-in, and MANPATH at the page
# that scdoc builds (as in c). Part d verifies the installed unit as it is.
check_verify() {
        need systemd-analyze systemd
        local dir=$tmp/verify out man=yes
        if [ ! -f "$tmp/man/man8/fleetmedic.8" ] && ! (build_manpage) >/dev/null; then
                log "the manual page does not build (see c): not checking Documentation="
                man=no
        fi
        mkdir -p "$dir/bin"
        printf '#!/bin/sh\nexit 0\n' >"$dir/bin/fleetmedic"
        chmod 0755 "$dir/bin/fleetmedic"
        sed "s#/usr/bin/fleetmedic#$dir/bin/fleetmedic#g" "$unit" >"$dir/fleetmedic.service"
        out=$(cd "$dir" &&
                MANPATH=$tmp/man systemd-analyze verify --man="$man" fleetmedic.service 2>&1) ||
                die "systemd-analyze verify: $out"
        [ -z "$out" ] || die "systemd-analyze verify: $out"
        log "systemd-analyze verify: no complaint"
}

# ---- d. Debian package --------------------------------------------------------------------------

# A private system bus with a real polkitd evaluating the installed rule,
# asked by pkcheck about a process running as the fleetmedic user.
check_polkit() {
        local pk=/usr/lib/polkit-1/polkitd dir=$tmp/polkit subject other pid name verb want rc
        if ! command -v dbus-daemon >/dev/null || ! command -v pkcheck >/dev/null ||
                [ ! -x "$pk" ] || ! command -v setpriv >/dev/null; then
                die "the polkit check needs dbus-daemon, polkitd, pkcheck and setpriv"
        fi
        mkdir -p "$dir"
        chmod 0755 "$tmp" "$dir" # polkitd runs as its own user and must reach the socket
        cat >"$dir/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$dir/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
EOF
        # --fork returns once the bus listens, so polkitd finds it.
        dbus-daemon --config-file="$dir/bus.conf" --fork --nopidfile --print-pid=3 \
                3>"$dir/dbus.pid" 2>"$dir/dbus.log" || die "dbus-daemon: $(cat "$dir/dbus.log")"
        pids+=("$(cat "$dir/dbus.pid")")
        export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$dir/bus
        "$pk" >"$dir/polkitd.log" 2>&1 &
        pids+=($!)
        setpriv --reuid=fleetmedic --regid=fleetmedic --clear-groups sleep 300 &
        subject=$!
        pids+=("$subject")
        setpriv --reuid=nobody --regid=nogroup --clear-groups sleep 300 &
        other=$!
        pids+=("$other")

        # Wait for polkitd to own its name: the first answer that is not an error.
        local deadline=$((SECONDS + 20))
        until pkcheck --action-id org.freedesktop.systemd1.manage-units --process "$subject" \
                --detail unit model-server@a.service --detail verb start >/dev/null 2>&1; do
                [ "$SECONDS" -lt "$deadline" ] ||
                        die "polkitd did not answer: $(cat "$dir/polkitd.log")"
                sleep 0.2
        done

        # subject unit verb expected(yes/no)
        local cases=(
                "$subject model-server@a.service start yes"
                "$subject model-server@gpu0.service restart yes"
                "$subject model-server@gpu0.service stop yes"
                "$subject model-server@gpu0.service try-restart yes"
                "$subject model-server@gpu0.service reload-or-restart yes"
                "$subject model-server@gpu0.service reset-failed yes"
                "$subject model-server@gpu0.service kill no"
                "$subject model-server@gpu0.service set-property no"
                "$subject model-server.service restart no"
                "$subject xmodel-server@a.service restart no"
                "$subject model-server@a.service.d restart no"
                "$subject ssh.service restart no"
                "$other model-server@a.service restart no"
        )
        local c failed=0
        for c in "${cases[@]}"; do
                read -r pid name verb want <<<"$c"
                rc=0
                pkcheck --action-id org.freedesktop.systemd1.manage-units --process "$pid" \
                        --detail unit "$name" --detail verb "$verb" >/dev/null 2>&1 || rc=$?
                # 0 authorized; 1 not authorized; 2 only after authentication
                if { [ "$want" = yes ] && [ "$rc" -ne 0 ]; } ||
                        { [ "$want" = no ] && [ "$rc" -ne 1 ] && [ "$rc" -ne 2 ]; }; then
                        log "  polkit: $verb $name as $(ps -o user= -p "$pid"):" \
                                "pkcheck exit $rc, expected $want"
                        failed=1
                fi
        done
        rc=0
        pkcheck --action-id org.freedesktop.systemd1.manage-unit-files --process "$subject" \
                --detail unit model-server@a.service --detail verb enable >/dev/null 2>&1 || rc=$?
        [ "$rc" -eq 1 ] || [ "$rc" -eq 2 ] || { log "  polkit: manage-unit-files granted ($rc)"; failed=1; }
        [ "$failed" -eq 0 ] || die "the polkit rule does not grant what it should"
        log "polkit: ${#cases[@]} cases and manage-unit-files as expected"
}

check_debian() {
        local tree=$tmp/fleetmedic-0.1.0 deb out
        for t in git:git dpkg-buildpackage:dpkg-dev dh:debhelper dpkg-deb:dpkg; do
                need "${t%%:*}" "${t#*:}"
        done

        # A copy of the working tree (tracked and new files, not what
        # .gitignore leaves out, such as the build directories).
        mkdir -p "$tree"
        git -C "$src" ls-files -z --cached --others --exclude-standard |
                tar -C "$src" --null --ignore-failed-read -T - -cf - 2>/dev/null |
                tar -C "$tree" -xf -
        cp -a "$tree/packaging/debian" "$tree/debian"
        log "building the package"
        if ! (cd "$tree" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
                dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1; then
                tail -40 "$tmp/build.log" >&2
                die "dpkg-buildpackage failed"
        fi
        deb=$(ls "$tmp"/fleetmedic_0.1.0-1_*.deb)

        # What the package holds.
        local contents f
        contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
        for f in ./usr/bin/fleetmedic ./lib/systemd/system/fleetmedic.service \
                ./usr/lib/sysusers.d/fleetmedic.conf \
                ./usr/share/polkit-1/rules.d/50-fleetmedic.rules \
                ./etc/fleetmedic/fleetmedic.yaml ./usr/share/man/man8/fleetmedic.8.gz \
                ./usr/share/doc/fleetmedic/fleetmedic.example.yaml; do
                grep -qxF "$f" <<<"$contents" || die "the package lacks $f"
        done
        dpkg-deb -e "$deb" "$tmp/control"
        grep -qxF /etc/fleetmedic/fleetmedic.yaml "$tmp/control/conffiles" ||
                die "/etc/fleetmedic/fleetmedic.yaml is not a conffile"

        # Install and run it.
        getent passwd fleetmedic >/dev/null || created_user=yes
        installed_pkg=yes
        out=$(dpkg -i "$deb" 2>&1) || die "dpkg -i: $out"
        getent passwd fleetmedic | grep -q ':/usr/sbin/nologin$' ||
                die "no fleetmedic system user after installing"
        out=$(/usr/bin/fleetmedic --version) || die "fleetmedic --version failed"
        [ "$out" = "fleetmedic 0.1.0" ] || die "fleetmedic --version said '$out'"
        log "installed: $out"
        out=$(setpriv --reuid=fleetmedic --regid=fleetmedic --clear-groups \
                /usr/bin/fleetmedic check -c /etc/fleetmedic/fleetmedic.yaml 2>&1) ||
                die "fleetmedic check (as user fleetmedic): $out"
        log "as user fleetmedic: $out"
        out=$(MANWIDTH=80 man --warnings fleetmedic 2>&1 >/dev/null) || die "man fleetmedic: $out"
        [ -z "$out" ] || die "man fleetmedic: $out"
        out=$(systemd-analyze verify /lib/systemd/system/fleetmedic.service 2>&1) ||
                die "systemd-analyze verify of the installed unit: $out"
        [ -z "$out" ] || die "systemd-analyze verify of the installed unit: $out"
        log "installed unit: systemd-analyze verify has no complaint"
        check_polkit

        # Remove: the binary goes, the configuration stays; purge: all goes.
        mkdir -p /var/lib/fleetmedic # as StateDirectory= would have made it
        out=$(dpkg -r fleetmedic 2>&1) || die "dpkg -r: $out"
        [ ! -e /usr/bin/fleetmedic ] || die "/usr/bin/fleetmedic is still there after dpkg -r"
        [ -e /etc/fleetmedic/fleetmedic.yaml ] || die "dpkg -r removed the conffile"
        out=$(dpkg -P fleetmedic 2>&1) || die "dpkg -P: $out"
        for f in /usr/bin/fleetmedic /etc/fleetmedic /var/lib/fleetmedic \
                /lib/systemd/system/fleetmedic.service \
                /usr/share/polkit-1/rules.d/50-fleetmedic.rules; do
                [ ! -e "$f" ] || die "$f is still there after dpkg -P"
        done
        out=$(dpkg-query -W -f='${Status}' fleetmedic 2>/dev/null || true)
        case $out in
        *not-installed* | "") ;;
        *) die "after dpkg -P, dpkg says fleetmedic is: $out" ;;
        esac
        installed_pkg=no
        log "removed and purged: nothing left"
}

# ---- driver -------------------------------------------------------------------------------------

passed=0 failed=0 skipped=0
run() { # name, function
        local rc
        log "== $1"
        set +e
        (
                set -e
                trap check_cleanup EXIT
                trap 'exit 130' INT
                trap 'exit 143' TERM
                "$2"
        )
        rc=$?
        set -e
        if [ $rc -eq 0 ]; then
                log "PASS: $1"
                passed=$((passed + 1))
        else
                log "FAIL: $1"
                failed=$((failed + 1))
        fi
}
skip() { # name, why
        log "== $1"
        log "SKIP: $1: $2"
        skipped=$((skipped + 1))
}

started=$SECONDS
run "a. security exposure" check_security
run "b. systemd-analyze verify" check_verify
run "c. manual page" check_manpage
if [ "$(id -u)" -ne 0 ]; then
        skip "d. Debian package" "needs root (dpkg -i)"
elif st=$(dpkg-query -W -f='${Status}' fleetmedic 2>/dev/null) &&
        [[ $st != *not-installed* ]]; then
        skip "d. Debian package" "a fleetmedic package is installed ($st); not touching it"
elif [ -e /etc/fleetmedic ] || [ -e /var/lib/fleetmedic ]; then
        skip "d. Debian package" "/etc/fleetmedic or /var/lib/fleetmedic exists; purging would remove it"
else
        run "d. Debian package" check_debian
fi

log "took $((SECONDS - started)) s"
log "packaging: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ] || exit 1
[ $skipped -eq 0 ] || exit 77
exit 0
