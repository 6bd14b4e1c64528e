package awstest

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// sigV4Auth is the parsed Authorization header of a SigV4-signed request.
type sigV4Auth struct {
	accessKey     string
	date          string // yyyymmdd
	region        string
	service       string
	signedHeaders []string
	signature     string
}

// parseSigV4 parses "AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/SERVICE/aws4_request,
// SignedHeaders=a;b, Signature=hex".
func parseSigV4(header string) (sigV4Auth, error) {
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(header, algo) {
		return sigV4Auth{}, fmt.Errorf("authorization header is not %q", strings.TrimSpace(algo))
	}
	var a sigV4Auth
	for part := range strings.SplitSeq(strings.TrimPrefix(header, algo), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			f := strings.Split(v, "/")
			if len(f) != 5 || f[4] != "aws4_request" {
				return sigV4Auth{}, fmt.Errorf("malformed credential scope %q", v)
			}
			a.accessKey, a.date, a.region, a.service = f[0], f[1], f[2], f[3]
		case "SignedHeaders":
			a.signedHeaders = strings.Split(v, ";")
		case "Signature":
			a.signature = v
		}
	}
	if a.accessKey == "" || len(a.signedHeaders) == 0 || a.signature == "" {
		return sigV4Auth{}, fmt.Errorf("incomplete authorization header")
	}
	return a, nil
}

// verifySigV4 recomputes the signature of r (whose body is body) with the
// aws-sdk-go-v2 signer over exactly the headers the client signed, and
// compares it with the one the client sent.
func verifySigV4(r *http.Request, body []byte, a sigV4Auth, secretKey string) error {
	signingTime, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return fmt.Errorf("bad X-Amz-Date: %w", err)
	}
	if got := signingTime.Format("20060102"); got != a.date {
		return fmt.Errorf("credential date %s does not match X-Amz-Date %s", a.date, got)
	}
	if skew := time.Since(signingTime); skew > 15*time.Minute || skew < -15*time.Minute {
		return fmt.Errorf("request signed %v away from now (more than 15m)", skew.Round(time.Second))
	}

	req, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	if err != nil {
		return err
	}
	req.Host = r.Host
	for _, h := range a.signedHeaders {
		switch h {
		case "host":
		case "content-length":
			req.ContentLength = r.ContentLength
		default:
			req.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: a.accessKey, SecretAccessKey: secretKey, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), a.service, a.region, signingTime); err != nil {
		return err
	}
	want, err := parseSigV4(req.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(want.signature), []byte(a.signature)) != 1 {
		return fmt.Errorf("signature does not match (signed headers %s)", strings.Join(a.signedHeaders, ";"))
	}
	return nil
}
