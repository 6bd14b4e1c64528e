package workos

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
)

// scrub removes the API key from err's text, the fields of the package's own
// error types included, and keeps what errors.Is and errors.As match.
func (c *Client) scrub(err error) error {
	if err == nil || !strings.Contains(err.Error(), c.apiKey) {
		return err
	}
	var ae *APIError
	if errors.As(err, &ae) {
		ae.Message = c.redactString(ae.Message)
		ae.Code = c.redactString(ae.Code)
		ae.ErrorDescription = c.redactString(ae.ErrorDescription)
		ae.RawBody = c.redactString(ae.RawBody)
		ae.Location = c.redactString(ae.Location)
		ae.RequestID = c.redactString(ae.RequestID)
		if len(ae.Errors) > 0 {
			ae.Errors = c.redactBody(ae.Errors)
		}
	}
	var de *DecodeError
	if errors.As(err, &de) {
		de.RawBody = c.redactString(de.RawBody)
		de.RequestID = c.redactString(de.RequestID)
		if de.Err != nil && strings.Contains(de.Err.Error(), c.apiKey) {
			de.Err = errors.New(c.redactString(de.Err.Error()))
		}
	}
	var ce *cursorError
	if errors.As(err, &ce) {
		ce.cursor = c.redactString(ce.cursor)
		ce.requestID = c.redactString(ce.requestID)
		ce.endpoint = c.redactString(ce.endpoint)
	}
	if !strings.Contains(err.Error(), c.apiKey) {
		return err
	}
	return &redactedError{msg: c.redactString(err.Error()), err: err}
}

// redactedError is an error whose text held the API key. It does not unwrap
// (the wrapped errors' text may still hold the key), but it matches what the
// original matches.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string        { return e.msg }
func (e *redactedError) Is(target error) bool { return errors.Is(e.err, target) }
func (e *redactedError) As(target any) bool   { return errors.As(e.err, target) }

// redact removes the API key from an error's text, in case a transport or a
// proxy echoes it.
func (c *Client) redact(err error) error {
	if err == nil || !strings.Contains(err.Error(), c.apiKey) {
		return err
	}
	return errors.New(c.redactString(err.Error()))
}

// redactBody removes the key from an error body, also where JSON escapes
// (\u0073k_…) hide it from a plain search: a JSON body is decoded, scrubbed
// string by string and encoded again.
func (c *Client) redactBody(body []byte) []byte {
	body = []byte(c.redactString(string(body)))
	var v any
	if !bytes.ContainsRune(body, '\\') || json.Unmarshal(body, &v) != nil {
		return body
	}
	changed := false
	var walk func(any) any
	walk = func(x any) any {
		switch t := x.(type) {
		case string:
			if r := c.redactString(t); r != t {
				changed = true
				return r
			}
		case []any:
			for i := range t {
				t[i] = walk(t[i])
			}
		case map[string]any:
			for k, e := range t {
				t[k] = walk(e)
			}
		}
		return x
	}
	v = walk(v)
	if !changed {
		return body
	}
	out, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return out
}

func (c *Client) redactString(s string) string {
	return strings.ReplaceAll(s, c.apiKey, "[REDACTED]")
}

// Redact returns s with the client's API key replaced by [REDACTED]: for
// text taken from API answers (an id, a field) that a caller logs or stores
// outside the snapshot, since a hostile server may echo the key into it.
func (c *Client) Redact(s string) string { return c.redactString(s) }
