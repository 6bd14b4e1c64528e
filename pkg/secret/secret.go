package secret

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
)

// DefaultTTL is how long a Loader reuses a fetched key unless WithTTL says otherwise.
const DefaultTTL = time.Hour

// DefaultJSONField is the field read from a JSON secret when NewLoader gets "".
const DefaultJSONField = "api_key"

// GetSecretValueAPI is the part of *secretsmanager.Client a Loader uses.
type GetSecretValueAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Loader reads the WorkOS API key from AWS Secrets Manager and caches it, so
// warm Lambda invocations reuse it without calling Secrets Manager. It is safe
// for concurrent use; concurrent callers share one fetch.
type Loader struct {
	api      GetSecretValueAPI
	secretID string
	field    string
	ttl      time.Duration
	now      func() time.Time

	mu      sync.Mutex
	key     string
	fetched time.Time
}

// Option configures a Loader.
type Option func(*Loader)

// WithTTL sets how long a fetched key is reused before it is read again;
// 0 (or a negative value) means forever, until Invalidate. Default DefaultTTL.
func WithTTL(d time.Duration) Option {
	return func(l *Loader) { l.ttl = max(d, 0) }
}

// NewLoader returns a Loader for the secret secretID (a name or an ARN). The
// secret holds either the plain key ("sk_…") or a JSON object with the key in
// jsonField (DefaultJSONField when empty). Nothing is fetched until APIKey.
func NewLoader(api GetSecretValueAPI, secretID, jsonField string, opts ...Option) *Loader {
	if jsonField == "" {
		jsonField = DefaultJSONField
	}
	l := &Loader{api: api, secretID: secretID, field: jsonField, ttl: DefaultTTL, now: time.Now}
	for _, opt := range opts {
		opt(l)
	}
	return l
}

// APIKey returns the API key, from the cache while it is fresh, else from
// Secrets Manager. Errors name the secret (never its value) and say how to fix
// the problem; failures are not cached.
func (l *Loader) APIKey(ctx context.Context) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.key != "" && (l.ttl == 0 || l.now().Sub(l.fetched) < l.ttl) {
		return l.key, nil
	}
	key, err := l.fetch(ctx)
	if err != nil {
		return "", err
	}
	l.key, l.fetched = key, l.now()
	return key, nil
}

// Invalidate drops the cached key so the next APIKey reads Secrets Manager
// again. Call it after WorkOS answers 401, in case the secret was rotated.
func (l *Loader) Invalidate() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.key, l.fetched = "", time.Time{}
}

func (l *Loader) fetch(ctx context.Context) (string, error) {
	if l.secretID == "" {
		return "", errors.New("secret: no secret ID configured: set it to the name or ARN of the Secrets Manager secret holding the WorkOS API key")
	}
	if l.api == nil {
		return "", errors.New("secret: no Secrets Manager client: pass one to secret.NewLoader")
	}
	out, err := l.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(l.secretID)})
	if err != nil {
		return "", l.describe(err)
	}
	if out.SecretString == nil {
		if len(out.SecretBinary) > 0 {
			return "", fmt.Errorf("secret: secret %q holds SecretBinary, not a string: store the key as a string with `aws secretsmanager put-secret-value --secret-id %s --secret-string '{\"%s\":\"sk_...\"}'`",
				l.secretID, l.secretID, l.field)
		}
		return "", l.emptyError()
	}
	return l.parse(*out.SecretString)
}

// parse extracts the key from a secret string: a JSON object with l.field, or
// the plain key.
func (l *Loader) parse(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", l.emptyError()
	}
	if !strings.HasPrefix(s, "{") {
		return s, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &fields); err != nil {
		// json's syntax errors carry an offset, never the input, so this
		// cannot leak the value.
		return "", fmt.Errorf("secret: secret %q starts with '{' but is not a JSON object (%v): store either the plain key or {\"%s\":\"sk_...\"}",
			l.secretID, err, l.field)
	}
	raw, ok := fields[l.field]
	if !ok {
		names := make([]string, 0, len(fields))
		for k := range fields {
			names = append(names, fmt.Sprintf("%q", k))
		}
		slices.Sort(names)
		return "", fmt.Errorf("secret: JSON secret %q has no field %q (fields present: %s): add it, or configure the field name that holds the key",
			l.secretID, l.field, strings.Join(names, ", "))
	}
	var key string
	if err := json.Unmarshal(raw, &key); err != nil {
		return "", fmt.Errorf("secret: field %q of secret %q is not a string: store the key as a JSON string", l.field, l.secretID)
	}
	if key = strings.TrimSpace(key); key == "" {
		return "", fmt.Errorf("secret: field %q of secret %q is empty: put the WorkOS API key (sk_...) in it", l.field, l.secretID)
	}
	return key, nil
}

func (l *Loader) emptyError() error {
	return fmt.Errorf("secret: secret %q is empty: put the WorkOS API key in it with `aws secretsmanager put-secret-value --secret-id %s --secret-string '{\"%s\":\"sk_...\"}'`",
		l.secretID, l.secretID, l.field)
}

// describe turns a GetSecretValue error into one that says what to do.
func (l *Loader) describe(err error) error {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return fmt.Errorf("secret: read secret %q from Secrets Manager: %w", l.secretID, err)
	}
	switch apiErr.ErrorCode() {
	case "ResourceNotFoundException":
		return fmt.Errorf("secret: secret %q not found in Secrets Manager: create it with `aws secretsmanager create-secret --name %s --secret-string '{\"%s\":\"sk_...\"}'`, or fix the configured secret ID (name or full ARN, same region as the function): %w",
			l.secretID, l.secretID, l.field, err)
	case "AccessDeniedException":
		return fmt.Errorf("secret: access denied reading secret %q: grant secretsmanager:GetSecretValue on the secret's ARN to the function's role (and kms:Decrypt if the secret uses a customer managed KMS key): %w",
			l.secretID, err)
	case "DecryptionFailure":
		return fmt.Errorf("secret: Secrets Manager cannot decrypt secret %q: grant kms:Decrypt on the secret's KMS key to the function's role: %w", l.secretID, err)
	case "InvalidRequestException":
		return fmt.Errorf("secret: secret %q cannot be read (is it scheduled for deletion? `aws secretsmanager restore-secret --secret-id %s`): %w", l.secretID, l.secretID, err)
	case "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException", "IncompleteSignatureException", "MissingAuthenticationTokenException":
		return fmt.Errorf("secret: Secrets Manager rejected the AWS credentials while reading secret %q: check the function's role or the AWS_* credentials: %w", l.secretID, err)
	}
	return fmt.Errorf("secret: read secret %q from Secrets Manager: %w", l.secretID, err)
}

// Source yields the WorkOS API key. *Loader reads it from Secrets Manager;
// Static is a fixed key.
type Source interface {
	APIKey(ctx context.Context) (string, error)
	// Invalidate drops a cached key, after WorkOS rejected it (401).
	Invalidate()
}

// Static is a fixed API key (WORKOS_API_KEY, for local runs).
type Static string

// APIKey returns the key.
func (k Static) APIKey(context.Context) (string, error) { return string(k), nil }

// Invalidate does nothing: a fixed key cannot be re-read.
func (Static) Invalidate() {}
