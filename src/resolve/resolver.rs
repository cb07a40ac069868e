//! The resolver proper: a deterministic pass over what is installed, the
//! request and what has been offered so far, repeated as more is offered.
//!
//! Each [`Resolver::run`] starts from scratch with everything known so far.
//! Whenever it needs a name it has not asked for yet (a dependency to
//! choose for, an installed package to upgrade), it notes the name and
//! carries on with the rest; at the end of the pass, if any name was noted,
//! it asks for them all ([`Outcome::Need`]) instead of answering. A name is
//! asked for once: the caller's answer holds every offered package of that
//! name and every one that provides it, so what is known about a name is
//! complete once asked. Since every pass asks only new names, the loop ends.
//! Errors found in a pass that also asks are dropped: the answer may
//! change them, and the next pass finds them again if not.

use std::collections::{BTreeSet, HashMap};

use super::relation::clause_text;
use super::{PackageInfo, Relation};
use crate::version::{Family, PkgVersion};

/// What a [`Resolver::run`] needs next, or its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Offer every package whose name is one of these, or whose Provides
    /// mention one of them, with [`Resolver::add`], then run again. Never
    /// empty, and never a name asked before.
    Need(BTreeSet<String>),
    /// Everything is decided.
    Done(Resolution),
}

/// The packages an upgrade installs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// The requested packages first (in the order of the request), then
    /// the packages brought along, in the order they were found.
    pub install: Vec<Choice>,
}

/// One package version to install.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    /// Package name.
    pub name: String,
    /// The version to install.
    pub version: PkgVersion,
    /// Its architecture.
    pub arch: String,
    /// The installed version it replaces, if any (none: newly installed).
    pub installed: Option<PkgVersion>,
    /// Why, in words: `requested`, `nginx depends on nginx-common (=
    /// 1.22.1-9+deb12u1)`, `libssl3 (>= 3.0.9) needed by nginx; installed
    /// 3.0.8-1`.
    pub reason: String,
}

/// Why the request cannot be installed, in one line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// A requested version that no repository offers.
    #[error("{package} {version} is requested, but {why}")]
    NotOffered {
        /// Package name.
        package: String,
        /// The requested version.
        version: String,
        /// What the repositories offer instead.
        why: String,
    },
    /// A dependency nothing meets: of a package being installed, or of an
    /// installed package that an upgrade breaks and that no offered
    /// version fixes.
    #[error("{package} depends on {relation}, {why}")]
    Unmet {
        /// The package and its version (`nginx 1.22.1-9+deb12u1`, or
        /// `libnginx-mod-mail 1.22.1-7 (installed)`).
        package: String,
        /// The clause, as text (`nginx-common (= 1.22.1-9+deb12u1)`,
        /// `default-mta | mail-transport-agent`).
        relation: String,
        /// Why nothing meets it (`which no configured repository offers`).
        why: String,
    },
    /// A `Breaks` or `Conflicts` that no offered upgrade resolves.
    #[error("{package} {kind} {relation}, which {other} matches, {why}")]
    Conflict {
        /// The package that breaks or conflicts, and its version.
        package: String,
        /// `breaks` or `conflicts with`.
        kind: &'static str,
        /// The relation, as text.
        relation: String,
        /// The package it hits, and its version.
        other: String,
        /// Why it cannot be fixed.
        why: String,
    },
}

/// The dependency resolver (see the [module documentation](super)).
#[derive(Debug)]
pub struct Resolver {
    family: Family,
    host_arch: String,
    installed: Vec<PackageInfo>,
    /// Name or provided name → the installed packages that carry it.
    installed_index: HashMap<String, Vec<usize>>,
    /// Name → the installed packages whose dependencies mention it.
    installed_rdeps: HashMap<String, Vec<usize>>,
    /// Name → the installed packages whose Breaks/Conflicts mention it.
    installed_conflicts: HashMap<String, Vec<usize>>,
    request: Vec<(String, PkgVersion)>,
    available: Vec<PackageInfo>,
    /// Name → offered packages of that name.
    by_name: HashMap<String, Vec<usize>>,
    /// Provided name → offered packages that provide it.
    by_provide: HashMap<String, Vec<usize>>,
    asked: BTreeSet<String>,
}

