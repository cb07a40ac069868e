//! Differential test: upkeep's package version ordering against the real
//! package managers.
//!
//! - Debian: every pair goes through APT's `apt_pkg.version_compare` in one
//!   `/usr/bin/python3` process; a sample (and every hand-written pair, and
//!   every pair where APT disagrees with us) also goes through
//!   `dpkg --compare-versions`, which is the arbiter: a pair fails only when
//!   we disagree with dpkg. Validity is checked against
//!   `dpkg --validate-version` on a sample of valid and invalid strings.
//! - RPM: every pair goes through rpm's own `rpm.ver()` (parsing) and
//!   `rpm.labelCompare()` (ordering) in one `/usr/bin/python3` process.
//!
//! Pairs are generated from a fixed seed, so failures reproduce; the
//! hand-written pairs live in `tests/fixtures/versions/`. Knobs (optional):
//! `UPKEEP_VERSION_DIFF_SEED`, `UPKEEP_VERSION_DIFF_PAIRS` (generated pairs
//! per family), `UPKEEP_VERSION_DIFF_DPKG_PAIRS` (generated pairs also run
//! through dpkg itself).
//!
//! The tools are required: when they are missing the test installs them
//! (`apt-get install python3-apt python3-rpm dpkg`, as root) or FAILS. It
//! never skips.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use upkeep::version::{Family, PkgVersion};

/// The system Python, which has the distribution's `apt_pkg` and `rpm`
/// modules (a pyenv `python3` earlier on `PATH` would not).
const PYTHON: &str = "/usr/bin/python3";

const DEFAULT_SEED: u64 = 0x5eed_2024_0dec_afe5;
const DEFAULT_PAIRS: usize = 6_000;
const DEFAULT_DPKG_PAIRS: usize = 800;
const VALIDITY_SAMPLE: usize = 300;
const SHOW: usize = 20;

const DEB_PAIRS: &str = include_str!("../fixtures/versions/deb-pairs.txt");
const RPM_PAIRS: &str = include_str!("../fixtures/versions/rpm-pairs.txt");
const DEB_VALIDITY: &str = include_str!("../fixtures/versions/deb-validity.txt");

/// The oracle: one process, one request per stdin line, one answer per
/// stdout line.
const ORACLE: &str = r#"
import sys
mode = sys.argv[1]
out = sys.stdout
if mode == "check":
    import apt_pkg, rpm
    apt_pkg.init_system()
    rpm.labelCompare(("0", "1", "1"), ("0", "1", None))
    rpm.ver("1:1.0-1")
    print("ok")
elif mode == "deb":
    import apt_pkg
    apt_pkg.init_system()
    for line in sys.stdin:
        a, b = line.rstrip("\n").split("\t")
        c = apt_pkg.version_compare(a, b)
        out.write("%d\n" % ((c > 0) - (c < 0)))
elif mode == "rpm":
    import rpm
    def show(x):
        return "<none>" if x is None else x
    for line in sys.stdin:
        a, b = line.rstrip("\n").split("\t")
        va, vb = rpm.ver(a), rpm.ver(b)
        pa, pb = (va.e, va.v, va.r), (vb.e, vb.v, vb.r)
        c = rpm.labelCompare(pa, pb)
        out.write("%d\t%s\n" % ((c > 0) - (c < 0), "\t".join(show(x) for x in pa + pb)))
else:
    sys.exit("unknown mode " + mode)
"#;

// ---------------------------------------------------------------- tools --

