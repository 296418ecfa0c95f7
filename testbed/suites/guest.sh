# The in-guest suite: the aisio CLI (devices, bind) on the testbed's functions, then the
# GoogleTest binary tests/guest/guest_tests (filtered by aisio.filter if given).
rc=0
fail() { echo "cli check FAILED: $*"; rc=1; }
# /dev/nvmeXnY of namespace 1 of function $1 (a multipath path nvmeXcYnZ -> head nvmeXnZ).
blockdev_of() {
  for i in $(seq 1 40); do
    for d in /sys/block/nvme*; do
      [ "$(cat $d/nsid 2>/dev/null)" = 1 ] || continue
      [ "$(basename "$(readlink $d/device/device 2>/dev/null)")" = "$1" ] || continue
      n=$(basename $d | sed 's/c[0-9]*n/n/')
      [ -b /dev/$n ] && { echo /dev/$n; return 0; }
    done
    sleep 0.25
  done
  return 1
}

echo "--- aisio devices"
aisio devices || fail "aisio devices"
aisio devices --json > /tmp/devices.json || fail "aisio devices --json"
grep -q '"vendor": "1b36"' /tmp/devices.json || fail "no 1b36 function in --json"
bdf=$(sed -n 's/.*"bdf": "\(0000:01:00.0\)".*/\1/p' /tmp/devices.json | head -1)
[ "$bdf" = 0000:01:00.0 ] || fail "0000:01:00.0 not listed"
if [ -z "$AISIO_TESTBED_FILTER" ]; then
  user=uio; [ -e /sys/bus/pci/devices/$bdf/iommu_group ] && user=vfio
  for d in $user nvme; do
    aisio bind --driver $d $bdf || fail "aisio bind --driver $d"
  done
  drv=$(basename "$(readlink /sys/bus/pci/devices/$bdf/driver)")
  [ "$drv" = nvme ] || fail "after binding back: driver $drv"
  aisio bind --driver bogus $bdf 2>/dev/null && fail "bind accepted a bogus driver"
  # The driver through the CLI: identify, write a file, read it back, and check the
  # kernel sees the same bytes after binding back.
  aisio bind --driver $user $bdf >/dev/null || fail "aisio bind --driver $user (2)"
  aisio devices
  aisio identify $bdf > /tmp/identify.txt 2>&1 || fail "aisio identify $bdf"
  grep -q "QEMU NVMe Ctrl" /tmp/identify.txt || { cat /tmp/identify.txt; fail "identify shows no QEMU model"; }
  head -c 1048576 /aisio/bin/guest_tests > /tmp/cli.bin
  aisio write $bdf -f /tmp/cli.bin -s 8192 --verify || fail "aisio write"
  aisio read $bdf -f /tmp/cli.bin -s 8192 --verify || fail "aisio read --verify"
  aisio bind --driver nvme $bdf >/dev/null || fail "aisio bind --driver nvme (2)"
  if dev=$(blockdev_of $bdf); then
    lba=$(cat /sys/block/${dev#/dev/}/queue/logical_block_size)
    dd if=$dev of=/tmp/cli.back bs=$lba skip=8192 count=$((1048576 / lba)) iflag=direct 2>/dev/null
    if cmp /tmp/cli.bin /tmp/cli.back; then
      echo "cli: 'aisio write' data read back through the kernel ($dev) byte for byte"
    else
      fail "$dev: the kernel reads other bytes than 'aisio write' wrote"
    fi
  else
    fail "no kernel block device for $bdf"
  fi
fi

echo "--- guest_tests"
args=
[ -n "$AISIO_TESTBED_FILTER" ] && args="--gtest_filter=$AISIO_TESTBED_FILTER"
guest_tests --gtest_color=no $args || rc=1
if [ $rc != 0 ]; then echo "--- dmesg (tail) ---"; dmesg | tail -40; fi
exit $rc