/// Appends `i` to the list of `key`, once.
fn index(map: &mut HashMap<String, Vec<usize>>, key: &str, i: usize) {
    let list = map.entry(key.to_string()).or_default();
    if list.last() != Some(&i) {
        list.push(i);
    }
}

impl Resolver {
    /// A resolver for a host of `family` and architecture `host_arch`
    /// (`amd64`, `x86_64`), where `installed` is installed, asked to install
    /// `request` (names at exact versions).
    pub fn new(
        family: Family,
        host_arch: &str,
        installed: Vec<PackageInfo>,
        request: Vec<(String, PkgVersion)>,
    ) -> Resolver {
        let mut installed_index = HashMap::new();
        let mut installed_rdeps = HashMap::new();
        let mut installed_conflicts = HashMap::new();
        for (i, p) in installed.iter().enumerate() {
            index(&mut installed_index, &p.name, i);
            for provide in &p.provides {
                index(&mut installed_index, &provide.name, i);
            }
            for rel in p.depends.iter().flatten() {
                index(&mut installed_rdeps, &rel.name, i);
            }
            for rel in p.breaks.iter().chain(&p.conflicts) {
                index(&mut installed_conflicts, &rel.name, i);
            }
        }
        Resolver {
            family,
            host_arch: host_arch.to_string(),
            installed,
            installed_index,
            installed_rdeps,
            installed_conflicts,
            request,
            available: Vec::new(),
            by_name: HashMap::new(),
            by_provide: HashMap::new(),
            asked: BTreeSet::new(),
        }
    }

    /// Adds offered packages (the answer to an [`Outcome::Need`]; extra
    /// packages do no harm). Packages of an architecture other than the
    /// host's and `all`/`noarch` are left out, and a package offered twice
    /// (two repositories, two answers) is kept once.
    pub fn add(&mut self, offered: impl IntoIterator<Item = PackageInfo>) {
        for p in offered {
            if !self.native(&p.arch) {
                continue;
            }
            let known = self.by_name.get(&p.name).is_some_and(|list| {
                list.iter().any(|&j| {
                    let a = &self.available[j];
                    a.version == p.version && a.arch == p.arch
                })
            });
            if known {
                continue;
            }
            let i = self.available.len();
            index(&mut self.by_name, &p.name, i);
            for provide in &p.provides {
                if provide.name != p.name {
                    index(&mut self.by_provide, &provide.name, i);
                }
            }
            self.available.push(p);
        }
    }

    /// Every name asked for so far.
    pub fn asked(&self) -> &BTreeSet<String> {
        &self.asked
    }

    /// One resolution pass: the names to offer next, the packages to
    /// install, or why the request cannot be installed.
    pub fn run(&mut self) -> Result<Outcome, ResolveError> {
        let (need, errors, install) = {
            let mut pass = Pass::new(self);
            pass.resolve();
            let install = pass.choices();
            (pass.need, pass.errors, install)
        };
        if !need.is_empty() {
            self.asked.extend(need.iter().cloned());
            return Ok(Outcome::Need(need));
        }
        if let Some(e) = errors.into_iter().next() {
            return Err(e);
        }
        Ok(Outcome::Done(Resolution { install }))
    }

    /// The host's architecture or the family's architecture-independent one.
    fn native(&self, arch: &str) -> bool {
        arch == self.host_arch
            || arch
                == match self.family {
                    Family::Deb => "all",
                    Family::Rpm => "noarch",
                }
    }

