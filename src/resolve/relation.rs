//! Package relations as deb and rpm write them (`libc6 (>= 2.34)`,
//! `foo >= 1:2.0-3`), and whether a package version or a Provide meets one.
//!
//! One model serves both families: a [`Relation`] names a package (or a
//! provided name), optionally an architecture (deb only) and a version
//! bound; a dependency clause is a list of alternatives, any of which
//! satisfies it. Which comparison rules apply follows the family of the
//! bound's [`PkgVersion`]:
//!
//! - **deb**: the bound is compared with dpkg's ordering. A versioned
//!   Provide (`Provides: x (= 1.0)`) satisfies versioned relations on `x`;
//!   an unversioned Provide satisfies only unversioned relations (dpkg's
//!   and apt's rule since dpkg 1.17).
//! - **rpm**: as rpm's `rpmdsCompare()`: two ranges overlap; the release is
//!   compared only when both sides carry one (`Requires: foo = 1.0` is met
//!   by `foo-1.0-5`); a missing epoch is 0; an unversioned Provide
//!   satisfies every relation on its name.

use std::cmp::Ordering;
use std::fmt;

use anyhow::{Context, anyhow, bail};

use crate::version::{Family, PkgVersion};

/// A version comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Strictly earlier (deb `<<`, rpm `<` / `LT`).
    Lt,
    /// Earlier or equal (deb `<=` and the obsolete `<`, rpm `<=` / `LE`).
    Le,
    /// Equal (`=`, rpm `EQ`).
    Eq,
    /// Later or equal (deb `>=` and the obsolete `>`, rpm `>=` / `GE`).
    Ge,
    /// Strictly later (deb `>>`, rpm `>` / `GT`).
    Gt,
}

impl Op {
    /// Whether a version that compares `ord` to the bound (`version.cmp(bound)`)
    /// satisfies the operator.
    pub fn holds(self, ord: Ordering) -> bool {
        match self {
            Op::Lt => ord == Ordering::Less,
            Op::Le => ord != Ordering::Greater,
            Op::Eq => ord == Ordering::Equal,
            Op::Ge => ord != Ordering::Less,
            Op::Gt => ord == Ordering::Greater,
        }
    }

    /// The operator of rpm metadata: primary.xml's `flags` (`LT`, `LE`,
    /// `EQ`, `GE`, `GT`) or `%{REQUIREFLAGS:depflags}` (`<`, `<=`, `=`,
    /// `>=`, `>`); `None` for anything else.
    pub fn from_rpm(flags: &str) -> Option<Op> {
        Some(match flags.trim() {
            "LT" | "<" => Op::Lt,
            "LE" | "<=" | "=<" => Op::Le,
            "EQ" | "=" | "==" => Op::Eq,
            "GE" | ">=" | "=>" => Op::Ge,
            "GT" | ">" => Op::Gt,
            _ => return None,
        })
    }

    /// The operator as a deb control field writes it.
    fn deb_text(self) -> &'static str {
        match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        }
    }

    /// The operator as an rpm spec writes it.
    fn rpm_text(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">",
        }
    }

    fn less(self) -> bool {
        matches!(self, Op::Lt | Op::Le)
    }

    fn greater(self) -> bool {
        matches!(self, Op::Gt | Op::Ge)
    }

    fn equal(self) -> bool {
        matches!(self, Op::Le | Op::Eq | Op::Ge)
    }
}

/// One relation: a name, for deb an optional architecture qualifier, and an
/// optional version bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relation {
    /// The package or provided name (`libc6`, `mail-transport-agent`,
    /// `libc.so.6()(64bit)`).
    pub name: String,
    /// deb's qualifier after `:` (`any`, `native`, `amd64`); always `None`
    /// for rpm.
    pub arch: Option<String>,
    /// The version bound, if any.
    pub constraint: Option<(Op, PkgVersion)>,
}

impl Relation {
    /// An unversioned, unqualified relation on `name`.
    pub fn on(name: &str) -> Relation {
        Relation {
            name: name.to_string(),
            arch: None,
            constraint: None,
        }
    }

