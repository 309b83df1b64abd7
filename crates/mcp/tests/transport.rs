//! The stdio framing without a process: what `LineTransport` hands rmcp, and what it answers
//! by itself, for every kind of line a client can send.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use rmcp::model::{ClientRequest, JsonRpcMessage, NumberOrString};
use rmcp::transport::Transport;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;
use warden_mcp::transport::LineTransport;

fn request(id: i64, method: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": method}).to_string()
}

/// The id and method of a request `receive` handed on.
fn id_and_method<N: serde::Serialize, R: serde::Serialize>(
    message: JsonRpcMessage<ClientRequest, R, N>,
) -> (NumberOrString, &'static str) {
    match message {
        JsonRpcMessage::Request(r) => {
            let method = match r.request {
                ClientRequest::PingRequest(_) => "ping",
                ClientRequest::ListToolsRequest(_) => "tools/list",
                _ => "other",
            };
            (r.id, method)
        }
        other => panic!("not a request: {}", serde_json::to_string(&other).unwrap()),
    }
}

/// Everything the transport wrote, one JSON message per line.
async fn written(mut out: tokio::io::DuplexStream) -> Vec<Value> {
    let mut text = String::new();
    out.read_to_string(&mut text).await.unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[tokio::test]
async fn bad_lines_are_answered_in_order_good_ones_handed_on_and_eof_fires_the_token() {
    let oversized = format!(
        r#"{{"jsonrpc":"2.0","id":9,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(200)
    );
    let input = [
        "".to_owned(),
        "   ".to_owned(),
        "not json".to_owned(),
        r#"{"id":3,"hello":1}"#.to_owned(),
        r#"{"id":"s","jsonrpc":"2.0"}"#.to_owned(),
        // A notification of no method MCP defines: handed on (rmcp ignores it), never answered.
        r#"{"jsonrpc":"2.0","method":"notifications/unknown","params":{}}"#.to_owned(),
        // A byte-order mark and a CRLF line end are tolerated.
        format!("\u{feff}{}\r", request(4, "ping")),
        oversized,
        request(5, "tools/list"),
    ]
    .join("\n")
        + "\n";
    let (write, out) = tokio::io::duplex(1 << 20);
    let closed = CancellationToken::new();
    let mut transport = LineTransport::new(std::io::Cursor::new(input.into_bytes()), write)
        .with_max_message_bytes(128)
        .cancel_on_close(closed.clone());

    let custom = serde_json::to_value(transport.receive().await.unwrap()).unwrap();
    assert_eq!(custom["method"], "notifications/unknown", "{custom}");
    assert!(custom.get("id").is_none());
    let first = transport.receive().await.unwrap();
    assert_eq!(id_and_method(first), (NumberOrString::Number(4), "ping"));
    let second = transport.receive().await.unwrap();
    assert_eq!(
        id_and_method(second),
        (NumberOrString::Number(5), "tools/list")
    );
    assert!(!closed.is_cancelled());
    assert!(transport.receive().await.is_none(), "end of input");
    assert!(closed.is_cancelled(), "the end of input stops the runs");
    drop(transport);

    let errors = written(out).await;
    let codes: Vec<(i64, Value)> = errors
        .iter()
        .map(|e| (e["error"]["code"].as_i64().unwrap(), e["id"].clone()))
        .collect();
    assert_eq!(
        codes,
        [
            (-32700, Value::Null),
            (-32600, json!(3)),
            (-32600, json!("s")),
            (-32600, Value::Null),
        ],
        "{errors:?}"
    );
    assert!(
        errors[3]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("longer than 128 bytes"),
        "{errors:?}"
    );
    assert!(errors.iter().all(|e| e["jsonrpc"] == "2.0"));
}

#[tokio::test]
async fn a_read_cancelled_mid_line_keeps_what_it_read() {
    let (mut client, server_read) = tokio::io::duplex(1 << 16);
    let (write, _out) = tokio::io::duplex(1 << 16);
    let mut transport = LineTransport::new(server_read, write);
    let line = request(7, "ping");
    let (head, tail) = line.split_at(line.len() / 2);
    client.write_all(head.as_bytes()).await.unwrap();
    // rmcp polls `receive` in a `select!`: a read given up halfway must not lose the head.
    let given_up = tokio::time::timeout(Duration::from_millis(100), transport.receive()).await;
    assert!(given_up.is_err(), "half a line is no message");
    client.write_all(tail.as_bytes()).await.unwrap();
    client.write_all(b"\n").await.unwrap();
    let message = transport.receive().await.unwrap();
    assert_eq!(id_and_method(message), (NumberOrString::Number(7), "ping"));
}

#[tokio::test]
async fn an_oversized_line_is_skipped_to_its_end_and_the_next_line_still_read() {
    // Longer than the limit and than the reader's buffer, so it arrives in many pieces.
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "y".repeat(64 * 1024)
    );
    let input = format!("{huge}\n{}\n", request(2, "ping"));
    let (write, out) = tokio::io::duplex(1 << 20);
    let mut transport = LineTransport::new(std::io::Cursor::new(input.into_bytes()), write)
        .with_max_message_bytes(1024);
    let message = transport.receive().await.unwrap();
    assert_eq!(id_and_method(message), (NumberOrString::Number(2), "ping"));
    assert!(transport.receive().await.is_none());
    drop(transport);
    let errors = written(out).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["error"]["code"], -32600);
}
