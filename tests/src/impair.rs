//! An impairing TCP proxy on loopback, for what bad 3G/4G links do to nodes: delay with
//! jitter, stalls (a lost segment waiting for its retransmission, then a burst), black-hole
//! partitions and cut connections. This kernel has network namespaces but no netem, so the
//! impairment happens here, in user space, between a node and the controller.
//!
//! TCP keeps order, and so does the proxy: each chunk read on one side leaves on the other
//! at `max(previous departure, arrival + delay ± jitter)`, so jitter shows as bunching, as on
//! a real link, never as reordering.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What the link does to every chunk, each way.
#[derive(Debug, Clone, Copy, Default)]
pub struct Impairment {
    /// One-way delay.
    pub delay: Duration,
    /// Added to the delay, uniform in `-jitter..=jitter` (the delay never goes below 0).
    pub jitter: Duration,
    /// Every `stall_every` from the proxy's start, nothing moves for `stall_for`; what
    /// queued meanwhile then leaves at once.
    pub stall_every: Option<Duration>,
    pub stall_for: Duration,
    /// A thin pipe: at most this many bytes a second each way (`None`: no limit).
    pub bytes_per_s: Option<u64>,
}

impl Impairment {
    /// `delay` ± `jitter`, no stalls.
    pub fn jittery(delay_ms: u64, jitter_ms: u64) -> Self {
        Impairment {
            delay: Duration::from_millis(delay_ms),
            jitter: Duration::from_millis(jitter_ms),
            ..Self::default()
        }
    }
}

struct Shared {
    target: SocketAddr,
    impairment: Mutex<Impairment>,
    /// `true`: a black hole, both ways (bytes wait, nothing is closed).
    partitioned: watch::Sender<bool>,
    /// Bumped by [`Proxy::cut`]: connections of an older generation close.
    generation: watch::Sender<u64>,
    started: Instant,
    seed: AtomicU64,
    /// Bytes and reads from the target to the client (what the node receives).
    down_bytes: AtomicU64,
    down_reads: AtomicU64,
}

impl Shared {
    fn impairment(&self) -> Impairment {
        *self
            .impairment
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// When a chunk that arrived at `now` may leave, before ordering and stalls.
    fn due(&self, now: Instant, rng: &mut u64) -> Instant {
        let imp = self.impairment();
        let jitter = imp.jitter.as_nanos() as i128;
        let spread = if jitter == 0 {
            0
        } else {
            (next(rng) % (2 * jitter as u64 + 1)) as i128 - jitter
        };
        let delay = (imp.delay.as_nanos() as i128 + spread).max(0);
        now + Duration::from_nanos(delay as u64)
    }

    /// `at`, or the end of the stall it falls in.
    fn after_stalls(&self, at: Instant) -> Instant {
        let imp = self.impairment();
        let Some(every) = imp.stall_every.filter(|e| !e.is_zero()) else {
            return at;
        };
        let since = at.saturating_duration_since(self.started);
        let into = Duration::from_nanos((since.as_nanos() % every.as_nanos()) as u64);
        if into < imp.stall_for {
            at + (imp.stall_for - into)
        } else {
            at
        }
    }
}

/// xorshift64*: a small, seeded generator, so a test's impairment is the same every run.
fn next(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// A proxy to one target; dropping it stops everything it runs.
pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards each connection to `target`.
    pub async fn start(target: SocketAddr, impairment: Impairment, seed: u64) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap_or_else(|e| panic!("impairing proxy: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("impairing proxy: {e}"));
        let shared = Arc::new(Shared {
            target,
            impairment: Mutex::new(impairment),
            partitioned: watch::channel(false).0,
            generation: watch::channel(0).0,
            started: Instant::now(),
            seed: AtomicU64::new(seed | 1),
            down_bytes: AtomicU64::new(0),
            down_reads: AtomicU64::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Proxy {
            addr,
            shared,
            accept,
        }
    }

    /// `http://ADDR`: the controller as the node should dial it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes the impairment of every connection from now on.
    pub fn set(&self, impairment: Impairment) {
        *self
            .shared
            .impairment
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = impairment;
    }

    /// A black hole both ways until [`Proxy::heal`]: bytes wait, nothing is closed, new
    /// connections are accepted and wait too (as behind a dead cell).
    pub fn partition(&self) {
        self.shared.partitioned.send_replace(true);
    }

    pub fn heal(&self) {
        self.shared.partitioned.send_replace(false);
    }

    /// Bytes the client received so far, and in how many reads (about the segments
    /// they came in, for the headers a wire adds).
    pub fn downstream(&self) -> (u64, u64) {
        (
            self.shared.down_bytes.load(Ordering::Relaxed),
            self.shared.down_reads.load(Ordering::Relaxed),
        )
    }

    /// Closes every open connection at once (a modem that re-attaches); new ones work.
    pub fn cut(&self) {
        self.shared.generation.send_modify(|g| *g += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Open connections end with the generation they belong to.
        self.shared.generation.send_modify(|g| *g += 1);
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((client, _)) = listener.accept().await {
        let shared = shared.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(shared.target).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let generation = *shared.generation.borrow();
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            let up = tokio::spawn(pump(cr, sw, shared.clone(), false));
            let down = tokio::spawn(pump(sr, cw, shared.clone(), true));
            let mut cut = shared.generation.subscribe();
            let _ = cut.wait_for(|g| *g != generation).await;
            up.abort();
            down.abort();
        });
    }
}

/// Sleeps until `at`, to within about a tenth of a millisecond. tokio's timer counts
/// whole milliseconds and wakes up to two late: alone, it would add a coarse floor of its
/// own to each direction, different each way (measured through this proxy: delay floors
/// 0.8-1.5 ms above the link's, up and down apart by up to 0.6 ms, which skews a clock
/// estimate by half that; no real link does this). The last few milliseconds are slept
/// on a blocking thread, on the kernel's high-resolution timer.
async fn sleep_precisely_until(at: Instant) {
    const COARSE: Duration = Duration::from_millis(3);
    if let Some(early) = at.checked_sub(COARSE) {
        tokio::time::sleep_until(early).await;
    }
    let rest = at.saturating_duration_since(Instant::now());
    if !rest.is_zero() {
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
    }
}

/// Moves one direction: a reader queues each chunk with its departure time, a writer sends
/// it then (or after a stall, or once a partition heals).
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, shared: Arc<Shared>, down: bool) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let mut rng = shared
        .seed
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        | 1;
    let reader = {
        let shared = shared.clone();
        async move {
            let mut last = Instant::now();
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n) = from.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                if down {
                    shared.down_bytes.fetch_add(n as u64, Ordering::Relaxed);
                    shared.down_reads.fetch_add(1, Ordering::Relaxed);
                }
                // A thin pipe sends a chunk only after the one before has gone through.
                let through = shared
                    .impairment()
                    .bytes_per_s
                    .filter(|r| *r > 0)
                    .map_or(Duration::ZERO, |r| {
                        Duration::from_nanos(n as u64 * 1_000_000_000 / r)
                    });
                last = (last + through).max(shared.due(Instant::now(), &mut rng));
                if tx.send((last, buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    };
    let writer = async move {
        let mut partitioned = shared.partitioned.subscribe();
        while let Some((at, chunk)) = rx.recv().await {
            loop {
                sleep_precisely_until(shared.after_stalls(at)).await;
                let _ = partitioned.wait_for(|p| !*p).await;
                // A stall or partition may have begun while waiting for the other.
                if shared.after_stalls(Instant::now()) <= Instant::now() {
                    break;
                }
            }
            if to.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}
