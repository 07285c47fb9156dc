package gen

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/types"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// renderer writes the stubs file. It picks one name per imported package:
// the name the package's files import it under (the file declaring the type
// first), or the package's own name, made unique against the other imports
// and the package's top-level names.
type renderer struct {
	pkg       *types.Package
	typ       string            // the type's name
	proxyName string            // TProxy
	newName   string            // NewTProxy
	prefer    map[string]string // import path → name the source files use
	names     map[string]string // import path → name in the output
	pkgNames  map[string]string // import path → the package's own name
	owner     map[string]string // name in the output → import path
	invalid   bool              // a rendered type did not type-check
}

func newRenderer(p *pkgInfo, named *types.Named) *renderer {
	typ := named.Obj().Name()
	r := &renderer{
		pkg:       p.pkg,
		typ:       typ,
		proxyName: proxyName(typ),
		newName:   "New" + typ + "Proxy",
		prefer:    make(map[string]string),
		names:     make(map[string]string),
		pkgNames:  make(map[string]string),
		owner:     make(map[string]string),
	}
	if !exported(typ) {
		r.newName = "new" + strings.ToUpper(typ[:1]) + typ[1:] + "Proxy"
	}
	declFile := p.fset.File(named.Obj().Pos())
	files := slices.Clone(p.files)
	slices.SortStableFunc(files, func(a, b *ast.File) int { // the declaring file first
		return boolRank(p.fset.File(a.Pos()) == declFile) - boolRank(p.fset.File(b.Pos()) == declFile)
	})
	for _, f := range files {
		for _, spec := range f.Imports {
			path, err := strconv.Unquote(spec.Path.Value)
			if err != nil || spec.Name == nil || spec.Name.Name == "_" || spec.Name.Name == "." {
				continue
			}
			if _, ok := r.prefer[path]; !ok {
				r.prefer[path] = spec.Name.Name
			}
		}
	}
	return r
}

func boolRank(b bool) int {
	if b {
		return 0
	}
	return 1
}

// importName returns the output's name for the package at path, importing it.
func (r *renderer) importName(path, pkgName string) string {
	if n, ok := r.names[path]; ok {
		return n
	}
	base := pkgName
	if n, ok := r.prefer[path]; ok {
		base = n
	}
	n := base
	for i := 2; r.taken(n); i++ {
		n = base + strconv.Itoa(i)
	}
	r.names[path], r.owner[n], r.pkgNames[path] = n, path, pkgName
	return n
}

// taken reports whether an import cannot have name n.
func (r *renderer) taken(n string) bool {
	return r.owner[n] != "" || r.pkg.Scope().Lookup(n) != nil ||
		n == "any" || n == "error" || n == r.proxyName || n == r.newName
}

// typeString names t in the output, importing the packages it needs.
func (r *renderer) typeString(t types.Type) string {
	s := types.TypeString(t, func(p *types.Package) string {
		if p == r.pkg {
			return ""
		}
		return r.importName(p.Path(), p.Name())
	})
	if strings.Contains(s, "invalid type") {
		r.invalid = true
	}
	return s
}

// peekType names t for a comment, importing nothing.
func (r *renderer) peekType(t types.Type) string {
	return types.TypeString(t, func(p *types.Package) string {
		switch {
		case p == r.pkg:
			return ""
		case r.names[p.Path()] != "":
			return r.names[p.Path()]
		case r.prefer[p.Path()] != "":
			return r.prefer[p.Path()]
		}
		return p.Name()
	})
}

