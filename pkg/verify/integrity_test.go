package verify

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/dsync-export/dsync-export/pkg/schema"
)

// columnChunk returns the offset and size of the first column chunk of key's
// column named col.
func columnChunk(t *testing.T, root, key, col string) (off, size int64) {
	t.Helper()
	b, err := os.ReadFile(filePath(root, key))
	if err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range f.Metadata().RowGroups[0].Columns {
		if strings.Join(c.MetaData.PathInSchema, ".") == col {
			return c.MetaData.DataPageOffset, c.MetaData.TotalCompressedSize
		}
	}
	t.Fatalf("%s has no column %s", key, col)
	return 0, 0
}

// One flipped bit inside a data page of a column that the data checks do not
// use (custom_attributes) passed the verifier that read only the id columns.
// Every page is now decoded, with its CRC, and every file hashed.
func TestFlippedBitInDataPage(t *testing.T) {
	t.Parallel()
	s, root := localSink(t)
	w := newFixture(2, 300, 3).withAttributes(300).write(t, s)
	key := w.keys[schema.TableDirectoryUsers][0]
	off, size := columnChunk(t, root, key, "custom_attributes")
	rewrite(t, root, key, func(b []byte) []byte {
		b[off+size-size/3] ^= 0x10 // inside the page data, past its header
		return b
	})
	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckColumns, key, "column custom_attributes", "crc32 checksum mismatch")
	wantFailure(t, r, CheckChecksums, key, "SHA-256")
	wantOnlyFailures(t, r, CheckColumns, CheckChecksums, CheckUniqueIDs, CheckReferences, CheckDirectoryCounts)
}

// A manifest whose sha256 is all zeros passed: the hashes were never compared.
func TestManifestSHA256AllZeros(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	w := newFixture(2, 50, 3).write(t, s)
	tm := w.manifest.Tables[schema.TableMemberships]
	tm.Files[0].SHA256 = strings.Repeat("0", 64)
	w.manifest.Tables[schema.TableMemberships] = tm
	putManifest(t, s, w.manifest)

	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckChecksums, tm.Files[0].Key, "the manifest says \""+strings.Repeat("0", 64))
	wantOnlyFailures(t, r, CheckChecksums)
}

// A sha256 that is not a SHA-256 at all is a manifest problem.
func TestManifestSHA256Malformed(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	w := newFixture(1, 10, 1).write(t, s)
	tm := w.manifest.Tables[schema.TableDirectoryGroups]
	tm.Files[0].SHA256 = ""
	w.manifest.Tables[schema.TableDirectoryGroups] = tm
	putManifest(t, s, w.manifest)

	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckManifest, tm.Files[0].Key, "want the 64 hex digits")
	wantFailure(t, r, CheckChecksums, tm.Files[0].Key)
}

// A file whose size differs from the manifest's is named by objects; the
// hash of what is there is still compared.
func TestSizeMismatch(t *testing.T) {
	t.Parallel()
	s, _ := localSink(t)
	w := newFixture(2, 50, 3).write(t, s)
	tm := w.manifest.Tables[schema.TableDirectoryUsers]
	tm.Files[0].Bytes += 7
	w.manifest.Tables[schema.TableDirectoryUsers] = tm
	putManifest(t, s, w.manifest)

	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckObjects, tm.Files[0].Key, "bytes, the manifest says")
	wantOnlyFailures(t, r, CheckObjects)
}

// A file replaced by another valid Parquet file of the same table (so every
// page decodes) is caught by its hash alone.
func TestReplacedFileFailsChecksum(t *testing.T) {
	t.Parallel()
	s, root := localSink(t)
	w := newFixture(1, 20, 2).write(t, s)
	key := w.keys[schema.TableDirectoryGroups][0]
	rewrite(t, root, key, func(b []byte) []byte {
		// Same bytes but one value of the name column: "Group 0" -> "Group 1"
		// would break the CRC, so flip a byte of the footer's created_by
		// string instead, which nothing but the hash covers.
		i := bytes.LastIndex(b, []byte("parquet-go"))
		if i < 0 {
			t.Fatal("no created_by in the footer")
		}
		b[i] = 'P'
		return b
	})
	r := mustVerify(t, s, Options{})
	wantFailure(t, r, CheckChecksums, key, "SHA-256")
	wantOnlyFailures(t, r, CheckChecksums)
}
