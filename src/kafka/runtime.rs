//! One small tokio runtime per process, started on first use. 1C servers run many sessions in
//! one process, so it is shared and sized small; the calling 1C thread only blocks on the
//! future it waits for.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime};

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kafka1c-io")
            .enable_all()
            .build()
            .expect("cannot start the kafka1c runtime")
    })
}

/// Handle for spawning background tasks.
pub fn handle() -> &'static Handle {
    runtime().handle()
}

/// Runs `fut` to completion from a thread that is not a runtime worker (the 1C thread).
pub fn block_on<F: Future>(fut: F) -> F::Output {
    runtime().block_on(fut)
}

/// Spawns a background task on the runtime.
pub fn spawn<F>(fut: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    handle().spawn(fut)
}
