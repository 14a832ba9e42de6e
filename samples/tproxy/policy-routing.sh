#!/bin/sh
# Policy routing and sysctls for transparent proxying (IPv4 and IPv6) on the proxy host.
#   policy-routing.sh up     add (idempotent: running it twice changes nothing)
#   policy-routing.sh down   remove
# MARK must be the mark set by the firewall rules (nftables.conf / iptables.rules), TABLE a
# routing table number used for nothing else.
# Run by compat-tests/tproxy_samples.rs exactly as it is.
set -eu
MARK=${MARK:-1}
TABLE=${TABLE:-100}

del() {
    # remove every copy of the rule, and the local route
    while ip -"$1" rule del fwmark "$MARK" lookup "$TABLE" 2>/dev/null; do :; done
    ip -"$1" route flush table "$TABLE" 2>/dev/null || true
}

case "${1:-up}" in
up)
    del 4
    del 6
    # marked packets (see the firewall rules) are looked up in TABLE ...
    ip -4 rule add fwmark "$MARK" lookup "$TABLE"
    ip -6 rule add fwmark "$MARK" lookup "$TABLE"
    # ... where every destination is local: they go to the proxy's sockets
    ip -4 route add local 0.0.0.0/0 dev lo table "$TABLE"
    ip -6 route add local ::/0 dev lo table "$TABLE"
    # the proxy routes between clients and servers (interception, the servers' gateway).
    # Note: IPv6 forwarding makes Linux ignore router advertisements unless accept_ra=2.
    sysctl -qw net.ipv4.ip_forward=1
    sysctl -qw net.ipv6.conf.all.forwarding=1
    # not needed for TPROXY (and it would hide a missing `transparent`): keep it off
    sysctl -qw net.ipv4.ip_nonlocal_bind=0
    ;;
down)
    del 4
    del 6
    ;;
*)
    echo "usage: $0 [up|down]" >&2
    exit 2
    ;;
esac
