//! A session's bounded outbound queue that costs nothing while empty.
//!
//! Every WebSocket session has one queue of events addressed to it (from the lobby, from
//! its partner). The server holds about 19,000 sessions, most of them idle, and an idle
//! user receives nothing; the goal is at most 4 KiB per idle session. tokio's
//! `mpsc::channel` spends about 1.5 KiB of that before the first event: a ~512-byte
//! channel plus a first block of 32 slots, allocated eagerly. This queue allocates one
//! small `Arc` (88 bytes of shared state, 104 with the `Arc`'s counters, whatever `T`
//! is) and nothing for its items until the first one is sent; once the receiver has
//! drained a burst, the storage is given back.
//!
//! A queue can also be bounded by bytes ([`weighted`]): each item weighs what a function of
//! the queue says, and a send that would take the queue past its byte bound is refused as
//! full, unless the queue is empty (one item of any weight always fits, so one large message
//! is never undeliverable). A reader that stops reading therefore holds at most the bound
//! plus one item, however small or large the items are.
//!
//! The API mirrors `tokio::sync::mpsc` (`channel`, `try_send`, `recv`, `try_recv`,
//! `TrySendError`, ...) so that it can replace it where only `try_send` is used.
//! There is deliberately no `async fn send`: senders never wait (the lobby actor must
//! never block on a slow session); a full queue is the sender's verdict to make.
//!
//! The design is a `Mutex<VecDeque<T>>` with tiny critical sections, a sender count, and
//! one [`AtomicWaker`] for the single receiver. Nothing is woken, and no item is
//! dropped, while the lock is held.

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

/// A drained queue whose storage holds more than this many items gives it back.
///
/// Small enough that a burst (a pairing sends a few events, a chat a few dozen) does not
/// stay allocated for the session's life; large enough that the ordinary trickle of one
/// or two events at a time keeps its first allocation instead of freeing and
/// reallocating it on every event.
const KEEP_STORAGE_UP_TO: usize = 8;

/// Creates a bounded queue holding at most `capacity` items.
///
/// Allocates only the shared state; storage for items is allocated by the first
/// [`Sender::try_send`].
///
/// # Panics
///
/// If `capacity` is 0, like `tokio::sync::mpsc::channel`.
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    weighted(capacity, usize::MAX, |_| 0)
}

/// Creates a queue holding at most `capacity` items and at most `max_bytes` by `weigh`'s
/// measure (past an empty queue: one item always fits).
///
/// # Panics
///
/// If `capacity` is 0.
pub fn weighted<T>(
    capacity: usize,
    max_bytes: usize,
    weigh: fn(&T) -> usize,
) -> (Sender<T>, Receiver<T>) {
    assert!(capacity > 0, "mailbox capacity must be greater than 0");
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            bytes: 0,
            receiver_closed: false,
        }),
        capacity,
        max_bytes,
        weigh,
        senders: AtomicUsize::new(1),
        receiver_waker: AtomicWaker::new(),
    });
    (
        Sender {
            shared: Arc::clone(&shared),
        },
        Receiver { shared },
    )
}

/// What the senders and the receiver share: the one allocation of an idle queue.
struct Shared<T> {
    /// The items and the receiver's liveness, behind one lock so that "the receiver is
    /// gone" and "push an item" can never interleave (an item pushed after the receiver
    /// dropped the queue would never be freed until the last sender went away).
    state: Mutex<State<T>>,
    /// The bound given to [`channel`]: a session that does not drain its queue is not
    /// allowed to grow our memory.
    capacity: usize,
    /// The bound in bytes given to [`weighted`]: what a reader that stops reading may hold
    /// whatever the size of each item.
    max_bytes: usize,
    /// What one item weighs against `max_bytes`.
    weigh: fn(&T) -> usize,
    /// Live [`Sender`]s. Kept outside the lock because only cloning and dropping a sender
    /// change it; when it reaches 0 the receiver must learn the queue has ended.
    senders: AtomicUsize,
    /// The task waiting in [`Receiver::recv`], woken by the push that makes the queue
    /// non-empty and by the last sender's drop. Outside the lock so that waking never
    /// happens under it.
    receiver_waker: AtomicWaker,
}

