//! Name resolution for the upstream clients: the system resolver (`getaddrinfo` on tokio's blocking pool,
//! as reqwest's default resolver does it), with the lookups of one name that are in flight at the same time
//! shared.
//!
//! reqwest resolves the host on every new connection. A burst of turns opens a connection per turn to
//! each upstream at the same moment (the pools are empty or busy), and every one of them ran its own
//! `getaddrinfo` on a blocking thread of its own: a burst of tool turns against hosts given by name started
//! a thread per connection (BENCHMARKS.md, FC-sized), each charged its kernel stack and the stack pages it
//! touched, all for the same two or three names, on an instance with 0.05 vCPU to create them with. Here a lookup that starts while another one for the same name is running waits for that one
//! and takes its answer; nothing is kept once a lookup ends, so every new lookup asks the system again and
//! DNS changes are seen exactly as before. Address literals never reach a resolver (hyper-util parses them
//! first).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// One name's lookup, for everyone waiting on it.
type Lookup = Shared<BoxFuture<'static, Result<Arc<[SocketAddr]>, Arc<io::Error>>>>;

/// How a name becomes addresses (port 0; reqwest sets the URL's). [`system`] in the process; tests count.
type LookupFn = dyn Fn(String) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>> + Send + Sync;

/// The process's resolver: shared by every upstream client, so two clients of one host share lookups too.
pub(crate) fn resolver() -> Arc<SharedLookups> {
    static RESOLVER: LazyLock<Arc<SharedLookups>> = LazyLock::new(|| Arc::new(SharedLookups::new(Arc::new(system))));
    RESOLVER.clone()
}

/// `getaddrinfo`, on tokio's blocking pool.
fn system(host: String) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>> {
    Box::pin(async move { tokio::net::lookup_host((host.as_str(), 0)).await.map(Iterator::collect) })
}

/// Resolves names with `lookup`, one lookup per name at a time.
pub(crate) struct SharedLookups {
    lookup: Arc<LookupFn>,
    in_flight: Arc<Mutex<HashMap<String, Lookup>>>,
}

impl SharedLookups {
    fn new(lookup: Arc<LookupFn>) -> Self {
        SharedLookups { lookup, in_flight: Arc::default() }
    }

    /// The running lookup of `host`, or a new one. The lookup runs as a task of its own, so it ends (and
    /// leaves the table) even when every connection waiting on it was abandoned: an answer is never handed
    /// out later than the lookup that produced it.
    fn lookup(&self, host: &str) -> Lookup {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(running) = in_flight.get(host) {
            return running.clone();
        }
        let (table, lookup, name) = (self.in_flight.clone(), self.lookup.clone(), host.to_owned());
        let task = tokio::spawn(async move {
            let result = lookup(name.clone()).await;
            table.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&name);
            result
        });
        let shared = async move {
            match task.await {
                Ok(Ok(addrs)) => Ok(Arc::from(addrs)),
                Ok(Err(error)) => Err(Arc::new(error)),
                Err(joined) => Err(Arc::new(io::Error::other(format!("name lookup ended: {joined}")))),
            }
        }
        .boxed()
        .shared();
        in_flight.insert(host.to_owned(), shared.clone());
        shared
    }
}

impl Resolve for SharedLookups {
    fn resolve(&self, name: Name) -> Resolving {
        let lookup = self.lookup(name.as_str());
        Box::pin(async move {
            match lookup.await {
                Ok(addrs) => Ok(Box::new((0..addrs.len()).map(move |i| addrs[i])) as Addrs),
                Err(error) => Err(Box::new(LookupFailed(error)) as Box<dyn std::error::Error + Send + Sync>),
            }
        })
    }
}

/// The system resolver's error, as every connection that waited on the lookup sees it.
#[derive(Debug)]
struct LookupFailed(Arc<io::Error>);

