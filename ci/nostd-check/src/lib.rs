#![no_std]

use core::alloc::{GlobalAlloc, Layout};

struct NoAlloc;

// SAFETY: never hands out memory, so it cannot violate any allocation contract.
unsafe impl GlobalAlloc for NoAlloc {
    unsafe fn alloc(&self, _layout: Layout) -> *mut u8 {
        core::ptr::null_mut()
    }
    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static ALLOC: NoAlloc = NoAlloc;

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// Touches the public API so that it is compiled into this library.
#[no_mangle]
pub extern "C" fn mmkit_nostd_probe() -> usize {
    let space = mmkit::AddressSpace::new(mmkit::MmConfig::default());
    space.map_count()
}
