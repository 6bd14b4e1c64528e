package sfn

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/dsync-export/dsync-export/internal/testenv/rie"
)

// Pool serves invocations with a set of emulators, one invocation per
// emulator at a time (the Runtime Interface Emulator serves one at a time, as
// one Lambda execution environment does). N emulators are N concurrent
// Lambda instances: give a Map at most that concurrency, or its iterations
// queue here.
type Pool struct {
	free chan *rie.Emulator

	// OnInvoke, if set, is called before each invocation with the emulator
	// that serves it, from the invoking goroutine (so concurrently: it must be
	// safe for that). Fault injection can start a goroutine there that kills
	// the function mid-invocation (Emulator.KillFunction). Set it before the
	// first Invoke.
	OnInvoke func(e *rie.Emulator, state string, payload json.RawMessage)
}

// NewPool returns a Pool of the emulators, which the caller keeps owning (and
// closes).
func NewPool(emulators []*rie.Emulator) *Pool {
	p := &Pool{free: make(chan *rie.Emulator, len(emulators))}
	for _, e := range emulators {
		p.free <- e
	}
	return p
}

// Invoke is an Invoker: it waits for a free emulator (or for ctx to end) and
// invokes the function there. A function error is returned as the emulator's
// *rie.FunctionError. If ctx ends mid-invocation, the emulator still runs the
// invocation while it is free again here: close the emulators after a
// cancelled Run rather than reusing them.
func (p *Pool) Invoke(ctx context.Context, state string, payload json.RawMessage) (json.RawMessage, error) {
	if cap(p.free) == 0 {
		return nil, fmt.Errorf("sfn: the pool has no emulators")
	}
	var e *rie.Emulator
	select {
	case e = <-p.free:
	case <-ctx.Done():
		return nil, fmt.Errorf("sfn: waiting for a free emulator: %w", ctx.Err())
	}
	defer func() { p.free <- e }()
	if p.OnInvoke != nil {
		p.OnInvoke(e, state, payload)
	}
	resp, err := e.Invoke(ctx, payload)
	if err != nil {
		return nil, err
	}
	return resp.Payload, nil
}
