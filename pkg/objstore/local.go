package objstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// tmpMarker is part of the name of files being written; List skips them.
// It keeps the name it had when this package was called sink, so that List
// still skips temporary files left behind by older versions.
const tmpMarker = ".sink-tmp-"

type localStore struct {
	root string // absolute, cleaned
}

func openLocal(dir string) (*localStore, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("objstore: destination %q: %w", dir, err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("objstore: create destination folder %s: %w: create it or choose a writable folder", root, err)
	}
	return &localStore{root: root}, nil
}

func (s *localStore) String() string { return "file://" + filepath.ToSlash(s.root) }

func (s *localStore) path(key string) string { return filepath.Join(s.root, filepath.FromSlash(key)) }

func (s *localStore) Create(ctx context.Context, key, contentType string) (Object, error) {
	return s.create(ctx, key, false)
}

// create opens a temporary file next to key's final name; an exclusive object
// commits with a hard link, which fails if the final name exists.
func (s *localStore) create(ctx context.Context, key string, exclusive bool) (*localObject, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("objstore: create %s: %w", s.path(key), err)
	}
	final := s.path(key)
	dir := filepath.Dir(final)
	var f *os.File
	// Retry once: a concurrent Delete may prune the folder between the two calls.
	for attempt := 0; ; attempt++ {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, s.describe(key, fmt.Errorf("create folder: %w", err))
		}
		var err error
		f, err = os.CreateTemp(dir, "."+filepath.Base(final)+tmpMarker+"*")
		if err == nil {
			break
		}
		if attempt == 1 || !errors.Is(err, fs.ErrNotExist) {
			return nil, s.describe(key, err)
		}
	}
	return &localObject{ctx: ctx, f: f, final: final, exclusive: exclusive}, nil
}

// localObject writes to a hidden temporary file next to the final name and
// renames it into place on Close.
type localObject struct {
	ctx   context.Context
	f     *os.File
	final string

	werr      error // the first failed write: Close then refuses to commit
	exclusive bool  // commit with a hard link, which fails if final exists

	once sync.Once
	err  error
}

func (o *localObject) Write(p []byte) (int, error) {
	if o.werr != nil {
		return 0, o.werr
	}
	if err := o.ctx.Err(); err != nil {
		return 0, fmt.Errorf("objstore: write %s: %w", o.final, err)
	}
	n, err := o.f.Write(p)
	if err != nil {
		o.werr = fmt.Errorf("objstore: write %s: %w", o.final, err)
		return n, o.werr
	}
	return n, nil
}

func (o *localObject) Close() error {
	o.once.Do(func() {
		tmp := o.f.Name()
		err := o.werr
		if err == nil {
			err = o.ctx.Err()
		}
		if err == nil {
			err = o.f.Chmod(0o644) // CreateTemp makes 0600
		}
		if err == nil {
			err = o.f.Sync()
		}
		if cerr := o.f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = o.commit(tmp)
		}
		if err != nil {
			os.Remove(tmp)
			o.err = fmt.Errorf("objstore: commit %s: %w", o.final, err)
			return
		}
		// The file is in place; a failed folder fsync only weakens its
		// durability against a crash, so it is not reported as a failed commit.
		_ = syncDir(filepath.Dir(o.final))
	})
	return o.err
}

// commit gives the written temporary file its final name: a rename, which
// replaces an existing object, or for an exclusive object a hard link, which
// fails with fs.ErrExist instead. The caller removes the temporary name when
// commit fails.
func (o *localObject) commit(tmp string) error {
	if !o.exclusive {
		return os.Rename(tmp, o.final)
	}
	if err := os.Link(tmp, o.final); err != nil {
		return err
	}
	// The object is committed; a temporary name left behind is hidden from
	// List, so failing to remove it does not fail the commit.
	_ = os.Remove(tmp)
	return nil
}

