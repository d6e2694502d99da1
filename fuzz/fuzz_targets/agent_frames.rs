//! Feeds arbitrary bytes to the agent protocol's frame decoder, in pieces of varying
//! size, and every decoded frame to the JSON message parsers and validators: nothing
//! may panic, allocate more than one maximal frame, or fail to re-encode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sandlab_proto::bytes::BytesMut;
use sandlab_proto::frame::{Frame, FrameDecoder, FrameKind, HEADER_LEN};
use sandlab_proto::messages::{self, Control, Hello, Reply, Request};
use sandlab_proto::validate::{check_control, check_request};
use sandlab_proto::MAX_PAYLOAD;

fuzz_target!(|data: &[u8]| {
    // The first byte picks how the stream is cut into reads.
    let Some((&cut, data)) = data.split_first() else {
        return;
    };
    let piece = usize::from(cut % 64) + 1;
    let mut decoder = FrameDecoder::new();
    let mut buf = BytesMut::new();
    for chunk in data.chunks(piece) {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => exercise(&frame),
                Ok(None) => break,
                // A real peer closes the connection here.
                Err(_) => return,
            }
        }
        assert!(buf.capacity() <= 2 * (HEADER_LEN + MAX_PAYLOAD) + data.len());
    }
});

fn exercise(frame: &Frame) {
    match frame.kind {
        FrameKind::Hello => {
            let _ = messages::decode::<Hello>(frame, FrameKind::Hello);
        }
        FrameKind::Open => {
            if let Ok(req) = messages::decode::<Request>(frame, FrameKind::Open) {
                let _ = check_request(&req);
            }
        }
        FrameKind::Reply => {
            let _ = messages::decode::<Reply>(frame, FrameKind::Reply);
        }
        FrameKind::Control => {
            if let Ok(ctl) = messages::decode::<Control>(frame, FrameKind::Control) {
                let _ = check_control(&ctl);
            }
        }
        FrameKind::Window => assert!(frame.window_credit().is_some()),
        _ => {}
    }
    // Whatever the decoder accepts, the encoder reproduces.
    let bytes = frame.to_bytes().expect("a decoded frame re-encodes");
    let mut again = BytesMut::from(&bytes[..]);
    let decoded = FrameDecoder::new().decode(&mut again).unwrap().unwrap();
    assert_eq!(&decoded, frame);
}
