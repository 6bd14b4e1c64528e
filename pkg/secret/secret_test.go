package secret

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/dsync-export/dsync-export/internal/testenv/awstest"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestAPIKeyFormats(t *testing.T) {
	sm := awstest.StartSecretsManager(t, map[string]string{
		"plain":        "sk_test_plain",
		"plain-nl":     "sk_test_newline\n",
		"json":         `{"api_key":"sk_test_json","client_id":"client_123"}`,
		"json-custom":  ` {"workos_key": " sk_test_custom "}`,
		"not-sk":       "some-other-token",
		"json-only-id": `{"client_id":"client_123"}`,
	})
	c := sm.Client(t)
	for _, tc := range []struct {
		id, field, want string
	}{
		{"plain", "", "sk_test_plain"},
		{"plain-nl", "", "sk_test_newline"},
		{"plain", "workos_key", "sk_test_plain"}, // a plain secret ignores the field
		{"json", "", "sk_test_json"},
		{"json", "api_key", "sk_test_json"},
		{sm.ARN("json"), "", "sk_test_json"},
		{"json-custom", "workos_key", "sk_test_custom"},
		{"not-sk", "", "some-other-token"}, // accepted: WorkOS may change its key format
	} {
		got, err := NewLoader(c, tc.id, tc.field).APIKey(ctx(t))
		if err != nil || got != tc.want {
			t.Errorf("APIKey(%s, field %q) = %q, %v; want %q", tc.id, tc.field, got, err, tc.want)
		}
	}
}

func TestAPIKeyErrors(t *testing.T) {
	sm := awstest.StartSecretsManager(t, map[string]string{
		"empty":       "  ",
		"no-field":    `{"client_id":"client_secretvalue","other":"sk_hidden"}`,
		"empty-field": `{"api_key":""}`,
		"number":      `{"api_key":42}`,
		"bad-json":    `{"api_key":"sk_leak`,
	})
	sm.Deny("denied")
	sm.SetBinary("binary", []byte("sk_binary"))
	c := sm.Client(t)

	for _, tc := range []struct {
		id      string
		want    []string // substrings of the error
		notWant []string // secret values that must not leak
	}{
		{"missing", []string{`secret: secret "missing" not found`, "aws secretsmanager create-secret --name missing"}, nil},
		{"denied", []string{`access denied reading secret "denied"`, "secretsmanager:GetSecretValue"}, nil},
		{"empty", []string{`secret "empty" is empty`, "put-secret-value"}, nil},
		{"no-field", []string{`has no field "api_key"`, `fields present: "client_id", "other"`}, []string{"client_secretvalue", "sk_hidden"}},
		{"empty-field", []string{`field "api_key" of secret "empty-field" is empty`}, nil},
		{"number", []string{`field "api_key" of secret "number" is not a string`}, []string{"42"}},
		{"bad-json", []string{`secret "bad-json" starts with '{' but is not a JSON object`}, []string{"sk_leak"}},
		{"binary", []string{`secret "binary" holds SecretBinary`, "--secret-string"}, []string{"sk_binary"}},
	} {
		got, err := NewLoader(c, tc.id, "").APIKey(ctx(t))
		if err == nil {
			t.Errorf("APIKey(%s) = %q, want an error", tc.id, got)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("APIKey(%s) error %q does not contain %q", tc.id, err, w)
			}
		}
		for _, nw := range tc.notWant {
			if strings.Contains(err.Error(), nw) {
				t.Errorf("APIKey(%s) error %q leaks %q", tc.id, err, nw)
			}
		}
	}

	// The SDK's typed error stays reachable.
	_, err := NewLoader(c, "missing", "").APIKey(ctx(t))
	var notFound *types.ResourceNotFoundException
	if !errors.As(err, &notFound) {
		t.Errorf("errors.As(%v, *ResourceNotFoundException) = false", err)
	}

	if _, err := NewLoader(c, "", "").APIKey(ctx(t)); err == nil || !strings.Contains(err.Error(), "no secret ID configured") {
		t.Errorf("empty secret ID: err = %v", err)
	}
}

