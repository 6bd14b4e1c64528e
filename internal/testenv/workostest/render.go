package workostest

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/dsync-export/dsync-export/pkg/workos"
)

// The wire JSON is written by hand, in the spec's property order, because a
// page of 100 users must cost well under a millisecond. Models for the
// accessors are built from the same records.

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. UTF-8 is kept as is; quotes,
// backslashes, control characters and invalid bytes are escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendTime appends ms (Unix milliseconds, year 1970..9999) as
// "2026-01-15T12:00:00.123Z", without going through time.Format.
func appendTime(b []byte, ms int64) []byte {
	days, rem := ms/msPerDay, ms%msPerDay
	// Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
	z := days + 719468
	era := z / 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	day := doy - (153*mp+2)/5 + 1
	month := mp + 3
	if month > 12 {
		month -= 12
	}
	year := yoe + era*400
	if month <= 2 {
		year++
	}
	b = append(b, '"')
	b = append4(b, year)
	b = append(b, '-')
	b = append2(b, month)
	b = append(b, '-')
	b = append2(b, day)
	b = append(b, 'T')
	b = append2(b, rem/msPerHour)
	b = append(b, ':')
	b = append2(b, rem/60000%60)
	b = append(b, ':')
	b = append2(b, rem/1000%60)
	b = append(b, '.')
	b = append(b, byte('0'+rem/100%10), byte('0'+rem/10%10), byte('0'+rem%10))
	return append(b, 'Z', '"')
}

func append2(b []byte, v int64) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }

func append4(b []byte, v int64) []byte {
	return append(b, byte('0'+v/1000), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
}

func modelTime(ms int64) workos.Time { return workos.Time{Time: time.UnixMilli(ms).UTC()} }

// ---- directories ----

func (ds *dataset) appendDirectory(b []byte, d *dirData) []byte {
	o := &ds.orgs[d.org]
	b = append(b, `{"object":"directory","id":`...)
	b = appendString(b, d.id)
	b = append(b, `,"organization_id":`...)
	b = appendString(b, o.id)
	b = append(b, `,"external_key":`...)
	b = appendString(b, d.externalKey)
	b = append(b, `,"type":`...)
	b = appendString(b, d.typ)
	b = append(b, `,"state":`...)
	b = appendString(b, d.state)
	b = append(b, `,"name":`...)
	b = appendString(b, d.name)
	if d.hasDomain {
		b = append(b, `,"domain":`...)
		b = appendString(b, o.domain)
	}
	if ds.hasMetadata(d) {
		active, inactive := d.userCounts()
		b = append(b, `,"metadata":{"users":{"active":`...)
		b = strconv.AppendInt(b, active, 10)
		b = append(b, `,"inactive":`...)
		b = strconv.AppendInt(b, inactive, 10)
		b = append(b, `},"groups":`...)
		b = strconv.AppendInt(b, int64(d.liveGroups()), 10)
		b = append(b, '}')
	}
	b = append(b, `,"created_at":`...)
	b = appendTime(b, d.created)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, d.updated)
	return append(b, '}')
}

func (ds *dataset) directoryModel(d *dirData) workos.Directory {
	o := &ds.orgs[d.org]
	m := workos.Directory{
		Object:         workos.ObjectDirectory,
		ID:             d.id,
		OrganizationID: o.id,
		ExternalKey:    d.externalKey,
		Type:           workos.DirectoryType(d.typ),
		State:          workos.DirectoryState(d.state),
		Name:           d.name,
		CreatedAt:      modelTime(d.created),
		UpdatedAt:      modelTime(d.updated),
	}
	if d.hasDomain {
		m.Domain = strp(o.domain)
	}
	if ds.hasMetadata(d) {
		active, inactive := d.userCounts()
		m.Metadata = &workos.DirectoryMetadata{
			Users:  workos.DirectoryUserCounts{Active: active, Inactive: inactive},
			Groups: int64(d.liveGroups()),
		}
	}
	return m
}

// ---- groups ----

// appendGroup appends a directory group. withRaw adds raw_attributes, which
// the spec makes optional; groups embedded in a user's legacy groups array
// leave it out.
func (ds *dataset) appendGroup(b []byte, g *groupRec, withRaw bool) []byte {
	b = append(b, `{"object":"directory_group","id":`...)
	b = append(b, '"')
	b = ds.codec.appendID(b, kindGroup, g.created, uint32(g.d.idx), uint32(g.j))
	b = append(b, `","idp_id":"`...)
	b = g.appendIdpID(b)
	b = append(b, `","directory_id":"`...)
	b = append(b, g.d.id...)
	b = append(b, `","organization_id":"`...)
	b = append(b, ds.orgs[g.d.org].id...)
	b = append(b, `","name":`...)
	if g.nameSuffix == 0 && g.nameOv == "" {
		b = appendString(b, g.name)
	} else {
		b = appendString(b, string(g.appendName(nil)))
	}
	if withRaw {
		b = append(b, `,"raw_attributes":{}`...)
	}
	b = append(b, `,"created_at":`...)
	b = appendTime(b, g.created)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, g.updated)
	return append(b, '}')
}

