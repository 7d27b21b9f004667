package vm

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
)

// The report channel is the guest's second UART (/dev/ttyS1): the console
// (ttyS0) interleaves kernel messages with whatever init writes, the second
// UART carries only what the guest's nscheck writes, but a UART has no
// message boundaries and a guest may die half-way through. So every message
// is a frame that carries its own length and checksum:
//
//	"NSCHECK1 " kind " " length " " crc32 "\n"   header: ASCII, one line
//	payload                                       length bytes
//	"\n"                                          (for humans reading a dump)
//
// kind is a word ([Hello], [ReportGzipFrame], [ReportFrame], [ErrorFrame]), length is decimal,
// crc32 is the IEEE CRC of the payload in 8 hex digits. The reader skips
// anything before a header (a stray byte, a half frame of a dead guest) and
// drops a frame whose checksum does not match, so only a complete, intact
// frame ever counts.
const frameMagic = "NSCHECK1 "

// Frame kinds.
const (
	// Hello is the guest's first word: init runs. Its payload is the
	// kernel release.
	Hello = "hello"
	// ReportGzipFrame carries the nscheck/v1 JSON report, gzipped: what
	// the guest sends (WriteReport). An emulated UART moves some 200 KB a
	// second under TCG, and the report (150 KB with a whole catalog)
	// shrinks about tenfold, so this saves more than half a second per
	// kernel.
	ReportGzipFrame = "reportgz"
	// ReportFrame carries the JSON report as it is; a guest of an older
	// nscheck (--init) sends that.
	ReportFrame = "report"
	// ErrorFrame carries why the guest could not produce a report.
	ErrorFrame = "error"
)

// MaxFrame bounds the payload of one frame.
const MaxFrame = 64 << 20

// Frame is one message from the guest.
type Frame struct {
	Kind    string
	Payload []byte
}

// WriteFrame writes one frame to w in a single Write.
func WriteFrame(w io.Writer, kind string, payload []byte) error {
	if !validKind(kind) {
		return fmt.Errorf("frame: invalid kind %q", kind)
	}
	if len(payload) > MaxFrame {
		return fmt.Errorf("frame: payload of %d bytes exceeds %d", len(payload), MaxFrame)
	}
	hdr := fmt.Sprintf("%s%s %d %08x\n", frameMagic, kind, len(payload), crc32.ChecksumIEEE(payload))
	buf := make([]byte, 0, len(hdr)+len(payload)+1)
	buf = append(append(append(buf, hdr...), payload...), '\n')
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("write %s frame: %w", kind, err)
	}
	return nil
}

// WriteReport writes the JSON report data as one ReportGzipFrame.
func WriteReport(w io.Writer, data []byte) error {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return fmt.Errorf("compress the report: %w", err)
	}
	if _, err := zw.Write(data); err != nil {
		return fmt.Errorf("compress the report: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compress the report: %w", err)
	}
	return WriteFrame(w, ReportGzipFrame, buf.Bytes())
}

// Report returns the JSON report a ReportGzipFrame or ReportFrame carries
// (decompressed, at most MaxFrame bytes); ok is false for other kinds.
func (f Frame) Report() (data []byte, ok bool, err error) {
	switch f.Kind {
	case ReportFrame:
		return f.Payload, true, nil
	case ReportGzipFrame:
		zr, err := gzip.NewReader(bytes.NewReader(f.Payload))
		if err != nil {
			return nil, true, fmt.Errorf("decompress the report: %w", err)
		}
		data, err := io.ReadAll(io.LimitReader(zr, MaxFrame+1))
		if err == nil && len(data) > MaxFrame {
			err = fmt.Errorf("more than %d bytes", MaxFrame)
		}
		if err != nil {
			return nil, true, fmt.Errorf("decompress the report: %w", err)
		}
		return data, true, nil
	}
	return nil, false, nil
}

func validKind(k string) bool {
	if k == "" || len(k) > 16 {
		return false
	}
	for _, c := range k {
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// FrameReader reads frames from a byte stream.
type FrameReader struct {
	r *bufio.Reader
	// Dropped counts headers whose frame was corrupt or cut short.
	Dropped int
}

// NewFrameReader reads frames from r.
func NewFrameReader(r io.Reader) *FrameReader { return &FrameReader{r: bufio.NewReader(r)} }

// Next returns the next intact frame, skipping noise and corrupt frames. It
// returns io.EOF when the stream ends (a frame cut short by the end is
// counted in Dropped) and other errors of the underlying reader as they are.
func (fr *FrameReader) Next() (Frame, error) {
	for {
		if err := fr.seekMagic(); err != nil {
			return Frame{}, err
		}
		line, err := fr.r.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if err == io.EOF {
				fr.Dropped++
			}
			return Frame{}, err
		}
		kind, n, sum, ok := parseHeader(string(line))
		if !ok {
			fr.Dropped++
			continue // resynchronise on the next magic
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(fr.r, payload); err != nil {
			fr.Dropped++
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = io.EOF
			}
			return Frame{}, err
		}
		if crc32.ChecksumIEEE(payload) != sum {
			fr.Dropped++
			continue
		}
		return Frame{Kind: kind, Payload: payload}, nil
	}
}

// seekMagic consumes input up to and including the next frame magic. The
// magic's first byte does not recur in it, so a mismatch restarts the match
// at that byte.
func (fr *FrameReader) seekMagic() error {
	i := 0
	for i < len(frameMagic) {
		c, err := fr.r.ReadByte()
		if err != nil {
			return err
		}
		switch {
		case c == frameMagic[i]:
			i++
		case c == frameMagic[0]:
			i = 1
		default:
			i = 0
		}
	}
	return nil
}

// parseHeader parses `kind length crc32\n` (the part after the magic).
func parseHeader(line string) (kind string, n int, sum uint32, ok bool) {
	line, found := strings.CutSuffix(line, "\n")
	if !found {
		return "", 0, 0, false
	}
	f := strings.Split(line, " ")
	if len(f) != 3 || !validKind(f[0]) || len(f[2]) != 8 {
		return "", 0, 0, false
	}
	n, err := strconv.Atoi(f[1])
	if err != nil || n < 0 || n > MaxFrame || strconv.Itoa(n) != f[1] {
		return "", 0, 0, false
	}
	s, err := strconv.ParseUint(f[2], 16, 32)
	if err != nil {
		return "", 0, 0, false
	}
	return f[0], n, uint32(s), true
}
