//! An interactive run over a WebSocket, in Piston's `/api/v2/connect` protocol (see
//! `routes/compat.rs::piston_connect` for the messages): output streams as it comes and
//! stdin can be written while the program runs.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::engine::{Event, Input, Interactive, StepOutcome};
use super::{piston, CodeExecError};
use crate::audit::AuditEvent;
use crate::routes::ExecCaller;
use crate::state::AppState;

/// How long a client has to send `init`.
const INIT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest message a client may send (an init holds the files: 1 MiB of source, in
/// JSON).
pub const MAX_MESSAGE: usize = 3 << 20;
/// stdin messages held for the program (each at most `MAX_MESSAGE`, and stdin messages
/// in practice lines); past it the socket is not read until the program takes some.
const INPUT_QUEUE: usize = 8;
/// How long one message to the client may take; a client that does not read is gone.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

async fn send(socket: &mut WebSocket, v: Value) -> bool {
    let sending = socket.send(Message::Text(v.to_string().into()));
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, sending).await,
        Ok(Ok(()))
    )
}

async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.to_owned().into(),
        })))
        .await;
}

async fn fail(mut socket: WebSocket, code: u16, message: &str) {
    send(&mut socket, json!({"type": "error", "message": message})).await;
    // A close frame's reason is at most 123 bytes: cut at a character boundary.
    let mut end = message.len().min(120);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    close(socket, code, &message[..end]).await;
}

/// Text of `bytes` with an incomplete UTF-8 sequence at the end kept in `carry` for the
/// next chunk (a chunk boundary may split a character).
fn utf8_chunk(carry: &mut Vec<u8>, bytes: &[u8]) -> String {
    carry.extend_from_slice(bytes);
    let valid = match std::str::from_utf8(carry) {
        Ok(_) => carry.len(),
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(_) => carry.len(),
    };
    let text = String::from_utf8_lossy(&carry[..valid]).into_owned();
    carry.drain(..valid);
    text
}

fn signal_number(v: &Value) -> Option<i32> {
    match v {
        Value::Number(n) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
        Value::String(s) => Some(match s.trim_start_matches("SIG") {
            "HUP" => libc::SIGHUP,
            "INT" => libc::SIGINT,
            "QUIT" => libc::SIGQUIT,
            "KILL" => libc::SIGKILL,
            "USR1" => libc::SIGUSR1,
            "USR2" => libc::SIGUSR2,
            "TERM" => libc::SIGTERM,
            "STOP" => libc::SIGSTOP,
            "CONT" => libc::SIGCONT,
            _ => return None,
        }),
        _ => None,
    }
    .filter(|n| (1..=31).contains(n))
}

fn exit_json(stage: &str, o: &StepOutcome) -> Value {
    let p = piston::stage(o);
    json!({
        "type": "exit", "stage": stage, "code": p.code, "signal": p.signal,
        "status": p.status, "message": p.message,
        "cpu_time": p.cpu_time, "wall_time": p.wall_time, "memory": p.memory,
    })
}

