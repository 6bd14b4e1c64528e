package lambdafn

import (
	"github.com/dsync-export/dsync-export/pkg/workos"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestReaderCollectsEveryProblem(t *testing.T) {
	env := map[string]string{
		"N": "lots", "RATE": "-1", "B": "maybe", "D": "soon", "LOG": "chatty",
		"DEST": "s3:///prefix", "DEST2": "s3://b/a/../c", "WORKOS_BASE_URL": "api.workos.com", "L": " a, b  c,,",
	}
	r := New(func(k string) string { return env[k] })
	if n := r.Int("N", 7, 1, 10); n != 7 {
		t.Errorf("Int fallback %d", n)
	}
	r.Rate("RATE", 4)
	r.Bool("B", false)
	r.Duration("D", time.Second)
	if l := r.LogLevel("LOG"); l != slog.LevelInfo {
		t.Errorf("LogLevel fallback %v", l)
	}
	r.Destination("DEST", "set it")
	r.Destination("DEST2", "set it")
	r.Destination("UNSET_DEST", "set it to s3://bucket/prefix")
	w := r.WorkOS(true, "set the secret")
	if got := r.List("L"); strings.Join(got, "|") != "a|b|c" {
		t.Errorf("List %q", got)
	}
	err := r.Err("thing")
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"thing: invalid configuration", "N:", "RATE:", "B:", "D:", "LOG:", `DEST: "s3:///prefix" has no bucket: use s3://bucket/prefix`,
		`DEST2: "s3://b/a/../c" has an invalid prefix: use s3://bucket/some/prefix`,
		"UNSET_DEST: missing: set it to s3://bucket/prefix", "WORKOS_API_KEY_SECRET_ID: missing: set the secret", "WORKOS_BASE_URL:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if w.SecretField != "api_key" {
		t.Errorf("secret field default %q", w.SecretField)
	}
}

func TestReaderValues(t *testing.T) {
	env := map[string]string{"N": " 12 ", "RATE": "2.5", "B": "true", "D": "90s", "LOG": "DEBUG", "DEST": "s3://bkt/a/b/", "WORKOS_API_KEY": "sk_x"}
	r := New(func(k string) string { return env[k] })
	if r.Int("N", 0, 1, 100) != 12 || r.Rate("RATE", 0) != 2.5 || !r.Bool("B", false) || r.Duration("D", 0) != 90*time.Second || r.LogLevel("LOG") != slog.LevelDebug {
		t.Error("values not parsed")
	}
	if _, b, p := r.Destination("DEST", ""); b != "bkt" || p != "a/b" {
		t.Errorf("bucket %q prefix %q", b, p)
	}
	if w := r.WorkOS(true, ""); w.APIKey != "sk_x" || w.BaseURL != workos.DefaultBaseURL {
		t.Errorf("workos %+v", w)
	}
	if err := r.Err("x"); err != nil {
		t.Error(err)
	}
}
