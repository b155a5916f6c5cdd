mod support;
use bytes::Bytes;
use kafka1c::kafka::{runtime, Client, Config, Record};
use std::time::Duration;
#[test]
fn smoke() {
    for b in [support::Broker::tansu(), support::Broker::mock(3)] {
        let c = runtime::block_on(Client::connect(Config::from_bootstrap(b.bootstrap()).unwrap())).unwrap();
        let topic = support::unique("smoke");
        b.create_topic(&topic, 3, |t, p| runtime::block_on(c.create_topic(t, p, 1, &[])).unwrap());
        let d = runtime::block_on(c.produce(Record { topic: topic.clone(), key: Some(Bytes::from("k")), value: Some(Bytes::from("v")), ..Default::default() })).unwrap();
        eprintln!("{} delivered {d:?}", b.kind);
        for i in 0..100 { c.produce_async(Record { topic: topic.clone(), key: Some(Bytes::from(format!("k{i}"))), value: Some(Bytes::from("v")), ..Default::default() }).unwrap(); }
        let f = runtime::block_on(c.flush(Duration::from_secs(10)));
        eprintln!("{} flushed {} pending {} err {:?}", b.kind, f.reports.len(), f.pending, f.reports.iter().find(|r| r.result.is_err()));
        let lines = support::peer("consume.py", &["--bootstrap", b.bootstrap(), "--topic", &topic, "--count", "101", "--timeout", "30"], "");
        eprintln!("{} consumed {}", b.kind, lines.len());
        eprintln!("{:?}", runtime::block_on(c.list_topics()).unwrap());
    }
}