fn tools_ok() -> Result<(), String> {
    let dpkg = Command::new("dpkg")
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run dpkg: {e}"))?;
    if !dpkg.status.success() {
        return Err(format!("dpkg --version failed: {}", dpkg.status));
    }
    let py = Command::new(PYTHON)
        .args(["-c", ORACLE, "check"])
        .output()
        .map_err(|e| format!("cannot run {PYTHON}: {e}"))?;
    if !py.status.success() {
        return Err(format!(
            "{PYTHON} lacks the apt_pkg or rpm module: {}",
            String::from_utf8_lossy(&py.stderr).trim()
        ));
    }
    Ok(())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn apt_get(args: &[&str]) -> bool {
    Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Makes sure dpkg and the Python modules are there, installing them when
/// possible; panics (the test FAILS) otherwise.
fn ensure_tools() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    static INSTALL: Mutex<()> = Mutex::new(());
    let ready = READY.get_or_init(|| {
        let _one_at_a_time = INSTALL.lock();
        let Err(first) = tools_ok() else {
            return Ok(());
        };
        if !is_root() {
            return Err(format!(
                "{first}; not root, so not installing (run: apt-get install -y python3-apt python3-rpm)"
            ));
        }
        let packages = ["install", "-y", "--no-install-recommends", "python3-apt", "python3-rpm", "dpkg"];
        if !apt_get(&packages) {
            let _ = apt_get(&["update"]);
            let _ = apt_get(&packages);
        }
        tools_ok().map_err(|e| format!("{first}; after apt-get install: {e}"))
    });
    if let Err(e) = ready {
        panic!("the real package tools are required for this test and are missing: {e}");
    }
}

/// Runs the oracle in `mode` over `lines`, one answer line per input line.
fn oracle(mode: &str, lines: &[String]) -> Vec<String> {
    let mut child = Command::new(PYTHON)
        .args(["-c", ORACLE, mode])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {PYTHON}: {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let stdout = child.stdout.take().expect("piped stdout");
    let answers: Vec<String> = BufReader::new(stdout)
        .lines()
        .collect::<Result<_, _>>()
        .expect("reading the oracle's answers");
    let written = writer.join().expect("writer thread");
    let output = child.wait_with_output().expect("waiting for the oracle");
    assert!(
        output.status.success() && written.is_ok() && answers.len() == lines.len(),
        "the {mode} oracle failed ({}, {} answers for {} questions): {}",
        output.status,
        answers.len(),
        lines.len(),
        String::from_utf8_lossy(&output.stderr)
    );
    answers
}

/// `dpkg --compare-versions` (exit 0 true, 1 false, anything else an error).
fn dpkg_holds(a: &str, op: &str, b: &str) -> bool {
    let out = Command::new("dpkg")
        .args(["--compare-versions", "--", a, op, b])
        .output()
        .unwrap_or_else(|e| panic!("cannot run dpkg: {e}"));
    match out.status.code() {
        Some(0) => true,
        Some(1) => false,
        _ => panic!(
            "dpkg --compare-versions -- {a:?} {op} {b:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn dpkg_compare(a: &str, b: &str) -> Ordering {
    if dpkg_holds(a, "lt", b) {
        Ordering::Less
    } else if dpkg_holds(a, "gt", b) {
        Ordering::Greater
    } else {
        assert!(
            dpkg_holds(a, "eq", b),
            "dpkg: {a:?} neither lt, gt nor eq {b:?}"
        );
        Ordering::Equal
    }
}

/// `dpkg --validate-version`: valid only when it exits 0 (versions dpkg
/// merely warns about, such as `a1`, are invalid too).
fn dpkg_valid(v: &str) -> bool {
    let out = Command::new("dpkg")
        .args(["--validate-version", "--", v])
        .output()
        .unwrap_or_else(|e| panic!("cannot run dpkg: {e}"));
    match out.status.code() {
        Some(0) => true,
        Some(1 | 2) if String::from_utf8_lossy(&out.stderr).contains("version") => false,
        _ => panic!(
            "dpkg --validate-version -- {v:?} failed oddly: {} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// `f` over `items` on a few threads, results in order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| s.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker thread"))
            .collect()
    })
}

// ------------------------------------------------------------ generator --

/// splitmix64: tiny, deterministic, good enough to spread test cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn pick_char(&mut self, chars: &str) -> char {
        let bytes = chars.as_bytes();
        char::from(bytes[self.below(bytes.len())])
    }
}

