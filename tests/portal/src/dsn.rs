//! MySQL/MariaDB connection strings: the Go driver's DSN form the real
//! product uses (`user:pass@tcp(host:port)/db?parseTime=true`,
//! `user:pass@unix(/run/mysqld/mysqld.sock)/db`) and `mysql://` URLs.
//!
//! Error messages never repeat the connection string: it may hold a password.

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// Host name or IP address (IPv6 in brackets, `[::1]`) and port.
    Tcp { host: String, port: u16 },
    /// Path of a Unix socket.
    Unix(String),
}

/// A parsed MySQL connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlTarget {
    pub user: Option<String>,
    pub password: Option<String>,
    pub address: Address,
    pub database: Option<String>,
}

pub const DEFAULT_PORT: u16 = 3306;
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// Debian's and Ubuntu's server socket (the Go driver's default is /tmp/mysql.sock).
pub const DEFAULT_SOCKET: &str = "/run/mysqld/mysqld.sock";

/// Parses a Go DSN or a `mysql://` URL. Query parameters (`parseTime=true`,
/// `charset=...`, ...) must be `key=value` pairs and are otherwise ignored.
pub fn parse_mysql(s: &str) -> Result<MysqlTarget, String> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix("mysql://") {
        return parse_url(rest);
    }
    if s.contains("://") {
        return Err(
            "invalid mysql connection string: the only URL scheme accepted is mysql://".into(),
        );
    }
    parse_go_dsn(s)
}

/// `[user[:password]@][net[(address)]]/dbname[?param=value&...]`, split as
/// the Go driver does: the database name follows the last `/`, the
/// credentials end at the last `@` before it, the user ends at the first `:`.
fn parse_go_dsn(s: &str) -> Result<MysqlTarget, String> {
    let slash = s.rfind('/').ok_or(
        "invalid mysql DSN: expected [user[:password]@][tcp(host:port)|unix(/path)]/dbname",
    )?;
    let (head, tail) = (&s[..slash], &s[slash + 1..]);
    let (user, password, net) = match head.rfind('@') {
        Some(at) => {
            let (user, password) = split_credentials(&head[..at]);
            (user, password, &head[at + 1..])
        }
        None => (None, None, head),
    };
    let (protocol, address) = match net.find('(') {
        Some(open) => {
            let inner = net[open + 1..].strip_suffix(')').ok_or(
                "invalid mysql DSN: the address must be in parentheses, e.g. tcp(127.0.0.1:3306)",
            )?;
            (&net[..open], inner)
        }
        None => (net, ""),
    };
    let address = match protocol {
        "" | "tcp" => parse_host_port(address)?,
        "unix" if address.is_empty() => Address::Unix(DEFAULT_SOCKET.into()),
        "unix" => Address::Unix(address.into()),
        other => {
            return Err(format!(
                "invalid mysql DSN: unsupported protocol {other:?} (expected tcp or unix)"
            ));
        }
    };
    let (database, query) = tail.split_once('?').unwrap_or((tail, ""));
    check_params(query)?;
    Ok(MysqlTarget {
        user,
        password,
        address,
        database: (!database.is_empty()).then(|| database.to_string()),
    })
}

/// `[user[:password]@]host[:port][/dbname][?param=value&...]`, percent-decoded.
fn parse_url(rest: &str) -> Result<MysqlTarget, String> {
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (user, password, host) = match authority.rfind('@') {
        Some(at) => {
            let (user, password) = split_credentials(&authority[..at]);
            let user = user.map(|u| percent_decode(&u)).transpose()?;
            let password = password.map(|p| percent_decode(&p)).transpose()?;
            (user, password, &authority[at + 1..])
        }
        None => (None, None, authority),
    };
    let address = parse_host_port(host)?;
    let tail = tail.strip_prefix('/').unwrap_or(tail);
    let (database, query) = tail.split_once('?').unwrap_or((tail, ""));
    check_params(query)?;
    let database = percent_decode(database)?;
    Ok(MysqlTarget {
        user,
        password,
        address,
        database: (!database.is_empty()).then_some(database),
    })
}

