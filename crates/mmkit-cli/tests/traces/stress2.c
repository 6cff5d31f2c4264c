#define _GNU_SOURCE
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#include <fcntl.h>
int main(){
  long P=4096;
  char *a = mmap(0, 64*P, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
  munmap(a+10*P, 2*P);
  mprotect(a, 20*P, PROT_READ);           /* ENOMEM across hole, partial */
  madvise(a, 20*P, MADV_DONTNEED);         /* ENOMEM hole */
  madvise(a, 20*P, MADV_WILLNEED);
  mlock(a, 20*P);
  munlock(a, 20*P);
  msync(a, 20*P, MS_ASYNC);
  mremap(a, 4*P, 8*P, 0);                  /* ENOMEM can't grow */
  mremap(a+30*P, 4*P, 8*P, MREMAP_MAYMOVE);
  mremap(a+1, P, P, 0);
  mremap(a, 0, P, MREMAP_MAYMOVE);         /* dup of private: EINVAL? */
  mremap(a, P, 2*P, MREMAP_FIXED, a+40*P); /* EINVAL no MAYMOVE */
  mremap(a+12*P, 4*P, 4*P, MREMAP_MAYMOVE|MREMAP_FIXED, a+14*P); /* overlap EINVAL */
  madvise(a+20*P, 4*P, MADV_FREE);
  madvise(a+20*P, 4*P, MADV_POPULATE_WRITE);
  madvise(a+24*P, 4*P, 102);
  madvise(a+24*P, 4*P, 103);
  madvise(a+20*P, 4*P, MADV_WIPEONFORK);
  madvise(a+21*P, 1*P, MADV_KEEPONFORK);
  madvise(a+22*P, 2*P, MADV_MERGEABLE);
  madvise(a+22*P, 2*P, 25);
  madvise(a+22*P, 2*P, MADV_DONTDUMP);
  madvise(a+22*P, 2*P, MADV_PAGEOUT);
  mprotect(a+20*P, P, PROT_READ|PROT_WRITE|PROT_EXEC);
  mprotect(a+20*P, P, 0x10);
  struct rlimit rl = {65536, 65536}; setrlimit(RLIMIT_MEMLOCK, &rl);
  mlock(a+40*P, 20*P);
  mlock2(a+40*P, 2*P, 2);
  mlockall(MCL_ONFAULT);
  char *x = mmap(0, 4*P, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_LOCKED, -1, 0);
  msync(a+41*P, P, MS_INVALIDATE);
  char *many[300];
  for (int i = 0; i < 300; i++) { many[i] = mmap(0, P, (i&1)?PROT_READ:PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0); }
  for (int i = 0; i < 300; i+=3) munmap(many[i], P);
  mprotect(many[299], 300*P, PROT_READ);
  munmap(a, 64*P);
  void *h = mmap((void*)0x7ffffff00000, 16*P, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0); /* hint near stack */
  mmap((void*)0x800000000000, P, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0);
  mmap((void*)-4096, P, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0);
  mmap(0, P, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 1);
  mmap(0, P, PROT_READ, MAP_SHARED_VALIDATE|MAP_ANONYMOUS|0x800000, -1, 0);
  int fd = open("/etc/passwd", O_RDONLY);
  mmap(0, P, PROT_READ, MAP_PRIVATE, fd, 1UL<<62);
  mmap(0, P, PROT_READ, MAP_PRIVATE, 99, 0);
  brk(0); brk((void*)1);
  return 0;
}