/// Serves one interactive job on `socket`.
pub async fn serve(mut socket: WebSocket, state: AppState, caller: ExecCaller) {
    let init = match tokio::time::timeout(INIT_TIMEOUT, socket.recv()).await {
        Err(_) => return fail(socket, 4001, "Initialization Timeout").await,
        Ok(None | Some(Err(_))) => return,
        Ok(Some(Ok(Message::Text(t)))) => t,
        Ok(Some(Ok(_))) => return fail(socket, 4003, "Not yet Initialized").await,
    };
    let mut init: Value = match serde_json::from_str(init.as_str()) {
        Ok(v) => v,
        Err(e) => return fail(socket, 4002, &format!("The init message is not JSON: {e}.")).await,
    };
    if init.get("type").and_then(Value::as_str) != Some("init") {
        return fail(socket, 4003, "Not yet Initialized").await;
    }
    if let Some(o) = init.as_object_mut() {
        o.remove("type");
    }
    let req: piston::PistonRequest = match serde_json::from_value(init) {
        Ok(r) => r,
        Err(e) => {
            return fail(
                socket,
                4002,
                &format!("The init message is not an execute request: {e}."),
            )
            .await
        }
    };
    let engine = state.execute().clone();
    let prepared = (|| -> Result<_, CodeExecError> {
        let (language, version) = piston::language_of(&req)?;
        let lang = engine.resolve(language, Some(version))?.clone();
        Ok(lang)
    })();
    let lang = match prepared {
        Ok(l) => l,
        Err(e) => return fail(socket, 4002, &e.to_string()).await,
    };
    let files = req.files.as_ref().map_or(0, Vec::len);
    let job = match piston::job(req, lang, engine.options().network) {
        Ok(j) => j,
        Err(e) => return fail(socket, 4002, &e.to_string()).await,
    };
    let ticket = match engine.admit(&caller.owner) {
        Ok(t) => t,
        Err(b) => return fail(socket, 4002, &CodeExecError::Busy(b).to_string()).await,
    };
    state
        .audit(
            caller.user_id.as_deref(),
            AuditEvent::CodeExecute {
                language: &job.lang.name,
                files,
            },
        )
        .await;
    if !send(
        &mut socket,
        json!({"type": "runtime", "language": job.lang.name, "version": job.lang.version}),
    )
    .await
    {
        return;
    }
    let (events_tx, mut events) = mpsc::channel::<Event>(64);
    let (input, input_rx) = mpsc::channel::<Input>(INPUT_QUEUE);
    let mut run = tokio::spawn({
        let engine = engine.clone();
        async move {
            engine
                .run(
                    ticket,
                    job,
                    Some(Interactive {
                        events: events_tx,
                        input: input_rx,
                    }),
                )
                .await
        }
    });
    let (mut out_carry, mut err_carry) = (Vec::new(), Vec::new());
    let mut client_gone = false;
    let shutdown = state.shutdown().clone();
    let result = loop {
        tokio::select! {
            ev = events.recv() => {
                let msg = match ev {
                    Some(Event::Stage(s)) => json!({"type": "stage", "stage": s.as_str()}),
                    Some(Event::Stdout(b)) => {
                        json!({"type": "data", "stream": "stdout", "data": utf8_chunk(&mut out_carry, &b)})
                    }
                    Some(Event::Stderr(b)) => {
                        json!({"type": "data", "stream": "stderr", "data": utf8_chunk(&mut err_carry, &b)})
                    }
                    Some(Event::Exit(stage, o)) => exit_json(stage.as_str(), &o),
                    None => break (&mut run).await,
                };
                // A client that does not read within the send timeout is gone: the
                // program ends, and what is left of its output is dropped.
                if !client_gone && !send(&mut socket, msg).await {
                    client_gone = true;
                    let _ = input.send(Input::Signal(libc::SIGKILL)).await;
                }
            }
            msg = socket.recv(), if !client_gone => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        // Nobody is listening: end the program.
                        client_gone = true;
                        let _ = input.send(Input::Signal(libc::SIGKILL)).await;
                        continue;
                    }
                    Some(Ok(_)) => continue,
                };
                let msg: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
                let sent = match msg.get("type").and_then(Value::as_str) {
                    Some("data") if msg.get("stream").and_then(Value::as_str) == Some("stdin") => {
                        let data = msg.get("data").and_then(Value::as_str).unwrap_or("");
                        input.send(Input::Stdin(data.as_bytes().to_vec())).await
                    }
                    Some("data") => {
                        send(&mut socket, json!({"type": "error", "message": "Can only write to stdin"})).await;
                        Ok(())
                    }
                    Some("eof") => input.send(Input::Eof).await,
                    Some("signal") => match msg.get("signal").and_then(signal_number) {
                        Some(n) => input.send(Input::Signal(n)).await,
                        None => {
                            send(&mut socket, json!({"type": "error", "message": "Invalid Signal"})).await;
                            Ok(())
                        }
                    },
                    Some("init") => {
                        send(&mut socket, json!({"type": "error", "message": "Already Initialized"})).await;
                        Ok(())
                    }
                    _ => {
                        send(&mut socket, json!({"type": "error", "message": "Unknown message type"})).await;
                        Ok(())
                    }
                };
                // The program's stdin is gone (it finished): later input has nowhere to go.
                let _ = sent;
            }
            () = shutdown.cancelled(), if !client_gone => {
                let _ = input.send(Input::Signal(libc::SIGKILL)).await;
                client_gone = true;
            }
        }
    };
    match result {
        Ok(Ok(_)) => close(socket, 4999, "Job Completed").await,
        Ok(Err(e)) => fail(socket, 4002, &e.to_string()).await,
        Err(e) => fail(socket, 4002, &format!("The job failed: {e}.")).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_characters_wait_for_their_rest() {
        let mut carry = Vec::new();
        let euro = "€".as_bytes();
        assert_eq!(utf8_chunk(&mut carry, &[b'a', euro[0]]), "a");
        assert_eq!(utf8_chunk(&mut carry, &euro[1..]), "€");
        assert_eq!(utf8_chunk(&mut carry, &[0xff, b'b']), "\u{fffd}b");
        assert!(carry.is_empty());
    }

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(signal_number(&json!("SIGINT")), Some(libc::SIGINT));
        assert_eq!(signal_number(&json!("KILL")), Some(libc::SIGKILL));
        assert_eq!(signal_number(&json!(15)), Some(15));
        assert_eq!(signal_number(&json!(99)), None);
        assert_eq!(signal_number(&json!("SIGNOPE")), None);
    }
}
