import os, subprocess, threading, mmap, json
d = [list(range(1000)) for _ in range(300)]
s = json.dumps(d)
m = mmap.mmap(-1, 1<<20)
m[0:4] = b'abcd'
m.resize(2<<20) if hasattr(m, 'resize') else None
m.close()
def w(): 
    x = bytearray(3<<20); del x
ts=[threading.Thread(target=w) for _ in range(3)]
[t.start() for t in ts]; [t.join() for t in ts]
subprocess.run(['/usr/bin/true'])
p = os.fork()
if p == 0:
    y = bytearray(5<<20); os._exit(0)
os.waitpid(p, 0)