/// The part of [`Shared`] that is read and written together, under its lock.
struct State<T> {
    /// The queued items, oldest first. `VecDeque::new()` does not allocate, which is the
    /// point of this module: an idle queue owns no storage.
    queue: VecDeque<T>,
    /// What the queued items weigh together, by [`Shared::weigh`].
    bytes: usize,
    /// The receiver was dropped or closed: later sends fail with `Closed`, so a sender
    /// learns it is talking to nobody instead of filling a queue no one reads.
    receiver_closed: bool,
}

impl<T> Shared<T> {
    /// Locks the state. Poisoning is ignored: nothing that can panic (dropping an item,
    /// waking a task) runs under the lock, and every critical section leaves the state
    /// consistent at each step, so a poisoned lock holds nothing half-done.
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The sending half; clone it to have several producers.
pub struct Sender<T> {
    /// The queue this sender pushes into.
    shared: Arc<Shared<T>>,
}

impl<T> Sender<T> {
    /// Queues `item` without waiting.
    ///
    /// Fails with [`TrySendError::Closed`] once the receiver has been dropped or closed,
    /// otherwise with [`TrySendError::Full`] when `capacity` items are already queued;
    /// either way the item is handed back.
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        let was_empty = {
            let mut state = self.shared.lock();
            if state.receiver_closed {
                return Err(TrySendError::Closed(item));
            }
            if state.queue.len() >= self.shared.capacity {
                return Err(TrySendError::Full(item));
            }
            let weight = (self.shared.weigh)(&item);
            if !state.queue.is_empty() && state.bytes + weight > self.shared.max_bytes {
                return Err(TrySendError::Full(item));
            }
            state.bytes += weight;
            let was_empty = state.queue.is_empty();
            // From empty storage, `VecDeque` allocates room for 4 items at once (for items
            // of up to 1 KiB) and doubles from there, so a growing queue reallocates only
            // a few times.
            state.queue.push_back(item);
            was_empty
        };
        // Only the push that makes the queue non-empty needs to wake the receiver: it
        // only ever waits after seeing the queue empty (under the lock, after registering
        // its waker), so any later push into a non-empty queue was preceded by one that
        // found it empty and woke it.
        if was_empty {
            self.shared.receiver_waker.wake();
        }
        Ok(())
    }

    /// Whether the receiver has been dropped or closed; if so every send fails.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().receiver_closed
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        // Relaxed, as for `Arc`'s count: a new sender can only be made from a live one,
        // so the count cannot be 0 here and nobody can observe the increment too late.
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        // Release: the receiver that sees 0 (with Acquire) also sees every push this
        // sender made. The last sender wakes the receiver so a pending `recv` drains what
        // is left and ends.
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.receiver_waker.wake();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

/// The receiving half; there is exactly one.
pub struct Receiver<T> {
    /// The queue this receiver drains.
    shared: Arc<Shared<T>>,
}

impl<T> Receiver<T> {
    /// Receives the next item, waiting for one if the queue is empty.
    ///
    /// Returns `None` once every [`Sender`] has been dropped (or [`Receiver::close`] was
    /// called) and the queue is empty; items queued before that are still delivered.
    ///
    /// Cancel-safe: an item is taken from the queue only in the poll that returns it, so
    /// dropping this future (say, in a `tokio::select!` whose other branch won) loses
    /// nothing.
    pub async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next item; [`Receiver::recv`] as a poll function.
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if let Poll::Ready(next) = self.take() {
            return Poll::Ready(next);
        }
        self.shared.receiver_waker.register(cx.waker());
        // Look again now that the waker is registered: an item or a last drop that came
        // between the first look and the registration woke nobody (or a stale waker).
        self.take()
    }

