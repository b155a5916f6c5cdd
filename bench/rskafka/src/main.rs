//! Peer contender: rskafka.
//!
//!   rskafka-bench --bootstrap HOST:PORT --scenario NAME --topic TOPIC
//!                 --size BYTES --count N [--linger-ms L]
//!
//! Diagnostics go to stderr; exactly one JSON result line goes to stdout.
//! rskafka always produces with acks=all (-1) and a 30 s timeout (hard-coded in its
//! produce request), and never compresses here. It has no per-message consumer poll,
//! so consume-poll exits with code 3.
//! BENCH_FETCH_WAIT_MS, when set, overrides the fetch max wait (e2e 500 ms, as
//! librdkafka's default; consume-batch 100 ms).

use std::collections::BTreeMap;
use std::error::Error;
use std::process::exit;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use rskafka::client::partition::{Compression, OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::producer::aggregator::RecordAggregator;
use rskafka::client::producer::BatchProducerBuilder;
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

const BATCH: usize = 1000;
const MAX_BATCH_BYTES: usize = 1_000_000;
// Fetch byte range: at least 1 byte, at most 1 MiB (librdkafka's per-partition default).
const FETCH_BYTES: std::ops::Range<i32> = 1..1_048_577;
// Give up when nothing moves for this long; the run has failed then.
const STALL: Duration = Duration::from_secs(60);

struct Args {
    bootstrap: String,
    scenario: String,
    topic: String,
    size: usize,
    count: usize,
    linger_ms: u64,
}

struct Outcome {
    count: usize,
    secs: f64,
    lat: Vec<f64>, // seconds per message; empty when not measured
}

fn usage(msg: &str) -> ! {
    eprintln!("error: {msg}");
    eprintln!(
        "usage: rskafka-bench --bootstrap HOST:PORT --scenario NAME --topic TOPIC \
         --size BYTES --count N [--linger-ms L]"
    );
    exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        bootstrap: String::new(),
        scenario: String::new(),
        topic: String::new(),
        size: usize::MAX,
        count: 0,
        linger_ms: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        let num = |v: &str| -> u64 {
            v.parse().unwrap_or_else(|_| usage(&format!("{flag}: not a number: {v}")))
        };
        match flag.as_str() {
            "--bootstrap" => a.bootstrap = v,
            "--scenario" => a.scenario = v,
            "--topic" => a.topic = v,
            "--size" => a.size = num(&v) as usize,
            "--count" => a.count = num(&v) as usize,
            "--linger-ms" => a.linger_ms = num(&v),
            _ => usage(&format!("unknown argument {flag}")),
        }
    }
    if a.bootstrap.is_empty() || a.scenario.is_empty() || a.topic.is_empty() {
        usage("--bootstrap, --scenario and --topic are required");
    }
    if a.size == usize::MAX || a.count == 0 {
        usage("--size and a positive --count are required");
    }
    a
}

