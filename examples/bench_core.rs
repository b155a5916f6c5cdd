//! Contender: the kafka1c Kafka core called from Rust directly, without the 1C boundary, so its
//! numbers next to `bench/kafka1c_emulator.py` show what the boundary costs.
//!
//! ```text
//! cargo build --release --example bench_core
//! target/release/examples/bench_core --bootstrap HOST:PORT --scenario NAME --topic TOPIC
//!     --size BYTES --count N [--linger-ms L] [--timeout-s S]
//! ```
//!
//! Scenarios: produce-async, produce-sync, produce-batch, consume-poll, consume-batch, e2e.
//! Diagnostics go to stderr; one JSON line goes to stdout.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Map, Value as Json};

use kafka1c::kafka::config::{Compression, OffsetReset};
use kafka1c::kafka::consumer::{Consumer, Run};
use kafka1c::kafka::{runtime, Client, Config, Record};

const BATCH: usize = 1000;
/// How long one Poll waits; loops give up after `--timeout-s`.
const POLL: Duration = Duration::from_secs(1);
const CLOSE: Duration = Duration::from_secs(30);

struct Args {
    bootstrap: String,
    scenario: String,
    topic: String,
    size: usize,
    count: usize,
    linger_ms: u64,
    /// From BENCH_FETCH_WAIT_MS, the same for every contender.
    fetch_wait_ms: u64,
    timeout: Duration,
}

type Outcome = Result<Map<String, Json>, String>;

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        bootstrap: String::new(),
        scenario: String::new(),
        topic: String::new(),
        size: 0,
        count: 0,
        linger_ms: 5,
        fetch_wait_ms: std::env::var("BENCH_FETCH_WAIT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(500),
        timeout: Duration::from_secs(120),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: {value:?} is not a whole number"))
        };
        match flag.as_str() {
            "--bootstrap" => a.bootstrap = value.clone(),
            "--scenario" => a.scenario = value.clone(),
            "--topic" => a.topic = value.clone(),
            "--size" => a.size = number()? as usize,
            "--count" => a.count = number()? as usize,
            "--linger-ms" => a.linger_ms = number()?,
            "--timeout-s" => a.timeout = Duration::from_secs(number()?),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if a.bootstrap.is_empty() || a.scenario.is_empty() || a.topic.is_empty() || a.count == 0 {
        return Err(
            "--bootstrap, --scenario, --topic, --size and --count (> 0) are required".into(),
        );
    }
    Ok(a)
}

fn producer_config(a: &Args, linger_ms: u64) -> Result<Config, String> {
    let mut c = Config::from_bootstrap(&a.bootstrap).map_err(|e| e.to_string())?;
    c.acks = -1;
    c.enable_idempotence = Some(true);
    c.compression = Compression::None;
    c.batch_size = 1_000_000;
    c.linger_ms = linger_ms;
    Ok(c)
}

/// A fresh group each run, so earlier runs' offsets never matter.
fn consumer_config(a: &Args) -> Result<(Config, String), String> {
    let mut c = Config::from_bootstrap(&a.bootstrap).map_err(|e| e.to_string())?;
    let group = format!("kafka1c-core-bench-{:016x}", rand::random::<u64>());
    c.group_id = Some(group.clone());
    c.auto_offset_reset = OffsetReset::Earliest;
    c.enable_auto_commit = false;
    c.session_timeout_ms = 6000;
    c.fetch_max_wait_ms = a.fetch_wait_ms as i32;
    Ok((c, group))
}

/// A record as an application would make it: its own copy of the payload.
fn record(topic: &str, value: &[u8]) -> Record {
    Record {
        topic: topic.to_string(),
        value: Some(Bytes::copy_from_slice(value)),
        ..Record::default()
    }
}

/// Nearest-rank percentile in µs of nanosecond samples (sorted here).
fn percentiles_us(ns: &mut [u64]) -> (Json, Json) {
    if ns.is_empty() {
        return (Json::Null, Json::Null);
    }
    ns.sort_unstable();
    let at = |pct: usize| {
        let k = (ns.len() * pct).div_ceil(100).max(1);
        json!(ns[k - 1] as f64 / 1000.0)
    };
    (at(50), at(99))
}

fn result(count: usize, secs: f64, mut lat: Vec<u64>) -> Map<String, Json> {
    let (p50, p99) = percentiles_us(&mut lat);
    let mut m = Map::new();
    m.insert("count".into(), json!(count));
    m.insert("secs".into(), json!(secs));
    m.insert("p50_us".into(), p50);
    m.insert("p99_us".into(), p99);
    m
}