impl std::fmt::Display for LookupFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for LookupFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::Notify;

    use super::*;

    /// A lookup that counts its calls and answers only when `release` is notified.
    fn gated(calls: Arc<AtomicUsize>, release: Arc<Notify>, answer: io::Result<SocketAddr>) -> Arc<LookupFn> {
        let answer = Arc::new(answer.map_err(|e| (e.kind(), e.to_string())));
        Arc::new(move |_host| {
            calls.fetch_add(1, Ordering::SeqCst);
            let (release, answer) = (release.clone(), answer.clone());
            Box::pin(async move {
                release.notified().await;
                match answer.as_ref() {
                    Ok(addr) => Ok(vec![*addr]),
                    Err((kind, message)) => Err(io::Error::new(*kind, message.clone())),
                }
            })
        })
    }

    async fn resolve(resolver: &SharedLookups, host: &str) -> Result<Vec<SocketAddr>, String> {
        let name = Name::from_str(host).unwrap();
        resolver.resolve(name).await.map(Iterator::collect).map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn concurrent_lookups_of_one_name_share_one_answer_and_nothing_is_kept_after() {
        let (calls, release) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
        let addr = SocketAddr::from(([10, 0, 0, 7], 0));
        let resolver = Arc::new(SharedLookups::new(gated(calls.clone(), release.clone(), Ok(addr))));
        let waiting = futures_util::future::join_all((0..50).map(|_| resolve(&resolver, "dashscope.example")));
        let other = resolve(&resolver, "gateway.example");
        let released = async {
            // Every resolve has asked by the time both lookups are waiting to be released.
            while calls.load(Ordering::SeqCst) < 2 {
                tokio::task::yield_now().await;
            }
            release.notify_waiters();
        };
        let (answers, other, ()) = tokio::join!(waiting, other, released);
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one lookup per name, not per connection");
        assert!(answers.iter().all(|a| a.as_deref() == Ok(&[addr][..])), "{answers:?}");
        assert_eq!(other, Ok(vec![addr]));
        assert!(resolver.in_flight.lock().unwrap().is_empty(), "a finished lookup stays in the table");

        // The next connection asks the system again.
        let again = tokio::spawn({
            let resolver = resolver.clone();
            async move { resolve(&resolver, "dashscope.example").await }
        });
        while calls.load(Ordering::SeqCst) < 3 {
            tokio::task::yield_now().await;
        }
        release.notify_waiters();
        assert_eq!(again.await.unwrap(), Ok(vec![addr]));
    }

    #[tokio::test]
    async fn a_failed_lookup_fails_every_waiter_with_the_system_s_reason() {
        let (calls, release) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
        let failure = Err(io::Error::other("failed to lookup address information: Name or service not known"));
        let resolver = SharedLookups::new(gated(calls.clone(), release.clone(), failure));
        let waiting = futures_util::future::join_all((0..3).map(|_| resolve(&resolver, "nowhere.example")));
        let released = async {
            while calls.load(Ordering::SeqCst) < 1 {
                tokio::task::yield_now().await;
            }
            release.notify_waiters();
        };
        let (answers, ()) = tokio::join!(waiting, released);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        for answer in answers {
            assert_eq!(answer, Err("failed to lookup address information: Name or service not known".into()));
        }
    }

    #[tokio::test]
    async fn an_abandoned_lookup_still_ends_and_leaves_the_table() {
        let (calls, release) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
        let resolver =
            SharedLookups::new(gated(calls.clone(), release.clone(), Ok(SocketAddr::from(([10, 0, 0, 8], 0)))));
        // Started, then dropped while the lookup runs, as a cancelled connect would be.
        let abandoned = tokio::spawn(resolver.resolve(Name::from_str("mcp.example").unwrap()));
        while calls.load(Ordering::SeqCst) < 1 {
            tokio::task::yield_now().await;
        }
        abandoned.abort();
        assert!(abandoned.await.is_err_and(|e| e.is_cancelled()));
        assert_eq!(resolver.in_flight.lock().unwrap().len(), 1);
        release.notify_waiters();
        for _ in 0..100 {
            if resolver.in_flight.lock().unwrap().is_empty() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the abandoned lookup never left the table");
    }

    #[tokio::test]
    async fn the_system_resolver_answers_localhost() {
        let addrs = resolve(&SharedLookups::new(Arc::new(system)), "localhost").await.unwrap();
        assert!(addrs.iter().any(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}
