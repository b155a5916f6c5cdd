mod support;
use kafka1c::kafka::{cluster::Cluster, runtime, Config};
#[test]
fn smoke() {
    for b in [support::Broker::tansu(), support::Broker::mock(3)] {
        let c = runtime::block_on(Cluster::connect(Config::from_bootstrap(b.bootstrap()).unwrap())).unwrap();
        runtime::block_on(c.refresh(None)).unwrap();
        eprintln!("{} controller {} topics {:?}", b.kind, c.controller(), c.topics().len());
    }
}
