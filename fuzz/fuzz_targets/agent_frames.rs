//! Feeds arbitrary bytes to the agent protocol's frame decoder, in pieces of varying
//! size, and every decoded frame to the JSON message parsers and validators (and a
//! hello's token to the agent's token check): nothing may panic, allocate more than
//! one maximal frame, or fail to re-encode, and the token check is plain equality.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sandlab_proto::bytes::BytesMut;
use sandlab_proto::frame::{Frame, FrameDecoder, FrameKind, HEADER_LEN};
use sandlab_proto::messages::{self, Control, Hello, Reply, Request};
use sandlab_proto::validate::{check_control, check_request};
use sandlab_proto::{AuthToken, MAX_PAYLOAD};

const TOKEN: &str = "fuzz-agent-token-0123456789";

fn agent_token() -> AuthToken {
    AuthToken::from_secret(TOKEN).expect("a valid token")
}

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
            if let Ok(hello) = messages::decode::<Hello>(frame, FrameKind::Hello) {
                // What an agent with a token does with every host's hello.
                let presented = hello.token.as_ref();
                let matches = presented.is_some_and(|t| t.expose() == TOKEN);
                assert_eq!(agent_token().verify(presented), matches);
            }
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
