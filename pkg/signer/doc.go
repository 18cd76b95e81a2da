// Package signer computes and verifies the HMAC-SHA256 signatures the chat
// platforms demand of custom robots.
//
// Signatures carry a timestamp the platforms accept for one hour only, so a
// request must be signed at send time, afresh at every attempt, never when a
// message is enqueued.
//
//   - DingTalk outgoing: key = secret, message = timestamp_ms + "\n" + secret;
//     base64; URL-encoded into "&timestamp=…&sign=…" on the webhook URL.
//   - POPO outgoing: key = timestamp_ms + "\n" + secret, empty message; base64;
//     sent in the body as "timestamp" and "signData".
//   - Feishu/Lark outgoing: key = timestamp_seconds + "\n" + secret, empty
//     message; base64; sent in the body as "timestamp" and "sign" (note the
//     seconds, and the key and message swapped relative to DingTalk).
//   - WeCom: no signature (the webhook's key is the credential).
//   - DingTalk enterprise-robot callbacks (inbound): headers "timestamp" and
//     "sign", computed like the outgoing DingTalk signature with the app secret.
package signer
