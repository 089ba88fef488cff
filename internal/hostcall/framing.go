package hostcall

import (
	"strconv"
	"strings"
)

// Manual framing (framing_headers_mode_set with mode 1): the guest's own
// Content-Length or Transfer-Encoding header frames the message, on a
// backend request or on the downstream response. The host keeps them
// only when they are valid: exactly one of the two, a Content-Length of
// one decimal value, a Transfer-Encoding of exactly "chunked". Anything
// else falls back to automatic framing (the host frames the message from
// its body, as in mode 0), and the host logs why.

// framing is how one message is framed on the wire.
type framing struct {
	manual  bool  // the guest's headers frame the message
	length  int64 // manual with a Content-Length: its value; else -1
	chunked bool  // manual with Transfer-Encoding: chunked
}

// manualFraming checks h's framing headers for a message in manual mode.
// It returns the framing to use, and the reason when it fell back to
// automatic framing.
func manualFraming(h *header) (framing, string) {
	auto := framing{length: -1}
	cl, te := h.get("content-length"), h.get("transfer-encoding")
	switch {
	case len(cl) > 0 && len(te) > 0:
		return auto, "both Content-Length and Transfer-Encoding are set"
	case len(cl) > 1:
		return auto, "more than one Content-Length"
	case len(cl) == 1:
		v := cl[0]
		if v == "" || strings.TrimLeft(v, "0123456789") != "" {
			return auto, "Content-Length " + strconv.Quote(v) + " is not a decimal number"
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return auto, "Content-Length " + strconv.Quote(v) + " is out of range"
		}
		return framing{manual: true, length: n}, ""
	case len(te) > 1:
		return auto, "more than one Transfer-Encoding"
	case len(te) == 1:
		if !strings.EqualFold(strings.TrimSpace(te[0]), "chunked") {
			return auto, "Transfer-Encoding " + strconv.Quote(te[0]) + " is not chunked"
		}
		return framing{manual: true, length: -1, chunked: true}, ""
	}
	return auto, "neither Content-Length nor Transfer-Encoding is set"
}

// framingFor returns the framing of a message whose guest chose manual
// (mode 1) or automatic framing; a fallback is logged with what (e.g.
// "downstream response").
func (s *Session) framingFor(manual bool, h *header, what string) framing {
	if !manual {
		return framing{length: -1}
	}
	f, why := manualFraming(h)
	if !f.manual {
		s.logger().Warn("manual framing headers are invalid; framing automatically", "message", what, "reason", why)
	}
	return f
}
