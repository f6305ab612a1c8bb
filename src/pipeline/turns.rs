//! The turns running on this instance, so a turn can be stopped from anywhere (issue 28): the request
//! that stops it may reach any instance. [`Pipeline::cancel`] stops a turn here when it runs here, and
//! otherwise, with a Redis store, publishes its id on the store's stop channel, to which every instance
//! listens (`sessions::redis`, "stops"); the instance running it stops it. With the in-process store there
//! is one instance to ask: a turn not found here is not running.
//!
//! A stopped turn ends `cancelled` in its face's shape and its session keeps what was said so far (the
//! pump ends it through the session). The registry holds a turn from its start to its end only: a stop
//! for a finished turn finds nothing.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::Pipeline;
use crate::failure::Failure;

/// Where a stop request found the turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopped {
    /// Running here: stopped.
    Here,
    /// Not running here; asked every other instance (Redis).
    Asked,
    /// Not running here, and there is no other instance to ask (in-process store).
    NotRunning,
}

/// This instance's running turns: turn id → what stops it.
#[derive(Default)]
pub(crate) struct Turns {
    running: Arc<Mutex<HashMap<String, Arc<Notify>>>>,
}

/// Takes the turn out of the registry when its cancel future is dropped (the turn is over).
struct Registration {
    running: Arc<Mutex<HashMap<String, Arc<Notify>>>>,
    turn_id: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.running).remove(&self.turn_id);
    }
}

fn lock(running: &Mutex<HashMap<String, Arc<Notify>>>) -> MutexGuard<'_, HashMap<String, Arc<Notify>>> {
    // One insert or remove per update: a poisoned map is still consistent.
    running.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Turns {
    /// Registers `turn_id` as running; the future resolves when it is stopped ([`Turns::stop`]) or when
    /// `also` resolves (a face's own stop). Dropping it unregisters the turn.
    pub(crate) fn register(
        &self,
        turn_id: &str,
        also: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let stop = Arc::new(Notify::new());
        lock(&self.running).insert(turn_id.to_owned(), stop.clone());
        let registration = Registration { running: self.running.clone(), turn_id: turn_id.to_owned() };
        async move {
            let _registration = registration;
            tokio::select! {
                // `notify_one` keeps a permit: a stop that came before this is polled still counts.
                () = stop.notified() => {}
                () = also => {}
            }
        }
    }

    /// Stops `turn_id` if it runs here; `false` when it does not.
    pub(crate) fn stop(&self, turn_id: &str) -> bool {
        match lock(&self.running).get(turn_id) {
            Some(stop) => {
                stop.notify_one();
                true
            }
            None => false,
        }
    }

    /// [`Turns::stop`] as a function the store's stop listener calls with each published turn id.
    pub(crate) fn stopper(&self) -> impl Fn(&str) + Send + Sync + 'static {
        let running = self.running.clone();
        move |turn_id| {
            if let Some(stop) = lock(&running).get(turn_id) {
                stop.notify_one();
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.running).len()
    }
}

impl Pipeline {
    /// Stops the running turn `turn_id` (a plan's [`turn_id`](super::Plan::turn_id)) wherever it runs.
    /// Whatever face asked — A2A `tasks/cancel`, the AgentScope `/stop`, a Responses cancel — the turn
    /// ends `cancelled` in its own face's shape, its session keeping what was said so far.
    pub(crate) async fn cancel(&self, turn_id: &str) -> Result<Stopped, Failure> {
        if self.turns.stop(turn_id) {
            return Ok(Stopped::Here);
        }
        let Some(sessions) = &self.sessions else { return Ok(Stopped::NotRunning) };
        match sessions.store.publish_stop(turn_id).await {
            Ok(true) => Ok(Stopped::Asked),
            Ok(false) => Ok(Stopped::NotRunning),
            Err(error) => Err(Failure::session(&error)),
        }
    }

    /// The session store when other instances share it (Redis): where records a later request may ask
    /// about on any instance are kept (`Store::keep`).
    pub(crate) fn shared_store(&self) -> Option<Arc<dyn crate::sessions::Store>> {
        self.sessions.as_ref().map(|sessions| sessions.store.clone()).filter(|store| store.shared())
    }

    /// The id of the turn running in the caller's session `key`, if any (the lease's holder).
    pub(crate) async fn running_in(&self, key: &crate::sessions::SessionKey) -> Result<Option<String>, Failure> {
        let Some(sessions) = &self.sessions else { return Ok(None) };
        sessions.store.holder(key).await.map_err(|e| Failure::session(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_stop_before_the_turn_waits_counts_and_the_end_unregisters() {
        let turns = Turns::default();
        let stopped = turns.register("t1", std::future::pending());
        assert!(turns.stop("t1"));
        assert!(!turns.stop("t2"), "an unknown turn is not stopped");
        tokio::time::timeout(Duration::from_secs(5), stopped).await.expect("the stop was kept");
        assert_eq!(turns.len(), 0, "a finished turn leaves the registry");
    }

    #[tokio::test]
    async fn a_face_s_own_stop_also_stops_the_turn() {
        let turns = Turns::default();
        let stopped = turns.register("t1", async {});
        tokio::time::timeout(Duration::from_secs(5), stopped).await.expect("the face's stop counts");
    }
}
