package main

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/dsync-export/dsync-export/pkg/objstore"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

// The two guards that keep the built-in fake's made-up data and real WorkOS
// data in separate destinations: checkDemoFolder (the demo refuses a folder
// holding a real snapshot) and checkNoDemoSnapshots (a real export refuses a
// destination holding demo snapshots). A committed manifest's Demo field
// tells them apart.

// checkDemoFolder refuses a folder holding a committed snapshot that is not
// demo data, so a demo can never overwrite a real export.
func checkDemoFolder(dir string) error {
	ctx := context.Background()
	st, err := objstore.Open(ctx, dir, objstore.Options{})
	if err != nil {
		return fmt.Errorf("export: demo destination %s: %w", dir, err)
	}
	keys, err := manifestKeys(ctx, st)
	if err != nil {
		return fmt.Errorf("export: demo destination %s: %w", dir, err)
	}
	for _, k := range keys {
		b, err := st.Get(ctx, k.key)
		if err != nil {
			return fmt.Errorf("export: demo destination %s: read %s: %w", dir, k.key, err)
		}
		m, err := snapshot.Unmarshal(b)
		if err != nil || !m.Demo {
			return fmt.Errorf("export: the folder %s holds a snapshot of %s that is not demo data (%s); --demo never writes over a real export: pass --destination with another folder", dir, k.date, k.key)
		}
	}
	return nil
}

// checkNoDemoSnapshots refuses, for an export of real data, a destination
// that holds demo snapshots, before the export writes anything: real data
// never lands next to the fake's. It is a configuration error (not retried
// by the state machine; exit status 2 outside Lambda).
//
// It reads at most two manifests, the oldest and the newest: checkDemoFolder
// keeps a demo out of a destination with a real snapshot, so a destination
// that holds demo snapshots began with one, and one a real export already
// wrote into (before this guard) still has its first, demo, snapshot.
func checkNoDemoSnapshots(ctx context.Context, st objstore.Store) error {
	keys, err := manifestKeys(ctx, st)
	if err != nil {
		return fmt.Errorf("export: destination %s: %w", st.String(), err)
	}
	if len(keys) > 2 {
		keys = []manifestRef{keys[0], keys[len(keys)-1]}
	}
	for _, k := range keys {
		b, err := st.Get(ctx, k.key)
		if errors.Is(err, objstore.ErrNotExist) {
			continue // deleted since the listing
		}
		if err != nil {
			return fmt.Errorf("export: destination %s: read %s: %w", st.String(), k.key, err)
		}
		if m, err := snapshot.Unmarshal(b); err == nil && m.Demo {
			return fmt.Errorf("export: %w: the destination %s holds demo snapshots (%s is the built-in WorkOS fake's data): this folder holds demo snapshots from make run; export real data to another folder with EXPORT_DESTINATION=… (or --destination) or delete the demo folder", errConfig, st.String(), k.key)
		}
	}
	return nil
}

// manifestRef is a committed manifest's key and snapshot date.
type manifestRef struct{ key, date string }

// manifestKeys lists the committed manifests under _manifests/, oldest
// first; a destination without that folder has none.
func manifestKeys(ctx context.Context, st objstore.Store) ([]manifestRef, error) {
	objs, err := st.List(ctx, snapshot.ManifestsDir+"/")
	if err != nil {
		if errors.Is(err, objstore.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var refs []manifestRef
	for _, o := range objs {
		if _, date, ok := snapshot.ParseManifestKey(o.Key); ok {
			refs = append(refs, manifestRef{key: o.Key, date: date})
		}
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].date < refs[j].date })
	return refs, nil
}
