package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/publisher"
	"github.com/botrelay/botrelay/pkg/stream"
)

// listFlag collects a repeatable flag's values.
type listFlag []string

func (f *listFlag) String() string { return strings.Join(*f, ",") }

func (f *listFlag) Set(v string) error {
	*f = append(*f, v)
	return nil
}

// labelFlag collects repeatable KEY=VALUE labels; a later key wins.
type labelFlag map[string]string

func (f labelFlag) String() string { return "" }

func (f labelFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok {
		return errors.New("want KEY=VALUE")
	}
	if strings.TrimSpace(k) == "" {
		return errors.New("empty key: want KEY=VALUE")
	}
	f[k] = val
	return nil
}

// sendFlags are the flags of "producer send".
type sendFlags struct {
	robots       listFlag
	text         string
	markdownFile string
	title        string
	linkURL      string
	picURL       string
	id           string
	atMobiles    listFlag
	atUsers      listFlag
	atAll        bool
	labels       labelFlag
	ttl          time.Duration
	split        bool
	file         string
	configPath   string
	// size gives a robot's (or a pool's) size rules (from --config); nil:
	// the defaults.
	size func(robot string) envelope.Limits
	// groups gives a group's members and known tells a robot, pool or
	// group of --config; both nil without it.
	groups func(name string) ([]string, bool)
	known  func(name string) bool

	set map[string]bool // flags given on the command line
}

func (f *sendFlags) register(fs *flag.FlagSet) {
	f.labels = labelFlag{}
	fs.Var(&f.robots, "robot", "robot, pool or (with --config) group name; repeat or comma-separate for fan-out")
	fs.StringVar(&f.text, "text", "", "plain text, or a link card's description")
	fs.StringVar(&f.markdownFile, "markdown-file", "", "markdown body file (- for stdin)")
	fs.StringVar(&f.title, "title", "", "title of a markdown message or link card")
	fs.StringVar(&f.linkURL, "link-url", "", "send a link card to this URL")
	fs.StringVar(&f.picURL, "pic-url", "", "picture of a link card")
	fs.StringVar(&f.id, "id", "", "message id (default a fresh one)")
	fs.Var(&f.atMobiles, "at-mobile", "mention a mobile number (repeatable)")
	fs.Var(&f.atUsers, "at-user", "mention a user id (repeatable)")
	fs.BoolVar(&f.atAll, "at-all", false, "mention everyone")
	fs.Var(f.labels, "label", "KEY=VALUE label (repeatable)")
	fs.DurationVar(&f.ttl, "ttl", 0, "expire the message this long after now")
	fs.BoolVar(&f.split, "split", false, "send a text or markdown message too long for one post in parts")
	fs.StringVar(&f.file, "f", "", "NDJSON file of envelopes (- for stdin)")
	fs.StringVar(&f.configPath, "config", "", "the workers' robots.yaml: each robot's platform size rules, its pools and groups")
}

// messageFlags are the flags that describe one message; -f excludes them.
var messageFlags = []string{"robot", "text", "markdown-file", "title", "link-url", "pic-url",
	"id", "at-mobile", "at-user", "at-all", "label", "ttl", "split"}

