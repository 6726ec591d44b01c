// Command go-template-oracle renders Lilypad module templates with Go's own
// text/template, exactly as the Go reference (Lilypad v1) does: each input is
// JSON-encoded with encoding/json, the template gets the "subst" helper, and
// it is executed on a map[string]string. It is the oracle of the Rust engine's
// differential test (lilypad-core/tests/template_vs_go.rs). Standard library only.
//
// Usage:
//
//	go-template-oracle < cases.json > results.json
//	go-template-oracle -unicode-tables > unicode_tables.rs
//
// cases.json is a JSON list of {"name", "template", "inputs"}; the output is a
// JSON list, in the same order, of {"ok", "out_hex", "error"}: the rendered
// bytes in hex when ok, Go's error text otherwise.
package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"
	"unicode"
)

type testCase struct {
	Name     string            `json:"name"`
	Template string            `json:"template"`
	Inputs   map[string]string `json:"inputs"`
}

type result struct {
	Ok     bool   `json:"ok"`
	OutHex string `json:"out_hex"`
	Error  string `json:"error"`
}

// subst is the Lilypad helper, as in the reference pkg/module/utils.go: each
// argument must be a JSON-encoded string; the decoded strings are the
// arguments of fmt.Sprintf(format, ...).
func subst(format string, jsonEncodedInputs ...string) string {
	jsonDecodedInputs := make([]any, 0, len(jsonEncodedInputs))
	for _, input := range jsonEncodedInputs {
		var s string
		if err := json.Unmarshal([]byte(input), &s); err != nil {
			panic("subst: invalid input")
		}
		jsonDecodedInputs = append(jsonDecodedInputs, s)
	}
	return fmt.Sprintf(format, jsonDecodedInputs...)
}

func render(c testCase) (res result) {
	defer func() {
		if r := recover(); r != nil {
			res = result{Ok: false, Error: fmt.Sprintf("panic: %v", r)}
		}
	}()
	name := c.Name
	if name == "" {
		name = "lilypad_module.json.tmpl"
	}
	tmpl, err := template.New(name).Funcs(template.FuncMap{"subst": subst}).Parse(c.Template)
	if err != nil {
		return result{Ok: false, Error: err.Error()}
	}
	data := make(map[string]string, len(c.Inputs))
	for k, v := range c.Inputs {
		bs, err := json.Marshal(v)
		if err != nil {
			return result{Ok: false, Error: err.Error()}
		}
		data[k] = string(bs)
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, data); err != nil {
		return result{Ok: false, Error: err.Error()}
	}
	return result{Ok: true, OutHex: hex.EncodeToString(out.Bytes())}
}

func ranges(pred func(rune) bool) [][2]rune {
	var out [][2]rune
	start := rune(-1)
	for r := rune(0); r <= unicode.MaxRune+1; r++ {
		in := r <= unicode.MaxRune && pred(r)
		if in && start < 0 {
			start = r
		}
		if !in && start >= 0 {
			out = append(out, [2]rune{start, r - 1})
			start = -1
		}
	}
	return out
}

func printTable(b *strings.Builder, name, doc string, rs [][2]rune) {
	fmt.Fprintf(b, "/// %s\npub(super) static %s: &[(u32, u32)] = &[\n", doc, name)
	for _, r := range rs {
		fmt.Fprintf(b, "    (0x%04X, 0x%04X),\n", r[0], r[1])
	}
	b.WriteString("];\n")
}

func unicodeTables() string {
	var b strings.Builder
	fmt.Fprintf(&b, "//! Unicode tables generated from Go's `unicode` package (Unicode %s) by\n", unicode.Version)
	b.WriteString("//! `go run lilypad-core/tests/go-template-oracle/main.go -unicode-tables`; do not edit.\n")
	b.WriteString("//! The differential test checks that this file matches Go.\n\n")
	printTable(&b, "PRINT", "Ranges of `unicode.IsPrint` (also `strconv.IsPrint`).", ranges(unicode.IsPrint))
	printTable(&b, "LETTER", "Ranges of `unicode.IsLetter`.", ranges(unicode.IsLetter))
	printTable(&b, "DIGIT", "Ranges of `unicode.IsDigit`.", ranges(unicode.IsDigit))
	printTable(&b, "SPACE", "Ranges of `unicode.IsSpace`.", ranges(unicode.IsSpace))
	return b.String()
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-unicode-tables" {
		fmt.Print(unicodeTables())
		return
	}
	var cases []testCase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		fmt.Fprintln(os.Stderr, "go-template-oracle: reading cases:", err)
		os.Exit(2)
	}
	results := make([]result, len(cases))
	for i, c := range cases {
		results[i] = render(c)
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, "go-template-oracle: writing results:", err)
		os.Exit(2)
	}
}
