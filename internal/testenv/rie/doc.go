// Package rie runs a real Lambda bootstrap binary under the AWS Lambda Runtime
// Interface Emulator (RIE), without Docker. It is what `sam local invoke` does
// inside its container: the emulator serves the Lambda Runtime API to the
// bootstrap, and accepts invocations on
// POST /2015-03-31/functions/function/invocations.
//
// The emulator is pinned in go.mod as a tool
// (github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie),
// and BuildEmulator builds it from the module cache. Both of its listeners are
// bound to 127.0.0.1 on free ports, so several emulators can run at once.
//
// Usage:
//
//	rieBin, err := rie.BuildEmulator(ctx, "bin")
//	boot, err := rie.BuildBootstrap(ctx, "./functions/export", "bin/invoke/export")
//	emu, err := rie.Start(ctx, rieBin, boot, []string{"AWS_LAMBDA_FUNCTION_TIMEOUT=900", "LOG_LEVEL=debug"})
//	defer emu.Close()
//	resp, err := emu.Invoke(ctx, []byte(`{"snapshot_date":"2026-11-28"}`))
//	var fe *rie.FunctionError
//	if errors.As(err, &fe) { /* the handler returned an error or timed out */ }
//	emu.KillFunction() // SIGKILL the bootstrap: the invocation in progress fails with Runtime.ExitError
//
// The emulator passes its whole environment to the function, and reads
// AWS_LAMBDA_FUNCTION_TIMEOUT (seconds, default 300), which becomes the
// deadline of the handler's context, AWS_LAMBDA_FUNCTION_NAME and
// AWS_LAMBDA_FUNCTION_MEMORY_SIZE from it. It does not emulate IAM, the
// function's memory limit, or the invocation queue of asynchronous events.
package rie
