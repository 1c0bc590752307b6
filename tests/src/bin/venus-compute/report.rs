//! Reporting: the `ok`/`FAIL` lines, the error type that stops a run, and the debug
//! messenger that counts validation messages.

use std::ffi::c_void;
use std::fmt::Display;
use std::sync::atomic::{AtomicU32, Ordering};

use ash::vk;

/// Validation (or performance) warnings and errors seen by the debug messenger.
pub(crate) static VALIDATION_MESSAGES: AtomicU32 = AtomicU32::new(0);
/// Other warnings and errors seen by the debug messenger (loader, driver).
pub(crate) static OTHER_MESSAGES: AtomicU32 = AtomicU32::new(0);

/// Counts and prints the checks.
pub(crate) struct Report {
    pub(crate) quiet: bool,
    pub(crate) checks: u32,
    pub(crate) failed: u32,
}

impl Report {
    pub(crate) fn check(&mut self, ok: bool, what: impl Display) -> bool {
        self.checks += 1;
        if ok {
            if !self.quiet {
                println!("ok {what}");
            }
        } else {
            self.failed += 1;
            println!("FAIL {what}");
        }
        ok
    }

    pub(crate) fn fail(&mut self, what: impl Display) {
        self.check(false, what);
    }

    pub(crate) fn info(&self, what: impl Display) {
        if !self.quiet {
            println!("   {what}");
        }
    }
}

/// A failure that stops the run (the rest of the program cannot go on without it).
pub(crate) type Fail = String;

pub(crate) trait VkContext<T> {
    fn ctx(self, what: &str) -> Result<T, Fail>;
}

impl<T> VkContext<T> for Result<T, vk::Result> {
    fn ctx(self, what: &str) -> Result<T, Fail> {
        self.map_err(|e| format!("{what} failed: {e}"))
    }
}

/// Prints the messages of the debug messenger and counts warnings and errors.
unsafe extern "system" fn debug_callback(
    severity: vk::DebugUtilsMessageSeverityFlagsEXT,
    types: vk::DebugUtilsMessageTypeFlagsEXT,
    data: *const vk::DebugUtilsMessengerCallbackDataEXT<'_>,
    _user: *mut c_void,
) -> vk::Bool32 {
    let serious = severity.intersects(
        vk::DebugUtilsMessageSeverityFlagsEXT::WARNING
            | vk::DebugUtilsMessageSeverityFlagsEXT::ERROR,
    );
    if !serious {
        return vk::FALSE;
    }
    // SAFETY: the loader or layer passes a valid callback data struct (or null) whose
    // strings are NUL-terminated or null, valid for the duration of the call.
    let (id, message) = unsafe {
        match data.as_ref() {
            None => (String::new(), String::new()),
            Some(d) => (
                d.message_id_name_as_c_str()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                d.message_as_c_str()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
        }
    };
    let validation = types.intersects(
        vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION
            | vk::DebugUtilsMessageTypeFlagsEXT::PERFORMANCE,
    );
    if validation {
        VALIDATION_MESSAGES.fetch_add(1, Ordering::SeqCst);
        println!("validation message [{severity:?}] {id}: {message}");
    } else {
        OTHER_MESSAGES.fetch_add(1, Ordering::SeqCst);
        println!("debug message [{severity:?} {types:?}] {id}: {message}");
    }
    vk::FALSE
}

pub(crate) fn messenger_info() -> vk::DebugUtilsMessengerCreateInfoEXT<'static> {
    vk::DebugUtilsMessengerCreateInfoEXT::default()
        .message_severity(
            vk::DebugUtilsMessageSeverityFlagsEXT::WARNING
                | vk::DebugUtilsMessageSeverityFlagsEXT::ERROR,
        )
        .message_type(
            vk::DebugUtilsMessageTypeFlagsEXT::GENERAL
                | vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION
                | vk::DebugUtilsMessageTypeFlagsEXT::PERFORMANCE,
        )
        .pfn_user_callback(Some(debug_callback))
}
