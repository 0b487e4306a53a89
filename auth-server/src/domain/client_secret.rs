//! Client secrets: generated once, shown once, stored as argon2id PHC strings, verified on
//! dedicated threads with bounded concurrency (each verification holds ~7 MiB and ~18 ms of CPU;
//! a hash made with an earlier release's 19 MiB parameters verifies with its own until its first
//! correct use hashes it again, `client_auth::upgrade_outdated_hash`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use server_kit::random::{self, RandomError};

pub const CLIENT_SECRET_LEN: usize = 48;
/// How long a request may wait for an argon2 slot before answering 503.
pub const ARGON2_WAIT: Duration = Duration::from_secs(2);

/// argon2id with m = 7 MiB, t = 5, p = 1: of the configurations the OWASP Password Storage
/// Cheat Sheet gives as equally strong (m = 19 MiB with t = 2 is another), the one that holds
/// the least memory per verification, for about the same CPU (t × m: 35,840 against 38,912
/// KiB passes). Memory is what a flood of wrong secrets makes the server hold, once per
/// verification slot (bench/RESULTS.md "Memory"); a 286-bit random secret is beyond guessing
/// whichever configuration hashes it. Verification reads the parameters of the stored hash.
pub const MEMORY_KIB: u32 = 7_168;
pub const ITERATIONS: u32 = 5;

fn argon2() -> Result<Argon2<'static>, argon2::Error> {
    Ok(Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(MEMORY_KIB, ITERATIONS, 1, None)?,
    ))
}

/// True for a stored hash made with other parameters than `argon2()`'s (an earlier release's
/// m = 19 MiB, t = 2): verifying it holds more memory than the bound the operator sizes for, so
/// after a correct secret it is hashed again (`HashUpgrades`). Unreadable text is left alone.
pub fn is_outdated(phc: &str) -> bool {
    let Some((hash, params)) = parse(phc) else {
        return false;
    };
    hash.algorithm.as_str() != "argon2id"
        || params.m_cost() != MEMORY_KIB
        || params.t_cost() != ITERATIONS
        || params.p_cost() != 1
}

/// The applications whose outdated hash is being made again, so that the requests of one busy
/// client start one upgrade, not one each. Holds only ids of clients that presented their
/// correct secret, for the few milliseconds of a hash and a write.
#[derive(Debug, Default)]
pub struct HashUpgrades {
    running: Mutex<std::collections::HashSet<uuid::Uuid>>,
}

impl HashUpgrades {
    /// Takes the upgrade of `id`, or `None` when one is already running.
    pub fn start(self: &Arc<Self>, id: uuid::Uuid) -> Option<UpgradeGuard> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.insert(id).then(|| UpgradeGuard {
            upgrades: Arc::clone(self),
            id,
        })
    }
}

/// An upgrade in progress; ends when dropped.
pub struct UpgradeGuard {
    upgrades: Arc<HashUpgrades>,
    id: uuid::Uuid,
}

