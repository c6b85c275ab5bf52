package stage

import (
	"errors"
	"slices"
)

// StatusError is a delivery that the destination answered with a status
// other than 2xx. The status travels as data, from the output that read it
// to every stage that decides by it (dead letters, the inspector), so that
// nothing reads it back out of an error's text, where a quoted body could
// fake one.
type StatusError struct {
	Status int
	Err    error // the failure as the operator reads it
}

func (e *StatusError) Error() string { return e.Err.Error() }
func (e *StatusError) Unwrap() error { return e.Err }

// StatusOf is the status of the answer that err carries, 0 for none (a
// timeout, a connection error, or an error that only quotes a status).
func StatusOf(err error) int {
	var s *StatusError
	if errors.As(err, &s) {
		return s.Status
	}
	return 0
}

// RefusedForGood says whether err is Meiro Events refusing the event itself
// (a status in RefusalStatuses), so that retrying cannot help: the one place
// that decides what becomes a dead letter on an answer.
func RefusedForGood(err error) bool {
	return slices.Contains(RefusalStatuses, StatusOf(err))
}

// TimeoutError is a delivery sent whole that had no answer within its
// timeout: the destination may still be working on it, and may take the
// event all the same. (One that ran out of time before it was sent is a
// connection error, not a TimeoutError.) The disk_queue tells it by
// IsTimeout, so that a request that may still be running does not make room
// for another.
type TimeoutError struct {
	Err error // worded with TimedOut
}

func (e *TimeoutError) Error() string { return e.Err.Error() }
func (e *TimeoutError) Unwrap() error { return e.Err }

// IsTimeout says whether err is, or wraps, a TimeoutError.
func IsTimeout(err error) bool {
	var t *TimeoutError
	return errors.As(err, &t)
}
