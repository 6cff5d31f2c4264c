#!/bin/bash
# gen.sh NAME PROG ARGS...
name=$1; shift
setarch -R strace -f -y -qq -e trace=%memory,%process -o $name.strace "$@" > /dev/null 2>&1
cat > $name.gdb <<G
set pagination off
set startup-with-shell off
starti
python
import gdb
pid = gdb.selected_inferior().pid
open('$name.before','w').write(open('/proc/%d/maps'%pid).read())
end
catch syscall exit_group
continue
python
pid = gdb.selected_inferior().pid
open('$name.after','w').write(open('/proc/%d/maps'%pid).read())
end
kill
quit
G
setarch -R gdb -batch -x $name.gdb --args "$@" > $name.gdblog 2>&1
wc -l $name.strace $name.before $name.after | head -3
