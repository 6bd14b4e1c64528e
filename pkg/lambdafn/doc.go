// Package lambdafn is the plumbing that the export and verify functions
// share: reading their configuration from the environment (Reader), the
// CloudWatch Embedded Metric Format line (Metrics), logging that follows the
// function's LoggingConfig in Lambda and stays readable on a terminal
// (NewLogger), and the choice between serving Lambda invocations and one
// local run.
package lambdafn
