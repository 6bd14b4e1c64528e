//go:build lambda.norpc

package main

import (
	"errors"
	"io"
)

// startDemo is not in the Lambda build: the deployed function never links
// the WorkOS fake (see demo.go).
func startDemo(func(string) string, map[string]string, io.Writer, int) (demoFake, error) {
	return demoFake{}, errors.New("export: --demo is not in this build (the Lambda build, -tags lambda.norpc, leaves the WorkOS fake out): run `make run` or `go run ./functions/export --demo`")
}
