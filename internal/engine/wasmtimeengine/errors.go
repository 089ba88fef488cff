//go:build cgo

package wasmtimeengine

import "strings"

// wasmtimeError is a Wasmtime error with a readable message: Wasmtime's
// own (an anyhow chain) spans lines and ends with a native stack
// backtrace that names nothing.
type wasmtimeError struct {
	msg string
	err error
}

func (e *wasmtimeError) Error() string { return e.msg }
func (e *wasmtimeError) Unwrap() error { return e.err }

// tidy returns err with its message on one line ("context: cause"),
// without the native backtrace; a wasm backtrace, when there is one, is
// kept after the first line. errors.As still finds the Wasmtime error.
func tidy(err error) error {
	if err == nil {
		return nil
	}
	return &wasmtimeError{msg: tidyMessage(err.Error()), err: err}
}

// tidyMessage is tidy for a message alone.
func tidyMessage(s string) string {
	if i := strings.Index(s, "Stack backtrace:"); i >= 0 {
		s = s[:i]
	}
	head, wasmTrace, _ := strings.Cut(s, "\nwasm backtrace:")
	head = strings.ReplaceAll(head, "Caused by:", ":")
	head = strings.Join(strings.Fields(head), " ")
	head = strings.ReplaceAll(head, " :", ":")
	head = strings.ReplaceAll(head, "[ ", "[")
	head = strings.ReplaceAll(head, ", ]", "]")
	if wasmTrace = strings.TrimRight(wasmTrace, "\n "); wasmTrace != "" {
		head += "\nwasm backtrace:" + wasmTrace
	}
	return head
}