func TestAPIKeyCachesAcrossInvocations(t *testing.T) {
	sm := awstest.StartSecretsManager(t, map[string]string{"k": `{"api_key":"sk_v1"}`})
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLoader(sm.Client(t), "k", "")
	l.now = func() time.Time { return clock }

	for range 3 {
		if got, err := l.APIKey(ctx(t)); err != nil || got != "sk_v1" {
			t.Fatalf("APIKey = %q, %v", got, err)
		}
	}
	if sm.Calls() != 1 {
		t.Fatalf("3 warm calls made %d GetSecretValue calls, want 1", sm.Calls())
	}

	// Rotation is not seen until the TTL passes...
	sm.Set("k", `{"api_key":"sk_v2"}`)
	clock = clock.Add(DefaultTTL - time.Second)
	if got, _ := l.APIKey(ctx(t)); got != "sk_v1" || sm.Calls() != 1 {
		t.Errorf("before TTL: %q after %d calls, want cached sk_v1 after 1", got, sm.Calls())
	}
	clock = clock.Add(time.Second)
	if got, _ := l.APIKey(ctx(t)); got != "sk_v2" || sm.Calls() != 2 {
		t.Errorf("at TTL: %q after %d calls, want sk_v2 after 2", got, sm.Calls())
	}

	// ...or until Invalidate (the 401 path).
	sm.Set("k", `{"api_key":"sk_v3"}`)
	l.Invalidate()
	if got, _ := l.APIKey(ctx(t)); got != "sk_v3" || sm.Calls() != 3 {
		t.Errorf("after Invalidate: %q after %d calls, want sk_v3 after 3", got, sm.Calls())
	}
}

func TestAPIKeyTTLZeroIsForever(t *testing.T) {
	sm := awstest.StartSecretsManager(t, map[string]string{"k": "sk_v1"})
	clock := time.Now()
	l := NewLoader(sm.Client(t), "k", "", WithTTL(0))
	l.now = func() time.Time { return clock }
	l.APIKey(ctx(t))
	clock = clock.Add(1000 * time.Hour)
	if got, err := l.APIKey(ctx(t)); got != "sk_v1" || err != nil || sm.Calls() != 1 {
		t.Errorf("TTL 0 after 1000h: %q, %v, %d calls; want cached sk_v1 and 1 call", got, err, sm.Calls())
	}
}

func TestAPIKeyErrorsAreNotCached(t *testing.T) {
	sm := awstest.StartSecretsManager(t, nil)
	l := NewLoader(sm.Client(t), "later", "")
	if _, err := l.APIKey(ctx(t)); err == nil {
		t.Fatal("APIKey of a missing secret succeeded")
	}
	sm.Set("later", "sk_now")
	if got, err := l.APIKey(ctx(t)); err != nil || got != "sk_now" {
		t.Errorf("after creating the secret: %q, %v", got, err)
	}
}

// countingAPI is a hand-written fake that blocks the first fetch until
// released, to show concurrent callers share it.
type countingAPI struct {
	mu    sync.Mutex
	calls int
	gate  chan struct{}
}

func (c *countingAPI) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	<-c.gate
	s := "sk_concurrent"
	return &secretsmanager.GetSecretValueOutput{SecretString: &s}, nil
}

func TestAPIKeyConcurrentCallersShareOneFetch(t *testing.T) {
	api := &countingAPI{gate: make(chan struct{})}
	l := NewLoader(api, "k", "")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			if got, err := l.APIKey(context.Background()); err != nil || got != "sk_concurrent" {
				errs <- errors.New("bad result " + got)
			}
		})
	}
	close(api.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if api.calls != 1 {
		t.Errorf("8 concurrent callers made %d fetches, want 1", api.calls)
	}
}
