#!/bin/sh
# mkman.sh BINARY VERSION DATE > regent.1
#
# Writes the regent(1) man page from the binary's own help: the command list
# of "regent -h", then, for every command and subcommand it lists (walked
# recursively), the text of "regent <command> -h". Only FILES, EXIT STATUS
# and SEE ALSO are fixed text here. DATE is YYYY-MM-DD (build.sh takes it from
# SOURCE_DATE_EPOCH, so the page is reproducible).
set -eu

bin=$1
version=$2
date=$3

# roff-escape stdin for a no-fill block: backslashes, minus signs, and lines
# that would start with a control character.
esc() {
	sed -e 's/\\/\\e/g' -e 's/-/\\-/g' -e "s/^\([.']\)/\\\\\&\1/"
}

# subcommands HELP_TEXT: the names listed under "Commands:".
subcommands() {
	printf '%s\n' "$1" | awk '/^Commands:/ {on = 1; next} on && NF == 0 {exit} on {print $1}'
}

# walk PATH...: a section per leaf command, in the order the help lists them.
walk() {
	help=$("$bin" "$@" -h 2>&1) || {
		echo "mkman: regent $* -h failed" >&2
		exit 1
	}
	subs=$(subcommands "$help")
	if [ -z "$subs" ]; then
		printf '.SS "regent %s"\n.nf\n' "$*"
		printf '%s\n' "$help" | esc
		printf '.fi\n'
		return
	fi
	for s in $subs; do
		walk "$@" "$s"
	done
}

root=$("$bin" -h)
summary=$(printf '%s\n' "$root" | head -n 1 | sed -e 's/^regent is an\{0,1\} //' -e 's/\.$//')

cat <<ROFF
.TH REGENT 1 "$date" "regent $version" "User Commands"
.SH NAME
regent \\- $summary
.SH SYNOPSIS
.B regent
.I command
.RI [ flags ]
.SH DESCRIPTION
.nf
ROFF
printf '%s\n' "$root" | esc
printf '.fi\n.SH COMMANDS\n'
for s in $(subcommands "$root"); do
	walk "$s"
done

cat <<'ROFF'
.SH FILES
.TP
.I /etc/regent.d/*.hcl
Configuration, read in lexical order.
.I regent.hcl
is the package's default (one master, loopback only) and is kept on upgrades.
.TP
.I /var/lib/regent
The work_dir: the replica of the replicated log (replicated_log/).
Removed only when the package is purged.
.TP
.I /usr/lib/systemd/system/regent.service
The systemd unit; change it with
.B systemctl edit regent
(drop-ins), not in place.
.SH EXIT STATUS
.TP
.B 0
Stopped on request.
.TP
.B 78
Permanent failure (EX_CONFIG): bad configuration, identity or cluster
mismatch, corrupt data. Neither the supervisor nor systemd restarts it.
.TP
.B other
Transient failure: the supervisor restarts the master with backoff, and
systemd restarts a supervisor that gave up.
.SH SEE ALSO
.BR systemctl (1),
.BR journalctl (1),
.BR systemd.exec (5)
ROFF
