//! Slab allocator: kmalloc size classes and typed caches on top of the frame allocator.
