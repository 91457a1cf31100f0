//! The writer with test sinks: retried errors, lines lost at exit, a reopen while idle.

use super::*;

/// What a test sink received: each write's destination and bytes.
type Got = Arc<Mutex<Vec<(u8, Vec<u8>)>>>;

/// Fails `begin` or `write` with ENOSPC a few times, then takes everything.
struct Flaky {
    begin_failures: u32,
    write_failures: u32,
    got: Got,
    reopened: Arc<AtomicU64>,
}

impl Sink for Flaky {
    type Dest = u8;
    fn begin(&mut self, _: &u8) -> io::Result<()> {
        if self.begin_failures > 0 {
            self.begin_failures -= 1;
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        Ok(())
    }
    fn write(&mut self, dest: &u8, bytes: &[u8]) -> io::Result<usize> {
        if self.write_failures > 0 {
            self.write_failures -= 1;
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        // Short writes: a batch must still end up whole and in order.
        let n = bytes.len().min(3);
        self.got.lock().expect("lock").push((*dest, bytes[..n].to_vec()));
        Ok(n)
    }
    fn flush(&mut self, _: &u8) -> io::Result<()> {
        Ok(())
    }
    fn reopen(&mut self) {
        self.reopened.fetch_add(1, Ordering::AcqRel);
    }
    fn name(&self, dest: &u8) -> String {
        format!("dest {dest}")
    }
}

fn flaky(begin_failures: u32, write_failures: u32) -> (Flaky, Got) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let reopened = Arc::new(AtomicU64::new(0));
    (Flaky { begin_failures, write_failures, got: Arc::clone(&got), reopened }, got)
}

fn bytes_of(got: &[(u8, Vec<u8>)], dest: u8) -> Vec<u8> {
    got.iter().filter(|(d, _)| *d == dest).flat_map(|(_, b)| b.clone()).collect()
}

#[test]
fn enospc_is_retried_until_it_passes_and_every_batch_lands_whole_where_it_was_sent() {
    let (sink, got) = flaky(1, 2);
    let resume = Arc::new(Notify::new());
    let mut w = Writer::start(sink, "test-writer", Box::new(|| {}), resume).expect("thread");
    w.push(1, b"one\ntwo\n".to_vec(), 2);
    w.push(2, b"elsewhere\n".to_vec(), 1);
    w.push(1, b"three\n".to_vec(), 1);
    w.join();
    let got = got.lock().expect("lock");
    assert_eq!(bytes_of(&got, 1), b"one\ntwo\nthree\n");
    assert_eq!(bytes_of(&got, 2), b"elsewhere\n");
    assert_eq!(w.lost(), 0);
    assert!(!w.closed(), "ENOSPC does not close the writer");
}

#[test]
fn a_sink_that_never_recovers_loses_the_lines_at_exit_and_says_how_many() {
    let (sink, got) = flaky(u32::MAX, 0);
    let resume = Arc::new(Notify::new());
    let mut w = Writer::start(sink, "test-writer", Box::new(|| {}), resume).expect("thread");
    w.push(1, b"a\nb\n".to_vec(), 2);
    w.push(2, b"c\n".to_vec(), 1);
    w.close();
    // Blocks for the exit retries (a few seconds): the price of not giving up early.
    w.join();
    assert!(got.lock().expect("lock").is_empty());
    assert_eq!(w.lost(), 3);
}

#[test]
fn a_reopen_reaches_the_sink_while_idle() {
    let (sink, _got) = flaky(0, 0);
    let reopened = Arc::clone(&sink.reopened);
    let resume = Arc::new(Notify::new());
    let mut w = Writer::start(sink, "test-writer", Box::new(|| {}), resume).expect("thread");
    w.reopen();
    let deadline = Instant::now() + Duration::from_secs(10);
    while reopened.load(Ordering::Acquire) == 0 {
        assert!(Instant::now() < deadline, "the idle writer never reopened its sink");
        std::thread::sleep(Duration::from_millis(5));
    }
    w.join();
}
