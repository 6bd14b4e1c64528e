// Package e2e holds the end-to-end test of the two Lambda functions as AWS
// runs them: the real bootstrap binaries under the AWS Lambda Runtime
// Interface Emulator (what `sam local invoke` runs), against the WorkOS fake,
// a real S3 server (versitygw) and the Secrets Manager fake. It has no
// non-test code.
package e2e
