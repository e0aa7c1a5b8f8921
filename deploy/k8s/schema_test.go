package k8s

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"
)

// The manifests are validated against the OpenAPI v3 spec of the
// Kubernetes release whose Go types (k8s.io/api v0.X.Y, Kubernetes v1.X.Y)
// decode them in manifests_test.go. The release publishes that spec in its
// module, k8s.io/kubernetes, which this repository does not depend on (it
// is third-party data, not code we build): `go mod download
// k8s.io/kubernetes@v1.X.Y` puts it in the module cache without touching
// go.mod, and .ci/run does so. The spec says which fields are required, of
// which type, and (with the enums, which the spec files leave out: see
// generatedEnums) which values a field allows: strict decoding into the Go
// types checks none of that but the types. The spec does not forbid unknown
// fields, which strict decoding does.

// kinds maps the kind of each manifest to the spec document and the schema
// that describe it.
var kinds = map[string]struct{ doc, schema string }{
	"Job":                   {"apis__batch__v1_openapi.json", "io.k8s.api.batch.v1.Job"},
	"PersistentVolumeClaim": {"api__v1_openapi.json", "io.k8s.api.core.v1.PersistentVolumeClaim"},
}

// kubernetesModule returns the folder of k8s.io/kubernetes, of the release
// of the k8s.io/api in go.mod, in the module cache. Without it the test
// skips, saying how to fetch it, unless UNIMOS_REQUIRE_K8S_SCHEMA=1 (set by
// .ci/run), which makes that a failure.
func kubernetesModule(t *testing.T) string {
	t.Helper()
	api := goOutput(t, "list", "-m", "-f", "{{.Version}}", "k8s.io/api")
	if !strings.HasPrefix(api, "v0.") {
		t.Fatalf("k8s.io/api version %q: want v0.X.Y (the types of Kubernetes v1.X.Y)", api)
	}
	release := "v1." + strings.TrimPrefix(api, "v0.")
	dir := filepath.Join(goOutput(t, "env", "GOMODCACHE"), "k8s.io", "kubernetes@"+release)
	if _, err := os.Stat(filepath.Join(dir, "api", "openapi-spec", "v3")); err != nil {
		msg := fmt.Sprintf("the OpenAPI spec of Kubernetes %s is not in the module cache (%v); fetch it with: go mod download k8s.io/kubernetes@%s", release, err, release)
		if os.Getenv("UNIMOS_REQUIRE_K8S_SCHEMA") == "1" {
			t.Fatal(msg + " (UNIMOS_REQUIRE_K8S_SCHEMA=1)")
		}
		t.Skip(msg)
	}
	return dir
}

// goOutput runs the go command with args and returns its output, trimmed.
func goOutput(t *testing.T, args ...string) string {
	t.Helper()
	out, err := goCommand(args...).Output()
	if err != nil {
		var stderr []byte
		if exit, ok := err.(*exec.ExitError); ok {
			stderr = exit.Stderr
		}
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// apiSchemas compiles the schema of each kind in kinds. The spec's
// schemas are OpenAPI 3.0 Schema Objects, a subset of JSON Schema Wright
// draft 00, whose validation keywords are draft 4's (a boolean
// exclusiveMaximum, no const): they are compiled as draft 4, and OpenAPI's
// own keywords (discriminator, x-kubernetes-*) are ignored.
func apiSchemas(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	module := kubernetesModule(t)
	enums, err := generatedEnums(filepath.Join(module, "pkg", "generated", "openapi", "zz_generated.openapi.go"))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	schemas := map[string]*jsonschema.Schema{}
	for kind, k := range kinds {
		file := filepath.Join(module, "api", "openapi-spec", "v3", k.doc)
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if err := addEnums(doc, enums); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		url := "file://" + filepath.ToSlash(file)
		if err := c.AddResource(url, doc); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if schemas[kind], err = c.Compile(url + "#/components/schemas/" + k.schema); err != nil {
			t.Fatalf("%s: schema %s: %v", file, k.schema, err)
		}
	}
	return schemas
}

// generatedEnums reads the allowed values of the API's enum fields (such as
// a Job's completionMode) from the OpenAPI definitions the release
// generates from its Go types, pkg/generated/openapi. The spec files are
// written by an API server started with OpenAPIEnums=false
// (hack/update-openapi-spec.sh), so they leave the enums out; a cluster's
// API server publishes them, and refuses other values. It returns, for
// each schema name, the enum of each field by its path in the schema
// ("properties/restartPolicy", "properties/accessModes/items").
func generatedEnums(file string) (map[string]map[string][]any, error) {
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("the OpenAPI definitions of the Kubernetes types: %v", err)
	}
	imports := map[string]string{} // local name: import path
	for _, spec := range f.Imports {
		p, _ := strconv.Unquote(spec.Path.Value)
		name := path.Base(p)
		if spec.Name != nil {
			name = spec.Name.Name
		}
		imports[name] = p
	}
	// GetOpenAPIDefinitions maps each type's schema name, written
	// pkg.Type{}.OpenAPIModelName(), to the function that builds its schema.
	schemaOf := map[string]string{} // function: schema name
	enums := map[string]map[string][]any{}
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "GetOpenAPIDefinitions" {
			continue
		}
		ast.Inspect(fn, func(n ast.Node) bool {
			kv, ok := n.(*ast.KeyValueExpr)
			if !ok {
				return true
			}
			if pkg, typ, ok := modelNameCall(kv.Key); ok {
				if build, ok := kv.Value.(*ast.CallExpr); ok {
					if fun, ok := build.Fun.(*ast.Ident); ok {
						schemaOf[fun.Name] = modelName(imports[pkg], typ)
					}
				}
			}
			return false
		})
	}
	if len(schemaOf) == 0 {
		return nil, fmt.Errorf("%s: no GetOpenAPIDefinitions with pkg.Type{}.OpenAPIModelName() keys: the generated code changed form", file)
	}
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || schemaOf[fn.Name.Name] == "" {
			continue
		}
		fields := map[string][]any{}
		collectEnums(fn.Body, "", fields)
		if len(fields) > 0 {
			enums[schemaOf[fn.Name.Name]] = fields
		}
	}
	return enums, nil
}

