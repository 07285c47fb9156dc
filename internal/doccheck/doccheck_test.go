package doccheck

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// root is the repository's top directory, from this package's.
const root = "../.."

// scanned are the kinds of files whose text is read: code, docs, scripts.
var scanned = map[string]bool{
	".go": true, ".md": true, ".mjs": true, ".cjs": true, ".js": true,
	".sh": true, ".txt": true, ".json": false,
}

var (
	mdRef      = regexp.MustCompile(`[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.md\b`)
	sectionRef = regexp.MustCompile(`§\s?(\d+(?:\.\d+)*)`)
	// A statement that says which document a file's or a package's §
	// numbers refer to: "Section numbers (§) … refer to docs/X.md".
	refersTo = regexp.MustCompile(`§\)?[^\n]*?refer(?:s)? to (?:\[?)(?:docs/)?([A-Z][A-Za-z0-9-]*\.md)`)
	// A numbered section: a heading, or a numbered bold list item
	// ("- **13.2 Title.**") where a document numbers short entries.
	heading = regexp.MustCompile(`^(?:#+\s+|- \*\*)(\d+(?:\.\d+)*)[.\s]`)
	// Names of places outside the repository that must never be cited.
	outside = regexp.MustCompile(`\.\./shared\b|\bshared/(?:docs|seeds)\b`)
)

type file struct {
	path  string // relative to root, slash-separated
	lines []string
}

func TestDocsStandAlone(t *testing.T) {
	files := readRepo(t)
	exists := map[string]bool{}
	byBase := map[string][]string{}
	for _, f := range files {
		exists[f.path] = true
		byBase[filepath.Base(f.path)] = append(byBase[filepath.Base(f.path)], f.path)
	}
	sections := map[string]map[string]bool{} // docs/X.md → its section numbers
	for _, f := range files {
		if strings.HasSuffix(f.path, ".md") {
			s := map[string]bool{}
			for _, l := range f.lines {
				if m := heading.FindStringSubmatch(l); m != nil {
					s[m[1]] = true
				}
			}
			sections[f.path] = s
		}
	}
	// The document a directory's § numbers refer to, from its package doc.
	dirDoc := map[string]string{}
	for _, f := range files {
		for _, l := range f.lines {
			if m := refersTo.FindStringSubmatch(l); m != nil && strings.HasSuffix(f.path, ".go") {
				dirDoc[filepath.Dir(f.path)] = "docs/" + m[1]
			}
		}
	}
	for _, f := range files {
		fileDoc := ""
		if strings.HasPrefix(f.path, "docs/") {
			fileDoc = f.path
		}
		for _, l := range f.lines {
			if m := refersTo.FindStringSubmatch(l); m != nil {
				fileDoc = "docs/" + m[1]
			}
		}
		for i, l := range f.lines {
			at := f.path + ":" + itoa(i+1)
			if outside.MatchString(l) {
				t.Errorf("%s cites a place outside the repository: %s", at, strings.TrimSpace(l))
			}
			for _, ref := range mdRef.FindAllString(l, -1) {
				if !resolves(f.path, ref, exists, byBase) {
					t.Errorf("%s cites %s, which is not a file in the repository", at, ref)
				}
			}
			refs := sectionRef.FindAllStringSubmatch(l, -1)
			if refs == nil {
				continue
			}
			doc := docNamedOn(l, f.path, exists, byBase)
			if doc == "" {
				doc = fileDoc
			}
			if doc == "" {
				doc = docOfDir(filepath.Dir(f.path), dirDoc)
			}
			if doc == "" {
				t.Errorf("%s cites §%s without saying which document: name it on the line or in the package doc (Section numbers (§) … refer to docs/X.md)", at, refs[0][1])
				continue
			}
			for _, r := range refs {
				if !sections[doc][r[1]] {
					t.Errorf("%s cites §%s of %s, which has no such section", at, r[1], doc)
				}
			}
		}
	}
}

// readRepo reads every scanned file of the repository, leaving out
// installed packages and version control.
func readRepo(t *testing.T) []file {
	t.Helper()
	var files []file
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", ".cache":
				return filepath.SkipDir
			}
			return nil
		}
		if !scanned[filepath.Ext(p)] || filepath.Base(filepath.Dir(p)) == "doccheck" {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		fh, err := os.Open(p)
		if err != nil {
			return err
		}
		defer fh.Close()
		f := file{path: filepath.ToSlash(rel)}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			f.lines = append(f.lines, sc.Text())
		}
		files = append(files, f)
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 100 {
		t.Fatalf("read %d files from %s: is this the repository?", len(files), root)
	}
	return files
}

// resolves reports whether ref, cited in the file at from, names a file in
// the repository: relative to that file, to the root, or by its base name
// when only one file has it.
func resolves(from, ref string, exists map[string]bool, byBase map[string][]string) bool {
	for _, p := range []string{filepath.Join(filepath.Dir(from), ref), filepath.Clean(ref)} {
		if exists[filepath.ToSlash(p)] {
			return true
		}
	}
	return !strings.Contains(ref, "/") && len(byBase[ref]) > 0
}

// docNamedOn is the document a line names next to its § numbers.
func docNamedOn(line, from string, exists map[string]bool, byBase map[string][]string) string {
	for _, ref := range mdRef.FindAllString(line, -1) {
		for _, p := range []string{filepath.Join(filepath.Dir(from), ref), filepath.Clean(ref)} {
			if exists[filepath.ToSlash(p)] {
				return filepath.ToSlash(p)
			}
		}
		if bs := byBase[filepath.Base(ref)]; len(bs) == 1 {
			return bs[0]
		}
	}
	return ""
}

// docOfDir is the document § numbers refer to in dir: its package doc's,
// or the nearest enclosing directory's (testdata, nested helpers).
func docOfDir(dir string, dirDoc map[string]string) string {
	for {
		if d, ok := dirDoc[dir]; ok {
			return d
		}
		if dir == "." || dir == "/" || dir == "" {
			return ""
		}
		dir = filepath.Dir(dir)
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for n >= 10 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	i--
	b[i] = byte('0' + n)
	return string(b[i:])
}