fn fetch_wait_ms(default: i32) -> i32 {
    std::env::var("BENCH_FETCH_WAIT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn record(value: &[u8]) -> Record {
    Record {
        key: None,
        value: Some(value.to_vec()),
        headers: BTreeMap::new(),
        timestamp: Utc::now(),
    }
}

async fn partition_clients(client: &Client, topic: &str) -> Res<Vec<Arc<PartitionClient>>> {
    let topics = client.list_topics().await?;
    let t = topics
        .iter()
        .find(|t| t.name == topic)
        .ok_or_else(|| format!("topic {topic} does not exist"))?;
    let mut out = Vec::new();
    for &p in &t.partitions {
        // Creating the client also connects to the leader, before any clock starts.
        let pc = client
            .partition_client(topic, p, UnknownTopicHandling::Retry)
            .await?;
        out.push(Arc::new(pc));
    }
    if out.is_empty() {
        return Err(format!("topic {topic} has no partitions").into());
    }
    Ok(out)
}

async fn produce_async(a: &Args, pcs: &[Arc<PartitionClient>]) -> Res<Outcome> {
    let producers: Vec<_> = pcs
        .iter()
        .map(|pc| {
            Arc::new(
                BatchProducerBuilder::new(Arc::clone(pc))
                    .with_linger(Duration::from_millis(a.linger_ms))
                    .with_compression(Compression::NoCompression)
                    .build(RecordAggregator::new(MAX_BATCH_BYTES)),
            )
        })
        .collect();
    let value = vec![b'x'; a.size];
    let mut tasks = JoinSet::new();
    let t0 = Instant::now();
    for i in 0..a.count {
        let p = Arc::clone(&producers[i % producers.len()]);
        let r = record(&value);
        tasks.spawn(async move { p.produce(r).await });
    }
    let mut ok = 0;
    while let Some(r) = tasks.join_next().await {
        r??;
        ok += 1;
    }
    Ok(Outcome { count: ok, secs: t0.elapsed().as_secs_f64(), lat: vec![] })
}

async fn produce_sync(a: &Args, pcs: &[Arc<PartitionClient>]) -> Res<Outcome> {
    let value = vec![b'x'; a.size];
    let mut lat = Vec::with_capacity(a.count);
    let t0 = Instant::now();
    for i in 0..a.count {
        let s = Instant::now();
        pcs[i % pcs.len()]
            .produce(vec![record(&value)], Compression::NoCompression)
            .await?;
        lat.push(s.elapsed().as_secs_f64());
    }
    Ok(Outcome { count: lat.len(), secs: t0.elapsed().as_secs_f64(), lat })
}

async fn produce_batch(a: &Args, pcs: &[Arc<PartitionClient>]) -> Res<Outcome> {
    let value = vec![b'x'; a.size];
    let mut done = 0;
    let t0 = Instant::now();
    for call in 0.. {
        if done >= a.count {
            break;
        }
        let n = BATCH.min(a.count - done);
        let records = (0..n).map(|_| record(&value)).collect();
        let offsets = pcs[call % pcs.len()]
            .produce(records, Compression::NoCompression)
            .await?;
        done += offsets.len();
    }
    Ok(Outcome { count: done, secs: t0.elapsed().as_secs_f64(), lat: vec![] })
}

async fn consume_batch(a: &Args, pcs: &[Arc<PartitionClient>]) -> Res<Outcome> {
    let wait = fetch_wait_ms(100);
    // One fetch loop per partition, all concurrent; each reports when a response arrived
    // and how many records it held (timed at arrival, not when this loop sees it).
    let (tx, mut rx) = mpsc::unbounded_channel::<Res<(Instant, usize)>>();
    let mut tasks = JoinSet::new();
    for pc in pcs {
        let pc = Arc::clone(pc);
        let tx = tx.clone();
        let mut offset = pc.get_offset(OffsetAt::Earliest).await?;
        tasks.spawn(async move {
            loop {
                match pc.fetch_records(offset, FETCH_BYTES, wait).await {
                    Ok((recs, _high_watermark)) => {
                        let at = Instant::now();
                        if let Some(last) = recs.last() {
                            offset = last.offset + 1;
                            if tx.send(Ok((at, recs.len()))).is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.into()));
                        return;
                    }
                }
            }
        });
    }
    drop(tx);
    let mut got = 0;
    let (mut first, mut last): (Option<Instant>, Option<Instant>) = (None, None);
    while got < a.count {
        let (at, n) = match tokio::time::timeout(STALL, rx.recv()).await {
            Ok(Some(r)) => r?,
            Ok(None) => return Err("all fetch loops ended".into()),
            Err(_) => return Err(format!("stalled at {got}/{} messages", a.count).into()),
        };
        first = Some(first.map_or(at, |f| f.min(at)));
        last = Some(last.map_or(at, |l| l.max(at)));
        got += n;
    }
    let secs = match (first, last) {
        (Some(f), Some(l)) => (l - f).as_secs_f64(),
        _ => 0.0,
    };
    tasks.abort_all();
    // A fetch returns whole responses, so the last one may overshoot --count.
    Ok(Outcome { count: got, secs, lat: vec![] })
}

/// A run id and sequence number lead the value when they fit, so each round trip is
/// matched to its own message.
fn e2e_value(run: &str, seq: i64, size: usize) -> Vec<u8> {
    let tag = format!("{run}-{seq}-");
    let mut v = vec![b'x'; size];
    if tag.len() <= size {
        v[..tag.len()].copy_from_slice(tag.as_bytes());
    }
    v
}

