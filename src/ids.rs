//! Ids that must be unique but need not be secret: message, response, task and tool-call ids.
//!
//! `Uuid::new_v4` asks the kernel for its 16 bytes, one `getrandom` call each, and a turn makes several
//! (more with session memory: every stored message has one). These come
//! from the thread's userspace generator instead, seeded from the OS once per thread (fastrand, already a
//! dependency for jitter): ids of the same form, no system call. What must be unguessable keeps the
//! kernel's randomness: `acs::rpc`'s signature nonce, the AssumeRole session name, the OAuth2 state's nonce
//! and key.

use uuid::Uuid;

/// A random (version 4) UUID from the thread's userspace generator.
pub(crate) fn uuid() -> Uuid {
    uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_4_and_distinct() {
        let ids: std::collections::HashSet<Uuid> = (0..10_000).map(|_| uuid()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| id.get_version_num() == 4));
        assert!(ids.iter().all(|id| id.get_variant() == uuid::Variant::RFC4122));
    }

    #[test]
    fn threads_do_not_share_a_sequence() {
        let other = std::thread::spawn(|| (0..100).map(|_| uuid()).collect::<Vec<_>>()).join().unwrap();
        let here: Vec<Uuid> = (0..100).map(|_| uuid()).collect();
        assert!(other.iter().all(|id| !here.contains(id)));
    }
}