impl Drop for UpgradeGuard {
    fn drop(&mut self) {
        let mut running = self
            .upgrades
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        running.remove(&self.id);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(transparent)]
    Random(#[from] RandomError),
    #[error("password hashing failed")]
    Hash,
}

/// Generates a secret: 48 base62 characters, about 286 bits.
pub fn generate() -> Result<SecretString, SecretError> {
    Ok(SecretString::from(random::base62(CLIENT_SECRET_LEN)?))
}

pub fn hash(secret: &SecretString) -> Result<String, SecretError> {
    let hasher = argon2().map_err(|_| SecretError::Hash)?;
    hasher
        .hash_password(secret.expose_secret().as_bytes())
        .map(|h| h.to_string())
        .map_err(|_| SecretError::Hash)
}

/// A stored PHC string and its argon2 parameters; `None` for text that is not one.
fn parse(phc: &str) -> Option<(argon2::PasswordHash, Params)> {
    let hash = argon2::PasswordHash::new(phc).ok()?;
    let params = Params::try_from(&hash).ok()?;
    Some((hash, params))
}

/// Verifies `secret` against a PHC string using `blocks` as argon2's working memory, so a busy
/// worker allocates its memory (7 MiB, 19 for an older hash) once per burst instead of on every
/// attempt.
fn verify_with_memory(secret: &[u8], phc: &str, blocks: &mut Vec<argon2::Block>) -> bool {
    let Some((hash, params)) = parse(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    if blocks.len() != params.block_count() {
        if blocks.capacity() < params.block_count() {
            // Reserve past glibc's largest mmap threshold (32 MiB): such an allocation is always
            // its own mapping, so dropping it unmaps it at once. A 7–19 MiB one can instead land
            // in an arena that keeps it resident (hundreds of MiB under a wrong-secret flood).
            // Only the pages argon2 touches become resident.
            *blocks = Vec::with_capacity(params.block_count().max(ALWAYS_MAPPED_BLOCKS));
        }
        blocks.resize(params.block_count(), argon2::Block::default());
    }
    let mut out = vec![0u8; expected.as_bytes().len()];
    let ok = Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(secret, salt, &mut out, &mut blocks[..])
        .is_ok();
    ok && bool::from(subtle::ConstantTimeEq::ct_eq(
        out.as_slice(),
        expected.as_bytes(),
    ))
}

/// Runs the calling argon2 worker at nice 10: a CPU-bound hash yields to requests that need
/// none, so a flood of wrong secrets leaves cached clients their throughput (docs/spec/security.md). At
/// the default priority the two workers of a 2-core machine took about half of it (`scripts/bench`,
/// before this change). On Linux the nice value is per thread; failing to lower it only costs fairness.
#[cfg(target_os = "linux")]
fn yield_to_requests() {
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10);
}

#[cfg(not(target_os = "linux"))]
fn yield_to_requests() {}

/// 33 MiB of argon2 blocks (1 KiB each): above glibc's `DEFAULT_MMAP_THRESHOLD_MAX`.
const ALWAYS_MAPPED_BLOCKS: usize = 33 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("too many secret verifications in progress")]
    Busy,
    #[error("secret verification task failed")]
    Task,
}

/// Which budget a verification is paid from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// `ARGON2_MAX_CONCURRENT` slots, for attempts within the failure limits.
    Normal,
    /// `RESERVED_SLOTS` slots of their own, for attempts past a limit: a guesser can't take the
    /// normal slots from everyone, and the real client, limited because of someone else's
    /// guesses, is still verified (docs/spec/security.md "Client authentication": no lock-out). At most `RESERVED_PER_SOURCE`
    /// of them wait per source, so guessers at a few addresses can't fill the lane.
    Reserved { source: IpAddr },
}

/// Slots of the reserved lane.
pub const RESERVED_SLOTS: usize = 1;
/// Requests that may wait per slot; past that a request is refused at once instead of held
/// (a flood can't make the server keep its requests). 64 × ~18 ms stays inside `ARGON2_WAIT`.
pub const MAX_WAITING_PER_SLOT: usize = 64;
/// Reserved-lane requests that may wait or run per source address at once.
pub const RESERVED_PER_SOURCE: u32 = 16;

struct Job {
    secret: SecretString,
    phc: Arc<str>,
    reply: tokio::sync::oneshot::Sender<bool>,
}

/// A budget of slots with a bounded number of waiters.
#[derive(Debug)]
struct Pool {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
}

impl Pool {
    fn new(slots: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(slots)),
            waiting: AtomicUsize::new(0),
            max_waiting: slots.saturating_mul(MAX_WAITING_PER_SLOT),
        }
    }

    async fn acquire(&self) -> Result<OwnedSemaphorePermit, VerifyError> {
        if let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() {
            return Ok(permit);
        }
        let waiting = self.waiting.fetch_add(1, Ordering::AcqRel);
        let _waiter = scopeguard(&self.waiting);
        if waiting >= self.max_waiting {
            return Err(VerifyError::Busy);
        }
        tokio::time::timeout(ARGON2_WAIT, Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| VerifyError::Busy)?
            .map_err(|_| VerifyError::Task)
    }
}

/// Decrements `counter` when dropped.
fn scopeguard(counter: &AtomicUsize) -> impl Drop + '_ {
    struct Guard<'a>(&'a AtomicUsize);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::AcqRel);
        }
    }
    Guard(counter)
}