async fn e2e(a: &Args) -> Res<Outcome> {
    // Producer and reader on separate clients (separate connections), as separate
    // producer and consumer processes would be.
    let prod = ClientBuilder::new(vec![a.bootstrap.clone()]).build().await?;
    let cons = ClientBuilder::new(vec![a.bootstrap.clone()]).build().await?;
    let p = prod
        .partition_client(a.topic.as_str(), 0, UnknownTopicHandling::Retry)
        .await?;
    let c = cons
        .partition_client(a.topic.as_str(), 0, UnknownTopicHandling::Retry)
        .await?;
    let wait = fetch_wait_ms(500);
    let run = format!("{}.{}", std::process::id(), Utc::now().timestamp_micros());

    let mut lat = Vec::with_capacity(a.count);
    let mut fetches = 0usize;
    let mut t0 = Instant::now();
    for seq in -1..a.count as i64 {
        if seq == 0 {
            t0 = Instant::now(); // seq -1 was the unmeasured warm-up
        }
        let value = e2e_value(&run, seq, a.size);
        let s = Instant::now();
        // PartitionClient::produce only returns with the ack (and the offset to read);
        // rskafka has no fire-and-forget produce.
        let offsets = p
            .produce(vec![record(&value)], Compression::NoCompression)
            .await?;
        let offset = *offsets.first().ok_or("produce returned no offset")?;
        let took = loop {
            let (recs, _) = c.fetch_records(offset, FETCH_BYTES, wait).await?;
            fetches += 1;
            if let Some(r) = recs.iter().find(|r| r.offset == offset) {
                let took = s.elapsed().as_secs_f64();
                if r.record.value.as_deref() != Some(&value[..]) {
                    return Err(format!("round trip {seq}: unexpected message at {offset}").into());
                }
                break took;
            }
            if s.elapsed() > STALL {
                return Err(format!("round trip {seq}: message never arrived").into());
            }
        };
        if seq < 0 {
            eprintln!("warm-up round trip took {took:.3}s");
        } else {
            lat.push(took);
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    // More fetches than round trips means the acked record was not yet readable.
    eprintln!("{fetches} fetch requests for {} round trips", a.count + 1);
    Ok(Outcome { count: lat.len(), secs, lat })
}

async fn run(a: &Args) -> Res<Outcome> {
    if a.scenario == "e2e" {
        return e2e(a).await;
    }
    let client = ClientBuilder::new(vec![a.bootstrap.clone()]).build().await?;
    let pcs = partition_clients(&client, &a.topic).await?;
    match a.scenario.as_str() {
        "produce-async" => produce_async(a, &pcs).await,
        "produce-sync" => produce_sync(a, &pcs).await,
        "produce-batch" => produce_batch(a, &pcs).await,
        "consume-batch" => consume_batch(a, &pcs).await,
        other => Err(format!("unsupported scenario {other}").into()),
    }
}

/// Nearest-rank, the same rule as the librdkafka contenders.
fn percentile_us(sorted: &[f64], q: f64) -> String {
    if sorted.is_empty() {
        return "null".into();
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    format!("{:.3}", sorted[i] * 1e6)
}

#[tokio::main]
async fn main() {
    let a = parse_args();
    match a.scenario.as_str() {
        "produce-async" | "produce-sync" | "produce-batch" | "consume-batch" | "e2e" => {}
        "consume-poll" => {
            eprintln!("unsupported: rskafka has no per-message consumer poll");
            exit(3)
        }
        other => usage(&format!("unsupported scenario {other}")),
    }
    let mut out = match run(&a).await {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            exit(1)
        }
    };
    out.lat.sort_by(f64::total_cmp);
    println!(
        "{{\"scenario\": \"{}\", \"count\": {}, \"secs\": {:.9}, \"p50_us\": {}, \"p99_us\": {}}}",
        a.scenario,
        out.count,
        out.secs,
        percentile_us(&out.lat, 0.50),
        percentile_us(&out.lat, 0.99)
    );
}
