# tcp: our NVMe/TCP initiator against the kernel's target (nvmet, nvmet-tcp) in the guest,
# cross-checked with the kernel's own initiator (nvme-tcp).
#
#   sh tcp.sh [DEVICE]     default /dev/nvme0n1 (QEMU's namespace under the kernel nvme
#                          driver, formatted XFS on the host: the xfs configuration)
#
# 1. mount the XFS, `aisio fil gen` a small data set, unmount
# 2. configfs: subsystem NQN with DEVICE as namespace 1, port 1 on 127.0.0.1:4420 (TCP)
# 3. aisio identify tcp://127.0.0.1/NQN
# 4. aisio fil run --target tcp://... --extents xfs: every file read over NVMe/TCP, extents
#    by the XFS decoder reading through our initiator, and verified
#    ... and again with the port taken down and brought back mid-run: it reconnects
# 5. aisio write (ours) -> the kernel initiator reads the same bytes (connect through
#    /dev/nvme-fabrics), and the kernel initiator writes -> aisio read --verify (ours)
#    (raw LBAs: after the fil run, the file system is not used again)
# 6. aisio perf run tcp://... a short 4 KiB randread at QD 32
set -e
dev=${1:-/dev/nvme0n1}
nqn=nqn.2026-12.io.aisio:testbed
url=tcp://127.0.0.1/$nqn
cfs=/sys/kernel/config/nvmet
fail() { echo "tcp suite: FAIL ($*)"; exit 1; }
. "$(dirname "$0")/lib.sh"
[ -b "$dev" ] || fail "$dev is not a block device"

mnt=/mnt/tcp
mkdir -p $mnt
mount -t xfs -o noatime "$dev" $mnt || fail "no XFS on $dev (use the xfs configuration)"
rm -rf $mnt/data $mnt/slow
aisio fil gen $mnt/data --count 40 --mix --size lognormal:128K:1.0:2M --seed 1 --progress off
cp $mnt/data/manifest.json /tmp/fil-manifest.json
# A second set for the fault run, read at QD 1 in 4 KiB pieces so that the run lasts
# several seconds (the port goes down 1 s in).
aisio fil gen $mnt/slow --count 150 --size fixed:256K --seed 2 --progress off
cp $mnt/slow/manifest.json /tmp/fil-manifest-slow.json
sync
umount $mnt

nvmet_export "$dev" $nqn

aisio identify $url
aisio identify --json $url > /tmp/id.json
grep -q '"transport": "tcp"' /tmp/id.json || fail "identify --json does not say tcp"
grep -q '"nsid": 1' /tmp/id.json || fail "identify shows no namespace 1"

aisio fil run /data --target $url --extents xfs --manifest /tmp/fil-manifest.json --paths unvme --threads 1 \
  --qd 16 --io-size 128K --progress off -o /tmp/fil-tcp.json || fail "aisio fil run over NVMe/TCP"
echo "tcp: aisio fil run --target $url: every file verified"

# Faults: the port is taken down mid-run (the kernel target drops the association and
# refuses connections), and brought back; the run reconnects and still verifies.
created() { dmesg | grep -ciE 'controller [0-9]+ for subsystem' || true; }
before=$(created)
aisio fil run /slow --target "$url?ctrl_loss_tmo=30" --extents xfs --manifest /tmp/fil-manifest-slow.json \
  --paths unvme --threads 1 --qd 1 --io-size 4K --progress off -o /tmp/fil-tcp-fault.json > /tmp/fil-fault.log 2>&1 &
run=$!
sleep 1
rm $cfs/ports/1/subsystems/$nqn
echo "tcp: port 1 down"
sleep 2
ln -s $cfs/subsystems/$nqn $cfs/ports/1/subsystems/$nqn
echo "tcp: port 1 up"
wait $run || { cat /tmp/fil-fault.log; fail "aisio fil run did not survive the port going down and up"; }
after=$(created)
echo "tcp: controllers created by the target: $before before the fault run, $after after"
[ "$after" -ge $((before + 2)) ] || { cat /tmp/fil-fault.log; fail "no re-association seen (did the run end before the fault?)"; }
echo "tcp: port down and up mid-run: reconnected, every file verified"

# Our initiator writes 1 MiB at LBA 4096; the kernel's initiator reads it.
dd if=/dev/urandom of=/tmp/ours bs=65536 count=16 2>/dev/null
aisio write $url --slba 4096 --file /tmp/ours --verify
kernel_connect $nqn
dd if=$kdev of=/tmp/kernel-read bs=512 skip=4096 count=2048 2>/dev/null
cmp /tmp/ours /tmp/kernel-read || fail "bytes written by aisio differ when read by the kernel initiator"
echo "tcp: aisio write -> kernel initiator read: 1 MiB identical"

# The kernel's initiator writes 1 MiB at LBA 20480; our initiator reads and compares.
dd if=/dev/urandom of=/tmp/theirs bs=65536 count=16 2>/dev/null
dd if=/tmp/theirs of=$kdev bs=65536 seek=160 conv=fsync 2>/dev/null
aisio read $url --slba 20480 --nlb 2048 --file /tmp/theirs --verify
echo "tcp: kernel initiator write -> aisio read: 1 MiB identical"

for c in /sys/class/nvme/nvme*; do
  [ "$(cat $c/transport 2>/dev/null)" = tcp ] && echo 1 > $c/delete_controller
done

aisio perf run $url --rw randread --bs 4k --qd 32 --runtime 2
echo "tcp suite: OK (identify, fil run over NVMe/TCP verified, again across a port down/up, aisio write -> kernel read, kernel write -> aisio read, perf)"
exit 0
