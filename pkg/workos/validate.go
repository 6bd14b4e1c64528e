package workos

import (
	"net/url"
	"strings"
	"unicode"
)

// organizationIDPrefix starts every organization ID.
const organizationIDPrefix = "org_"

// idKind describes one kind of object ID for validation and error messages.
type idKind struct {
	name    string // "directory ID"
	prefix  string
	example string
}

var (
	kindDirectory    = idKind{"directory ID", DirectoryIDPrefix, "directory_01ECAZ4NV9QMV47GW873HDCX74"}
	kindUser         = idKind{"directory user ID", DirectoryUserIDPrefix, "directory_user_01E1JG7J09H96KYP8HM9B0G5SJ"}
	kindGroup        = idKind{"directory group ID", DirectoryGroupIDPrefix, "directory_group_01E1JJS84MFPPQ3G655FHTKX6Z"}
	kindOrganization = idKind{"organization ID", organizationIDPrefix, "org_01EHZNVPK3SFK441A1RGBFSHRT"}
)

// checkID validates id as an ID of kind k; what names the argument in errors
// (e.g. "the directory filter").
func checkID(k idKind, what, id string) error {
	if id == "" {
		return invalidArg("%s is empty: want a %s such as %s", what, k.name, k.example)
	}
	if !strings.HasPrefix(id, k.prefix) {
		return invalidArg("%s %q is not a %s: want the prefix %q, as in %s", what, id, k.name, k.prefix, k.example)
	}
	// Directory user and group IDs also start with "directory_".
	if k.prefix == DirectoryIDPrefix {
		for _, other := range []idKind{kindUser, kindGroup} {
			if strings.HasPrefix(id, other.prefix) {
				return invalidArg("%s %q is a %s, not a %s: want an ID such as %s", what, id, other.name, k.name, k.example)
			}
		}
	}
	rest := id[len(k.prefix):]
	if rest == "" || strings.IndexFunc(rest, func(r rune) bool {
		return !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) || r == '_' || r == '-')
	}) >= 0 {
		return invalidArg("%s %q is malformed: want the prefix %q followed by letters and digits, as in %s", what, id, k.prefix, k.example)
	}
	return nil
}

// CheckDirectoryID, CheckDirectoryUserID and CheckDirectoryGroupID report
// whether id is a well-formed ID of that kind: its prefix followed by ASCII
// letters, digits, '_' or '-'. The client applies the same checks to the IDs
// it is given; these let a caller check the IDs the API returns (an ID is
// used in file contents and log lines). The errors match ErrInvalidArgument.
func CheckDirectoryID(id string) error { return checkID(kindDirectory, "directory ID", id) }

// CheckDirectoryUserID: see CheckDirectoryID.
func CheckDirectoryUserID(id string) error { return checkID(kindUser, "directory user ID", id) }

// CheckDirectoryGroupID: see CheckDirectoryID.
func CheckDirectoryGroupID(id string) error { return checkID(kindGroup, "directory group ID", id) }

// checkCursor refuses cursors with whitespace or control characters, which no
// object ID has (usually a copy-paste accident).
func checkCursor(name, v string) error {
	if strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return invalidArg("%s cursor %q contains whitespace or control characters: pass an object ID from list_metadata", name, v)
	}
	return nil
}

// objectPath returns "collection/<escaped id>".
func objectPath(collection, id string) string {
	return collection + "/" + url.PathEscape(id)
}