    /// Whether a package of this name at `version` meets the version bound
    /// (names and architectures are the caller's to check). Unversioned
    /// relations are met by every version.
    pub fn satisfied_by(&self, version: &PkgVersion) -> bool {
        let Some((op, bound)) = &self.constraint else {
            return true;
        };
        match bound.family() {
            Family::Deb => op.holds(version.cmp(bound)),
            Family::Rpm => rpm_overlap(Some((Op::Eq, version)), Some((*op, bound))),
        }
    }

    /// Whether `provide` (a Provides entry of some package) meets this
    /// relation: same name, and the family's rule for versions (see the
    /// module documentation).
    pub fn satisfied_by_provide(&self, provide: &Relation) -> bool {
        if provide.name != self.name {
            return false;
        }
        let Some((op, bound)) = &self.constraint else {
            return true;
        };
        match bound.family() {
            Family::Deb => match &provide.constraint {
                Some((Op::Eq, v)) => op.holds(v.cmp(bound)),
                // Unversioned provides do not satisfy versioned relations;
                // dpkg allows only `=` in Provides.
                _ => false,
            },
            Family::Rpm => rpm_overlap(
                provide.constraint.as_ref().map(|(o, v)| (*o, v)),
                Some((*op, bound)),
            ),
        }
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(arch) = &self.arch {
            write!(f, ":{arch}")?;
        }
        match &self.constraint {
            None => Ok(()),
            Some((op, v)) if v.family() == Family::Deb => write!(f, " ({} {v})", op.deb_text()),
            Some((op, v)) => write!(f, " {} {v}", op.rpm_text()),
        }
    }
}

/// A clause as text: its alternatives joined by ` | `.
pub fn clause_text(clause: &[Relation]) -> String {
    clause
        .iter()
        .map(Relation::to_string)
        .collect::<Vec<_>>()
        .join(" | ")
}

// ---------------------------------------------------------------------------
// deb

/// Parses a deb relation field (`Depends`, `Pre-Depends`, `Breaks`,
/// `Conflicts`, `Provides`): clauses separated by `,`, alternatives by `|`,
/// each `name[:arch] [(op version)]`. Operators are `<<`, `<=`, `=`, `>=`,
/// `>>` and the obsolete `<` (meaning `<=`) and `>` (meaning `>=`).
/// Whitespace, line folding and empty clauses (`a, , b,`) are tolerated as
/// apt tolerates them; architecture restrictions (`[amd64]`) and build
/// profiles (`<!nocheck>`), which only source packages may carry, are
/// errors.
pub fn parse_deb_relations(field: &str) -> anyhow::Result<Vec<Vec<Relation>>> {
    let mut out = Vec::new();
    for clause in field.split(',') {
        if clause.trim().is_empty() {
            continue;
        }
        let alternatives = clause
            .split('|')
            .map(parse_deb_relation)
            .collect::<anyhow::Result<Vec<_>>>()
            .with_context(|| format!("bad relation {:?}", clause.trim()))?;
        out.push(alternatives);
    }
    Ok(out)
}