/// What a family's strings are made of.
struct Alphabet {
    family: Family,
    /// Separators inside the version / upstream part.
    seps: &'static str,
    /// Separators inside the revision / release.
    rel_seps: &'static str,
    /// Characters the tool rejects, sprinkled in rarely.
    bad: &'static str,
    /// Suffixes worth appending (pre-releases, snapshots, rebuilds).
    suffixes: &'static [&'static str],
    /// Typical revisions / releases.
    releases: &'static [&'static str],
    epochs: &'static [&'static str],
    /// Epochs one tool reads differently from another (dpkg takes a sign,
    /// APT does not) or rejects: rare, or they drown the rest.
    odd_epochs: &'static [&'static str],
}

const DEB: Alphabet = Alphabet {
    family: Family::Deb,
    seps: "....++~~-:",
    rel_seps: "..+~",
    bad: "_^/,@",
    suffixes: &[
        "~",
        "~~",
        "~rc1",
        "~beta2",
        "~~a",
        "+b1",
        "+dfsg",
        "+really1.0",
        ".",
        ".0",
        "0",
        "a",
        "a0",
        "A",
        ".1",
        "~1",
        "+",
        "+~",
        "-1",
        "-0",
        "-0~",
        "-1.1",
        "-~",
    ],
    releases: &[
        "1",
        "0",
        "2",
        "10",
        "1.1",
        "1ubuntu1",
        "1+deb12u1",
        "1~bpo12+1",
        "0.1",
        "1+b1",
        "a",
        "~1",
        "00",
        "1~",
        "1.0.0",
    ],
    epochs: &[
        "0",
        "1",
        "1",
        "2",
        "10",
        "00",
        "01",
        "2147483647",
        "2147483648",
        "99999999999999999999",
        "x",
        "",
    ],
    odd_epochs: &["+1", "+0", "-0", "-1", "+", "1+"],
};

const RPM: Alphabet = Alphabet {
    family: Family::Rpm,
    seps: "....._+~~^^",
    rel_seps: "..._+~^",
    bad: "-:/,@%",
    suffixes: &[
        "~",
        "~~",
        "~rc1",
        "~beta2",
        "^",
        "^^",
        "^git1",
        "^20240101git1a2b3c",
        "~rc1^git1",
        "^~",
        ".",
        ".0",
        "0",
        "a",
        "a0",
        "A",
        ".1",
        "~1",
        "^1",
        "+",
        "_1",
        "-1",
        "-0",
        "-1.el9",
        "-1.el9_2",
        "-1.fc38",
        "-~1",
        "-^",
    ],
    releases: &[
        "1", "0", "2", "10", "1.1", "1.el9", "1.el9_2", "2.el9", "1.el10", "1.fc38", "0.1.rc1",
        "0.1~rc1", "1^git1", "~1", "00", "a", "1~", "1.0.0",
    ],
    epochs: &[
        "0",
        "1",
        "1",
        "2",
        "10",
        "00",
        "01",
        "007",
        "4294967295",
        "4294967296",
        "x",
        "",
    ],
    odd_epochs: &["+1", "-0", "1+", "0x1"],
};

fn number(rng: &mut Rng) -> String {
    match rng.below(20) {
        0 => {
            // Longer than any u64.
            let len = 20 + rng.below(20);
            (0..len).map(|_| rng.pick_char("0123456789")).collect()
        }
        1 => format!("{}{}", "0".repeat(1 + rng.below(3)), rng.below(12)),
        2..=4 => "0".to_string(),
        5 => rng.below(100_000).to_string(),
        _ => rng.below(12).to_string(),
    }
}

fn word(rng: &mut Rng) -> String {
    if rng.chance(50) {
        rng.pick(&[
            "a", "b", "z", "A", "Z", "rc", "beta", "alpha", "git", "dfsg", "el", "fc",
        ])
        .to_string()
    } else {
        let len = 1 + rng.below(3);
        (0..len).map(|_| rng.pick_char("abzAZ")).collect()
    }
}

