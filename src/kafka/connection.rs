//! One broker connection: TCP_NODELAY, each request framed into one buffer, requests pipelined
//! and matched to responses by correlation id, API versions negotiated on connect.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiVersionsRequest, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::error::{Error, Result};
use super::versions;

/// A response frame, or why none will come.
type ReplyBody = Result<Bytes>;
type Reply = oneshot::Sender<ReplyBody>;

/// State shared with the reader task.
struct Shared {
    addr: String,
    pending: Mutex<HashMap<i32, Reply>>,
    alive: AtomicBool,
    /// Why the connection died, for the errors of later requests.
    death: Mutex<Option<String>>,
    /// Frames handed to the writer task and not fully written yet; while there are any, new
    /// frames queue behind them.
    queued: Mutex<usize>,
}

impl Shared {
    fn kill(&self, reason: String) {
        self.alive.store(false, Ordering::SeqCst);
        self.death.lock().unwrap().get_or_insert(reason.clone());
        let pending: Vec<Reply> = self
            .pending
            .lock()
            .unwrap()
            .drain()
            .map(|(_, r)| r)
            .collect();
        for reply in pending {
            let _ = reply.send(Err(Error::Disconnected {
                broker: self.addr.clone(),
                reason: reason.clone(),
            }));
        }
    }

    fn disconnected(&self) -> Error {
        Error::Disconnected {
            broker: self.addr.clone(),
            reason: self
                .death
                .lock()
                .unwrap()
                .clone()
                .unwrap_or_else(|| "closed".into()),
        }
    }
}

/// Where request frames go, in order.
struct Outbox {
    shared: Arc<Shared>,
    /// Plain TCP: the requesting task writes its frame itself when nothing is queued, saving
    /// a switch to the writer task (and, from the 1C thread, a wake-up of a runtime thread).
    direct: Option<Arc<OwnedWriteHalf>>,
    /// To the writer task: TLS frames, and frames behind one the socket did not take at once.
    frames: mpsc::UnboundedSender<Bytes>,
}

impl Outbox {
    /// Starts the writer task.
    fn start(write: Writer, shared: Arc<Shared>) -> Outbox {
        let (frames, rx) = mpsc::unbounded_channel();
        let direct = match &write {
            Writer::Tcp(w) => Some(w.clone()),
            Writer::Stream(_) => None,
        };
        tokio::spawn(write_loop(write, rx, shared.clone()));
        Outbox {
            shared,
            direct,
            frames,
        }
    }

    fn push(&self, mut frame: Bytes) -> Result<()> {
        if !self.shared.alive.load(Ordering::SeqCst) {
            return Err(self.shared.disconnected());
        }
        let mut queued = self.shared.queued.lock().unwrap();
        if let (Some(w), 0) = (&self.direct, *queued) {
            // Non-blocking, so a caller that gives up can never leave half a frame behind.
            match w.try_write(&frame) {
                Ok(n) if n == frame.len() => return Ok(()),
                Ok(n) => frame = frame.slice(n..),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    drop(queued);
                    self.shared.kill(format!("write failed: {e}"));
                    return Err(self.shared.disconnected());
                }
            }
        }
        // Queued under the lock: another pusher must not get its frame in ahead of this rest.
        *queued += 1;
        self.frames
            .send(frame)
            .map_err(|_| self.shared.disconnected())
    }
}

pub struct Connection {
    shared: Arc<Shared>,
    outbox: Outbox,
    next_correlation: AtomicI32,
    client_id: StrBytes,
    request_timeout: Duration,
    /// Broker's (min, max) per API key, from ApiVersions.
    broker_versions: OnceLock<HashMap<i16, (i16, i16)>>,
}