/// Runs argon2 verifications on dedicated threads (one per slot of both lanes), each reusing its
/// memory while jobs are queued and releasing it when idle: memory stays at most
/// (`max` + `RESERVED_SLOTS`) × 7 MiB (19 for older hashes) however many requests arrive, and falls back once they
/// stop.
#[derive(Debug, Clone)]
pub struct SecretVerifier {
    normal: Arc<Pool>,
    reserved: Arc<Pool>,
    /// Reserved-lane requests in flight per source; entries live only while in flight, so
    /// there are at most `RESERVED_SLOTS × MAX_WAITING_PER_SLOT` of them.
    reserved_sources: Arc<Mutex<HashMap<IpAddr, u32>>>,
    jobs: crossbeam_channel::Sender<JobBox>,
    /// Verified against for unknown client_ids, so they cost the same time as a wrong secret.
    dummy_hash: Arc<str>,
}

/// `Job` behind a box with a `Debug` impl that shows nothing.
struct JobBox(Job);

impl std::fmt::Debug for JobBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

/// Holds one of a source's reserved-lane places; gives it back when dropped.
struct SourcePlace<'a> {
    map: &'a Mutex<HashMap<IpAddr, u32>>,
    source: IpAddr,
}

impl Drop for SourcePlace<'_> {
    fn drop(&mut self) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.source);
            }
        }
    }
}

