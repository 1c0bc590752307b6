//! Prints the commands of a fuzz input (a Venus stream) for triage:
//! `cargo run --example show_input FILE`. Handles are shown as the guest's ids;
//! vkCreateDevice's create info is printed in depth.

use bumpalo::Bump;
use venus_protocol::generated::{decode_command, Command};
use venus_protocol::Decoder;

fn main() {
    let path = std::env::args().nth(1).expect("usage: show_input FILE");
    let data = std::fs::read(&path).expect("read input");
    let arena = Bump::new();
    let mut pos = 0;
    while pos < data.len() {
        let mut d = Decoder::new(&data[pos..]);
        let Some((flags, cmd)) = decode_command(&mut d, &arena) else {
            println!("@{pos}: decode error {:?}", d.error());
            break;
        };
        println!("@{pos}: {} flags {flags}", cmd.name());
        if let Command::CreateDevice(x) = &cmd {
            // SAFETY: decoder-built pointers into the arena, with the counts they state.
            unsafe { show_device_create_info(&*x.p_create_info) };
        }
        pos += d.position().max(1);
    }
}

/// # Safety
/// `ci` was built by the decoder.
unsafe fn show_device_create_info(ci: &ash::vk::DeviceCreateInfo<'_>) {
    println!(
        "  flags {:?} queues {} exts {} features {:?}",
        ci.flags, ci.queue_create_info_count, ci.enabled_extension_count, ci.p_enabled_features
    );
    let mut p = ci.p_next as *const ash::vk::BaseInStructure<'_>;
    while !p.is_null() {
        // SAFETY: a decoded chain.
        let b = unsafe { &*p };
        println!("  pNext {:?}", b.s_type);
        p = b.p_next;
    }
    for i in 0..ci.queue_create_info_count as usize {
        // SAFETY: as above.
        let q = unsafe { &*ci.p_queue_create_infos.add(i) };
        // SAFETY: as above.
        let prios =
            unsafe { std::slice::from_raw_parts(q.p_queue_priorities, q.queue_count as usize) };
        println!(
            "  queue family {} count {} flags {:?} prios {:?} pNext {:?}",
            q.queue_family_index, q.queue_count, q.flags, prios, q.p_next
        );
    }
    for i in 0..ci.enabled_extension_count as usize {
        // SAFETY: as above.
        let n = unsafe { std::ffi::CStr::from_ptr(*ci.pp_enabled_extension_names.add(i)) };
        println!("  ext {n:?}");
    }
}