/// A run of numbers, words and separators.
fn soup(rng: &mut Rng, seps: &str, alphabet: &Alphabet) -> String {
    let mut s = if rng.chance(93) {
        number(rng)
    } else if rng.chance(60) {
        word(rng)
    } else {
        rng.pick_char("~^.+").to_string()
    };
    for _ in 0..rng.below(6) {
        match rng.below(20) {
            0..=7 => {
                s.push(rng.pick_char(seps));
                s += &number(rng);
            }
            8..=10 => s += &word(rng),
            11..=12 => {
                s.push(rng.pick_char(seps));
                s += &word(rng);
            }
            13 => s.push(rng.pick_char(seps)),
            14..=15 => s += &number(rng),
            16..=17 => s += rng.pick(alphabet.suffixes),
            18 if rng.chance(30) => s.push(rng.pick_char(alphabet.bad)),
            _ => {
                s.push('~');
                s += &word(rng);
            }
        }
    }
    s
}

fn epoch(rng: &mut Rng, a: &Alphabet) -> &'static str {
    if rng.chance(3) {
        rng.pick(a.odd_epochs)
    } else {
        rng.pick(a.epochs)
    }
}

fn version(rng: &mut Rng, a: &Alphabet) -> String {
    let mut s = String::new();
    if rng.chance(35) {
        s += epoch(rng, a);
        s.push(':');
    }
    s += &soup(rng, a.seps, a);
    if rng.chance(55) {
        s.push('-');
        if rng.chance(50) {
            s += rng.pick(a.releases);
        } else {
            s += &soup(rng, a.rel_seps, a);
        }
    }
    s
}

/// A version close to `v`, so that comparisons get past the first
/// segment.
fn mutate(rng: &mut Rng, v: &str, a: &Alphabet) -> String {
    let bytes = v.as_bytes();
    let at = |rng: &mut Rng| rng.below(bytes.len() + 1);
    let chars = "0123456789abzAZ.+~^-:_";
    match rng.below(16) {
        0 | 1 => v.to_string(),
        2 | 3 => format!("{v}{}", rng.pick(a.suffixes)),
        4 => {
            // Change one digit run.
            let digits: Vec<usize> = (0..bytes.len())
                .filter(|&i| bytes[i].is_ascii_digit())
                .collect();
            if digits.is_empty() {
                return format!("{v}1");
            }
            let i = digits[rng.below(digits.len())];
            let new = rng.pick_char("0123456789");
            format!("{}{new}{}", &v[..i], &v[i + 1..])
        }
        5 => {
            // Leading zeros before a digit.
            let i = at(rng);
            format!("{}0{}", &v[..i], &v[i..])
        }
        6 if !v.is_empty() => {
            let i = rng.below(bytes.len());
            format!("{}{}", &v[..i], &v[i + 1..])
        }
        7 if !v.is_empty() => {
            let i = rng.below(bytes.len());
            format!("{}{}{}", &v[..i], rng.pick_char(chars), &v[i + 1..])
        }
        8 => {
            let i = at(rng);
            format!("{}{}{}", &v[..i], rng.pick_char(chars), &v[i..])
        }
        9 => match v.split_once(':') {
            Some((_, rest)) if rng.chance(50) => rest.to_string(),
            Some((_, rest)) => format!("{}:{rest}", epoch(rng, a)),
            None => format!("{}:{v}", epoch(rng, a)),
        },
        10 => match v.rsplit_once('-') {
            Some((base, _)) if rng.chance(40) => base.to_string(),
            Some((base, _)) => format!("{base}-{}", rng.pick(a.releases)),
            None => format!("{v}-{}", rng.pick(a.releases)),
        },
        11 => match v.rsplit_once('-') {
            Some((base, rel)) => format!(
                "{base}-{rel}{}",
                rng.pick(&["~", "^", ".1", "a", "0", "+b1"])
            ),
            None => format!("{v}{}", rng.pick(&["~", "^", ".1", "a", "0"])),
        },
        _ => version(rng, a),
    }
}