// file renders the whole file, unformatted.
func (r *renderer) file(stubs []*stub) []byte {
	ctxPkg := r.importName("context", "context")
	if slices.ContainsFunc(stubs, func(s *stub) bool { return s.skip == "" && s.kind == resultStream }) {
		r.importName("iter", "iter")
	}
	px := r.importName(procxyPath, "procxy")

	var body bytes.Buffer
	fmt.Fprintf(&body, `// %[1]s is %[6]s %[2]s that lives in a child process, or on
// workers reached through a bus (%[7]s). Each method calls %[2]s there
// and returns its result, or an error if the call failed. The embedded
// [%[3]s.Proxy] ends the child (Close, Kill) and reports on it (Done, Err,
// Process). A %[1]s is safe for concurrent use.
type %[1]s struct {
	*%[3]s.Proxy[%[2]s]
	on %[3]s.Target[%[2]s] // set by %[7]s
}

// %[4]s starts a child process and constructs %[6]s %[2]s in
// it, as [%[3]s.New] does: %[2]s must be registered with
// [%[3]s.Register], and main (and TestMain) must call [%[3]s.Main] first.
func %[4]s(ctx %[5]s.Context, opts ...%[3]s.Option) (*%[1]s, error) {
	p, err := %[3]s.New[%[2]s](ctx, opts...)
	if err != nil {
		return nil, err
	}
	return &%[1]s{Proxy: p}, nil
}

// %[7]s returns %[6]s %[1]s whose calls go to t: a [%[3]s.Pool], or a
// [%[3]s.Remote] whose %[2]s lives on worker processes. Its embedded
// Proxy is t if t is a *[%[3]s.Proxy], and nil otherwise: close t itself.
func %[7]s(t %[3]s.Target[%[2]s]) *%[1]s {
	p, _ := t.(*%[3]s.Proxy[%[2]s])
	return &%[1]s{Proxy: p, on: t}
}

// Target returns where p's calls go: p's own Proxy, or the target given
// to %[7]s. [%[3]s.OnEvent], [%[3]s.Call] and [%[3]s.Stream] take p itself
// and use it.
func (p *%[1]s) Target() %[3]s.Target[%[2]s] {
	if p.on != nil {
		return p.on
	}
	return p.Proxy
}
`, r.proxyName, r.typ, px, r.newName, ctxPkg, article(r.typ), r.proxyName+"On")
	for _, s := range stubs {
		body.WriteByte('\n')
		r.method(&body, s, px, ctxPkg)
	}

	var out bytes.Buffer
	fmt.Fprintf(&out, "%s\n\npackage %s\n\nimport (\n", Header, r.pkg.Name())
	paths := make([]string, 0, len(r.names))
	for path := range r.names {
		paths = append(paths, path)
	}
	slices.SortFunc(paths, func(a, b string) int { // standard library first
		if sa, sb := isStd(a), isStd(b); sa != sb {
			return boolRank(sa) - boolRank(sb)
		}
		return strings.Compare(a, b)
	})
	for i, path := range paths {
		if i > 0 && isStd(paths[i-1]) && !isStd(path) {
			out.WriteByte('\n')
		}
		name := r.names[path]
		if name == r.pkgNames[path] && name == lastElem(path) {
			name = ""
		}
		fmt.Fprintf(&out, "\t%s %q\n", name, path)
	}
	out.WriteString(")\n\n")
	out.Write(body.Bytes())
	return out.Bytes()
}

