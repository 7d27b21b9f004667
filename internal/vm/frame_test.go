package vm

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func frames(t *testing.T, in []byte) ([]Frame, int) {
	t.Helper()
	fr := NewFrameReader(bytes.NewReader(in))
	var out []Frame
	for {
		f, err := fr.Next()
		if errors.Is(err, io.EOF) {
			return out, fr.Dropped
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
}

func frame(t *testing.T, kind, payload string) []byte {
	var b bytes.Buffer
	if err := WriteFrame(&b, kind, []byte(payload)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestFrameWireFormat(t *testing.T) {
	got := string(frame(t, Hello, "6.1.0"))
	want := "NSCHECK1 hello 5 " + "a0d9d411" + "\n6.1.0\n"
	if got != want {
		t.Errorf("got %q want %q", got, want)
	}
}

func TestFramesAmidNoise(t *testing.T) {
	var in []byte
	in = append(in, "[    0.1] random kernel noise NSCHECK NSCHECK1 \n"...)
	in = append(in, frame(t, Hello, "6.12.117")...)
	in = append(in, "\r\n\x00\xffNNSCHECK1 hello 3 zzzzzzzz\n"...)
	in = append(in, frame(t, ReportFrame, `{"schema":"nscheck/v1"}`)...)
	in = append(in, frame(t, ErrorFrame, "")...)
	got, dropped := frames(t, in)
	if len(got) != 3 || got[0].Kind != Hello || string(got[0].Payload) != "6.12.117" ||
		got[1].Kind != ReportFrame || got[2].Kind != ErrorFrame || len(got[2].Payload) != 0 {
		t.Errorf("frames: %+v", got)
	}
	if dropped != 2 {
		t.Errorf("dropped %d, want 2 (bad header, bad checksum)", dropped)
	}
}

func TestCorruptAndCutFramesDropped(t *testing.T) {
	good := frame(t, ReportFrame, strings.Repeat("x", 100))
	bad := append([]byte{}, good...)
	bad[len(bad)-10] ^= 1 // a flipped payload bit
	got, dropped := frames(t, append(bad, good[:50]...))
	if len(got) != 0 || dropped != 2 {
		t.Errorf("got %d frames, dropped %d; want 0 and 2", len(got), dropped)
	}
}

func TestWriteFrameRejects(t *testing.T) {
	for _, k := range []string{"", "Hello", "a b", "x\n", strings.Repeat("k", 17)} {
		if err := WriteFrame(io.Discard, k, nil); err == nil {
			t.Errorf("kind %q accepted", k)
		}
	}
}

func FuzzFrameReader(f *testing.F) {
	var seed bytes.Buffer
	WriteFrame(&seed, Hello, []byte("6.1"))
	WriteFrame(&seed, ReportFrame, []byte("{}"))
	f.Add(seed.Bytes())
	f.Add([]byte("NSCHECK1 report 99999999999 00000000\n"))
	f.Add([]byte("NSCHECK1 x -1 00000000\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		fr := NewFrameReader(bytes.NewReader(in))
		for i := 0; ; i++ {
			fm, err := fr.Next()
			if err != nil {
				break
			}
			// Whatever came out is intact: it re-encodes to a frame that reads back equal.
			var b bytes.Buffer
			if err := WriteFrame(&b, fm.Kind, fm.Payload); err != nil {
				t.Fatalf("frame %d does not re-encode: %v", i, err)
			}
			again, err := NewFrameReader(&b).Next()
			if err != nil || again.Kind != fm.Kind || !bytes.Equal(again.Payload, fm.Payload) {
				t.Fatalf("frame %d does not round-trip", i)
			}
			if !bytes.Contains(in, fm.Payload) {
				t.Fatalf("payload not from the input")
			}
		}
	})
}

func TestReportFrames(t *testing.T) {
	rep := []byte(`{"schema":"nscheck/v1","results":[` + strings.Repeat(`{"id":"uts.hostname-local","state":"passed"},`, 500) + `{}]}`)
	var b bytes.Buffer
	if err := WriteReport(&b, rep); err != nil {
		t.Fatal(err)
	}
	if b.Len() > len(rep)/5 {
		t.Errorf("the gzipped report frame is %d bytes for %d bytes of JSON", b.Len(), len(rep))
	}
	in := append(b.Bytes(), frame(t, ReportFrame, `{"schema":"nscheck/v1"}`)...)
	in = append(in, frame(t, ReportGzipFrame, "not gzip")...)
	in = append(in, frame(t, Hello, "6.1")...)
	got, _ := frames(t, in)
	if len(got) != 4 {
		t.Fatalf("frames: %+v", got)
	}
	for i, want := range []struct {
		data  string
		ok    bool
		isErr bool
	}{{string(rep), true, false}, {`{"schema":"nscheck/v1"}`, true, false}, {"", true, true}, {"", false, false}} {
		data, ok, err := got[i].Report()
		if string(data) != want.data || ok != want.ok || (err != nil) != want.isErr {
			t.Errorf("frame %d (%s): Report() = %.40q, %v, %v", i, got[i].Kind, data, ok, err)
		}
	}
}
