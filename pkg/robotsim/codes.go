package robotsim

// Platform names, as in [Robot.Platform].
const (
	PlatformDingTalk = "dingtalk"
	PlatformPOPO     = "popo"
	PlatformFeishu   = "feishu"
	PlatformWeCom    = "wecom"
)

// Feishu/Lark codes the simulator answers with (see PLATFORMS.md).
const (
	FeishuOK              = 0
	FeishuErrFrequency    = 11232 // over the minute's limit, HTTP 200
	FeishuErrBadRequest   = 9499  // HTTP 400: "too many request" (over the second's limit) or a bad body
	FeishuErrSign         = 19021
	FeishuErrToken        = 19001
	FeishuErrMsgType      = 19002
	FeishuErrKeywords     = 19024
	FeishuMsgSign         = "sign match fail or timestamp is not within one hour from current time"
	FeishuMsgTooMany      = "too many request"
	FeishuMaxBody         = 20000
	DefaultFeishuLimit    = 100
	DefaultFeishuBurst    = 5
	WeComOK               = 0
	WeComErrFrequency     = 45009 // "api freq out of limit"
	WeComErrInvalidURL    = 93000 // unknown key
	WeComErrTooLong       = 40058
	WeComErrInvalidType   = 40008
	WeComErrBadBody       = 40035
	WeComMaxText          = 2048
	WeComMaxMarkdown      = 4096
	WeComMaxArticles      = 8
	DefaultWeComLimit     = 20
	weComMsgFrequency     = "api freq out of limit"
	feishuMsgTokenInvalid = "param invalid: incoming webhook access token invalid"
)

// DingTalk error codes the simulator answers with (see PLATFORMS.md).
const (
	DingTalkOK                 = 0
	DingTalkErrTokenNotExist   = 300001
	DingTalkErrSecurity        = 310000 // errmsg says which check failed
	DingTalkErrThrottled       = 130101
	DingTalkErrMissingParam    = 40035
	DingTalkErrMustPost        = 43002
	DingTalkErrContentType     = 43004
	DingTalkErrUnsupportedType = 400105
	DingTalkErrTooLong         = 460101
)

// Error messages that accompany [DingTalkErrSecurity].
const (
	DingTalkMsgInvalidTimestamp = "invalid timestamp"
	DingTalkMsgSignNotMatch     = "sign not match"
	DingTalkMsgKeywords         = "keywords not in content"
)

// DingTalkMaxBody is the largest DingTalk body accepted, in bytes.
const DingTalkMaxBody = 20000

// POPO error codes. POPO publishes no error-code list: these values are
// chosen by the simulator; the delivery classifier mirrors them.
const (
	POPOOK               = 0
	POPOErrRobotNotFound = 10001 // "robot not found"
	POPOErrBadRequest    = 10002 // not POST, not JSON, unreadable body or "message" missing
	POPOErrSignature     = 10003 // "invalid timestamp" or "sign not match"
	POPOErrKeywords      = 10004 // "keywords not in content"
	POPOErrThrottled     = 10005 // "send too fast, robot banned for 10 minutes"
)

// Default per-window limits.
const (
	DefaultDingTalkLimit = 20
	DefaultPOPOLimit     = 60
)

// maxRead bounds how much of a request body is read.
const maxRead = 1 << 20