impl Connection {
    /// Connects, negotiates versions, and starts the reader/writer tasks.
    pub async fn connect(
        addr: &str,
        client_id: &str,
        tls: Option<&Arc<rustls::ClientConfig>>,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Result<Arc<Connection>> {
        let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| Error::Disconnected {
                broker: addr.to_string(),
                reason: format!("connect timed out after {} ms", connect_timeout.as_millis()),
            })?
            .map_err(|e| Error::Disconnected {
                broker: addr.to_string(),
                reason: e.to_string(),
            })?;
        // Small requests must not wait for Nagle's algorithm: it costs ~40 ms per produce.
        let _ = stream.set_nodelay(true);
        match tls {
            None => {
                let (read, write) = stream.into_split();
                let write = Arc::new(write);
                Self::start(addr, read, Writer::Tcp(write), client_id, request_timeout).await
            }
            Some(tls) => {
                let stream =
                    tokio::time::timeout(connect_timeout, super::tls::handshake(tls, addr, stream))
                        .await
                        .map_err(|_| Error::Disconnected {
                            broker: addr.to_string(),
                            reason: format!(
                                "TLS handshake timed out after {} ms",
                                connect_timeout.as_millis()
                            ),
                        })??;
                let (read, write) = tokio::io::split(stream);
                let write: BoxedWrite = Box::new(write);
                Self::start(
                    addr,
                    read,
                    Writer::Stream(write),
                    client_id,
                    request_timeout,
                )
                .await
            }
        }
    }