func (o *localObject) CloseWithError(error) error {
	o.once.Do(func() {
		o.f.Close()
		if err := os.Remove(o.f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			o.err = fmt.Errorf("objstore: abort %s: %w", o.final, err)
		}
	})
	return o.err
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (s *localStore) Put(ctx context.Context, key string, body []byte, contentType string) error {
	o, err := s.Create(ctx, key, contentType)
	if err != nil {
		return err
	}
	if _, err := o.Write(body); err != nil {
		o.CloseWithError(err)
		return err
	}
	return o.Close()
}

// PutIfAbsent writes body to a hidden temporary file, fsyncs it, then hard
// links it to the final name: link(2) creates the name atomically and fails
// with EEXIST if it exists (the O_EXCL of names), and the file it names is
// already complete, so readers never see it half-written.
func (s *localStore) PutIfAbsent(ctx context.Context, key string, body []byte, contentType string) error {
	o, err := s.create(ctx, key, true)
	if err != nil {
		return err
	}
	if _, err := o.Write(body); err != nil {
		o.CloseWithError(err)
		return err
	}
	err = o.Close()
	if errors.Is(err, fs.ErrExist) {
		if fi, serr := os.Lstat(o.final); serr == nil && fi.IsDir() {
			// S3 allows both "a" and "a/b"; a folder cannot hold both.
			return fmt.Errorf("objstore: %s is a folder, so the object cannot be created: %w", o.final, err)
		}
		return &kindError{msg: fmt.Sprintf("objstore: %s already exists: another writer created it first", o.final), kind: ErrExist, err: err}
	}
	return err
}

func (s *localStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(s.path(key))
	if err != nil {
		return nil, s.describe(key, err)
	}
	return b, nil
}

func (s *localStore) describe(key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return &kindError{msg: fmt.Sprintf("objstore: %s does not exist", s.path(key)), kind: ErrNotExist, err: err}
	}
	if errors.Is(err, fs.ErrPermission) {
		return &kindError{msg: fmt.Sprintf("objstore: access denied on %s: fix the folder's permissions", s.path(key)), kind: ErrAccessDenied, err: err}
	}
	return fmt.Errorf("objstore: %s: %w", s.path(key), err)
}

func (s *localStore) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	// Walk only the deepest folder the prefix names.
	start := s.root
	if dir := path.Dir(prefix + "x"); dir != "." {
		start = s.path(dir)
	}
	var infos []ObjectInfo
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || (strings.HasPrefix(d.Name(), ".") && strings.Contains(d.Name(), tmpMarker)) {
			return nil
		}
		key, err := toSlash(s.root, p)
		if err != nil || !strings.HasPrefix(key, prefix) {
			return err
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted while walking
		} else if err != nil {
			return err
		}
		infos = append(infos, ObjectInfo{Key: key, Size: fi.Size(), LastModified: fi.ModTime().UTC()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("objstore: list %s: %w", s.path(prefix), err)
	}
	// WalkDir orders by path element; S3 orders by the whole key's bytes.
	slices.SortFunc(infos, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return infos, nil
}

func (s *localStore) Delete(ctx context.Context, keys []string) error {
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return err
		}
	}
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := s.path(k)
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return s.describe(k, err)
		}
		// Folders are an artefact of the local layout (S3 has none): drop the
		// ones this delete emptied, up to the root.
		for dir := filepath.Dir(p); dir != s.root && strings.HasPrefix(dir, s.root); dir = filepath.Dir(dir) {
			if os.Remove(dir) != nil {
				break // not empty (or gone)
			}
		}
	}
	return nil
}

func (s *localStore) OpenRange(ctx context.Context, key string) (RangeReader, int64, error) {
	if err := checkKey(key); err != nil {
		return nil, 0, err
	}
	f, err := os.Open(s.path(key))
	if err != nil {
		return nil, 0, s.describe(key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, s.describe(key, err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, 0, &kindError{msg: fmt.Sprintf("objstore: %s is a folder, not an object", s.path(key)), kind: ErrNotExist}
	}
	return &fileRangeReader{f: f}, fi.Size(), nil
}

// fileRangeReader counts ReadAt calls on a local file.
type fileRangeReader struct {
	statsCounter
	f *os.File
}

func (r *fileRangeReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.f.ReadAt(p, off)
	r.add(n)
	return n, err
}

func (r *fileRangeReader) Close() error { return r.f.Close() }