    /// "depends on" or "requires", for reasons.
    fn verb(&self) -> &'static str {
        match self.family {
            Family::Deb => "depends on",
            Family::Rpm => "requires",
        }
    }

    /// Whether `target`'s architecture fits `rel` of a package of
    /// architecture `from` (see the module documentation).
    fn arch_ok(&self, rel: &Relation, target: &PackageInfo, from: &str) -> bool {
        use super::MultiArch;
        if self.family == Family::Rpm {
            return true;
        }
        let from = if from == "all" {
            self.host_arch.as_str()
        } else {
            from
        };
        match rel.arch.as_deref() {
            None => {
                target.arch == from
                    || target.arch == "all"
                    || target.multi_arch == MultiArch::Foreign
            }
            Some("any") => target.multi_arch == MultiArch::Allowed,
            Some("native") => target.arch == self.host_arch || target.arch == "all",
            Some(a) => target.arch == a || (target.arch == "all" && a == self.host_arch),
        }
    }

    /// Whether package `p` meets `rel` of a package of architecture `from`,
    /// by its own name and version or by a Provide.
    fn meets(&self, p: &PackageInfo, rel: &Relation, from: &str) -> bool {
        if !self.arch_ok(rel, p, from) {
            return false;
        }
        (p.name == rel.name && rel.satisfied_by(&p.version))
            || p.provides.iter().any(|pr| rel.satisfied_by_provide(pr))
    }

    /// The installed instances that installing `p` replaces: those of its
    /// name, of the host's or the neutral architecture or of its own.
    fn replaceable(&self, p: &PackageInfo) -> Vec<usize> {
        self.installed_index
            .get(&p.name)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&i| {
                let inst = &self.installed[i];
                inst.name == p.name && (self.native(&inst.arch) || inst.arch == p.arch)
            })
            .collect()
    }
}

/// `name version`.
fn label(p: &PackageInfo) -> String {
    format!("{} {}", p.name, p.version)
}

/// A package being installed.
struct Chosen {
    /// Index into the resolver's offered packages.
    avail: usize,
    reason: String,
    /// The installed instances it replaces.
    replaces: Vec<usize>,
}

/// How an installed package's problem can be fixed by upgrading it.
enum Fix {
    /// By installing this offered package.
    Upgrade(usize),
    /// Not known yet: its name is asked for.
    Pending,
    /// No offered version fixes it.
    Impossible,
}

/// The state of one resolution pass.
struct Pass<'r> {
    r: &'r Resolver,
    chosen: Vec<Chosen>,
    chosen_by_name: HashMap<&'r str, usize>,
    /// Per installed package: replaced by a chosen one.
    replaced: Vec<bool>,
    need: BTreeSet<String>,
    errors: Vec<ResolveError>,
    /// What [`Pass::feasible`] found, until the next choice.
    feasible_memo: HashMap<usize, bool>,
}

impl<'r> Pass<'r> {
    fn new(r: &'r Resolver) -> Pass<'r> {
        Pass {
            r,
            chosen: Vec::new(),
            chosen_by_name: HashMap::new(),
            replaced: vec![false; r.installed.len()],
            need: BTreeSet::new(),
            errors: Vec::new(),
            feasible_memo: HashMap::new(),
        }
    }

    fn info(&self, k: usize) -> &'r PackageInfo {
        let r: &'r Resolver = self.r;
        &r.available[self.chosen[k].avail]
    }

    fn asked(&self, name: &str) -> bool {
        self.r.asked.contains(name)
    }

    fn ask(&mut self, name: &str) {
        if !self.asked(name) {
            self.need.insert(name.to_string());
        }
    }

    /// The request, then dependencies, reverse dependencies and conflicts
    /// until nothing changes.
    fn resolve(&mut self) {
        self.request();
        if !self.need.is_empty() || !self.errors.is_empty() {
            return;
        }
        loop {
            // The errors that count are those of the last sweep, when
            // nothing changes any more.
            self.errors.clear();
            let mut progress = false;
            let mut k = 0;
            while k < self.chosen.len() {
                progress |= self.settle_depends(k);
                k += 1;
            }
            if !progress {
                progress = self.settle_reverse();
            }
            if !progress {
                progress = self.settle_conflicts();
            }
            if !progress {
                break;
            }
        }
    }

    fn request(&mut self) {
        let r = self.r;
        for (name, version) in &r.request {
            if !self.asked(name) {
                self.ask(name);
                continue;
            }
            if self.chosen_by_name.contains_key(name.as_str()) {
                continue;
            }
            let offered: Vec<usize> = self
                .r
                .by_name
                .get(name)
                .into_iter()
                .flatten()
                .copied()
                .collect();
            match offered
                .iter()
                .copied()
                .find(|&i| self.r.available[i].version == *version)
            {
                Some(i) => self.choose(i, "requested".to_string()),
                None => {
                    let why = if offered.is_empty() {
                        "no configured repository offers it".to_string()
                    } else {
                        format!("the repositories offer {}", self.versions(&offered))
                    };
                    self.errors.push(ResolveError::NotOffered {
                        package: name.clone(),
                        version: version.to_string(),
                        why,
                    });
                }
            }
        }
    }

