package soak_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
)

// tally counts what the WorkOS fake answered, by kind of fault, from the
// outside: the fake only counts faults in total. It wraps the fake's handler.
type tally struct {
	requests     atomic.Int64 // every request
	ok           atomic.Int64 // complete 2xx responses
	serverErrors atomic.Int64 // 5xx (the fake's HTML error pages)
	rateLimited  atomic.Int64 // 429
	resets       atomic.Int64 // no response at all: the connection was reset
	truncated    atomic.Int64 // 200 with fewer body bytes than its Content-Length
	cancelled    atomic.Int64 // no response because the client went away first
	other        atomic.Int64 // anything else (401, 404, …): never expected

	conns sync.Map // net.Conn -> *connInfo
}

// counts is a snapshot of a tally, added up across seeds.
type counts struct {
	Requests, OK, ServerErrors, RateLimited, Resets, Truncated, Cancelled, Other int64
	// Hidden is filled in by the test: the resets that net/http's Transport
	// retried by itself, so the WorkOS client never saw them. The Transport
	// silently resends an idempotent request whose connection fails before
	// the first response byte if it counts that connection as reused, which
	// includes an idle connection that was dialed for another request and
	// never carried one.
	Hidden int64
}

func (t *tally) snapshot() counts {
	return counts{
		Requests: t.requests.Load(), OK: t.ok.Load(), ServerErrors: t.serverErrors.Load(),
		RateLimited: t.rateLimited.Load(), Resets: t.resets.Load(), Truncated: t.truncated.Load(), Other: t.other.Load(),
		Cancelled: t.cancelled.Load(),
	}
}

// faults is the number of injected faults of every kind.
func (c counts) faults() int64 { return c.ServerErrors + c.RateLimited + c.Resets + c.Truncated }

func (c counts) add(o counts) counts {
	return counts{
		Requests: c.Requests + o.Requests, OK: c.OK + o.OK, ServerErrors: c.ServerErrors + o.ServerErrors,
		RateLimited: c.RateLimited + o.RateLimited, Resets: c.Resets + o.Resets, Truncated: c.Truncated + o.Truncated,
		Other: c.Other + o.Other, Cancelled: c.Cancelled + o.Cancelled, Hidden: c.Hidden + o.Hidden,
	}
}

func (c counts) String() string {
	return fmt.Sprintf("%d (5xx %d, 429 %d, reset %d [%d retried inside net/http], truncated %d)",
		c.faults(), c.ServerErrors, c.RateLimited, c.Resets, c.Hidden, c.Truncated)
}

// connInfo is what the tally knows of one connection.
type connInfo struct {
	hijacked atomic.Bool // taken over by a handler (the fake resets it)
}

// connInfoKey is the context key of a request's *connInfo.
type connInfoKey struct{}

// serve configures srv (not yet started) to feed the tally its connections.
func (t *tally) serve(srv *http.Server) {
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		info := new(connInfo)
		t.conns.Store(c, info)
		return context.WithValue(ctx, connInfoKey{}, info)
	}
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		switch s {
		case http.StateHijacked:
			if info, ok := t.conns.Load(c); ok {
				info.(*connInfo).hijacked.Store(true)
			}
			t.conns.Delete(c)
		case http.StateClosed:
			t.conns.Delete(c)
		}
	}
}

func (t *tally) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := r.Context().Value(connInfoKey{}).(*connInfo)
		if info == nil {
			panic("soak: tally.wrap needs a server configured with tally.serve")
		}
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		t.requests.Add(1)
		switch {
		case rec.status == 0 && info.hijacked.Load():
			t.resets.Add(1) // closed without a response
		case rec.status == 0:
			t.cancelled.Add(1) // the fake's latency wait saw the client leave
		case rec.status == http.StatusTooManyRequests:
			t.rateLimited.Add(1)
		case rec.status >= 500:
			t.serverErrors.Add(1)
		case rec.status >= 300:
			t.other.Add(1)
		case rec.declared >= 0 && rec.written < rec.declared:
			t.truncated.Add(1)
		default:
			t.ok.Add(1)
		}
	})
}

// recorder notes the status, the announced Content-Length and the bytes
// written. Unwrap lets http.ResponseController reach the connection, so the
// fake can still hijack it to reset it.
type recorder struct {
	http.ResponseWriter
	status   int
	declared int64
	written  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
		r.declared = -1
		if n, err := strconv.ParseInt(r.Header().Get("Content-Length"), 10, 64); err == nil {
			r.declared = n
		}
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	n, err := r.ResponseWriter.Write(b)
	r.written += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