impl SecretVerifier {
    pub fn new(max_concurrent: usize) -> Result<Self, SecretError> {
        let dummy = SecretString::from(random::base62(CLIENT_SECRET_LEN)?);
        // Multi-consumer, so an idle worker waits on the channel itself: behind a mutex, a
        // worker that finished a job would queue for the lock (held by the other one, blocked in
        // `recv`) with its memory still allocated.
        let (jobs, queue) = crossbeam_channel::unbounded::<JobBox>();
        // One thread per slot of both lanes: a job that holds a permit never waits for a thread.
        for i in 0..max_concurrent + RESERVED_SLOTS {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    yield_to_requests();
                    let mut blocks = Vec::new();
                    loop {
                        let job = match queue.try_recv() {
                            Ok(job) => job,
                            Err(_) => {
                                // Idle: give the memory back until the next job, so memory
                                // is only held while hashing.
                                blocks = Vec::new();
                                match queue.recv() {
                                    Ok(job) => job,
                                    Err(_) => return,
                                }
                            }
                        };
                        let JobBox(job) = job;
                        let ok = verify_with_memory(
                            job.secret.expose_secret().as_bytes(),
                            &job.phc,
                            &mut blocks,
                        );
                        let _ = job.reply.send(ok);
                    }
                })
                .map_err(|_| SecretError::Hash)?;
        }
        Ok(Self {
            normal: Arc::new(Pool::new(max_concurrent)),
            reserved: Arc::new(Pool::new(RESERVED_SLOTS)),
            reserved_sources: Arc::default(),
            jobs,
            dummy_hash: hash(&dummy)?.into(),
        })
    }

    /// The stored hash verified against for an unknown client_id.
    pub fn dummy_hash(&self) -> &str {
        &self.dummy_hash
    }

    fn take_source_place(&self, source: IpAddr) -> Option<SourcePlace<'_>> {
        let mut map = self
            .reserved_sources
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let n = map.entry(source).or_insert(0);
        if *n >= RESERVED_PER_SOURCE {
            return None;
        }
        *n += 1;
        Some(SourcePlace {
            map: &self.reserved_sources,
            source,
        })
    }

    /// Verifies `secret` against `stored` (or, when `None`, against the dummy hash, which always
    /// fails), paid from `lane`. Waits at most `ARGON2_WAIT` for a slot; `Busy` when the lane
    /// is full.
    pub async fn verify(
        &self,
        secret: SecretString,
        stored: Option<String>,
        lane: Lane,
    ) -> Result<bool, VerifyError> {
        // For traces (nothing in the logs): the verification, and inside it the wait for a
        // worker, which is where a flood shows.
        let span = tracing::info_span!(target: server_kit::traces::TARGET, "argon2 verify");
        self.verify_in(secret, stored, lane).instrument(span).await
    }

    async fn verify_in(
        &self,
        secret: SecretString,
        stored: Option<String>,
        lane: Lane,
    ) -> Result<bool, VerifyError> {
        let (_place, pool) = match lane {
            Lane::Normal => (None, &self.normal),
            Lane::Reserved { source } => (
                Some(self.take_source_place(source).ok_or(VerifyError::Busy)?),
                &self.reserved,
            ),
        };
        let queue = tracing::info_span!(target: server_kit::traces::TARGET, "argon2 queue");
        let _permit = pool.acquire().instrument(queue).await?;
        let known = stored.is_some();
        let phc: Arc<str> = match stored {
            Some(s) => s.into(),
            None => Arc::clone(&self.dummy_hash),
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send(JobBox(Job { secret, phc, reply }))
            .map_err(|_| VerifyError::Task)?;
        let ok = answer.await.map_err(|_| VerifyError::Task)?;
        Ok(ok && known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `v` accepts `secret` against `phc`.
    async fn accepts(v: &SecretVerifier, secret: &str, phc: &str) -> bool {
        v.verify(
            SecretString::from(secret),
            Some(phc.to_owned()),
            Lane::Normal,
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn hash_verify_and_dummy() {
        let secret = generate().unwrap();
        assert_eq!(secret.expose_secret().len(), 48);
        let phc = hash(&secret).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"));
        assert!(!phc.contains(secret.expose_secret()));
        let v = SecretVerifier::new(2).unwrap();
        assert!(accepts(&v, secret.expose_secret(), &phc).await);
        assert!(!accepts(&v, "wrong", &phc).await);
        assert!(!v.verify(secret, None, Lane::Normal).await.unwrap());
    }

    /// Only a hash with other parameters than ours is outdated; text that is no PHC string is
    /// left alone.
    #[test]
    fn outdated_hashes_are_those_with_other_parameters() {
        let ours = hash(&generate().unwrap()).unwrap();
        assert!(!is_outdated(&ours));
        for other in [
            "$argon2id$v=19$m=19456,t=2,p=1$c2VlZHNlZWRzZWVk$c2VlZHNlZWRzZWVkc2VlZHNlZWRzZWVkc2VlZHNlZWQ",
            "$argon2id$v=19$m=7168,t=2,p=1$c2VlZHNlZWRzZWVk$c2VlZHNlZWRzZWVkc2VlZHNlZWRzZWVkc2VlZHNlZWQ",
            "$argon2id$v=19$m=7168,t=5,p=2$c2VlZHNlZWRzZWVk$c2VlZHNlZWRzZWVkc2VlZHNlZWRzZWVkc2VlZHNlZWQ",
            "$argon2i$v=19$m=7168,t=5,p=1$c2VlZHNlZWRzZWVk$c2VlZHNlZWRzZWVkc2VlZHNlZWRzZWVkc2VlZHNlZWQ",
        ] {
            assert!(is_outdated(other), "{other}");
        }
        assert!(!is_outdated("not a hash"));
        assert!(!is_outdated(""));
    }

    /// One upgrade per application at a time; the next can start once it ends.
    #[test]
    fn one_upgrade_runs_per_application() {
        let upgrades = Arc::new(HashUpgrades::default());
        let (a, b) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
        let first = upgrades.start(a).unwrap();
        assert!(upgrades.start(a).is_none());
        assert!(upgrades.start(b).is_some(), "another application's runs");
        drop(first);
        assert!(upgrades.start(a).is_some());
    }

    /// Secrets hashed before the current parameters (m = 19 MiB, t = 2) keep verifying: the
    /// stored hash carries its parameters.
    #[tokio::test]
    async fn a_hash_made_with_the_earlier_parameters_still_verifies() {
        let secret = generate().unwrap();
        let earlier = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(19_456, 2, 1, None).unwrap(),
        )
        .hash_password(secret.expose_secret().as_bytes())
        .unwrap()
        .to_string();
        assert!(earlier.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let v = SecretVerifier::new(1).unwrap();
        assert!(accepts(&v, secret.expose_secret(), &earlier).await);
        assert!(!accepts(&v, "wrong", &earlier).await);
    }

    /// Resident memory of this process in KiB (Linux).
    #[cfg(target_os = "linux")]
    fn rss_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// Every worker gives its memory back once idle, including one that finished while the
    /// other was already waiting for work (the case a mutex-guarded queue got wrong).
    /// Needs a process of its own (nextest runs each test in one), since RSS is per process.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn idle_workers_release_their_memory() {
        assert!(
            std::env::var_os("NEXTEST").is_some(),
            "RSS is only meaningful with one test per process: run it under cargo nextest"
        );
        let secret = generate().unwrap();
        let phc = hash(&secret).unwrap();
        let v = SecretVerifier::new(2).unwrap();
        let before = rss_kib();
        for _ in 0..3 {
            let (a, b) = tokio::join!(
                v.verify(secret.clone(), Some(phc.clone()), Lane::Normal),
                v.verify(secret.clone(), Some(phc.clone()), Lane::Normal)
            );
            assert!(a.unwrap() && b.unwrap());
        }
        let mut after = rss_kib();
        for _ in 0..40 {
            if after < before + u64::from(MEMORY_KIB) / 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            after = rss_kib();
        }
        assert!(
            after < before + u64::from(MEMORY_KIB) / 2,
            "idle workers still hold {} KiB",
            after.saturating_sub(before)
        );
    }

    /// Unknown client_ids are verified against a real argon2id hash with our parameters, so
    /// they cost what a wrong secret costs.
    #[tokio::test]
    async fn the_dummy_hash_is_a_real_one_with_our_parameters() {
        let v = SecretVerifier::new(1).unwrap();
        assert!(
            v.dummy_hash().starts_with("$argon2id$v=19$m=7168,t=5,p=1$"),
            "{}",
            v.dummy_hash()
        );
    }

    /// A waiter that gave up (Busy after `ARGON2_WAIT`) leaves the count of waiters: the pool
    /// never stays full of requests that are gone.
    #[tokio::test]
    async fn waiters_that_give_up_leave_the_queue() {
        let pool = Pool::new(1);
        let _held = pool.acquire().await.unwrap();
        assert!(matches!(pool.acquire().await, Err(VerifyError::Busy)));
        assert_eq!(pool.waiting.load(Ordering::Acquire), 0);
    }

    /// A source's reserved-lane places come back when its requests end, and its entry goes.
    #[test]
    fn reserved_places_are_given_back() {
        let v = SecretVerifier::new(1).unwrap();
        let source = IpAddr::from([10, 0, 0, 1]);
        let places: Vec<_> = (0..RESERVED_PER_SOURCE)
            .map(|_| v.take_source_place(source).unwrap())
            .collect();
        assert!(v.take_source_place(source).is_none());
        drop(places);
        assert!(v.reserved_sources.lock().unwrap().is_empty());
        assert!(v.take_source_place(source).is_some());
    }

    /// The argon2 workers run at nice 10, so hashing yields to requests that need none.
    #[cfg(target_os = "linux")]
    #[test]
    fn argon2_workers_run_at_nice_10() {
        // The workers inherit the nice value of the thread that starts them: when the tests
        // themselves run at 10 (a niced mutation run), an inherited 10 would pass for the
        // workers' own setting, so they are started from 11 here (raising needs no privilege).
        let tid = Some(rustix::thread::gettid());
        if rustix::process::getpriority_process(tid).unwrap() == 10 {
            rustix::process::setpriority_process(tid, 11).unwrap();
        }
        let _v = SecretVerifier::new(1).unwrap();
        let mut seen = 0;
        for _ in 0..100 {
            seen = 0;
            for task in std::fs::read_dir("/proc/self/task").unwrap() {
                let dir = task.unwrap().path();
                let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
                if !comm.starts_with("argon2-") {
                    continue;
                }
                let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
                // Field 19 is the nice value; fields after the ")" of the command name.
                let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
                let nice: i64 = after.split_whitespace().nth(16).unwrap().parse().unwrap();
                if nice == 10 {
                    seen += 1;
                }
            }
            if seen >= 2 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(seen >= 2, "argon2 workers at nice 10: {seen}");
    }
}