func (ds *dataset) groupModel(g *groupRec, withRaw bool) workos.DirectoryGroup {
	m := workos.DirectoryGroup{
		Object:         workos.ObjectDirectoryGroup,
		ID:             ds.codec.id(kindGroup, g.created, uint32(g.d.idx), uint32(g.j)),
		IdpID:          string(g.appendIdpID(nil)),
		DirectoryID:    g.d.id,
		OrganizationID: ds.orgs[g.d.org].id,
		Name:           string(g.appendName(nil)),
		CreatedAt:      modelTime(g.created),
		UpdatedAt:      modelTime(g.updated),
	}
	if withRaw {
		m.RawAttributes = json.RawMessage("{}")
	}
	return m
}

// ---- users ----

// All table strings used unquoted below (slugs, domains, IDs, role slugs,
// types) are plain ASCII without quotes or backslashes.

func (ds *dataset) appendUser(b []byte, u *userRec) []byte {
	b = ds.appendUserFields(b, u)
	b = append(b, `,"groups":[`...)
	if ds.legacy {
		var buf [3]int
		for k, j := range ds.userGroups(u.d, u.i, buf[:0]) {
			if k > 0 {
				b = append(b, ',')
			}
			g := ds.group(u.d, j)
			b = ds.appendGroup(b, &g, false)
		}
	}
	return append(b, "]}"...)
}

// appendUserFields appends a directory user without its deprecated groups
// array and closing brace: the spec's DirectoryUser, which events carry,
// short of the brace.
func (ds *dataset) appendUserFields(b []byte, u *userRec) []byte {
	d := u.d
	b = append(b, `{"object":"directory_user","id":"`...)
	b = ds.codec.appendID(b, kindUser, u.created, uint32(d.idx), uint32(u.i))
	b = append(b, `","directory_id":"`...)
	b = append(b, d.id...)
	b = append(b, `","organization_id":"`...)
	b = append(b, ds.orgs[d.org].id...)
	b = append(b, `","idp_id":"`...)
	b = d.appendUserIdpID(b, u.i)
	b = append(b, `","email":`...)
	b = ds.appendUserEmail(b, u)
	fn, ln := &firstNames[u.first], &lastNames[u.dispLast]
	switch u.nameMode {
	case nameFull:
		b = append(b, `,"first_name":`...)
		b = appendString(b, fn.display)
		b = append(b, `,"last_name":`...)
		b = appendString(b, ln.display)
		b = append(b, `,"name":`...)
		b = appendString(b, fullName(fn, ln))
	case nameNoLast:
		b = append(b, `,"first_name":`...)
		b = appendString(b, fn.display)
		b = append(b, `,"last_name":null,"name":`...)
		b = appendString(b, fn.display)
	default:
		b = append(b, `,"first_name":null,"last_name":null,"name":null`...)
	}
	b = append(b, `,"emails":[`...)
	switch u.emailsMode {
	case emailsWork, emailsWorkPersonal:
		b = append(b, `{"primary":true,"type":"work","value":`...)
		b = ds.appendUserEmail(b, u)
		b = append(b, '}')
		if u.emailsMode == emailsWorkPersonal {
			b = append(b, `,{"primary":false,"type":"personal","value":"`...)
			b = appendEmailLocal(b, u.first, u.last, u.k)
			b = append(b, '@')
			b = append(b, personalDomains[u.personal]...)
			b = append(b, `"}`...)
		}
	case emailsNullValue:
		b = append(b, `{"primary":true,"type":"work","value":null}`...)
	}
	b = append(b, `],"job_title":`...)
	if u.job < 0 {
		b = append(b, "null"...)
	} else {
		b = appendString(b, jobTitles[u.job])
	}
	b = append(b, `,"username":`...)
	switch u.usernameMode {
	case usernameNull:
		b = append(b, "null"...)
	case usernameEmail:
		b = ds.appendUserEmail(b, u)
	default:
		b = append(b, '"')
		b = appendEmailLocal(b, u.first, u.last, u.k)
		b = append(b, '"')
	}
	b = append(b, `,"state":"`...)
	b = append(b, u.state...)
	b = append(b, `","raw_attributes":`...)
	b = appendRawAttributes(b, u)
	b = append(b, `,"custom_attributes":`...)
	b = appendCustomAttributes(b, u.customH, u.job, u.i)
	if u.role >= 0 {
		b = append(b, `,"role":{"slug":"`...)
		b = append(b, roleSlugs[u.role]...)
		b = append(b, `"}`...)
	}
	switch u.rolesMode {
	case rolesEmpty:
		b = append(b, `,"roles":[]`...)
	case rolesOne, rolesTwo:
		b = append(b, `,"roles":[{"slug":"`...)
		b = append(b, roleSlugs[u.role]...)
		b = append(b, `"}`...)
		if u.rolesMode == rolesTwo {
			b = append(b, `,{"slug":"auditor"}`...)
		}
		b = append(b, ']')
	}
	b = append(b, `,"created_at":`...)
	b = appendTime(b, u.created)
	b = append(b, `,"updated_at":`...)
	return appendTime(b, u.updated)
}

