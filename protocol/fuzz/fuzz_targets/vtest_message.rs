//! Parses arbitrary bytes as a vtest request and as a vtest response. A message that
//! parses must say it took no more bytes than it was given, and must survive an
//! encode/decode round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use venus_protocol::vtest::{Request, Response};

fuzz_target!(|data: &[u8]| {
    if let Ok((req, used)) = Request::decode_message(data) {
        assert!(
            used <= data.len(),
            "request took {used} of {} bytes",
            data.len()
        );
        let mut out = Vec::new();
        if req.encode(&mut out).is_ok() {
            let (again, n) = Request::decode_message(&out).expect("re-encoded request decodes");
            assert_eq!(n, out.len());
            assert_eq!(again, req, "request round trip");
        }
    }
    if let Ok((resp, used)) = Response::decode_message(data) {
        assert!(
            used <= data.len(),
            "response took {used} of {} bytes",
            data.len()
        );
        let mut out = Vec::new();
        if resp.encode(&mut out).is_ok() {
            let (again, n) = Response::decode_message(&out).expect("re-encoded response decodes");
            assert_eq!(n, out.len());
            assert_eq!(again, resp, "response round trip");
        }
    }
});
