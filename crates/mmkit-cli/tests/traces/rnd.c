#define _GNU_SOURCE
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdlib.h>
#include <stdint.h>
static uint64_t s;
static uint64_t rnd(void){ s ^= s<<13; s ^= s>>7; s ^= s<<17; return s; }
static long sc(long n,long a,long b,long c,long d,long e,long f){ return syscall(n,a,b,c,d,e,f); }
int main(int argc,char**argv){
  s = strtoull(argv[1],0,10)*2654435761u+1; int nops = atoi(argv[2]);
  long P=4096; long W = 256;  /* window pages */
  char *base = (char*)sc(SYS_mmap,0,W*P*2,0,MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE,-1,0);
  sc(SYS_munmap,(long)base,W*P*2,0,0,0,0);
  base = (char*)(((uintptr_t)base + W*P) & ~(W*P-1)); /* aligned-ish window */
  for (int i=0;i<nops;i++){
    long pg = rnd()%W, n = 1 + rnd()%16;
    long addr = (long)base + pg*P, len = n*P;
    if (rnd()%20==0) addr += 1 + rnd()%100;
    if (rnd()%25==0) len = rnd()%3 ? (long)(rnd()%(P*4)) : (long)-P*(1+rnd()%4);
    long prots[] = {0,1,3,5,7,1|0x01000000,0x10};
    long prot = prots[rnd()%((rnd()%10)?5:7)];
    switch (rnd()%12){
    case 0: case 1: { long fl = MAP_PRIVATE|MAP_ANONYMOUS; int k=rnd()%6;
      if(k<3) fl|=MAP_FIXED; else if(k==3) fl|=MAP_FIXED_NOREPLACE; else if (k==4) fl = (fl&~MAP_PRIVATE)|MAP_SHARED|MAP_FIXED;
      if (rnd()%8==0) fl|=MAP_NORESERVE; if (rnd()%10==0) fl|=MAP_GROWSDOWN; if(rnd()%15==0) fl|=MAP_STACK;
      if (rnd()%30==0) fl|=MAP_LOCKED; if (rnd()%40==0) fl = MAP_ANONYMOUS|MAP_FIXED;
      sc(SYS_mmap, (k==5)?addr:addr, len, prot, fl, -1, 0); break; }
    case 2: case 3: sc(SYS_munmap, addr, len,0,0,0,0); break;
    case 4: case 5: sc(SYS_mprotect, addr, len, prot,0,0,0); break;
    case 6: { long fl; int k=rnd()%5; long na = (long)base + (rnd()%W)*P; long nl = (1+rnd()%16)*P;
      fl = k==0?0: k==1?MREMAP_MAYMOVE: k==2?(MREMAP_MAYMOVE|MREMAP_FIXED): k==3?(MREMAP_MAYMOVE|MREMAP_DONTUNMAP|MREMAP_FIXED): MREMAP_MAYMOVE|MREMAP_DONTUNMAP;
      if (k>=3) nl = len;
      sc(SYS_mremap, addr, len, nl, fl, (fl & MREMAP_FIXED) ? na : 0, 0); break; }
    case 7: case 8: { long adv[] = {MADV_POPULATE_WRITE, MADV_POPULATE_WRITE, MADV_DONTNEED, MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_DONTFORK, MADV_DOFORK, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_DONTDUMP, MADV_DODUMP, MADV_FREE, MADV_WILLNEED, MADV_COLD, MADV_POPULATE_READ, 77, 77, 77, MADV_MERGEABLE, MADV_REMOVE};
      sc(SYS_madvise, addr, len, adv[rnd()%23],0,0,0); break; }
    case 9: { int k=rnd()%4; if(k==0) sc(SYS_mlock,addr,len,0,0,0,0); else if(k==1) sc(SYS_munlock,addr,len,0,0,0,0); else if (k==2) sc(SYS_mlock2,addr,len,rnd()%3,0,0,0); else sc(SYS_msync,addr,len,(long[]){1,2,4,3,6,0,8}[rnd()%7],0,0,0); break; }
    case 10: sc(SYS_madvise, addr, len, MADV_POPULATE_WRITE,0,0,0); break;
    case 11: sc(SYS_mprotect, addr, len, (rnd()%2)?3:1,0,0,0); break;
    }
  }

  return 0;
}
