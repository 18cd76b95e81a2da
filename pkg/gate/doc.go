// Package gate makes the two checks a worker passes before every request,
// the ledger's claim ([ledger.Ledger.Claim]) and the limiter's decision
// ([limiter.Limiter.Reserve]), in one Redis round trip: one Lua script
// composed from the two packages' own sources ([ledger.ClaimLua],
// [ledger.RecordLua], [limiter.ReserveLua]), run with one EVALSHA.
//
// The script does what the two calls in sequence do, atomically: when the
// claim is not granted (delivered, permanent, held by another worker, or
// an unknown outcome) no reservation is made; when it is granted the
// decision is made, and a denial short enough to be waited out holding the
// message ([Request.HoldMax]) gives the claim up in the same script, as the
// worker does with [ledger.Ledger.Release] after two calls. A claim whose
// entry already counts failed attempts, or throttles or waits outside the
// request's bounds, is made without a reservation ([Result.Reserved]
// false): the caller decides on the state first, then asks the limiter.
//
// [New] combines a [ledger.Redis] and a [limiter.Redis] on the same client;
// anything else (the in-process ledger or limiter, two clients) gets nil,
// and the caller makes the two calls. On a Redis Cluster every key of a
// script must hash to one slot: the ledger must tag a message's entry with
// the robot's limiter key ([ledger.Redis.WithHashTag]); a request whose
// keys span slots gets [ErrSplit] before anything is sent.
package gate