    /// `name v1, v2, v3`: the newest few of these offered packages.
    fn versions(&self, offered: &[usize]) -> String {
        let mut list: Vec<&PackageInfo> = offered.iter().map(|&i| &self.r.available[i]).collect();
        list.sort_by(|a, b| b.version.cmp(&a.version));
        list.dedup_by(|a, b| a.version == b.version);
        let mut text = format!(
            "{} {}",
            list.first().map_or("", |p| p.name.as_str()),
            list.iter()
                .take(3)
                .map(|p| p.version.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        if list.len() > 3 {
            text.push_str(", ...");
        }
        text
    }

    fn choose(&mut self, avail: usize, reason: String) {
        self.feasible_memo.clear();
        let p = &self.r.available[avail];
        let replaces = self.r.replaceable(p);
        for &i in &replaces {
            self.replaced[i] = true;
        }
        self.chosen_by_name.insert(&p.name, self.chosen.len());
        self.chosen.push(Chosen {
            avail,
            reason,
            replaces,
        });
    }

    fn choices(&self) -> Vec<super::Choice> {
        self.chosen
            .iter()
            .map(|c| {
                let p = &self.r.available[c.avail];
                super::Choice {
                    name: p.name.clone(),
                    version: p.version.clone(),
                    arch: p.arch.clone(),
                    installed: c
                        .replaces
                        .first()
                        .map(|&i| self.r.installed[i].version.clone()),
                    reason: c.reason.clone(),
                }
            })
            .collect()
    }

    /// Whether `rel` of a package of architecture `from` is met by what is
    /// installed now.
    fn met_initial(&self, rel: &Relation, from: &str) -> bool {
        self.r
            .installed_index
            .get(&rel.name)
            .into_iter()
            .flatten()
            .any(|&i| self.r.meets(&self.r.installed[i], rel, from))
    }

    /// Whether `rel` is met once the chosen packages are installed.
    fn met_final(&self, rel: &Relation, from: &str) -> bool {
        (0..self.chosen.len()).any(|k| self.r.meets(self.info(k), rel, from))
            || self
                .r
                .installed_index
                .get(&rel.name)
                .into_iter()
                .flatten()
                .any(|&i| !self.replaced[i] && self.r.meets(&self.r.installed[i], rel, from))
    }

    fn clause_met_final(&self, clause: &[Relation], from: &str) -> bool {
        clause.iter().any(|rel| self.met_final(rel, from))
    }

    fn clause_met_initial(&self, clause: &[Relation], from: &str) -> bool {
        clause.iter().any(|rel| self.met_initial(rel, from))
    }

    /// Whether offered package `i` may be chosen: its name is not chosen
    /// yet, and it is newer than every installed instance it replaces.
    fn can_add(&self, i: usize) -> bool {
        let a = &self.r.available[i];
        !self.chosen_by_name.contains_key(a.name.as_str())
            && self
                .r
                .replaceable(a)
                .iter()
                .all(|&j| self.r.installed[j].version < a.version)
    }

    /// Whether offered package `i` replaces an installed instance (apt:
    /// the package has a current version).
    fn upgrades_installed(&self, i: usize) -> bool {
        !self.r.replaceable(&self.r.available[i]).is_empty()
    }

    /// The offered packages that could meet `clause` of a package of
    /// architecture `from`, each with the index of the alternative it
    /// meets, in the order apt tries them (`getAllPossibleSolutions`):
    /// alternative by alternative, the packages that meet it (by name or
    /// Provides; of each package its newest version that does and may be
    /// added), ranked as apt ranks providers: an installed package first,
    /// then the one the relation names, then `Essential`, then `Protected`,
    /// then the higher `Priority` (none ranks first, as in apt), then by
    /// name; and of all that, the ones that upgrade an installed package
    /// before the ones newly installed, whatever their alternative.
    fn solutions(&self, clause: &[Relation], from: &str) -> Vec<(usize, usize)> {
        let avail = &self.r.available;
        let mut upgrades: Vec<(usize, usize)> = Vec::new();
        let mut news: Vec<(usize, usize)> = Vec::new();
        for (n, rel) in clause.iter().enumerate() {
            let mut best: Vec<usize> = Vec::new();
            let ids = self.r.by_name.get(&rel.name).into_iter().flatten();
            let ids = ids.chain(self.r.by_provide.get(&rel.name).into_iter().flatten());
            for &i in ids {
                if !self.can_add(i) || !self.r.meets(&avail[i], rel, from) {
                    continue;
                }
                match best.iter_mut().find(|j| avail[**j].name == avail[i].name) {
                    Some(j) if avail[*j].version < avail[i].version => *j = i,
                    Some(_) => {}
                    None => best.push(i),
                }
            }
            let rank = |i: usize| {
                let p = &avail[i];
                (
                    !self.upgrades_installed(i),
                    p.name != rel.name,
                    !p.essential,
                    !p.protected,
                    p.priority.map_or(0, |x| x as u8 + 1),
                )
            };
            best.sort_by(|&a, &b| {
                rank(a)
                    .cmp(&rank(b))
                    .then_with(|| avail[a].name.cmp(&avail[b].name))
            });
            for i in best {
                if upgrades.iter().chain(&news).any(|&(j, _)| j == i) {
                    continue;
                }
                if self.upgrades_installed(i) {
                    upgrades.push((i, n));
                } else {
                    news.push((i, n));
                }
            }
        }
        upgrades.extend(news);
        upgrades
    }

    /// Whether offered package `i` can be installed with the chosen ones,
    /// as apt finds out before it settles on an alternative (its
    /// `MarkInstall` of a dependency fails, and the next is tried): no
    /// Breaks/Conflicts lies between it and a chosen package, and each of
    /// its dependencies that nothing installed or chosen meets has a
    /// solution that can be installed in turn. `None` while names it needs
    /// are asked for. A package met again on the way is assumed to be
    /// installable.
    fn feasible(&mut self, i: usize, stack: &mut Vec<usize>) -> Option<bool> {
        if let Some(&known) = self.feasible_memo.get(&i) {
            return Some(known);
        }
        if stack.contains(&i) {
            return Some(true);
        }
        let r: &'r Resolver = self.r;
        let a = &r.available[i];
        let hits = |from: &PackageInfo, to: &PackageInfo| {
            from.name != to.name
                && from
                    .breaks
                    .iter()
                    .chain(&from.conflicts)
                    .any(|rel| r.meets(to, rel, &from.arch))
        };
        if (0..self.chosen.len()).any(|k| hits(a, self.info(k)) || hits(self.info(k), a)) {
            self.feasible_memo.insert(i, false);
            return Some(false);
        }
        stack.push(i);
        let mut pending = false;
        let mut failed = false;
        'clauses: for clause in &a.depends {
            if self.clause_met_final(clause, &a.arch) {
                continue;
            }
            let mut unasked = false;
            for rel in clause {
                if !self.asked(&rel.name) {
                    self.ask(&rel.name);
                    unasked = true;
                }
            }
            if unasked {
                pending = true;
                continue;
            }
            let mut waiting = false;
            for (j, _) in self.solutions(clause, &a.arch) {
                match self.feasible(j, stack) {
                    Some(true) => continue 'clauses,
                    Some(false) => {}
                    None => waiting = true,
                }
            }
            if waiting {
                pending = true;
            } else {
                failed = true;
                break;
            }
        }
        stack.pop();
        let answer = if failed {
            Some(false)
        } else if pending {
            None
        } else {
            Some(true)
        };
        if let Some(known) = answer {
            self.feasible_memo.insert(i, known);
        }
        answer
    }

    /// Meets the dependencies of chosen package `k`; true if it chose
    /// something. An unmet clause is decided once every alternative's name
    /// has been asked: the first of its [`Pass::solutions`] that is
    /// [`Pass::feasible`], else the first of them (whose own unmet
    /// dependency is then the error), else an error naming the clause.
    fn settle_depends(&mut self, k: usize) -> bool {
        let p = self.info(k);
        let mut progress = false;
        'clauses: for clause in &p.depends {
            if self.clause_met_final(clause, &p.arch) {
                continue;
            }
            let mut unasked = false;
            for rel in clause {
                if !self.asked(&rel.name) {
                    self.ask(&rel.name);
                    unasked = true;
                }
            }
            if unasked {
                continue;
            }
            let solutions = self.solutions(clause, &p.arch);
            let Some(&first) = solutions.first() else {
                let why = self.why_unmet(clause, &p.arch);
                self.errors.push(ResolveError::Unmet {
                    package: label(p),
                    relation: clause_text(clause),
                    why,
                });
                continue;
            };
            let mut pick = first;
            for &(i, n) in &solutions {
                match self.feasible(i, &mut Vec::new()) {
                    Some(true) => {
                        pick = (i, n);
                        break;
                    }
                    Some(false) => {}
                    // Tried in order: a later one waits for this one.
                    None => continue 'clauses,
                }
            }
            let (i, n) = pick;
            let reason = self.reason(p, &clause[n], i);
            self.choose(i, reason);
            progress = true;
        }
        progress
    }