fn parse(family: Family, text: &str) -> Option<PkgVersion> {
    PkgVersion::parse(family, text).ok()
}

/// Generated pairs, all valid for our parser, plus every distinct raw
/// string tried (valid or not), in generation order.
fn generate(seed: u64, pairs: usize, a: &Alphabet) -> (Vec<(String, String)>, Vec<String>) {
    let mut rng = Rng(seed ^ a.family as u64);
    let mut out = Vec::with_capacity(pairs);
    let mut seen = BTreeSet::new();
    let mut tried = Vec::new();
    let mut attempts = 0usize;
    while out.len() < pairs {
        attempts += 1;
        assert!(
            attempts < pairs * 50,
            "the generator makes too few valid versions"
        );
        let x = version(&mut rng, a);
        let y = if rng.chance(85) {
            mutate(&mut rng, &x, a)
        } else {
            version(&mut rng, a)
        };
        for s in [&x, &y] {
            if seen.insert(s.clone()) {
                tried.push(s.clone());
            }
        }
        if parse(a.family, &x).is_some() && parse(a.family, &y).is_some() {
            out.push((x, y));
        }
    }
    (out, tried)
}

fn fixture_pairs(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut words = l.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some(a), Some(b), None) => (a.to_string(), b.to_string()),
                _ => panic!("bad fixture line {l:?}"),
            }
        })
        .collect()
}

fn fixture_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .trim_start_matches("0x")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

fn seed() -> u64 {
    match std::env::var("UPKEEP_VERSION_DIFF_SEED") {
        Ok(v) => u64::from_str_radix(v.trim().trim_start_matches("0x"), 16)
            .unwrap_or_else(|_| panic!("UPKEEP_VERSION_DIFF_SEED={v:?} is not hex")),
        Err(_) => DEFAULT_SEED,
    }
}

fn sign(o: Ordering) -> &'static str {
    match o {
        Ordering::Less => "<",
        Ordering::Equal => "=",
        Ordering::Greater => ">",
    }
}

fn from_sign(s: &str) -> Ordering {
    match s {
        "-1" => Ordering::Less,
        "0" => Ordering::Equal,
        "1" => Ordering::Greater,
        _ => panic!("the oracle answered {s:?}"),
    }
}

/// Ours, checked for antisymmetry on the way.
fn ours(family: Family, a: &str, b: &str, failures: &mut Vec<String>) -> Ordering {
    let (Some(x), Some(y)) = (parse(family, a), parse(family, b)) else {
        failures.push(format!("{a:?} vs {b:?}: upkeep rejects one of them"));
        return Ordering::Equal;
    };
    let o = x.cmp(&y);
    if y.cmp(&x) != o.reverse() {
        failures.push(format!(
            "{a:?} vs {b:?}: upkeep's order is not antisymmetric"
        ));
    }
    o
}

fn finish(family: Family, seed: u64, compared: usize, failures: &[String]) {
    if failures.is_empty() {
        return;
    }
    let shown: Vec<&str> = failures.iter().take(SHOW).map(String::as_str).collect();
    panic!(
        "{family}: {} of {compared} comparisons disagree with the real tool (seed {seed:#x}); first {}:\n  {}",
        failures.len(),
        shown.len(),
        shown.join("\n  ")
    );
}

// ---------------------------------------------------------------- tests --

