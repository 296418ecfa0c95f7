# homid in the guest: the daemon drives QEMU's NVMe function through uio (or vfio with
# -c vfio), two homic-verify processes do verified I/O at the same time on queues it
# grants them, a client killed with SIGKILL has its queues reclaimed, and SIGTERM stops
# the daemon cleanly. Needs in the initramfs (static): homid, homic-verify, aisio:
#   TARGETS="aisio homid homic-verify" testbed/build-static
#   testbed/mkinitrd --add build-static/src/homi/homid --add build-static/tests/homi/homic-verify
#   testbed/run-guest -c basic -s homid        # or -c vfio
fail() { echo "homid suite: FAIL: $*"; [ -n "${hpid:-}" ] && kill -TERM "$hpid" 2>/dev/null; exit 1; }

. "$(dirname "$0")/lib.sh"
need homid homic-verify aisio
find_nvme
bind_user "$bdf" vfio

sock=/run/homid/homid.sock
cat > /tmp/homid.toml <<EOF
[daemon]
socket = "$sock"
socket_mode = "0600"
log_level = "info"

[limits]
max_queues_per_client = 4
max_queues_total = 8

[[controller]]
name = "qemu"
type = "pci"
address = "$bdf"
io_queues = 8

[[allow]]
name = "root"
uids = [0]
admin = true
dataset_roots = ["/"]
EOF
homid --config /tmp/homid.toml --check || fail "homid --check"
start_homid $sock || fail "homid exited"

# Two clients at once, each on its own LBA range, two queues each, two rounds.
homic-verify --socket $sock --controller qemu --slot 0 --queues 2 --ios 128 --rounds 2 & p0=$!
homic-verify --socket $sock --controller qemu --slot 1 --queues 2 --ios 128 --rounds 2 & p1=$!
wait $p0 || fail "client 0"
wait $p1 || fail "client 1"
aisio homi status --socket $sock || fail "aisio homi status"

# A client holding every queue of its budget is killed: the queues come back.
homic-verify --socket $sock --controller qemu --slot 2 --queues 4 --hold > /tmp/hold.out & hold=$!
i=0
until grep -q READY /tmp/hold.out 2>/dev/null; do
  i=$((i + 1))
  [ $i -gt 150 ] && fail "holding client never got its queues"
  sleep 0.2
done
aisio homi queues --socket $sock
kill -KILL $hold
wait $hold 2>/dev/null
# Exactly the four queues of the killed client were reclaimed (the other clients
# released theirs); a client that gets 4 queues afterwards does not prove it alone, 4 of
# the 8 were free anyway. homid notices the hang-up on its own thread: poll, bounded.
i=0
while :; do
  status=$(aisio homi status --socket $sock --json) || fail "aisio homi status --json"
  reclaimed=$(echo "$status" | sed -n 's/.*"reclaimed_queues": *\([0-9]*\).*/\1/p')
  [ "$reclaimed" = 4 ] && break
  i=$((i + 1))
  [ $i -gt 50 ] && fail "reclaimed_queues is '${reclaimed}' after SIGKILL of a client holding 4 (want 4)"
  sleep 0.2
done
homic-verify --socket $sock --controller qemu --slot 3 --queues 4 --ios 32 || fail "queues not usable after SIGKILL"

kill -TERM $hpid
wait $hpid || fail "homid exited with status $?"
hpid=
[ -S $sock ] && fail "homid left its socket behind"
echo "homid suite: OK ($driver, $bdf)"
exit 0