    /// Receives the next item if one is queued.
    ///
    /// Fails with [`TryRecvError::Empty`] if none is queued yet, and with
    /// [`TryRecvError::Disconnected`] if none is queued and none ever will be (every
    /// sender dropped, or the receiver closed).
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        match self.take() {
            Poll::Ready(Some(item)) => Ok(item),
            Poll::Ready(None) => Err(TryRecvError::Disconnected),
            Poll::Pending => Err(TryRecvError::Empty),
        }
    }

    /// Stops the queue accepting items; those already queued can still be received.
    pub fn close(&mut self) {
        self.shared.lock().receiver_closed = true;
    }

    /// The number of queued items.
    pub fn len(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// Whether no item is queued.
    pub fn is_empty(&self) -> bool {
        self.shared.lock().queue.is_empty()
    }

    /// Pops the oldest item: `Ready(Some)`, `Ready(None)` if the queue has ended, or
    /// `Pending` if it is merely empty. Registers no waker.
    fn take(&mut self) -> Poll<Option<T>> {
        // Read before looking at the queue: had it been read after, a sender could push
        // and drop in between, and the queue would be reported ended with an item in it.
        // Acquire pairs with the senders' Release decrement, so when this reads 0 every
        // push made by any sender is visible under the lock below.
        let no_senders = self.shared.senders.load(Ordering::Acquire) == 0;
        let (next, spare) = {
            let mut state = self.shared.lock();
            let next = state.queue.pop_front();
            if let Some(item) = &next {
                state.bytes -= (self.shared.weigh)(item);
            }
            // Drained: give back storage a burst grew beyond the threshold (freed after
            // unlocking). The next send starts again from 4 slots.
            let spare = (state.queue.is_empty() && state.queue.capacity() > KEEP_STORAGE_UP_TO)
                .then(|| std::mem::take(&mut state.queue));
            let ended = no_senders || state.receiver_closed;
            let next = match next {
                Some(item) => Poll::Ready(Some(item)),
                None if ended => Poll::Ready(None),
                None => Poll::Pending,
            };
            (next, spare)
        };
        drop(spare);
        next
    }

    /// The item storage currently allocated, for the tests that check it is given back.
    #[cfg(test)]
    fn storage_capacity(&self) -> usize {
        self.shared.lock().queue.capacity()
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // Mark the queue closed and take its items under the lock, then drop them after
        // unlocking: their memory is freed now, not when the last sender goes, and an
        // item's own `Drop` never runs under our lock.
        let items = {
            let mut state = self.shared.lock();
            state.receiver_closed = true;
            state.bytes = 0;
            std::mem::take(&mut state.queue)
        };
        drop(items);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

/// Why [`Sender::try_send`] failed; carries the item back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// `capacity` items are queued: the receiver is not keeping up.
    Full(T),
    /// The receiver has been dropped or closed.
    Closed(T),
}

impl<T> TrySendError<T> {
    /// The item that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(item) | TrySendError::Closed(item) => item,
        }
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "no available capacity",
            TrySendError::Closed(_) => "channel closed",
        })
    }
}

impl<T: fmt::Debug> std::error::Error for TrySendError<T> {}

/// Why [`Receiver::try_recv`] returned no item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing is queued now, but a sender may still send.
    Empty,
    /// Nothing is queued and nothing will be: every sender is gone, or the receiver
    /// closed the queue.
    Disconnected,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "receiving on an empty channel",
            TryRecvError::Disconnected => "receiving on a closed channel",
        })
    }
}