async fn connect(config: Config) -> Result<Client, String> {
    Client::connect(config)
        .await
        .map_err(|e| format!("connect: {e}"))
}

/// One acknowledged record before the clock starts (metadata, connections, the idempotent
/// producer id), as every contender does; it is not counted.
async fn warm_up(client: &Client, a: &Args) -> Result<(), String> {
    client
        .produce(record(&a.topic, b"warm-up"))
        .await
        .map(|_| ())
        .map_err(|e| format!("warm-up: {e}"))
}

async fn produce_async(a: &Args) -> Outcome {
    let client = connect(producer_config(a, a.linger_ms)?).await?;
    warm_up(&client, a).await?;
    let value = vec![b'x'; a.size];
    let mut calls = Vec::with_capacity(a.count);
    let t0 = Instant::now();
    for _ in 0..a.count {
        let t = Instant::now();
        client
            .produce_async(record(&a.topic, &value))
            .map_err(|e| format!("produce_async: {e}"))?;
        calls.push(t.elapsed().as_nanos() as u64);
    }
    let flushed = Instant::now();
    let outcome = client.flush(a.timeout).await;
    let secs = t0.elapsed().as_secs_f64();
    let flush_secs = flushed.elapsed().as_secs_f64();
    client.close(CLOSE).await;
    let groups = outcome.reports.groups();
    let delivered: usize = groups
        .iter()
        .filter(|g| g.error.is_none())
        .map(|g| g.records.len())
        .sum();
    if let Some(e) = groups.iter().find_map(|g| g.error.as_ref()) {
        eprintln!("first delivery error: {e}");
    }
    if delivered != a.count {
        return Err(format!(
            "{delivered} of {} delivered ({} pending)",
            a.count, outcome.pending
        ));
    }
    let (c50, c99) = percentiles_us(&mut calls);
    let mut m = result(delivered, secs, Vec::new());
    m.insert("call_p50_us".into(), c50);
    m.insert("call_p99_us".into(), c99);
    m.insert("flush_secs".into(), json!(flush_secs));
    Ok(m)
}

async fn produce_sync(a: &Args) -> Outcome {
    let client = connect(producer_config(a, 0)?).await?;
    warm_up(&client, a).await?;
    let value = vec![b'x'; a.size];
    let mut lat = Vec::with_capacity(a.count);
    let t0 = Instant::now();
    for _ in 0..a.count {
        let t = Instant::now();
        client
            .produce(record(&a.topic, &value))
            .await
            .map_err(|e| format!("produce: {e}"))?;
        lat.push(t.elapsed().as_nanos() as u64);
    }
    let secs = t0.elapsed().as_secs_f64();
    client.close(CLOSE).await;
    Ok(result(a.count, secs, lat))
}

async fn produce_batch(a: &Args) -> Outcome {
    let client = connect(producer_config(a, a.linger_ms)?).await?;
    warm_up(&client, a).await?;
    let value = vec![b'x'; a.size];
    let mut lat = Vec::new();
    let mut done = 0;
    let t0 = Instant::now();
    while done < a.count {
        let n = BATCH.min(a.count - done);
        let t = Instant::now();
        let batch = (0..n).map(|_| record(&a.topic, &value)).collect();
        let results = client.produce_batch(batch).await;
        lat.push(t.elapsed().as_nanos() as u64);
        if let Some(e) = results.iter().find_map(|r| r.as_ref().err()) {
            return Err(format!("produce_batch: {e}"));
        }
        done += n;
    }
    let secs = t0.elapsed().as_secs_f64();
    client.close(CLOSE).await;
    let mut m = result(done, secs, lat);
    m.insert("records_per_call".into(), json!(BATCH));
    Ok(m)
}

/// Connects and subscribes with a fresh group.
async fn subscribe(a: &Args) -> Result<(Client, Consumer), String> {
    let (config, group) = consumer_config(a)?;
    let client = connect(config).await?;
    let consumer = Consumer::subscribe(client.cluster().clone(), vec![a.topic.clone()], group)
        .await
        .map_err(|e| format!("subscribe: {e}"))?;
    Ok((client, consumer))
}

async fn close(client: Client, consumer: Consumer) {
    let _ = consumer.close().await;
    client.close(CLOSE).await;
}

