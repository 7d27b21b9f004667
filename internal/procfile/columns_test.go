package procfile

import (
	"errors"
	"strings"
	"testing"
)

func TestColumns(t *testing.T) {
	var got [][]string
	err := Columns(strings.NewReader("  a  b \n\n c d\n"), []string{"x", "y"}, func(line int, cols []string) error {
		got = append(got, cols)
		return nil
	})
	if err != nil || len(got) != 2 || got[1][0] != "c" {
		t.Fatalf("got %v, %v", got, err)
	}
	err = Columns(strings.NewReader("a b\na\n"), []string{"x", "y"}, func(int, []string) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "line 2: 1 fields, want x y") {
		t.Errorf("short line: %v", err)
	}
	boom := errors.New("boom")
	err = Columns(strings.NewReader("a b\n"), []string{"x", "y"}, func(int, []string) error { return boom })
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "line 1: ") {
		t.Errorf("fn error: %v", err)
	}
}