#[test]
fn deb_ordering_matches_dpkg_and_apt() {
    ensure_tools();
    let started = Instant::now();
    let seed = seed();
    let (generated, tried) = generate(
        seed,
        env_or("UPKEEP_VERSION_DIFF_PAIRS", DEFAULT_PAIRS),
        &DEB,
    );
    let tricky = fixture_pairs(DEB_PAIRS);
    let mut failures = Vec::new();

    // 1. Validity: dpkg --validate-version against our parser, on the
    //    hand-written strings and a sample of generated ones, valid or not.
    let mut sample = fixture_lines(DEB_VALIDITY);
    let (valid, invalid): (Vec<&String>, Vec<&String>) =
        tried.iter().partition(|s| parse(Family::Deb, s).is_some());
    sample.extend(
        valid
            .iter()
            .take(VALIDITY_SAMPLE / 2)
            .map(|s| s.to_string()),
    );
    sample.extend(
        invalid
            .iter()
            .take(VALIDITY_SAMPLE / 2)
            .map(|s| s.to_string()),
    );
    let verdicts = par_map(&sample, |s| dpkg_valid(s));
    for (s, dpkg_ok) in sample.iter().zip(verdicts) {
        let ours_ok = parse(Family::Deb, s).is_some();
        if ours_ok != dpkg_ok {
            failures.push(format!(
                "{s:?}: dpkg --validate-version says {}, upkeep says {}",
                if dpkg_ok { "valid" } else { "invalid" },
                if ours_ok { "valid" } else { "invalid" }
            ));
        }
    }
    let validated = sample.len();
    let rejected = sample
        .iter()
        .filter(|s| parse(Family::Deb, s).is_none())
        .count();

    // 2. Every pair through apt_pkg, in one process.
    let all: Vec<(String, String)> = tricky.iter().chain(&generated).cloned().collect();
    let questions: Vec<String> = all.iter().map(|(a, b)| format!("{a}\t{b}")).collect();
    let apt: Vec<Ordering> = oracle("deb", &questions)
        .iter()
        .map(|s| from_sign(s))
        .collect();

    // 3. dpkg itself: every hand-written pair, a sample of generated ones,
    //    and every pair where apt_pkg and we disagree (dpkg decides).
    let dpkg_sample = env_or("UPKEEP_VERSION_DIFF_DPKG_PAIRS", DEFAULT_DPKG_PAIRS);
    let mine: Vec<Ordering> = all
        .iter()
        .map(|(a, b)| ours(Family::Deb, a, b, &mut failures))
        .collect();
    let to_dpkg: Vec<usize> = (0..all.len())
        .filter(|&i| i < tricky.len() + dpkg_sample || mine[i] != apt[i])
        .collect();
    let dpkg: Vec<Ordering> = par_map(&to_dpkg, |&i| dpkg_compare(&all[i].0, &all[i].1));
    let mut apt_vs_dpkg = Vec::new();
    for (&i, &d) in to_dpkg.iter().zip(&dpkg) {
        let (a, b) = &all[i];
        if mine[i] != d {
            failures.push(format!(
                "{a:?} vs {b:?}: dpkg {} apt_pkg {} upkeep {}",
                sign(d),
                sign(apt[i]),
                sign(mine[i])
            ));
        }
        if apt[i] != d {
            apt_vs_dpkg.push(format!(
                "{a:?} vs {b:?}: dpkg {} apt_pkg {}",
                sign(d),
                sign(apt[i])
            ));
        }
    }
    let by_dpkg = to_dpkg.len();

    eprintln!(
        "deb: {} pairs ({} hand-written, {} generated, seed {seed:#x}) compared with apt_pkg, \
         {by_dpkg} of them with dpkg --compare-versions; {validated} strings ({rejected} \
         invalid) with dpkg --validate-version; in {:.1?}",
        all.len(),
        tricky.len(),
        generated.len(),
        started.elapsed()
    );
    if !apt_vs_dpkg.is_empty() {
        eprintln!(
            "deb: note: apt_pkg disagrees with dpkg on {} pairs (dpkg is the reference):\n  {}",
            apt_vs_dpkg.len(),
            apt_vs_dpkg
                .iter()
                .take(SHOW)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n  ")
        );
    }
    finish(Family::Deb, seed, all.len() + validated, &failures);
}

