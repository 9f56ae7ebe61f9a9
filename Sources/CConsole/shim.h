// What the console needs from C that Swift's Glibc module leaves out:
// crypt(3) of libxcrypt (Debian's libcrypt-dev, pulled in by libc6-dev) for the password hashes, and the
// XSI pseudo-terminal calls (stdlib.h declares them only under _XOPEN_SOURCE).
#include <crypt.h>
#include <fcntl.h>
int posix_openpt(int flags);
int grantpt(int fd);
int unlockpt(int fd);
char *ptsname(int fd);
