package server

import (
	"bytes"
	"io"
	"log/slog"
	"sync"
)

// LogWriter turns a guest's stdout or stderr into host log lines, one per
// line written, tagged with the request id and the stream name. Partial
// lines wait for their newline (or Flush); a line over 16 KiB is split.
type LogWriter struct {
	mu     sync.Mutex
	log    *slog.Logger
	id     string
	stream string
	buf    bytes.Buffer
}

// NewLogWriter returns a writer logging at info level to log; a nil log
// discards the lines.
func NewLogWriter(log *slog.Logger, requestID, stream string) *LogWriter {
	w := new(LogWriter)
	w.init(log, requestID, stream)
	return w
}

// init makes the zero w what NewLogWriter returns.
func (w *LogWriter) init(log *slog.Logger, requestID, stream string) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w.log, w.id, w.stream = log, requestID, stream
}

const maxLogLine = 16 << 10

// Write logs every complete line of p. It never fails.
func (w *LogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		b := w.buf.Bytes()
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if len(b) > maxLogLine {
				w.emit(string(w.buf.Next(maxLogLine)))
				continue
			}
			return len(p), nil
		}
		line := string(b[:i])
		w.buf.Next(i + 1)
		w.emit(line)
	}
}

// Flush logs a pending partial line.
func (w *LogWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 0 {
		w.emit(w.buf.String())
		w.buf.Reset()
	}
}

// SetRequestID tags the lines written from now on with id (a sandbox
// serving several requests in turn).
func (w *LogWriter) SetRequestID(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 0 {
		w.emit(w.buf.String())
		w.buf.Reset()
	}
	w.id = id
}

func (w *LogWriter) emit(line string) {
	w.log.Info(line, "request_id", w.id, "stream", w.stream)
}

func flushLogs(ws ...io.Writer) {
	for _, w := range ws {
		if f, ok := w.(interface{ Flush() }); ok {
			f.Flush()
		}
	}
}
