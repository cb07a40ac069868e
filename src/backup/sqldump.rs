//! Checks that a MySQL/MariaDB SQL dump parses to its end, the way the
//! `mariadb`/`mysql` client splits it into statements, in one streaming,
//! linear pass with a fixed-size buffer (dumps can be many gigabytes).
//!
//! The lexer tracks what the client tracks: quoted strings (`'…'` and `"…"`
//! with backslash escapes, `` `…` `` without; a doubled quote is simply a
//! closed string followed by an opened one), `-- ` and `#` line comments,
//! `/* … */` comments, `/*!NNNNN … */` and `/*M!NNNNN … */` executable
//! comments (their content is code), the `/*M!999999\- … */` sandbox line
//! that mariadb-dump writes first (a client command, not code), and the
//! client's `DELIMITER` command (mariadb-dump switches to `;;` around
//! triggers and routines). A dump passes when every statement ends with the
//! delimiter in force, the file ends at a statement boundary outside any
//! string or comment with the delimiter back to `;`, and its last line is
//! the dump tool's `-- Dump completed` trailer, ending with a line break.
//! So a dump cut at any byte fails.
//!
//! Why our own: no well-kept crate splits statements the way the client
//! does. `sqlparser` parses SQL grammar (not the client's `DELIMITER`
//! command or executable comments), needs each statement in memory, and
//! would reject MariaDB syntax it does not know; checking lexical structure
//! is all that is needed here, and it is ~200 lines.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use anyhow::{Context as _, bail};

/// The last line mysqldump/mariadb-dump writes starts with this.
pub(super) const TRAILER: &str = "-- Dump completed";

/// How many bytes past the current one the lexer may look at.
const LOOKAHEAD: usize = 256;

/// The longest delimiter accepted (the client's own limit is 16).
const MAX_DELIMITER: usize = 16;

/// Where the lexer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Code (possibly inside an executable comment).
    Code,
    /// Inside a quoted string or identifier; the quote byte.
    Quoted(u8),
    /// After a backslash inside a `'` or `"` string.
    Escaped(u8),
    /// A `-- ` or `#` comment, to the end of the line.
    LineComment,
    /// A `/* … */` comment (or the sandbox command).
    BlockComment,
    /// The rest of a `DELIMITER` line.
    DelimiterLine,
}

/// Lexer state carried across buffers.
struct Lexer {
    state: State,
    /// The delimiter in force.
    delimiter: Vec<u8>,
    /// Inside an executable comment `/*! … */`, and since which line.
    in_executable: Option<u64>,
    /// The current statement has code (not only comments and blanks).
    has_code: bool,
    /// Line of the start of the current statement's code.
    statement_line: u64,
    /// At the start of a line (only blanks before, in `Code`).
    line_start: bool,
    /// Current line number (1-based), for messages.
    line: u64,
    /// Line where the current string or comment began.
    opened_line: u64,
    /// Text of the current `DELIMITER` line.
    delimiter_arg: Vec<u8>,
    /// First bytes of the last `--` line comment, and whether anything
    /// but blanks came after it.
    last_comment: Vec<u8>,
    after_last_comment: bool,
    /// Whether the current line comment is the one being recorded.
    recording: bool,
    /// The last byte of the file.
    last_byte: Option<u8>,
}

impl Lexer {
    fn new() -> Lexer {
        Lexer {
            state: State::Code,
            delimiter: b";".to_vec(),
            in_executable: None,
            has_code: false,
            statement_line: 1,
            line_start: true,
            line: 1,
            opened_line: 1,
            delimiter_arg: Vec::new(),
            last_comment: Vec::new(),
            after_last_comment: true,
            recording: false,
            last_byte: None,
        }
    }

    fn code(&mut self) {
        if !self.has_code {
            self.has_code = true;
            self.statement_line = self.line;
        }
        self.after_last_comment = true;
    }

