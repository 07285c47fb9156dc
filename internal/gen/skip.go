package gen

import (
	"context"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"sync"
)

// skipImporter imports context and iter from source once for Skip.
var skipImporter struct {
	once sync.Once
	mu   sync.Mutex
	imp  types.Importer
}

// Skip says why procxy gen would write no stub for a method with the
// signature sig (Go source after the method's name, such as
// "(context.Context, int) (int, error)"), or "" if it would write one.
// The signature may use the packages context and iter. It lets a test run
// one table of method shapes through both procxy gen and the runtime.
func Skip(_ context.Context, sig string) (string, error) {
	src := "package p\n\nimport (\n\t\"context\"\n\t\"iter\"\n)\n\nvar _ context.Context\nvar _ iter.Seq[int]\n\ntype T struct{}\n\nfunc (T) M" + sig + " { panic(0) }\n"
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, 0)
	if err != nil {
		return "", err
	}
	skipImporter.once.Do(func() {
		skipImporter.imp = importer.ForCompiler(token.NewFileSet(), "source", nil)
	})
	skipImporter.mu.Lock() // the importer is not safe for concurrent use
	defer skipImporter.mu.Unlock()
	conf := types.Config{Importer: skipImporter.imp}
	pkg, err := conf.Check("p", fset, []*ast.File{f}, nil)
	if err != nil {
		return "", fmt.Errorf("signature %s: %w", sig, err)
	}
	obj, _, _ := types.LookupFieldOrMethod(pkg.Scope().Lookup("T").Type(), false, pkg, "M")
	fn, ok := obj.(*types.Func)
	if !ok {
		return "", fmt.Errorf("signature %s: no method", sig)
	}
	return analyze(fn, func(t types.Type) string { return types.TypeString(t, types.RelativeTo(pkg)) }).skip, nil
}