    /// Starts the reader and writer tasks on a connected stream and negotiates versions.
    async fn start<R>(
        addr: &str,
        read: R,
        write: Writer,
        client_id: &str,
        request_timeout: Duration,
    ) -> Result<Arc<Connection>>
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        let shared = Arc::new(Shared {
            addr: addr.to_string(),
            pending: Mutex::new(HashMap::new()),
            alive: AtomicBool::new(true),
            death: Mutex::new(None),
            queued: Mutex::new(0),
        });
        let outbox = Outbox::start(write, shared.clone());
        // Small responses arrive in one read with their size prefix; large ones bypass the
        // buffer. Small, because every idle connection keeps it.
        let read = BufReader::with_capacity(8 * 1024, read);
        tokio::spawn(read_loop(read, shared.clone()));
        let conn = Arc::new(Connection {
            shared,
            outbox,
            next_correlation: AtomicI32::new(1),
            client_id: StrBytes::from_string(client_id.to_string()),
            request_timeout,
            broker_versions: OnceLock::new(),
        });
        conn.negotiate().await?;
        Ok(conn)
    }

    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    pub fn is_alive(&self) -> bool {
        self.shared.alive.load(Ordering::SeqCst)
    }

    /// ApiVersions v3, falling back to v0 for brokers that reject v3.
    async fn negotiate(&self) -> Result<()> {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("kafka1c"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut resp = self.send_version(&req, 3).await?;
        if resp.error_code == 35 {
            resp = self.send_version(&req, 0).await?;
        }
        if resp.error_code != 0 {
            return Err(Error::broker(
                resp.error_code,
                None,
                None,
                Some("ApiVersions failed".into()),
            ));
        }
        let map = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        let _ = self.broker_versions.set(map);
        Ok(())
    }

    /// The version we will use for `R`, or why the broker cannot serve it.
    pub fn version<R: Request>(&self) -> Result<i16> {
        let broker = self
            .broker_versions
            .get()
            .and_then(|m| m.get(&R::KEY).copied());
        versions::choose(R::KEY, broker).map_err(|(broker_max, needed)| Error::UnsupportedVersion {
            api: versions::api_name(R::KEY),
            broker_max,
            needed,
        })
    }

    /// Sends a request with the negotiated version and waits for its response.
    pub async fn send<R: Request>(&self, req: &R) -> Result<R::Response> {
        let version = self.version::<R>()?;
        self.send_version(req, version).await
    }

    /// Like `send`, with a timeout of its own (JoinGroup waits up to the rebalance timeout).
    pub async fn send_timeout<R: Request>(
        &self,
        req: &R,
        timeout: Duration,
    ) -> Result<R::Response> {
        let version = self.version::<R>()?;
        self.send_version_timeout(req, version, timeout).await
    }

    /// Sends a request that the broker does not answer (Produce with acks=0).
    pub fn send_no_response<R: Request>(&self, req: &R) -> Result<()> {
        let version = self.version::<R>()?;
        let (_, frame) = self.frame(req, version)?;
        self.push(frame)
    }

    fn frame<R: Request>(&self, req: &R, version: i16) -> Result<(i32, Bytes)> {
        let correlation = self.next_correlation.fetch_add(1, Ordering::Relaxed);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(self.client_id.clone()));
        let hv = R::header_version(version);
        let size =
            header.compute_size(hv).map_err(proto)? + req.compute_size(version).map_err(proto)?;
        let mut buf = BytesMut::with_capacity(4 + size);
        buf.put_i32(size as i32);
        header.encode(&mut buf, hv).map_err(proto)?;
        req.encode(&mut buf, version).map_err(proto)?;
        Ok((correlation, buf.freeze()))
    }

    fn push(&self, frame: Bytes) -> Result<()> {
        self.outbox.push(frame)
    }

    async fn send_version<R: Request>(&self, req: &R, version: i16) -> Result<R::Response> {
        self.send_version_timeout(req, version, self.request_timeout)
            .await
    }

    /// Sends a request and returns the negotiated version and the raw response body, for the
    /// rare response a broker sends outside the schema (see the consumer's SyncGroup).
    pub async fn send_raw<R: Request>(&self, req: &R, timeout: Duration) -> Result<(i16, Bytes)> {
        let version = self.version::<R>()?;
        Ok((version, self.exchange(req, version, timeout).await?))
    }

    async fn send_version_timeout<R: Request>(
        &self,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response> {
        let mut body = self.exchange(req, version, timeout).await?;
        R::Response::decode(&mut body, version).map_err(proto)
    }

    /// Writes the request now (requests started one after another reach the broker in that
    /// order); its response is awaited separately.
    pub fn send_started<R: Request>(self: &Arc<Self>, req: &R) -> Result<Started<R>> {
        let version = self.version::<R>()?;
        let (correlation, rx) = self.begin(req, version)?;
        Ok(Started {
            conn: self.clone(),
            correlation,
            version,
            rx,
            request: std::marker::PhantomData,
        })
    }

    /// Writes the request; returns its correlation id and where its response will come.
    fn begin<R: Request>(
        &self,
        req: &R,
        version: i16,
    ) -> Result<(i32, oneshot::Receiver<ReplyBody>)> {
        let (correlation, frame) = self.frame(req, version)?;
        let (tx, rx) = oneshot::channel();
        self.shared.pending.lock().unwrap().insert(correlation, tx);
        if let Err(e) = self.push(frame) {
            self.shared.pending.lock().unwrap().remove(&correlation);
            return Err(e);
        }
        Ok((correlation, rx))
    }

    /// Writes the request and waits for its response body (after the response header).
    async fn exchange<R: Request>(
        &self,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<Bytes> {
        let (correlation, rx) = self.begin(req, version)?;
        self.finish::<R>(correlation, rx, version, timeout).await
    }

    /// Waits for the response of a written request; returns its body after the header.
    async fn finish<R: Request>(
        &self,
        correlation: i32,
        rx: oneshot::Receiver<ReplyBody>,
        version: i16,
        timeout: Duration,
    ) -> Result<Bytes> {
        let mut reply = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => reply?,
            Ok(Err(_)) => return Err(self.shared.disconnected()),
            Err(_) => {
                self.shared.pending.lock().unwrap().remove(&correlation);
                return Err(Error::Timeout {
                    operation: format!("{} request to {}", versions::api_name(R::KEY), self.addr()),
                    ms: timeout.as_millis() as u64,
                });
            }
        };
        ResponseHeader::decode(&mut reply, R::Response::header_version(version)).map_err(proto)?;
        Ok(reply)
    }

    /// Stops the connection; requests in flight fail with Disconnected.
    pub fn close(&self) {
        self.shared.kill("closed by the client".into());
    }
}

