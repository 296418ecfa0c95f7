# sriov: hardware-assisted delegation (issue 14) on QEMU's SR-IOV nvme (config sriov).
# The PF stays with the kernel nvme driver and its XFS stays mounted; homid enables two
# VFs (Virtualization Management through the kernel's admin passthrough) and grants
# each client a VF of its own, on which the client runs the whole driver.
#   1. the kernel writes a data set on the PF's XFS
#   2. homid brings 2 VFs online; two clients each hold one and verify every file
#      (extents from homid's resolve_extents, bytes through the VF == read(2)) while a
#      third process writes new files on the mounted file system
#   3. a client holding VF 1 is SIGKILLed: VF 1 is reset and granted again, verified read
#   4. a raw-LBA write through a VF reads back identically through the PF's block device
#   5. bad input: a client no [[allow]] rule admits, too many flexible resources, a VF
#      bound to another driver: each a clear error, VFs disabled again
# Needs in the initramfs (static): homid, homic-vf, aisio (testbed/run-all adds them).
fail() {
  echo "sriov suite: FAIL: $*"
  [ -f /tmp/homid.log ] && { echo "--- homid log (last lines)"; tail -n 25 /tmp/homid.log; }
  [ -n "${hpid:-}" ] && kill -TERM "$hpid" 2>/dev/null
  exit 1
}
. "$(dirname "$0")/lib.sh"
need homid homic-vf aisio
find_nvme sriov
pf=$bdf
dev=/dev/$(ls /sys/bus/pci/devices/$pf/nvme | head -1)n1
[ -b "$dev" ] || fail "the PF $pf has no kernel block device ($dev)"
echo "sriov: PF $pf ($dev), sriov_totalvfs $(cat /sys/bus/pci/devices/$pf/sriov_totalvfs)"

# 1. The data set, written by the kernel on the PF's file system.
mnt=/mnt/pf
mkdir -p $mnt
mount -t xfs -o noatime "$dev" $mnt || fail "mount XFS on $dev (the host formats the image)"
aisio fil gen $mnt/data --count 24 --mix --size lognormal:64K:1.0:1M --seed 7 --progress off >/dev/null ||
  fail "aisio fil gen"
sync

sock=/run/homid/homid.sock
conf() {  # conf VFS-TOML -> /tmp/homid.toml
  cat > /tmp/homid.toml <<EOT
[daemon]
socket = "$sock"
socket_mode = "0666"

[[controller]]
name = "pf"
type = "sriov-pf"
address = "$pf"
driver = "uio"
vfs = $1
[[controller.namespace]]
nsid = 1
block_device = "$dev"

[[allow]]
name = "root"
uids = [0]
controllers = ["pf"]
dataset_roots = ["$mnt"]
EOT
}
start_pf() { : > /tmp/homid.log; start_homid $sock /tmp/homid.log; }
numvfs() { cat /sys/bus/pci/devices/$pf/sriov_numvfs; }

# 2. Two VFs, two clients at once, a writer on the PF's file system meanwhile.
conf '[{ vq = 2, vi = 1 }, { vq = 2, vi = 1 }]'
start_pf || fail "homid did not start"
[ "$(numvfs)" = 2 ] || fail "sriov_numvfs is $(numvfs), not 2"
aisio homi functions --socket $sock || fail "aisio homi functions"
aisio devices || fail "aisio devices"
aisio sriov status "$pf" || fail "aisio sriov status"
( i=0; while [ $i -lt 40 ]; do
    dd if=/dev/urandom of=$mnt/new.$i bs=64k count=2 2>/dev/null; i=$((i + 1)); done; sync ) & wpid=$!
# Client 1: homic-vf; client 2: aisio fil run --via homid --function vf (the manifest
# of `aisio fil gen` checks every file's bytes). Each gets whichever VF is free.
homic-vf --socket $sock --verify $mnt/data --rounds 2 > /tmp/c1.out 2>&1 & c1=$!
aisio fil run $mnt/data --paths unvme --via homid --function vf --homid-controller pf --homid-socket $sock \
  --threads 1 --qd 8 --progress off > /tmp/c2.out 2>&1 & c2=$!
