package envflag

import (
	"errors"
	"testing"
	"time"
)

func TestChecks(t *testing.T) {
	var c Checks
	c.Positive("poll", 0)
	c.Positive("fine", time.Second)
	c.NotNegative("linger", -time.Nanosecond)
	c.NotNegative("zero", 0)
	c.AtLeast("lease", time.Millisecond, time.Second)
	c.AtLeastN("workers", 0, 1)
	c.AtLeastN("suspect", 2, 2)
	c.OneOf("from", "yesterday", "all", "new")
	c.OneOf("mode", "x", "a", "b", "c")
	c.OneOf("ok", "new", "all", "new")
	c.AtLeastN64("body", 0, 1)
	c.AtLeastN64("big", 1<<40, 1)
	c.Between("replicas", 7, 1, 5)
	c.Between("three", 3, 1, 5)
	c.NotEmpty("url", "")
	c.NotEmpty("addr", "x")
	c.Add(nil, errors.New("-tls-cert and -tls-key: give both or neither"))
	want := "-poll 0s: must be positive\n" +
		"-linger -1ns: must not be negative\n" +
		"-lease 1ms: must be at least 1s\n" +
		"-workers 0: must be at least 1\n" +
		`-from "yesterday": want all or new` + "\n" +
		`-mode "x": want a, b or c` + "\n" +
		"-body 0: must be at least 1\n" +
		"-replicas 7: must be between 1 and 5\n" +
		`-url "": must not be empty` + "\n" +
		"-tls-cert and -tls-key: give both or neither"
	if err := c.Err(); err == nil || err.Error() != want {
		t.Errorf("Err() =\n%v\nwant\n%s", err, want)
	}
	var none Checks
	none.Positive("fine", time.Second)
	if err := none.Err(); err != nil {
		t.Errorf("nothing wrong: %v", err)
	}
}
