//! Physical memory: zones, buddy allocator, per-CPU caches and the per-frame descriptor array.