// modelNameCall reads pkg.Type{}.OpenAPIModelName() and returns pkg and
// Type.
func modelNameCall(e ast.Expr) (pkg, typ string, ok bool) {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return "", "", false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "OpenAPIModelName" {
		return "", "", false
	}
	lit, ok := sel.X.(*ast.CompositeLit)
	if !ok {
		return "", "", false
	}
	t, ok := lit.Type.(*ast.SelectorExpr)
	if !ok {
		return "", "", false
	}
	p, ok := t.X.(*ast.Ident)
	if !ok {
		return "", "", false
	}
	return p.Name, t.Sel.Name, true
}

// modelName is the schema name of the Go type typ of package pkg in the
// spec: the package path with its domain reversed and dots for slashes
// ("k8s.io/api/batch/v1", "Job": "io.k8s.api.batch.v1.Job").
func modelName(pkg, typ string) string {
	parts := strings.Split(pkg, "/")
	domain := strings.Split(parts[0], ".")
	slices.Reverse(domain)
	return strings.Join(append(append(domain, parts[1:]...), typ), ".")
}

// collectEnums walks a generated spec.Schema literal and records in
// fields, by path, each Enum it holds: a key of a Properties map adds
// "properties/<key>" to the path, Items "items", AdditionalProperties
// "additionalProperties"; other fields (SchemaProps, Schema) are
// transparent.
func collectEnums(n ast.Node, at string, fields map[string][]any) {
	ast.Inspect(n, func(n ast.Node) bool {
		kv, ok := n.(*ast.KeyValueExpr)
		if !ok {
			return true
		}
		key, _ := kv.Key.(*ast.Ident)
		switch {
		case key == nil:
			return true
		case key.Name == "Enum":
			var values []any
			for _, v := range elements(kv.Value) {
				if s, ok := stringLit(v); ok {
					values = append(values, s)
				}
			}
			fields[strings.TrimPrefix(at, "/")] = values
		case key.Name == "Properties":
			for _, p := range elements(kv.Value) {
				if p, ok := p.(*ast.KeyValueExpr); ok {
					if name, ok := stringLit(p.Key); ok {
						collectEnums(p.Value, at+"/properties/"+name, fields)
					}
				}
			}
		case key.Name == "Items":
			collectEnums(kv.Value, at+"/items", fields)
		case key.Name == "AdditionalProperties":
			collectEnums(kv.Value, at+"/additionalProperties", fields)
		default:
			return true
		}
		return false
	})
}

// elements returns the elements of a composite literal, or none.
func elements(e ast.Expr) []ast.Expr {
	if lit, ok := e.(*ast.CompositeLit); ok {
		return lit.Elts
	}
	return nil
}

