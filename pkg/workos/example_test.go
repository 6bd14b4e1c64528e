package workos_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/dsync-export/dsync-export/pkg/workos"
)

// fakeWorkOS serves two pages of directory users.
func fakeWorkOS() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("after") == "" {
			fmt.Fprint(w, `{"object":"list","data":[{"object":"directory_user","id":"directory_user_01A","email":"ada@example.com","state":"active"}],"list_metadata":{"before":null,"after":"directory_user_01A"}}`)
			return
		}
		fmt.Fprint(w, `{"object":"list","data":[{"object":"directory_user","id":"directory_user_01B","email":null,"state":"inactive"}],"list_metadata":{"before":"directory_user_01B","after":null}}`)
	}))
}

func ExampleClient_DirectoryUsers() {
	srv := fakeWorkOS()
	defer srv.Close()

	c, err := workos.NewClient("sk_test_example", workos.WithBaseURL(srv.URL))
	if err != nil {
		fmt.Println(err)
		return
	}
	opts := &workos.ListDirectoryUsersOptions{Directory: "directory_01ECAZ4NV9QMV47GW873HDCX74"}
	for u, err := range c.DirectoryUsers(context.Background(), opts) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(u.ID, u.State, u.Email != nil)
	}
	fmt.Printf("%+v\n", c.Stats())
	// Output:
	// directory_user_01A active true
	// directory_user_01B inactive false
	// {Requests:2 Pages:2 Retries:0 RateLimited:0 NetworkErrors:0}
}

func ExampleClient_DirectoryUserPages() {
	srv := fakeWorkOS()
	defer srv.Close()

	c, err := workos.NewClient("sk_test_example", workos.WithBaseURL(srv.URL))
	if err != nil {
		fmt.Println(err)
		return
	}
	// Page by page, keeping the cursor as a checkpoint: a walk resumed from
	// it passes it as ListOptions.After. The iterator follows the cursors and
	// stops with an error if the API hands one back again.
	opts := &workos.ListDirectoryUsersOptions{Directory: "directory_01ECAZ4NV9QMV47GW873HDCX74"}
	for page, err := range c.DirectoryUserPages(context.Background(), opts) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(len(page.Data), "user(s)")
		if after, more := page.NextAfter(); more {
			_ = after // checkpoint here
		}
	}
	// Output:
	// 1 user(s)
	// 1 user(s)
}
