# ublk: homid owns QEMU's NVMe function (uio, or vfio with -c ublkvfio) and exports
# namespace 1 to the kernel as /dev/ublkb0 on queue pairs of its own. In the guest:
#  1. `homid --check` probes ublk_drv; XFS made and mounted on /dev/ublkb0; `aisio fil gen`
#     writes a data set through the kernel
#  2. at the same time: `aisio fil run --via homid` reads and verifies every file on its
#     own queue pairs (extents from homid's resolve_extents on the ublk device), and a
#     verifying fio job writes and reads another file of the same file system
#  3. homid is SIGKILLed during a second fio job and restarted: USER_RECOVERY takes the
#     device over and fio ends without a verify error
#  4. xfs_repair -n after umount; raw LBAs outside the file system: written by a direct
#     client -> read through /dev/ublkb0, and the reverse (caches dropped)
#  5. SIGTERM: homid drains and deletes /dev/ublkb0
# Needs in the initramfs: homid, homic-verify, aisio (static) and mkfs.xfs, xfs_repair,
# fio (mkinitrd --add-dynamic); testbed/run-all builds it so.
fail() {
  echo "ublk suite: FAIL: $*"
  [ -f /tmp/homid.log ] && tail -n 30 /tmp/homid.log
  [ -n "${hpid:-}" ] && kill -TERM "$hpid" 2>/dev/null
  exit 1
}
step() { echo "ublk suite: $*"; }

. "$(dirname "$0")/lib.sh"
need homid homic-verify aisio mkfs.xfs xfs_repair fio
find_nvme
bind_user "$bdf" ublkvfio

sock=/run/homid/homid.sock
mnt=/mnt/u
cat > /tmp/homid.toml <<EOF2
[daemon]
socket = "$sock"
socket_mode = "0600"
log_level = "info"

[[controller]]
name = "qemu"
type = "pci"
address = "$bdf"
io_queues = 8

[[controller.namespace]]
nsid = 1
ublk = true
ublk_id = 0
ublk_queues = 1
ublk_depth = 32
ublk_max_io_kib = 256

[[allow]]
name = "root"
uids = [0]
admin = true
dataset_roots = ["$mnt"]
EOF2
homid --config /tmp/homid.toml --check || fail "homid --check"

start_ublk() { start_homid $sock /tmp/homid.log /dev/ublkb0 || fail "homid exited"; }
start_ublk
grep -E "ublk" /tmp/homid.log
# A taken device id is refused before anything is touched.
homid --config /tmp/homid.toml --check > /tmp/check2.out 2>&1 && fail "--check accepted a taken ublk id"
grep -q "ublk device id 0 (namespace 1) is taken" /tmp/check2.out || { cat /tmp/check2.out; fail "taken id message"; }

step "mkfs.xfs on /dev/ublkb0 (600 MiB of the 1 GiB namespace; the rest stays raw)"
mkfs.xfs -q -f -d size=600m /dev/ublkb0 || fail "mkfs.xfs /dev/ublkb0"
mkdir -p $mnt
mount -t xfs -o noatime /dev/ublkb0 $mnt || fail "mount /dev/ublkb0"
aisio fil gen $mnt/data --count 40 --mix --size lognormal:128K:1.0:1M --seed 7 --progress off || fail "fil gen"
sync
aisio extents $mnt/data/manifest.json || true

step "concurrently: fil run --via homid (own queue pairs) and a verifying fio job (kernel path)"
fiojob="--filename=$mnt/fio.dat --eta=never --bs=4k --ioengine=libaio --iodepth=8 --direct=1 --rw=randwrite --verify=crc32c
  --verify_fatal=1 --do_verify=1"
fio --name=concurrent $fiojob --size=32m --randseed=3 --output=/tmp/fio1.out & iopid=$!
# Three rounds of the client (each reads and verifies all 40 files) while fio runs.
( for r in 1 2 3; do
    aisio fil run $mnt/data --paths unvme --via homid --homid-socket $sock --homid-controller qemu --extents homid \
      --qd 16 --io-size 64K --progress off -o /tmp/fil-homid.json || exit 1
    kill -0 $iopid 2>/dev/null && echo "ublk suite: fil round $r ended while fio was running"
  done ) > /tmp/fil.out 2>&1 & fpid=$!
wait $fpid; frc=$?
wait $iopid; iorc=$?
cat /tmp/fil.out
grep -E "err=|verify" /tmp/fio1.out | head -5
[ $frc = 0 ] || fail "fil run --via homid (status $frc)"
[ $iorc = 0 ] || { cat /tmp/fio1.out; fail "fio (status $iorc)"; }
aisio homi status --socket $sock || fail "aisio homi status"

step "SIGKILL homid during fio, restart: user recovery"
fio --name=killed $fiojob --size=64m --randseed=4 --output=/tmp/fio2.out & iopid=$!
sleep 2
kill -0 $iopid 2>/dev/null || step "note: fio ended before the kill (machine fast)"
kill -KILL $hpid
wait $hpid 2>/dev/null
step "homid killed; /dev/ublkb0 state: $(ls /dev/ublkb0 2>&1)"
rm -f $sock
start_ublk
grep -q "recovered from the previous homid" /tmp/homid.log || fail "homid did not recover /dev/ublkb0"
wait $iopid; iorc=$?
grep -E "err=|verify" /tmp/fio2.out | head -5
[ $iorc = 0 ] || { cat /tmp/fio2.out; fail "fio across the homid restart (status $iorc)"; }

umount $mnt || fail "umount"
xfs_repair -n /dev/ublkb0 > /tmp/repair.out 2>&1 || { cat /tmp/repair.out; fail "xfs_repair -n found problems"; }
step "xfs_repair -n: clean"

step "raw LBAs outside the file system, both ways (slots 3000/3001: 256 KiB at 750 MiB)"
homic-verify --socket $sock --controller qemu --slot 3000 --ios 64 --nlb 8 || fail "direct client write"
homic-verify --socket $sock --controller qemu --slot 3000 --ios 64 --nlb 8 --dump /tmp/direct.bin || fail "dump"
echo 3 > /proc/sys/vm/drop_caches
dd if=/dev/ublkb0 of=/tmp/ublk.bin bs=256k skip=3000 count=1 2>/dev/null || fail "dd from /dev/ublkb0"
cmp /tmp/direct.bin /tmp/ublk.bin || fail "direct client's data reads back differently through /dev/ublkb0"
dd if=/dev/urandom of=/tmp/rand.bin bs=256k count=1 2>/dev/null
dd if=/tmp/rand.bin of=/dev/ublkb0 bs=256k seek=3001 count=1 conv=fsync 2>/dev/null || fail "dd to /dev/ublkb0"
echo 3 > /proc/sys/vm/drop_caches
homic-verify --socket $sock --controller qemu --slot 3001 --ios 64 --nlb 8 --compare /tmp/rand.bin ||
  fail "data written through /dev/ublkb0 reads back differently through a direct client"

aisio homi status --socket $sock
kill -TERM $hpid
wait $hpid || fail "homid exited with status $? on SIGTERM"
hpid=
[ -b /dev/ublkb0 ] && fail "homid left /dev/ublkb0 behind"
grep -E "ublk|stopped" /tmp/homid.log | tail -5
echo "ublk suite: OK ($driver, $bdf)"
exit 0
