package workostest

import (
	"net/http"
	"strconv"
)

// parsePage validates the pagination parameters shared by the list endpoints.
// cursor decodes an object ID of the listed kind to its key.
func parsePage(req *request, cursor func(string) (int64, bool)) (pageQuery, []fieldError) {
	q := pageQuery{order: orderDesc, limit: 10}
	var errs []fieldError
	if req.query.Has("limit") {
		n, err := strconv.Atoi(req.query.Get("limit"))
		if err != nil || n < 1 || n > 100 {
			errs = append(errs, fieldError{"invalid", "limit"})
		}
		q.limit = n
	}
	if req.query.Has("order") {
		switch req.query.Get("order") {
		case "desc":
			q.order = orderDesc
		case "asc":
			q.order = orderAsc
		case "normal":
			q.order = orderNormal
		default:
			errs = append(errs, fieldError{"invalid", "order"})
		}
	}
	for _, c := range []struct {
		name string
		dst  **int64
	}{{"after", &q.after}, {"before", &q.before}} {
		v := req.query.Get(c.name)
		if v == "" {
			continue
		}
		k, ok := cursor(v)
		if !ok {
			errs = append(errs, fieldError{"invalid", c.name})
			continue
		}
		*c.dst = &k
	}
	return q, errs
}

func (s *Server) dirCursor(id string) (int64, bool) {
	d := s.ds.lookupDir(id)
	if d == nil {
		return 0, false
	}
	return int64(d.idx), true
}

func (s *Server) userCursor(id string) (int64, bool) {
	d, i, ok := s.ds.lookupUser(id)
	if !ok {
		return 0, false
	}
	return key(d.idx, i), true
}

func (s *Server) groupCursor(id string) (int64, bool) {
	d, j, ok := s.ds.lookupGroup(id)
	if !ok {
		return 0, false
	}
	return key(d.idx, j), true
}

func (req *request) notFound(what, id string) response {
	if len(id) > 100 {
		id = id[:100] + "…"
	}
	return response{status: http.StatusNotFound, body: appendMessage(req.buf, what+" not found: '"+id+"'.")}
}

// unsupported adds an error for each filter the fake does not implement
// (no test needs them), so a request using one fails loudly instead of
// getting an unfiltered list.
func (req *request) unsupported(errs []fieldError, filters ...string) []fieldError {
	for _, f := range filters {
		if req.query.Has(f) {
			errs = append(errs, fieldError{"not_implemented_by_fake", f})
		}
	}
	return errs
}

func (req *request) invalid(errs []fieldError) response {
	return response{status: http.StatusUnprocessableEntity, body: appendValidation(req.buf, errs)}
}

// renderList writes the list envelope of page p; item appends one object and
// id names a key for list_metadata.
func renderList(req *request, p page, item func([]byte, int64) []byte, id func(int64) string) response {
	b := appendListStart(req.buf)
	for n, k := range p.keys {
		if n > 0 {
			b = append(b, ',')
		}
		b = item(b, k)
	}
	var before, after string
	if p.before != nil {
		before = id(*p.before)
	}
	if p.after != nil {
		after = id(*p.after)
	}
	return response{status: http.StatusOK, body: appendListEnd(b, before, after)}
}

func split(k int64) (d, i int) { return int(k >> 32), int(k & 0xFFFFFFFF) }

// ---- directories ----

func (s *Server) listDirectories(req *request) response {
	pq, errs := parsePage(req, s.dirCursor)
	errs = req.unsupported(errs, "search", "domain")
	if len(errs) > 0 {
		return req.invalid(errs)
	}
	org := req.query.Get("organization_id")
	var keys listSeq
	for _, d := range s.ds.dirs {
		if d.deleted.Load() || org != "" && s.ds.orgs[d.org].id != org {
			continue
		}
		keys = append(keys, int64(d.idx))
	}
	p := paginate(keys, pq, make([]int64, 0, pq.limit))
	return renderList(req, p,
		func(b []byte, k int64) []byte { return s.ds.appendDirectory(b, s.ds.dirs[k]) },
		func(k int64) string { return s.ds.dirs[k].id })
}

func (s *Server) getDirectory(req *request) response {
	d := s.ds.lookupDir(req.id)
	if d == nil || d.deleted.Load() {
		return req.notFound("Directory", req.id)
	}
	return response{status: http.StatusOK, body: s.ds.appendDirectory(req.buf, d)}
}