impl std::error::Error for TryRecvError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::sync::atomic::AtomicBool;
    use std::task::{Wake, Waker};

    /// A waker that records whether it was woken, so tests can poll by hand.
    #[derive(Default)]
    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    impl Flag {
        fn woken(&self) -> bool {
            self.0.swap(false, Ordering::SeqCst)
        }
    }

    fn flag() -> (Arc<Flag>, Waker) {
        let flag = Arc::new(Flag::default());
        let waker = Waker::from(Arc::clone(&flag));
        (flag, waker)
    }

    #[test]
    fn shared_state_is_small() {
        let size = std::mem::size_of::<Shared<[u8; 32]>>();
        eprintln!("size_of::<Shared<[u8; 32]>>() = {size}");
        assert!(size <= 112, "Shared<[u8; 32]> is {size} bytes");
        // The item type does not change it: items live behind the deque's pointer.
        assert_eq!(size, std::mem::size_of::<Shared<u8>>());
    }

    #[test]
    fn idle_queue_allocates_no_storage() {
        let (tx, mut rx) = channel::<[u8; 32]>(64);
        assert_eq!(rx.storage_capacity(), 0);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(rx.storage_capacity(), 0);
        tx.try_send([1; 32]).unwrap();
        assert!(rx.storage_capacity() >= 1);
    }

    #[test]
    fn a_weighted_queue_is_bounded_by_bytes_but_always_takes_one() {
        let (tx, mut rx) = weighted::<Vec<u8>>(1000, 100, Vec::len);
        tx.try_send(vec![0; 250])
            .expect("one item fits an empty queue, whatever it weighs");
        assert!(matches!(
            tx.try_send(vec![0; 1]),
            Err(TrySendError::Full(_))
        ));
        assert_eq!(rx.try_recv().unwrap().len(), 250);
        for _ in 0..10 {
            tx.try_send(vec![0; 10]).unwrap();
        }
        assert!(
            matches!(tx.try_send(vec![0; 1]), Err(TrySendError::Full(_))),
            "100 bytes queued: full"
        );
        rx.try_recv().unwrap();
        tx.try_send(vec![0; 10])
            .expect("room again once one is taken");
    }

    #[test]
    fn handles_are_send_and_sync() {
        fn send_sync<X: Send + Sync>() {}
        send_sync::<Sender<String>>();
        send_sync::<Receiver<String>>();
        send_sync::<TrySendError<String>>();
    }

    #[test]
    #[should_panic(expected = "capacity")]
    fn zero_capacity_panics() {
        let _ = channel::<u8>(0);
    }

    #[tokio::test]
    async fn delivers_in_fifo_order() {
        let (tx, mut rx) = channel(16);
        let tx2 = tx.clone();
        for i in 0..10 {
            let sender = if i % 2 == 0 { &tx } else { &tx2 };
            sender.try_send(i).unwrap();
        }
        assert_eq!(rx.len(), 10);
        assert!(!rx.is_empty());
        for i in 0..10 {
            assert_eq!(rx.recv().await, Some(i));
        }
        assert!(rx.is_empty());
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }

    #[tokio::test]
    async fn full_at_capacity_until_one_is_received() {
        let (tx, mut rx) = channel(3);
        for i in 0..3 {
            tx.try_send(i).unwrap();
        }
        assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
        assert_eq!(tx.clone().try_send(3), Err(TrySendError::Full(3)));
        assert_eq!(rx.recv().await, Some(0));
        tx.try_send(3).unwrap();
        assert_eq!(tx.try_send(4), Err(TrySendError::Full(4)));
        for i in 1..4 {
            assert_eq!(rx.recv().await, Some(i));
        }
    }

    #[tokio::test]
    async fn receiver_drop_closes_and_frees_queued_items() {
        let (tx, rx) = channel(4);
        let item = Arc::new(());
        tx.try_send(Arc::clone(&item)).unwrap();
        tx.try_send(Arc::clone(&item)).unwrap();
        assert_eq!(Arc::strong_count(&item), 3);
        assert!(!tx.is_closed());

        drop(rx);
        assert!(tx.is_closed());
        assert_eq!(
            Arc::strong_count(&item),
            1,
            "queued items outlived the receiver"
        );
        match tx.try_send(Arc::clone(&item)) {
            Err(TrySendError::Closed(back)) => assert!(Arc::ptr_eq(&back, &item)),
            other => panic!("expected Closed, got {other:?}"),
        }
        assert_eq!(Arc::strong_count(&item), 1);
    }

    #[tokio::test]
    async fn closed_takes_precedence_over_full() {
        let (tx, mut rx) = channel(1);
        tx.try_send(1).unwrap();
        rx.close();
        assert!(tx.is_closed());
        assert_eq!(tx.try_send(2), Err(TrySendError::Closed(2)));
        // What was queued before closing is still delivered, then the queue ends even
        // though a sender is alive.
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, None);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[tokio::test]
    async fn ends_after_last_sender_only_once_drained() {
        let (tx, mut rx) = channel(4);
        let tx2 = tx.clone();
        tx.try_send(1).unwrap();
        tx2.try_send(2).unwrap();
        drop(tx);
        tx2.try_send(3).unwrap();
        drop(tx2);
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.recv().await, Some(3));
        assert_eq!(rx.recv().await, None);
        assert_eq!(rx.recv().await, None);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[test]
    fn pending_recv_is_woken_by_send_and_by_last_drop() {
        let (tx, mut rx) = channel(4);
        let (flag, waker) = flag();
        let mut cx = Context::from_waker(&waker);

        {
            let mut recv = pin!(rx.recv());
            assert_eq!(recv.as_mut().poll(&mut cx), Poll::Pending);
            assert!(!flag.woken());
            tx.try_send(7).unwrap();
            assert!(flag.woken(), "a send did not wake the pending recv");
            assert_eq!(recv.as_mut().poll(&mut cx), Poll::Ready(Some(7)));
        }

        let tx2 = tx.clone();
        let mut recv = pin!(rx.recv());
        assert_eq!(recv.as_mut().poll(&mut cx), Poll::Pending);
        drop(tx);
        assert!(!flag.woken(), "woken while a sender is still alive");
        drop(tx2);
        assert!(
            flag.woken(),
            "the last sender's drop did not wake the pending recv"
        );
        assert_eq!(recv.as_mut().poll(&mut cx), Poll::Ready(None));
    }

    #[tokio::test]
    async fn recv_in_another_task_is_woken_by_send() {
        let (tx, mut rx) = channel(4);
        let task = tokio::spawn(async move { (rx.recv().await, rx) });
        tokio::task::yield_now().await;
        tx.try_send(1).unwrap();
        let (got, mut rx) = task.await.unwrap();
        assert_eq!(got, Some(1));

        let task = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        drop(tx);
        assert_eq!(task.await.unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn recv_on_another_thread_is_woken_by_last_drop() {
        let (tx, mut rx) = channel::<u32>(4);
        let tx2 = tx.clone();
        let task = tokio::spawn(async move { rx.recv().await });
        drop(tx);
        tokio::task::yield_now().await;
        drop(tx2);
        assert_eq!(task.await.unwrap(), None);
    }

    #[test]
    fn cancelled_recv_loses_nothing() {
        let (tx, mut rx) = channel(4);
        let (flag, waker) = flag();
        let mut cx = Context::from_waker(&waker);

        // Cancelled while pending, before the send.
        {
            let mut recv = pin!(rx.recv());
            assert_eq!(recv.as_mut().poll(&mut cx), Poll::Pending);
        }
        tx.try_send(1).unwrap();
        // Cancelled after being woken but before being polled again.
        {
            let mut recv = pin!(rx.recv());
            assert_eq!(recv.as_mut().poll(&mut cx), Poll::Ready(Some(1)));
        }
        {
            let mut recv = pin!(rx.recv());
            assert_eq!(recv.as_mut().poll(&mut cx), Poll::Pending);
            tx.try_send(2).unwrap();
            assert!(flag.woken());
        }
        tx.try_send(3).unwrap();
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Ok(3));
    }

    #[tokio::test]
    async fn cancelled_recv_in_select_loses_nothing() {
        let (tx, mut rx) = channel(4);
        for round in 0..3 {
            // `recv` is polled (and pends) before the other branch wins and drops it.
            tokio::select! {
                biased;
                _ = rx.recv() => unreachable!("nothing was sent"),
                () = tokio::task::yield_now() => {}
            }
            tx.try_send(round).unwrap();
            tx.try_send(round + 10).unwrap();
            // The item is queued when `recv` is dropped unpolled.
            tokio::select! {
                biased;
                () = std::future::ready(()) => {}
                _ = rx.recv() => unreachable!("the first branch is ready"),
            }
            assert_eq!(rx.recv().await, Some(round));
            assert_eq!(rx.recv().await, Some(round + 10));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_senders_deliver_everything_once_in_order() {
        const SENDERS: usize = 4;
        const EACH: u32 = 10_000;
        let (tx, mut rx) = channel::<(usize, u32)>(16);
        for id in 0..SENDERS {
            let tx = tx.clone();
            tokio::spawn(async move {
                for seq in 0..EACH {
                    let mut item = (id, seq);
                    loop {
                        match tx.try_send(item) {
                            Ok(()) => break,
                            Err(TrySendError::Full(back)) => {
                                item = back;
                                tokio::task::yield_now().await;
                            }
                            Err(TrySendError::Closed(_)) => panic!("receiver gone"),
                        }
                    }
                }
            });
        }
        drop(tx);

        let mut next = [0u32; SENDERS];
        let mut total = 0;
        while let Some((id, seq)) = rx.recv().await {
            assert_eq!(seq, next[id], "sender {id} out of order");
            next[id] += 1;
            total += 1;
        }
        assert_eq!(next, [EACH; SENDERS]);
        assert_eq!(total, SENDERS * EACH as usize);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_send_and_last_drop_never_strand_the_receiver() {
        for _ in 0..2_000 {
            let (tx, mut rx) = channel(1);
            let sender = tokio::spawn(async move {
                tx.try_send(1).unwrap();
                drop(tx);
            });
            assert_eq!(rx.recv().await, Some(1));
            assert_eq!(rx.recv().await, None);
            sender.await.unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_receiver_drop_frees_every_item() {
        let item = Arc::new(());
        for _ in 0..500 {
            let (tx, rx) = channel(8);
            let senders: Vec<_> = (0..3)
                .map(|_| {
                    let (tx, item) = (tx.clone(), Arc::clone(&item));
                    tokio::spawn(async move {
                        // Until the receiver is gone: `Closed` ends the loop.
                        while let Ok(()) | Err(TrySendError::Full(_)) =
                            tx.try_send(Arc::clone(&item))
                        {
                            tokio::task::yield_now().await;
                        }
                    })
                })
                .collect();
            tokio::task::yield_now().await;
            drop(rx);
            for sender in senders {
                sender.await.unwrap();
            }
            assert_eq!(Arc::strong_count(&item), 1, "an item outlived the receiver");
            drop(tx);
        }
    }

    #[tokio::test]
    async fn drained_burst_gives_storage_back() {
        let (tx, mut rx) = channel(64);
        for i in 0..64 {
            tx.try_send([i as u8; 32]).unwrap();
        }
        assert!(rx.storage_capacity() >= 64);
        for i in 0..63 {
            assert_eq!(rx.recv().await, Some([i as u8; 32]));
        }
        assert!(
            rx.storage_capacity() >= 64,
            "given back before fully drained"
        );
        assert_eq!(rx.try_recv(), Ok([63; 32]));
        assert_eq!(rx.storage_capacity(), 0);

        // A trickle within the threshold keeps its small allocation instead of churning.
        for i in 0..3 {
            tx.try_send([i; 32]).unwrap();
        }
        let small = rx.storage_capacity();
        assert!((1..=KEEP_STORAGE_UP_TO).contains(&small), "{small}");
        for i in 0..3 {
            assert_eq!(rx.recv().await, Some([i; 32]));
        }
        assert_eq!(rx.storage_capacity(), small);
    }

    #[test]
    fn errors_display_and_hand_the_item_back() {
        assert_eq!(TrySendError::Full(5).to_string(), "no available capacity");
        assert_eq!(TrySendError::Closed(5).to_string(), "channel closed");
        assert_eq!(TrySendError::Full(5).into_inner(), 5);
        assert_eq!(TrySendError::Closed(6).into_inner(), 6);
        let boxed: Box<dyn std::error::Error> = Box::new(TrySendError::Full(1));
        assert_eq!(boxed.to_string(), "no available capacity");
        assert_eq!(
            TryRecvError::Disconnected.to_string(),
            "receiving on a closed channel"
        );
    }
}
