package awstest

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// AccountID is the AWS account the fakes pretend to run in.
const AccountID = "123456789012"

// SecretsManager is a fake AWS Secrets Manager that speaks the real JSON 1.1
// wire protocol for GetSecretValue and verifies SigV4 signatures. Secrets are
// addressable by name or by full ARN (see ARN).
type SecretsManager struct {
	// Endpoint is the base URL, "http://127.0.0.1:<port>".
	Endpoint string
	// Region is the region clients must sign for (Region).
	Region string

	mu        sync.Mutex
	accessKey string
	secretKey string
	secrets   map[string]*fakeSecret // by name
	calls     int
	authFails int
}

type fakeSecret struct {
	str     *string
	binary  []byte
	version int
	denied  bool
	created time.Time
}

// StartSecretsManager starts the fake on 127.0.0.1 with the given secrets
// (name → SecretString) and random credentials; it stops when the test ends.
func StartSecretsManager(t testing.TB, secrets map[string]string) *SecretsManager {
	t.Helper()
	sm := &SecretsManager{
		Region:    Region,
		accessKey: "AKTEST" + randomHex(7),
		secretKey: randomHex(20),
		secrets:   make(map[string]*fakeSecret),
	}
	for name, v := range secrets {
		sm.Set(name, v)
	}
	srv := httptest.NewServer(http.HandlerFunc(sm.serveHTTP)) // httptest binds 127.0.0.1
	t.Cleanup(srv.Close)
	sm.Endpoint = srv.URL
	return sm
}

// Credentials returns the access key and secret key the fake accepts.
func (sm *SecretsManager) Credentials() (accessKey, secretKey string) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	return sm.accessKey, sm.secretKey
}

// SetCredentials makes the fake accept (only) these credentials, e.g. an
// S3Server's, so one set of AWS_* variables serves both fakes.
func (sm *SecretsManager) SetCredentials(accessKey, secretKey string) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	sm.accessKey, sm.secretKey = accessKey, secretKey
}

// Set creates the secret name with SecretString value, or rotates it to a new
// version if it exists (clearing any denial).
func (sm *SecretsManager) Set(name, value string) {
	sm.put(name, &value, nil)
}

// SetBinary stores a SecretBinary-only secret (no SecretString).
func (sm *SecretsManager) SetBinary(name string, value []byte) {
	sm.put(name, nil, append([]byte(nil), value...))
}

func (sm *SecretsManager) put(name string, str *string, binary []byte) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	s := sm.secrets[name]
	if s == nil {
		s = &fakeSecret{created: time.Now().Truncate(time.Millisecond)}
		sm.secrets[name] = s
	}
	s.str, s.binary, s.denied = str, binary, false
	s.version++
}

// Deny makes GetSecretValue on name fail with AccessDeniedException, as when
// the caller's role lacks secretsmanager:GetSecretValue on it. The secret need
// not exist.
func (sm *SecretsManager) Deny(name string) {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	s := sm.secrets[name]
	if s == nil {
		s = &fakeSecret{created: time.Now().Truncate(time.Millisecond)}
		sm.secrets[name] = s
	}
	s.denied = true
}

// ARN returns the full ARN of the secret name, with the six-character suffix
// Secrets Manager appends (derived from the name, so stable).
func (sm *SecretsManager) ARN(name string) string {
	const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	sum := sha256.Sum256([]byte(name))
	var suffix [6]byte
	for i := range suffix {
		suffix[i] = letters[int(sum[i])%len(letters)]
	}
	return fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s", sm.Region, AccountID, name, suffix[:])
}

// Calls returns how many GetSecretValue requests the fake has received,
// successful or not (requests with a bad signature included).
func (sm *SecretsManager) Calls() int {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	return sm.calls
}

// AuthFailures returns how many requests were refused for a missing or wrong
// signature or an unknown access key.
func (sm *SecretsManager) AuthFailures() int {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	return sm.authFails
}

// Client returns a Secrets Manager client for the fake with its credentials.
func (sm *SecretsManager) Client(t testing.TB) *secretsmanager.Client {
	t.Helper()
	ak, sk := sm.Credentials()
	return secretsmanager.New(secretsmanager.Options{
		Region:       sm.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(ak, sk, ""),
		BaseEndpoint: aws.String(sm.Endpoint),
	})
}

// Env returns the environment under which config.LoadDefaultConfig-built
// clients reach the fake: credentials, region and
// AWS_ENDPOINT_URL_SECRETS_MANAGER (plus the same isolation as S3Server.Env).
func (sm *SecretsManager) Env() map[string]string {
	ak, sk := sm.Credentials()
	return map[string]string{
		"AWS_ACCESS_KEY_ID":                ak,
		"AWS_SECRET_ACCESS_KEY":            sk,
		"AWS_SESSION_TOKEN":                "",
		"AWS_PROFILE":                      "",
		"AWS_REGION":                       sm.Region,
		"AWS_EC2_METADATA_DISABLED":        "true",
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": sm.Endpoint,
	}
}

// Setenv sets Env for the duration of the test (t.Setenv: not for parallel tests).
func (sm *SecretsManager) Setenv(t testing.TB) {
	t.Helper()
	for k, v := range sm.Env() {
		t.Setenv(k, v)
	}
}

