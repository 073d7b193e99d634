package engine

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// policyDecision is data.build_service.decision after strict decoding.
type policyDecision struct {
	Allow      bool
	Reasons    []string
	Denials    []Denial
	TimeoutSec int
	HasTimeout bool
	Env        map[string]string
	HasEnv     bool
	Limits     Limits
	NoNewPrivs bool
}

// decodeError is a malformed decision; the message names the key.
type decodeError struct{ msg string }

func (e *decodeError) Error() string { return e.msg }

func malformed(format string, a ...any) error {
	return &decodeError{msg: "malformed policy decision: " + fmt.Sprintf(format, a...)}
}

// decisionKeys are the keys a decision may have; anything else is refused
// by name, so a typo such as "alow" can never silently mean "deny" or
// "allow".
var decisionKeys = []string{"allow", "reasons", "denials", "timeout_sec", "env", "limits", "no_new_privs"}

// decodeDecision decodes the policy's value strictly: an object with known
// keys of the right types; allow and reasons always, timeout_sec and env
// when allow is true.
func decodeDecision(v any) (policyDecision, error) {
	d := policyDecision{NoNewPrivs: true}
	obj, ok := v.(map[string]any)
	if !ok {
		return d, malformed("want an object, got %s", typeName(v))
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if !slices.Contains(decisionKeys, k) {
			return d, malformed("unknown key %q (known: %s)", k, strings.Join(decisionKeys, ", "))
		}
	}
	allow, ok := obj["allow"]
	if !ok {
		return d, malformed(`key "allow" is missing`)
	}
	if d.Allow, ok = allow.(bool); !ok {
		return d, malformed(`key "allow" must be a boolean, got %s`, typeName(allow))
	}
	reasons, ok := obj["reasons"]
	if !ok {
		return d, malformed(`key "reasons" is missing`)
	}
	var err error
	if d.Reasons, err = stringList("reasons", reasons); err != nil {
		return d, err
	}
	if v, ok := obj["denials"]; ok {
		list, ok := v.([]any)
		if !ok {
			return d, malformed(`key "denials" must be an array, got %s`, typeName(v))
		}
		for i, item := range list {
			o, ok := item.(map[string]any)
			rule, rok := o["rule"].(string)
			reason, sok := o["reason"].(string)
			if !ok || !rok || !sok || len(o) != 2 {
				return d, malformed(`key "denials" item %d must be {"rule": string, "reason": string}`, i)
			}
			d.Denials = append(d.Denials, Denial{Rule: rule, Reason: reason})
		}
	}
	if v, ok := obj["timeout_sec"]; ok {
		n, err := integer("timeout_sec", v)
		if err != nil {
			return d, err
		}
		d.TimeoutSec, d.HasTimeout = int(n), true
	} else if d.Allow {
		return d, malformed(`key "timeout_sec" is missing from an allowing decision`)
	}
	if v, ok := obj["env"]; ok {
		env, ok := v.(map[string]any)
		if !ok {
			return d, malformed(`key "env" must be an object of strings, got %s`, typeName(v))
		}
		d.Env = make(map[string]string, len(env))
		for name, val := range env {
			s, ok := val.(string)
			if !ok {
				return d, malformed(`key "env" value of %q must be a string, got %s`, name, typeName(val))
			}
			d.Env[name] = s
		}
		d.HasEnv = true
	} else if d.Allow {
		return d, malformed(`key "env" is missing from an allowing decision`)
	}
	if v, ok := obj["limits"]; ok {
		lim, ok := v.(map[string]any)
		if !ok {
			return d, malformed(`key "limits" must be an object, got %s`, typeName(v))
		}
		for _, k := range slices.Sorted(maps.Keys(lim)) {
			val := lim[k]
			switch k {
			case "pids_max", "memory_max":
				n, err := integer("limits."+k, val)
				if err != nil {
					return d, err
				}
				if n < 0 {
					return d, malformed("key %q must not be negative, got %d", "limits."+k, n)
				}
				if k == "pids_max" {
					d.Limits.PidsMax = n
				} else {
					d.Limits.MemoryMax = n
				}
			case "cpu_max":
				s, ok := val.(string)
				if !ok {
					return d, malformed(`key "limits.cpu_max" must be a string, got %s`, typeName(val))
				}
				d.Limits.CPUMax = s
			default:
				return d, malformed("unknown key %q (known: limits.pids_max, limits.memory_max, limits.cpu_max)", "limits."+k)
			}
		}
	}
	if v, ok := obj["no_new_privs"]; ok {
		if d.NoNewPrivs, ok = v.(bool); !ok {
			return d, malformed(`key "no_new_privs" must be a boolean, got %s`, typeName(v))
		}
	}
	return d, nil
}

func stringList(key string, v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, malformed("key %q must be an array of strings, got %s", key, typeName(v))
	}
	out := make([]string, 0, len(list))
	for i, item := range list {
		s, ok := item.(string)
		if !ok {
			return nil, malformed("key %q item %d must be a string, got %s", key, i, typeName(item))
		}
		out = append(out, s)
	}
	return out, nil
}

func integer(key string, v any) (int64, error) {
	num, ok := v.(json.Number)
	if !ok {
		return 0, malformed("key %q must be an integer, got %s", key, typeName(v))
	}
	n, err := num.Int64()
	if err != nil {
		return 0, malformed("key %q must be an integer, got %s", key, num)
	}
	return n, nil
}

func typeName(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "the number " + v.String()
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%T", v)
	}
}
