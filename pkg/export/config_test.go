package export_test

import (
	"strings"
	"testing"

	"github.com/dsync-export/dsync-export/pkg/export"
)

func TestConfigValidateNamesEveryProblem(t *testing.T) {
	cfg := export.DefaultConfig()
	cfg.Concurrency = 0
	cfg.MembershipMode = "sometimes"
	cfg.DirectoryIDs = []string{"directory_user_01ABC"}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"Concurrency: 0", `"sometimes"`, "directory_user_01ABC"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}
