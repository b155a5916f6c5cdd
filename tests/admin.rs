//! Topic administration through the 1C boundary on Apache Kafka 4.4.0 and 3.9.1: create,
//! list, delete, their errors, and a deleted topic staying deleted on a broker that creates
//! topics on demand (auto.create.topics.enable=true, Kafka's default).

mod host;
mod support;

use std::time::Duration;

use host::{quote, run_script, Platform};
use kafka1c::kafka::{runtime, Client, Config, Record};
use serde_json::{json, Value as Json};
use support::{Broker, KAFKA, KAFKA_3};

fn calls(script: &str) -> Vec<Json> {
    let run = run_script(Platform::Linux, script);
    run.assert_clean_memory();
    run.of("call").into_iter().cloned().collect()
}

fn connect(b: &Broker) -> String {
    format!(
        "new\ncall Connect {}\n",
        quote(&json!({"bootstrap.servers": b.bootstrap()}).to_string())
    )
}

/// Topic names ListTopics returns.
fn listed(call: &Json) -> Vec<String> {
    let list: Json = serde_json::from_str(call["ret"]["value"].as_str().unwrap()).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

fn create_list_delete(b: &Broker) {
    let topic = support::unique("admin");
    let missing = support::unique("missing");
    let c = calls(&format!(
        "{}call CreateTopic {t} 3 1 {cfg}\ncall ListTopics\ncall CreateTopic {t} 3 1\n\
         call DeleteTopic {m}\ncall DeleteTopic {t}\ncall СписокТем\ncall CreateTopic {bad} 1 1\n",
        connect(b),
        t = quote(&topic),
        m = quote(&missing),
        cfg = quote(r#"{"cleanup.policy":"compact","retention.ms":86400000}"#),
        bad = quote("no spaces allowed"),
    ));
    for i in [0, 1, 2, 5, 6] {
        assert_eq!(c[i]["ok"], true, "{}: {}", b.version(), c[i]);
    }
    let all: Vec<Json> = serde_json::from_str(c[2]["ret"]["value"].as_str().unwrap()).unwrap();
    let mine = all
        .iter()
        .find(|t| t["name"] == topic.as_str())
        .expect("listed");
    assert_eq!(mine["partitions"], 3);
    assert_eq!(mine["internal"], false);
    let e = c[3]["error"].as_str().unwrap();
    assert!(e.contains("already exists"), "{}: {e}", b.version());
    assert_eq!(
        c[4]["error"],
        format!("DeleteTopic: topic \"{missing}\" does not exist")
    );
    assert!(!listed(&c[6]).contains(&topic), "listed after DeleteTopic");
    let e = c[7]["error"].as_str().unwrap();
    assert!(e.contains("no spaces allowed"), "{}: {e}", b.version());
}

#[test]
fn kafka_create_list_delete_topics() {
    create_list_delete(Broker::kafka());
}

#[test]
fn kafka_3_create_list_delete_topics() {
    create_list_delete(Broker::kafka_version(KAFKA_3));
}

/// The broker creates any topic a Metadata request asks for by name with auto-creation
/// allowed. A topic deleted through us stays deleted: neither DeleteTopic's wait, nor a
/// producer's refresh of the topics it has seen (ListTopics put this one in its cache), nor a
/// later ListTopics asks for it that way. (It came back with 1 partition within a second.)
fn deleted_stays_deleted(b: &Broker) {
    let topic = support::unique("deleted");
    let other = support::unique("produced");
    let settings = json!({"bootstrap.servers": b.bootstrap(), "metadata.max.age.ms": 200});
    let busy = runtime::block_on(Client::connect(
        Config::from_json(&settings.to_string()).unwrap(),
    ))
    .unwrap();
    runtime::block_on(busy.create_topic(&topic, 4, 1, &[])).unwrap();
    runtime::block_on(busy.create_topic(&other, 1, 1, &[])).unwrap();
    let listed_before = runtime::block_on(busy.list_topics()).unwrap();
    assert!(listed_before.iter().any(|t| t.name == topic));

    let c = calls(&format!(
        "{}call DeleteTopic {t}\n",
        connect(b),
        t = quote(&topic)
    ));
    assert_eq!(c[1]["ok"], true, "{}", c[1]);
    // The producer keeps producing to another topic, refreshing its metadata every 200 ms.
    for i in 0..30 {
        let record = Record {
            topic: other.clone(),
            value: Some(format!("{i}").into()),
            ..Default::default()
        };
        runtime::block_on(busy.produce(record)).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    for round in 0..2 {
        let c = calls(&format!("{}call ListTopics\n", connect(b)));
        assert!(
            !listed(&c[1]).contains(&topic),
            "{}: the deleted topic is back (round {round})",
            b.version()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    runtime::block_on(busy.close(Duration::from_secs(5)));
}

#[test]
fn kafka_deleted_topic_stays_deleted_with_broker_auto_creation() {
    deleted_stays_deleted(Broker::kafka());
}

#[test]
fn kafka_3_deleted_topic_stays_deleted_with_broker_auto_creation() {
    deleted_stays_deleted(Broker::kafka_version(KAFKA_3));
}

/// What our suites assume of the shared brokers.
#[test]
fn shared_brokers_create_topics_on_demand() {
    for version in [KAFKA, KAFKA_3] {
        let b = Broker::kafka_version(version);
        assert_eq!(b.version(), version);
        let log = std::fs::read_to_string(b.node_log(1)).unwrap();
        assert!(
            log.contains("auto.create.topics.enable = true"),
            "{version}: broker config not logged or auto-creation off"
        );
    }
}
