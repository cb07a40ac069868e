//! A scripted HTTP/1.1 server for the download tests: a real TCP listener on
//! 127.0.0.1 writing hand-made responses, so that the client under test runs
//! its real code paths (connection, headers, body framing, errors). Every
//! request is logged; each test decides the reply per request.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Request {
    /// `GET`, `CONNECT`, ...
    pub method: String,
    /// The request target: a path, an absolute URL (proxies) or host:port.
    pub target: String,
    /// Header names in lower case, with their values.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the server does with one request.
#[derive(Clone, Debug)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// `Content-Length` to announce; `None`: none, the body ends at close.
    length: Option<u64>,
    /// Close the connection after this many body bytes.
    cut_after: Option<usize>,
    /// Send the body one byte at a time with this pause before each.
    gap: Option<Duration>,
}

impl Reply {
    /// `200 OK` with `body`.
    pub fn ok(body: impl Into<Vec<u8>>) -> Reply {
        let body = body.into();
        Reply {
            status: 200,
            headers: Vec::new(),
            length: Some(body.len() as u64),
            body,
            cut_after: None,
            gap: None,
        }
    }

    /// `status` with an empty body.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            ..Reply::ok(Vec::new())
        }
    }

    /// Another status.
    pub fn with_status(self, status: u16) -> Reply {
        Reply { status, ..self }
    }

    /// An extra header.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Announce `n` bytes whatever the body.
    pub fn announce(self, n: u64) -> Reply {
        Reply {
            length: Some(n),
            ..self
        }
    }

    /// No `Content-Length`: the body ends when the connection closes.
    pub fn close_delimited(self) -> Reply {
        Reply {
            length: None,
            ..self
        }
    }

    /// Hang up after `n` bytes of the body.
    pub fn cut_after(self, n: usize) -> Reply {
        Reply {
            cut_after: Some(n),
            ..self
        }
    }

    /// Send the body a byte at a time, `gap` apart.
    pub fn trickle(self, gap: Duration) -> Reply {
        Reply {
            gap: Some(gap),
            ..self
        }
    }
}

/// Serves `body` honouring `Range: bytes=N-` (206), or whole (200); 416
/// when N is past the end.
pub fn serve_range(body: &[u8], req: &Request) -> Reply {
    let start = req
        .header("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    match start {
        None => Reply::ok(body.to_vec()),
        Some(n) if n >= body.len() => {
            Reply::status(416).header("Content-Range", &format!("bytes */{}", body.len()))
        }
        Some(n) => Reply::ok(body[n..].to_vec()).with_status(206).header(
            "Content-Range",
            &format!("bytes {n}-{}/{}", body.len() - 1, body.len()),
        ),
    }
}

type Handler = dyn Fn(usize, &Request) -> Reply + Send + Sync;

/// The server; stops when dropped.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Request>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Starts a server answering request number `i` (from 0) with
    /// `handler(i, request)`.
    pub async fn start(
        handler: impl Fn(usize, &Request) -> Reply + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let log: Arc<Mutex<Vec<Request>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let task = {
            let log = log.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let log = log.clone();
                    let handler = handler.clone();
                    tokio::spawn(async move {
                        let _ = connection(stream, &log, &*handler).await;
                    });
                }
            })
        };
        Server { addr, log, task }
    }

    /// A URL on this server.
    pub fn url(&self, path: &str) -> Url {
        Url::parse(&format!("http://{}{path}", self.addr)).expect("url")
    }

    /// The requests so far.
    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().expect("log").clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads a request head: method, target, headers.
pub async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await? == 0 {
            return Ok(None);
        }
        buf.push(byte[0]);
        if buf.len() > 64 * 1024 {
            return Ok(None);
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let target = first.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Some(Request {
        method,
        target,
        headers,
    }))
}

async fn connection(
    mut stream: TcpStream,
    log: &Mutex<Vec<Request>>,
    handler: &Handler,
) -> std::io::Result<()> {
    let Some(req) = read_request(&mut stream).await? else {
        return Ok(());
    };
    let index = {
        let mut log = log.lock().expect("log");
        log.push(req.clone());
        log.len() - 1
    };
    let reply = handler(index, &req);
    let reason = reqwest::StatusCode::from_u16(reply.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Whatever");
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nConnection: close\r\n",
        reply.status
    );
    let bodiless = matches!(reply.status, 100..=199 | 204 | 304);
    if let (Some(n), false) = (reply.length, bodiless) {
        head.push_str(&format!("Content-Length: {n}\r\n"));
    }
    for (n, v) in &reply.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    if !bodiless && req.method != "HEAD" {
        let body = match reply.cut_after {
            Some(n) => &reply.body[..n.min(reply.body.len())],
            None => &reply.body[..],
        };
        match reply.gap {
            Some(gap) => {
                for b in body {
                    tokio::time::sleep(gap).await;
                    stream.write_all(&[*b]).await?;
                }
            }
            None => stream.write_all(body).await?,
        }
    }
    stream.flush().await?;
    stream.shutdown().await
}
