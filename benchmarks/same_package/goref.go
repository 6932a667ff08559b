// goref: the reference for bench_same_package.py's Go numbers. For every folder under the
// given roots, the .go files that go/build's default context (this GOOS/GOARCH, no tags)
// selects are grouped by package clause and type-checked with go/types; every identifier
// that go/types resolves (Info.Uses) to a package-level object (its Parent is the package
// scope) declared in another file of the same package is an edge user -> declarer.
// Imports are replaced by empty packages (offline; the package's own names still resolve)
// and type errors are ignored.
//
//	go run goref.go ROOT... > edges.jsonl
//
// Output, one JSON object per package: {"dir", "package", "files", "edges": [[user, decl,
// name]...]}, paths relative to their ROOT.
package main

import (
	"encoding/json"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"go/types"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

type fakeImporter struct{ pkgs map[string]*types.Package }

func (f fakeImporter) Import(path string) (*types.Package, error) {
	if p, ok := f.pkgs[path]; ok {
		return p, nil
	}
	name := path[strings.LastIndex(path, "/")+1:]
	if i := strings.Index(name, ".v"); i > 0 {
		name = name[:i] // gopkg.in/yaml.v3 -> yaml
	}
	name = strings.TrimPrefix(strings.ReplaceAll(name, "-", ""), "go")
	if name == "" {
		name = "x"
	}
	p := types.NewPackage(path, name)
	p.MarkComplete()
	f.pkgs[path] = p
	return p, nil
}

type result struct {
	Dir     string      `json:"dir"`
	Package string      `json:"package"`
	Files   []string    `json:"files"`
	Edges   [][3]string `json:"edges"`
}

func main() {
	enc := json.NewEncoder(os.Stdout)
	for _, root := range os.Args[1:] {
		dirs := map[string][]string{}
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".go") {
				if ok, _ := build.Default.MatchFile(filepath.Dir(p), d.Name()); ok {
					dirs[filepath.Dir(p)] = append(dirs[filepath.Dir(p)], p)
				}
			}
			return nil
		})
		keys := make([]string, 0, len(dirs))
		for k := range dirs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, dir := range keys {
			fset := token.NewFileSet()
			groups := map[string][]*ast.File{}
			for _, p := range dirs[dir] {
				f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
				if err != nil || f.Name == nil {
					continue
				}
				groups[f.Name.Name] = append(groups[f.Name.Name], f)
			}
			names := make([]string, 0, len(groups))
			for k := range groups {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, name := range names {
				files := groups[name]
				info := &types.Info{Uses: map[*ast.Ident]types.Object{}}
				conf := types.Config{Importer: fakeImporter{map[string]*types.Package{}},
					Error: func(error) {}, FakeImportC: true}
				pkg, _ := conf.Check(name, fset, files, info)
				rel := func(p string) string { r, _ := filepath.Rel(root, p); return filepath.ToSlash(r) }
				seen := map[[3]string]bool{}
				res := result{Dir: rel(dir), Package: name, Edges: [][3]string{}}
				for _, f := range files {
					res.Files = append(res.Files, rel(fset.File(f.Pos()).Name()))
				}
				for id, obj := range info.Uses {
					if obj == nil || pkg == nil || obj.Parent() != pkg.Scope() || !obj.Pos().IsValid() {
						continue
					}
					user := rel(fset.File(id.Pos()).Name())
					decl := rel(fset.File(obj.Pos()).Name())
					if user != decl {
						seen[[3]string{user, decl, obj.Name()}] = true
					}
				}
				for e := range seen {
					res.Edges = append(res.Edges, e)
				}
				sort.Slice(res.Edges, func(i, j int) bool {
					a, b := res.Edges[i], res.Edges[j]
					return a[0]+"\x00"+a[1]+"\x00"+a[2] < b[0]+"\x00"+b[1]+"\x00"+b[2]
				})
				sort.Strings(res.Files)
				enc.Encode(res)
			}
		}
	}
}