/// A request on the wire (see [`Connection::send_started`]).
pub struct Started<R: Request> {
    conn: Arc<Connection>,
    correlation: i32,
    version: i16,
    rx: oneshot::Receiver<ReplyBody>,
    request: std::marker::PhantomData<R>,
}

impl<R: Request> Started<R> {
    /// Waits (up to request.timeout.ms) for the response.
    pub async fn response(self) -> Result<R::Response> {
        let conn = &self.conn;
        let timeout = conn.request_timeout;
        let mut body = conn
            .finish::<R>(self.correlation, self.rx, self.version, timeout)
            .await?;
        R::Response::decode(&mut body, self.version).map_err(proto)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.kill("closed by the client".into());
    }
}

fn proto(e: impl std::fmt::Display) -> Error {
    Error::Protocol(e.to_string())
}

type BoxedWrite = Box<dyn AsyncWrite + Unpin + Send>;

/// The connection's write side as the writer task holds it.
enum Writer {
    /// Shared with `Connection::push`, which writes directly while nothing is queued.
    Tcp(Arc<OwnedWriteHalf>),
    /// TLS: every frame goes through the writer task.
    Stream(BoxedWrite),
}

/// Writes queued frames in order; frames queued together go out in one write.
async fn write_loop(
    mut write: Writer,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    shared: Arc<Shared>,
) {
    let mut batch = BytesMut::new();
    while let Some(first) = rx.recv().await {
        if !shared.alive.load(Ordering::SeqCst) {
            break;
        }
        let mut frames = 1;
        let data: &[u8] = match rx.try_recv() {
            Err(_) => &first,
            Ok(second) => {
                batch.clear();
                batch.extend_from_slice(&first);
                batch.extend_from_slice(&second);
                frames += 1;
                while let Ok(more) = rx.try_recv() {
                    batch.extend_from_slice(&more);
                    frames += 1;
                }
                &batch
            }
        };
        let result = match &mut write {
            Writer::Tcp(w) => write_tcp(w, data).await,
            Writer::Stream(w) => w.write_all(data).await,
        };
        if let Err(e) = result {
            shared.kill(format!("write failed: {e}"));
            break;
        }
        *shared.queued.lock().unwrap() -= frames;
    }
    if let Writer::Stream(w) = &mut write {
        let _ = w.shutdown().await;
    }
}

