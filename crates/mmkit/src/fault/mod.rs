//! The page half of an address space: page-fault handling (demand zero, zero page, file pages,
//! copy-on-write) and the page-table effects of VMA changes.
