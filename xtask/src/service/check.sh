#!/bin/bash
# Runs inside the throwaway container `cargo xtask package --check` boots
# (see mod.rs): installs the package, then starts, restarts, reloads,
# upgrades, stops and removes portconform.service the way an operator
# would, checking after each step.
# Its verdict goes to /result/status (PASS, or FAIL: why), the trace to
# /result/log. Traffic stays in the container's own network namespace, on
# TEST-NET-1.
exec > /result/log 2>&1
set -x
fail() {
	echo "FAIL: $*" > /result/status
	journalctl -u portconform --no-pager | tail -40
	systemctl poweroff
	exit 1
}
# Waits (at most 60 s) for the unit's journal to show $1 $2 times (default 1).
journal_has() {
	for _ in $(seq 1 120); do
		[ "$(journalctl -u portconform --no-pager | grep -c "$1")" -ge "${2:-1}" ] && return 0
		sleep 0.5
	done
	fail "no '$1' in portconform's journal"
}
unexpected() { grep -c "\"kind\":\"unexpected\".*\"dport\":$1," /var/log/portconform/events.jsonl; }
connect() { ip netns exec peer timeout 5 bash -c "echo > /dev/tcp/192.0.2.1/$1"; }
xdp_id() { ip -d link show pc0 | grep -o 'prog/xdp id [0-9]*'; }

dpkg -i /deb/portconform.deb || fail "dpkg -i"
ip link add pc0 type veth peer pc1 && ip netns add peer && ip link set pc1 netns peer || fail "veth"
ip addr add 192.0.2.1/24 dev pc0 && ip link set pc0 up && ip link set lo up
ip -n peer addr add 192.0.2.2/24 dev pc1 && ip -n peer link set pc1 up
cat > /etc/portconform/portconform.toml <<EOC
iface = ["pc0"]
profile = "thoughtspot"
inventory = "/etc/portconform/inventory.toml"
events = "/var/log/portconform/events.jsonl"
interval = 3600
EOC
echo 'nodes = ["192.0.2.0/24"]' > /etc/portconform/inventory.toml

systemctl start portconform || fail "systemctl start"
journal_has "attached to pc0"
[ -e /sys/fs/bpf/portconform/default/layout ] || fail "no pins after the start"
connect 6666
sleep 2
[ "$(unexpected 6666)" = 1 ] || fail "6666 not reported once"
[ "$(stat -c %a /var/log/portconform/events.jsonl)" = 640 ] || fail "events file not 0640"
before=$(xdp_id)

# A restart keeps the pins: the next daemon adopts them, replaces the
# programs and does not report the known flow again.
systemctl restart portconform || fail "systemctl restart"
journal_has "adopted the pinned monitor"
journal_has "attached to pc0" 2
connect 6666
connect 6667
sleep 3
[ "$(unexpected 6666)" = 1 ] || fail "6666 reported again after the restart"
[ "$(unexpected 6667)" = 1 ] || fail "6667 not reported after the restart"
[ "$(xdp_id)" != "$before" ] || fail "the restart did not replace the XDP program"

# A reload re-reads the config and keeps everything attached.
systemctl reload portconform || fail "systemctl reload"
journal_has "policy reloaded"
[ -n "$(xdp_id)" ] || fail "a reload detached"

# A package upgrade (here the same package again: dpkg runs the same
# maintainer scripts) restarts the monitor onto the installed binary, which
# adopts the pins like a restart.
before=$(xdp_id)
dpkg -i /deb/portconform.deb || fail "dpkg -i over the installed package"
journal_has "adopted the pinned monitor" 2
journal_has "attached to pc0" 3
[ "$(xdp_id)" != "$before" ] || fail "the upgrade did not replace the XDP program"
connect 6666
sleep 2
[ "$(unexpected 6666)" = 1 ] || fail "6666 reported again after the upgrade"

# A stop detaches and removes the pins.
systemctl stop portconform || fail "systemctl stop"
[ -e /sys/fs/bpf/portconform/default ] && fail "the stop left the pins"
[ -n "$(xdp_id)" ] && fail "the stop left XDP attached"

# Removing the package stops a running monitor, which detaches.
systemctl start portconform || fail "systemctl start after the stop"
journal_has "attached to pc0" 4
dpkg --purge portconform || fail "dpkg --purge"
[ -e /sys/fs/bpf/portconform/default ] && fail "the removal left the pins"
[ -n "$(xdp_id)" ] && fail "the removal left XDP attached"
journalctl -u portconform --no-pager | grep -v "did not resolve" | tail -20
echo PASS > /result/status
systemctl poweroff
