//! The HTTP/1.1 server loop: at most `MAX_CONNECTIONS` open connections (more
//! wait at accept); a request head must be complete within
//! `HTTP_HEADER_TIMEOUT_SECS` of the accept or of its first byte, else the
//! connection is dropped; a keep-alive connection idle (no request in flight,
//! no byte of a new one) for `HTTP_IDLE_TIMEOUT_SECS` is closed, and so is one
//! whose response the client has not read for as long. A request is in
//! flight until its response body has been wholly sent (an event stream
//! stays in flight while it is open). On shutdown it
//! stops accepting, asks every connection to finish its request in flight and
//! close, and waits for them up to the grace period.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::{Router, body::Body, extract::Request};
use hyper::body::Incoming;
use hyper_util::{rt::TokioIo, service::TowerToHyperService};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{Notify, Semaphore, watch},
    time::Instant,
};
use tower::ServiceExt;

/// How connections are bounded.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

/// What one connection is doing, for its deadlines.
struct Activity {
    state: std::sync::Mutex<ConnState>,
    changed: Notify,
}

struct ConnState {
    /// Requests whose response is not yet wholly sent.
    in_flight: usize,
    /// When the request head now arriving began (its first byte, or the accept).
    head_since: Option<Instant>,
    /// When the connection last went idle.
    idle_since: Instant,
    /// Since when a response has been waiting for the client to read.
    write_blocked_since: Option<Instant>,
}

enum Deadline {
    None,
    /// A request head still incomplete: then the connection is dropped.
    Head(Instant),
    /// Nothing in flight: then the connection is closed.
    Idle(Instant),
    /// A response the client does not read: then the connection is dropped.
    Stalled(Instant),
}

impl Activity {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            state: std::sync::Mutex::new(ConnState {
                in_flight: 0,
                head_since: Some(now),
                idle_since: now,
                write_blocked_since: None,
            }),
            changed: Notify::new(),
        }
    }

    fn with(&self, f: impl FnOnce(&mut ConnState)) {
        f(&mut self.state.lock().expect("activity"));
        self.changed.notify_one();
    }

    fn bytes_read(&self) {
        let mut state = self.state.lock().expect("activity");
        if state.in_flight == 0 && state.head_since.is_none() {
            state.head_since = Some(Instant::now());
            drop(state);
            self.changed.notify_one();
        }
    }

    /// A write went through (`true`) or must wait for the client (`false`).
    fn wrote(&self, progressed: bool) {
        let mut state = self.state.lock().expect("activity");
        let changed = match (progressed, state.write_blocked_since) {
            (true, Some(_)) => {
                state.write_blocked_since = None;
                true
            }
            (false, None) => {
                state.write_blocked_since = Some(Instant::now());
                true
            }
            _ => false,
        };
        drop(state);
        if changed {
            self.changed.notify_one();
        }
    }

    fn deadline(&self, limits: &ConnectionLimits) -> Deadline {
        let state = self.state.lock().expect("activity");
        match (state.in_flight, state.head_since, state.write_blocked_since) {
            // Bytes the client does not take, in flight or left in hyper's
            // buffer after the body ended.
            (_, _, Some(since)) => Deadline::Stalled(since + limits.idle_timeout),
            (0, Some(since), None) => Deadline::Head(since + limits.header_timeout),
            (0, None, None) => Deadline::Idle(state.idle_since + limits.idle_timeout),
            _ => Deadline::None,
        }
    }
}

/// Marks a request finished when its response has been wholly sent, or
/// dropped: it rides on the response body.
struct Busy(Arc<Activity>);

/// A response body that keeps its request in flight until it is done.
struct Tracked {
    inner: Body,
    _busy: Busy,
}

impl http_body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.with(|s| {
            s.in_flight -= 1;
            s.idle_since = Instant::now();
        });
    }
}

/// The client socket, telling [`Activity`] when bytes arrive.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        match &polled {
            Poll::Pending => self.activity.wrote(false),
            Poll::Ready(Ok(n)) if *n > 0 => self.activity.wrote(true),
            _ => {}
        }
        polled
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting,
/// lets in-flight requests finish for up to `grace`, and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let activity = Arc::new(Activity::new());
            let tracked = activity.clone();
            let service = tower::service_fn(move |req: Request<Incoming>| {
                tracked.with(|s| {
                    s.in_flight += 1;
                    s.head_since = None;
                });
                let busy = Busy(tracked.clone());
                let app = app.clone();
                async move {
                    let response = app.oneshot(req.map(Body::new)).await;
                    response.map(|res| res.map(|inner| Body::new(Tracked { inner, _busy: busy })))
                }
            });
            let io = Watched {
                stream,
                activity: activity.clone(),
            };
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.header_read_timeout(None).keep_alive(true);
            let conn =
                builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
            let mut conn = std::pin::pin!(conn);
            let mut closing = false;
            loop {
                let (at, drop_it) = match activity.deadline(&limits) {
                    Deadline::Head(at) | Deadline::Stalled(at) => (Some(at), true),
                    // Once closing, an idle connection closes by itself.
                    Deadline::Idle(at) if !closing => (Some(at), false),
                    Deadline::Idle(_) | Deadline::None => (None, false),
                };
                tokio::select! {
                    _ = conn.as_mut() => break,
                    _ = stop.changed(), if !closing => {
                        if matches!(
                            activity.deadline(&limits),
                            Deadline::None | Deadline::Stalled(_)
                        ) {
                            // A request in flight: let it finish, then close.
                            closing = true;
                            conn.as_mut().graceful_shutdown();
                        } else {
                            // Idle, or a head still arriving: nothing to wait for.
                            break;
                        }
                    }
                    () = activity.changed.notified() => {}
                    () = sleep_until(at), if at.is_some() => {
                        let due = matches!(
                            activity.deadline(&limits),
                            Deadline::Head(t) | Deadline::Idle(t) | Deadline::Stalled(t)
                                if t <= Instant::now()
                        );
                        if due && drop_it {
                            // A head still incomplete (slowloris, or silence),
                            // or a response the client will not read: hang up.
                            break;
                        }
                        if due && !closing {
                            closing = true;
                            conn.as_mut().graceful_shutdown();
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    tracing::info!("shutdown signal received; draining in-flight requests");
    let _ = stop_tx.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let drained = async {
        let _ = slots.acquire_many(all).await;
    };
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::warn!(
            grace_secs = grace.as_secs(),
            "grace period over; abandoning the requests still in flight"
        );
    }
    Ok(())
}

/// Raises this process's open-file limit to its hard limit and returns how
/// many connections fit under it (leaving room for the database pool, logs
/// and the like).
pub fn fit_connections(wanted: usize, reserve: usize) -> usize {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: plain system calls on a local struct.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
                if lim.rlim_cur < lim.rlim_max {
                    let raised = libc::rlimit {
                        rlim_cur: lim.rlim_max,
                        rlim_max: lim.rlim_max,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                        lim.rlim_cur = lim.rlim_max;
                    }
                }
                let room = (lim.rlim_cur as usize).saturating_sub(reserve).max(1);
                if room < wanted {
                    tracing::warn!(
                        wanted,
                        fits = room,
                        "MAX_CONNECTIONS is more than the open-file limit allows; using the lower figure"
                    );
                    return room;
                }
            }
        }
    }
    wanted
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
