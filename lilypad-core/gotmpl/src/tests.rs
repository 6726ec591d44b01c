//! Unit tests of the template engine, one construct at a time. The expected
//! outputs were checked against Go's `text/template` (the differential test
//! in `tests/template_vs_go.rs` covers the same ground and much more).

use std::collections::BTreeMap;

use super::{Rendered, Template, TemplateError};

const NAME: &str = "lilypad_module.json.tmpl";

fn inputs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn render(src: &str, pairs: &[(&str, &str)]) -> Result<Rendered, TemplateError> {
    Template::parse(NAME, src)?.render(&inputs(pairs))
}

fn text(src: &str, pairs: &[(&str, &str)]) -> String {
    match render(src, pairs) {
        Ok(r) => r.text,
        Err(e) => panic!("{src:?} failed: {e}"),
    }
}

fn error(src: &str, pairs: &[(&str, &str)]) -> TemplateError {
    match render(src, pairs) {
        Ok(r) => panic!("{src:?} rendered {:?}, expected an error", r.text),
        Err(e) => e,
    }
}

// ------------------------------------------------------------ basics

#[test]
fn inputs_are_json_encoded_like_go() {
    assert_eq!(text("{{.Message}}", &[("Message", "moo")]), r#""moo""#);
    assert_eq!(
        text("{{.M}}", &[("M", "a<b>&\"c\"\n\u{2028}é")]),
        r#""a\u003cb\u003e\u0026\"c\"\n\u2028é""#
    );
}

#[test]
fn missing_input_printed_directly_is_no_value() {
    let r = render("[{{.Missing}}]", &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.text, "[<no value>]");
    assert_eq!(r.missing_inputs, vec!["Missing".to_owned()]);
    assert_eq!(text("{{.Missing.Deeper}}", &[]), "<no value>");
}

#[test]
fn actions_and_pipelines() {
    assert_eq!(text("a{{\"b\"}}c", &[]), "abc");
    assert_eq!(text(r#"{{"x" | printf "%s-%s" "y"}}"#, &[]), "y-x");
    assert_eq!(text("{{.M | len}}", &[("M", "moo")]), "5");
    // Like Go, a trailing `|` with nothing after it is accepted.
    assert_eq!(text("{{.M | }}", &[("M", "moo")]), r#""moo""#);
    assert_eq!(text("{{(len .M)}} {{ ( print 1 ) }}", &[("M", "")]), "2 1");
    assert_eq!(
        text("{{1}} {{1.5}} {{1e3}} {{0x10}} {{'a'}} {{2i}} {{true}}", &[]),
        "1 1.5 1000 16 97 (0+2i) true"
    );
    assert_eq!(text("{{.}}", &[("B", "2"), ("A", "1")]), r#"map[A:"1" B:"2"]"#);
}

#[test]
fn if_else_if_else() {
    let t = "{{if .A}}a{{else if .B}}b{{else}}c{{end}}";
    assert_eq!(text(t, &[("A", "")]), "a", "an empty input is still a non-empty JSON string");
    assert_eq!(text(t, &[("B", "1")]), "b");
    assert_eq!(text(t, &[]), "c");
    assert_eq!(text("{{if 0}}x{{else}}y{{end}}{{if \"\"}}x{{end}}", &[]), "y");
}

#[test]
fn with_and_else() {
    assert_eq!(text("{{with .M}}<{{.}}>{{end}}", &[("M", "x")]), r#"<"x">"#);
    assert_eq!(text("{{with .M}}<{{.}}>{{else}}none{{end}}", &[]), "none");
    assert_eq!(text("{{with .A}}a{{else with .B}}{{.}}{{end}}", &[("B", "b")]), r#""b""#);
    assert_eq!(text("{{with $x := .M}}{{$x}}{{end}}", &[("M", "x")]), r#""x""#);
}

#[test]
fn range_over_the_inputs_sorted_with_else() {
    let ins = [("b", "2"), ("a", "1"), ("C", "3")];
    assert_eq!(text("{{range .}}{{.}},{{end}}", &ins), r#""3","1","2","#);
    assert_eq!(text("{{range $k, $v := .}}{{$k}}={{$v}};{{end}}", &ins), r#"C="3";a="1";b="2";"#);
    assert_eq!(text("{{range $v := .}}{{$v}}{{end}}", &[("a", "x")]), r#""x""#);
    assert_eq!(text("{{range .}}x{{else}}empty{{end}}", &[]), "empty");
    assert_eq!(text("{{range .Missing}}x{{else}}none{{end}}", &[]), "none");
}

#[test]
fn range_over_integers_break_and_continue() {
    assert_eq!(text("{{range 3}}{{.}}{{end}}", &[]), "012");
    assert_eq!(text("{{range $i := 2}}[{{$i}}]{{end}}", &[]), "[0][1]");
    assert_eq!(text("{{range 0}}x{{else}}zero{{end}}", &[]), "zero");
    assert_eq!(text("{{range 5}}{{if eq . 3}}{{break}}{{end}}{{.}}{{end}}", &[]), "012");
    assert_eq!(text("{{range 4}}{{if eq . 1}}{{continue}}{{end}}{{.}}{{end}}", &[]), "023");
    assert!(matches!(error("{{range .M}}{{end}}", &[("M", "x")]), TemplateError::WrongType { .. }));
    assert!(matches!(error("{{break}}", &[]), TemplateError::Syntax { .. }));
}

#[test]
fn variables_declared_and_assigned() {
    assert_eq!(text("{{$x := .M}}{{$x}}", &[("M", "v")]), r#""v""#);
    assert_eq!(text("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", &[]), "2");
    assert_eq!(text("{{$x := 1}}{{if true}}{{$x := 2}}{{end}}{{$x}}", &[]), "1");
    assert_eq!(text("{{$}} {{$.M}}", &[("M", "v")]), r#"map[M:"v"] "v""#);
    assert!(matches!(error("{{$y = 1}}", &[]), TemplateError::Exec { .. }));
    assert!(matches!(error("{{$nope}}", &[]), TemplateError::Syntax { .. }));
}

#[test]
fn trim_markers_and_comments() {
    assert_eq!(text("a  \n {{- .M -}} \n  b", &[("M", "x")]), r#"a"x"b"#);
    assert_eq!(text("a {{- /* comment */ -}} b", &[]), "ab");
    assert_eq!(text("a {{/* comment */}} b", &[]), "a  b");
    assert_eq!(text("{{-3}}", &[]), "-3");
}

#[test]
fn define_template_and_block() {
    assert_eq!(
        text(r#"{{define "t"}}[{{.}}]{{end}}{{template "t" .M}}"#, &[("M", "x")]),
        r#"["x"]"#
    );
    assert_eq!(text(r#"{{block "b" .M}}<{{.}}>{{end}}"#, &[("M", "x")]), r#"<"x">"#);
    assert!(matches!(error(r#"{{template "nope"}}"#, &[]), TemplateError::Exec { .. }));
}

// ------------------------------------------------------------ functions

#[test]
fn comparison_and_logic() {
    assert_eq!(text("{{and 1 0 2}} {{and 1 2}} {{or 0 \"\" 3}} {{not 0}}", &[]), "0 2 3 true");
    assert_eq!(text("{{and .Missing (len .Missing)}}", &[]), "<no value>", "and short-circuits");
    assert_eq!(
        text(
            "{{eq 1 2 3 1}} {{ne \"a\" \"b\"}} {{lt 1 2}} {{le 2 2}} {{gt \"b\" \"a\"}} {{ge 1.5 2.5}}",
            &[]
        ),
        "true true true true true false"
    );
    assert_eq!(text("{{eq .Missing \"x\"}} {{eq .Missing .Other}}", &[]), "false true");
    let e = error("{{lt 1 \"a\"}}", &[]);
    assert!(matches!(e, TemplateError::WrongType { .. }), "{e:?}");
    assert!(e.to_string().contains("incompatible types for comparison"), "{e}");
    assert!(matches!(error("{{eq 1 1.0}}", &[]), TemplateError::WrongType { .. }));
}

#[test]
fn index_len_slice() {
    let ins = [("A", "xy")];
    assert_eq!(text(r#"{{index . "A"}}|{{index . "Nope"}}|{{index .A 1}}"#, &ins), r#""xy"||120"#);
    assert_eq!(text("{{len .A}} {{len .}} {{slice .A 1 3}}", &ins), "4 1 xy");
    let e = error("{{index .A 9}}", &ins);
    assert!(
        matches!(&e, TemplateError::IndexOutOfRange { input: Some(i), .. } if i == "A"),
        "{e:?}"
    );
    assert!(matches!(error("{{slice .A 3 1}}", &ins), TemplateError::IndexOutOfRange { .. }));
    assert!(matches!(error("{{len 3}}", &[]), TemplateError::WrongType { .. }));
    // A missing key read through index yields "" and counts as missing.
    let r = render(r#"{{index . "Seed"}}"#, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((r.text.as_str(), r.missing_inputs), ("", vec!["Seed".to_owned()]));
}

#[test]
fn printf_print_println() {
    assert_eq!(
        text(r#"{{printf "%5.2f|%-4s|%03d|%q|%x|%v" 3.14159 "ab" 7 "q" "hi" true}}"#, &[]),
        r#" 3.14|ab  |007|"q"|6869|true"#
    );
    assert_eq!(
        text(r#"{{printf "%d" "foo"}} {{printf "%s"}} {{printf "%s" "a" 1}}"#, &[]),
        "%!d(string=foo) %!s(MISSING) a%!(EXTRA int=1)"
    );
    assert_eq!(text(r#"{{printf "%s" .Missing}}"#, &[]), "%!s(<nil>)");
    assert_eq!(text(r#"{{print 1 2 "a" 3}}|{{println "a" 1}}"#, &[]), "1 2a3|a 1\n");
    assert_eq!(text(r#"{{printf "%s" (printf "%q" .M)}}"#, &[("M", "hi")]), r#""\"hi\"""#);
}

#[test]
fn js_html_urlquery() {
    assert_eq!(
        text(r#"{{js "it's \"q\" <a> & b=c \\"}}"#, &[]),
        r#"it\'s \"q\" \u003Ca\u003E \u0026 b\u003Dc \\"#
    );
    assert_eq!(text("{{.M | js}}", &[("M", "é\u{200d}😀")]), "\\\"é\\u200D😀\\\"");
    assert_eq!(
        text(r#"{{html "<a href='x'>&\"</a>"}}"#, &[]),
        "&lt;a href=&#39;x&#39;&gt;&amp;&#34;&lt;/a&gt;"
    );
    assert_eq!(text("{{html .Missing}}", &[]), "&lt;no value&gt;");
    assert_eq!(text(r#"{{urlquery "a b&c=d/é~"}}"#, &[]), "a+b%26c%3Dd%2F%C3%A9~");
}

#[test]
fn subst_decodes_json_inputs() {
    assert_eq!(text(r#""{{subst "PROMPT=%s" .P}}""#, &[("P", "a frog")]), r#""PROMPT=a frog""#);
    assert_eq!(text(r#"{{subst "%s+%s" .A .B}}"#, &[("A", "1"), ("B", "<2>")]), "1+<2>");
    assert_eq!(text(r#"{{subst "%s" "null"}}|{{subst "none"}}"#, &[]), "|none");
    assert_eq!(text(r#"{{.M | subst "M=%s"}}"#, &[("M", "x")]), "M=x");
}

// ------------------------------------------------------------ errors

#[test]
fn unknown_function_is_reported_with_position() {
    let e = error("{\n  \"a\": {{ foo .X }}\n}", &[]);
    assert_eq!(
        e,
        TemplateError::UnknownFunction {
            name: NAME.into(),
            line: 2,
            col: 11,
            function: "foo".into()
        }
    );
    assert_eq!(e.to_string(), "lilypad_module.json.tmpl:2:11: unknown function \"foo\"");
}

#[test]
fn syntax_errors() {
    for (src, needle) in [
        ("x {{ .M", "unclosed action"),
        ("{{ \"abc }}", "unterminated quoted string"),
        ("{{/* x }}", "unclosed comment"),
        ("{{end}}", "unexpected {{end}}"),
        ("{{else}}", "unexpected {{else}}"),
        ("{{if .A}}x", "unexpected EOF"),
        ("{{ }}", "missing value for command"),
        ("{{ | .A }}", "unexpected \"|\""),
        ("{{ \"a\" | \"b\" }}", "non executable command"),
        ("{{ ( .A }}", "unclosed left paren"),
    ] {
        match error(src, &[]) {
            TemplateError::Syntax { message, line, col, .. } => {
                assert!(message.contains(needle), "{src:?}: {message}");
                assert!(line >= 1 && col >= 1);
            }
            other => panic!("{src:?}: expected a syntax error, got {other:?}"),
        }
    }
    // The unclosed action is reported where it starts.
    let e = error("line one\n  {{ .M", &[]);
    assert_eq!((e.line(), e.col()), (2, 3));
}

#[test]
fn wrong_type_and_argument_count() {
    let e = error(r#"{{subst "%s" 1}}"#, &[]);
    assert!(matches!(e, TemplateError::WrongType { .. }), "{e:?}");
    let e = error("{{not 1 2}}", &[]);
    assert!(matches!(e, TemplateError::ArgumentCount { .. }), "{e:?}");
    assert!(e.to_string().contains("wrong number of args for not"), "{e}");
    let e = error("{{.M 1}}", &[("M", "x")]);
    assert!(matches!(e, TemplateError::ArgumentCount { .. }), "{e:?}");
    let e = error("{{.M.Field}}", &[("M", "x")]);
    assert!(matches!(&e, TemplateError::WrongType { input: Some(i), .. } if i == "M"), "{e:?}");
}

#[test]
fn function_applied_to_a_missing_input_names_it() {
    let e = error("{{len .Prompt}}", &[]);
    assert!(
        matches!(&e, TemplateError::WrongType { input: Some(i), .. } if i == "Prompt"),
        "{e:?}"
    );
    let e = error("x\n  {{subst \"P=%s\" .Prompt}}", &[]);
    assert_eq!(e.input(), Some("Prompt"));
    assert_eq!(e.line(), 2);
    assert!(e.to_string().starts_with("lilypad_module.json.tmpl:2:"), "{e}");
    assert!(e.to_string().contains("input \"Prompt\""), "{e}");
}

#[test]
fn subst_of_a_non_json_value_is_a_function_error() {
    let e = error("{\n  {{ subst \"P=%s\" (printf \"%s\" \"raw\") }}", &[]);
    assert!(matches!(&e, TemplateError::Function { function, .. } if function == "subst"), "{e:?}");
    // Through a variable the error still names the input it came from.
    let e = error("{{$p := slice .Prompt 1}}{{subst \"%s\" $p}}", &[("Prompt", "moo")]);
    match &e {
        TemplateError::Function { function, input, .. } => {
            assert_eq!((function.as_str(), input.as_deref()), ("subst", Some("Prompt")));
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("input \"Prompt\": subst: not a JSON string"), "{e}");
}

#[test]
fn error_display_names_template_line_column() {
    let e = error("{{.A}}\n{{ index .A 7 }}", &[("A", "x")]);
    assert_eq!((e.name(), e.line(), e.col()), (NAME, 2, 4));
    assert!(e.to_string().starts_with("lilypad_module.json.tmpl:2:4: input \"A\": "), "{e}");
}

// ------------------------------------------------------------ inputs

#[test]
fn missing_inputs_are_those_looked_up_and_absent() {
    let t = r#"{{if .Seed}}{{.Seed}}{{else}}42{{end}} {{.Prompt}} {{index . "Steps"}}"#;
    let r = render(t, &[("Prompt", "p")]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.missing_inputs, vec!["Seed".to_owned(), "Steps".to_owned()]);
    let r = render(t, &[("Prompt", "p"), ("Seed", "1"), ("Steps", "2")])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.missing_inputs.is_empty());
}

#[test]
fn referenced_inputs_are_found_statically() {
    let t = Template::parse(
        NAME,
        r#"{{.A}}{{$.B}}{{index . "C"}}{{index $ "D" 0}}{{if .E}}{{else}}{{.F.G}}{{end}}
{{with .H}}{{.NotAnInput}}{{$.I}}{{end}}{{range .}}{{.NotEither}}{{end}}
{{define "t"}}{{.J}}{{end}}{{template "t" .}}{{subst "%s" (printf "%s" .K)}}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let refs: Vec<String> = t.referenced_inputs().into_iter().collect();
    assert_eq!(refs, ["A", "B", "C", "D", "E", "F", "H", "I", "J", "K"]);
}

// ------------------------------------------------------------ limits

#[test]
fn runaway_templates_stop_with_a_limit_error() {
    assert!(matches!(error("{{range 100000000}}{{end}}", &[]), TemplateError::Limit { .. }));
    let recursive = r#"{{define "r"}}x{{template "r" .}}{{end}}{{template "r" .}}"#;
    assert!(matches!(error(recursive, &[]), TemplateError::Limit { .. }));
    let big_output = r#"{{range 100}}{{printf "%1000000d" 1}}{{end}}"#;
    assert!(matches!(error(big_output, &[]), TemplateError::Limit { .. }));
    let big_work = r#"{{range 1000}}{{$x := printf "%1000000d" 1}}{{end}}"#;
    assert!(matches!(error(big_work, &[]), TemplateError::Limit { .. }));
    let deep = format!("{}1{}", "(".repeat(200), ")".repeat(200));
    assert!(matches!(error(&format!("{{{{{deep}}}}}"), &[]), TemplateError::Syntax { .. }));
}

#[test]
fn deepest_allowed_nesting_fits_a_small_stack() {
    // The nesting limits keep the recursive parser and evaluator within a
    // fraction of a 2 MiB thread stack (tokio's and the test harness's
    // default), even unoptimised: run the worst shapes on 768 KiB.
    let n = super::parser::MAX_NESTING - 1;
    let run = std::thread::Builder::new().stack_size(768 * 1024).spawn(move || {
        let parens = format!("{{{{{}1{}}}}}", "(".repeat(n), ")".repeat(n));
        assert_eq!(text(&parens, &[]), "1");
        let ifs = format!("{}x{}", "{{if true}}".repeat(n), "{{end}}".repeat(n));
        assert_eq!(text(&ifs, &[]), "x");
        let chain = format!(
            "{{{{if false}}}}{}{{{{else}}}}y{{{{end}}}}",
            "{{else if false}}".repeat(n - 1)
        );
        assert_eq!(text(&chain, &[]), "y");
        let recursive = r#"{{define "r"}}x{{template "r" .}}{{end}}{{template "r" .}}"#;
        assert!(matches!(error(recursive, &[]), TemplateError::Limit { .. }));
        let nested_recursion = format!(
            r#"{{{{define "r"}}}}{}{{{{template "r" .}}}}{}{{{{end}}}}{{{{template "r" .}}}}"#,
            "{{if true}}".repeat(n),
            "{{end}}".repeat(n)
        );
        assert!(matches!(error(&nested_recursion, &[]), TemplateError::Limit { .. }));
    });
    let joined = run.unwrap_or_else(|e| panic!("spawning: {e}")).join();
    assert!(joined.is_ok(), "rendering at the nesting limits failed");
}

#[test]
fn templates_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Template>();
    assert_send_sync::<TemplateError>();
    assert_send_sync::<Rendered>();
}

mod robustness {
    use proptest::prelude::*;

    use super::render;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Whatever the source, parsing and rendering return, never panic.
        #[test]
        fn arbitrary_templates_never_panic(
            src in r#"(\{\{-? |\{\{| -?\}\}|\}\}|/\*|\*/|[ .$a-zA-Z0-9_"'`|():=,\\+\-é😀\n\t%\[\]]|if |else |end|range |with |define |template |block |break|continue|printf |index |slice |len |subst |js |html |eq |and |nil|true|0x|1e|'\\x){0,40}"#
        ) {
            let _ = render(&src, &[("A", "x"), ("B", "")]);
        }
    }
}
