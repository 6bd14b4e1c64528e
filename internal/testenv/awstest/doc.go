// Package awstest runs real AWS-protocol servers for tests: versitygw, an
// S3-compatible server that checks SigV4 signatures, and a fake Secrets
// Manager that speaks the JSON 1.1 protocol of GetSecretValue. Only tests
// import it.
//
//	s3srv := awstest.StartS3(t)                      // stopped by t.Cleanup
//	s3srv.CreateBucket(t, "snapshots")
//	sm := awstest.StartSecretsManager(t, map[string]string{"workos": `{"api_key":"sk_test_1"}`})
//	sm.SetCredentials(s3srv.AccessKey, s3srv.SecretKey) // one AWS identity for both
//	s3srv.Setenv(t); sm.Setenv(t)                    // config.LoadDefaultConfig now reaches both
//
// StartS3 runs $VERSITYGW_BIN, else <repo root>/bin/versitygw, installing
// versitygw VersitygwVersion there first if missing (`make tools` does it ahead
// of time).
package awstest
