package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/dsync-export/dsync-export/pkg/export"
	"github.com/dsync-export/dsync-export/pkg/lambdafn"
	"github.com/dsync-export/dsync-export/pkg/schema"
)

// display is what a local run shows on stderr: readable text log lines and,
// on a terminal, a live progress bar (then only warnings are logged unless
// LOG_LEVEL asks for more, so log lines do not break up the bar).
type display struct {
	log *slog.Logger
	bar *progressbar.ProgressBar
	// watch is nil without a terminal.
	watch func(export.Status)
}

func newDisplay(stderr io.Writer, level slog.Level, levelSet bool) *display {
	d := &display{}
	tty := false
	if f, ok := stderr.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	if tty && !levelSet {
		level = slog.LevelWarn
	}
	d.log = lambdafn.NewLocalLogger(stderr, level)
	if !tty {
		return d
	}
	d.bar = progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription("listing directories"),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
	)
	d.watch = func(s export.Status) {
		max, cur := int64(s.DirectoriesTotal), int64(s.DirectoriesDone)
		if s.UsersExpected > 0 {
			max, cur = s.UsersExpected, min(s.Rows[schema.TableDirectoryUsers], s.UsersExpected)
		}
		d.bar.ChangeMax64(max)
		_ = d.bar.Set64(cur)
		d.bar.Describe(describe(s))
	}
	return d
}

// describe is the progress bar's text: units, directories, rows, requests,
// 429s, ETA.
func describe(s export.Status) string {
	eta := "?"
	if s.ETA >= 0 {
		eta = s.ETA.String()
	}
	return fmt.Sprintf("units %d/%d · dirs %d/%d (%d running) · %d rows · %d requests · %d×429 · ETA %s",
		s.UnitsDone, s.UnitsTotal, s.DirectoriesDone, s.DirectoriesTotal, s.DirectoriesInFlight, s.RowsTotal(), s.Requests, s.RateLimited, eta)
}

func (d *display) close() {
	if d.bar != nil {
		_ = d.bar.Finish()
	}
}
