// Package sfn runs a Step Functions state machine locally, for tests: the
// Amazon States Language is interpreted by the npm package
// aws-local-stepfunctions (pinned in node/package-lock.json, run by
// node/run.mjs), and every Task whose Resource is
// arn:aws:states:::lambda:invoke, nested ones included, calls back into Go.
// Only tests import it.
//
//	def, err := sfn.Definition("template.yaml", "ExportStateMachine",
//		map[string]string{"ExportFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:export"})
//	pool := sfn.NewPool(emulators) // []*rie.Emulator, one invocation each at a time
//	res, err := sfn.Run(ctx, sfn.Options{Definition: def, Input: []byte(`{}`), Invoke: pool.Invoke})
//	// res.Output, or res.ErrorName and res.ErrorCause; res.Invocations
//
// An Invoker's error that is (or wraps) a *rie.FunctionError reaches the
// interpreter under its Type, as Lambda reports a function's errorType; any
// other error as Lambda.ServiceException. Run records every invocation.
//
// Run needs node (20 or later) on PATH. EnsureInstalled, which Run calls,
// runs npm ci in the node folder when its node_modules is missing or older
// than package-lock.json (make node-tools does the same ahead of time).
//
// Where the interpreter differs from AWS, run.mjs adjusts the definition
// before running it (see its header): a Task without TimeoutSeconds gets no
// 60 s limit, a failed iteration of a DISTRIBUTED Map fails the Map with
// States.ExceedToleratedFailureThreshold (cause "The specified tolerated
// failure threshold was exceeded"), and an iteration aborted because another
// failed retries nothing. Not supported: ItemReader, ItemBatcher,
// ResultWriter, ToleratedFailure*, and Task resources other than
// lambda:invoke (Run fails naming them). The Catch output's Cause of a
// function error is its errorMessage, where AWS gives the JSON of the whole
// error object ({"errorMessage", "errorType", "stackTrace"}).
package sfn