async fn write_tcp(w: &OwnedWriteHalf, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        w.writable().await?;
        match w.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads size-prefixed responses and hands each to the request with its correlation id.
async fn read_loop<R: AsyncRead + Unpin>(mut read: R, shared: Arc<Shared>) {
    let reason = loop {
        let size = match read.read_i32().await {
            Ok(n) if n >= 4 => n as usize,
            Ok(n) => break format!("bad response size {n}"),
            Err(e) => break format!("read failed: {e}"),
        };
        // Read into spare capacity: zeroing a multi-megabyte Fetch response first cost a
        // tenth of the fetcher's time.
        let mut buf = BytesMut::with_capacity(size);
        let mut failed = None;
        while buf.len() < size {
            let left = size - buf.len();
            match read.read_buf(&mut (&mut buf).limit(left)).await {
                Ok(0) => failed = Some("read failed: connection closed".to_string()),
                Ok(_) => continue,
                Err(e) => failed = Some(format!("read failed: {e}")),
            }
            break;
        }
        if let Some(reason) = failed {
            break reason;
        }
        let frame = buf.freeze();
        let correlation = (&frame[..4]).get_i32();
        let reply = shared.pending.lock().unwrap().remove(&correlation);
        if let Some(reply) = reply {
            let _ = reply.send(Ok(frame));
        }
        if !shared.alive.load(Ordering::SeqCst) {
            break "closed by the client".into();
        }
    };
    shared.kill(reason);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn test_shared() -> Arc<Shared> {
        Arc::new(Shared {
            addr: "test".into(),
            pending: Mutex::new(HashMap::new()),
            alive: AtomicBool::new(true),
            death: Mutex::new(None),
            queued: Mutex::new(0),
        })
    }

    /// A frame larger than the socket takes at once is finished by the writer task, and a
    /// frame pushed while it is unfinished waits for it instead of landing in its middle.
    #[tokio::test]
    async fn frames_stay_whole_and_in_order_when_the_socket_is_full() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (_read, write) = client.into_split();
        let shared = test_shared();
        let outbox = Outbox::start(Writer::Tcp(Arc::new(write)), shared.clone());
        let big = vec![1u8; 8 << 20];
        let small = vec![2u8; 100];
        let total = big.len() + small.len();
        // The peer reads on its own thread, so room opens in the socket while this
        // single-threaded runtime has not let the writer task run yet.
        let server = server.into_std().unwrap();
        server.set_nonblocking(false).unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = vec![0u8; total];
            std::io::Read::read_exact(&mut &server, &mut got).unwrap();
            got
        });
        outbox.push(Bytes::from(big.clone())).unwrap();
        assert_eq!(
            *shared.queued.lock().unwrap(),
            1,
            "the big frame's rest queued"
        );
        std::thread::sleep(Duration::from_millis(100));
        outbox.push(Bytes::from(small.clone())).unwrap();
        let got = tokio::task::spawn_blocking(move || reader.join().unwrap())
            .await
            .unwrap();
        assert!(got == [big, small].concat(), "bytes arrived out of order");
        assert_eq!(*shared.queued.lock().unwrap(), 0);
    }

    /// Pushers on several threads at once (the 1C thread and runtime workers share a
    /// connection): every frame arrives whole, each pusher's frames in its order.
    #[test]
    fn concurrent_pushers_never_interleave_frames() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (outbox, server, _read) = rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let client = TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let (server, _) = listener.accept().await.unwrap();
            let (read, write) = client.into_split();
            let shared = test_shared();
            let outbox = Arc::new(Outbox::start(Writer::Tcp(Arc::new(write)), shared));
            (outbox, server, read)
        });
        const PUSHERS: u8 = 4;
        const FRAMES: u32 = 150;
        let reader = rt.spawn(async move {
            let mut server = server;
            let mut next = [0u32; PUSHERS as usize];
            for _ in 0..PUSHERS as u32 * FRAMES {
                let len = server.read_u32().await.unwrap() as usize;
                let mut body = vec![0u8; len];
                server.read_exact(&mut body).await.unwrap();
                let (id, seq) = (body[0], u32::from_be_bytes(body[1..5].try_into().unwrap()));
                assert!(body[5..].iter().all(|&b| b == id), "a frame was cut into");
                assert_eq!(seq, next[id as usize], "pusher {id} out of order");
                next[id as usize] += 1;
            }
        });
        let pushers: Vec<_> = (0..PUSHERS)
            .map(|id| {
                let outbox = outbox.clone();
                std::thread::spawn(move || {
                    for seq in 0..FRAMES {
                        let n = if seq % 10 == 0 {
                            1 << 20
                        } else {
                            50 + seq as usize
                        };
                        let mut f = Vec::with_capacity(9 + n);
                        f.extend_from_slice(&(5 + n as u32).to_be_bytes());
                        f.push(id);
                        f.extend_from_slice(&seq.to_be_bytes());
                        f.resize(9 + n, id);
                        outbox.push(Bytes::from(f)).unwrap();
                    }
                })
            })
            .collect();
        for p in pushers {
            p.join().unwrap();
        }
        rt.block_on(reader).unwrap();
    }
}
