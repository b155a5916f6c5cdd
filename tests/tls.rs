//! `security.protocol=SSL` through the 1C boundary: produce and consume over TLS, and a clear
//! error when the broker's certificate is not trusted.

mod host;
mod support;

use host::{quote, run_script, Platform};
use serde_json::json;
use support::Broker;

#[test]
fn produce_and_consume_over_tls_and_refuse_an_untrusted_certificate() {
    let b = Broker::tansu_tls();
    let ca = b.ca.clone().expect("CA file");
    let topic = support::unique("tls");
    let good = json!({"bootstrap.servers": b.bootstrap(), "security.protocol": "SSL", "ssl.ca.location": ca,
                      "group.id": support::unique("g"), "auto.offset.reset": "earliest",
                      "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000});
    let untrusted = json!({"bootstrap.servers": b.bootstrap(), "security.protocol": "SSL",
                           "socket.connection.setup.timeout.ms": 5000});
    let run = run_script(
        Platform::Linux,
        &format!(
            "new\ncall Connect {g}\ncall CreateTopic {t} 1 1\ncall Produce {t} \"over TLS\" \"k\"\n\
             call Subscribe {t}\ncall Poll 20000\nget Value\ncall Close\ncall Connect {u}\n\
             call Connect {m}\n",
            g = quote(&good.to_string()),
            t = quote(&topic),
            u = quote(&untrusted.to_string()),
            m = quote(r#"{"bootstrap.servers":"127.0.0.1:9","ssl.ca.location":"/no/such/file.pem","security.protocol":"SSL"}"#),
        ),
    );
    run.assert_clean_memory();
    let calls = run.of("call");
    for c in &calls[..6] {
        assert_eq!(c["ok"], true, "{c}");
    }
    assert_eq!(
        calls[4]["ret"]["value"], true,
        "a record came back over TLS"
    );
    assert_eq!(run.of("get")[0]["value"]["value"], "over TLS");
    let e = calls[6]["error"].as_str().unwrap();
    assert!(
        e.contains("TLS handshake failed") && e.contains("certificate"),
        "{e}"
    );
    let e = calls[7]["error"].as_str().unwrap();
    assert!(
        e.contains("ssl.ca.location") && e.contains("/no/such/file.pem"),
        "{e}"
    );
}