/// One alternative of a deb relation field.
fn parse_deb_relation(text: &str) -> anyhow::Result<Relation> {
    let t = text.trim();
    if t.is_empty() {
        bail!("empty alternative");
    }
    let end = t
        .find(|c: char| c.is_whitespace() || "([<".contains(c))
        .unwrap_or(t.len());
    let (name_arch, rest) = t.split_at(end);
    let (name, arch) = match name_arch.split_once(':') {
        Some((n, a)) => (n, Some(a)),
        None => (name_arch, None),
    };
    let name_ok = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !name_ok {
        bail!("bad package name {name:?}");
    }
    if let Some(a) = arch
        && (a.is_empty() || !a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    {
        bail!("bad architecture qualifier {a:?}");
    }
    let mut rest = rest.trim_start();
    let constraint = match rest.strip_prefix('(') {
        None => None,
        Some(r) => {
            let close = r.find(')').ok_or_else(|| anyhow!("unclosed '('"))?;
            let inner = r[..close].trim();
            let op_len = inner
                .find(|c: char| !"<>=".contains(c))
                .unwrap_or(inner.len());
            let op = match &inner[..op_len] {
                "<<" => Op::Lt,
                "<=" | "<" => Op::Le,
                "=" => Op::Eq,
                ">=" | ">" => Op::Ge,
                ">>" => Op::Gt,
                other => bail!("bad operator {other:?}"),
            };
            let version = inner[op_len..].trim();
            if version.is_empty() {
                bail!("no version after {:?}", op.deb_text());
            }
            rest = r[close + 1..].trim_start();
            Some((op, PkgVersion::deb(version)?))
        }
    };
    if !rest.is_empty() {
        bail!(
            "unexpected {rest:?} (architecture and build-profile restrictions belong to source packages)"
        );
    }
    Ok(Relation {
        name: name.to_string(),
        arch: arch.map(str::to_string),
        constraint,
    })
}

// ---------------------------------------------------------------------------
// rpm

/// Whether the resolver leaves an rpm requirement to rpm itself:
/// `rpmlib(...)` features (rpm knows what it supports) and file paths
/// (`/bin/sh`). rpm checks both in its transaction anyway, and file
/// provides would need every package's file list: primary.xml lists only
/// some files, and the test rig's rpm hosts have no file provides database.
pub fn rpm_ignored(name: &str) -> bool {
    name.starts_with("rpmlib(") || name.starts_with('/')
}

/// One rpm relation (a Provides or Conflicts entry, or a plain Requires),
/// with its bound when there is one. rpm relations carry no architecture
/// qualifier (`foo(x86-64)` is a name).
pub fn rpm_relation(name: &str, constraint: Option<(Op, PkgVersion)>) -> Relation {
    Relation {
        name: name.trim().to_string(),
        arch: None,
        constraint,
    }
}

/// An rpm `Requires` entry as the dependency clauses the resolver checks:
/// none for [`rpm_ignored`] names, one clause for a plain name, and for a
/// rich (boolean) dependency (`(a or b >= 2)`, rpm 4.13+) what can be
/// expressed as clauses: `and` gives one clause per operand, `or` one
/// clause of alternatives. Conditional operators (`if`, `else`, `unless`,
/// `with`, `without`), and `or` over anything but plain names, are left to
/// rpm's own check in the transaction, as are rich operands that are
/// ignored names.
pub fn rpm_requirement(
    name: &str,
    constraint: Option<(Op, PkgVersion)>,
) -> anyhow::Result<Vec<Vec<Relation>>> {
    let name = name.trim();
    if name.starts_with('(') {
        let mut parser = RichParser { text: name, at: 0 };
        let rich = parser
            .group()
            .with_context(|| format!("bad rich dependency {name:?}"))?;
        parser.skip_space();
        if parser.at != name.len() {
            bail!("bad rich dependency {name:?}: text after the closing ')'");
        }
        return Ok(rich.clauses().unwrap_or_default());
    }
    if name.is_empty() {
        bail!("empty rpm requirement");
    }
    if rpm_ignored(name) {
        return Ok(Vec::new());
    }
    Ok(vec![vec![rpm_relation(name, constraint)]])
}

/// A parsed rich dependency.
enum Rich {
    Simple(Relation),
    And(Vec<Rich>),
    Or(Vec<Rich>),
    /// `if`, `with`...: not checked by the resolver.
    Other,
}

impl Rich {
    /// The clauses this expression requires; `None` when it cannot be put
    /// as clauses (then rpm checks it).
    fn clauses(self) -> Option<Vec<Vec<Relation>>> {
        match self {
            Rich::Simple(r) if rpm_ignored(&r.name) => Some(Vec::new()),
            Rich::Simple(r) => Some(vec![vec![r]]),
            Rich::And(items) => Some(
                items
                    .into_iter()
                    .filter_map(Rich::clauses)
                    .flatten()
                    .collect(),
            ),
            Rich::Or(items) => {
                let mut alternatives = Vec::new();
                for item in items {
                    let mut clauses = item.clauses()?;
                    // An operand that is not one clause (an `and`, an
                    // ignored name that may be what satisfies it) makes the
                    // whole `or` rpm's to check.
                    if clauses.len() != 1 {
                        return None;
                    }
                    alternatives.append(&mut clauses[0]);
                }
                Some(vec![alternatives])
            }
            Rich::Other => None,
        }
    }
}

/// A recursive-descent reader of rpm's boolean dependency syntax.
struct RichParser<'a> {
    text: &'a str,
    at: usize,
}

