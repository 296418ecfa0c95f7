// Smoke binary of the QEMU testbed: proves a static binary runs in the initramfs.
#include <sys/utsname.h>

#include <cstdio>

int main() {
  utsname u{};
  uname(&u);
  std::printf("testbed_hello: static binary running on %s %s\n", u.sysname, u.release);
  return 0;
}
