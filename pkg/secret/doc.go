// Package secret reads the WorkOS API key from AWS Secrets Manager and keeps it
// across warm Lambda invocations.
//
//	cfg, _ := config.LoadDefaultConfig(ctx)
//	keys := secret.NewLoader(secretsmanager.NewFromConfig(cfg), os.Getenv("WORKOS_API_KEY_SECRET_ID"), "")
//	apiKey, err := keys.APIKey(ctx) // cached for DefaultTTL
//	// ... on a WorkOS 401:
//	keys.Invalidate() // the next APIKey re-reads a rotated secret
//
// The secret holds the plain key ("sk_…") or a JSON object such as
// {"api_key":"sk_…"}. The key is never logged or put in an error.
package secret