impl RichParser<'_> {
    fn skip_space(&mut self) {
        while self.text[self.at..].starts_with(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.at..].chars().next()
    }

    /// `( term (op term)* )`
    fn group(&mut self) -> anyhow::Result<Rich> {
        self.skip_space();
        if self.peek() != Some('(') {
            bail!("expected '('");
        }
        self.at += 1;
        let mut terms = vec![self.term()?];
        let mut ops = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                Some(')') => {
                    self.at += 1;
                    break;
                }
                None => bail!("unclosed '('"),
                Some(_) => {
                    ops.push(self.word());
                    terms.push(self.term()?);
                }
            }
        }
        if ops.is_empty() {
            return terms.pop().ok_or_else(|| anyhow!("empty group"));
        }
        for op in &ops {
            if !["and", "or", "if", "else", "with", "without", "unless"].contains(&op.as_str()) {
                bail!("unknown operator {op:?}");
            }
        }
        Ok(if ops.iter().all(|o| o == "and") {
            Rich::And(terms)
        } else if ops.iter().all(|o| o == "or") {
            Rich::Or(terms)
        } else {
            Rich::Other
        })
    }

    /// A name (which may hold balanced parentheses: `perl(Foo::Bar)`), up
    /// to whitespace or an unbalanced `)`.
    fn word(&mut self) -> String {
        let start = self.at;
        let mut depth = 0usize;
        for (i, c) in self.text[start..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' if depth == 0 => {
                    self.at = start + i;
                    return self.text[start..self.at].to_string();
                }
                ')' => depth -= 1,
                c if c.is_whitespace() && depth == 0 => {
                    self.at = start + i;
                    return self.text[start..self.at].to_string();
                }
                _ => {}
            }
        }
        self.at = self.text.len();
        self.text[start..].to_string()
    }

    /// A nested group, or `name [op evr]`.
    fn term(&mut self) -> anyhow::Result<Rich> {
        self.skip_space();
        if self.peek() == Some('(') {
            return self.group();
        }
        let name = self.word();
        if name.is_empty() {
            bail!("expected a name");
        }
        self.skip_space();
        let rest = &self.text[self.at..];
        let op_len = rest
            .find(|c: char| !"<>=".contains(c))
            .unwrap_or(rest.len());
        if op_len == 0 {
            return Ok(Rich::Simple(rpm_relation(&name, None)));
        }
        let op = Op::from_rpm(&rest[..op_len])
            .ok_or_else(|| anyhow!("bad operator {:?}", &rest[..op_len]))?;
        self.at += op_len;
        self.skip_space();
        let evr = self.word();
        let version = PkgVersion::rpm(&evr)?;
        Ok(Rich::Simple(rpm_relation(&name, Some((op, version)))))
    }
}

/// The parts of an rpm version from its text: `[E:]V[-R]`.
fn rpm_split(v: &PkgVersion) -> (Option<&str>, &str, Option<&str>) {
    let text = v.as_str();
    let (epoch, rest) = match text.split_once(':') {
        Some((e, r)) => (Some(e), r),
        None => (None, text),
    };
    match rest.split_once('-') {
        Some((ver, rel)) => (epoch, ver, Some(rel)),
        None => (epoch, rest, None),
    }
}

/// rpm's comparison of two bounds: the release counts only when both have
/// one.
fn rpm_cmp(a: &PkgVersion, b: &PkgVersion) -> Ordering {
    let (ae, av, ar) = rpm_split(a);
    let (be, bv, br) = rpm_split(b);
    if ar.is_some() && br.is_some() {
        return a.cmp(b);
    }
    match (
        PkgVersion::rpm_parts(ae, av, None),
        PkgVersion::rpm_parts(be, bv, None),
    ) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

/// Whether two rpm ranges overlap, as rpm's `rpmdsCompare()` decides; a
/// side without a bound overlaps everything.
fn rpm_overlap(a: Option<(Op, &PkgVersion)>, b: Option<(Op, &PkgVersion)>) -> bool {
    let (Some((ao, av)), Some((bo, bv))) = (a, b) else {
        return true;
    };
    match rpm_cmp(av, bv) {
        Ordering::Less => ao.greater() || bo.less(),
        Ordering::Greater => ao.less() || bo.greater(),
        Ordering::Equal => {
            (ao.equal() && bo.equal()) || (ao.less() && bo.less()) || (ao.greater() && bo.greater())
        }
    }
}