    /// Lexes `buf[..end]`, looking ahead into `buf[end..]` (which holds at
    /// least [`LOOKAHEAD`] bytes unless the file ends there). Returns how
    /// far it got (`end`, or past it when a token reached into the
    /// lookahead).
    fn feed(&mut self, buf: &[u8], end: usize) -> anyhow::Result<usize> {
        let mut i = 0;
        while i < end {
            let b = buf[i];
            let next = buf.get(i + 1).copied();
            match self.state {
                State::Quoted(q) => {
                    if b == q {
                        self.state = State::Code;
                    } else if b == b'\\' && q != b'`' {
                        self.state = State::Escaped(q);
                    }
                }
                State::Escaped(q) => self.state = State::Quoted(q),
                State::LineComment => {
                    if b == b'\n' {
                        self.state = State::Code;
                        self.recording = false;
                        self.line_start = true;
                    } else if self.recording && self.last_comment.len() < 64 {
                        self.last_comment.push(b);
                    }
                }
                State::BlockComment => {
                    if b == b'*' && next == Some(b'/') {
                        self.state = State::Code;
                        i += 1;
                    }
                }
                State::DelimiterLine => {
                    if b == b'\n' {
                        self.set_delimiter()?;
                        self.state = State::Code;
                        self.line_start = true;
                    } else {
                        if self.delimiter_arg.len() > 1024 {
                            bail!("line {}: DELIMITER line too long", self.line);
                        }
                        self.delimiter_arg.push(b);
                    }
                }
                State::Code => {
                    i = self.code_byte(buf, i)?;
                }
            }
            if b == b'\n' {
                self.line += 1;
            }
            i += 1;
        }
        Ok(i)
    }

