#define _GNU_SOURCE
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>
#include <string.h>
#include <stdlib.h>
int main(){
  long P=4096;
  char *a = mmap(0, 16*P, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
  a[0]=1;
  mprotect(a+4*P, 4*P, PROT_READ);
  mprotect(a+4*P, 4*P, PROT_READ|PROT_WRITE);
  char *b = mmap(0, 8*P, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
  mprotect(b, 8*P, PROT_READ); /* never written: drops ac */
  mremap(a, 16*P, 32*P, MREMAP_MAYMOVE);
  mmap((void*)0x10000, P, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0);
  mmap((void*)0x10000, P, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0);
  mmap((void*)0x1000, P, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0);
  munmap((void*)0x10001, P);
  mmap(0, 0, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
  mmap(0, P, PROT_READ, MAP_ANONYMOUS, -1, 0);
  int fd = open("/dev/zero", O_RDWR);
  char *z = mmap(0, 4*P, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0);
  z[0]=1;
  char *z2 = mmap(0, 4*P, PROT_READ|PROT_WRITE, MAP_PRIVATE, fd, 0);
  char *s = mmap(0, 4*P, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0);
  mprotect(s+P, P, PROT_READ); mprotect(s+P, P, PROT_READ|PROT_WRITE);
  int rf = open("/etc/passwd", O_RDONLY);
  mmap(0, P, PROT_READ|PROT_WRITE, MAP_SHARED, rf, 0);
  char *r = mmap(0, P, PROT_READ, MAP_SHARED, rf, 0);
  mprotect(r, P, PROT_READ|PROT_WRITE);
  mlock(b, 2*P); munlock(b, 2*P); mlock2(b, P, MLOCK_ONFAULT);
  mlock((void*)0x20000000, P);
  msync(b, P, MS_SYNC); msync(b, P, MS_SYNC|MS_ASYNC); msync((void*)0x20000000, P, MS_ASYNC);
  madvise(a, P, MADV_DONTFORK); madvise(b, P, MADV_RANDOM); madvise(b, P, 999);
  madvise(b, 2*P, MADV_HUGEPAGE); madvise((void*)0x20000000, P, MADV_NORMAL);
  char *st = mmap(0, 64*P, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_STACK|MAP_GROWSDOWN, -1, 0);
  mprotect(st+P, P, PROT_READ|PROT_WRITE|PROT_GROWSDOWN);
  void *br = sbrk(0); brk((char*)br + 10*P); brk((char*)br + 3*P); brk((void*)0x1000);
  char *big = mmap(0, 1UL<<40, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
  char *nr = mmap(0, 1UL<<40, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE, -1, 0);
  munmap(nr, 1UL<<40);
  pid_t p = fork();
  if (p == 0) {
    char *c = mmap(0, 4*P, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
    c[0]=1;
    mprotect(a, P, PROT_READ);
    munmap(c, P);
    _exit(0);
  }
  waitpid(p, 0, 0);
  mremap(b, 8*P, 4*P, 0);
  mremap(b, 4*P, 4*P, MREMAP_MAYMOVE|MREMAP_FIXED, (void*)0x30000000);
  mremap((void*)0x30000000, 4*P, 4*P, MREMAP_MAYMOVE|MREMAP_DONTUNMAP, 0);
  munmap(0, 1UL<<47);
  mlockall(MCL_CURRENT|MCL_FUTURE);
  char *lk = mmap(0, 2*P, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
  munlockall();
  mlockall(0);
  return 0;
}
