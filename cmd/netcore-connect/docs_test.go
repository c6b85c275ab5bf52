package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// The repository's hand-written docs: the front page and references at the
// root, one page a question under docs/, and the READMEs of bench/ and of
// its published reports. The reports themselves are the benchmark tool's
// output and are not checked.
func docFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return fs.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".md") {
			return nil
		}
		if filepath.Base(filepath.Dir(path)) == "published" && d.Name() != "README.md" {
			return nil
		}
		files = append(files, path)
		return nil
	})
	if err != nil || len(files) < 4 {
		t.Fatalf("found %v: %v", files, err)
	}
	return files
}

const repoRoot = "../.."

// doc is a Markdown file read for its prose: fenced code blocks are blanked
// out (a `# comment` in a shell example is not a heading, a link in a code
// block is not followed).
type doc struct {
	path  string
	lines []string
}

func readDoc(t *testing.T, path string) doc {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	fenced := false
	for i, line := range lines {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			lines[i] = ""
			continue
		}
		if fenced {
			lines[i] = ""
		}
	}
	return doc{path, lines}
}

var headingLine = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*#*\s*$`)

func (d doc) headings() []string {
	var hs []string
	for _, line := range d.lines {
		if m := headingLine.FindStringSubmatch(line); m != nil {
			hs = append(hs, m[2])
		}
	}
	return hs
}

var inlineLink = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)

// anchors are the fragment identifiers GitHub gives the headings of d: the
// heading's text as rendered, lower-cased, everything but letters, digits,
// marks, '_', '-' and spaces dropped, spaces made '-', and a repeated one
// suffixed -1, -2...
func (d doc) anchors() map[string]bool {
	seen := map[string]int{}
	anchors := map[string]bool{}
	for _, h := range d.headings() {
		text := inlineLink.ReplaceAllString(h, "$1")
		text = strings.NewReplacer("`", "", "*", "").Replace(text)
		var b strings.Builder
		for _, r := range strings.ToLower(text) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
				b.WriteRune(r)
			}
		}
		slug := b.String()
		if n := seen[slug]; n > 0 {
			anchors[slug+"-"+strconv.Itoa(n)] = true
		} else {
			anchors[slug] = true
		}
		seen[slug]++
	}
	return anchors
}

var linkTarget = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)

// TestDocLinksResolve follows every relative link of the docs: to a file
// or folder that exists, and where it names a heading (#anchor), to a
// heading that exists in the file it points at.
func TestDocLinksResolve(t *testing.T) {
	checked := 0
	for _, path := range docFiles(t) {
		d := readDoc(t, path)
		for n, line := range d.lines {
			for _, m := range linkTarget.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if regexp.MustCompile(`^[a-z]+:`).MatchString(target) {
					continue
				}
				checked++
				file, anchor, _ := strings.Cut(target, "#")
				where := path
				if file != "" {
					where = filepath.Join(filepath.Dir(path), file)
					if _, err := os.Stat(where); err != nil {
						t.Errorf("%s:%d links to %s, which does not exist", path, n+1, target)
						continue
					}
				}
				if anchor == "" {
					continue
				}
				if !strings.HasSuffix(where, ".md") {
					t.Errorf("%s:%d links to a heading of %s, which is not Markdown", path, n+1, target)
					continue
				}
				if !readDoc(t, where).anchors()[anchor] {
					t.Errorf("%s:%d links to %s, but %s has no heading with that anchor", path, n+1, target, where)
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("checked only %d links", checked)
	}
}

var testFunc = regexp.MustCompile(`(?m)^func ((?:Test|Benchmark|Fuzz)[A-Z0-9]\w*)\(`)

// TestDocsCiteOnlyTestsThatExist holds every test, benchmark and fuzz
// target the docs name (as the evidence for a promise or a figure) to a
// function of that name in the repository's tests: a renamed or removed
// test must take its citation with it.
func TestDocsCiteOnlyTestsThatExist(t *testing.T) {
	defined := map[string]bool{}
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		for _, m := range testFunc.FindAllSubmatch(b, -1) {
			defined[string(m[1])] = true
		}
		return err
	})
	if err != nil || len(defined) < 100 {
		t.Fatalf("found %d test functions: %v", len(defined), err)
	}
	cited := regexp.MustCompile(`\b((?:Test|Benchmark|Fuzz)[A-Z0-9]\w*)`)
	count := 0
	for _, path := range docFiles(t) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range cited.FindAllStringSubmatch(string(b), -1) {
			count++
			if !defined[m[1]] {
				t.Errorf("%s cites %s, which is no test, benchmark or fuzz target of the repository", path, m[1])
			}
		}
	}
	if count < 20 {
		t.Fatalf("the docs cite only %d tests", count)
	}
}

// TestDocsStayShort keeps each page answerable in a few minutes' reading:
// the README a front page, BENCHMARKS.md a reference, one page a question
// under docs/.
func TestDocsStayShort(t *testing.T) {
	limits := map[string]int{"README.md": 200, "BENCHMARKS.md": 250}
	docs, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, page := range docs {
		limits[filepath.Join("docs", filepath.Base(page))] = 300
	}
	for name, limit := range limits {
		b, err := os.ReadFile(filepath.Join(repoRoot, name))
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(b), "\n"); n > limit {
			t.Errorf("%s has %d lines, over its %d", name, n, limit)
		}
	}
}

// A heading says what a section answers; when it was measured or written
// belongs in a table's column or in git history.
var narrativeHeading = regexp.MustCompile(`(?i)\b(19|20)\d\d\b|\b\d{1,2}:\d\d\b|morning|afternoon|evening|earlier|after merging|before merging|this session|changes of|latest runs?\b|the run before|first run`)

func TestDocHeadingsAreNotDatesOrStretchesOfWork(t *testing.T) {
	for _, path := range docFiles(t) {
		if filepath.Base(filepath.Dir(path)) == "published" || filepath.Base(filepath.Dir(path)) == "bench" {
			continue
		}
		for _, h := range readDoc(t, path).headings() {
			if narrativeHeading.MatchString(h) {
				t.Errorf("%s has the heading %q: a date or a stretch of work, not a question answered", path, h)
			}
		}
	}
}
