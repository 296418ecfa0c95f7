# fil: unvme vs posix vs posix-direct vs io_uring on the same XFS, in the QEMU guest.
#
#   sh fil.sh [DEVICE [BDF]]     defaults: /dev/nvme0n1 and the PCI function behind it
#
# 1. XFS on DEVICE: kept when it holds one (the host formatted the drive image), else
#    mkfs.xfs when the initramfs has it; otherwise the suite fails, saying so
# 2. mount, `aisio fil gen` a mixed data set, sync; the kernel paths read it
# 3. umount, hand the function to uio_pci_generic (`aisio bind --driver uio BDF`): our
#    driver reads the same files, extents by the XFS decoder reading through our driver
# 4. give the function back to the kernel nvme driver
# Steps 1-4 are `aisio fil scenario`.
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

# The scenario (aisio fil scenario, as bench/fil/emu-compare runs it): the XFS on DEVICE
# kept (the host formatted the drive image) or made, mount, fil gen, the kernel paths,
# umount, the function to uio, unvme with the XFS decoder, the function back to nvme.
# Every path is named, so `aisio fil run` fails when one is skipped (cannot run here) as
# well as when a file does not verify; the scenario fails when any run did.
aisio xfs info "$dev" >/dev/null 2>&1 || command -v mkfs.xfs >/dev/null 2>&1 || {
  echo "fil: no XFS on $dev and no mkfs.xfs in the guest: format the drive image on the host"
  echo "fil: (TEST_DIR=/tmp TEST_DEV=/dev/null QA_CHECK_FS=xfs mkfs.xfs -f IMAGE) or add mkfs.xfs to the initramfs"
  exit 1
}
common="--threads $threads --qd $qd --io-size $io --drop-cache drop_caches --progress off"
rm -f /tmp/fil-kernel.json /tmp/fil-unvme.json
status=0
aisio fil scenario --device "$dev" --keep-xfs --mnt $mnt --count "$files" --mix --size "$size" --seed 1 \
  --mounted "{data} --paths posix,posix-direct,io_uring $common -o /tmp/fil-kernel.json" \
  --between "aisio bind --driver uio $bdf" \
  --unmounted "/data --target $bdf --extents xfs --manifest {manifest} --paths unvme $common -o /tmp/fil-unvme.json" \
  --after "aisio bind --driver nvme $bdf" || status=1

for f in /tmp/fil-kernel.json /tmp/fil-unvme.json; do
  [ -f $f ] || continue
  echo "AISIO-FIL-JSON-BEGIN $(basename $f)"
  cat $f
  echo "AISIO-FIL-JSON-END"
done
if [ $status != 0 ]; then
  echo "fil suite: FAIL (aisio fil scenario: a path skipped or a file bad, see the reports above)"
  exit 1
fi
echo "fil suite: OK (every file verified on: posix posix-direct io_uring unvme)"
exit 0