/// Polls `max` at a time (`None`: Poll one at a time, reading the value as 1C reads Value).
/// The first message is taken unmeasured (it waits for the group join).
async fn consume(a: &Args, max: Option<usize>) -> Outcome {
    let (client, consumer) = subscribe(a).await?;
    let give_up = Instant::now() + a.timeout;
    let take = |n: usize| {
        let consumer = &consumer;
        async move {
            match max {
                None => consumer.poll(POLL).await.map(|r| {
                    r.map_or(0, |r| {
                        let text = std::str::from_utf8(r.value.as_deref().unwrap_or_default());
                        black_box(text.map_or(0, str::len));
                        1
                    })
                }),
                // Read where they lie, as PollBatch does (poll_batch would copy each out),
                // checking each value is text as PollBatch does.
                Some(_) => {
                    let read = |run: Run<'_>| {
                        run.iter().for_each(|r| {
                            let text = std::str::from_utf8(r.value().unwrap_or_default());
                            black_box(text.map_or(0, str::len));
                        })
                    };
                    consumer.read_batch(n, POLL, read).await
                }
            }
            .map_err(|e| format!("poll: {e}"))
        }
    };
    let joined = Instant::now();
    let mut got = 0;
    while got == 0 {
        if Instant::now() > give_up {
            return Err(format!("no message within {:?} of Subscribe", a.timeout));
        }
        got = take(1).await?;
    }
    let join_ms = joined.elapsed().as_secs_f64() * 1000.0;
    let mut lat = Vec::new();
    let t0 = Instant::now();
    let mut last = t0;
    while got < a.count {
        let t = Instant::now();
        if t > give_up {
            return Err(format!("only {got} of {} messages arrived", a.count));
        }
        let n = take(max.unwrap_or(1)).await?;
        let now = Instant::now();
        lat.push((now - t).as_nanos() as u64);
        if n > 0 {
            got += n;
            last = now;
        }
    }
    close(client, consumer).await;
    let mut m = result(got, (last - t0).as_secs_f64(), lat);
    m.insert("join_ms".into(), json!(join_ms));
    Ok(m)
}

async fn e2e(a: &Args) -> Outcome {
    let (client, consumer) = subscribe(a).await?;
    let producer = connect(producer_config(a, 0)?).await?;
    let value = vec![b'x'; a.size];
    let give_up = Instant::now() + a.timeout;
    let trip = || async {
        producer
            .produce_async(record(&a.topic, &value))
            .map_err(|e| format!("produce_async: {e}"))?;
        loop {
            if consumer
                .poll(POLL)
                .await
                .map_err(|e| format!("poll: {e}"))?
                .is_some()
            {
                return Ok::<_, String>(());
            }
            if Instant::now() > give_up {
                return Err(format!("a round trip took longer than {:?}", a.timeout));
            }
        }
    };
    let warm = Instant::now();
    trip().await?;
    let warmup_ms = warm.elapsed().as_secs_f64() * 1000.0;
    let mut lat = Vec::with_capacity(a.count);
    let t0 = Instant::now();
    for _ in 0..a.count {
        let t = Instant::now();
        trip().await?;
        lat.push(t.elapsed().as_nanos() as u64);
    }
    let secs = t0.elapsed().as_secs_f64();
    // A leftover message means the topic was not empty and polls matched older messages.
    let leftover = consumer
        .poll(Duration::from_millis(500))
        .await
        .map_err(|e| format!("poll: {e}"))?;
    producer.close(CLOSE).await;
    close(client, consumer).await;
    if leftover.is_some() {
        return Err("a message was left over: the topic was not empty before the run".into());
    }
    let mut m = result(a.count, secs, lat);
    m.insert("warmup_ms".into(), json!(warmup_ms));
    Ok(m)
}

fn main() -> ExitCode {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = runtime::block_on(async {
        match a.scenario.as_str() {
            "produce-async" => Some(produce_async(&a).await),
            "produce-sync" => Some(produce_sync(&a).await),
            "produce-batch" => Some(produce_batch(&a).await),
            "consume-poll" => Some(consume(&a, None).await),
            "consume-batch" => Some(consume(&a, Some(BATCH)).await),
            "e2e" => Some(e2e(&a).await),
            _ => None,
        }
    });
    match outcome {
        None => {
            eprintln!(
                "error: scenario {:?} is not supported by the core contender",
                a.scenario
            );
            ExitCode::from(2)
        }
        Some(Err(e)) => {
            eprintln!("error: {}: {e}", a.scenario);
            ExitCode::from(1)
        }
        Some(Ok(fields)) => {
            let mut out = Map::new();
            out.insert("scenario".into(), json!(a.scenario));
            out.extend(fields);
            println!("{}", Json::Object(out));
            ExitCode::SUCCESS
        }
    }
}
