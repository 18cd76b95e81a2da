package cli

import (
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/botrelay/botrelay/pkg/config"
)

// PlaceholderValue returns what stands in, in [LoadWithoutSecrets], for a
// ${NAME} the environment does not set (typically webhooks and secrets,
// which a command reading names and limits has no use for): a webhook of
// every platform's shape whose credential is NAME, so that validation,
// which refuses a webhook without its credential and two robots with one,
// passes for robots with webhooks of their own. [IsPlaceholder] tells it.
func PlaceholderValue(name string) string {
	return "https://" + placeholderHost + "/open-apis/robots/v1/hook/" + name + "?access_token=" + name + "&key=" + name
}

const placeholderHost = "placeholder.invalid"

// IsPlaceholder reports whether webhook came from [PlaceholderValue]: its
// robot's identity (the limiter key) is then unknown.
func IsPlaceholder(webhook string) bool {
	return strings.HasPrefix(webhook, "https://"+placeholderHost+"/")
}

// credentialKeys are the robot keys [LoadWithoutSecrets] drops.
var credentialKeys = map[string]bool{"secret": true, "secret_env": true, "secret_file": true}

// LoadWithoutSecrets reads the workers' config file at path for what a
// command other than the worker needs (robot names, prefix, limits): the
// robots' secret, secret_env and secret_file are dropped before it is
// parsed, and a ${NAME} that lookup does not know becomes
// [PlaceholderValue], so neither the secrets nor the webhooks need be
// present. Everything else is validated as the worker does.
func LoadWithoutSecrets(path string, lookup func(string) (string, bool)) (*config.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err == nil && len(doc.Content) == 1 {
		dropCredentials(doc.Content[0])
		if out, err := yaml.Marshal(&doc); err == nil {
			data = out
		}
	} // a file that does not parse is left to config.Parse to report
	cfg, err := config.Parse(data, func(name string) (string, bool) {
		if v, ok := lookup(name); ok {
			return v, true
		}
		return PlaceholderValue(name), true
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// dropCredentials removes the credential keys of every robot in the
// top-level mapping root.
func dropCredentials(root *yaml.Node) {
	if root.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "robots" || root.Content[i+1].Kind != yaml.SequenceNode {
			continue
		}
		for _, rb := range root.Content[i+1].Content {
			if rb.Kind != yaml.MappingNode {
				continue
			}
			kept := rb.Content[:0]
			for j := 0; j+1 < len(rb.Content); j += 2 {
				if !credentialKeys[rb.Content[j].Value] {
					kept = append(kept, rb.Content[j], rb.Content[j+1])
				}
			}
			rb.Content = kept
		}
	}
}
