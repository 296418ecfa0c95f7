# fil: unvme vs posix vs posix-direct vs io_uring on the same XFS, in the QEMU guest.
#
#   sh fil.sh [DEVICE [BDF]]     defaults: /dev/nvme0n1 and the PCI function behind it
#
# 1. XFS on DEVICE: kept when `aisio xfs info` finds one (the host formatted the drive
#    image), else mkfs.xfs when the initramfs has it; otherwise the suite fails, saying so
# 2. mount, `aisio fil gen` a mixed data set, sync; the kernel paths read it
# 3. umount, hand the function to uio_pci_generic (`aisio bind --driver uio BDF`): our
#    driver reads the same files, extents by the XFS decoder reading through our driver
# 4. give the function back to the kernel nvme driver
# The JSON reports are printed between AISIO-FIL-JSON-BEGIN/END lines for the host.
#
# Environment (or kernel command line via the init's exports): FIL_FILES (120),
# FIL_SIZE (lognormal:256K:1.0:4M), FIL_THREADS (1), FIL_QD (32), FIL_IO_SIZE (128K).
set -e
dev=${1:-/dev/nvme0n1}
name=${dev#/dev/}
bdf=${2:-$(basename "$(readlink -f /sys/block/$name/device/device)")}
files=${FIL_FILES:-120} size=${FIL_SIZE:-lognormal:256K:1.0:4M}
threads=${FIL_THREADS:-1} qd=${FIL_QD:-32} io=${FIL_IO_SIZE:-128K}
mnt=/mnt/fil
echo "fil: device $dev, PCI function $bdf"
[ -b "$dev" ] || { echo "fil: $dev is not a block device (is the nvme driver bound?)"; exit 1; }

if aisio xfs info "$dev" >/dev/null 2>&1; then
  echo "fil: $dev already holds XFS"
elif command -v mkfs.xfs >/dev/null 2>&1; then
  TEST_DIR=/tmp TEST_DEV=/dev/null QA_CHECK_FS=xfs mkfs.xfs -q -f "$dev"
else
  echo "fil: no XFS on $dev and no mkfs.xfs in the guest: format the drive image on the host"
  echo "fil: (TEST_DIR=/tmp TEST_DEV=/dev/null QA_CHECK_FS=xfs mkfs.xfs -f IMAGE) or add mkfs.xfs to the initramfs"
  exit 1
fi

mkdir -p $mnt
mount -t xfs -o noatime "$dev" $mnt
trap 'umount $mnt 2>/dev/null; true' EXIT
rm -rf $mnt/data
aisio fil gen $mnt/data --count "$files" --mix --size "$size" --seed 1 --progress off
cp $mnt/data/manifest.json /tmp/fil-manifest.json
sync
common="--threads $threads --qd $qd --io-size $io --drop-cache drop_caches --progress off"
# Every path is named, so `aisio fil run` exits non-zero when one of them is skipped
# (cannot run here) as well as when a file does not verify.
passed= failed=
kernel_paths=posix,posix-direct,io_uring
if aisio fil run $mnt/data --paths $kernel_paths $common -o /tmp/fil-kernel.json; then
  passed="$passed $kernel_paths"
else
  failed="$failed --paths $kernel_paths"
fi
umount $mnt
trap - EXIT

aisio bind --driver uio "$bdf"
if aisio fil run /data --target "$bdf" --extents xfs --manifest /tmp/fil-manifest.json --paths unvme $common \
  -o /tmp/fil-unvme.json; then
  passed="$passed unvme"
else
  failed="$failed --paths unvme"
fi
aisio bind --driver nvme "$bdf"

for f in /tmp/fil-kernel.json /tmp/fil-unvme.json; do
  [ -f $f ] || continue
  echo "AISIO-FIL-JSON-BEGIN $(basename $f)"
  cat $f
  echo "AISIO-FIL-JSON-END"
done
if [ -n "$failed" ]; then
  echo "fil suite: FAIL (aisio fil run$failed: a path skipped or a file bad, see the report above; every file" \
    "verified on:${passed:- nothing})"
  exit 1
fi
echo "fil suite: OK (every file verified on:$passed)"
exit 0
