//! A deliberately tiny HTTP/1.1 server: one request per connection, then close.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const MAX_HEADER_BYTES: usize = 64 * 1024;
const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
}

pub struct Response {
    pub status: u16,
    pub body: String,
    pub content_type: &'static str,
}

impl Response {
    pub fn json(status: u16, value: serde_json::Value) -> Response {
        Response {
            status,
            body: value.to_string(),
            content_type: "application/json",
        }
    }

    pub fn html(status: u16, body: String) -> Response {
        Response {
            status,
            body,
            content_type: "text/html; charset=utf-8",
        }
    }
}

/// Parse `METHOD SP request-target SP HTTP/1.x` into (method, path). The query
/// string and fragment are dropped; absolute-form targets are reduced to their path.
pub fn parse_request_line(line: &str) -> Result<(String, String), String> {
    let line = line.trim_end_matches(['\r', '\n']);
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("malformed request line {line:?}"));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!("invalid method {method:?}"));
    }
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1") {
        return Err(format!("unsupported protocol version {version:?}"));
    }
    let mut path = target;
    for scheme in ["http://", "https://"] {
        if let Some(rest) = path.strip_prefix(scheme) {
            path = rest.find('/').map_or("/", |i| &rest[i..]);
        }
    }
    let path = path.split(['?', '#']).next().unwrap_or_default();
    if !path.starts_with('/') {
        return Err(format!("invalid request target {target:?}"));
    }
    Ok((method.to_string(), path.to_string()))
}

pub fn read_request(stream: &TcpStream) -> Result<Request, String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream.take((MAX_HEADER_BYTES + MAX_BODY_BYTES) as u64));
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    let (method, path) = parse_request_line(&line)?;

    let mut content_length = 0usize;
    let mut header_bytes = line.len();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).map_err(|e| e.to_string())?;
        header_bytes += n;
        if n == 0 {
            return Err("connection closed inside the headers".into());
        }
        if header_bytes > MAX_HEADER_BYTES {
            return Err("request headers too large".into());
        }
        let header = line.trim_end_matches(['\r', '\n']);
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let name = name.trim();
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("invalid Content-Length {:?}", value.trim()))?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err("chunked request bodies are not supported".into());
            }
        }
    }
    if content_length > MAX_BODY_BYTES {
        return Err("request body too large".into());
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body).map_err(|e| e.to_string())?;
    Ok(Request { method, path, body })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

pub fn write_response(mut stream: &TcpStream, response: &Response) {
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len()
    );
    // The client may already be gone; nothing useful to do about it.
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(response.body.as_bytes()))
        .and_then(|()| stream.flush());
}

#[cfg(test)]
mod tests {
    use super::parse_request_line;

    fn ok(method: &str, path: &str) -> Result<(String, String), String> {
        Ok((method.to_string(), path.to_string()))
    }

    #[test]
    fn request_lines() {
        assert_eq!(
            parse_request_line("GET /ready HTTP/1.1\r\n"),
            ok("GET", "/ready")
        );
        assert_eq!(
            parse_request_line("POST /api/pages HTTP/1.0"),
            ok("POST", "/api/pages")
        );
        assert_eq!(
            parse_request_line("GET /api/pages?limit=3#x HTTP/1.1\r\n"),
            ok("GET", "/api/pages")
        );
        assert_eq!(
            parse_request_line("GET http://127.0.0.1:3001/ready HTTP/1.1"),
            ok("GET", "/ready")
        );
        assert_eq!(
            parse_request_line("GET http://127.0.0.1:3001 HTTP/1.1"),
            ok("GET", "/")
        );
    }

    #[test]
    fn bad_request_lines() {
        for line in [
            "",
            "\r\n",
            "GET",
            "GET /ready",
            "GET /ready HTTP/2",
            "get /ready HTTP/1.1",
            "GET  /ready HTTP/1.1",
            "GET /ready HTTP/1.1 extra",
            "GET ready HTTP/1.1",
            "GET * HTTP/1.1",
        ] {
            assert!(parse_request_line(line).is_err(), "{line:?} accepted");
        }
    }
}
