//! Tests of vtest protocol v3 framing. The expected dwords are written by hand from
//! Mesa 25.0.7 `src/virtio/vulkan/vn_renderer_vtest.c` (requests, and the response
//! sizes Mesa asserts) and virglrenderer's `vtest/vtest_renderer.c` (responses).

use proptest::prelude::*;
use venus_protocol::vtest::{
    poll_timeout_from_ns, sizes, sync_wait_timeout, CommandId, Header, Request, Response,
    SubmitBatch, SyncPoint, VtestError, BLOB_FLAG_MAPPABLE, BLOB_TYPE_HOST3D, HEADER_SIZE,
    MAX_BODY_SIZE, MAX_RENDERER_NAME_SIZE, PARAM_MAX_TIMELINE_COUNT, PROTOCOL_VERSION,
    SUBMIT_CMD2_FLAG_RING_IDX, SYNC_WAIT_FLAG_ANY, SYNC_WAIT_TIMEOUT_INFINITE,
};

fn dwords(ws: &[u32]) -> Vec<u8> {
    ws.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn enc_req(r: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    r.encode(&mut out).unwrap();
    out
}

fn enc_resp(r: &Response) -> Vec<u8> {
    let mut out = Vec::new();
    r.encode(&mut out).unwrap();
    out
}

/// Encodes, compares with the expected bytes, decodes back and compares again.
fn check_req(r: Request, expected: Vec<u8>) {
    let bytes = enc_req(&r);
    assert_eq!(bytes, expected, "{r:?}");
    let (decoded, used) = Request::decode_message(&bytes).unwrap();
    assert_eq!(used, bytes.len());
    assert_eq!(decoded, r);
}

fn check_resp(r: Response, expected: Vec<u8>) {
    let bytes = enc_resp(&r);
    assert_eq!(bytes, expected, "{r:?}");
    let (decoded, used) = Response::decode_message(&bytes).unwrap();
    assert_eq!(used, bytes.len());
    assert_eq!(decoded, r);
}

#[test]
fn command_ids() {
    for raw in 1..=24 {
        assert_eq!(CommandId::from_raw(raw).unwrap().raw(), raw);
    }
    assert_eq!(CommandId::from_raw(0), None);
    assert_eq!(CommandId::from_raw(25), None);
    assert_eq!(CommandId::SubmitCmd2.raw(), 24);
    assert_eq!(CommandId::CreateRenderer.raw(), 8);
    assert_eq!(PROTOCOL_VERSION, 3);
}

#[test]
fn header_bytes() {
    let h = Header { len: 2, cmd_id: 16 };
    assert_eq!(h.to_bytes().to_vec(), dwords(&[2, 16]));
    assert_eq!(Header::from_bytes(&h.to_bytes()).unwrap(), h);
    assert_eq!(
        Header::from_bytes(&[1, 2, 3]),
        Err(VtestError::TruncatedHeader { available: 3 })
    );
    // CREATE_RENDERER counts bytes, everything else dwords.
    assert_eq!(Header { len: 6, cmd_id: 8 }.request_body_size(), Ok(6));
    assert_eq!(Header { len: 6, cmd_id: 24 }.request_body_size(), Ok(24));
    assert_eq!(Header { len: 6, cmd_id: 8 }.response_body_size(), Ok(24));
}

#[test]
fn header_limits() {
    assert!(matches!(
        Header {
            len: u32::MAX,
            cmd_id: 24
        }
        .request_body_size(),
        Err(VtestError::Oversized { cmd_id: 24, .. })
    ));
    assert!(matches!(
        Header {
            len: u32::MAX,
            cmd_id: 16
        }
        .response_body_size(),
        Err(VtestError::Oversized { .. })
    ));
    let name_max = MAX_RENDERER_NAME_SIZE as u32;
    assert!(Header {
        len: name_max,
        cmd_id: 8
    }
    .request_body_size()
    .is_ok());
    assert!(Header {
        len: name_max + 1,
        cmd_id: 8
    }
    .request_body_size()
    .is_err());
    let dw_max = (MAX_BODY_SIZE / 4) as u32;
    assert!(Header {
        len: dw_max,
        cmd_id: 24
    }
    .request_body_size()
    .is_ok());
    assert!(Header {
        len: dw_max + 1,
        cmd_id: 24
    }
    .request_body_size()
    .is_err());
}

// ---- requests, byte-exact ----

#[test]
fn create_renderer() {
    // vtest_vcmd_create_renderer: len = strlen(name) + 1 in BYTES, then the name and
    // its NUL, unpadded.
    let mut expected = dwords(&[6, 8]);
    expected.extend_from_slice(b"venus\0");
    check_req(Request::create_renderer("venus"), expected);
    assert!(!Request::create_renderer("x").expects_response());
}

#[test]
fn ping_and_busy_wait_probe() {
    // vtest_vcmd_ping_protocol_version: a zero-length ping, then RESOURCE_BUSY_WAIT
    // {handle 0, flags 0}.
    check_req(Request::PingProtocolVersion, dwords(&[0, 10]));
    check_req(
        Request::ResourceBusyWait {
            handle: 0,
            flags: 0,
        },
        dwords(&[2, 7, 0, 0]),
    );
}

#[test]
fn protocol_version() {
    // vtest_vcmd_protocol_version
    check_req(Request::ProtocolVersion { version: 3 }, dwords(&[1, 11, 3]));
}

#[test]
fn get_param() {
    // vtest_vcmd_get_param(VCMD_PARAM_MAX_TIMELINE_COUNT)
    check_req(
        Request::GetParam {
            param: PARAM_MAX_TIMELINE_COUNT,
        },
        dwords(&[1, 15, 1]),
    );
}

#[test]
fn get_capset() {
    // vtest_vcmd_get_capset(VIRGL_RENDERER_CAPSET_VENUS, 0)
    check_req(
        Request::GetCapset { id: 4, version: 0 },
        dwords(&[2, 16, 4, 0]),
    );
}

#[test]
fn context_init() {
    // vtest_vcmd_context_init(VIRGL_RENDERER_CAPSET_VENUS)
    let r = Request::ContextInit { capset_id: 4 };
    assert!(!r.expects_response());
    check_req(r, dwords(&[1, 17, 4]));
}

#[test]
fn resource_create_blob() {
    // vtest_vcmd_resource_create_blob: type, flags, size lo/hi, blob id lo/hi.
    check_req(
        Request::ResourceCreateBlob {
            blob_type: BLOB_TYPE_HOST3D,
            flags: BLOB_FLAG_MAPPABLE,
            size: 0x1_0000_2000,
            blob_id: 0x7_0000_0005,
        },
        dwords(&[6, 18, 2, 1, 0x2000, 1, 5, 7]),
    );
}

#[test]
fn resource_unref() {
    // vtest_vcmd_resource_unref
    check_req(Request::ResourceUnref { res_id: 42 }, dwords(&[1, 3, 42]));
}

#[test]
fn sync_requests() {
    // vtest_vcmd_sync_create: value lo, hi
    check_req(
        Request::SyncCreate {
            initial_value: 0x2_0000_0001,
        },
        dwords(&[2, 19, 1, 2]),
    );
    // vtest_vcmd_sync_unref
    check_req(Request::SyncUnref { sync_id: 9 }, dwords(&[1, 20, 9]));
    // vtest_vcmd_sync_read
    check_req(Request::SyncRead { sync_id: 9 }, dwords(&[1, 21, 9]));
    // vtest_vcmd_sync_write: id, value lo, hi
    check_req(
        Request::SyncWrite {
            sync_id: 9,
            value: 0xa_0000_000b,
        },
        dwords(&[3, 22, 9, 0xb, 0xa]),
    );
}

#[test]
fn sync_wait() {
    // vtest_vcmd_sync_wait: len 2 + 3n; flags, timeout, then (id, lo, hi) per sync.
    check_req(
        Request::SyncWait {
            flags: SYNC_WAIT_FLAG_ANY,
            timeout_ms: 100,
            syncs: vec![
                SyncPoint {
                    sync_id: 3,
                    value: 5,
                },
                SyncPoint {
                    sync_id: 4,
                    value: 0x1_0000_0000,
                },
            ],
        },
        dwords(&[8, 23, 1, 100, 3, 5, 0, 4, 0, 1]),
    );
    check_req(
        Request::SyncWait {
            flags: 0,
            timeout_ms: SYNC_WAIT_TIMEOUT_INFINITE,
            syncs: vec![],
        },
        dwords(&[2, 23, 0, u32::MAX]),
    );
}

#[test]
fn submit_cmd2_simple() {
    // vn_renderer_submit_simple -> vtest_vcmd_submit_cmd2 with one batch, ring_idx 0,
    // no syncs: header 4 + 24 bytes (7 dwords), then the command stream.
    let r = Request::SubmitCmd2 {
        batches: vec![SubmitBatch {
            flags: SUBMIT_CMD2_FLAG_RING_IDX,
            ring_idx: 0,
            cmd: dwords(&[189, 0]), // two dwords standing in for a command stream
            syncs: vec![],
        }],
    };
    assert!(!r.expects_response());
    check_req(
        r,
        dwords(&[
            9, 24, 1, /* batch 0 */ 1, 7, 2, 9, 0, 0, /* cs */ 189, 0,
        ]),
    );
}

#[test]
fn submit_cmd2_with_syncs() {
    // vn_queue.c external-payload submit: vkWaitRingSeqnoMESA(ring, seqno) on ring 3
    // plus two syncs to signal: cs at dword 7 (after count + one 6-dword batch header),
    // 6 cs dwords, syncs at dword 13.
    let cmd = dwords(&[253, 0, 0x1000, 0, 0x40, 0]);
    let r = Request::SubmitCmd2 {
        batches: vec![SubmitBatch {
            flags: SUBMIT_CMD2_FLAG_RING_IDX,
            ring_idx: 3,
            cmd: cmd.clone(),
            syncs: vec![
                SyncPoint {
                    sync_id: 1,
                    value: 7,
                },
                SyncPoint {
                    sync_id: 2,
                    value: 0x3_0000_0004,
                },
            ],
        }],
    };
    let mut expected = dwords(&[19, 24, 1, 1, 7, 6, 13, 2, 3]);
    expected.extend_from_slice(&cmd);
    expected.extend_from_slice(&dwords(&[1, 7, 0, 2, 4, 3]));
    check_req(r, expected);
}

#[test]
fn submit_cmd2_two_batches_use_mesa_stride() {
    // Two batches: headers are 6 dwords each (sizeof(struct vcmd_submit_cmd2_batch)),
    // so the data starts at dword 13; all cs first, then all syncs.
    let r = Request::SubmitCmd2 {
        batches: vec![
            SubmitBatch {
                flags: 1,
                ring_idx: 1,
                cmd: dwords(&[0xaa]),
                syncs: vec![SyncPoint {
                    sync_id: 5,
                    value: 6,
                }],
            },
            SubmitBatch {
                flags: 1,
                ring_idx: 2,
                cmd: dwords(&[0xbb, 0xcc]),
                syncs: vec![],
            },
        ],
    };
    check_req(
        r,
        dwords(&[
            19, 24, 2, //
            1, 13, 1, 16, 1, 1, // batch 0
            1, 14, 2, 19, 0, 2, // batch 1
            0xaa, 0xbb, 0xcc, // cs
            5, 6, 0, // syncs
        ]),
    );
}

#[test]
fn submit_cmd2_pads_command_bytes() {
    let r = Request::SubmitCmd2 {
        batches: vec![SubmitBatch {
            flags: 1,
            ring_idx: 0,
            cmd: vec![1, 2, 3, 4, 5],
            syncs: vec![],
        }],
    };
    let bytes = enc_req(&r);
    assert_eq!(
        &bytes[8..],
        &dwords(&[1, 1, 7, 2, 9, 0, 0, 0x0403_0201, 5])[..]
    );
}

// ---- responses, byte-exact ----

#[test]
fn responses() {
    // vtest_ping_protocol_version: header only.
    check_resp(Response::PingProtocolVersion, dwords(&[0, 10]));
    // vtest_resource_busy_wait: len 1, busy flag.
    check_resp(
        Response::ResourceBusyWait { busy: false },
        dwords(&[1, 7, 0]),
    );
    // vtest_protocol_version: len 1 (Mesa asserts), version.
    check_resp(
        Response::ProtocolVersion { version: 3 },
        dwords(&[1, 11, 3]),
    );
    // vtest_get_param: len 2 (Mesa asserts), valid, value.
    check_resp(
        Response::GetParam {
            valid: true,
            value: 64,
        },
        dwords(&[2, 15, 1, 64]),
    );
    check_resp(
        Response::GetParam {
            valid: false,
            value: 0,
        },
        dwords(&[2, 15, 0, 0]),
    );
    // vtest_get_capset, unsupported: len 1, valid 0.
    check_resp(Response::GetCapset { data: None }, dwords(&[1, 16, 0]));
    // vtest_resource_create_blob: len 1 (Mesa asserts), res_id; fd follows.
    let blob = Response::ResourceCreateBlob { res_id: 7 };
    assert!(blob.carries_fd());
    check_resp(blob, dwords(&[1, 18, 7]));
    // vtest_sync_create: len 1, id.
    check_resp(Response::SyncCreate { sync_id: 2 }, dwords(&[1, 19, 2]));
    // vtest_sync_read: len 2, value lo, hi.
    check_resp(
        Response::SyncRead {
            value: 0x5_0000_0006,
        },
        dwords(&[2, 21, 6, 5]),
    );
    // vtest_sync_wait: len 0; fd follows.
    assert!(Response::SyncWait.carries_fd());
    check_resp(Response::SyncWait, dwords(&[0, 23]));
    assert!(!Response::SyncCreate { sync_id: 1 }.carries_fd());
}

#[test]
fn get_capset_response_with_venus_capset() {
    // len = 1 + 160 / 4, valid = 1, then the capset.
    let capset: Vec<u8> = (0..160u32).map(|i| i as u8).collect();
    let mut expected = dwords(&[41, 16, 1]);
    expected.extend_from_slice(&capset);
    check_resp(Response::GetCapset { data: Some(capset) }, expected);
}

#[test]
fn get_capset_response_pads() {
    let bytes = enc_resp(&Response::GetCapset {
        data: Some(vec![9, 9]),
    });
    assert_eq!(bytes, dwords(&[2, 16, 1, 0x0909]));
}

// ---- handshake stream ----

#[test]
fn handshake_stream_splits() {
    let mut stream = Vec::new();
    let msgs = [
        Request::create_renderer("vkcube"),
        Request::PingProtocolVersion,
        Request::ResourceBusyWait {
            handle: 0,
            flags: 0,
        },
        Request::ProtocolVersion { version: 3 },
        Request::GetParam { param: 1 },
        Request::GetCapset { id: 4, version: 0 },
        Request::ContextInit { capset_id: 4 },
    ];
    for m in &msgs {
        m.encode(&mut stream).unwrap();
    }
    // The name is 7 bytes, so everything after it is misaligned.
    assert_eq!(stream.len(), 8 + 7 + 8 + 16 + 12 + 12 + 16 + 12);
    let mut rest = &stream[..];
    for m in &msgs {
        let (decoded, used) = Request::decode_message(rest).unwrap();
        assert_eq!(&decoded, m);
        rest = &rest[used..];
    }
    assert!(rest.is_empty());
}

// ---- errors ----

#[test]
fn decode_errors() {
    assert_eq!(
        Request::decode(99, &[]),
        Err(VtestError::UnknownCommand(99))
    );
    assert_eq!(Response::decode(0, &[]), Err(VtestError::UnknownCommand(0)));
    assert_eq!(
        Request::decode(1, &[]),
        Err(VtestError::UnsupportedCommand(1))
    );
    assert_eq!(
        Response::decode(8, &[]),
        Err(VtestError::UnsupportedCommand(8))
    );
    assert_eq!(
        Response::decode(24, &[]),
        Err(VtestError::UnsupportedCommand(24))
    );
    assert_eq!(
        Request::decode(19, &dwords(&[1])),
        Err(VtestError::BodyLength {
            cmd_id: 19,
            expected: 8,
            actual: 4
        })
    );
    assert_eq!(
        Response::decode(15, &dwords(&[1, 2, 3])),
        Err(VtestError::BodyLength {
            cmd_id: 15,
            expected: 8,
            actual: 12
        })
    );
    assert_eq!(
        Request::decode(23, &[0; 9]),
        Err(VtestError::UnalignedBody { cmd_id: 23, len: 9 })
    );
    assert_eq!(
        Request::decode(23, &dwords(&[0])),
        Err(VtestError::SyncWaitLength { dwords: 1 })
    );
    assert_eq!(
        Request::decode(23, &dwords(&[0, 0, 1, 2])),
        Err(VtestError::SyncWaitLength { dwords: 4 })
    );
    assert_eq!(
        Response::decode(16, &[]),
        Err(VtestError::BodyTooShort {
            cmd_id: 16,
            min: 4,
            actual: 0
        })
    );
    assert_eq!(
        Response::decode(16, &dwords(&[0, 5])),
        Err(VtestError::InvalidCapsetResponse { len: 8 })
    );
}

#[test]
fn truncated_messages() {
    let bytes = enc_req(&Request::GetCapset { id: 4, version: 0 });
    assert_eq!(
        Request::decode_message(&bytes[..12]),
        Err(VtestError::TruncatedBody {
            cmd_id: 16,
            expected: 8,
            available: 4
        })
    );
    assert_eq!(
        Request::decode_message(&bytes[..5]),
        Err(VtestError::TruncatedHeader { available: 5 })
    );
    let mut big = dwords(&[u32::MAX, 24]);
    big.extend_from_slice(&[0; 16]);
    assert!(matches!(
        Request::decode_message(&big),
        Err(VtestError::Oversized { .. })
    ));
}

#[test]
fn submit_cmd2_decode_errors() {
    assert_eq!(
        Request::decode(24, &dwords(&[0])),
        Err(VtestError::EmptySubmit)
    );
    assert_eq!(
        Request::decode(24, &[]),
        Err(VtestError::BodyTooShort {
            cmd_id: 24,
            min: 4,
            actual: 0
        })
    );
    assert_eq!(
        Request::decode(24, &dwords(&[2, 1, 13, 0, 13, 0, 0])),
        Err(VtestError::BatchHeadersTruncated {
            batch_count: 2,
            body_dwords: 7
        })
    );
    // cmd range past the end.
    assert_eq!(
        Request::decode(24, &dwords(&[1, 1, 7, 3, 9, 0, 0, 0xaa, 0xbb])),
        Err(VtestError::BatchOutOfBounds { batch: 0 })
    );
    // sync range past the end.
    assert_eq!(
        Request::decode(24, &dwords(&[1, 1, 7, 0, 7, 1, 0, 0xaa, 0xbb])),
        Err(VtestError::BatchOutOfBounds { batch: 0 })
    );
    // Offsets near u32::MAX do not overflow.
    assert_eq!(
        Request::decode(
            24,
            &dwords(&[1, 1, u32::MAX, u32::MAX, u32::MAX, u32::MAX, 0])
        ),
        Err(VtestError::BatchOutOfBounds { batch: 0 })
    );
    // Two batches both pointing at the same data: more referenced than present.
    assert_eq!(
        Request::decode(
            24,
            &dwords(&[2, 1, 13, 1, 14, 0, 0, 1, 13, 1, 14, 0, 0, 0xaa])
        ),
        Err(VtestError::BatchDataOverlap)
    );
}

#[test]
fn submit_cmd2_decode_accepts_other_layouts() {
    // Data placed before the offsets Mesa would use is fine as long as it is in bounds.
    let body = dwords(&[1, 1, 7, 1, 8, 1, 5, 0xaa, 9, 0xb, 0]);
    let r = Request::decode(24, &body).unwrap();
    assert_eq!(
        r,
        Request::SubmitCmd2 {
            batches: vec![SubmitBatch {
                flags: 1,
                ring_idx: 5,
                cmd: dwords(&[0xaa]),
                syncs: vec![SyncPoint {
                    sync_id: 9,
                    value: 0xb
                }],
            }]
        }
    );
}

#[test]
fn encode_errors_leave_output_untouched() {
    let mut out = vec![0xee];
    assert_eq!(
        Request::SubmitCmd2 { batches: vec![] }.encode(&mut out),
        Err(VtestError::EmptySubmit)
    );
    let name = vec![b'a'; MAX_RENDERER_NAME_SIZE + 1];
    assert!(matches!(
        Request::CreateRenderer { name }.encode(&mut out),
        Err(VtestError::Oversized { cmd_id: 8, .. })
    ));
    let huge = Request::SubmitCmd2 {
        batches: vec![SubmitBatch {
            flags: 1,
            ring_idx: 0,
            cmd: vec![0; MAX_BODY_SIZE],
            syncs: vec![],
        }],
    };
    assert!(matches!(
        huge.encode(&mut out),
        Err(VtestError::Oversized { .. })
    ));
    assert!(matches!(
        Response::GetCapset {
            data: Some(vec![0; MAX_BODY_SIZE])
        }
        .encode(&mut out),
        Err(VtestError::Oversized { .. })
    ));
    assert_eq!(out, vec![0xee]);
}

#[test]
fn timeouts_like_mesa() {
    assert_eq!(poll_timeout_from_ns(0), 0);
    assert_eq!(poll_timeout_from_ns(1), 1);
    assert_eq!(poll_timeout_from_ns(1_000_000), 1);
    assert_eq!(poll_timeout_from_ns(1_000_001), 2);
    assert_eq!(poll_timeout_from_ns(u64::MAX), -1);
    assert_eq!(poll_timeout_from_ns((i32::MAX as u64 + 1) * 1_000_000), -1);
    assert_eq!(poll_timeout_from_ns(i32::MAX as u64 * 1_000_000), i32::MAX);
    assert_eq!(sync_wait_timeout(-1), u32::MAX);
    assert_eq!(sync_wait_timeout(0), 0);
    assert_eq!(sync_wait_timeout(250), 250);
}

#[test]
fn fixed_sizes() {
    assert_eq!(sizes::RES_CREATE_BLOB, 6);
    assert_eq!(sizes::SUBMIT_CMD2_BATCH, 6);
    assert_eq!(sizes::SYNC_ENTRY, 3);
    assert_eq!(HEADER_SIZE, 8);
}

// ---- property tests ----

fn sync_point() -> impl Strategy<Value = SyncPoint> {
    (any::<u32>(), any::<u64>()).prop_map(|(sync_id, value)| SyncPoint { sync_id, value })
}

fn batch() -> impl Strategy<Value = SubmitBatch> {
    (
        any::<u32>(),
        any::<u32>(),
        prop::collection::vec(any::<u32>(), 0..8),
        prop::collection::vec(sync_point(), 0..4),
    )
        .prop_map(|(flags, ring_idx, cmd, syncs)| SubmitBatch {
            flags,
            ring_idx,
            cmd: dwords(&cmd),
            syncs,
        })
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|name| Request::CreateRenderer { name }),
        Just(Request::PingProtocolVersion),
        (any::<u32>(), any::<u32>())
            .prop_map(|(handle, flags)| Request::ResourceBusyWait { handle, flags }),
        any::<u32>().prop_map(|version| Request::ProtocolVersion { version }),
        any::<u32>().prop_map(|param| Request::GetParam { param }),
        (any::<u32>(), any::<u32>()).prop_map(|(id, version)| Request::GetCapset { id, version }),
        any::<u32>().prop_map(|capset_id| Request::ContextInit { capset_id }),
        (any::<u32>(), any::<u32>(), any::<u64>(), any::<u64>()).prop_map(
            |(blob_type, flags, size, blob_id)| Request::ResourceCreateBlob {
                blob_type,
                flags,
                size,
                blob_id
            }
        ),
        any::<u32>().prop_map(|res_id| Request::ResourceUnref { res_id }),
        prop::collection::vec(batch(), 1..4).prop_map(|batches| Request::SubmitCmd2 { batches }),
        any::<u64>().prop_map(|initial_value| Request::SyncCreate { initial_value }),
        any::<u32>().prop_map(|sync_id| Request::SyncUnref { sync_id }),
        any::<u32>().prop_map(|sync_id| Request::SyncRead { sync_id }),
        (any::<u32>(), any::<u64>())
            .prop_map(|(sync_id, value)| Request::SyncWrite { sync_id, value }),
        (
            any::<u32>(),
            any::<u32>(),
            prop::collection::vec(sync_point(), 0..5)
        )
            .prop_map(|(flags, timeout_ms, syncs)| Request::SyncWait {
                flags,
                timeout_ms,
                syncs
            }),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        Just(Response::PingProtocolVersion),
        any::<bool>().prop_map(|busy| Response::ResourceBusyWait { busy }),
        any::<u32>().prop_map(|version| Response::ProtocolVersion { version }),
        (any::<bool>(), any::<u32>())
            .prop_map(|(valid, value)| Response::GetParam { valid, value }),
        prop::option::of(prop::collection::vec(any::<u32>(), 0..48)).prop_map(|d| {
            Response::GetCapset {
                data: d.map(|w| dwords(&w)),
            }
        }),
        any::<u32>().prop_map(|res_id| Response::ResourceCreateBlob { res_id }),
        any::<u32>().prop_map(|sync_id| Response::SyncCreate { sync_id }),
        any::<u64>().prop_map(|value| Response::SyncRead { value }),
        Just(Response::SyncWait),
    ]
}

