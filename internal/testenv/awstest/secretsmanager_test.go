package awstest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/dsync-export/dsync-export/internal/testenv/awstest"
)

func getSecret(t *testing.T, c *secretsmanager.Client, id string) (*secretsmanager.GetSecretValueOutput, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
}

func TestSecretsManagerGetSecretValue(t *testing.T) {
	sm := awstest.StartSecretsManager(t, map[string]string{"workos/api-key": `{"api_key":"sk_test_123"}`})
	c := sm.Client(t)
	start := time.Now()

	for _, id := range []string{"workos/api-key", sm.ARN("workos/api-key")} {
		out, err := getSecret(t, c, id)
		if err != nil {
			t.Fatalf("GetSecretValue(%s): %v", id, err)
		}
		if got := aws.ToString(out.SecretString); got != `{"api_key":"sk_test_123"}` {
			t.Errorf("SecretString = %q", got)
		}
		if aws.ToString(out.Name) != "workos/api-key" || aws.ToString(out.ARN) != sm.ARN("workos/api-key") {
			t.Errorf("Name, ARN = %q, %q", aws.ToString(out.Name), aws.ToString(out.ARN))
		}
		if len(out.VersionStages) != 1 || out.VersionStages[0] != "AWSCURRENT" || aws.ToString(out.VersionId) == "" {
			t.Errorf("VersionStages, VersionId = %v, %q", out.VersionStages, aws.ToString(out.VersionId))
		}
		if out.CreatedDate == nil || out.CreatedDate.Before(start.Add(-time.Minute)) || out.CreatedDate.After(time.Now().Add(time.Minute)) {
			t.Errorf("CreatedDate = %v, want about now", out.CreatedDate)
		}
	}
	if !strings.HasPrefix(sm.ARN("workos/api-key"), "arn:aws:secretsmanager:us-east-1:123456789012:secret:workos/api-key-") {
		t.Errorf("ARN = %s", sm.ARN("workos/api-key"))
	}
	if got := sm.Calls(); got != 2 {
		t.Errorf("Calls() = %d, want 2", got)
	}

	// Rotation yields a new version and value.
	before, _ := getSecret(t, c, "workos/api-key")
	sm.Set("workos/api-key", "sk_test_rotated")
	after, err := getSecret(t, c, "workos/api-key")
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(after.SecretString) != "sk_test_rotated" || aws.ToString(after.VersionId) == aws.ToString(before.VersionId) {
		t.Errorf("after rotation: %q version %q (was %q)", aws.ToString(after.SecretString), aws.ToString(after.VersionId), aws.ToString(before.VersionId))
	}
}

func TestSecretsManagerErrors(t *testing.T) {
	sm := awstest.StartSecretsManager(t, map[string]string{"ok": "sk_x"})
	sm.Deny("locked")
	sm.SetBinary("bin", []byte{0, 1, 2})
	c := sm.Client(t)

	_, err := getSecret(t, c, "missing")
	var notFound *types.ResourceNotFoundException
	if !errors.As(err, &notFound) || notFound.ErrorMessage() != "Secrets Manager can't find the specified secret." {
		t.Errorf("missing secret: err = %v, want ResourceNotFoundException", err)
	}

	_, err = getSecret(t, c, "locked")
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "AccessDeniedException" ||
		!strings.Contains(apiErr.ErrorMessage(), "secretsmanager:GetSecretValue") {
		t.Errorf("denied secret: err = %v, want AccessDeniedException", err)
	}

	out, err := getSecret(t, c, "bin")
	if err != nil {
		t.Fatal(err)
	}
	if out.SecretString != nil || !bytes.Equal(out.SecretBinary, []byte{0, 1, 2}) {
		t.Errorf("binary secret: SecretString %v, SecretBinary %v", out.SecretString, out.SecretBinary)
	}
}

func TestSecretsManagerChecksSignatures(t *testing.T) {
	sm := awstest.StartSecretsManager(t, map[string]string{"s": "sk_x"})
	ak, sk := sm.Credentials()

	for name, tc := range map[string]struct {
		creds aws.Credentials
		code  string
	}{
		"wrong secret key": {aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk + "x"}, "InvalidSignatureException"},
		"wrong access key": {aws.Credentials{AccessKeyID: "AKIAOTHER", SecretAccessKey: sk}, "UnrecognizedClientException"},
	} {
		t.Run(name, func(t *testing.T) {
			c := secretsmanager.New(secretsmanager.Options{
				Region:           sm.Region,
				Credentials:      credentials.StaticCredentialsProvider{Value: tc.creds},
				BaseEndpoint:     aws.String(sm.Endpoint),
				RetryMaxAttempts: 1,
			})
			_, err := getSecret(t, c, "s")
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tc.code {
				t.Errorf("err = %v, want %s", err, tc.code)
			}
		})
	}

	// A request without any signature: raw HTTP.
	req, _ := http.NewRequest(http.MethodPost, sm.Endpoint+"/", strings.NewReader(`{"SecretId":"s"}`))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e struct {
		Type string `json:"__type"`
	}
	_ = json.Unmarshal(body, &e)
	if resp.StatusCode < 400 || e.Type != "MissingAuthenticationTokenException" || resp.Header.Get("X-Amzn-ErrorType") != e.Type {
		t.Errorf("unsigned request: %d %s (X-Amzn-ErrorType %q)", resp.StatusCode, body, resp.Header.Get("X-Amzn-ErrorType"))
	}
	if got := sm.AuthFailures(); got != 3 {
		t.Errorf("AuthFailures() = %d, want 3", got)
	}

	// A correctly signed request whose body was changed after signing.
	c := sm.Client(t)
	_, err = c.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("s")},
		func(o *secretsmanager.Options) { o.HTTPClient = tamperingClient{} })
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidSignatureException" {
		t.Errorf("tampered body: err = %v, want InvalidSignatureException", err)
	}
}

// tamperingClient rewrites the request body after the SDK signed it.
type tamperingClient struct{}

func (tamperingClient) Do(r *http.Request) (*http.Response, error) {
	body := `{"SecretId":"t"}` // same length as {"SecretId":"s"}
	r.Body = io.NopCloser(strings.NewReader(body))
	r.ContentLength = int64(len(body))
	return http.DefaultClient.Do(r)
}

func TestSecretsManagerSharedCredentialsAndEnv(t *testing.T) {
	sm := awstest.StartSecretsManager(t, map[string]string{"s": "sk_env"})
	sm.SetCredentials("AKIASHARED0000000000", "shared-secret")
	env := sm.Env()
	if env["AWS_ACCESS_KEY_ID"] != "AKIASHARED0000000000" || env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] != sm.Endpoint {
		t.Fatalf("Env() = %v", env)
	}
	sm.Setenv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("s")})
	if err != nil {
		t.Fatalf("GetSecretValue through the environment: %v", err)
	}
	if aws.ToString(out.SecretString) != "sk_env" {
		t.Errorf("SecretString = %q", aws.ToString(out.SecretString))
	}
}
