package delivery

import "errors"

// Errors carried in [Result.Err] and returned by [New] and [CheckKeywords];
// match them with [errors.Is].
var (
	// ErrInvalidOption is returned by [New] for a bad option.
	ErrInvalidOption = errors.New("delivery: invalid option")
	// ErrInvalidRobot: the robot's platform is unknown or its webhook is not
	// a usable URL. Permanent.
	ErrInvalidRobot = errors.New("delivery: invalid robot")
	// ErrInvalidMessage: the envelope is nil or does not hold exactly one
	// message kind. Permanent.
	ErrInvalidMessage = errors.New("delivery: invalid message")
	// ErrMissingKeyword: the robot requires a keyword that the content does
	// not contain. Detected before any HTTP request; permanent.
	ErrMissingKeyword = errors.New("delivery: none of the robot's keywords is in the content")
	// ErrTooLong: the rendered body exceeds the platform's limit. Detected
	// before any HTTP request; permanent.
	ErrTooLong = errors.New("delivery: message too long")
	// ErrRequest: the HTTP request failed without a response (transport
	// error, timeout, cancelled context).
	ErrRequest = errors.New("delivery: request failed")
	// ErrHTTPStatus: the platform answered with an HTTP status outside 2xx.
	// When that answer holds a nonzero errcode, Err wraps [ErrRefused] too
	// and the errcode decides the outcome.
	ErrHTTPStatus = errors.New("delivery: unexpected HTTP status")
	// ErrBadResponse: an HTTP 200 whose body is not a platform answer
	// (not JSON, or JSON without an errcode), e.g. a proxy's page.
	ErrBadResponse = errors.New("delivery: response is not a platform answer")
	// ErrRefused: the platform answered with a nonzero errcode.
	ErrRefused = errors.New("delivery: platform refused the message")
)
