package verify

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/dsync-export/dsync-export/pkg/schema"
	"github.com/dsync-export/dsync-export/pkg/snapshot"
)

// Columns read by the data checks. Every page of every column is decoded
// once (scanRowGroup); these are also retained and decoded again for the
// checks.
const (
	colID             = "id"
	colDirectoryID    = "directory_id"
	colOrganizationID = "organization_id"
	colGroupID        = "group_id"
	colUserID         = "user_id"
)

// errFileDone stops reading a file whose problem is already recorded.
var errFileDone = errors.New("verify: file done")

// readColumns reads every file in full (scanRowGroup) and checks the id and
// reference columns of every table, in the order the references need:
// directories, then users and groups, then memberships.
func (v *verifier) readColumns(ctx context.Context) error {
	if err := v.forEach(ctx, v.byTable[schema.TableDirectories], v.readDirectories); err != nil {
		return err
	}
	entities := append(append([]*dataFile(nil), v.byTable[schema.TableDirectoryUsers]...), v.byTable[schema.TableDirectoryGroups]...)
	if err := v.forEach(ctx, entities, v.readEntities); err != nil {
		return err
	}
	v.users.sort()
	v.groups.sort()
	return v.forEach(ctx, v.byTable[schema.TableMemberships], v.readMemberships)
}

// columnErr records a column that cannot be decoded, or returns the storage
// error behind it.
func (v *verifier) columnErr(df *dataFile, col string, rowGroup int, err error) error {
	if serr := df.rd.storageErr(); serr != nil {
		return fmt.Errorf("verify: reading %s: %w", df.entry.Key, serr)
	}
	v.columns.errorf("%s: column %s of row group %d cannot be decoded (%v): the file is corrupt; re-run the export for %s", df.entry.Key, col, rowGroup, err, v.date)
	return errFileDone
}

// dirIndex returns the compact index of directory id, caching it in local.
func (v *verifier) dirIndex(local map[string]uint32, id string) uint32 {
	if i, ok := local[id]; ok {
		return i
	}
	v.dirMu.Lock()
	i := v.dirIndexLocked(id)
	v.dirMu.Unlock()
	local[id] = i
	return i
}

func (v *verifier) dirIndexLocked(id string) uint32 {
	i, ok := v.dirIdx[id]
	if !ok {
		i = uint32(len(v.dirNames))
		v.dirIdx[id] = i
		v.dirNames = append(v.dirNames, id)
	}
	return i
}

func (v *verifier) addCounts(counts map[string]int64, field func(*dirCount) *int64) {
	v.countMu.Lock()
	defer v.countMu.Unlock()
	for id, n := range counts {
		c := v.counts[id]
		if c == nil {
			c = &dirCount{}
			v.counts[id] = c
		}
		*field(c) += n
	}
}

// directoryRow locates the first row of a directory ID.
type directoryRow struct {
	key string
	row int64
}

// readDirectories reads the directories table (small): exact IDs and their
// organizations. Duplicates are found here, exactly.
func (v *verifier) readDirectories(_ context.Context, df *dataFile) error {
	idCol, err1 := columnIndex(df.f, colID)
	orgCol, err2 := columnIndex(df.f, colOrganizationID)
	if err := errors.Join(err1, err2); err != nil {
		return v.columnErr(df, colID, 0, err)
	}
	var base int64
	for rgi, rg := range df.f.RowGroups() {
		if err := v.scanRowGroup(df, rgi, rg, idCol, orgCol); err != nil {
			return ignoreDone(err)
		}
		orgs, err := readInterned(rg, orgCol, map[string]string{})
		if err != nil {
			return ignoreDone(v.columnErr(df, colOrganizationID, rgi, err))
		}
		err = streamColumn(rg, idCol, func(row int, b []byte) error {
			id := string(b)
			v.dirMu.Lock()
			defer v.dirMu.Unlock()
			if _, dup := v.dirOrg[id]; dup {
				first := v.dirFirst[id]
				v.unique.errorf("%s: id %s appears more than once: %s row %d and %s row %d", schema.TableDirectories, id, first.key, first.row, df.entry.Key, base+int64(row))
				return nil
			}
			v.dirOrg[id] = orgs[row]
			v.dirFirst[id] = directoryRow{df.entry.Key, base + int64(row)}
			v.dirIndexLocked(id)
			return nil
		})
		if err != nil {
			return ignoreDone(v.columnErr(df, colID, rgi, err))
		}
		base += rg.NumRows()
	}
	return nil
}