// method renders one stub, or the comment saying why there is none.
func (r *renderer) method(w *bytes.Buffer, s *stub, px, ctxPkg string) {
	if s.skip != "" {
		fmt.Fprintf(w, "// %s is not generated: %s.\n", s.name, s.skip)
		return
	}
	var result, fn, typeArg string
	switch s.kind {
	case resultNone:
		result, fn, typeArg = "error", "Call", "any"
	case resultValue:
		typeArg = r.typeString(s.value)
		result, fn = "("+typeArg+", error)", "Call"
	case resultStream:
		typeArg = r.typeString(s.value)
		result, fn = r.names["iter"]+".Seq2["+typeArg+", error]", "Stream"
	}
	params := []string{"ctx " + ctxPkg + ".Context"}
	args := []string{"ctx", "p.Target()", strconv.Quote(s.name)}
	names := r.paramNames(s, px, typeArg)
	var pack string // a variadic stub's lines that put the arguments in one []any
	for i, name := range names {
		t := s.params[i].Type()
		if s.variadic && i == len(names)-1 {
			params = append(params, name+" ..."+r.typeString(t.(*types.Slice).Elem()))
			capacity := "len(" + name + ")"
			if len(names) > 1 {
				capacity = strconv.Itoa(len(names)-1) + "+" + capacity
			}
			pack = fmt.Sprintf("\targs := make([]any, 0, %s)\n", capacity)
			if len(names) > 1 {
				pack += fmt.Sprintf("\targs = append(args, %s)\n", strings.Join(names[:len(names)-1], ", "))
			}
			pack += fmt.Sprintf("\tfor _, arg := range %s {\n\t\targs = append(args, arg)\n\t}\n", name)
			args = append(args[:3], "args...")
			continue
		}
		params = append(params, name+" "+r.typeString(t))
		args = append(args, name)
	}

	fmt.Fprintf(w, "// %s calls [%s.%s] in the child process or on a worker.\n", s.name, r.typ, s.name)
	closes := s.name == "Close" && s.kind != resultStream
	if closes {
		fmt.Fprintf(w, "// Then it ends the child, as [%[1]s.Proxy.Close] does, so that\n// defer p.Close(ctx) leaves no child running; through %[2]sOn, close\n// the target itself.\n", px, r.proxyName)
	} else if slices.Contains(proxyMethods, s.name) {
		fmt.Fprintf(w, "// It hides [%[1]s.Proxy.%[2]s], which is still there as p.Proxy.%[2]s.\n", px, s.name)
	}
	fmt.Fprintf(w, "func (p *%s) %s(%s) %s {\n", r.proxyName, s.name, strings.Join(params, ", "), result)
	w.WriteString(pack)
	call := fmt.Sprintf("%s.%s[%s](%s)", px, fn, typeArg, strings.Join(args, ", "))
	if closes {
		errs := r.importName("errors", "errors")
		v, ret := "_", "err"
		if s.kind == resultValue {
			v, ret = "v", "v, err"
		}
		fmt.Fprintf(w, "\t%s, err := %s\n\tif p.Proxy != nil {\n\t\terr = %s.Join(err, p.Proxy.Close())\n\t}\n\treturn %s\n}\n", v, call, errs, ret)
		return
	}
	if s.kind == resultNone {
		fmt.Fprintf(w, "\t_, err := %s\n\treturn err\n}\n", call)
	} else {
		fmt.Fprintf(w, "\treturn %s\n}\n", call)
	}
}

var identRE = regexp.MustCompile(`[\p{L}_][\p{L}\p{Nd}_]*`)

// paramNames keeps the method's parameter names where it can. A parameter
// that is unnamed, blank, or would shadow a name the stub's body uses (ctx,
// p, err, any, procxy, or a package in the result type) is renamed a0, a1, …
// by its position among the arguments.
func (r *renderer) paramNames(s *stub, px, typeArg string) []string {
	reserved := map[string]bool{"ctx": true, "p": true, "err": true, "any": true, px: true}
	if s.variadic {
		reserved["args"], reserved["arg"] = true, true // the stub's body packs the arguments in these
	}
	for _, id := range identRE.FindAllString(typeArg, -1) {
		reserved[id] = true
	}
	names := make([]string, len(s.params))
	used := make(map[string]bool)
	for i, v := range s.params {
		if n := v.Name(); n != "" && n != "_" && !reserved[n] && !used[n] {
			names[i], used[n] = n, true
		}
	}
	for i := range names {
		for k := i; names[i] == ""; k++ {
			if n := "a" + strconv.Itoa(k); !reserved[n] && !used[n] {
				names[i], used[n] = n, true
			}
		}
	}
	return names
}

// isStd reports whether path looks like a standard library package: no dot
// in its first element.
func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func lastElem(path string) string { return path[strings.LastIndex(path, "/")+1:] }

// article is "a" or "an" for a type name, by its first letter.
func article(name string) string {
	if strings.ContainsRune("AEIOUaeiou", rune(name[0])) {
		return "an"
	}
	return "a"
}
