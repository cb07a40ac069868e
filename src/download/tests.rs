//! Tests against a real (scripted) HTTP server on 127.0.0.1.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use super::package::{
    ContentRange, Have, PIPELINE_DEPTH, Pumped, WRITEBACK_STEP, Writeback, parse_content_range,
    pump, reserve,
};
use super::test_server::{Reply, Request, Server, read_request, serve_range};
use super::*;

/// Fast and deterministic: tiny delays, no jitter.
fn policy() -> Policy {
    Policy {
        attempts: 4,
        first_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(20),
        jitter: 0.0,
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(2),
        max_redirects: 5,
    }
}

fn http_with(policy: Policy) -> Http {
    Http::new(None)
        .unwrap()
        .with_policy(policy)
        .without_env_proxy()
}

fn http() -> Http {
    http_with(policy())
}

/// Deterministic bytes that do not repeat in short periods.
fn payload(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect()
}

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A server that serves `body` at every path, honouring Range.
async fn file_server(body: &[u8]) -> Server {
    let body: Arc<[u8]> = body.into();
    Server::start(move |_, req| serve_range(&body, req)).await
}

fn partial_path(dir: &Path, data: &[u8]) -> PathBuf {
    dir.join(format!("{}.partial", sha(data)))
}

fn ranges(reqs: &[Request]) -> Vec<Option<String>> {
    reqs.iter()
        .map(|r| r.header("range").map(str::to_string))
        .collect()
}

fn http_error(e: &anyhow::Error) -> &HttpError {
    e.downcast_ref::<HttpError>()
        .unwrap_or_else(|| panic!("not an HttpError: {e:#}"))
}

// ---- packages ----------------------------------------------------------

#[tokio::test]
async fn download_verifies_caches_and_reuses_without_a_request() {
    let data = payload(300_000);
    let server = file_server(&data).await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/pool/p_1.0_amd64.deb");
    let path = http()
        .download(&url, data.len() as u64, &sha(&data), dir.path(), "deb")
        .await
        .unwrap();
    assert_eq!(path, dir.path().join(format!("{}.deb", sha(&data))));
    assert_eq!(std::fs::read(&path).unwrap(), data);
    assert!(!partial_path(dir.path(), &data).exists());
    assert_eq!(ranges(&server.requests()), [None]);

    // Cached: no request at all.
    let again = http()
        .download(&url, data.len() as u64, &sha(&data), dir.path(), "deb")
        .await
        .unwrap();
    assert_eq!(again, path);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_file_already_cached_is_reused_with_no_request() {
    let data = payload(10_000);
    let server = file_server(b"must not be asked").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(format!("{}.deb", sha(&data))), &data).unwrap();
    let path = http()
        .download(
            &server.url("/p.deb"),
            10_000,
            &sha(&data),
            dir.path(),
            "deb",
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), data);
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn a_corrupt_cached_file_is_downloaded_again() {
    let data = payload(10_000);
    let server = file_server(&data).await;
    let dir = tempfile::tempdir().unwrap();
    let cached = dir.path().join(format!("{}.deb", sha(&data)));
    let mut bad = data.clone();
    bad[5000] ^= 0xff;
    std::fs::write(&cached, &bad).unwrap();
    let path = http()
        .download(
            &server.url("/p.deb"),
            10_000,
            &sha(&data),
            dir.path(),
            "deb",
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), data);
    assert_eq!(ranges(&server.requests()), [None]);
}

#[tokio::test]
async fn a_partial_file_is_resumed_with_range() {
    let data = payload(200_000);
    let server = file_server(&data).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(partial_path(dir.path(), &data), &data[..80_000]).unwrap();
    let path = http()
        .download(
            &server.url("/p.deb"),
            200_000,
            &sha(&data),
            dir.path(),
            "deb",
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), data);
    assert_eq!(ranges(&server.requests()), [Some("bytes=80000-".into())]);
}