// stringLit returns the value of a string literal.
func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// addEnums puts the enums into the schemas of the spec document doc that
// have them.
func addEnums(doc any, enums map[string]map[string][]any) error {
	components, _ := doc.(map[string]any)["components"].(map[string]any)
	schemas, _ := components["schemas"].(map[string]any)
	if schemas == nil {
		return fmt.Errorf("no components/schemas")
	}
	for name, fields := range enums {
		schema, ok := schemas[name]
		if !ok {
			continue // a type of another API group
		}
		for at, values := range fields {
			field, _ := schema.(map[string]any)
			for _, step := range strings.Split(at, "/") {
				field, _ = field[step].(map[string]any)
			}
			if field == nil {
				return fmt.Errorf("schema %s has no %s for the generated enum %v", name, at, values)
			}
			field["enum"] = values
		}
	}
	return nil
}

// validate checks the manifest raw (YAML) against the schema of its kind.
func validate(schemas map[string]*jsonschema.Schema, raw []byte) error {
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return err
	}
	obj, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return err
	}
	kind, _ := obj.(map[string]any)["kind"].(string)
	schema, ok := schemas[kind]
	if !ok {
		return fmt.Errorf("kind %q; want a Job or a PersistentVolumeClaim", kind)
	}
	return schema.Validate(obj)
}

// TestManifestsMatchAPISchema validates every manifest against the
// Kubernetes API's schema, and shows the validation refuses what the
// API server would: each case breaks one field of a valid manifest.
func TestManifestsMatchAPISchema(t *testing.T) {
	schemas := apiSchemas(t)
	manifests := map[string][]byte{} // file: the manifest as JSON
	for _, file := range []string{"pvc.yaml", "extract-job.yaml", "merge-job.yaml", "bench-job.yaml", "report-job.yaml"} {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(schemas, raw); err != nil {
			t.Fatalf("%s: not valid against the Kubernetes API schema: %v", file, err)
		}
		if manifests[file], err = yaml.YAMLToJSON(raw); err != nil {
			t.Fatal(err)
		}
	}

	// object returns the object at the JSON pointer at in m.
	object := func(m map[string]any, at string) map[string]any {
		var v any = m
		for _, step := range strings.Split(strings.TrimPrefix(at, "/"), "/") {
			if list, ok := v.([]any); ok {
				i, _ := strconv.Atoi(step)
				v = list[i]
			} else {
				v = v.(map[string]any)[step]
			}
		}
		return v.(map[string]any)
	}
	for _, c := range []struct {
		name     string
		file     string
		change   func(m map[string]any) // breaks one field of the manifest
		at       string                 // where the refusal must point: the field, or the object missing it
		mentions string                 // what it must name: the missing field, an allowed value or the type
	}{
		{"container without a name", "extract-job.yaml",
			func(m map[string]any) { delete(object(m, "/spec/template/spec/containers/0"), "name") },
			"/spec/template/spec/containers/0", "name"},
		{"Job without a template", "merge-job.yaml",
			func(m map[string]any) { delete(object(m, "/spec"), "template") },
			"/spec", "template"},
		{"pod without containers", "bench-job.yaml",
			func(m map[string]any) { delete(object(m, "/spec/template/spec"), "containers") },
			"/spec/template/spec", "containers"},
		{"completionMode misspelt", "extract-job.yaml",
			func(m map[string]any) { object(m, "/spec")["completionMode"] = "Indexd" },
			"/spec/completionMode", "Indexed"},
		{"unknown restartPolicy", "report-job.yaml",
			func(m map[string]any) { object(m, "/spec/template/spec")["restartPolicy"] = "Sometimes" },
			"/spec/template/spec/restartPolicy", "Never"},
		{"completions as a string", "bench-job.yaml",
			func(m map[string]any) { object(m, "/spec")["completions"] = "4" },
			"/spec/completions", "integer"},
		{"environment variable without a name", "extract-job.yaml",
			func(m map[string]any) { delete(object(m, "/spec/template/spec/containers/0/env/1"), "name") },
			"/spec/template/spec/containers/0/env/1", "name"},
		{"claim with an unknown access mode", "pvc.yaml",
			func(m map[string]any) { object(m, "/spec")["accessModes"] = []any{"ReadWriteEverywhere"} },
			"/spec/accessModes/0", "ReadWriteMany"},
		{"claim's storage request not a quantity", "pvc.yaml",
			func(m map[string]any) { object(m, "/spec/resources/requests")["storage"] = true },
			"/spec/resources/requests/storage", "string"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(manifests[c.file], &m); err != nil {
				t.Fatal(err)
			}
			c.change(m)
			js, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			err = validate(schemas, js)
			if err == nil {
				t.Fatalf("%s: accepted", c.file)
			}
			if msg := err.Error(); !strings.Contains(msg, "'"+c.at+"'") || !strings.Contains(msg, c.mentions) {
				t.Errorf("%s: the refusal does not name %s at %s:\n%v", c.file, c.mentions, c.at, err)
			}
		})
	}
}