proptest! {
    #[test]
    fn request_round_trip(r in request()) {
        let bytes = enc_req(&r);
        let (decoded, used) = Request::decode_message(&bytes).unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(decoded, r);
    }

    #[test]
    fn response_round_trip(r in response()) {
        let bytes = enc_resp(&r);
        let (decoded, used) = Response::decode_message(&bytes).unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(decoded, r);
    }

    #[test]
    fn random_bodies_never_panic(cmd_id in 0u32..32, body in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Request::decode(cmd_id, &body);
        let _ = Response::decode(cmd_id, &body);
    }

    #[test]
    fn random_streams_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Request::decode_message(&bytes);
        let _ = Response::decode_message(&bytes);
        let _ = Header::from_bytes(&bytes);
    }

    #[test]
    fn random_dword_bodies_never_panic(
        cmd_id in prop_oneof![Just(16u32), Just(23u32), Just(24u32), 0u32..32],
        words in prop::collection::vec(
            prop_oneof![0u32..16, Just(u32::MAX), Just(u32::MAX / 6 + 1), any::<u32>()],
            0..64,
        ),
    ) {
        let body = dwords(&words);
        if let Ok(r) = Request::decode(cmd_id, &body) {
            // Anything that decodes also re-encodes.
            let mut out = Vec::new();
            prop_assert!(r.encode(&mut out).is_ok());
        }
        let _ = Response::decode(cmd_id, &body);
    }
}
