//! Allocates, maps, writes, unmaps and frees host-visible memory of assorted sizes
//! many times, and prints this process's RSS before and after (the issue's "no
//! leak" check: host and client RSS must stay flat).
//!
//! Usage: `venus-memchurn [--cycles N] [--server-pid PID]`; prints
//! `client_rss_kib start=.. end=..` and, with a pid, `host_rss_kib start=.. end=..`,
//! then `PASS` or `FAIL`.

use ash::vk;

fn rss_kib(pid: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn main() {
    let mut cycles = 10_000u32;
    let mut server_pid: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--cycles" => cycles = args.next().and_then(|v| v.parse().ok()).unwrap_or(cycles),
            "--server-pid" => server_pid = args.next(),
            _ => {
                eprintln!("usage: venus-memchurn [--cycles N] [--server-pid PID]");
                std::process::exit(2);
            }
        }
    }
    match run(cycles, server_pid.as_deref()) {
        Ok(true) => println!("PASS"),
        Ok(false) => {
            println!("FAIL");
            std::process::exit(1)
        }
        Err(e) => {
            println!("FAIL {e}");
            std::process::exit(1)
        }
    }
}

fn run(cycles: u32, server_pid: Option<&str>) -> Result<bool, String> {
    // SAFETY: loading the system Vulkan loader.
    let entry = unsafe { ash::Entry::load() }.map_err(|e| e.to_string())?;
    let app = vk::ApplicationInfo::default().api_version(vk::API_VERSION_1_2);
    // SAFETY: valid create info.
    let instance = unsafe {
        entry.create_instance(
            &vk::InstanceCreateInfo::default().application_info(&app),
            None,
        )
    }
    .map_err(|e| format!("vkCreateInstance: {e}"))?;
    // SAFETY: live instance.
    let pd = *unsafe { instance.enumerate_physical_devices() }
        .map_err(|e| e.to_string())?
        .first()
        .ok_or("no physical device")?;
    let prio = [1.0f32];
    let q = [vk::DeviceQueueCreateInfo::default()
        .queue_family_index(0)
        .queue_priorities(&prio)];
    // SAFETY: valid create info on a live physical device.
    let device = unsafe {
        instance.create_device(
            pd,
            &vk::DeviceCreateInfo::default().queue_create_infos(&q),
            None,
        )
    }
    .map_err(|e| format!("vkCreateDevice: {e}"))?;
    // SAFETY: live physical device.
    let props = unsafe { instance.get_physical_device_memory_properties(pd) };
    let ty = (0..props.memory_type_count)
        .find(|&i| {
            props.memory_types[i as usize].property_flags.contains(
                vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT,
            )
        })
        .ok_or("no host-visible coherent memory type")?;
    let sizes: [u64; 6] = [4096, 100, 65536, 12345, 1 << 20, 16384 + 4];
    let run_cycles = |n: u32| -> Result<(), String> {
        for i in 0..n {
            let size = sizes[i as usize % sizes.len()];
            let info = vk::MemoryAllocateInfo::default()
                .allocation_size(size)
                .memory_type_index(ty);
            // SAFETY: valid allocate info.
            let mem = unsafe { device.allocate_memory(&info, None) }
                .map_err(|e| format!("cycle {i}: vkAllocateMemory: {e}"))?;
            // SAFETY: host-visible memory, mapped whole.
            let p =
                unsafe { device.map_memory(mem, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty()) }
                    .map_err(|e| format!("cycle {i}: vkMapMemory: {e}"))?;
            // SAFETY: the mapping is `size` bytes; write the first and last byte and read them back.
            let ok = unsafe {
                let b = p.cast::<u8>();
                *b = i as u8;
                *b.add(size as usize - 1) = !(i as u8);
                *b == i as u8 && *b.add(size as usize - 1) == !(i as u8)
            };
            // SAFETY: mapped above; freed once.
            unsafe {
                device.unmap_memory(mem);
                device.free_memory(mem, None);
            }
            if !ok {
                return Err(format!("cycle {i}: mapped memory did not hold its data"));
            }
        }
        Ok(())
    };
    // Warm up (allocator caches, first-use mappings), then measure.
    run_cycles(cycles / 10 + 1)?;
    // SAFETY: live device.
    unsafe { device.device_wait_idle() }.map_err(|e| e.to_string())?;
    let c0 = rss_kib("self").unwrap_or(0);
    let h0 = server_pid.and_then(rss_kib);
    run_cycles(cycles)?;
    // SAFETY: live device.
    unsafe { device.device_wait_idle() }.map_err(|e| e.to_string())?;
    let c1 = rss_kib("self").unwrap_or(0);
    let h1 = server_pid.and_then(rss_kib);
    println!("cycles {cycles} of sizes {sizes:?}");
    println!(
        "client_rss_kib start={c0} end={c1} growth={}",
        c1 as i64 - c0 as i64
    );
    // Flat: less than 8 MiB of growth over the run (a leak of one page per cycle
    // would be 40 MiB for 10,000 cycles).
    let mut ok = c1 <= c0 + 8192;
    if let (Some(h0), Some(h1)) = (h0, h1) {
        println!(
            "host_rss_kib start={h0} end={h1} growth={}",
            h1 as i64 - h0 as i64
        );
        ok &= h1 <= h0 + 8192;
    }
    // SAFETY: everything created above, destroyed once.
    unsafe {
        device.destroy_device(None);
        instance.destroy_instance(None);
    }
    Ok(ok)
}