    /// Why offered package `i` is installed for `rel` of `p`.
    fn reason(&self, p: &PackageInfo, rel: &Relation, i: usize) -> String {
        let a = &self.r.available[i];
        let old = self
            .r
            .replaceable(a)
            .first()
            .map(|&j| self.r.installed[j].version.to_string());
        let verb = self.r.verb();
        match (a.name == rel.name, old) {
            (true, Some(old)) => format!("{rel} needed by {}; installed {old}", p.name),
            (true, None) => format!("{} {verb} {rel}", p.name),
            (false, Some(old)) => format!(
                "{} {verb} {rel}, provided by {}; installed {old}",
                p.name, a.name
            ),
            (false, None) => format!("{} {verb} {rel}, provided by {}", p.name, a.name),
        }
    }

    /// Why no alternative of `clause` can be met.
    fn why_unmet(&self, clause: &[Relation], from: &str) -> String {
        let avail = &self.r.available;
        let mut parts = Vec::new();
        for rel in clause {
            if let Some(&k) = self.chosen_by_name.get(rel.name.as_str()) {
                parts.push(format!("{} is to be installed", label(self.info(k))));
                continue;
            }
            let offered: Vec<usize> = self
                .r
                .by_name
                .get(&rel.name)
                .into_iter()
                .flatten()
                .copied()
                .filter(|&i| self.r.arch_ok(rel, &avail[i], from))
                .collect();
            if !offered.is_empty() {
                let fits = offered.iter().any(|&i| rel.satisfied_by(&avail[i].version));
                let installed = self
                    .r
                    .installed_index
                    .get(&rel.name)
                    .into_iter()
                    .flatten()
                    .map(|&j| &self.r.installed[j])
                    .find(|p| p.name == rel.name);
                match installed {
                    Some(inst) if fits => parts.push(format!(
                        "installed {} is newer than what fits, and upkeep does not downgrade a dependency",
                        label(inst)
                    )),
                    _ => parts.push(format!("the repositories offer {}", self.versions(&offered))),
                }
                continue;
            }
            let mut providers: Vec<&str> = self
                .r
                .by_provide
                .get(&rel.name)
                .into_iter()
                .flatten()
                .map(|&i| avail[i].name.as_str())
                .collect();
            providers.sort_unstable();
            providers.dedup();
            if !providers.is_empty() {
                parts.push(format!(
                    "{} provide {} but none fits",
                    providers.join(", "),
                    rel.name
                ));
            }
        }
        match (parts.is_empty(), clause.len()) {
            (true, 1) => "which no configured repository offers".to_string(),
            (true, _) => "none of which any configured repository offers".to_string(),
            (false, _) => format!("but {}", parts.join("; ")),
        }
    }

