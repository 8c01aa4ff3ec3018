#!/usr/bin/env bash
# package-test.sh: test regent's packages from dist/ (packaging/build.sh).
#
#   1. static: shellcheck, lintian, dpkg-deb and rpm queries, the unit's
#      systemd-analyze security score (<= 2.0), a reproducible rebuild;
#   2. rpm: install, upgrade and erase into a scratch root (file layout) and
#      into a Debian rootfs (the scriptlets, with systemd not running);
#   3. systemd: boot a Debian 12 rootfs with systemd as PID 1 in its own PID,
#      mount and UTS namespaces, then install, crash, reload, break, upgrade,
#      remove and purge the deb under it.
#
# Needs root, debootstrap, lintian, rpm, shellcheck, unshare and nsenter (make
# package-test installs the missing ones). Environment (optional):
#   DIST_DIR     packages to test; default dist
#   BUILD_DIR    scratch space and the cached rootfs; default _build
#   MIRROR       Debian mirror for debootstrap; default: the host's apt source
#   PACKAGE_TEST_STAGES  which of "static rpm systemd" to run; default all
#   KEEP_ROOT=1  keep the booted rootfs for inspection
# Every process and mount it starts is ended by PID in the EXIT trap; the
# mounts live in the booted rootfs' private mount namespace, so they go with
# its processes. Ends with "N passed, N failed"; exits non-zero on a failure.
set -euo pipefail

