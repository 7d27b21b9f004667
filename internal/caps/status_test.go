package caps

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
)

// scanHex finds "field:\t<hex>" in a /proc/<pid>/status text.
func scanHex(status []byte, field string, out *uint64) bool {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != field {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return false
		}
		*out = n
		return true
	}
	return false
}
