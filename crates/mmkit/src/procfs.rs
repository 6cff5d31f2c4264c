//! `/proc/<pid>/maps`, `smaps` and `status` text, byte-identical to fs/proc/task_mmu.c.
