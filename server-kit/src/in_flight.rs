//! The in-flight queue (`HTTP_MAX_IN_FLIGHT`): at most that many requests do work at once; the
//! others wait, in arrival order, holding only the outer middleware's state. Two cores gain
//! nothing from more, and every request inside the stack at once holds its whole future,
//! driver buffers and a database wait (1,000 connections that each sent a request took the rooms
//! API from 32 to 77 MiB RSS with all inside, 61 MiB with 32 at a time; 1,024 token requests
//! took the auth-server to 174 MiB when bodies skipped the queue).
//!
//! A request gives its place back while it waits for something that is not work of its own —
//! an argon2 verification queued behind a bounded pool (`released`) — and takes a place again,
//! at the back of the queue, when that is done: a flood of wrong secrets waiting for argon2 then
//! holds no place, and clients whose secret is cached go on at full speed.

use std::future::Future;
use std::sync::{Arc, Mutex};

use poem::{Endpoint, IntoResponse, Request, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

tokio::task_local! {
    /// The place of the request this task is serving, while it is inside the queue's scope.
    static PLACE: Place;
}

struct Place {
    queue: Arc<Semaphore>,
    held: Mutex<Option<OwnedSemaphorePermit>>,
}

/// One listener's places.
#[derive(Debug, Clone)]
pub struct InFlight {
    queue: Arc<Semaphore>,
}

impl InFlight {
    /// Every request waits: the services read bodies before the queue (`http::body_limit`,
    /// `http::capture_body`), so a slow sender never holds a place while it trickles its body.
    pub fn new(places: usize) -> Self {
        Self {
            queue: Arc::new(Semaphore::new(places)),
        }
    }

    /// Places free now (for tests and metrics).
    pub fn available(&self) -> usize {
        self.queue.available_permits()
    }

    /// Makes the work with `make` once a place is free, and holds the place until the work
    /// ends, except while it is inside `released`. tokio's semaphore is fair: places go in
    /// arrival order. The work is made only then, so a waiting request holds what `make`
    /// captured and nothing of the work's own state (`queue` boxes it there).
    pub async fn run<F: Future>(&self, make: impl FnOnce() -> F) -> F::Output {
        // Never closed, so acquiring can't fail; if it ever did, the work goes on unqueued.
        let permit = Arc::clone(&self.queue).acquire_owned().await.ok();
        let place = Place {
            queue: Arc::clone(&self.queue),
            held: Mutex::new(permit),
        };
        PLACE.scope(place, make()).await
    }
}

/// Middleware: the request waits for a place (`InFlight::run`).
pub async fn queue<E: Endpoint>(
    in_flight: InFlight,
    next: E,
    req: Request,
) -> poem::Result<Response> {
    // Made and boxed once the request has its place, so the future a waiting request holds is
    // this middleware's state and its `Request` alone. Inline, or boxed on arrival, the whole
    // stack's future (~13 KiB in the rooms API) was allocated for every request from its
    // arrival: at 1,024 connections of room creations, which wait long behind SQLite's one
    // writer, 14 MiB of a 42 MiB heap (a jemalloc heap profile, bench/RESULTS.md "Memory").
    in_flight
        .run(move || Box::pin(async move { next.call(req).await.map(IntoResponse::into_response) }))
        .await
}

/// Awaits `wait` without holding the current request's place, then takes a place again (at the
/// back of the queue) before going on. Outside a request (the CLI, a background task) it just
/// awaits `wait`.
pub async fn released<F: Future>(wait: F) -> F::Output {
    let queue = PLACE
        .try_with(|place| {
            let permit = place.held.lock().unwrap_or_else(|p| p.into_inner()).take();
            permit.map(|p| {
                drop(p);
                Arc::clone(&place.queue)
            })
        })
        .ok()
        .flatten();
    let out = wait.await;
    if let Some(queue) = queue {
        let permit = queue.acquire_owned().await.ok();
        let _ = PLACE.try_with(|place| {
            *place.held.lock().unwrap_or_else(|p| p.into_inner()) = permit;
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::http::StatusCode;

    /// An endpoint whose future is large: it keeps 64 KiB across an await.
    struct Heavy;

    impl Endpoint for Heavy {
        type Output = Response;

        async fn call(&self, _req: Request) -> poem::Result<Response> {
            let scratch = [1u8; 64 * 1024];
            tokio::task::yield_now().await;
            Ok(Response::builder().body(
                scratch
                    .iter()
                    .map(|b| u64::from(*b))
                    .sum::<u64>()
                    .to_string(),
            ))
        }
    }

    /// A request queued for a place holds this middleware's future: it must not grow with the
    /// stack behind it (1,000 queued rooms-API requests held ~13 MiB when it did).
    #[test]
    fn a_queued_request_does_not_hold_the_stack_behind_it() {
        let fut = queue(InFlight::new(1), Heavy, Request::default());
        let size = std::mem::size_of_val(&fut);
        assert!(size < 4096, "the middleware's future is {size} bytes");
    }

    /// Records the order requests reach it; request 0 holds its place until released.
    struct Recorder {
        order: Arc<Mutex<Vec<u32>>>,
        release: Arc<tokio::sync::Notify>,
    }

    impl Endpoint for Recorder {
        type Output = Response;

        async fn call(&self, req: Request) -> poem::Result<Response> {
            let n: u32 = req
                .uri()
                .path()
                .trim_start_matches('/')
                .parse()
                .unwrap_or(999);
            self.order.lock().unwrap_or_else(|p| p.into_inner()).push(n);
            if n == 0 {
                self.release.notified().await;
            }
            Ok(Response::builder().body(""))
        }
    }

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    fn request(n: u32, body: bool) -> Request {
        let b = Request::builder().uri_str(format!("/{n}"));
        if body {
            b.header("content-length", "2").body("{}")
        } else {
            b.finish()
        }
    }

    /// Requests past `HTTP_MAX_IN_FLIGHT` wait in arrival order, bodies included when they are
    /// buffered: tokio's semaphore is fair, and nothing here lets a later request take a freed
    /// place first.
    #[tokio::test(flavor = "current_thread")]
    async fn waiting_requests_get_their_place_in_arrival_order() {
        let in_flight = InFlight::new(1);
        let order = Arc::new(Mutex::new(Vec::new()));
        let release = Arc::new(tokio::sync::Notify::new());
        let mut tasks = Vec::new();
        for n in 0..6u32 {
            let ep = Recorder {
                order: order.clone(),
                release: release.clone(),
            };
            tasks.push(tokio::spawn(queue(
                in_flight.clone(),
                ep,
                request(n, n % 2 == 1),
            )));
            // Let it run until it holds the place (0) or waits for it (the others).
            settle().await;
        }
        assert_eq!(*order.lock().unwrap(), [0], "one at a time");
        release.notify_one();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().status(), StatusCode::OK);
        }
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4, 5]);
    }

    /// A waiting request's work is not made (its future not allocated) until it has a place.
    #[tokio::test(flavor = "current_thread")]
    async fn the_work_is_made_only_once_a_place_is_free() {
        let in_flight = InFlight::new(1);
        let hold = Arc::clone(&in_flight.queue).acquire_owned().await.unwrap();
        let made = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (q, m) = (in_flight.clone(), made.clone());
        let waiting = tokio::spawn(async move {
            q.run(move || {
                m.store(true, std::sync::atomic::Ordering::SeqCst);
                async {}
            })
            .await
        });
        settle().await;
        assert!(
            !made.load(std::sync::atomic::Ordering::SeqCst),
            "made while waiting"
        );
        drop(hold);
        waiting.await.unwrap();
        assert!(made.load(std::sync::atomic::Ordering::SeqCst));
    }

    /// A request waiting inside `released` holds no place: another request runs meanwhile; when
    /// the wait ends the first takes a place again before it goes on.
    #[tokio::test(flavor = "current_thread")]
    async fn a_released_wait_holds_no_place_and_takes_one_again() {
        let in_flight = InFlight::new(1);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let state = Arc::new(Mutex::new(Vec::<&str>::new()));
        let (a_in, a_state) = (in_flight.clone(), state.clone());
        let first = tokio::spawn(async move {
            a_in.run(move || async move {
                released(async {
                    let _ = done_rx.await;
                })
                .await;
                a_state.lock().unwrap().push("first resumed");
            })
            .await
        });
        settle().await;
        assert_eq!(
            in_flight.available(),
            1,
            "the waiting request gave its place back"
        );
        let (b_in, b_state) = (in_flight.clone(), state.clone());
        b_in.run(move || async move { b_state.lock().unwrap().push("second ran") })
            .await;
        // The second holds the place while the wait ends: the first must wait for it.
        let hold = Arc::clone(&in_flight.queue).acquire_owned().await.unwrap();
        let _ = done_tx.send(());
        settle().await;
        assert_eq!(
            *state.lock().unwrap(),
            ["second ran"],
            "resumed without a place"
        );
        drop(hold);
        first.await.unwrap();
        assert_eq!(*state.lock().unwrap(), ["second ran", "first resumed"]);
        assert_eq!(in_flight.available(), 1, "and gave it back at the end");
    }

    /// Outside a request (CLI, background tasks) `released` only awaits.
    #[tokio::test(flavor = "current_thread")]
    async fn released_outside_a_request_just_awaits() {
        assert_eq!(released(async { 7 }).await, 7);
    }
}