/// `user:password` → (user, password); both absent when empty.
fn split_credentials(credentials: &str) -> (Option<String>, Option<String>) {
    let (user, password) = match credentials.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (credentials, None),
    };
    (
        (!user.is_empty()).then(|| user.to_string()),
        password.filter(|p| !p.is_empty()).map(str::to_string),
    )
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`; empty means 127.0.0.1:3306.
fn parse_host_port(s: &str) -> Result<Address, String> {
    let bad = || "invalid mysql address: expected host:port".to_string();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let close = rest.find(']').ok_or_else(bad)?;
        let host = &s[..close + 2];
        match &rest[close + 1..] {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or("invalid mysql address: the port must be a number from 1 to 65535")?,
    };
    let host = if host.is_empty() { DEFAULT_HOST } else { host };
    Ok(Address::Tcp {
        host: host.to_string(),
        port,
    })
}

fn check_params(query: &str) -> Result<(), String> {
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        if !pair.contains('=') {
            return Err("invalid mysql connection string: parameters must be key=value".into());
        }
    }
    Ok(())
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("invalid mysql URL: bad percent-encoding")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "invalid mysql URL: percent-encoding is not UTF-8".into())
}

/// A Go DSN with its password replaced by `***` (URLs are masked by the caller).
pub fn mask_go_dsn(s: &str) -> String {
    let head_end = s.rfind('/').unwrap_or(s.len());
    let Some(at) = s[..head_end].rfind('@') else {
        return s.to_string();
    };
    match s[..at].find(':') {
        Some(colon) => format!("{}:***{}", &s[..colon], &s[at..]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> Address {
        Address::Tcp {
            host: host.into(),
            port,
        }
    }

    fn target(user: &str, password: &str, address: Address, db: &str) -> MysqlTarget {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        MysqlTarget {
            user: some(user),
            password: some(password),
            address,
            database: some(db),
        }
    }

    #[test]
    fn go_dsn() {
        assert_eq!(
            parse_mysql("portal:pw@tcp(127.0.0.1:3306)/portal?parseTime=true"),
            Ok(target("portal", "pw", tcp("127.0.0.1", 3306), "portal"))
        );
        assert_eq!(
            parse_mysql("portal:pw@unix(/run/mysqld/mysqld.sock)/portal"),
            Ok(target(
                "portal",
                "pw",
                Address::Unix("/run/mysqld/mysqld.sock".into()),
                "portal"
            ))
        );
        // The password may hold ':', '@' and '/'; the user ends at the first ':'.
        assert_eq!(
            parse_mysql("u:p:a@s/s@tcp(db.example:3307)/portal?parseTime=true&loc=UTC"),
            Ok(target("u", "p:a@s/s", tcp("db.example", 3307), "portal"))
        );
        assert_eq!(
            parse_mysql("portal@tcp(db)/portal"),
            Ok(target("portal", "", tcp("db", 3306), "portal"))
        );
        assert_eq!(
            parse_mysql("portal:pw@tcp([::1]:3306)/portal"),
            Ok(target("portal", "pw", tcp("[::1]", 3306), "portal"))
        );
        assert_eq!(
            parse_mysql("portal:pw@/portal"),
            Ok(target("portal", "pw", tcp("127.0.0.1", 3306), "portal"))
        );
        assert_eq!(
            parse_mysql("portal:pw@tcp/portal"),
            Ok(target("portal", "pw", tcp("127.0.0.1", 3306), "portal"))
        );
        assert_eq!(
            parse_mysql("portal:pw@unix/portal"),
            Ok(target(
                "portal",
                "pw",
                Address::Unix(DEFAULT_SOCKET.into()),
                "portal"
            ))
        );
        assert_eq!(
            parse_mysql("/portal"),
            Ok(target("", "", tcp("127.0.0.1", 3306), "portal"))
        );
    }

    #[test]
    fn url() {
        assert_eq!(
            parse_mysql("mysql://portal:pw@127.0.0.1:3306/portal"),
            Ok(target("portal", "pw", tcp("127.0.0.1", 3306), "portal"))
        );
        assert_eq!(
            parse_mysql("mysql://portal:p%40ss%2Fw@db.example/portal?x=1"),
            Ok(target(
                "portal",
                "p@ss/w",
                tcp("db.example", 3306),
                "portal"
            ))
        );
        assert_eq!(
            parse_mysql("mysql://localhost"),
            Ok(target("", "", tcp("localhost", 3306), ""))
        );
    }

    #[test]
    fn errors_never_echo_the_password() {
        for bad in [
            "portal:secret-pw@tcp(127.0.0.1:3306)",
            "portal:secret-pw@tcp(127.0.0.1:3306/portal",
            "portal:secret-pw@tcp(127.0.0.1:99999)/portal",
            "portal:secret-pw@tcp(127.0.0.1:0)/portal",
            "portal:secret-pw@pipe(x)/portal",
            "portal:secret-pw@tcp(h)/portal?parseTime",
            "mysql://portal:secret-pw%zz@h/portal",
            "postgres://portal:secret-pw@h/portal",
        ] {
            let e = parse_mysql(bad).expect_err(bad);
            assert!(!e.contains("secret-pw"), "{bad}: {e}");
        }
    }

    #[test]
    fn masks_go_dsn() {
        assert_eq!(
            mask_go_dsn("portal:pw@tcp(127.0.0.1:3306)/portal?parseTime=true"),
            "portal:***@tcp(127.0.0.1:3306)/portal?parseTime=true"
        );
        assert_eq!(
            mask_go_dsn("portal:p:a@s/s@unix(/run/mysqld/mysqld.sock)/portal"),
            "portal:***@unix(/run/mysqld/mysqld.sock)/portal"
        );
        assert_eq!(
            mask_go_dsn("portal:pw@tcp(127.0.0.1:3306)"),
            "portal:***@tcp(127.0.0.1:3306)"
        );
        assert_eq!(
            mask_go_dsn("portal@tcp(db)/portal"),
            "portal@tcp(db)/portal"
        );
        assert_eq!(mask_go_dsn("/portal"), "/portal");
    }
}