cd "$(dirname "$0")/../.."
DIST_DIR=$(realpath -m "${DIST_DIR:-dist}")
BUILD_DIR=$(realpath -m "${BUILD_DIR:-_build}")
STAGES=${PACKAGE_TEST_STAGES:-static rpm systemd}
WORK=$BUILD_DIR/package-test
export TOOLS_DIR=$BUILD_DIR/tools # build.sh's nfpm, shared by every build below
LOGS=$WORK/logs
ROOTFS_PACKAGES=systemd,systemd-sysv,dbus,procps
ROOTFS_TAR=$BUILD_DIR/rootfs-bookworm-${ROOTFS_PACKAGES//,/-}.tar
SCORE_MAX=2.0

passed=0
failed=0
UNSHARE_PID=""
SD_PID=""

log() { printf '==> %s\n' "$*"; }
pass() {
	passed=$((passed + 1))
	printf 'ok   %s\n' "$1"
}
fail() {
	failed=$((failed + 1))
	printf 'FAIL %s\n' "$1"
	if [[ -n ${2:-} ]]; then
		printf '%s\n' "$2" | sed 's/^/     | /' | tail -n 40
	fi
}
# check DESC CMD...: run CMD, pass if it succeeds; its output is shown on failure.
check() {
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then
		pass "$desc"
	else
		fail "$desc" "$out"
	fi
}
# wait_for DESC SECONDS CMD...: poll CMD every 0.2s until it succeeds or the
# deadline passes (end-to-end polling with a deadline, no fixed sleeps).
wait_for() {
	local desc=$1 secs=$2 out
	shift 2
	local deadline=$((SECONDS + secs))
	while :; do
		if out=$("$@" 2>&1); then
			pass "$desc"
			return 0
		fi
		if ((SECONDS >= deadline)); then
			fail "$desc (after ${secs}s)" "$out"
			return 1
		fi
		sleep 0.2
	done
}
finish() {
	echo
	echo "package-test: $passed passed, $failed failed"
	echo "$passed passed, $failed failed"
	((failed == 0))
}

cleanup() {
	local rc=$?
	if [[ -n $SD_PID ]] && kill -0 "$SD_PID" 2>/dev/null; then
		# PID 1 of the namespace: SIGKILL ends every process in it, and its
		# mount namespace (with all the rootfs' mounts) with them.
		kill -KILL "$SD_PID" 2>/dev/null || true
	fi
	if [[ -n $UNSHARE_PID ]]; then
		kill -KILL "$UNSHARE_PID" 2>/dev/null || true
		wait "$UNSHARE_PID" 2>/dev/null || true
	fi
	if [[ ${KEEP_ROOT:-0} != 1 ]]; then
		rm -rf "$WORK/root" "$WORK/rpmroot" "$WORK/scratch"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$WORK" "$LOGS"

find_pkg() { # find_pkg GLOB: the one package in DIST_DIR matching GLOB
	local f
	f=$(compgen -G "$DIST_DIR/$1" | sort | tail -n 1) || true
	[[ -n $f ]] || {
		echo "package-test: no $1 in $DIST_DIR (run make package)" >&2
		exit 2
	}
	echo "$f"
}
DEB=$(find_pkg 'regent_*_amd64.deb')
RPM=$(find_pkg 'regent-*.x86_64.rpm')
VERSION=$(dpkg-deb -f "$DEB" Version)
UPGRADE_VERSION="$VERSION+test.upgrade"
log "testing regent $VERSION ($DEB, $RPM)"

# build_upgrade: a second package of the same tree with a higher version.
build_upgrade() {
	UP_DEB=$WORK/upgrade/regent_${UPGRADE_VERSION}_amd64.deb
	UP_RPM=$WORK/upgrade/regent-${UPGRADE_VERSION}-1.x86_64.rpm
	if [[ ! -f $UP_DEB || ! -f $UP_RPM ]]; then
		log "building the upgrade packages ($UPGRADE_VERSION)"
		rm -rf "$WORK/upgrade"
		REGENT_VERSION=$UPGRADE_VERSION REGENT_ARCHES=amd64 BUILD_DIR=$WORK/upgrade-build \
			DIST_DIR=$WORK/upgrade packaging/build.sh >"$LOGS/build-upgrade.log" 2>&1 || {
			cat "$LOGS/build-upgrade.log"
			exit 1
		}
	fi
}

# ---- 1. static --------------------------------------------------------------

unit_score() { # unit_score UNITFILE: the exposure level systemd-analyze gives
	systemd-analyze security --offline=yes "$1" 2>/dev/null |
		sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p'
}

static_tests() {
	log "static checks"
	if command -v shellcheck >/dev/null; then
		check "shellcheck maintainer scripts (POSIX sh)" shellcheck -s sh packaging/scripts/preinst \
			packaging/scripts/postinst packaging/scripts/prerm packaging/scripts/postrm packaging/mkman.sh
		check "shellcheck build and test scripts" shellcheck packaging/build.sh packaging/test/package-test.sh
	else
		fail "shellcheck is not installed"
	fi
	local line
	line=$(grep -v '^#' packaging/regent.sysusers)
	check "preinst creates the user of regent.sysusers" grep -qxF "sysusers_line='$line'" packaging/scripts/preinst

	local deb
	for deb in "$DIST_DIR"/regent_*.deb; do
		if lintian --allow-root --display-info --fail-on error,warning "$deb" >"$LOGS/lintian-$(basename "$deb").log" 2>&1; then
			pass "lintian $(basename "$deb"): no errors or warnings"
		else
			fail "lintian $(basename "$deb")" "$(cat "$LOGS/lintian-$(basename "$deb").log")"
		fi
	done

	check "deb: Depends is procps only (for /bin/kill)" test "$(dpkg-deb -f "$DEB" Depends)" = procps
	check "deb: only regent.hcl is a conffile" test "$(dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./conffiles)" = /etc/regent.d/regent.hcl
	local listing
	listing=$(dpkg-deb -c "$DEB")
	for f in ./usr/bin/regent ./usr/lib/systemd/system/regent.service ./usr/lib/sysusers.d/regent.conf \
		./etc/regent.d/regent.hcl ./usr/share/man/man1/regent.1.gz ./usr/share/doc/regent/copyright \
		./usr/share/doc/regent/changelog.Debian.gz; do
		check "deb contains $f" grep -q " $f\$" <<<"$listing"
	done
	check "deb: the packaged unit is the checked-in one" cmp <(dpkg-deb --fsys-tarfile "$DEB" | tar -xO ./usr/lib/systemd/system/regent.service) packaging/regent.service

	check "rpm -qpi names regent $VERSION" grep -q "^Version *: $VERSION\$" <(rpm -qpi "$RPM" 2>/dev/null)
	local files
	files=$(rpm -qpl "$RPM" 2>/dev/null)
	for f in /usr/bin/regent /usr/lib/systemd/system/regent.service /etc/regent.d /etc/regent.d/regent.hcl /var/lib/regent; do
		check "rpm -qpl lists $f" grep -qx "$f" <<<"$files"
	done
	check "rpm: only regent.hcl is config" test "$(rpm -qpc "$RPM" 2>/dev/null)" = /etc/regent.d/regent.hcl
	check "rpm: regent.hcl is %config(noreplace)" grep -q '^.*regent.hcl' <(rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$RPM" 2>/dev/null | grep '^cn ')
	check "rpm: /var/lib/regent is owned by regent" grep -qx 'regent regent /var/lib/regent' <(rpm -qp --qf '[%{FILEUSERNAME} %{FILEGROUPNAME} %{FILENAMES}\n]' "$RPM" 2>/dev/null)
	local scripts
	scripts=$(rpm -qp --scripts "$RPM" 2>/dev/null)
	for s in preinstall postinstall preuninstall postuninstall; do
		check "rpm --scripts has a $s scriptlet run by /bin/sh" grep -q "^$s scriptlet (using /bin/sh)" <<<"$scripts"
	done
	check "rpm: no dependencies beyond rpmlib" test -z "$(rpm -qp --requires "$RPM" 2>/dev/null | grep -v '^rpmlib(')"

	check "systemd-analyze verify packaging/regent.service" bash -c \
		"systemd-analyze verify --man=no packaging/regent.service 2>&1 | grep -v 'Command /usr/bin/regent is not executable' | { ! grep .; }"
	local score
	score=$(unit_score packaging/regent.service)
	echo "     systemd-analyze security --offline=yes packaging/regent.service: $score"
	check "unit exposure score $score <= $SCORE_MAX" awk -v s="$score" -v m="$SCORE_MAX" 'BEGIN { exit !(s != "" && s <= m) }'

	log "reproducibility: two builds of this tree (amd64) are byte-identical"
	local a=$WORK/repro-a b=$WORK/repro-b v=0.0.0~repro head
	local -x SOURCE_DATE_EPOCH REGENT_COMMIT
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)
	REGENT_COMMIT=$(git rev-parse HEAD)
	head=$REGENT_COMMIT
	rm -rf "$a" "$b"
	if REGENT_VERSION=$v REGENT_ARCHES=amd64 DIST_DIR=$a BUILD_DIR=$WORK/repro-build-a packaging/build.sh >"$LOGS/repro-a.log" 2>&1 &&
		REGENT_VERSION=$v REGENT_ARCHES=amd64 DIST_DIR=$b BUILD_DIR=$WORK/repro-build-b packaging/build.sh >"$LOGS/repro-b.log" 2>&1; then
		if [[ $(git rev-parse HEAD) != "$head" ]]; then
			# Go stamps the binary with the commit; in a shared checkout
			# someone committed between the two builds.
			echo "skip reproducibility: HEAD moved during the builds"
		else
			check "deb is reproducible" cmp "$a/regent_${v}_amd64.deb" "$b/regent_${v}_amd64.deb"
			check "rpm is reproducible" cmp "$a/regent-$v-1.x86_64.rpm" "$b/regent-$v-1.x86_64.rpm"
		fi
	else
		fail "reproducibility builds" "$(tail -n 20 "$LOGS/repro-a.log" "$LOGS/repro-b.log")"
	fi
}

# ---- rootfs -----------------------------------------------------------------

mirror() {
	if [[ -n ${MIRROR:-} ]]; then
		echo "$MIRROR"
		return
	fi
	local m
	m=$(awk '/^URIs:/ && $2 ~ /debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
	[[ -z $m ]] && m=$(awk '$1 == "deb" && $2 ~ /debian\/?$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
	echo "${m:-http://deb.debian.org/debian}"
}

# ensure_rootfs: a cached debootstrap of Debian 12 with systemd, as a tarball.
# procps is the deb's one dependency (the unit's ExecReload=/bin/kill); with
# it in the rootfs, apt installs the deb offline.
ensure_rootfs() {
	if [[ -s $ROOTFS_TAR ]]; then
		return
	fi
	local m new=$BUILD_DIR/rootfs.new
	m=$(mirror)
	log "debootstrap bookworm from $m (cached in $ROOTFS_TAR)"
	rm -rf "$new"
	debootstrap --variant=minbase --include="$ROOTFS_PACKAGES" bookworm "$new" "$m" >"$LOGS/debootstrap.log" 2>&1 || {
		tail -n 30 "$LOGS/debootstrap.log"
		exit 1
	}
	tar -C "$new" -cf "$ROOTFS_TAR.tmp" .
	mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
	rm -rf "$new"
}

# fresh_root DIR: unpack the cached rootfs into DIR, ready to boot: no
# gettys (the static /dev holds the host's terminals), a hostname.
fresh_root() {
	local dir=$1
	rm -rf "$dir"
	mkdir -p "$dir"
	tar -C "$dir" -xf "$ROOTFS_TAR"
	local u
	for u in getty.target getty@tty1.service serial-getty@ttyS0.service console-getty.service \
		systemd-logind.service e2scrub_reap.service; do
		ln -sf /dev/null "$dir/etc/systemd/system/$u"
	done
	echo regent-test >"$dir/etc/hostname"
}

# ---- 2. rpm -----------------------------------------------------------------

rpm_tests() {
	ensure_rootfs
	build_upgrade
	log "rpm: file layout in a scratch root (no scriptlets)"
	local s=$WORK/scratch
	rm -rf "$s"
	mkdir -p "$s"
	rpm --root "$s" --initdb
	check "rpm -i --noscripts into a scratch root" rpm --root "$s" -i --nodeps --noscripts "$RPM"
	for f in usr/bin/regent usr/lib/systemd/system/regent.service etc/regent.d/regent.hcl usr/lib/sysusers.d/regent.conf; do
		check "scratch root has /$f" test -f "$s/$f"
	done
	check "scratch root has /var/lib/regent" test -d "$s/var/lib/regent"
	check "rpm -qc in the scratch root" test "$(rpm --root "$s" -qc regent)" = /etc/regent.d/regent.hcl
	check "rpm -e --noscripts removes the files" bash -c "rpm --root '$s' -e --noscripts regent && test ! -e '$s/usr/bin/regent'"

	log "rpm: scriptlets in a Debian rootfs (systemd not running)"
	local r=$WORK/rpmroot
	fresh_root "$r"
	rpm --root "$r" --initdb
	check "rpm -i runs %pre and %post" rpm --root "$r" -i --nodeps "$RPM"
	check "rpm %pre created the regent system user" chroot "$r" getent passwd regent
	check "rpm: /var/lib/regent is regent's, mode 0750" test "$(chroot "$r" stat -c '%U:%G %a' /var/lib/regent)" = "regent:regent 750"
	check "rpm %post applied the preset (default: enabled)" test -L "$r/etc/systemd/system/multi-user.target.wants/regent.service"
	echo 'cluster = "edited"' >>"$r/etc/regent.d/regent.hcl"
	check "rpm -U to $UPGRADE_VERSION" rpm --root "$r" -U --nodeps "$UP_RPM"
	check "rpm -U kept the edited regent.hcl (noreplace)" grep -q 'cluster = "edited"' "$r/etc/regent.d/regent.hcl"
	check "rpm -U installed the new version" test "$(rpm --root "$r" -q --qf '%{VERSION}' regent)" = "$UPGRADE_VERSION"
	check "rpm -e runs %preun and %postun" rpm --root "$r" -e regent
	check "rpm -e disabled the unit" test ! -e "$r/etc/systemd/system/multi-user.target.wants/regent.service"
	check "rpm -e removed the binary" test ! -e "$r/usr/bin/regent"
	check "rpm -e kept the edited config as .rpmsave" test -f "$r/etc/regent.d/regent.hcl.rpmsave"
}

# ---- 3. systemd ---------------------------------------------------------------

ns() { nsenter -t "$SD_PID" -m -p -u --root --wd "$@"; }
prop() { ns systemctl show -p "$1" --value regent.service; }
unit_pids() { ns cat /sys/fs/cgroup/system.slice/regent.service/cgroup.procs 2>/dev/null; }
master_pid() { # the unit's process that is not the supervisor
	local main
	main=$(prop MainPID) || true
	unit_pids | grep -vx "$main" | head -n 1
}
is_active() { test "$(prop ActiveState)" = active; }
prop_is() { test "$(prop "$1")" = "$2"; }
prop_not() { test "$(prop "$1")" != "$2"; }

boot() {
	local root=$1
	log "booting systemd in $root"
	# pivot_root, not chroot: systemd's sandboxing (PrivateUsers=, mount
	# namespaces) refuses to run inside a chroot.
	unshare --pid --fork --mount --uts --propagation private sh -c "
		mount --rbind '$root' '$root' && cd '$root' && mkdir -p .oldroot && pivot_root . .oldroot &&
		exec /bin/sh -c 'mount -t proc proc /proc && umount -l /.oldroot && rmdir /.oldroot &&
			mount -t sysfs sysfs /sys && mount -t tmpfs tmpfs /run && mount -t cgroup2 cgroup2 /sys/fs/cgroup &&
			exec /lib/systemd/systemd --system --log-target=console'" \
		</dev/null >"$LOGS/systemd-console.log" 2>&1 &
	UNSHARE_PID=$!
	local deadline=$((SECONDS + 20))
	until [[ -n $SD_PID ]]; do
		SD_PID=$(pgrep -P "$UNSHARE_PID" -x systemd || true)
		if ((SECONDS >= deadline)) || ! kill -0 "$UNSHARE_PID" 2>/dev/null; then
			fail "systemd did not start" "$(tail -n 30 "$LOGS/systemd-console.log")"
			finish
			exit 1
		fi
		[[ -n $SD_PID ]] || sleep 0.1
	done
	echo "     systemd is PID $SD_PID (unshare $UNSHARE_PID)"
	wait_for "systemd reached running or degraded" 60 bash -c \
		"s=\$(nsenter -t $SD_PID -m -p -u --root --wd systemctl is-system-running 2>/dev/null); [[ \$s == running || \$s == degraded ]]" || {
		finish
		exit 1
	}
}

systemd_tests() {
	ensure_rootfs
	build_upgrade
	local root=$WORK/root
	fresh_root "$root"
	cp "$DEB" "$root/root/regent.deb"
	cp "$UP_DEB" "$root/root/regent-upgrade.deb"
	boot "$root"

	log "install"
	check "apt-get install ./regent.deb (offline: its dependency is in the rootfs)" ns env DEBIAN_FRONTEND=noninteractive apt-get install -y /root/regent.deb
	check "regent user: system, nologin, home /var/lib/regent" bash -c \
		"nsenter -t $SD_PID -m -p -u --root --wd getent passwd regent | grep -q ':/var/lib/regent:/usr/sbin/nologin\$'"
	check "/var/lib/regent is regent's, mode 0750" test "$(ns stat -c '%U:%G %a' /var/lib/regent)" = "regent:regent 750"
	check "systemd-analyze verify regent.service (installed)" ns systemd-analyze verify --man=no regent.service
	local score
	score=$(ns systemd-analyze security regent.service 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' || true)
	check "loaded unit exposure score $score <= $SCORE_MAX" awk -v s="$score" -v m="$SCORE_MAX" 'BEGIN { exit !(s != "" && s <= m) }'
	check "regent config validate accepts the default config" ns regent config validate -config /etc/regent.d
	check "unit is enabled" test "$(ns systemctl is-enabled regent.service)" = enabled
	wait_for "unit is active" 60 is_active || {
		ns systemctl status --no-pager -n 30 regent.service >"$LOGS/status-install.txt" 2>&1 || true
		cat "$LOGS/status-install.txt"
	}
	local main
	main=$(prop MainPID) || true
	check "the service runs sandboxed (no capabilities, no_new_privs, seccomp)" bash -c \
		"s=\$(nsenter -t $SD_PID -m -p -u --root --wd cat /proc/$main/status) &&
		grep -q '^CapEff:[[:space:]]*0000000000000000' <<<\"\$s\" && grep -q '^NoNewPrivs:[[:space:]]*1' <<<\"\$s\" && grep -q '^Seccomp:[[:space:]]*2' <<<\"\$s\""
	wait_for "regent status answers" 30 ns regent status || true
	check "the supervisor reports a STATUS= line" test -n "$(prop StatusText)"
	# The supervisor pings every WATCHDOG_USEC/2 (30s): the timestamp of
	# the last ping must move.
	local wd
	wd=$(prop WatchdogTimestampMonotonic) || true
	wait_for "the supervisor feeds systemd's watchdog" 45 prop_not WatchdogTimestampMonotonic "$wd" || true

	log "systemctl stop: graceful, exit 0, nothing left"
	check "systemctl stop" ns systemctl stop regent.service
	check "stopped with result success" prop_is Result success
	check "the supervisor exited 0" prop_is ExecMainStatus 0
	check "no process of the unit is left" test -z "$(unit_pids || true)"
	check "systemctl start" ns systemctl start regent.service
	wait_for "unit is active" 60 is_active || true

	log "kill -9 of the master: the supervisor restarts it"
	main=$(prop MainPID) || true
	local master
	master=$(master_pid || true)
	if [[ -z $master ]]; then
		fail "no master process under the supervisor (PID $main)" "$(unit_pids)"
	else
		ns kill -KILL "$master" || true
		wait_for "a new master runs under the same supervisor" 60 bash -c \
			"m=\$(nsenter -t $SD_PID -m -p -u --root --wd cat /sys/fs/cgroup/system.slice/regent.service/cgroup.procs | grep -vx $main | head -n 1);
			[[ -n \$m && \$m != $master ]]" || true
		check "supervisor PID unchanged ($main)" test "$(prop MainPID)" = "$main"
		check "systemd did not restart the unit" test "$(prop NRestarts)" = 0
	fi

	log "kill -9 of the supervisor: systemd restarts the unit"
	ns kill -KILL "$main" || true
	wait_for "systemd restarted the unit (NRestarts=1)" 60 prop_is NRestarts 1 || true
	wait_for "unit is active again" 60 is_active || true
	check "with a new supervisor" prop_not MainPID "$main"
	check "no process of the old supervisor is left" bash -c "! nsenter -t $SD_PID -m -p -u --root --wd test -d /proc/$main"

	log "reload with a broken config keeps the running one"
	main=$(prop MainPID) || true
	local since
	since=$(ns date '+%Y-%m-%d %H:%M:%S') || true
	printf 'no_such_option = true\n' | ns tee /etc/regent.d/zz-broken.hcl >/dev/null  || true
	check "regent config validate exits 78 on the broken config" bash -c \
		"nsenter -t $SD_PID -m -p -u --root --wd regent config validate -config /etc/regent.d; test \$? = 78"
	check "systemctl reload" ns systemctl reload regent.service
	wait_for "the journal shows the reload's diagnostic" 30 bash -c \
		"nsenter -t $SD_PID -m -p -u --root --wd journalctl -u regent.service --since '$since' --no-pager | grep -q zz-broken.hcl" || true
	check "still active after the bad reload" is_active
	check "same supervisor after the bad reload" test "$(prop MainPID)" = "$main"

	log "restart with a broken config: fails with 78, no restart loop"
	since=$(ns date '+%Y-%m-%d %H:%M:%S') || true
	check "systemctl restart fails" bash -c "! nsenter -t $SD_PID -m -p -u --root --wd systemctl restart regent.service"
	wait_for "unit failed" 30 prop_is ActiveState failed || true
	check "main process exited with status 78" test "$(prop ExecMainStatus)" = 78
	check "unit is failed, not waiting to auto-restart" test "$(prop SubState)" = failed
	local nr
	nr=$(prop NRestarts) || true
	check "NRestarts did not grow ($nr)" test "$nr" = 0
	check "systemctl status shows the diagnostic" bash -c \
		"nsenter -t $SD_PID -m -p -u --root --wd systemctl status --no-pager -n 50 regent.service | grep -q zz-broken.hcl"
	ns rm -f /etc/regent.d/zz-broken.hcl
	ns systemctl reset-failed regent.service || true
	check "starts again once the config is fixed" ns systemctl start regent.service
	wait_for "unit is active" 60 is_active || true

	log "upgrade to $UPGRADE_VERSION restarts it and keeps the data"
	ns sh -c 'echo marker > /var/lib/regent/package-test-marker' || true
	local before_data
	before_data=$(ns find /var/lib/regent -mindepth 1 -maxdepth 2 -printf '%P\n' | sort) || true
	main=$(prop MainPID) || true
	check "apt-get install the upgrade" ns env DEBIAN_FRONTEND=noninteractive apt-get install -y /root/regent-upgrade.deb
	# shellcheck disable=SC2016 # a dpkg-query format, not a shell expansion
	check "dpkg has $UPGRADE_VERSION" test "$(ns dpkg-query -W -f '${Version}' regent)" = "$UPGRADE_VERSION"
	wait_for "unit is active after the upgrade" 60 is_active || true
	check "the upgrade restarted the service (new supervisor)" test "$(prop MainPID)" != "$main"
	# Badger compacts on open, so its file names change: check what must
	# survive, the marker and the replica (its MANIFEST).
	check "the data is still there (marker)" bash -c \
		"test \"\$(nsenter -t $SD_PID -m -p -u --root --wd cat /var/lib/regent/package-test-marker)\" = marker"
	if grep -qx replicated_log <<<"$before_data"; then
		check "the replica is still there (replicated_log/MANIFEST)" ns test -f /var/lib/regent/replicated_log/MANIFEST
	else
		fail "the master wrote no replicated_log before the upgrade" "$before_data"
	fi
	check "regent version names $UPGRADE_VERSION" bash -c \
		"nsenter -t $SD_PID -m -p -u --root --wd regent version | grep -qF '$UPGRADE_VERSION'"

	log "remove keeps the config and the data"
	check "apt-get remove regent" ns env DEBIAN_FRONTEND=noninteractive apt-get remove -y regent
	check "unit is stopped" bash -c "! nsenter -t $SD_PID -m -p -u --root --wd systemctl is-active --quiet regent.service"
	check "no process of the unit is left" test -z "$(unit_pids || true)"
	check "/etc/regent.d/regent.hcl kept" ns test -f /etc/regent.d/regent.hcl
	check "/var/lib/regent kept" ns test -f /var/lib/regent/package-test-marker
	# shellcheck disable=SC2016 # a dpkg-query format, not a shell expansion
	check "dpkg state is config-files" test "$(ns dpkg-query -W -f '${db:Status-Status}' regent)" = config-files

	log "purge removes them"
	check "apt-get purge regent" ns env DEBIAN_FRONTEND=noninteractive apt-get purge -y regent
	check "/etc/regent.d removed" ns test ! -e /etc/regent.d
	check "/var/lib/regent removed" ns test ! -e /var/lib/regent
	check "the regent user is kept (policy: never reuse a uid)" ns getent passwd regent

	log "tarball install: regent service install/status/uninstall (kardianos)"
	dpkg-deb --fsys-tarfile "$DEB" | tar -xO ./usr/bin/regent >"$root/usr/local/bin/regent"
	chmod 0755 "$root/usr/local/bin/regent"
	mkdir -p "$root/etc/regent.d"
	cp packaging/regent.hcl "$root/etc/regent.d/regent.hcl"
	check "regent service status: not-installed" bash -c \
		"test \"\$(nsenter -t $SD_PID -m -p -u --root --wd /usr/local/bin/regent service status)\" = not-installed"
	check "regent service install -start" ns /usr/local/bin/regent service install -start
	check "the written unit is print-unit's for this binary" bash -c \
		"cmp <(nsenter -t $SD_PID -m -p -u --root --wd cat /etc/systemd/system/regent.service) \
			<(nsenter -t $SD_PID -m -p -u --root --wd /usr/local/bin/regent service print-unit -binary /usr/local/bin/regent)"
	check "the written unit is enabled" test "$(ns systemctl is-enabled regent.service)" = enabled
	wait_for "regent service status: running" 60 bash -c \
		"test \"\$(nsenter -t $SD_PID -m -p -u --root --wd /usr/local/bin/regent service status)\" = running" || true
	check "regent service install refuses a second install" bash -c \
		"! nsenter -t $SD_PID -m -p -u --root --wd /usr/local/bin/regent service install"
	check "regent service uninstall" ns /usr/local/bin/regent service uninstall
	check "the unit is gone and nothing runs" bash -c \
		"test ! -e '$root/etc/systemd/system/regent.service' && test -z \"\$(nsenter -t $SD_PID -m -p -u --root --wd cat /sys/fs/cgroup/system.slice/regent.service/cgroup.procs 2>/dev/null)\""

	ns journalctl --no-pager -u regent.service >"$LOGS/journal-regent.txt" 2>&1 || true
	echo "     journal of regent.service: $LOGS/journal-regent.txt"
}

for stage in $STAGES; do
	case $stage in
	static) static_tests ;;
	rpm) rpm_tests ;;
	systemd) systemd_tests ;;
	*)
		echo "package-test: unknown stage $stage" >&2
		exit 2
		;;
	esac
done
finish