func (s *Server) deleteDirectory(req *request) response {
	if !s.DeleteDirectory(req.id) {
		return req.notFound("Directory", req.id)
	}
	return response{status: http.StatusAccepted, body: req.buf[:0]}
}

// ---- users ----

func (s *Server) listUsers(req *request) response {
	pq, errs := parsePage(req, s.userCursor)
	errs = req.unsupported(errs, "idp_id", "email")
	if len(errs) > 0 {
		return req.invalid(errs)
	}
	dirID, groupID := req.query.Get("directory"), req.query.Get("group")
	var d *dirData
	if dirID != "" {
		if d = s.ds.lookupDir(dirID); d == nil || d.deleted.Load() {
			return req.notFound("Directory", dirID)
		}
	}
	var gd *dirData
	var j int
	if groupID != "" {
		var ok bool
		if gd, j, ok = s.ds.lookupGroup(groupID); !ok || gd.deleted.Load() || gd.groupDeleted(j) {
			return req.notFound("Directory group", groupID)
		}
	}

	var sq seq
	switch {
	case d != nil && gd != nil && d != gd:
		sq = listSeq(nil)
	case gd != nil:
		sq = s.ds.membersSeq(gd, j)
	case d != nil:
		sq = s.ds.usersSeq(d)
	default:
		sq = allSeq{ds: s.ds}
	}
	var kbuf [100]int64
	p := paginate(sq, pq, kbuf[:0])
	return renderList(req, p,
		func(b []byte, k int64) []byte {
			dd, i := split(k)
			u := s.ds.user(s.ds.dirs[dd], i)
			return s.ds.appendUser(b, &u)
		},
		func(k int64) string {
			dd, i := split(k)
			d := s.ds.dirs[dd]
			return s.ds.codec.id(kindUser, d.userCreated(i), uint32(dd), uint32(i))
		})
}

func (s *Server) getUser(req *request) response {
	d, i, ok := s.ds.lookupUser(req.id)
	if !ok || d.deleted.Load() || d.userDeleted(i) {
		return req.notFound("Directory user", req.id)
	}
	u := s.ds.user(d, i)
	return response{status: http.StatusOK, body: s.ds.appendUser(req.buf, &u)}
}

// ---- groups ----

func (s *Server) listGroups(req *request) response {
	pq, errs := parsePage(req, s.groupCursor)
	if len(errs) > 0 {
		return req.invalid(errs)
	}
	dirID, userID := req.query.Get("directory"), req.query.Get("user")
	var d *dirData
	if dirID != "" {
		if d = s.ds.lookupDir(dirID); d == nil || d.deleted.Load() {
			return req.notFound("Directory", dirID)
		}
	}
	var sq seq
	switch {
	case userID != "":
		ud, i, ok := s.ds.lookupUser(userID)
		if !ok || ud.deleted.Load() || ud.userDeleted(i) {
			return req.notFound("Directory user", userID)
		}
		var keys listSeq
		if d == nil || d == ud {
			for _, g := range s.ds.userGroups(ud, i, nil) {
				keys = append(keys, key(ud.idx, g))
			}
		}
		sq = keys
	case d != nil:
		sq = s.ds.groupsSeq(d)
	default:
		sq = allSeq{ds: s.ds, groups: true}
	}
	var kbuf [100]int64
	p := paginate(sq, pq, kbuf[:0])
	return renderList(req, p,
		func(b []byte, k int64) []byte {
			dd, j := split(k)
			g := s.ds.group(s.ds.dirs[dd], j)
			return s.ds.appendGroup(b, &g, true)
		},
		func(k int64) string {
			dd, j := split(k)
			return s.ds.codec.id(kindGroup, s.ds.dirs[dd].groupCreated(j), uint32(dd), uint32(j))
		})
}

func (s *Server) getGroup(req *request) response {
	d, j, ok := s.ds.lookupGroup(req.id)
	if !ok || d.deleted.Load() || d.groupDeleted(j) {
		return req.notFound("Directory group", req.id)
	}
	g := s.ds.group(d, j)
	return response{status: http.StatusOK, body: s.ds.appendGroup(req.buf, &g, true)}
}
