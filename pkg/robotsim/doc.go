// Package robotsim is an in-process HTTP simulator of the chat platforms'
// custom robots (DingTalk, NetEase POPO, Feishu/Lark and WeCom). Tests, the demo and benchmarks
// deliver to it instead of the real platforms and then inspect what it
// accepted, refused and counted.
//
// A [Sim] is an [net/http.Handler]; [NewServer] serves one on a real
// 127.0.0.1 listener. Robots are registered with [Sim.AddRobot]; every
// request is answered the way the real platform answers: HTTP 200 with a
// JSON body whose "errcode" is 0 on success and nonzero on refusal.
//
// # What is enforced
//
// DingTalk (POST /robot/send?access_token=T[&timestamp=…&sign=…]), in this
// order:
//
//  1. fault injection ([Sim.InjectFault]), before anything else;
//  2. token: unknown → 300001 "token is not exist";
//  3. method POST (43002) and a JSON Content-Type (43004);
//  4. signature, when the robot has a secret: missing, malformed or more
//     than [MaxSkew] off real time → 310000 "invalid timestamp";
//     wrong sign → 310000 "sign not match";
//  5. ban: while banned every request → 130101, counted in Stats.DuringBan;
//  6. rolling window: the (Limit+1)-th request inside any rolling
//     [Config.Window] → 130101, Stats.Breaches++ and a ban of [Config.Ban];
//  7. body: invalid JSON or a missing field → 40035, unknown msgtype →
//     400105, more than 20000 bytes → 460101, none of the robot's keywords
//     in the content → 310000 "keywords not in content";
//  8. msgUuid already accepted for this robot → success, not recorded twice
//     (Stats.Duplicates, and the message's [Received.Repeats]).
//
// POPO (POST /open-apis/robots/v1/hook/{id}, body {"message", "timestamp",
// "signData"}) follows the same order; the signature is in the body, so an
// unreadable body is refused before the signature check. POPO publishes no
// error-code list: the codes are chosen by the simulator and exported as
// the POPOErr… constants.
//
// Feishu (POST /open-apis/bot/v2/hook/{token}, body {"msg_type", "content"
// or "card", "timestamp" (seconds), "sign"}): unknown token → 19001 (HTTP
// 400); a bad body → 9499 (HTTP 400); signature → 19021; over the
// per-second window ([Config.BurstWindow], 5 by default) → 9499 "too many
// request" with HTTP 400; over the minute's (100) → 11232 with HTTP 200;
// body over 20000 bytes → 9499; unknown msg_type → 19002; keywords →
// 19024 "Key Words Not Found". Answers are {"code","msg","data"}.
//
// WeCom (POST /cgi-bin/webhook/send?key=K): no signature; unknown key →
// 93000; over 20 per window → 45009 "api freq out of limit"; text over
// 2,048 bytes or markdown over 4,096 → 40058; news of 0 or more than 8
// articles → 40035; unknown msgtype → 40008.
//
// Neither Feishu nor WeCom documents a ban: [Config.FeishuBan] and
// [Config.WeComBan] (default none) make one.
//
// Signatures are verified by the simulator's own code (verify.go), written
// from the platforms' documentation and tested against independently
// computed vectors, never with pkg/signer: the simulator is the referee of
// the code it tests.
//
// # The rate window
//
// Every request that passes steps 2–4 (an authenticated send attempt)
// counts toward the robot's rolling windows (Feishu has two), whether its body is later
// accepted, refused or a duplicate: the platforms count sends, not
// successes. Requests answered by a fault, refused before step 4 or refused
// because of a ban or a breach do not count. A request at time t stays in
// the window while now−t < Window. The request that breaches the limit
// starts the ban and empties the window, so the robot starts afresh when
// the ban ends. Windows and bans use [Config.Now]; signature timestamps are
// always checked against the real clock.
//
// # The referee
//
// Tests assert exactly what a sender posted. [Sim.Received] lists each
// accepted message once, in the order of its first acceptance, with the
// number of repeats dropped by msgUuid dedup ([Received.Repeats]);
// [Sim.Requests] lists every request addressed to the robot in arrival
// order with what became of it (accepted, duplicate, refused with its
// errcode, faulted), its msgUuid and content. GET
// /_sim/robots/{token}/received and /_sim/robots/{token}/requests serve
// the same as JSON.
//
// # Fleets
//
// [simconfig.LoadConfig] (or [simconfig.FromConfig]) reads a worker configuration file and
// returns a [Robot] for each of its robots, so one file drives the workers
// and the simulator. With [Config.CountOnly] a Sim keeps counters only, no
// message and no request log: tens of thousands of robots and millions of
// messages fit in little memory. Every Sim counts, per robot, the contents
// it accepted twice ([Stats.RepeatedContent], the duplicates of platforms
// without msgUuid) and the times of the first and last acceptance
// ([RobotStatus]); [Sim.Totals] and GET /_sim/stats sum every robot.
//
// # Slow front ends
//
// [WithAcceptDelay] makes a [Server] ignore new connections for a while,
// [WithTLS] serves HTTPS with a self-signed certificate: together they
// make a client's TLS handshake, and so its request, wait.
//
// A Sim is safe for concurrent use; [Sim.Received], [Sim.Requests] and
// [Sim.Stats] return copies.
package robotsim