    /// Whether `name` is the name, or a provided name, of a package being
    /// installed or of an installed package it replaces.
    fn touches(&self, name: &str) -> bool {
        let carries =
            |p: &PackageInfo| p.name == name || p.provides.iter().any(|pr| pr.name == name);
        self.chosen.iter().any(|c| {
            carries(&self.r.available[c.avail])
                || c.replaces.iter().any(|&j| carries(&self.r.installed[j]))
        })
    }

    /// Whether offered package `a`, installed with the chosen ones, keeps
    /// what they change consistent: its dependencies on them are met, and
    /// no Breaks/Conflicts lies between it and them.
    fn works(&self, a: &PackageInfo) -> bool {
        let deps_met = a.depends.iter().all(|clause| {
            !clause.iter().any(|rel| self.touches(&rel.name))
                || self.clause_met_final(clause, &a.arch)
        });
        let hits = |from: &PackageInfo, to: &PackageInfo| {
            from.name != to.name
                && from
                    .breaks
                    .iter()
                    .chain(&from.conflicts)
                    .any(|rel| self.r.meets(to, rel, &from.arch))
        };
        deps_met
            && (0..self.chosen.len()).all(|k| {
                let c = self.info(k);
                !hits(a, c) && !hits(c, a)
            })
    }

    /// Upgrades installed package `i`, if an offered version newer than it
    /// passes `fits` and [`Pass::works`].
    fn upgrade_installed(&mut self, i: usize, fits: impl Fn(&PackageInfo) -> bool) -> Fix {
        let inst = &self.r.installed[i];
        if self.chosen_by_name.contains_key(inst.name.as_str()) {
            return Fix::Impossible;
        }
        if !self.asked(&inst.name) {
            self.ask(&inst.name);
            return Fix::Pending;
        }
        let avail = &self.r.available;
        let mut offered: Vec<usize> = self
            .r
            .by_name
            .get(&inst.name)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&j| {
                self.can_add(j)
                    && self.r.replaceable(&avail[j]).contains(&i)
                    && fits(&avail[j])
                    && self.works(&avail[j])
            })
            .collect();
        offered.sort_by(|&a, &b| avail[b].version.cmp(&avail[a].version));
        offered
            .first()
            .map_or(Fix::Impossible, |&j| Fix::Upgrade(j))
    }

    /// Installed packages that stay and lost a dependency they had met:
    /// upgrades the first that an offered version fixes; true if it did.
    fn settle_reverse(&mut self) -> bool {
        let mut suspects = BTreeSet::new();
        for c in &self.chosen {
            for &j in &c.replaces {
                let old = &self.r.installed[j];
                for name in std::iter::once(&old.name).chain(old.provides.iter().map(|p| &p.name)) {
                    for &i in self.r.installed_rdeps.get(name).into_iter().flatten() {
                        if !self.replaced[i] {
                            suspects.insert(i);
                        }
                    }
                }
            }
        }
        for i in suspects {
            let inst = &self.r.installed[i];
            let Some(clause) = inst.depends.iter().find(|clause| {
                self.clause_met_initial(clause, &inst.arch)
                    && !self.clause_met_final(clause, &inst.arch)
            }) else {
                continue;
            };
            let culprit = self.culprit(clause, &inst.arch);
            match self.upgrade_installed(i, |_| true) {
                Fix::Upgrade(j) => {
                    let reason = format!(
                        "installed {} {} {}, which {culprit} does not meet",
                        label(inst),
                        self.r.verb(),
                        clause_text(clause)
                    );
                    self.choose(j, reason);
                    return true;
                }
                Fix::Pending => {}
                Fix::Impossible => self.errors.push(ResolveError::Unmet {
                    package: format!("{} (installed)", label(inst)),
                    relation: clause_text(clause),
                    why: format!(
                        "which {culprit} does not meet, and no configured repository offers a version of {} that works with it",
                        inst.name
                    ),
                }),
            }
        }
        false
    }

    /// The chosen package whose replaced installed version met `clause`.
    fn culprit(&self, clause: &[Relation], from: &str) -> String {
        self.chosen
            .iter()
            .find(|c| {
                c.replaces.iter().any(|&j| {
                    clause
                        .iter()
                        .any(|rel| self.r.meets(&self.r.installed[j], rel, from))
                })
            })
            .map_or_else(
                || "the upgrade".to_string(),
                |c| label(&self.r.available[c.avail]),
            )
    }

    /// Breaks/Conflicts between the chosen packages and the rest: upgrades
    /// the first installed package that an offered version fixes; true if
    /// it did.
    fn settle_conflicts(&mut self) -> bool {
        // What the chosen packages break or conflict with.
        for k in 0..self.chosen.len() {
            let c = self.info(k);
            for (kind, base, rel) in relations_against(c) {
                for k2 in 0..self.chosen.len() {
                    let t = self.info(k2);
                    if t.name != c.name && self.r.meets(t, rel, &c.arch) {
                        self.errors.push(ResolveError::Conflict {
                            package: label(c),
                            kind,
                            relation: rel.to_string(),
                            other: label(t),
                            why: "and both are to be installed".to_string(),
                        });
                    }
                }
                let targets: Vec<usize> = self
                    .r
                    .installed_index
                    .get(&rel.name)
                    .into_iter()
                    .flatten()
                    .copied()
                    .filter(|&i| {
                        let t = &self.r.installed[i];
                        !self.replaced[i] && t.name != c.name && self.r.meets(t, rel, &c.arch)
                    })
                    .collect();
                for i in targets {
                    let r = self.r;
                    let t = &r.installed[i];
                    match self.upgrade_installed(i, |a| !r.meets(a, rel, &c.arch)) {
                        Fix::Upgrade(j) => {
                            let reason =
                                format!("{} {kind} {rel}; installed {}", c.name, t.version);
                            self.choose(j, reason);
                            return true;
                        }
                        Fix::Pending => {}
                        Fix::Impossible => self.errors.push(ResolveError::Conflict {
                            package: label(c),
                            kind,
                            relation: rel.to_string(),
                            other: format!("{} (installed)", label(t)),
                            why: format!(
                                "and no configured repository offers a version of {} that it does not {base}",
                                t.name
                            ),
                        }),
                    }
                }
            }
        }
        // What installed packages that stay break or conflict with among
        // the chosen ones.
        let mut suspects = BTreeSet::new();
        for k in 0..self.chosen.len() {
            let c = self.info(k);
            for name in std::iter::once(&c.name).chain(c.provides.iter().map(|p| &p.name)) {
                for &i in self.r.installed_conflicts.get(name).into_iter().flatten() {
                    if !self.replaced[i] {
                        suspects.insert(i);
                    }
                }
            }
        }
        for i in suspects {
            let t = &self.r.installed[i];
            for (kind, _, rel) in relations_against(t) {
                for k in 0..self.chosen.len() {
                    let c = self.info(k);
                    if c.name == t.name || !self.r.meets(c, rel, &t.arch) {
                        continue;
                    }
                    let r = self.r;
                    let spares = |a: &PackageInfo| {
                        !a.breaks
                            .iter()
                            .chain(&a.conflicts)
                            .any(|rel| r.meets(c, rel, &a.arch))
                    };
                    match self.upgrade_installed(i, spares) {
                        Fix::Upgrade(j) => {
                            let reason = format!(
                                "installed {} {kind} {rel}, which {} matches",
                                label(t),
                                label(c)
                            );
                            self.choose(j, reason);
                            return true;
                        }
                        Fix::Pending => {}
                        Fix::Impossible => self.errors.push(ResolveError::Conflict {
                            package: format!("{} (installed)", label(t)),
                            kind,
                            relation: rel.to_string(),
                            other: label(c),
                            why: format!(
                                "and no configured repository offers a version of {} that does not",
                                t.name
                            ),
                        }),
                    }
                }
            }
        }
        false
    }
}

/// A package's Breaks and Conflicts, each with its verb and the verb's
/// base form.
fn relations_against(
    p: &PackageInfo,
) -> impl Iterator<Item = (&'static str, &'static str, &Relation)> {
    p.breaks.iter().map(|r| ("breaks", "break", r)).chain(
        p.conflicts
            .iter()
            .map(|r| ("conflicts with", "conflict with", r)),
    )
}