#[test]
fn rpm_ordering_matches_rpm_label_compare() {
    ensure_tools();
    let started = Instant::now();
    let seed = seed();
    let (generated, _) = generate(
        seed,
        env_or("UPKEEP_VERSION_DIFF_PAIRS", DEFAULT_PAIRS),
        &RPM,
    );
    let tricky = fixture_pairs(RPM_PAIRS);
    let all: Vec<(String, String)> = tricky.iter().chain(&generated).cloned().collect();
    let questions: Vec<String> = all.iter().map(|(a, b)| format!("{a}\t{b}")).collect();
    let answers = oracle("rpm", &questions);
    let mut failures = Vec::new();
    for ((a, b), answer) in all.iter().zip(&answers) {
        let fields: Vec<&str> = answer.split('\t').collect();
        let [rpm_sign, parts @ ..] = fields.as_slice() else {
            panic!("odd answer {answer:?}");
        };
        assert_eq!(parts.len(), 6, "odd answer {answer:?}");
        let rpm = from_sign(rpm_sign);
        let mine = ours(Family::Rpm, a, b, &mut failures);
        if mine != rpm {
            failures.push(format!(
                "{a:?} vs {b:?}: rpm.labelCompare {} upkeep {}",
                sign(rpm),
                sign(mine)
            ));
        }
        // rpm's own split into (epoch, version, release) gives the same
        // version through rpm_parts, with the same upstream part.
        for (text, evr) in [(a, &parts[..3]), (b, &parts[3..])] {
            let part = |s: &str| (s != "<none>").then(|| s.to_string());
            let (e, v, r) = (part(evr[0]), evr[1], part(evr[2]));
            let from_text = parse(Family::Rpm, text);
            match PkgVersion::rpm_parts(e.as_deref(), v, r.as_deref()) {
                Ok(p) if from_text.as_ref().is_some_and(|t| *t == p && t.upstream() == v) => {}
                other => failures.push(format!(
                    "{text:?}: rpm splits it as ({e:?}, {v:?}, {r:?}); rpm_parts gives {:?}, rpm() gives {:?}",
                    other.map(|p| p.to_string()),
                    from_text.map(|p| p.to_string())
                )),
            }
        }
    }
    eprintln!(
        "rpm: {} pairs ({} hand-written, {} generated, seed {seed:#x}) compared with \
         rpm.labelCompare, in {:.1?}",
        all.len(),
        tricky.len(),
        generated.len(),
        started.elapsed()
    );
    finish(Family::Rpm, seed, all.len(), &failures);
}

#[test]
fn generator_is_deterministic_and_varied() {
    let (a, _) = generate(DEFAULT_SEED, 500, &DEB);
    let (b, _) = generate(DEFAULT_SEED, 500, &DEB);
    assert_eq!(a, b);
    for (family, alphabet) in [(Family::Deb, &DEB), (Family::Rpm, &RPM)] {
        let (pairs, tried) = generate(DEFAULT_SEED, 2_000, alphabet);
        let mut count = [0usize; 3];
        for (x, y) in &pairs {
            let o = parse(family, x)
                .zip(parse(family, y))
                .map(|(x, y)| x.cmp(&y))
                .expect("generated pairs are valid");
            count[(o as i8 + 1) as usize] += 1;
        }
        assert!(
            count.iter().all(|&c| c > pairs.len() / 20),
            "{family}: too lopsided a mix of <, =, >: {count:?}"
        );
        let invalid = tried.iter().filter(|s| parse(family, s).is_none()).count();
        assert!(
            invalid > 100,
            "{family}: too few invalid strings tried ({invalid})"
        );
        let long = pairs
            .iter()
            .filter(|(x, _)| x.bytes().filter(u8::is_ascii_digit).count() > 20);
        assert!(long.count() > 10, "{family}: too few long numbers");
        for needle in ["~", "+", ":", "-", "00"] {
            assert!(
                pairs
                    .iter()
                    .filter(|(x, y)| x.contains(needle) || y.contains(needle))
                    .count()
                    > 50,
                "{family}: too few versions with {needle:?}"
            );
        }
        if family == Family::Rpm {
            assert!(pairs.iter().filter(|(x, _)| x.contains('^')).count() > 50);
        }
    }
}
