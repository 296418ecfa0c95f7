# Smoke test: a static binary runs, the NVMe function is visible, hugepages are reserved.
set -e
testbed_hello
echo "PCI functions:"; for d in /sys/bus/pci/devices/*; do
  echo "  ${d##*/} $(cat $d/vendor):$(cat $d/device) class $(cat $d/class) driver $(basename "$(readlink $d/driver 2>/dev/null)" 2>/dev/null)"
done
grep -q 0x010802 /sys/bus/pci/devices/*/class
test "$(cat /proc/sys/vm/nr_hugepages)" -gt 0