func runSend(ctx context.Context, g *globals, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := g.flagSet("send")
	var f sendFlags
	f.register(fs)
	pos, done, err := parseSub(fs, args, stdout, sendUsage)
	if done || err != nil {
		return err
	}
	if len(pos) > 0 {
		return cli.Usagef("send: unexpected argument %q", pos[0])
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	topo, err := g.topology()
	if err != nil {
		return err
	}

	if f.configPath != "" {
		cfg, err := cli.LoadWithoutSecrets(f.configPath, os.LookupEnv)
		if err != nil {
			return err
		}
		f.size, f.groups = cfg.TargetSize, cfg.GroupMembers
		f.known = func(name string) bool { _, err := cfg.Expand(name); return err == nil }
	}
	if f.set["f"] {
		for _, name := range messageFlags {
			if f.set[name] {
				return cli.Usagef("send: -f reads whole envelopes from the file: don't combine it with --%s", name)
			}
		}
		if f.file == "" {
			return cli.Usagef("send: -f needs a file name (or - for stdin)")
		}
		return sendFile(ctx, g, topo, f.file, f.size, f.groups, stdin, stdout, stderr)
	}

	base, robots, err := f.envelopes(stdin, time.Now)
	if err != nil {
		return err
	}
	var popts []publisher.Option
	if f.size != nil {
		popts = append(popts, publisher.WithSizeRules(f.size))
	}
	if f.groups != nil {
		popts = append(popts, publisher.WithGroups(f.groups))
	}
	pub, closeConn, err := g.openPublisher(ctx, topo, popts...)
	if err != nil {
		return err
	}
	defer closeConn()
	pctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	var results []publisher.Result
	var partOf []string // with --split: each result's "i/n", "" for a whole message
	switch {
	case f.split:
		results, partOf = publishSplit(pctx, pub, copiesFor(base, robots))
	case base.Robot != "":
		results, _ = pub.Send(pctx, base) // a robot or a pool
	default:
		results, _ = pub.FanOut(pctx, base, robots)
	}
	failed := 0
	for i, res := range results {
		part := ""
		if i < len(partOf) && partOf[i] != "" {
			part = " part=" + partOf[i]
		}
		if res.Err != nil {
			failed++
			fmt.Fprintf(stderr, "failed id=%s robot=%s%s: %v\n", res.ID, res.Robot, part, res.Err)
			continue
		}
		status := "sent"
		if res.Ack.Duplicate {
			status = "duplicate"
		}
		fmt.Fprintf(stdout, "%s id=%s robot=%s seq=%d%s\n", status, res.ID, res.Robot, res.Ack.Sequence, part)
	}
	if failed > 0 {
		return fmt.Errorf("send: %d of %d messages not published", failed, len(results))
	}
	return nil
}

// copiesFor returns the envelopes to publish for robots: base itself when
// it names its robot (a single robot or pool was given), else its
// [envelope.Envelope.ForRobot] copies, as [publisher.Publisher.FanOut]
// makes them.
func copiesFor(base *envelope.Envelope, robots []string) []*envelope.Envelope {
	if base.Robot != "" {
		return []*envelope.Envelope{base}
	}
	copies := make([]*envelope.Envelope, 0, len(robots))
	for _, r := range robots {
		copies = append(copies, base.ForRobot(r, 0))
	}
	return copies
}

// publishSplit publishes each envelope with
// [publisher.Publisher.PublishSplit], robot after robot, and returns the
// results of all the parts with, for each, "i/n" when the message was
// split ("" when it was sent whole).
func publishSplit(ctx context.Context, pub *publisher.Publisher, envs []*envelope.Envelope) ([]publisher.Result, []string) {
	var results []publisher.Result
	var partOf []string
	for _, env := range envs {
		res, err := pub.PublishSplit(ctx, env)
		if res == nil { // not splittable: checked before, so only for safety
			res = []publisher.Result{{ID: env.ID, Robot: env.Robot, Err: err}}
		}
		for i := range res {
			p := ""
			if len(res) > 1 {
				p = fmt.Sprintf("%d/%d", i+1, len(res))
			}
			partOf = append(partOf, p)
		}
		results = append(results, res...)
	}
	return results, partOf
}

// robotNames splits and trims the --robot values and drops repeats,
// keeping the order given.
func (f *sendFlags) robotNames() []string {
	var out []string
	for _, v := range f.robots {
		for _, r := range strings.Split(v, ",") {
			if r = strings.TrimSpace(r); r != "" && !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	return out
}

// message builds the message the flags describe, reading a markdown file.
func (f *sendFlags) message(stdin io.Reader) (envelope.Message, error) {
	switch {
	case f.set["pic-url"] && !f.set["link-url"]:
		return envelope.Message{}, cli.Usagef("send: --pic-url needs --link-url")
	case f.set["link-url"] && f.set["markdown-file"]:
		return envelope.Message{}, cli.Usagef("send: --link-url and --markdown-file are different message kinds: choose one")
	case f.set["link-url"]:
		return envelope.Message{Link: &envelope.Link{Title: f.title, Text: f.text, MessageURL: f.linkURL, PicURL: f.picURL}}, nil
	case f.set["markdown-file"] && f.set["text"]:
		return envelope.Message{}, cli.Usagef("send: --text and --markdown-file both give the message body: choose one")
	case f.set["markdown-file"]:
		body, err := readFileOrStdin(f.markdownFile, stdin)
		if err != nil {
			return envelope.Message{}, fmt.Errorf("send: --markdown-file: %w", err)
		}
		return envelope.Message{Markdown: &envelope.Markdown{Title: f.title, Text: string(body)}}, nil
	case f.set["text"] && f.set["title"]:
		return envelope.Message{}, cli.Usagef("send: --title applies to --markdown-file and --link-url, not to a text message")
	case f.set["text"]:
		return envelope.Message{Text: &envelope.Text{Content: f.text}}, nil
	default:
		return envelope.Message{}, cli.Usagef("send: nothing to send: give --text, --markdown-file, --link-url or -f")
	}
}

func readFileOrStdin(name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err // *PathError names the file
	}
	return b, nil
}

// envelopes builds the message the flags describe and validates it for
// every robot: for one robot (or pool) it is the envelope itself; for
// several, or a group (--config), [publisher.Publisher.FanOut] publishes
// its [envelope.Envelope.ForRobot] copies (ids "<id>.<member>") to the
// robots returned (groups expanded, repeats dropped), and base.Robot is
// "". Each copy is validated here first, so nothing is published when any
// is invalid. With --config, a name that is no robot, pool or group of the
// file is an error. With --split a copy too large
// for one post is valid when [envelope.Split] can split it; without, the
// error for a too-long text or markdown message suggests --split.
func (f *sendFlags) envelopes(stdin io.Reader, now func() time.Time) (base *envelope.Envelope, robots []string, err error) {
	robots = f.robotNames()
	if len(robots) == 0 {
		return nil, nil, cli.Usagef("send: --robot is required")
	}
	if f.ttl < 0 {
		return nil, nil, cli.Usagef("send: --ttl must not be negative, not %s", f.ttl)
	}
	var unknown []string
	for _, r := range robots {
		if f.known != nil && !f.known(r) {
			unknown = append(unknown, fmt.Sprintf("robot %q: not a robot, pool or group of --config %s", r, f.configPath))
		}
	}
	if len(unknown) > 0 {
		return nil, nil, fmt.Errorf("send: nothing published:\n  %s", strings.Join(unknown, "\n  "))
	}
	fanOut := len(robots) > 1
	if f.groups != nil {
		var expanded []string
		for _, r := range robots {
			members, isGroup := f.groups(r)
			if !isGroup {
				members = []string{r}
			}
			fanOut = fanOut || isGroup
			for _, m := range members {
				if !slices.Contains(expanded, m) {
					expanded = append(expanded, m)
				}
			}
		}
		robots = expanded
	}
	msg, err := f.message(stdin)
	if err != nil {
		return nil, nil, err
	}
	opts := []envelope.Option{envelope.WithClock(now)}
	if f.id != "" {
		opts = append(opts, envelope.WithID(f.id))
	}
	if len(f.atMobiles) > 0 || len(f.atUsers) > 0 || f.atAll {
		opts = append(opts, envelope.WithAt(envelope.At{Mobiles: f.atMobiles, UserIDs: f.atUsers, All: f.atAll}))
	}
	if len(f.labels) > 0 {
		opts = append(opts, envelope.WithLabels(f.labels))
	}
	if f.ttl > 0 {
		opts = append(opts, envelope.WithTTL(f.ttl))
	}
	target := robots[0]
	if fanOut {
		target = "" // each copy is addressed to its robot
	}
	base = envelope.New(target, msg, opts...)
	var probs []string
	tooLarge := false
	for _, env := range copiesFor(base, robots) {
		var lim envelope.Limits
		if f.size != nil {
			lim = f.size(env.Robot)
		}
		err := env.ValidateFor(lim)
		if f.split {
			_, err = envelope.SplitFor(env, lim)
		}
		tooLarge = tooLarge || errors.Is(err, envelope.ErrTooLarge)
		for _, p := range describeProblems(err, true) {
			if rest, ok := strings.CutPrefix(p, "robot: "); ok {
				p = fmt.Sprintf("robot %q: %s", env.Robot, rest)
			}
			if !slices.Contains(probs, p) {
				probs = append(probs, p)
			}
		}
	}
	if tooLarge && !f.split {
		switch msg.Kind() {
		case envelope.KindText, envelope.KindMarkdown:
			probs = append(probs, "the message is too long for one post: add --split to send it in parts")
		}
	}
	if len(probs) > 0 {
		return nil, nil, fmt.Errorf("send: invalid message, nothing published:\n  %s", strings.Join(probs, "\n  "))
	}
	return base, robots, nil
}

// flagHints names the send flag that sets an envelope field.
var flagHints = map[string]string{
	"id":                      "--id",
	"robot":                   "--robot",
	"message.text.content":    "--text",
	"message.markdown.title":  "--title",
	"message.markdown.text":   "--markdown-file",
	"message.link.title":      "--title",
	"message.link.text":       "--text",
	"message.link.messageUrl": "--link-url",
	"message.link.picUrl":     "--pic-url",
	"at.mobiles":              "--at-mobile",
	"at.userIds":              "--at-user",
	"labels":                  "--label",
	"expires_at":              "--ttl",
}

// describeProblems splits a validation error (an [errors.Join] of
// [*envelope.FieldError]) into one line per problem, "field: problem",
// naming the robot for a robot-name problem and, when hints is set, the
// flag that sets the field.
func describeProblems(err error, hints bool) []string {
	if err == nil {
		return nil
	}
	var out []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var fe *envelope.FieldError
		if !errors.As(e, &fe) {
			out = append(out, e.Error())
			return
		}
		s := fe.Field + ": " + fe.Problem
		if hint := flagHints[fieldBase(fe.Field)]; hints && hint != "" {
			s += " (" + hint + ")"
		}
		out = append(out, s)
	}
	walk(err)
	return out
}

// fieldBase strips an index from a field path: "at.mobiles[2]" → "at.mobiles".
func fieldBase(field string) string {
	if i := strings.IndexByte(field, '['); i >= 0 {
		return field[:i]
	}
	return field
}

// openPublisher opens a publisher to topo's outbound stream, which must
// exist (see [globals.open]). Call the returned function to close the
// connection.
func (g *globals) openPublisher(ctx context.Context, topo stream.Topology, opts ...publisher.Option) (*publisher.Publisher, func(), error) {
	js, closeConn, err := g.open(ctx, topo.OutStream())
	if err != nil {
		return nil, nil, err
	}
	pub, err := publisher.New(js, topo, opts...)
	if err != nil {
		closeConn()
		return nil, nil, err
	}
	return pub, closeConn, nil
}