    /// One byte (or token starting there) of code; returns the index of its
    /// last byte.
    fn code_byte(&mut self, buf: &[u8], i: usize) -> anyhow::Result<usize> {
        let b = buf[i];
        let at = |k: usize| buf.get(i + k).copied();
        if b == b'\n' {
            self.line_start = true;
            return Ok(i);
        }
        if b == b' ' || b == b'\t' || b == b'\r' {
            return Ok(i);
        }
        let line_start = std::mem::replace(&mut self.line_start, false);
        if line_start && !self.has_code && self.in_executable.is_none() {
            let word = b"delimiter";
            let head = &buf[i..buf.len().min(i + word.len() + 1)];
            if head.len() == word.len() + 1
                && head[..word.len()].eq_ignore_ascii_case(word)
                && matches!(head[word.len()], b' ' | b'\t')
            {
                self.state = State::DelimiterLine;
                self.delimiter_arg.clear();
                self.after_last_comment = true;
                return Ok(i + word.len());
            }
        }
        if buf[i..].starts_with(&self.delimiter) {
            if let Some(line) = self.in_executable {
                bail!(
                    "line {}: a statement ends inside the /*! comment opened on line {line}",
                    self.line
                );
            }
            self.has_code = false;
            self.after_last_comment = true;
            return Ok(i + self.delimiter.len() - 1);
        }
        match b {
            b'\'' | b'"' | b'`' => {
                self.code();
                self.state = State::Quoted(b);
                self.opened_line = self.line;
            }
            b'#' => {
                self.line_comment();
                self.after_last_comment = true;
            }
            b'-' if at(1) == Some(b'-')
                && at(2).is_none_or(|c| c.is_ascii_whitespace() || c.is_ascii_control()) =>
            {
                self.line_comment();
                self.recording = true;
                self.last_comment.clear();
                self.last_comment.extend_from_slice(b"--");
                self.after_last_comment = false;
                return Ok(i + 1);
            }
            b'/' if at(1) == Some(b'*') => {
                let bang = match (at(2), at(3)) {
                    (Some(b'!'), _) => Some(3),
                    (Some(b'M'), Some(b'!')) => Some(4),
                    _ => None,
                };
                self.opened_line = self.line;
                self.after_last_comment = true;
                let Some(skip) = bang else {
                    self.state = State::BlockComment;
                    return Ok(i + 1);
                };
                let digits = buf[i + skip..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .count();
                if buf.get(i + skip + digits) == Some(&b'\\') {
                    // `/*M!999999\- …*/`: a client command, not code.
                    self.state = State::BlockComment;
                    return Ok(i + skip + digits);
                }
                if self.in_executable.is_some() {
                    bail!("line {}: a /*! comment inside another", self.line);
                }
                self.in_executable = Some(self.line);
                self.code();
                return Ok(i + skip + digits - 1);
            }
            b'*' if at(1) == Some(b'/') && self.in_executable.is_some() => {
                self.in_executable = None;
                return Ok(i + 1);
            }
            _ => self.code(),
        }
        Ok(i)
    }

    fn line_comment(&mut self) {
        self.state = State::LineComment;
        self.recording = false;
    }

    fn set_delimiter(&mut self) -> anyhow::Result<()> {
        let arg = String::from_utf8_lossy(&self.delimiter_arg);
        let Some(delimiter) = arg.split_ascii_whitespace().next() else {
            bail!("line {}: DELIMITER without a delimiter", self.line);
        };
        if delimiter.len() > MAX_DELIMITER || delimiter.contains(['\'', '"', '`', '\\']) {
            bail!("line {}: unusable DELIMITER {delimiter:?}", self.line);
        }
        self.delimiter = delimiter.as_bytes().to_vec();
        Ok(())
    }

    /// The verdict at the end of the file.
    fn finish(&mut self) -> anyhow::Result<()> {
        if self.state == State::DelimiterLine {
            bail!("the dump ends in a DELIMITER line (truncated)");
        }
        match self.state {
            State::Quoted(q) | State::Escaped(q) => bail!(
                "the dump ends inside a {} quoted string opened on line {} (truncated)",
                q as char,
                self.opened_line
            ),
            State::BlockComment => bail!(
                "the dump ends inside a /* comment opened on line {} (truncated)",
                self.opened_line
            ),
            State::LineComment | State::Code | State::DelimiterLine => {}
        }
        if let Some(line) = self.in_executable {
            bail!("the dump ends inside the /*! comment opened on line {line} (truncated)");
        }
        if self.has_code {
            bail!(
                "the statement starting on line {} has no final {:?} (truncated)",
                self.statement_line,
                String::from_utf8_lossy(&self.delimiter)
            );
        }
        if self.delimiter != b";" {
            bail!("the dump ends with the delimiter still changed (truncated)");
        }
        let trailer = String::from_utf8_lossy(&self.last_comment);
        if self.after_last_comment || !trailer_complete(trailer.trim_end()) {
            bail!("no final \"{TRAILER}\" line (an incomplete dump)");
        }
        if self.last_byte != Some(b'\n') {
            bail!("the final \"{TRAILER}\" line is cut short (truncated)");
        }
        Ok(())
    }
}

/// `-- Dump completed` or `-- Dump completed on YYYY-MM-DD HH:MM:SS`
/// (as written with and without `--dump-date`).
fn trailer_complete(line: &str) -> bool {
    let Some(rest) = line.strip_prefix(TRAILER) else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some(date) = rest.strip_prefix(" on ") else {
        return false;
    };
    let shape = "dddd-dd-dd dd:dd:dd";
    date.len() == shape.len()
        && date.bytes().zip(shape.bytes()).all(|(c, s)| match s {
            b'd' => c.is_ascii_digit(),
            _ => c == s,
        })
}

/// Checks that everything `reader` gives is a complete dump (see the
/// module documentation).
///
/// # Errors
///
/// Why it is not: where it is cut, which statement lacks its delimiter, or
/// the missing trailer; or a read error.
pub(super) fn check_reader(mut reader: impl Read) -> anyhow::Result<()> {
    const CHUNK: usize = 256 * 1024;
    let mut lexer = Lexer::new();
    // One buffer (zeroed by the allocator), `buf[..filled]` unread.
    let mut buf = vec![0u8; CHUNK + LOOKAHEAD];
    let mut filled = 0;
    let mut eof = false;
    loop {
        while !eof && filled < buf.len() {
            match reader.read(&mut buf[filled..]) {
                Ok(0) => eof = true,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(anyhow::Error::new(e).context("cannot read")),
            }
        }
        if filled > 0 {
            lexer.last_byte = Some(buf[filled - 1]);
        }
        let end = if eof { filled } else { filled - LOOKAHEAD };
        let done = lexer.feed(&buf[..filled], end)?.min(filled);
        buf.copy_within(done..filled, 0);
        filled -= done;
        if eof && filled == 0 {
            return lexer.finish();
        }
    }
}

/// Checks the dump file at `path` (see the module documentation).
///
/// # Errors
///
/// The file cannot be read or is not a complete dump; one line.
pub(super) fn check_file(path: &Path) -> anyhow::Result<()> {
    let file = File::open(path).context("cannot open")?;
    check_reader(file).context("not a complete MySQL dump")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> anyhow::Result<()> {
        check_reader(text.as_bytes())
    }

    const END: &str = "-- Dump completed on 2026-12-07 18:13:27\n";

    #[test]
    fn complete_dumps_pass() {
        check(&format!("CREATE TABLE t (a INT);\n{END}")).unwrap();
        check("-- Dump completed\n").unwrap();
        check(&format!(
            "/*M!999999\\- enable the sandbox mode */ \n\
             -- c\n/*!40101 SET NAMES utf8mb4 */;\n\
             INSERT INTO t VALUES ('a;b\\'c', \"x\\\"; -- y\", 'it''s; /*', `we``ird;`);\n\
             # hash ; comment\n/* block ; ' */\n\
             DELIMITER ;;\n/*!50003 CREATE*/ /*!50003 TRIGGER x BEFORE INSERT ON t FOR EACH ROW BEGIN SET @a = 1; END */;;\n\
             DELIMITER ;\nCREATE PROCEDURE p() BEGIN END;\n;\n{END}"
        ))
        .unwrap();
        // `--x` is no comment, and the lookahead boundary does not matter.
        check(&format!(
            "SELECT 1--1;\n{}{END}",
            "SELECT 'x';\n".repeat(50_000)
        ))
        .unwrap();
    }

    #[test]
    fn incomplete_dumps_fail_with_a_reason() {
        let cases = [
            (format!("CREATE TABLE t (a INT)\n{END}"), "no final \";\""),
            (
                format!("INSERT INTO t VALUES ('abc);\n{END}"),
                "quoted string",
            ),
            (format!("/* open\n{END}"), "/* comment"),
            (
                format!("/*!40101 SET NAMES utf8 ;*/\n{END}"),
                "inside the /*!",
            ),
            (format!("/*!40101 SET NAMES utf8 \n{END}"), "inside the /*!"),
            (
                format!("DELIMITER ;;\nSELECT 1;;\n{END}"),
                "delimiter still changed",
            ),
            (format!("DELIMITER \n{END}"), "DELIMITER without"),
            ("SELECT 1;\n".to_owned(), "no final"),
            (
                "SELECT 1;\n-- Dump completed on 2026-12-07 18:1\n".to_owned(),
                "no final",
            ),
            (
                "-- Dump completed on 2026-12-07 18:13:27".to_owned(),
                "cut short",
            ),
            ("-- Dump completed\nSELECT 1;\n".to_owned(), "no final"),
            ("-- Dump completed\n# later\n".to_owned(), "no final"),
        ];
        for (text, reason) in cases {
            let err = format!("{:#}", check(&text).unwrap_err());
            assert!(err.contains(reason), "{text:?}: {err}");
        }
    }

    #[test]
    fn every_prefix_of_a_dump_fails() {
        let dump = format!(
            "/*M!999999\\- enable the sandbox mode */ \n-- head\n\
             INSERT INTO t VALUES ('a;b\\'c\n-- no', \"q\"), (`x`);\n\
             DELIMITER ;;\nCREATE TRIGGER t BEGIN SET @a = 'x;'; END ;;\nDELIMITER ;\n\
             /*!50001 CREATE VIEW v AS SELECT 1 */;\n{END}"
        );
        check(&dump).unwrap();
        for cut in 0..dump.len() {
            assert!(
                check(&dump[..cut]).is_err(),
                "cut at {cut}: {:?}",
                &dump[..cut]
            );
        }
    }

    /// A large generated dump passes, and the throughput is printed (no
    /// timing is asserted). 8 MiB by default; `UPKEEP_SQLDUMP_MIB=256
    /// cargo test --release --lib sqldump_throughput -- --nocapture`
    /// measures as the closing note did.
    #[test]
    fn sqldump_throughput() {
        let mib: usize = std::env::var("UPKEEP_SQLDUMP_MIB")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(8);
        let row = "(1234,'a string with \\'quotes\\' and ; -- inside',\"x\",0x00ff),\n";
        let mut dump = String::from("INSERT INTO `t` VALUES\n");
        while dump.len() < mib << 20 {
            dump.push_str(row);
        }
        dump.push_str("(1,'end','x',0);\n");
        dump.push_str(END);
        let started = std::time::Instant::now();
        check_reader(dump.as_bytes()).unwrap();
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "{} MiB in {secs:.3} s: {:.0} MiB/s",
            dump.len() >> 20,
            (dump.len() >> 20) as f64 / secs
        );
    }
}
