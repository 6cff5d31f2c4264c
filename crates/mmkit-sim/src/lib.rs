//! A hosted machine for mmkit: physical memory is a host buffer, a software MMU walks the real
//! page-table bytes, per-CPU TLBs keep stale entries until the core flushes them.
