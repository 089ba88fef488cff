package guestsdk

import (
	"errors"
	"strconv"

	"github.com/edgehost/edgehost/abi"
)

// Sentinel errors. Errors returned by this package wrap them, so test with
// errors.Is.
var (
	// ErrKeyNotFound: a config store or dictionary has no such key (the
	// host answered status none).
	ErrKeyNotFound = errors.New("guestsdk: key not found")
	// ErrStoreNotFound: no config store or dictionary has that name (the
	// host answered status badf to open).
	ErrStoreNotFound = errors.New("guestsdk: store not found")
	// ErrBackendNotFound: a send named a backend the host does not know
	// (status inval from send_v2 or send_async).
	ErrBackendNotFound = errors.New("guestsdk: backend not found")
	// ErrBackendExists: RegisterDynamicBackend used a name that is taken by
	// a static or an earlier dynamic backend (status error).
	ErrBackendExists = errors.New("guestsdk: backend name already in use")
	// ErrInvalidOption: a BackendOptions field (or a name or target) is
	// out of range; RegisterDynamicBackend returns it before any hostcall.
	ErrInvalidOption = errors.New("guestsdk: invalid option")
	// ErrBodyConsumed: a host body was already handed to the host (sent,
	// appended or closed) and can no longer be read.
	ErrBodyConsumed = errors.New("guestsdk: body already consumed")
)

// StatusError is a hostcall that did not answer ok.
//
// errors.Is(err, errors.ErrUnsupported) reports true for status
// unsupported (a hostcall the host does not implement, or one its policy
// refuses, such as a dynamic backend target that is not allowed).
type StatusError struct {
	// Op names the hostcall, "module.function", e.g.
	// "fastly_config_store.get".
	Op string
	// Status is the fastly_status the host returned.
	Status abi.Status
}

// Error returns e.g. "guestsdk: fastly_config_store.get: status badf (3)".
func (e *StatusError) Error() string {
	return "guestsdk: " + e.Op + ": status " + e.Status.String() + " (" + strconv.FormatUint(uint64(e.Status), 10) + ")"
}

// Is reports whether target is errors.ErrUnsupported and the status is
// unsupported.
func (e *StatusError) Is(target error) bool {
	return target == errors.ErrUnsupported && e.Status == abi.Unsupported
}

// statusErr returns nil for ok and a *StatusError otherwise.
func statusErr(op string, st uint32) error {
	if abi.Status(st) == abi.OK {
		return nil
	}
	return &StatusError{Op: op, Status: abi.Status(st)}
}

// SendError is a backend request that failed in the host: the send
// status, and the send_error_detail tag the host wrote (abi.SendErr*
// constants, e.g. abi.SendErrConnectionRefused; abi.SendErrUninitialized
// when the host gave none). It wraps ErrBackendNotFound when the host
// answered inval, and always wraps the *StatusError.
type SendError struct {
	// Backend is the backend name the request was sent to.
	Backend string
	// Detail is the send_error_detail tag (abi.SendErr*).
	Detail uint32
	// Err is the *StatusError of the failed hostcall.
	Err error
}

// Error describes the failure, naming the backend and the detail tag.
func (e *SendError) Error() string {
	s := "guestsdk: send to backend " + strconv.Quote(e.Backend) + ": "
	if abi.Status(statusOf(e.Err)) == abi.Inval {
		s += "backend not found or request invalid: "
	}
	if e.Detail != abi.SendErrUninitialized && e.Detail != abi.SendErrOK {
		s += "detail " + sendDetailName(e.Detail) + ": "
	}
	return s + e.Err.Error()
}

// Unwrap returns the *StatusError and, for status inval,
// ErrBackendNotFound.
func (e *SendError) Unwrap() []error {
	if abi.Status(statusOf(e.Err)) == abi.Inval {
		return []error{e.Err, ErrBackendNotFound}
	}
	return []error{e.Err}
}

func statusOf(err error) uint32 {
	var se *StatusError
	if errors.As(err, &se) {
		return uint32(se.Status)
	}
	return uint32(abi.OK)
}

func sendDetailName(tag uint32) string {
	names := [...]string{
		"uninitialized", "ok", "dns_timeout", "dns_error", "destination_not_found",
		"destination_unavailable", "destination_ip_unroutable", "connection_refused",
		"connection_terminated", "connection_timeout", "connection_limit_reached",
		"tls_certificate_error", "tls_configuration_error", "http_incomplete_response",
		"http_response_header_section_too_large", "http_response_body_too_large",
		"http_response_timeout", "http_response_status_invalid", "http_upgrade_failed",
		"http_protocol_error", "http_request_cache_key_invalid", "http_request_uri_invalid",
		"internal_error", "tls_alert_received", "tls_protocol_error", "h2_error",
	}
	if int(tag) < len(names) {
		return names[tag]
	}
	return "tag(" + strconv.FormatUint(uint64(tag), 10) + ")"
}
