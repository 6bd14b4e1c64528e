package workostest_test

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"

	"github.com/dsync-export/dsync-export/internal/testenv/workostest"
)

func Example() {
	srv, err := workostest.New(workostest.Config{Seed: 1, Directories: 2, UsersPerDirectory: 25, GroupsPerDirectory: 4})
	if err != nil {
		log.Fatal(err)
	}
	baseURL, err := srv.Start("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	dir := srv.Directories()[0]
	req, _ := http.NewRequest("GET", baseURL+"directory_users?order=asc&limit=3&directory="+dir.ID, nil)
	req.Header.Set("Authorization", "Bearer "+workostest.DefaultAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Data []struct {
			Name  *string `json:"name"`
			Email *string `json:"email"`
		} `json:"data"`
		ListMetadata struct {
			After *string `json:"after"`
		} `json:"list_metadata"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		log.Fatal(err)
	}
	for _, u := range page.Data {
		fmt.Printf("%s <%s>\n", orNull(u.Name), orNull(u.Email))
	}
	users, groups, memberships := srv.Counts(dir.ID)
	fmt.Println(users, groups, memberships, page.ListMetadata.After != nil)
	// Output:
	// Ava Müller <null>
	// Olivia Murphy <olivia.murphy@foo-corp.com>
	// Ines <ines.vanderberg@foo-corp.com>
	// 25 4 21 true
}

func orNull(s *string) string {
	if s == nil {
		return "null"
	}
	return *s
}
