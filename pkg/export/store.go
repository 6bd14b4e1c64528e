package export

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
	"github.com/dsync-export/dsync-export/pkg/workos"
)

func putJSON(ctx context.Context, s objstore.Store, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	if err := s.Put(ctx, key, b, "application/json"); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

// putJSONIfAbsent writes v at key only if key does not exist yet
// (objstore.Store.PutIfAbsent): the error wraps objstore.ErrExist when
// another writer won.
func putJSONIfAbsent(ctx context.Context, s objstore.Store, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	if err := s.PutIfAbsent(ctx, key, b, "application/json"); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

func getJSON(ctx context.Context, s objstore.Store, key string, v any) error {
	b, err := s.Get(ctx, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s is not valid JSON: %w", key, err)
	}
	return nil
}

func apiDelta(before, after workos.Stats) snapshot.APIStats {
	return snapshot.APIStats{
		Requests:    after.Requests - before.Requests,
		Pages:       after.Pages - before.Pages,
		Retries:     after.Retries - before.Retries,
		RateLimited: after.RateLimited - before.RateLimited,
	}
}

func addAPI(a *snapshot.APIStats, b snapshot.APIStats) {
	a.Requests += b.Requests
	a.Pages += b.Pages
	a.Retries += b.Retries
	a.RateLimited += b.RateLimited
}