// readEntities reads a directory_users or directory_groups file: the hash of
// each id, and checks that each row's directory is exported and of the same
// organization.
func (v *verifier) readEntities(_ context.Context, df *dataFile) error {
	set, noun, field := &v.users, "user", func(c *dirCount) *int64 { return &c.users }
	if df.table.Name == schema.TableDirectoryGroups {
		set, noun, field = &v.groups, "group", func(c *dirCount) *int64 { return &c.groups }
	}
	idCol, err1 := columnIndex(df.f, colID)
	dirCol, err2 := columnIndex(df.f, colDirectoryID)
	orgCol, err3 := columnIndex(df.f, colOrganizationID)
	if err := errors.Join(err1, err2, err3); err != nil {
		return v.columnErr(df, colID, 0, err)
	}
	intern := map[string]string{}
	local := map[string]uint32{}
	var batch []idEntry
	for rgi, rg := range df.f.RowGroups() {
		if err := v.scanRowGroup(df, rgi, rg, idCol, dirCol, orgCol); err != nil {
			return ignoreDone(err)
		}
		dirs, err := readInterned(rg, dirCol, intern)
		if err != nil {
			return ignoreDone(v.columnErr(df, colDirectoryID, rgi, err))
		}
		orgs, err := readInterned(rg, orgCol, intern)
		if err != nil {
			return ignoreDone(v.columnErr(df, colOrganizationID, rgi, err))
		}
		counts := map[string]int64{}
		batch = batch[:0]
		err = streamColumn(rg, idCol, func(row int, b []byte) error {
			d := dirs[row]
			org, exported := v.dirOrg[d]
			switch {
			case !exported:
				v.refs.errorf("%s: %s %s references directory %s, which is not in the %s table", df.entry.Key, noun, b, d, schema.TableDirectories)
			case org != orgs[row]:
				v.refs.errorf("%s: %s %s has organization_id %s, but its directory %s belongs to %s", df.entry.Key, noun, b, orgs[row], d, org)
			}
			batch = append(batch, idEntry{h: v.hash.id(b), dir: v.dirIndex(local, d)})
			counts[d]++
			return nil
		})
		if err != nil {
			return ignoreDone(v.columnErr(df, colID, rgi, err))
		}
		set.add(batch)
		v.addCounts(counts, field)
	}
	return nil
}

// readMemberships checks that each membership's user and group exist in its
// directory, and records the (group_id, user_id) pairs for uniqueness.
func (v *verifier) readMemberships(_ context.Context, df *dataFile) error {
	dirCol, err1 := columnIndex(df.f, colDirectoryID)
	orgCol, err2 := columnIndex(df.f, colOrganizationID)
	groupCol, err3 := columnIndex(df.f, colGroupID)
	userCol, err4 := columnIndex(df.f, colUserID)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return v.columnErr(df, colUserID, 0, err)
	}
	intern := map[string]string{}
	local := map[string]uint32{}
	groupHash := map[string]uint64{}
	var batch []uint64
	for rgi, rg := range df.f.RowGroups() {
		if err := v.scanRowGroup(df, rgi, rg, dirCol, orgCol, groupCol, userCol); err != nil {
			return ignoreDone(err)
		}
		var cols [3][]string
		for i, c := range []struct {
			idx  int
			name string
		}{{dirCol, colDirectoryID}, {orgCol, colOrganizationID}, {groupCol, colGroupID}} {
			var err error
			if cols[i], err = readInterned(rg, c.idx, intern); err != nil {
				return ignoreDone(v.columnErr(df, c.name, rgi, err))
			}
		}
		dirs, orgs, groups := cols[0], cols[1], cols[2]
		counts := map[string]int64{}
		batch = batch[:0]
		err := streamColumn(rg, userCol, func(row int, user []byte) error {
			d, g := dirs[row], groups[row]
			what := func() string { return fmt.Sprintf("%s: membership (group %s, user %s)", df.entry.Key, g, user) }
			org, exported := v.dirOrg[d]
			switch {
			case !exported:
				v.refs.errorf("%s references directory %s, which is not in the %s table", what(), d, schema.TableDirectories)
			case org != orgs[row]:
				v.refs.errorf("%s has organization_id %s, but its directory %s belongs to %s", what(), orgs[row], d, org)
			}
			di := v.dirIndex(local, d)
			gh, ok := groupHash[g]
			if !ok {
				gh = v.hash.idString(g)
				groupHash[g] = gh
			}
			v.checkRef(&v.groups, gh, di, what, "group", g, schema.TableDirectoryGroups, d)
			v.checkRef(&v.users, v.hash.id(user), di, what, "user", string(user), schema.TableDirectoryUsers, d)
			batch = append(batch, v.hash.pair(g, user))
			counts[d]++
			return nil
		})
		if err != nil {
			return ignoreDone(v.columnErr(df, colUserID, rgi, err))
		}
		v.pairs.add(batch)
		v.addCounts(counts, func(c *dirCount) *int64 { return &c.memberships })
	}
	return nil
}

// checkRef records a membership whose user or group is missing or in another
// directory.
func (v *verifier) checkRef(set *idSet, h uint64, dir uint32, what func() string, noun, id, table, dirID string) {
	exists, same, other := set.lookup(h, dir)
	switch {
	case !exists:
		v.refs.errorf("%s references %s %s, which is not in the %s table (dangling membership)", what(), noun, id, table)
	case !same:
		v.refs.errorf("%s is in directory %s, but %s %s is in directory %s", what(), dirID, noun, id, v.dirName(other))
	}
}

// dirName returns the directory ID of a compact index.
func (v *verifier) dirName(i uint32) string {
	v.dirMu.Lock()
	defer v.dirMu.Unlock()
	return v.dirNames[i]
}