// getSecretValueOutput is the wire shape of a GetSecretValue response.
type getSecretValueOutput struct {
	ARN           string   `json:"ARN"`
	Name          string   `json:"Name"`
	SecretString  *string  `json:"SecretString,omitempty"`
	SecretBinary  []byte   `json:"SecretBinary,omitempty"` // base64, as on the wire
	VersionID     string   `json:"VersionId"`
	VersionStages []string `json:"VersionStages"`
	CreatedDate   float64  `json:"CreatedDate"` // epoch seconds
}

func (sm *SecretsManager) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeAWSError(w, http.StatusBadRequest, "SerializationException", "could not read the request body")
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		writeAWSError(w, http.StatusNotFound, "UnknownOperationException", "expected POST /")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		writeAWSError(w, http.StatusBadRequest, "SerializationException", "Content-Type must be application/x-amz-json-1.1, got "+ct)
		return
	}
	target := r.Header.Get("X-Amz-Target")
	if target == "secretsmanager.GetSecretValue" {
		sm.mu.Lock()
		sm.calls++
		sm.mu.Unlock()
	}
	if code, msg := sm.authenticate(r, body); code != "" {
		sm.mu.Lock()
		sm.authFails++
		sm.mu.Unlock()
		status := http.StatusBadRequest
		if code == "InvalidSignatureException" || code == "MissingAuthenticationTokenException" {
			status = http.StatusForbidden
		}
		writeAWSError(w, status, code, msg)
		return
	}
	if target != "secretsmanager.GetSecretValue" {
		writeAWSError(w, http.StatusBadRequest, "UnknownOperationException", "the fake only implements GetSecretValue, got X-Amz-Target "+target)
		return
	}

	var in struct {
		SecretID     string `json:"SecretId"`
		VersionID    string `json:"VersionId"`
		VersionStage string `json:"VersionStage"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		writeAWSError(w, http.StatusBadRequest, "SerializationException", "malformed request body: "+err.Error())
		return
	}
	if in.SecretID == "" {
		writeAWSError(w, http.StatusBadRequest, "InvalidParameterException", "SecretId must not be empty.")
		return
	}

	sm.mu.Lock()
	name, s := sm.lookup(in.SecretID)
	var out getSecretValueOutput
	denied := s != nil && s.denied
	found := s != nil && (s.str != nil || s.binary != nil)
	if found && !denied {
		out = getSecretValueOutput{
			ARN:           sm.ARN(name),
			Name:          name,
			SecretString:  s.str,
			SecretBinary:  s.binary,
			VersionID:     versionID(name, s.version),
			VersionStages: []string{"AWSCURRENT"},
			CreatedDate:   float64(s.created.UnixMilli()) / 1000,
		}
	}
	sm.mu.Unlock()

	switch {
	case denied:
		writeAWSError(w, http.StatusBadRequest, "AccessDeniedException", fmt.Sprintf(
			"User: arn:aws:sts::%s:assumed-role/dsync-export/test is not authorized to perform: secretsmanager:GetSecretValue on resource: %s because no identity-based policy allows the secretsmanager:GetSecretValue action",
			AccountID, in.SecretID))
	case !found:
		writeAWSError(w, http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
	case in.VersionStage != "" && in.VersionStage != "AWSCURRENT",
		in.VersionID != "" && in.VersionID != out.VersionID:
		writeAWSError(w, http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret value for staging label or version.")
	default:
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-RequestId", versionID("request", int(time.Now().UnixNano())))
		_ = json.NewEncoder(w).Encode(out)
	}
}

// lookup finds a secret by name or full ARN; the caller holds sm.mu.
func (sm *SecretsManager) lookup(id string) (string, *fakeSecret) {
	if s, ok := sm.secrets[id]; ok {
		return id, s
	}
	if strings.HasPrefix(id, "arn:") {
		for name, s := range sm.secrets {
			if sm.ARN(name) == id {
				return name, s
			}
		}
	}
	return "", nil
}

// authenticate checks the SigV4 signature; it returns an AWS error code and
// message when the request must be refused.
func (sm *SecretsManager) authenticate(r *http.Request, body []byte) (code, msg string) {
	header := r.Header.Get("Authorization")
	if header == "" {
		return "MissingAuthenticationTokenException", "Missing Authentication Token"
	}
	a, err := parseSigV4(header)
	if err != nil {
		return "IncompleteSignatureException", err.Error()
	}
	ak, sk := sm.Credentials()
	if a.accessKey != ak {
		return "UnrecognizedClientException", "The security token included in the request is invalid."
	}
	if a.service != "secretsmanager" || a.region != sm.Region {
		return "InvalidSignatureException", fmt.Sprintf("Credential should be scoped to a valid region and service secretsmanager/%s, not %s/%s.", sm.Region, a.service, a.region)
	}
	if err := verifySigV4(r, body, a, sk); err != nil {
		return "InvalidSignatureException", "The request signature we calculated does not match the signature you provided: " + err.Error()
	}
	return "", ""
}

// versionID returns a UUID-shaped version id derived from name and n.
func versionID(name string, n int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d", name, n))
	h := fmt.Sprintf("%x", sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// writeAWSError writes an error the way AWS JSON 1.1 services do.
func writeAWSError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}