func (ds *dataset) appendUserEmail(b []byte, u *userRec) []byte {
	if u.emailNull {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = ds.appendEmail(b, u.d, u.first, u.last, u.k)
	return append(b, '"')
}

func appendRawAttributes(b []byte, u *userRec) []byte {
	if !u.rawLegacy {
		return append(b, "{}"...)
	}
	b = append(b, `{"source":"legacy-import","employeeId":"E`...)
	for p := 100000; p > 1 && u.i < p; p /= 10 {
		b = append(b, '0')
	}
	b = strconv.AppendInt(b, int64(u.i), 10)
	return append(b, `"}`...)
}

func fullName(fn, ln *personName) string {
	if fn.eastern && ln.eastern {
		return ln.display + fn.display
	}
	return fn.display + " " + ln.display
}

func (ds *dataset) userModel(u *userRec) workos.DirectoryUser {
	d := u.d
	m := workos.DirectoryUser{
		Object:           workos.ObjectDirectoryUser,
		ID:               ds.codec.id(kindUser, u.created, uint32(d.idx), uint32(u.i)),
		DirectoryID:      d.id,
		OrganizationID:   ds.orgs[d.org].id,
		IdpID:            string(d.appendUserIdpID(nil, u.i)),
		State:            workos.DirectoryUserState(u.state),
		Emails:           []workos.DirectoryUserEmail{},
		RawAttributes:    appendRawAttributes(nil, u),
		CustomAttributes: appendCustomAttributes(nil, u.customH, u.job, u.i),
		CreatedAt:        modelTime(u.created),
		UpdatedAt:        modelTime(u.updated),
		Groups:           []workos.DirectoryGroup{},
	}
	if !u.emailNull {
		m.Email = strp(string(ds.appendEmail(nil, d, u.first, u.last, u.k)))
	}
	fn, ln := &firstNames[u.first], &lastNames[u.dispLast]
	switch u.nameMode {
	case nameFull:
		m.FirstName, m.LastName, m.Name = strp(fn.display), strp(ln.display), strp(fullName(fn, ln))
	case nameNoLast:
		m.FirstName, m.Name = strp(fn.display), strp(fn.display)
	}
	t, f := true, false
	switch u.emailsMode {
	case emailsWork, emailsWorkPersonal:
		m.Emails = append(m.Emails, workos.DirectoryUserEmail{Primary: &t, Type: strp("work"), Value: m.Email})
		if u.emailsMode == emailsWorkPersonal {
			v := string(appendEmailLocal(nil, u.first, u.last, u.k)) + "@" + personalDomains[u.personal]
			m.Emails = append(m.Emails, workos.DirectoryUserEmail{Primary: &f, Type: strp("personal"), Value: &v})
		}
	case emailsNullValue:
		m.Emails = append(m.Emails, workos.DirectoryUserEmail{Primary: &t, Type: strp("work")})
	}
	if u.job >= 0 {
		m.JobTitle = strp(jobTitles[u.job])
	}
	switch u.usernameMode {
	case usernameEmail:
		m.Username = m.Email
	case usernameLocal:
		m.Username = strp(string(appendEmailLocal(nil, u.first, u.last, u.k)))
	}
	if u.role >= 0 {
		m.Role = &workos.SlimRole{Slug: roleSlugs[u.role]}
	}
	switch u.rolesMode {
	case rolesEmpty:
		m.Roles = []workos.SlimRole{}
	case rolesOne:
		m.Roles = []workos.SlimRole{{Slug: roleSlugs[u.role]}}
	case rolesTwo:
		m.Roles = []workos.SlimRole{{Slug: roleSlugs[u.role]}, {Slug: "auditor"}}
	}
	if ds.legacy {
		for _, j := range ds.userGroups(d, u.i, nil) {
			g := ds.group(d, j)
			m.Groups = append(m.Groups, ds.groupModel(&g, false))
		}
	}
	return m
}

// ---- envelopes and errors ----

func appendListStart(b []byte) []byte { return append(b, `{"object":"list","data":[`...) }

func appendListEnd(b []byte, before, after string) []byte {
	b = append(b, `],"list_metadata":{"before":`...)
	if before == "" {
		b = append(b, "null"...)
	} else {
		b = appendString(b, before)
	}
	b = append(b, `,"after":`...)
	if after == "" {
		b = append(b, "null"...)
	} else {
		b = appendString(b, after)
	}
	return append(b, "}}"...)
}

func appendMessage(b []byte, msg string) []byte {
	b = append(b, `{"message":`...)
	b = appendString(b, msg)
	return append(b, '}')
}

type fieldError struct{ code, field string }

func appendValidation(b []byte, errs []fieldError) []byte {
	b = append(b, `{"message":"Validation failed.","errors":[`...)
	for k, e := range errs {
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"code":`...)
		b = appendString(b, e.code)
		b = append(b, `,"field":`...)
		b = appendString(b, e.field)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}