func ignoreDone(err error) error {
	if errors.Is(err, errFileDone) {
		return nil
	}
	return err
}

// checkUnique reports duplicate IDs (and duplicate memberships). Candidate
// duplicates come from equal hashes; their rows are re-read to compare the
// exact strings and to name where each copy is.
func (v *verifier) checkUnique(ctx context.Context) error {
	if dups := v.users.dupHashes(); dups != nil {
		if err := v.findDuplicates(ctx, schema.TableDirectoryUsers, dups); err != nil {
			return err
		}
	}
	if dups := v.groups.dupHashes(); dups != nil {
		if err := v.findDuplicates(ctx, schema.TableDirectoryGroups, dups); err != nil {
			return err
		}
	}
	if dups := v.pairs.dupHashes(); dups != nil {
		if err := v.findDuplicates(ctx, schema.TableMemberships, dups); err != nil {
			return err
		}
	}
	v.add(v.unique.check(CheckUniqueIDs, fmt.Sprintf("ids checked: %d directories, %d users, %d groups; (group_id, user_id) pairs checked: %d memberships",
		len(v.dirOrg), v.users.len(), v.groups.len(), len(v.pairs.h))))
	return nil
}

// maxPositions bounds the rows listed for one duplicate.
const maxPositions = 5

// findDuplicates re-reads the key columns of table and reports the keys
// whose hash is in dups and that occur more than once.
func (v *verifier) findDuplicates(ctx context.Context, table string, dups map[uint64]struct{}) error {
	type position struct {
		key string
		row int64
	}
	found := map[string][]position{}
	var order []string
	note := func(k string, p position) {
		if _, ok := found[k]; !ok {
			order = append(order, k)
		}
		found[k] = append(found[k], p)
	}
	for _, df := range v.byTable[table] {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		var base int64
		for rgi, rg := range df.f.RowGroups() {
			var err error
			if table == schema.TableMemberships {
				groupCol, _ := columnIndex(df.f, colGroupID)
				userCol, _ := columnIndex(df.f, colUserID)
				var groups []string
				if groups, err = readInterned(rg, groupCol, map[string]string{}); err == nil {
					err = streamColumn(rg, userCol, func(row int, user []byte) error {
						if _, ok := dups[v.hash.pair(groups[row], user)]; ok {
							note(fmt.Sprintf("(group_id %s, user_id %s)", groups[row], user), position{df.entry.Key, base + int64(row)})
						}
						return nil
					})
				}
			} else {
				idCol, _ := columnIndex(df.f, colID)
				err = streamColumn(rg, idCol, func(row int, id []byte) error {
					if _, ok := dups[v.hash.id(id)]; ok {
						note("id "+string(id), position{df.entry.Key, base + int64(row)})
					}
					return nil
				})
			}
			if err != nil {
				if err := ignoreDone(v.columnErr(df, colID, rgi, err)); err != nil {
					return err
				}
				// The candidates cannot be confirmed from this file: that is a
				// failure of the uniqueness check, not a pass.
				v.unique.errorf("%s: %d candidate duplicate IDs could not be confirmed because %s cannot be re-read", table, len(dups), df.entry.Key)
				break
			}
			base += rg.NumRows()
		}
	}
	for _, k := range order {
		ps := found[k]
		if len(ps) < 2 {
			continue // a hash collision between different keys
		}
		var where []string
		for _, p := range ps[:min(len(ps), maxPositions)] {
			where = append(where, fmt.Sprintf("%s row %d", p.key, p.row))
		}
		if len(ps) > maxPositions {
			where = append(where, "…")
		}
		v.unique.errorf("%s: %s appears %d times: %s", table, k, len(ps), strings.Join(where, ", "))
	}
	return nil
}

// checkDirectoryCounts compares each directory's rows with the counts the
// manifest recorded for it.
func (v *verifier) checkDirectoryCounts() {
	var f findings
	listed := map[string]bool{}
	for _, d := range v.m.Directories {
		listed[d.ID] = true
		_, exported := v.dirOrg[d.ID]
		if d.Status == snapshot.DirectoryOK && !exported {
			f.dirErrorf(d.ID, "directory %s has status %s in the manifest but is not in the %s table", d.ID, d.Status, schema.TableDirectories)
		}
		c := v.counts[d.ID]
		if c == nil {
			c = &dirCount{}
		}
		for _, n := range []struct {
			table      string
			got, wantN int64
		}{
			{schema.TableDirectoryUsers, c.users, d.Users},
			{schema.TableDirectoryGroups, c.groups, d.Groups},
			{schema.TableMemberships, c.memberships, d.Memberships},
		} {
			if n.got != n.wantN {
				f.dirErrorf(d.ID, "directory %s has %d rows in %s, the manifest says %d", d.ID, n.got, n.table, n.wantN)
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(v.dirOrg)) {
		if !listed[id] {
			f.dirErrorf(id, "directory %s is in the %s table but not in the manifest's directories", id, schema.TableDirectories)
		}
	}
	v.add(f.check(CheckDirectoryCounts, fmt.Sprintf("users, groups and memberships of %d directories compared with the manifest", len(v.m.Directories))))
}
