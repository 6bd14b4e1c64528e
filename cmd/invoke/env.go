package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/dsync-export/dsync-export/internal/samtemplate"
)

// hostVars are the variables of this process passed to the function besides
// AWS_*: what the AWS SDK needs to find credentials (~/.aws) and a temp dir.
var hostVars = []string{"HOME", "PATH", "TMPDIR"}

// envFile is an env.json for sam local invoke --env-vars: variables by
// function logical ID, and under "Parameters" for every function.
type envFile map[string]map[string]string

// readEnvFile reads an env.json. Values must be strings, as sam requires.
func readEnvFile(path string) (envFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("invoke: %w", err)
	}
	var raw map[string]map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("invoke: %s: %v: want {\"<FunctionLogicalId>\": {\"NAME\": \"value\", …}}", path, err)
	}
	f := envFile{}
	for section, vars := range raw {
		f[section] = map[string]string{}
		for k, v := range vars {
			s, ok := v.(string)
			if !ok {
				b, _ := json.Marshal(v)
				return nil, fmt.Errorf("invoke: %s: %s.%s is %s: write it as a JSON string, e.g. %q", path, section, k, b, strings.Trim(string(b), `"`))
			}
			f[section][k] = s
		}
	}
	return f, nil
}

// functionEnv builds the complete environment of the emulator, the way sam
// local invoke builds the container's:
//
//  1. AWS_* (credentials, region, profile) and HOME, PATH, TMPDIR from host;
//  2. every variable the template declares for the function, with its value
//     resolved from parameter defaults ("" when it depends on the deployment);
//  3. env.json's "Parameters" section, then the function's own section; a
//     variable the template does not declare is an error (sam ignores it);
//  4. the Lambda runtime's own variables: AWS_LAMBDA_FUNCTION_TIMEOUT (the
//     template's timeout, or timeout when above 0), _MEMORY_SIZE, _NAME,
//     _VERSION, TZ, and AWS_REGION/AWS_DEFAULT_REGION (default us-east-1).
//
// file may be nil.
func functionEnv(fn samtemplate.Function, file envFile, host []string, timeout int) ([]string, error) {
	env := map[string]string{}
	for _, kv := range host {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if (strings.HasPrefix(k, "AWS_") && !strings.HasPrefix(k, "AWS_LAMBDA_")) || slices.Contains(hostVars, k) {
			env[k] = v
		}
	}
	declared := map[string]bool{}
	for _, v := range fn.Environment {
		env[v.Name] = v.Value
		declared[v.Name] = true
	}
	if file != nil {
		for _, section := range []string{"Parameters", fn.LogicalID} {
			var undeclared []string
			for k, v := range file[section] {
				if !declared[k] {
					undeclared = append(undeclared, k)
					continue
				}
				env[k] = v
			}
			if len(undeclared) > 0 && section == fn.LogicalID {
				sort.Strings(undeclared)
				return nil, fmt.Errorf("invoke: env file sets %s for %s, but template.yaml does not declare it: "+
					"add it to %s's Environment.Variables (\"\" if it has no value in AWS); sam local invoke would ignore it",
					strings.Join(undeclared, ", "), fn.LogicalID, fn.LogicalID)
			}
		}
	}
	if timeout <= 0 {
		timeout = fn.Timeout
	}
	env["AWS_LAMBDA_FUNCTION_TIMEOUT"] = strconv.Itoa(timeout)
	env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = strconv.Itoa(fn.MemorySize)
	env["AWS_LAMBDA_FUNCTION_NAME"] = fn.LogicalID
	env["AWS_LAMBDA_FUNCTION_VERSION"] = "$LATEST"
	env["TZ"] = ":UTC"
	// As Lambda does with the function's LoggingConfig.
	if fn.LogFormat != "" {
		env["AWS_LAMBDA_LOG_FORMAT"] = fn.LogFormat
	}
	if fn.LogLevel != "" {
		env["AWS_LAMBDA_LOG_LEVEL"] = fn.LogLevel
	}
	if env["AWS_REGION"] == "" {
		env["AWS_REGION"] = env["AWS_DEFAULT_REGION"]
	}
	if env["AWS_REGION"] == "" {
		env["AWS_REGION"] = "us-east-1"
	}
	if env["AWS_DEFAULT_REGION"] == "" {
		env["AWS_DEFAULT_REGION"] = env["AWS_REGION"]
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out, nil
}

// checkSections reports an env file section that names no function of the
// template (a typo would otherwise be ignored).
func checkSections(file envFile, functions []samtemplate.Function) error {
	for section := range file {
		known := section == "Parameters"
		for _, fn := range functions {
			known = known || section == fn.LogicalID
		}
		if !known {
			return fmt.Errorf("invoke: env file section %q names no function of the template: use a function's logical ID or \"Parameters\"", section)
		}
	}
	return nil
}

// readEvent reads the event file ("-" for stdin) and checks it is JSON.
func readEvent(path string, stdin *os.File) ([]byte, error) {
	var data []byte
	var err error
	if path == "-" {
		var b bytes.Buffer
		_, err = b.ReadFrom(stdin)
		data = b.Bytes()
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("invoke: read the event: %w", err)
	}
	if !json.Valid(data) {
		return nil, fmt.Errorf("invoke: the event %s is not valid JSON", path)
	}
	return data, nil
}