wait $c1; r1=$?
wait $c2; r2=$?
wait $wpid || fail "the writer on the PF's file system"
cat /tmp/c1.out /tmp/c2.out
[ $r1 = 0 ] || fail "homic-vf client"
[ $r2 = 0 ] || fail "aisio fil run --via homid --function vf"
[ "$(ls $mnt | grep -c '^new\.')" = 40 ] || fail "the writer's files are not all there"

# 3. SIGKILL a VF holder: homid resets VF 1 and grants it again.
homic-vf --socket $sock --vfn 1 --hold > /tmp/hold.out 2>&1 & hold=$!
i=0
until grep -q READY /tmp/hold.out 2>/dev/null; do
  i=$((i + 1))
  kill -0 $hold 2>/dev/null || { cat /tmp/hold.out; fail "holding client exited"; }
  [ $i -gt 300 ] && fail "holding client never got VF 1"
  sleep 0.2
done
kill -KILL $hold
wait $hold 2>/dev/null
homic-vf --socket $sock --vfn 1 --verify $mnt/data || fail "VF 1 not granted again after SIGKILL"
homic-vf --socket $sock --list
homic-vf --socket $sock --list | grep -q "VF 1 .* holder 0 grants [2-9]" || fail "VF 1 grant count"
grep -q "VF 1 .* reset and free again" /tmp/homid.log || fail "no reset of VF 1 in homid's log"

# 4. Raw LBA through VF 2 (beyond the 512 MiB XFS), read back through the PF.
lba=1056768
homic-vf --socket $sock --vfn 2 --write-lba $lba --blocks 64 --seed 42 --out /tmp/vf.bin || fail "raw write via VF 2"
echo 3 > /proc/sys/vm/drop_caches
dd if=$dev of=/tmp/pf.bin bs=512 skip=$lba count=64 2>/dev/null || fail "dd from $dev"
cmp /tmp/vf.bin /tmp/pf.bin || fail "bytes written through VF 2 differ on the PF's block device"
echo "sriov: 32 KiB written at LBA $lba through VF 2 read back identically through $dev"

# 5a. A client no [[allow]] rule admits.
chmod 755 / /run /run/homid  # the initramfs root comes from a 0700 staging directory
homic-vf --uid 65534 --socket $sock --vfn 1 --verify $mnt/data > /tmp/deny.out 2>&1 &&
  fail "a client of uid 65534 got a VF"
cat /tmp/deny.out
grep -q "not admitted by any \[\[allow\]\] rule" /tmp/deny.out || fail "refusal does not name [[allow]]"

kill -TERM $hpid
wait $hpid || fail "homid exited with status $?"
hpid=
[ "$(numvfs)" = 0 ] || fail "homid left $(numvfs) VFs enabled"

# 5b. Too many flexible resources (VIFRSM is 2 on this PF): clear error, nothing enabled.
conf '[{ vq = 2, vi = 1 }, { vq = 2, vi = 3 }]'
start_pf && fail "homid started with 3 VI resources for VF 2"
grep -q "VF 2 asks 3 VI resources; the primary controller allows at most 2" /tmp/homid.log || fail "resource error text"
[ "$(numvfs)" = 0 ] || fail "a failed start left $(numvfs) VFs enabled"

# 5c. A VF bound to another driver: homid SIGKILLed leaves its VFs up; the kernel nvme
# driver takes VF 1; a new homid refuses to take it over and changes nothing.
conf '[{ vq = 2, vi = 1 }, { vq = 2, vi = 1 }]'
start_pf || fail "homid did not start again"
kill -KILL $hpid
wait $hpid 2>/dev/null
hpid=
rm -f $sock
vf1=$(basename "$(readlink /sys/bus/pci/devices/$pf/virtfn0)")
aisio bind --driver nvme "$vf1" || fail "bind $vf1 to nvme"
start_pf && fail "homid took over $vf1 from the nvme driver"
grep -q "is bound to nvme, another driver" /tmp/homid.log || fail "another-driver error text"
[ "$(basename "$(readlink /sys/bus/pci/devices/$vf1/driver)")" = nvme ] || fail "$vf1 was moved off nvme"
echo 0 > /sys/bus/pci/devices/$pf/sriov_numvfs

umount $mnt
echo "sriov suite: OK"