#[tokio::test]
async fn a_server_ignoring_range_restarts_from_zero() {
    let data = payload(100_000);
    let server = Server::start({
        let data = data.clone();
        move |_, _| Reply::ok(data.clone())
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    // Garbage in the partial file proves it was truncated, not appended to.
    std::fs::write(partial_path(dir.path(), &data), payload(30_000).repeat(2)).unwrap();
    let path = http()
        .download(
            &server.url("/p.deb"),
            100_000,
            &sha(&data),
            dir.path(),
            "deb",
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), data);
    assert_eq!(ranges(&server.requests()), [Some("bytes=60000-".into())]);
}

#[tokio::test]
async fn a_416_restarts_from_zero() {
    let data = payload(50_000);
    let server = Server::start({
        let data = data.clone();
        move |_, req| match req.header("range") {
            Some(_) => Reply::status(416),
            None => Reply::ok(data.clone()),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(partial_path(dir.path(), &data), &data[..20_000]).unwrap();
    let path = http()
        .download(
            &server.url("/p.deb"),
            50_000,
            &sha(&data),
            dir.path(),
            "deb",
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), data);
    assert_eq!(
        ranges(&server.requests()),
        [Some("bytes=20000-".into()), None]
    );
}

#[tokio::test]
async fn a_206_starting_elsewhere_is_refused_and_restarted() {
    let data = payload(50_000);
    let server = Server::start({
        let data = data.clone();
        move |_, req| match req.header("range") {
            // Claims to start at 0 although asked for 20000-.
            Some(_) => Reply::ok(data.clone())
                .with_status(206)
                .header("Content-Range", "bytes 0-49999/50000"),
            None => Reply::ok(data.clone()),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(partial_path(dir.path(), &data), &data[..20_000]).unwrap();
    let path = http()
        .download(
            &server.url("/p.deb"),
            50_000,
            &sha(&data),
            dir.path(),
            "deb",
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), data);
    assert_eq!(
        ranges(&server.requests()),
        [Some("bytes=20000-".into()), None]
    );
}

#[tokio::test]
async fn a_dropped_connection_is_resumed_on_the_retry() {
    let data = payload(400_000);
    let server = Server::start({
        let data = data.clone();
        move |i, req| match i {
            0 => Reply::ok(data.clone()).cut_after(150_000),
            _ => serve_range(&data, req),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = http()
        .download(
            &server.url("/p.deb"),
            400_000,
            &sha(&data),
            dir.path(),
            "deb",
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), data);
    assert_eq!(
        ranges(&server.requests()),
        [None, Some("bytes=150000-".into())]
    );
}

#[tokio::test]
async fn a_body_ending_early_without_length_is_resumed() {
    let data = payload(100_000);
    let server = Server::start({
        let data = data.clone();
        move |i, req| match i {
            0 => Reply::ok(data[..30_000].to_vec()).close_delimited(),
            _ => serve_range(&data, req),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = http()
        .download(
            &server.url("/p.deb"),
            100_000,
            &sha(&data),
            dir.path(),
            "deb",
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), data);
    assert_eq!(
        ranges(&server.requests()),
        [None, Some("bytes=30000-".into())]
    );
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    let data = payload(20_000);
    let server = Server::start({
        let data = data.clone();
        move |i, req| match i {
            0 => Reply::status(500),
            1 => Reply::status(503),
            _ => serve_range(&data, req),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = http()
        .download(
            &server.url("/p.deb"),
            20_000,
            &sha(&data),
            dir.path(),
            "deb",
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), data);
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn server_errors_give_up_after_the_attempts() {
    let server = Server::start(|_, _| Reply::status(503)).await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/p.deb");
    let e = http()
        .download(&url, 10, &sha(b"0123456789"), dir.path(), "deb")
        .await
        .unwrap_err();
    assert!(matches!(
        http_error(&e),
        HttpError::Status {
            status: 503,
            attempts: 4,
            ..
        }
    ));
    let msg = e.to_string();
    assert!(msg.starts_with(url.as_str()), "{msg}");
    assert!(msg.contains("gave up after 4 attempts"), "{msg}");
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test]
async fn retry_after_is_honoured_up_to_the_longest_delay() {
    let data = payload(1000);
    let server = Server::start({
        let data = data.clone();
        move |i, req| match i {
            0 => Reply::status(429).header("Retry-After", "120"),
            _ => serve_range(&data, req),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let http = http_with(Policy {
        max_delay: Duration::from_millis(300),
        ..policy()
    });
    let start = Instant::now();
    http.download(&server.url("/p.deb"), 1000, &sha(&data), dir.path(), "deb")
        .await
        .unwrap();
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    for status in [400u16, 401, 403, 404, 410] {
        let server = Server::start(move |_, _| Reply::status(status)).await;
        let dir = tempfile::tempdir().unwrap();
        let url = server.url("/p.deb");
        let e = http()
            .download(&url, 10, &sha(b"0123456789"), dir.path(), "deb")
            .await
            .unwrap_err();
        match http_error(&e) {
            HttpError::Status {
                status: s,
                attempts: 1,
                ..
            } => assert_eq!(*s, status),
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains(url.as_str()));
        assert_eq!(server.requests().len(), 1, "HTTP {status}");
    }
}

#[tokio::test]
async fn a_redirect_loop_fails_without_retries() {
    let server = Server::start(|_, _| Reply::status(302).header("Location", "/loop")).await;
    let dir = tempfile::tempdir().unwrap();
    let e = http()
        .download(&server.url("/loop"), 10, &sha(b"x"), dir.path(), "deb")
        .await
        .unwrap_err();
    assert!(matches!(http_error(&e), HttpError::Network { .. }));
    assert!(e.to_string().contains("too many redirects"), "{e}");
    // The first request and five redirects, once.
    assert_eq!(server.requests().len(), 6);
}

#[tokio::test]
async fn a_trickle_slower_than_the_read_timeout_times_out() {
    let data = payload(1000);
    let server = Server::start({
        let data = data.clone();
        move |_, _| Reply::ok(data.clone()).trickle(Duration::from_secs(2))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let http = http_with(Policy {
        attempts: 2,
        read_timeout: Duration::from_millis(150),
        ..policy()
    });
    let start = Instant::now();
    let e = http
        .download(&server.url("/p.deb"), 1000, &sha(&data), dir.path(), "deb")
        .await
        .unwrap_err();
    assert!(
        matches!(http_error(&e), HttpError::Network { attempts: 2, .. }),
        "{e:#}"
    );
    assert!(e.to_string().contains("timed out"), "{e}");
    // Without the read timeout this would take 2000 s.
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_content_length_above_the_announced_size_is_refused_before_reading() {
    let data = payload(5000);
    let server = Server::start({
        let data = data.clone();
        // Announces more than the metadata and never sends it: reading
        // would hang until the read timeout.
        move |_, _| Reply::ok(data.clone()).announce(1_000_000)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let e = http()
        .download(&server.url("/p.deb"), 5000, &sha(&data), dir.path(), "deb")
        .await
        .unwrap_err();
    // Reading would wait for the read timeout (2 s) at least.
    assert!(start.elapsed() < Duration::from_millis(1900));
    match http_error(&e) {
        HttpError::TooLarge { limit, size, .. } => {
            assert_eq!((*limit, *size), (5000, Some(1_000_000)));
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("refused"), "{e}");
    assert!(!partial_path(dir.path(), &data).exists());
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_body_larger_than_announced_is_cut_off_and_refused() {
    let data = payload(5000);
    let server = Server::start(|_, _| Reply::ok(payload(50_000)).close_delimited()).await;
    let dir = tempfile::tempdir().unwrap();
    let e = http()
        .download(&server.url("/p.deb"), 5000, &sha(&data), dir.path(), "deb")
        .await
        .unwrap_err();
    assert!(
        matches!(
            http_error(&e),
            HttpError::TooLarge {
                limit: 5000,
                size: None,
                ..
            }
        ),
        "{e:#}"
    );
    assert!(!partial_path(dir.path(), &data).exists());
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn an_html_page_instead_of_a_package_is_refused_naming_the_type() {
    let page = b"<html><body>Please log in</body></html>".to_vec();
    let server = Server::start({
        let page = page.clone();
        move |_, _| Reply::ok(page.clone()).header("Content-Type", "text/html; charset=utf-8")
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let data = payload(80_000);
    let e = http()
        .download(
            &server.url("/p.deb"),
            80_000,
            &sha(&data),
            dir.path(),
            "deb",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(http_error(&e), HttpError::SizeMismatch { .. }),
        "{e:#}"
    );
    assert!(e.to_string().contains("text/html"), "{e}");
    assert!(!e.to_string().contains('\n'));
    assert_eq!(server.requests().len(), 1);

    // Same size as announced: refused by the hash, still naming the type.
    let e = http()
        .download(
            &server.url("/p.deb"),
            page.len() as u64,
            &sha(&data),
            dir.path(),
            "deb",
        )
        .await
        .unwrap_err();
    let mismatch = e.downcast_ref::<ChecksumMismatch>().expect("checksum");
    assert_eq!(mismatch.actual, sha(&page));
    assert!(e.to_string().contains("text/html"), "{e}");
    assert!(!partial_path(dir.path(), &data).exists());
}

#[tokio::test]
async fn a_wrong_file_fails_the_checksum_and_leaves_nothing() {
    let data = payload(20_000);
    let other = payload(20_001)[1..].to_vec();
    let server = Server::start(move |_, req| serve_range(&other, req)).await;
    let dir = tempfile::tempdir().unwrap();
    let e = http()
        .download(
            &server.url("/p.deb"),
            20_000,
            &sha(&data),
            dir.path(),
            "deb",
        )
        .await
        .unwrap_err();
    assert!(e.downcast_ref::<ChecksumMismatch>().is_some(), "{e:#}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_resume_onto_a_bad_partial_is_fetched_whole_once() {
    let data = payload(60_000);
    let server = file_server(&data).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(partial_path(dir.path(), &data), vec![0u8; 25_000]).unwrap();
    let path = http()
        .download(
            &server.url("/p.deb"),
            60_000,
            &sha(&data),
            dir.path(),
            "deb",
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), data);
    assert_eq!(
        ranges(&server.requests()),
        [Some("bytes=25000-".into()), None]
    );
}

#[tokio::test]
async fn a_partial_longer_than_announced_is_not_trusted() {
    let data = payload(10_000);
    let server = file_server(&data).await;
    let dir = tempfile::tempdir().unwrap();
    let mut long = data.clone();
    long.extend_from_slice(b"trailing junk");
    std::fs::write(partial_path(dir.path(), &data), &long).unwrap();
    let path = http()
        .download(
            &server.url("/p.deb"),
            10_000,
            &sha(&data),
            dir.path(),
            "deb",
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), data);
    assert_eq!(ranges(&server.requests()), [None]);
}

#[tokio::test]
async fn a_complete_partial_is_finished_without_a_request() {
    let data = payload(10_000);
    let server = file_server(&data).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(partial_path(dir.path(), &data), &data).unwrap();
    let path = http()
        .download(
            &server.url("/p.deb"),
            10_000,
            &sha(&data),
            dir.path(),
            "deb",
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), data);
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn an_unreachable_server_is_retried_then_reported() {
    let addr = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let url = Url::parse(&format!("http://{addr}/p.deb")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let e = http()
        .download(&url, 10, &sha(b"x"), dir.path(), "deb")
        .await
        .unwrap_err();
    assert!(
        matches!(http_error(&e), HttpError::Network { attempts: 4, .. }),
        "{e:#}"
    );
    let msg = e.to_string();
    assert!(msg.contains("cannot connect"), "{msg}");
    assert!(msg.contains("HTTPS_PROXY"), "{msg}");
}

// ---- the pipeline: socket reader, hashing and writing thread ----------

/// `data` cut into `size`-byte chunks, as a body stream that never fails.
fn chunks(
    data: &[u8],
    size: usize,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Unpin {
    let chunks: Vec<_> = data.chunks(size).map(|c| Ok(c.to_vec())).collect();
    futures_util::stream::iter(chunks)
}

fn nothing_yet() -> Have {
    Have {
        len: 0,
        hasher: Sha256::new(),
    }
}

#[tokio::test]
async fn the_pipeline_writes_and_hashes_every_chunk_in_order() {
    let data = payload(3_000_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.partial");
    let file = std::fs::File::create(&path).unwrap();
    let mut told = 0;
    let size = data.len() as u64;
    match pump(chunks(&data, 65_536), file, nothing_yet(), size, |n| {
        told += n
    })
    .await
    {
        Pumped::Ended(_, have) => {
            assert_eq!(have.len, size);
            assert_eq!(hex::encode(have.hasher.finalize()), sha(&data));
        }
        _ => panic!("the pipeline did not end normally"),
    }
    assert_eq!(told, size);
    assert_eq!(std::fs::read(&path).unwrap(), data);
}

#[tokio::test]
async fn the_pipeline_appends_to_what_a_partial_file_holds() {
    let data = payload(500_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.partial");
    let mut file = std::fs::File::create(&path).unwrap();
    std::io::Write::write_all(&mut file, &data[..123_456]).unwrap();
    let have = Have {
        len: 123_456,
        hasher: Sha256::new_with_prefix(&data[..123_456]),
    };
    let rest = &data[123_456..];
    match pump(chunks(rest, 10_000), file, have, 500_000, |_| {}).await {
        Pumped::Ended(_, have) => {
            assert_eq!(have.len, 500_000);
            assert_eq!(hex::encode(have.hasher.finalize()), sha(&data));
        }
        _ => panic!("the pipeline did not end normally"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), data);
}

/// A disk that is full: the writer fails on its first chunk, the reader
/// stops soon after (the channel is closed), and the error is the write's.
#[tokio::test]
async fn a_write_error_closes_the_pipeline_and_stops_the_reader() {
    let data = payload(100 * 4096);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let pulled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let body = chunks(&data, 4096).inspect({
        let pulled = pulled.clone();
        move |_| {
            pulled.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let mut told = 0;
    match pump(body, file, nothing_yet(), data.len() as u64, |n| told += n).await {
        Pumped::WriteFailed(e) => assert_eq!(e.raw_os_error(), Some(28), "{e}"),
        _ => panic!("a write error was not reported"),
    }
    // The chunk that failed, a full channel, and the one whose send failed.
    let pulled = pulled.load(std::sync::atomic::Ordering::SeqCst);
    assert!(pulled <= PIPELINE_DEPTH + 2, "{pulled} chunks read");
    assert!(
        told <= ((PIPELINE_DEPTH + 1) * 4096) as u64,
        "{told} bytes told"
    );
}

#[tokio::test]
async fn a_file_open_read_only_fails_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.partial");
    std::fs::write(&path, b"").unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let data = payload(10_000);
    match pump(chunks(&data, 1000), file, nothing_yet(), 10_000, |_| {}).await {
        Pumped::WriteFailed(e) => assert_eq!(e.raw_os_error(), Some(9), "{e}"),
        _ => panic!("a write error was not reported"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), b"");
}

/// The connection breaks: the reader closes the channel, and the writer
/// still writes everything it was given, so that the next attempt resumes
/// after all of it.
#[tokio::test]
async fn a_broken_body_leaves_everything_received_written_and_hashed() {
    let data = payload(700_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.partial");
    let file = std::fs::File::create(&path).unwrap();
    let body = futures_util::stream::iter(
        data.chunks(100_000)
            .map(|c| Ok(c.to_vec()))
            .chain([Err("connection reset")]),
    );
    match pump(body, file, nothing_yet(), 1_000_000, |_| {}).await {
        Pumped::Broken(have, e) => {
            assert_eq!(e, "connection reset");
            assert_eq!(have.len, 700_000);
            assert_eq!(hex::encode(have.hasher.finalize()), sha(&data));
        }
        _ => panic!("the broken body was not reported"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), data);
}

#[tokio::test]
async fn the_pipeline_never_writes_beyond_the_size() {
    let data = payload(120);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.partial");
    let file = std::fs::File::create(&path).unwrap();
    assert!(matches!(
        pump(chunks(&data, 40), file, nothing_yet(), 100, |_| {}).await,
        Pumped::TooLarge
    ));
    assert_eq!(std::fs::read(&path).unwrap(), &data[..80]);
}

#[test]
fn writeback_is_started_every_step_and_left_alone_where_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let mut file = std::fs::File::create(dir.path().join("p.partial")).unwrap();
    let step = vec![7u8; WRITEBACK_STEP as usize];
    std::io::Write::write_all(&mut file, &step).unwrap();
    let mut writeback = Writeback::new(0);
    writeback.advance(&file, WRITEBACK_STEP - 1).unwrap();
    assert_eq!(writeback.started, 0);
    writeback.advance(&file, WRITEBACK_STEP).unwrap();
    if writeback.supported {
        assert_eq!(writeback.started, WRITEBACK_STEP);
    }
    // A pipe has no pages to write back (ESPIPE): ignored, and not asked
    // again.
    let (_read, write) = nix::unistd::pipe().unwrap();
    let pipe = std::fs::File::from(write);
    let mut writeback = Writeback::new(0);
    writeback.advance(&pipe, WRITEBACK_STEP).unwrap();
    assert!(!writeback.supported);
    writeback.advance(&pipe, 2 * WRITEBACK_STEP).unwrap();
}

#[test]
fn the_rest_of_the_file_is_reserved_without_changing_its_length() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.partial");
    std::fs::write(&path, payload(5000)).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    reserve(&file, 5000, 4 << 20).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    // The length is what the file holds: a resume hashes that much.
    assert_eq!(meta.len(), 5000);
    assert!(meta.blocks() * 512 >= 4 << 20, "{} blocks", meta.blocks());
    // Nothing left to reserve; a character device cannot (ignored).
    reserve(&file, 4 << 20, 4 << 20).unwrap();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    reserve(&full, 0, 4 << 20).unwrap();
}

/// A full disk, for real: the download runs in a child process (this test
/// binary again, running only [`disk_full_child`]) whose file size limit
/// stops the writes.
#[tokio::test]
async fn a_full_disk_fails_naming_the_partial_and_resumes_later() {
    let out = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "download::tests::disk_full_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("UPKEEP_DISK_FULL_CHILD", "1")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("disk full child done"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The child side of [`a_full_disk_fails_naming_the_partial_and_resumes_later`];
/// does nothing unless run by it.
#[test]
#[ignore = "run by a_full_disk_fails_naming_the_partial_and_resumes_later in a child process"]
fn disk_full_child() {
    use nix::libc;
    if std::env::var_os("UPKEEP_DISK_FULL_CHILD").is_none() {
        return;
    }
    const LIMIT: u64 = 300_000;
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on this process's own limits and signal
    // disposition, with valid pointers to locals.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut old), 0);
        // Writing past the limit then fails with EFBIG instead of a signal.
        assert_ne!(libc::signal(libc::SIGXFSZ, libc::SIG_IGN), libc::SIG_ERR);
    }
    let set_limit = |cur: libc::rlim_t| {
        let new = libc::rlimit {
            rlim_cur: cur,
            rlim_max: old.rlim_max,
        };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &new) }, 0);
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let data = payload(1_000_000);
        let server = file_server(&data).await;
        let url = server.url("/p.deb");
        let dir = tempfile::tempdir().unwrap();
        let partial = partial_path(dir.path(), &data);

        set_limit(LIMIT);
        let e = http()
            .download(&url, 1_000_000, &sha(&data), dir.path(), "deb")
            .await
            .unwrap_err();
        set_limit(old.rlim_cur);
        let text = format!("{e:#}");
        assert!(!text.contains('\n'), "{text}");
        assert!(
            text.starts_with(&format!("cannot write {}: ", partial.display())),
            "{text}"
        );
        assert!(e.downcast_ref::<HttpError>().is_none(), "{text}");
        // Not retried: the disk is not the server's fault.
        assert_eq!(server.requests().len(), 1);
        // The partial file is kept, as after any write error: the next run
        // hashes it and resumes after what it holds.
        let kept = std::fs::metadata(&partial).unwrap().len();
        assert!(kept > 0 && kept <= LIMIT, "{kept}");
        println!("full disk: {text}");

        let path = http()
            .download(&url, 1_000_000, &sha(&data), dir.path(), "deb")
            .await
            .unwrap();
        assert_eq!(std::fs::read(path).unwrap(), data);
        assert_eq!(
            ranges(&server.requests())[1..],
            [Some(format!("bytes={kept}-"))]
        );
    });
    println!("disk full child done");
}

// ---- metadata ----------------------------------------------------------

#[tokio::test]
async fn get_retries_server_errors() {
    let server = Server::start(|i, _| match i {
        0 | 1 => Reply::status(502),
        _ => Reply::ok("Release"),
    })
    .await;
    let body = http().get(&server.url("/Release"), 1000).await.unwrap();
    assert_eq!(body, b"Release");
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn get_retries_an_interrupted_body() {
    let server = Server::start(|i, _| match i {
        0 => Reply::ok(payload(10_000)).cut_after(5000),
        _ => Reply::ok(payload(10_000)),
    })
    .await;
    let body = http().get(&server.url("/Packages"), 100_000).await.unwrap();
    assert_eq!(body, payload(10_000));
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn get_optional_is_none_on_404_after_one_request() {
    let server = Server::start(|_, _| Reply::status(404)).await;
    let http = http();
    assert!(
        http.get_optional(&server.url("/InRelease"), 1000)
            .await
            .unwrap()
            .is_none()
    );
    let e = http.get(&server.url("/Release"), 1000).await.unwrap_err();
    assert!(matches!(
        http_error(&e),
        HttpError::Status { status: 404, .. }
    ));
    assert!(e.to_string().contains("404 Not Found"), "{e}");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn get_refuses_more_than_the_limit() {
    let server = Server::start(|i, _| match i {
        0 => Reply::ok(payload(2000)),
        _ => Reply::ok(payload(2000)).close_delimited(),
    })
    .await;
    for _ in 0..2 {
        let e = http()
            .get(&server.url("/Packages"), 1000)
            .await
            .unwrap_err();
        assert!(
            matches!(http_error(&e), HttpError::TooLarge { limit: 1000, .. }),
            "{e:#}"
        );
    }
    assert_eq!(server.requests().len(), 2);
}

/// A server for `Release` that answers conditional requests by ETag.
async fn etag_server(body: &'static str, etag: &'static str) -> Server {
    Server::start(move |_, req| {
        if req.header("if-none-match") == Some(etag) {
            Reply::status(304).header("ETag", etag)
        } else {
            Reply::ok(body).header("ETag", etag)
        }
    })
    .await
}

#[tokio::test]
async fn get_cached_sends_if_none_match_and_uses_the_cache_on_304() {
    let server = etag_server("Suite: stable\n", "\"v1\"").await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/dists/stable/InRelease");
    let http = http();
    let first = http
        .get_cached(&url, 1000, dir.path())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.origin, Origin::Network);
    assert_eq!(first.body, b"Suite: stable\n");
    let second = http
        .get_cached(&url, 1000, dir.path())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.origin, Origin::Cache);
    assert_eq!(second.body, b"Suite: stable\n");
    let reqs = server.requests();
    assert_eq!(reqs[0].header("if-none-match"), None);
    assert_eq!(reqs[1].header("if-none-match"), Some("\"v1\""));
    assert_eq!(reqs.len(), 2);
}

#[tokio::test]
async fn get_cached_sends_if_modified_since_and_uses_the_cache_on_304() {
    const DATE: &str = "Wed, 21 Oct 2015 07:28:00 GMT";
    let server = Server::start(|_, req| {
        if req.header("if-modified-since") == Some(DATE) {
            Reply::status(304)
        } else {
            Reply::ok("Packages").header("Last-Modified", DATE)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/Packages");
    let http = http();
    let first = http
        .get_cached(&url, 1000, dir.path())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.origin, Origin::Network);
    let second = http
        .get_cached(&url, 1000, dir.path())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.origin, Origin::Cache);
    assert_eq!(second.body, b"Packages");
    let reqs = server.requests();
    assert_eq!(reqs[0].header("if-modified-since"), None);
    assert_eq!(reqs[1].header("if-modified-since"), Some(DATE));
}

#[tokio::test]
async fn get_cached_replaces_a_changed_document() {
    let server = Server::start(|i, req| {
        let (body, etag) = if i == 0 {
            ("one", "\"1\"")
        } else {
            ("two", "\"2\"")
        };
        if req.header("if-none-match") == Some(etag) {
            Reply::status(304)
        } else {
            Reply::ok(body).header("ETag", etag)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/Release");
    let http = http();
    let bodies: Vec<(Vec<u8>, Origin)> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            let c = http
                .get_cached(&url, 1000, dir.path())
                .await
                .unwrap()
                .unwrap();
            v.push((c.body, c.origin));
        }
        v
    };
    assert_eq!(
        bodies,
        [
            (b"one".to_vec(), Origin::Network),
            (b"two".to_vec(), Origin::Network),
            (b"two".to_vec(), Origin::Cache)
        ]
    );
    let inm: Vec<_> = server
        .requests()
        .iter()
        .map(|r| r.header("if-none-match").map(str::to_string))
        .collect();
    assert_eq!(inm, [None, Some("\"1\"".into()), Some("\"2\"".into())]);
}

#[tokio::test]
async fn get_cached_ignores_a_corrupt_entry() {
    let server = etag_server("Suite: stable\n", "\"v1\"").await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/InRelease");
    let http = http();
    http.get_cached(&url, 1000, dir.path()).await.unwrap();
    let entry = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&entry).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x20;
    std::fs::write(&entry, bytes).unwrap();
    let again = http
        .get_cached(&url, 1000, dir.path())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.origin, Origin::Network);
    assert_eq!(again.body, b"Suite: stable\n");
    assert_eq!(server.requests()[1].header("if-none-match"), None);
}

#[tokio::test]
async fn get_cached_stores_only_complete_successful_answers_with_validators() {
    let server = Server::start(|i, _| match i {
        // Interrupted every time: nothing may be stored.
        0..=3 => Reply::ok("Suite: stable\n")
            .header("ETag", "\"v1\"")
            .cut_after(5),
        // No validator: nothing to store.
        4 => Reply::ok("no validator"),
        // Told not to.
        5 => Reply::ok("secret")
            .header("ETag", "\"s\"")
            .header("Cache-Control", "private, no-store"),
        _ => Reply::status(500),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/InRelease");
    let http = http();
    assert!(http.get_cached(&url, 1000, dir.path()).await.is_err());
    assert!(
        std::fs::read_dir(dir.path())
            .map(|mut d| d.next().is_none())
            .unwrap_or(true)
    );
    let c = http
        .get_cached(&url, 1000, dir.path())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.body, b"no validator");
    let c = http
        .get_cached(&url, 1000, dir.path())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.body, b"secret");
    assert!(
        std::fs::read_dir(dir.path())
            .map(|mut d| d.next().is_none())
            .unwrap_or(true)
    );
}

#[tokio::test]
async fn get_cached_drops_the_entry_on_404() {
    let server = Server::start(|i, _| match i {
        0 => Reply::ok("x").header("ETag", "\"x\""),
        _ => Reply::status(404),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/InRelease");
    let http = http();
    http.get_cached(&url, 1000, dir.path()).await.unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    assert!(
        http.get_cached(&url, 1000, dir.path())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn a_304_to_an_unconditional_request_is_an_error() {
    let server = Server::start(|_, _| Reply::status(304)).await;
    let dir = tempfile::tempdir().unwrap();
    let e = http()
        .get_cached(&server.url("/InRelease"), 1000, dir.path())
        .await
        .unwrap_err();
    assert!(
        matches!(http_error(&e), HttpError::Protocol { .. }),
        "{e:#}"
    );
    let e = http()
        .get_optional(&server.url("/InRelease"), 1000)
        .await
        .unwrap_err();
    assert!(
        matches!(http_error(&e), HttpError::Protocol { .. }),
        "{e:#}"
    );
}

#[tokio::test]
async fn tls_failures_are_not_retried_and_point_at_ca_file() {
    // Plain HTTP where https is expected: rustls refuses the answer.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = stream
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .await;
            let _ = stream.shutdown().await;
        }
    });
    let url = Url::parse(&format!("https://{addr}/p.deb")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let e = http()
        .download(&url, 10, &sha(b"x"), dir.path(), "deb")
        .await
        .unwrap_err();
    assert!(matches!(http_error(&e), HttpError::Tls { .. }), "{e:#}");
    assert!(e.to_string().contains("ca_file"), "{e}");
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn with_metadata_cache_makes_get_conditional() {
    let server = etag_server("Suite: stable\n", "\"v1\"").await;
    let dir = tempfile::tempdir().unwrap();
    let http = http().with_metadata_cache(dir.path().join("metadata"));
    let url = server.url("/InRelease");
    for _ in 0..2 {
        assert_eq!(http.get(&url, 1000).await.unwrap(), b"Suite: stable\n");
    }
    assert_eq!(server.requests()[1].header("if-none-match"), Some("\"v1\""));
}

// ---- proxies -----------------------------------------------------------

/// A forward proxy that answers plain HTTP requests itself and refuses
/// CONNECT, logging the request lines.
async fn proxy_server() -> (SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let seen = log.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let Ok(Some(req)) = read_request(&mut stream).await else {
                continue;
            };
            seen.lock()
                .unwrap()
                .push(format!("{} {}", req.method, req.target));
            let reply: &[u8] = if req.method == "CONNECT" {
                b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nvia-proxy"
            };
            let _ = stream.write_all(reply).await;
            let _ = stream.shutdown().await;
        }
    });
    (addr, log)
}

use std::net::SocketAddr;

/// The environment is read when a client is built, and is process-wide:
/// the client under test runs in a child process (this test binary again,
/// running only [`proxy_child`]) whose environment this test sets.
#[tokio::test]
async fn proxy_environment_variables_are_honoured() {
    let (proxy, proxy_log) = proxy_server().await;
    let origin = Server::start(|_, _| Reply::ok("direct")).await;
    let proxy_url = format!("http://{proxy}");
    let mut cmd = tokio::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "download::tests::proxy_child",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("UPKEEP_PROXY_CHILD", origin.url("/direct").as_str())
    .env("HTTP_PROXY", &proxy_url)
    .env("HTTPS_PROXY", &proxy_url)
    .env("NO_PROXY", "127.0.0.1,localhost");
    for var in [
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
        "REQUEST_METHOD",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("proxy child done"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = proxy_log.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            "GET http://upkeep-proxy-test.invalid/via-proxy",
            "CONNECT upkeep-proxy-test.invalid:443",
        ]
    );
    // NO_PROXY: the origin was asked directly, in origin form.
    let direct: Vec<_> = origin.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(direct, ["/direct"]);
}

/// The client side of [`proxy_environment_variables_are_honoured`]; does
/// nothing unless run by it.
#[test]
#[ignore = "run by proxy_environment_variables_are_honoured in a child process"]
fn proxy_child() {
    let Ok(direct) = std::env::var("UPKEEP_PROXY_CHILD") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // The production constructor: proxies from the environment.
        let http = Http::new(None).unwrap().with_policy(Policy {
            attempts: 1,
            ..policy()
        });
        let via = Url::parse("http://upkeep-proxy-test.invalid/via-proxy").unwrap();
        assert_eq!(http.get(&via, 100).await.unwrap(), b"via-proxy");
        let direct = Url::parse(&direct).unwrap();
        assert_eq!(http.get(&direct, 100).await.unwrap(), b"direct");
        let tunnel = Url::parse("https://upkeep-proxy-test.invalid/tunnel").unwrap();
        let e = http.get(&tunnel, 100).await.unwrap_err();
        println!("https through the refusing proxy: {e:#}");
    });
    println!("proxy child done");
}

// ---- pure functions ----------------------------------------------------

#[test]
fn backoff_doubles_honours_retry_after_and_is_capped() {
    let p = Policy {
        jitter: 0.0,
        ..Policy::default()
    };
    let ms = |d: Duration| d.as_millis();
    assert_eq!(ms(p.delay(1, None)), 500);
    assert_eq!(ms(p.delay(2, None)), 1000);
    assert_eq!(ms(p.delay(3, None)), 2000);
    assert_eq!(ms(p.delay(1, Some(Duration::from_secs(5)))), 5000);
    assert_eq!(ms(p.delay(1, Some(Duration::from_secs(500)))), 30_000);
    assert_eq!(ms(p.delay(40, None)), 30_000);
    // A hostile Retry-After cannot overflow anything.
    assert_eq!(ms(p.delay(1, Some(Duration::from_secs(u64::MAX)))), 30_000);
    assert_eq!(ms(Policy::default().delay(u32::MAX, None)), 30_000);
    let j = Policy::default();
    for n in 1..=3 {
        let d = j.delay(n, None);
        let base = p.delay(n, None);
        assert!(d >= base && d <= base.mul_f64(1.25), "{d:?} vs {base:?}");
    }
}

#[test]
fn default_policy_has_the_deliberate_timeouts() {
    let p = Policy::default();
    assert_eq!(p.attempts, 4);
    assert_eq!(p.connect_timeout, Duration::from_secs(10));
    assert_eq!(p.read_timeout, Duration::from_secs(30));
}

#[test]
fn content_range_is_parsed_strictly() {
    assert_eq!(
        parse_content_range("bytes 100-199/200"),
        Some(ContentRange {
            start: 100,
            end: 199,
            total: Some(200)
        })
    );
    assert_eq!(
        parse_content_range("bytes 0-9/*").map(|r| r.total),
        Some(None)
    );
    for bad in [
        "bytes */200",
        "bytes 5-4/200",
        "bytes 0-200/200",
        "items 0-1/2",
        "bytes x-1/2",
        "",
    ] {
        assert_eq!(parse_content_range(bad), None, "{bad}");
    }
}

#[test]
fn check_sha256_accepts_match_and_names_both_on_mismatch() {
    let url = Url::parse("http://x/p.deb").unwrap();
    let good = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    assert!(check_sha256(&url, b"", good).is_ok());
    assert!(check_sha256(&url, b"", &good.to_uppercase()).is_ok());
    let e = check_sha256(&url, b"x", good).unwrap_err();
    assert!(e.to_string().contains(good));
    assert!(e.to_string().contains("mismatch"));
}

#[test]
fn error_messages_are_one_line_and_name_the_url() {
    let url = "http://repo.example/pool/p.deb".to_string();
    let errors = [
        HttpError::Status {
            url: url.clone(),
            status: 404,
            attempts: 1,
        },
        HttpError::Status {
            url: url.clone(),
            status: 503,
            attempts: 4,
        },
        HttpError::TooLarge {
            url: url.clone(),
            limit: 10,
            size: Some(20),
            content_type: Some("text/html".into()),
        },
        HttpError::SizeMismatch {
            url: url.clone(),
            expected: 10,
            actual: 5,
            content_type: None,
        },
        HttpError::Network {
            url: url.clone(),
            what: "cannot connect (Connection refused)".into(),
            attempts: 4,
        },
    ];
    for e in errors {
        let msg = e.to_string();
        assert!(msg.starts_with(&url), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
}

// ---- TLS ---------------------------------------------------------------

#[tokio::test]
async fn plain_http_reads_no_system_certificate() {
    // Every check used to read and parse the whole system store
    // (/etc/ssl/certs) when the client was built, for an http:// repository
    // that never uses it: three quarters of a warm check's instructions.
    let server = Server::start(|_, _| Reply::ok("Suite: stable\n")).await;
    let http = http();
    http.get(&server.url("/InRelease"), 1000).await.unwrap();
    assert!(!http.verifier.loaded());
}

/// `openssl s_server` on 127.0.0.1 with a certificate for that address
/// signed by a CA of its own (`dir/ca.pem`), killed when dropped.
struct TlsServer {
    child: std::process::Child,
    port: u16,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_server(dir: &Path) -> TlsServer {
    // The same CA and server certificate for 127.0.0.1 as etcd's TLS tests.
    let certs = crate::etcd::test_server::make_certificates(dir);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("openssl")
        .args(["s_server", "-quiet", "-www"])
        .arg("-cert")
        .arg(&certs.server_cert)
        .arg("-key")
        .arg(&certs.server_key)
        .args(["-accept", &format!("127.0.0.1:{port}")])
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("this test needs openssl installed");
    let server = TlsServer { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "openssl s_server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

#[tokio::test]
async fn https_is_checked_against_the_platform_roots_and_the_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = tls_server(dir.path());
    let url = Url::parse(&format!("https://127.0.0.1:{}/", server.port)).unwrap();
    // The test CA is in no system store: refused, and not retried.
    let http = http();
    let e = http.get(&url, 1 << 20).await.unwrap_err();
    assert!(matches!(http_error(&e), HttpError::Tls { .. }), "{e:#}");
    assert!(http.verifier.loaded());
    // With it as the ca_file, the same server is trusted.
    let http = Http::new(Some(&dir.path().join("ca.pem")))
        .unwrap()
        .with_policy(policy())
        .without_env_proxy();
    assert!(!http.verifier.loaded());
    let body = http.get(&url, 1 << 20).await.unwrap();
    assert!(
        String::from_utf8_lossy(&body).contains("s_server"),
        "{body:?}"
    );
    // A ca_file that holds no certificate the store accepts is refused
    // when the client is made, as before.
    std::fs::write(
        dir.path().join("bad.pem"),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let e = Http::new(Some(&dir.path().join("bad.pem"))).err().unwrap();
    assert!(e.to_string().contains("not PEM certificates"), "{e:#}");
}
