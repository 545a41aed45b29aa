//! Transfer progress: counters the upload tasks bump, and a line every few seconds (bytes, rate,
//! blobs done/total) for the log.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Progress {
    total_bytes: u64,
    total_blobs: usize,
    bytes: AtomicU64,
    uploaded: AtomicUsize,
    present: AtomicUsize,
    mounted: AtomicUsize,
    started: Instant,
}

/// How a blob came to be in the target repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobFate {
    /// It was there already (HEAD).
    Present,
    /// Mounted from another repository of the same registry, without moving bytes.
    Mounted,
    Uploaded,
}

impl Progress {
    pub fn new(total_blobs: usize, total_bytes: u64) -> Progress {
        Progress {
            total_bytes,
            total_blobs,
            bytes: AtomicU64::new(0),
            uploaded: AtomicUsize::new(0),
            present: AtomicUsize::new(0),
            mounted: AtomicUsize::new(0),
            started: Instant::now(),
        }
    }

    /// Bytes sent (or, for blobs that needed no upload, accounted for).
    pub fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Takes back bytes of a failed attempt that will be sent again.
    pub fn sub_bytes(&self, n: u64) {
        let _ = self
            .bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(n))
            });
    }

    pub fn blob_done(&self, fate: BlobFate) {
        match fate {
            BlobFate::Present => &self.present,
            BlobFate::Mounted => &self.mounted,
            BlobFate::Uploaded => &self.uploaded,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.uploaded.load(Ordering::Relaxed),
            self.mounted.load(Ordering::Relaxed),
            self.present.load(Ordering::Relaxed),
        )
    }

    /// `120.5 MB of 351.0 MB (45.2 MB/s), blobs 2/5 (1 uploaded, 0 mounted, 1 already present)`.
    pub fn line(&self) -> String {
        let bytes = self.bytes.load(Ordering::Relaxed);
        let (uploaded, mounted, present) = self.counts();
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        format!(
            "{} of {} ({}/s), blobs {}/{} ({uploaded} uploaded, {mounted} mounted, {present} already present), {:.1} s",
            megabytes(bytes),
            megabytes(self.total_bytes),
            megabytes((bytes as f64 / elapsed) as u64),
            uploaded + mounted + present,
            self.total_blobs,
            elapsed,
        )
    }

    /// Calls `emit` with [`line`](Self::line) every `interval` until the future is dropped.
    pub async fn report_every(&self, interval: Duration, emit: impl Fn(&str)) {
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await; // the first tick is immediate
        loop {
            ticker.tick().await;
            emit(&self.line());
        }
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_counts_blobs_by_fate() {
        let p = Progress::new(3, 2_000_000);
        p.add_bytes(1_500_000);
        p.sub_bytes(500_000);
        p.blob_done(BlobFate::Uploaded);
        p.blob_done(BlobFate::Present);
        let line = p.line();
        assert!(line.starts_with("1.0 MB of 2.0 MB ("), "{line}");
        assert!(
            line.contains("blobs 2/3 (1 uploaded, 0 mounted, 1 already present)"),
            "{line}"
        );
    }
}
